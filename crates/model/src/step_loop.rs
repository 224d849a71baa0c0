//! The step-by-step implementation of a recurrent stack: every time step of every layer as Burn
//! tensor ops, differentiated by Burn's autodiff. It runs on every backend; [`crate::recurrence`]
//! picks it where no fused op applies (another backend, another dtype, sizes the GPU op cannot
//! hold) or when the fused op is switched off ([`crate::set_fused`]).
//!
//! Two rules keep training linear in the sequence length `T`:
//! - Only the raw input `[batch, time, features]` is sliced per step. Tensors produced inside the
//!   graph are passed between layers as per-step `Vec`s: burn-autodiff's `slice` backward
//!   allocates a zero gradient the size of the whole sliced tensor, so slicing a tracked
//!   `[batch, time, G * hidden]` projection per step would make backward O(T²).
//! - One recurrent matmul per step computes all gates at once (`h @ W_hhᵀ`, `[batch, G * hidden]`),
//!   and the per-step outputs are stacked once at the end.

use burn::tensor::activation::{relu, sigmoid, tanh};
use burn::tensor::{Bool, Device, Tensor, TensorData};

use crate::stack::{initial_state, CellKind, Stack, StackInput, StackOutput};
use crate::weights::DirectionWeights;

/// The recurrent state of one layer and direction: hidden `[batch, hidden]` and, for the LSTM,
/// the cell `[batch, hidden]`.
#[derive(Debug, Clone)]
pub(crate) struct CellState {
    pub(crate) hidden: Tensor<2>,
    pub(crate) cell: Option<Tensor<2>>,
}

/// A direction's weights, transposed once per forward call so each step is `x @ Wᵀ` without
/// re-transposing.
pub(crate) struct StepWeights {
    /// `[input, G * hidden]`.
    w_ih_t: Tensor<2>,
    /// `[hidden, G * hidden]`.
    w_hh_t: Tensor<2>,
    /// Bias added to the input projection, `[1, G * hidden]`. For Elman and LSTM this is
    /// `b_ih + b_hh` folded into one add; for the GRU only `b_ih` (its `b_hn` sits inside r ⊙ ·).
    b_in: Option<Tensor<2>>,
    /// GRU only: `b_hh`, `[1, G * hidden]`, added to the recurrent projection.
    b_rec: Option<Tensor<2>>,
}

impl StepWeights {
    pub(crate) fn new(kind: CellKind, w: &DirectionWeights) -> Self {
        let row = |b: &Option<burn::module::Param<Tensor<1>>>| {
            b.as_ref().map(|b| b.val().unsqueeze_dim::<2>(0))
        };
        let (b_ih, b_hh) = (row(&w.bias_ih), row(&w.bias_hh));
        let (b_in, b_rec) = match kind {
            CellKind::Gru => (b_ih, b_hh),
            _ => match (b_ih, b_hh) {
                (Some(a), Some(b)) => (Some(a + b), None),
                (a, b) => (a.or(b), None),
            },
        };
        Self {
            w_ih_t: w.weight_ih.val().transpose(),
            w_hh_t: w.weight_hh.val().transpose(),
            b_in,
            b_rec,
        }
    }
}

fn add_bias(x: Tensor<2>, bias: &Option<Tensor<2>>) -> Tensor<2> {
    match bias {
        Some(b) => x + b.clone(),
        None => x,
    }
}

/// One time step: `x` is `[batch, input]`, the state `[batch, hidden]`; returns the new state.
pub(crate) fn step(
    kind: CellKind,
    w: &StepWeights,
    hidden_size: usize,
    x: Tensor<2>,
    state: &CellState,
) -> CellState {
    let h = hidden_size;
    let gi = add_bias(x.matmul(w.w_ih_t.clone()), &w.b_in);
    let gh = state.hidden.clone().matmul(w.w_hh_t.clone());
    match kind {
        CellKind::ElmanTanh => CellState {
            hidden: tanh(gi + gh),
            cell: None,
        },
        CellKind::ElmanRelu => CellState {
            hidden: relu(gi + gh),
            cell: None,
        },
        CellKind::Gru => {
            let gh = add_bias(gh, &w.b_rec);
            let rz = sigmoid(gi.clone().narrow(1, 0, 2 * h) + gh.clone().narrow(1, 0, 2 * h));
            let r = rz.clone().narrow(1, 0, h);
            let z = rz.narrow(1, h, h);
            let n = tanh(gi.narrow(1, 2 * h, h) + r * gh.narrow(1, 2 * h, h));
            // h' = (1 - z) ⊙ n + z ⊙ h  =  n + z ⊙ (h - n)
            let hidden = n.clone() + z * (state.hidden.clone() - n);
            CellState { hidden, cell: None }
        }
        CellKind::Lstm => {
            let g = gi + gh;
            let ifg = sigmoid(g.clone().narrow(1, 0, 2 * h));
            let i = ifg.clone().narrow(1, 0, h);
            let f = ifg.narrow(1, h, h);
            let candidate = tanh(g.clone().narrow(1, 2 * h, h));
            let o = sigmoid(g.narrow(1, 3 * h, h));
            let c_prev = state.cell.clone().expect("LSTM state carries a cell");
            let cell = f * c_prev + i * candidate;
            let hidden = o * tanh(cell.clone());
            CellState {
                hidden,
                cell: Some(cell),
            }
        }
    }
}

