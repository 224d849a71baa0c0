//! # gatecast-model
//!
//! Elman RNN, GRU and LSTM layers for [Burn](https://burn.dev) with PyTorch's semantics and weight
//! layout, on every Burn backend (the crate enables none: your project picks one).
//!
//! - Stacked layers, dropout between layers (training only), bidirectional.
//! - Batch-first tensors: input `[batch, time, features]`, output
//!   `[batch, time, num_directions * hidden]`, states `[num_layers * num_directions, batch, hidden]`.
//! - Initial state in, final state out, for all three cells.
//! - Variable-length sequences through `try_forward(.., Some(&lengths))` with PyTorch's
//!   packed-sequence semantics.
//! - PyTorch state_dicts load unchanged ([`pytorch`]).
//!
//! ```no_run
//! use burn::tensor::{Device, Distribution, Tensor};
//! use gatecast_model::{LstmConfig, LstmState};
//!
//! let device = Device::default();
//! let lstm = LstmConfig::new(7, 64).with_num_layers(2).with_dropout(0.1).init(&device);
//! let x = Tensor::<3>::random([32, 96, 7], Distribution::Normal(0.0, 1.0), &device);
//! let (out, LstmState { hidden, cell }) = lstm.forward(x, None);
//! assert_eq!(out.dims(), [32, 96, 64]);
//! assert_eq!(hidden.dims(), [2, 32, 64]);
//! # let _ = cell;
//! ```
#![warn(missing_docs)]

/// Shape accessors every recurrent layer shares.
macro_rules! layer_accessors {
    ($layer:ty) => {
        impl $layer {
            /// Features per time step this layer reads.
            pub fn input_size(&self) -> usize {
                self.input_size
            }
            /// Size of the hidden state.
            pub fn hidden_size(&self) -> usize {
                self.hidden_size
            }
            /// Number of stacked layers.
            pub fn num_layers(&self) -> usize {
                self.layers.len()
            }
            /// Whether a reverse direction runs beside the forward one.
            pub fn is_bidirectional(&self) -> bool {
                self.bidirectional
            }
            /// Features per time step of the output: `num_directions * hidden_size`.
            pub fn output_size(&self) -> usize {
                self.num_directions() * self.hidden_size
            }
            /// 2 when bidirectional, else 1.
            pub fn num_directions(&self) -> usize {
                if self.bidirectional {
                    2
                } else {
                    1
                }
            }
            fn state_rows(&self) -> usize {
                self.layers.len() * self.num_directions()
            }
        }
    };
}

pub mod diagnostics;
mod error;
mod forecaster;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod fused;
mod gru;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod kernel;
mod lstm;
pub mod pytorch;
mod recurrence;
mod rnn;
mod segrnn;
mod weights;

pub use error::RecurrentError;
pub use forecaster::{CellType, Encoder, Forecaster, ForecasterConfig};
pub use gru::{Gru, GruConfig};
pub use lstm::{Lstm, LstmConfig, LstmState};
pub use rnn::{Nonlinearity, Rnn, RnnConfig};
pub use segrnn::{SegNorm, SegRnn, SegRnnConfig};
pub use weights::{DirectionWeights, RecurrentLayer};

/// Frees the scratch buffers the fused CPU path (flex, ndarray) keeps between calls.
///
/// To spare every training step from mapping (and the kernel from zeroing) its saved gates and
/// gradient buffers afresh, the layers keep returned buffers, up to the most they had in use at
/// once (256 MiB before then): a process holds its peak working set after the last step, as
/// PyTorch's GPU caching allocator does. Call this when training is over and the memory is
/// wanted elsewhere; the next call simply maps again. A no-op on other backends.
pub fn release_cached_buffers() {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    kernel::pool::release();
}
