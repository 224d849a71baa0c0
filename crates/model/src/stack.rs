//! What every implementation of a recurrent stack shares: which cell it computes, the stack as a
//! forward pass reads it, what it returns, and the checks on a call's arguments.
//!
//! Every implementation — the step-by-step loop of Burn tensor ops ([`crate::step_loop`]) and
//! the fused whole-sequence ops of the CPU and GPU backends (`crate::fused_cpu`,
//! `crate::fused_gpu`) — depends on this module and on nothing of the others;
//! [`crate::recurrence`] chooses between them.

use burn::nn::Dropout;
use burn::tensor::{Device, Tensor};

use crate::error::RecurrentError;
use crate::weights::RecurrentLayer;

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

    /// Whether the state carries a cell `c` beside the hidden `h` (the LSTM).
    pub(crate) fn has_cell(self) -> bool {
        self == CellKind::Lstm
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

    /// 2 when the layers are bidirectional, else 1.
    pub(crate) fn directions(&self) -> usize {
        if self.layers.first().is_some_and(|l| l.reverse.is_some()) {
            2
        } else {
            1
        }
    }
}

/// The arguments of one forward pass of a stack, already validated.
pub(crate) struct StackInput<'a> {
    /// `[batch, time, input_size]`.
    pub(crate) input: Tensor<3>,
    /// Initial hidden states `[layers * directions, batch, hidden]`, zeros when `None`.
    pub(crate) hidden0: Option<Tensor<3>>,
    /// LSTM only: initial cell states, the same shape, zeros when `None`.
    pub(crate) cell0: Option<Tensor<3>>,
    /// `[batch]`, each in `1..=time`.
    pub(crate) lengths: Option<&'a [usize]>,
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

/// The sizes a forward call is checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected {
    pub(crate) input_size: usize,
    pub(crate) hidden_size: usize,
    /// `layers * directions`.
    pub(crate) state_rows: usize,
}

/// Checks the arguments of a forward call against the layer's shape: `input [batch, time,
/// features]`, the initial states' shapes, and `lengths`.
pub(crate) fn validate(
    expected: Expected,
    input_shape: [usize; 3],
    hidden: Option<[usize; 3]>,
    cell: Option<[usize; 3]>,
    lengths: Option<&[usize]>,
) -> Result<(), RecurrentError> {
    let [batch, time, features] = input_shape;
    if batch == 0 || time == 0 {
        return Err(RecurrentError::EmptyInput { shape: input_shape });
    }
    if features != expected.input_size {
        return Err(RecurrentError::InputFeatures {
            expected: expected.input_size,
            found: features,
            shape: input_shape,
        });
    }
    let state = [expected.state_rows, batch, expected.hidden_size];
    for (which, found) in [("hidden", hidden), ("cell", cell)] {
        if let Some(found) = found {
            if found != state {
                return Err(RecurrentError::StateShape {
                    which,
                    expected: state,
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
