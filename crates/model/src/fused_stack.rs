//! The stack driver of a fused whole-sequence op: everything around the op itself, in Burn
//! tensor ops on any backend.
//!
//! A fused op ([`DirectionOp`]) runs one layer in one direction over the whole sequence as one
//! autodiff node. This driver runs it for every layer and direction: the bias folding, a reverse
//! direction as the same op on the time-reversed sequence (each row reversed within its own
//! length, so it starts at its last valid step; its last step is PyTorch's `h_n` for that
//! direction), zero outputs past each row's length, the two directions' outputs side by side,
//! and dropout between layers.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::stack::{initial_state, CellKind, Stack, StackInput, StackOutput};
use crate::weights::DirectionWeights;

/// What one layer in one direction reads.
pub(crate) struct DirectionInput<'a> {
    pub(crate) kind: CellKind,
    pub(crate) weights: &'a DirectionWeights,
    /// `[B, T, F]`, already reversed for a reverse direction.
    pub(crate) x: Tensor<3>,
    /// `[1, G·H]`: `b_ih + b_hh` (Elman, LSTM) or `b_ih` (GRU, whose `b_hn` sits inside
    /// `r ⊙ ·`); zeros without biases.
    pub(crate) bias: Tensor<2>,
    /// `[1, G·H]`: the GRU's `b_hh`, added to the recurrent product; zeros otherwise.
    pub(crate) b_rec: Tensor<2>,
    /// `[B, H]` each; `c0` is zeros but for the LSTM.
    pub(crate) h0: Tensor<2>,
    pub(crate) c0: Tensor<2>,
    /// Each row's valid length (`T` for every row without `lengths`): past it the state is
    /// frozen.
    pub(crate) lens: &'a [usize],
}

/// What one layer in one direction returns.
pub(crate) struct DirectionOutput {
    /// Every step's hidden state `[B, T, H]` (past a row's length: its frozen state).
    pub(crate) hs: Tensor<3>,
    /// The last hidden state `[B, H]`.
    pub(crate) h_last: Tensor<2>,
    /// LSTM only: the last cell state `[B, H]`.
    pub(crate) c_last: Option<Tensor<2>>,
}

/// A fused whole-sequence op for one layer and direction.
pub(crate) trait DirectionOp {
    /// Whether the op runs on this input's device and dtype.
    fn applies(&self, input: &Tensor<3>) -> bool;
    /// Runs the op (only called where it [`DirectionOp::applies`]).
    fn run(&self, input: DirectionInput) -> DirectionOutput;
}

/// `bias` and `b_rec` of [`DirectionInput`] from a direction's weights.
fn fold_biases(kind: CellKind, w: &DirectionWeights) -> (Tensor<2>, Tensor<2>) {
    let gh = w.weight_hh.dims()[0];
    let device = w.weight_hh.val().device();
    let row = |b: &Option<burn::module::Param<Tensor<1>>>| {
        b.as_ref().map(|b| b.val().unsqueeze_dim::<2>(0))
    };
    let zeros = || Tensor::zeros([1, gh], &device);
    let (b_ih, b_hh) = (row(&w.bias_ih), row(&w.bias_hh));
    if kind == CellKind::Gru {
        return (b_ih.unwrap_or_else(zeros), b_hh.unwrap_or_else(zeros));
    }
    let bias = match (b_ih, b_hh) {
        (Some(a), Some(b)) => a + b,
        (a, b) => a.or(b).unwrap_or_else(zeros),
    };
    (bias, zeros())
}

/// The rows' lengths as tensors the stack driver applies: which outputs are past a row's end,
/// and time reversed within each row's length.
struct Padding {
    /// Each row's valid length (`T` for every row without `lengths`).
    lens: Vec<usize>,
    /// `[B, T, 1]`: 1 on valid steps; `None` without padding.
    mask: Option<Tensor<3>>,
    /// `[B, T, 1]`: time reversed within each row's length (padding stays at the end), an
    /// involution; `None` without padding (then a plain flip).
    reverse_index: Option<Tensor<3, Int>>,
}

