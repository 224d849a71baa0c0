//! The one structure behind [`crate::Rnn`], [`crate::Gru`] and [`crate::Lstm`]: stacked layers
//! of [`RecurrentLayer`] weights, dropout between them, and the sizes every call is checked
//! against. Construction, shape checks, the forward pass and the accessors are written once here,
//! generic over the cell; the cell decides only what the recurrent state looks like (a hidden
//! state, or the LSTM's hidden and cell).

use std::fmt::Debug;
use std::marker::PhantomData;

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Device, Tensor};

use crate::error::RecurrentError;
use crate::recurrence::forward_stack;
use crate::stack::{validate, CellKind, Expected, Stack, StackInput};
use crate::state::{sealed, LstmState, RecurrentState};
use crate::weights::{check_config, init_layers, RecurrentLayer};

/// The cell of a [`Recurrent`] stack: [`ElmanCell`], [`GruCell`] or [`LstmCell`]. It fixes the
/// type of the recurrent state a forward pass takes and returns. Implemented only by this crate.
pub trait Cell: sealed::Sealed + Clone + Copy + Debug + Send + Sync + 'static {
    /// The recurrent state of every layer and direction.
    type State: RecurrentState;
}

/// The Elman cell of an [`crate::Rnn`]: the state is the hidden state.
#[derive(Debug, Clone, Copy)]
pub struct ElmanCell;

/// The cell of a [`crate::Gru`]: the state is the hidden state.
#[derive(Debug, Clone, Copy)]
pub struct GruCell;

/// The cell of an [`crate::Lstm`]: the state is an [`LstmState`] (hidden and cell).
#[derive(Debug, Clone, Copy)]
pub struct LstmCell;

impl sealed::Sealed for ElmanCell {}
impl sealed::Sealed for GruCell {}
impl sealed::Sealed for LstmCell {}

impl Cell for ElmanCell {
    type State = Tensor<3>;
}

impl Cell for GruCell {
    type State = Tensor<3>;
}

impl Cell for LstmCell {
    type State = LstmState;
}

/// What a stack is, besides its weights: fixed at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spec {
    pub(crate) kind: CellKind,
    pub(crate) input_size: usize,
    pub(crate) hidden_size: usize,
    pub(crate) bidirectional: bool,
}

/// The fields every recurrent config shares, as [`Recurrent::build`] reads them.
pub(crate) struct Build {
    pub(crate) kind: CellKind,
    pub(crate) input_size: usize,
    pub(crate) hidden_size: usize,
    pub(crate) num_layers: usize,
    pub(crate) bias: bool,
    pub(crate) dropout: f64,
    pub(crate) bidirectional: bool,
}

/// A stacked, optionally bidirectional recurrent layer with PyTorch's semantics and weight
/// layout; used as [`crate::Rnn`], [`crate::Gru`] or [`crate::Lstm`] (built by their configs).
///
/// Tensors are batch first: input `[batch, time, input_size]`, output `[batch, time,
/// num_directions * hidden_size]`, states `[num_layers * num_directions, batch, hidden_size]`.
#[derive(Module, Debug)]
pub struct Recurrent<C: Cell> {
    /// The stacked layers, `num_layers` of them.
    pub layers: Vec<RecurrentLayer>,
    /// Dropout between layers.
    pub dropout: Dropout,
    #[module(skip)]
    spec: Spec,
    #[module(skip)]
    cell: PhantomData<C>,
}

impl<C: Cell> Recurrent<C> {
    /// Builds the layers with PyTorch's initialisation, or says which config field is out of
    /// range.
    pub(crate) fn build(b: Build, device: &Device) -> Result<Self, RecurrentError> {
        check_config(b.input_size, b.hidden_size, b.num_layers, b.dropout)?;
        let layers = init_layers(
            b.kind.gates(),
            b.input_size,
            b.hidden_size,
            b.num_layers,
            b.bias,
            b.bidirectional,
            device,
        );
        Ok(Self {
            layers,
            dropout: DropoutConfig::new(b.dropout).init(),
            spec: Spec {
                kind: b.kind,
                input_size: b.input_size,
                hidden_size: b.hidden_size,
                bidirectional: b.bidirectional,
            },
            cell: PhantomData,
        })
    }