/// Runs one direction of one layer over all steps.
///
/// - `inputs`: one `[batch, input]` tensor per time step, in time order.
/// - `padded`: for variable lengths, one `[batch, hidden]` mask per step, true where the step is
///   past that sequence's end. There the state is carried unchanged and the output is zero, so the
///   final state is the state at the last valid step and the reverse direction starts at each
///   sequence's own last step (PyTorch packed-sequence semantics).
///
/// Returns the per-step hidden outputs `[batch, hidden]` in time order and the final state.
pub(crate) fn loop_direction(
    kind: CellKind,
    weights: &DirectionWeights,
    hidden_size: usize,
    inputs: &[Tensor<2>],
    initial: CellState,
    reverse: bool,
    padded: Option<&[Tensor<2, Bool>]>,
) -> (Vec<Tensor<2>>, CellState) {
    let w = StepWeights::new(kind, weights);
    let steps = inputs.len();
    let mut outputs: Vec<Option<Tensor<2>>> = vec![None; steps];
    let mut state = initial;
    for k in 0..steps {
        let t = if reverse { steps - 1 - k } else { k };
        let mut next = step(kind, &w, hidden_size, inputs[t].clone(), &state);
        let out = match padded {
            Some(masks) => {
                let pad = &masks[t];
                next.hidden = next.hidden.mask_where(pad.clone(), state.hidden.clone());
                if let (Some(c_new), Some(c_old)) = (next.cell.take(), state.cell.as_ref()) {
                    next.cell = Some(c_new.mask_where(pad.clone(), c_old.clone()));
                }
                next.hidden.clone().mask_fill(pad.clone(), 0.0)
            }
            None => next.hidden.clone(),
        };
        outputs[t] = Some(out);
        state = next;
    }
    (
        outputs
            .into_iter()
            .map(|o| o.expect("every step visited"))
            .collect(),
        state,
    )
}

/// Per-step padding masks `[batch, hidden]` (true past a sequence's end), or `None` when every
/// sequence fills the whole time dimension (then no masking is done at all).
fn padding_masks(
    lengths: Option<&[usize]>,
    time: usize,
    hidden_size: usize,
    device: &Device,
) -> Option<Vec<Tensor<2, Bool>>> {
    let lengths = lengths?;
    if lengths.iter().all(|&l| l == time) {
        return None;
    }
    let batch = lengths.len();
    // One upload of a [time, batch, 1] mask, then cheap slices of an untracked tensor.
    let data: Vec<bool> = (0..time)
        .flat_map(|t| lengths.iter().map(move |&l| t >= l))
        .collect();
    let all = Tensor::<3, Bool>::from_data(TensorData::new(data, [time, batch, 1]), device);
    Some(
        (0..time)
            .map(|t| {
                all.clone()
                    .narrow(0, t, 1)
                    .reshape([batch, 1])
                    .expand([batch, hidden_size])
            })
            .collect(),
    )
}

/// The whole stack step by step, Burn's autodiff recording every operation.
///
/// Dropout is applied to the outputs of every layer but the last (it is a no-op outside
/// training, see [`burn::nn::Dropout`]).
pub(crate) fn loop_stack(stack: Stack, args: StackInput) -> StackOutput {
    let directions = stack.directions();
    let Stack {
        kind,
        layers,
        dropout,
        hidden_size,
    } = stack;
    let StackInput {
        input,
        hidden0,
        cell0,
        lengths,
    } = args;
    let device = input.device();
    let [batch, time, _] = input.dims();
    let padded = padding_masks(lengths, time, hidden_size, &device);
    let initial =
        |all: &Option<Tensor<3>>, row| initial_state(all, row, batch, hidden_size, &device);
    let is_lstm = kind.has_cell();

    // The raw input is the only tensor sliced per step.
    let mut steps: Vec<Tensor<2>> = (0..time)
        .map(|t| input.clone().narrow(1, t, 1).squeeze_dim::<2>(1))
        .collect();
    let mut final_hidden = Vec::with_capacity(layers.len() * directions);
    let mut final_cell = Vec::with_capacity(layers.len() * directions);

    for (index, layer) in layers.iter().enumerate() {
        if index > 0 {
            steps = steps.into_iter().map(|x| dropout.forward(x)).collect();
        }
        let directions_weights = std::iter::once((&layer.forward, false))
            .chain(layer.reverse.as_ref().map(|w| (w, true)));
        let mut per_direction = Vec::with_capacity(directions);
        for (d, (weights, reverse)) in directions_weights.enumerate() {
            let row = index * directions + d;
            let state = CellState {
                hidden: initial(&hidden0, row),
                cell: is_lstm.then(|| initial(&cell0, row)),
            };
            let (outs, last) = loop_direction(
                kind,
                weights,
                hidden_size,
                &steps,
                state,
                reverse,
                padded.as_deref(),
            );
            final_hidden.push(last.hidden);
            if let Some(c) = last.cell {
                final_cell.push(c);
            }
            per_direction.push(outs);
        }
        steps = if per_direction.len() == 1 {
            per_direction.pop().expect("one direction")
        } else {
            let backward = per_direction.pop().expect("two directions");
            let forward = per_direction.pop().expect("two directions");
            forward
                .into_iter()
                .zip(backward)
                .map(|(f, b)| Tensor::cat(vec![f, b], 1))
                .collect()
        };
    }

    StackOutput {
        output: Tensor::stack(steps, 1),
        hidden: Tensor::stack(final_hidden, 0),
        cell: is_lstm.then(|| Tensor::stack(final_cell, 0)),
    }
}