impl Padding {
    fn new(lengths: Option<&[usize]>, batch: usize, time: usize, device: &Device) -> Self {
        let lens: Vec<usize> = match lengths {
            Some(l) if l.iter().any(|&l| l != time) => l.to_vec(),
            _ => vec![time; batch],
        };
        let padded = lens.iter().any(|&l| l != time);
        let mask = padded.then(|| {
            let m: Vec<f32> = lens
                .iter()
                .flat_map(|&l| (0..time).map(move |t| if t < l { 1.0 } else { 0.0 }))
                .collect();
            Tensor::<3>::from_data(TensorData::new(m, [batch, time, 1]), device)
        });
        let reverse_index = padded.then(|| {
            let idx: Vec<i64> = lens
                .iter()
                .flat_map(|&l| (0..time).map(move |t| if t < l { l - 1 - t } else { t } as i64))
                .collect();
            Tensor::<3, Int>::from_data(TensorData::new(idx, [batch, time, 1]), device)
        });
        Self {
            lens,
            mask,
            reverse_index,
        }
    }

    /// `t [B, T, ·]` reversed in time within each row's length.
    fn reversed(&self, t: Tensor<3>) -> Tensor<3> {
        match &self.reverse_index {
            Some(idx) => {
                let [batch, time, features] = t.dims();
                t.gather(1, idx.clone().expand([batch, time, features]))
            }
            None => t.flip([1]),
        }
    }

    /// `hs [B, T, H]` with the steps past each row's length zeroed.
    fn masked(&self, hs: Tensor<3>) -> Tensor<3> {
        match &self.mask {
            Some(m) => hs * m.clone(),
            None => hs,
        }
    }
}

/// The whole stack through `op`, or `None` where it does not apply (another backend, another
/// dtype).
pub(crate) fn fused_stack(
    stack: Stack,
    args: &StackInput,
    op: &impl DirectionOp,
) -> Option<StackOutput> {
    let input = &args.input;
    if !op.applies(input) {
        return None;
    }
    let [batch, time, _] = input.dims();
    let device = input.device();
    let directions = stack.directions();
    let initial =
        |all: &Option<Tensor<3>>, row| initial_state(all, row, batch, stack.hidden_size, &device);
    let padding = Padding::new(args.lengths, batch, time, &device);
    let mut x = input.clone();
    let (mut final_h, mut final_c) = (Vec::new(), Vec::new());
    for (index, layer) in stack.layers.iter().enumerate() {
        if index > 0 {
            x = stack.dropout.forward(x);
        }
        let weights = std::iter::once((&layer.forward, false))
            .chain(layer.reverse.as_ref().map(|w| (w, true)));
        let mut outs = Vec::with_capacity(directions);
        for (d, (w, reverse)) in weights.enumerate() {
            let row = index * directions + d;
            let (bias, b_rec) = fold_biases(stack.kind, w);
            let out = op.run(DirectionInput {
                kind: stack.kind,
                weights: w,
                x: if reverse {
                    padding.reversed(x.clone())
                } else {
                    x.clone()
                },
                bias,
                b_rec,
                h0: initial(&args.hidden0, row),
                c0: initial(&args.cell0, row),
                lens: &padding.lens,
            });
            final_h.push(out.h_last);
            final_c.extend(out.c_last);
            let hs = padding.masked(out.hs);
            outs.push(if reverse { padding.reversed(hs) } else { hs });
        }
        x = if outs.len() == 1 {
            outs.pop().expect("one direction")
        } else {
            Tensor::cat(outs, 2)
        };
    }
    Some(StackOutput {
        output: x,
        hidden: Tensor::stack(final_h, 0),
        cell: stack.kind.has_cell().then(|| Tensor::stack(final_c, 0)),
    })
}