    pub(crate) fn kind(&self) -> CellKind {
        self.spec.kind
    }

    /// Runs the stack over whole sequences.
    ///
    /// - `input`: `[batch, time, input_size]`.
    /// - `state`: initial state, `[num_layers * num_directions, batch, hidden]` (each tensor of an
    ///   [`LstmState`]); zeros if `None`.
    ///
    /// Returns the last layer's outputs `[batch, time, num_directions * hidden]` (forward
    /// direction first) and the final state of every layer and direction, rows ordered like
    /// PyTorch's `h_n`: layer 0 forward, layer 0 reverse, layer 1 forward, ...
    ///
    /// # Panics
    /// When shapes do not match the layer; [`Recurrent::try_forward`] returns the error instead.
    pub fn forward(&self, input: Tensor<3>, state: Option<C::State>) -> (Tensor<3>, C::State) {
        self.try_forward(input, state, None)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs the stack, checking every shape, with optional per-sequence lengths.
    ///
    /// - `input`: `[batch, time, input_size]`, sequences padded to `time`.
    /// - `state`: initial state, `[num_layers * num_directions, batch, hidden]` (each tensor of an
    ///   [`LstmState`]); zeros if `None`.
    /// - `lengths`: `[batch]`, each in `1..=time`, in any order. Outputs after a sequence's end
    ///   are zero and its final state is the state at its last valid step; the reverse direction
    ///   starts at that last valid step (PyTorch's packed-sequence semantics).
    ///
    /// Returns outputs `[batch, time, num_directions * hidden]` and the final state.
    pub fn try_forward(
        &self,
        input: Tensor<3>,
        state: Option<C::State>,
        lengths: Option<&[usize]>,
    ) -> Result<(Tensor<3>, C::State), RecurrentError> {
        let (hidden0, cell0) = match state.map(RecurrentState::split) {
            Some((h, c)) => (Some(h), c),
            None => (None, None),
        };
        let expected = Expected {
            input_size: self.spec.input_size,
            hidden_size: self.spec.hidden_size,
            state_rows: self.state_rows(),
        };
        validate(
            expected,
            input.dims(),
            hidden0.as_ref().map(|t| t.dims()),
            cell0.as_ref().map(|t| t.dims()),
            lengths,
        )?;
        let stack = Stack::new(
            self.spec.kind,
            &self.layers,
            &self.dropout,
            self.spec.hidden_size,
        );
        let args = StackInput {
            input,
            hidden0,
            cell0,
            lengths,
        };
        let out = forward_stack(stack, args);
        Ok((out.output, C::State::join(out.hidden, out.cell)))
    }

    /// Features per time step this layer reads.
    pub fn input_size(&self) -> usize {
        self.spec.input_size
    }

    /// Size of the hidden state.
    pub fn hidden_size(&self) -> usize {
        self.spec.hidden_size
    }

    /// Number of stacked layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Whether a reverse direction runs beside the forward one.
    pub fn is_bidirectional(&self) -> bool {
        self.spec.bidirectional
    }

    /// Features per time step of the output: `num_directions * hidden_size`.
    pub fn output_size(&self) -> usize {
        self.num_directions() * self.spec.hidden_size
    }

    /// 2 when bidirectional, else 1.
    pub fn num_directions(&self) -> usize {
        if self.spec.bidirectional {
            2
        } else {
            1
        }
    }

    /// Rows of a state tensor: `num_layers * num_directions`.
    fn state_rows(&self) -> usize {
        self.layers.len() * self.num_directions()
    }
}
