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
//! - Forecasting models on top of them in [`forecast`]; gradient-flow measurements in
//!   [`diagnostics`].
//!
//! On the CPU backends (flex, ndarray) a stack runs as one fused whole-sequence op per layer and
//! direction with its own backward; on other backends as a loop of Burn tensor ops per step.
//! Both compute the same function; [`set_fused`] and [`set_avx512`] choose (for comparisons).
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
#![deny(unsafe_op_in_unsafe_fn)]

pub mod diagnostics;
mod error;
pub mod forecast;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod fused_cpu;
#[cfg(feature = "wgpu")]
mod fused_gpu;
#[cfg(any(feature = "flex", feature = "ndarray", feature = "wgpu"))]
mod fused_stack;
#[cfg(all(test, any(feature = "flex", feature = "ndarray", feature = "wgpu")))]
mod fused_testing;
mod gru;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod kernel;
mod layer;
mod lstm;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod pool;
pub mod pytorch;
mod recurrence;
mod rnn;
mod stack;
mod state;
mod step_loop;
mod switches;
mod weights;

pub use error::RecurrentError;
pub use gru::{Gru, GruConfig};
pub use layer::{Cell, ElmanCell, GruCell, LstmCell, Recurrent};
pub use lstm::{Lstm, LstmConfig};
pub use rnn::{Nonlinearity, Rnn, RnnConfig};
pub use state::{LstmState, RecurrentState};
pub use switches::{fused_enabled, set_avx512, set_fused};
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
    pool::release();
}

/// Whether the fused CPU op runs its AVX-512 kernels: allowed by [`set_avx512`] (or
/// `GATECAST_AVX512`) and supported by this CPU (AVX-512F, VL, AVX2 and FMA). Always `false` in
/// builds without a CPU backend (flex, ndarray) and off x86-64.
pub fn avx512_active() -> bool {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    {
        kernel::cpu::avx512()
    }
    #[cfg(not(any(feature = "flex", feature = "ndarray")))]
    {
        false
    }
}
