//! The recurrent state a stack takes and returns: the hidden state, or the LSTM's hidden and
//! cell states.

use std::fmt::Debug;

use burn::tensor::Tensor;

pub(crate) mod sealed {
    /// Implemented only by this crate's cells and states.
    pub trait Sealed {}
}

/// The recurrent state a stack takes and returns: `Tensor<3>` (the hidden state) or an
/// [`LstmState`] (hidden and cell), each tensor `[num_layers * num_directions, batch, hidden]`.
/// Implemented only by this crate.
pub trait RecurrentState: sealed::Sealed + Clone + Debug {
    /// The hidden tensor and, for the LSTM, the cell tensor.
    #[doc(hidden)]
    fn split(self) -> (Tensor<3>, Option<Tensor<3>>);

    /// The inverse of [`RecurrentState::split`].
    #[doc(hidden)]
    fn join(hidden: Tensor<3>, cell: Option<Tensor<3>>) -> Self;
}

impl sealed::Sealed for Tensor<3> {}
impl sealed::Sealed for LstmState {}

impl RecurrentState for Tensor<3> {
    fn split(self) -> (Tensor<3>, Option<Tensor<3>>) {
        (self, None)
    }
    fn join(hidden: Tensor<3>, _: Option<Tensor<3>>) -> Self {
        hidden
    }
}

impl RecurrentState for LstmState {
    fn split(self) -> (Tensor<3>, Option<Tensor<3>>) {
        (self.hidden, Some(self.cell))
    }
    fn join(hidden: Tensor<3>, cell: Option<Tensor<3>>) -> Self {
        LstmState::new(hidden, cell.expect("an LSTM stack returns a cell state"))
    }
}

/// Hidden and cell state of an [`crate::Lstm`], each `[num_layers * num_directions, batch, hidden]`.
///
/// Rows are ordered like PyTorch's `h_n`: layer 0 forward, layer 0 reverse, layer 1 forward, ...
#[derive(Debug, Clone)]
pub struct LstmState {
    /// Hidden state `h`, `[num_layers * num_directions, batch, hidden]`.
    pub hidden: Tensor<3>,
    /// Cell state `c`, `[num_layers * num_directions, batch, hidden]`.
    pub cell: Tensor<3>,
}

impl LstmState {
    /// Bundles a hidden and a cell state, each `[num_layers * num_directions, batch, hidden]`.
    pub fn new(hidden: Tensor<3>, cell: Tensor<3>) -> Self {
        Self { hidden, cell }
    }
}
