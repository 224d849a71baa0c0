//! The time loop shared by the Elman RNN, GRU and LSTM layers.
//!
//! Everything that walks over time lives behind [`run_stack`] / [`run_direction`]. On the CPU
//! backends (flex, ndarray; autodiff or not) every stack takes the fused path instead
//! (`crate::fused`: one autodiff node per layer and direction, hand-written BPTT); other backends
//! (wgpu), and `GATECAST_FUSED=0`, run the loop below.
//!
//! Two rules keep training linear in the sequence length `T`:
//! - Only the raw input `[batch, time, features]` is sliced per step. Tensors produced inside the
//!   graph are passed between layers as per-step `Vec`s: burn-autodiff's `slice` backward
//!   allocates a zero gradient the size of the whole sliced tensor, so slicing a tracked
//!   `[batch, time, G * hidden]` projection per step would make backward O(T²).
//! - One recurrent matmul per step computes all gates at once (`h @ W_hhᵀ`, `[batch, G * hidden]`),
//!   and the per-step outputs are stacked once at the end.

use burn::nn::Dropout;
use burn::tensor::activation::{relu, sigmoid, tanh};
use burn::tensor::{Bool, Device, Tensor, TensorData};

use crate::error::RecurrentError;
use crate::weights::{DirectionWeights, RecurrentLayer};

/// Which recurrence a layer computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CellKind {
    /// `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`.
    ElmanTanh,
    /// `h' = relu(W_ih x + b_ih + W_hh h + b_hh)`.
    ElmanRelu,
    /// PyTorch's GRU, gates (r, z, n), reset applied after the recurrent matmul.
    Gru,
    /// PyTorch's LSTM, gates (i, f, g, o).
    Lstm,
}

impl CellKind {
    /// Number of gate blocks stacked in the weight matrices.
    pub(crate) fn gates(self) -> usize {
        match self {
            CellKind::ElmanTanh | CellKind::ElmanRelu => 1,
            CellKind::Gru => 3,
            CellKind::Lstm => 4,
        }
    }
}

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
pub(crate) fn run_direction(
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

/// Checks the arguments of a forward call against the layer's shape.
#[allow(clippy::too_many_arguments)]
pub(crate) fn validate(
    input_size: usize,
    hidden_size: usize,
    state_rows: usize,
    input_shape: [usize; 3],
    hidden: Option<[usize; 3]>,
    cell: Option<[usize; 3]>,
    lengths: Option<&[usize]>,
) -> Result<(), RecurrentError> {
    let [batch, time, features] = input_shape;
    if batch == 0 || time == 0 {
        return Err(RecurrentError::EmptyInput { shape: input_shape });
    }
    if features != input_size {
        return Err(RecurrentError::InputFeatures {
            expected: input_size,
            found: features,
            shape: input_shape,
        });
    }
    let expected = [state_rows, batch, hidden_size];
    for (which, found) in [("hidden", hidden), ("cell", cell)] {
        if let Some(found) = found {
            if found != expected {
                return Err(RecurrentError::StateShape {
                    which,
                    expected,
                    found,
                });
            }
        }
    }
    if let Some(lengths) = lengths {
        if lengths.len() != batch {
            return Err(RecurrentError::LengthsCount {
                expected: batch,
                found: lengths.len(),
            });
        }
        if let Some((index, &length)) = lengths
            .iter()
            .enumerate()
            .find(|(_, &l)| l == 0 || l > time)
        {
            return Err(RecurrentError::LengthOutOfRange {
                index,
                length,
                max_len: time,
            });
        }
    }
    Ok(())
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

/// What a stacked forward pass returns.
pub(crate) struct StackOutput {
    /// `[batch, time, directions * hidden]`.
    pub(crate) output: Tensor<3>,
    /// `[layers * directions, batch, hidden]`.
    pub(crate) hidden: Tensor<3>,
    /// LSTM only: `[layers * directions, batch, hidden]`.
    pub(crate) cell: Option<Tensor<3>>,
}

/// Row `row` of the stacked initial states `[layers * directions, batch, hidden]` as `[batch,
/// hidden]`, or zeros when none were given.
pub(crate) fn initial_state(
    all: &Option<Tensor<3>>,
    row: usize,
    batch: usize,
    hidden: usize,
    device: &Device,
) -> Tensor<2> {
    match all {
        Some(s) => s.clone().narrow(0, row, 1).reshape([batch, hidden]),
        None => Tensor::zeros([batch, hidden], device),
    }
}

/// A stack of recurrent layers as the forward passes read it: the cell, its layers (each with
/// its directions), the dropout between layers and the hidden size.
#[derive(Clone, Copy)]
pub(crate) struct Stack<'a> {
    pub(crate) kind: CellKind,
    pub(crate) layers: &'a [RecurrentLayer],
    pub(crate) dropout: &'a Dropout,
    pub(crate) hidden_size: usize,
}

impl<'a> Stack<'a> {
    pub(crate) fn new(
        kind: CellKind,
        layers: &'a [RecurrentLayer],
        dropout: &'a Dropout,
        hidden_size: usize,
    ) -> Self {
        Self {
            kind,
            layers,
            dropout,
            hidden_size,
        }
    }
}

/// The shared forward pass of every stacked, optionally bidirectional recurrent layer.
///
/// - `input`: `[batch, time, input_size]`.
/// - `hidden0`, `cell0`: `[layers * directions, batch, hidden]`, zeros when `None`.
/// - `lengths`: `[batch]`, already validated.
///
/// Dropout is applied to the outputs of every layer but the last (it is a no-op outside
/// training, see [`Dropout`]).
pub(crate) fn run_stack(
    stack: Stack,
    input: Tensor<3>,
    hidden0: Option<Tensor<3>>,
    cell0: Option<Tensor<3>>,
    lengths: Option<&[usize]>,
) -> StackOutput {
    // One autodiff node per layer and sequence on flex and ndarray (`GATECAST_FUSED=0` turns it
    // off, e.g. to compare).
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if std::env::var("GATECAST_FUSED").as_deref() != Ok("0") {
        if let Some(out) = crate::fused::try_run_stack(stack, &input, &hidden0, &cell0, lengths) {
            return out;
        }
    }
    run_stack_loop(stack, input, hidden0, cell0, lengths)
}

/// [`run_stack`] step by step with Burn's autodiff recording every operation.
pub(crate) fn run_stack_loop(
    stack: Stack,
    input: Tensor<3>,
    hidden0: Option<Tensor<3>>,
    cell0: Option<Tensor<3>>,
    lengths: Option<&[usize]>,
) -> StackOutput {
    let Stack {
        kind,
        layers,
        dropout,
        hidden_size,
    } = stack;
    let device = input.device();
    let [batch, time, _] = input.dims();
    let directions = if layers.first().is_some_and(|l| l.reverse.is_some()) {
        2
    } else {
        1
    };
    let padded = padding_masks(lengths, time, hidden_size, &device);
    let initial =
        |all: &Option<Tensor<3>>, row| initial_state(all, row, batch, hidden_size, &device);
    let is_lstm = kind == CellKind::Lstm;

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
            let (outs, last) = run_direction(
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
