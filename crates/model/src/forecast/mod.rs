//! Forecasting models built on the recurrent layers.
//!
//! - [`Forecaster`]: a recurrent encoder over the look-back window (Elman, GRU or LSTM, chosen by
//!   [`CellType`]) with a direct multi-horizon head or an autoregressive decoder, optionally fed
//!   known-future covariates: `[batch, lookback, inputs]` → `[batch, horizon, targets]`.
//! - [`SegRnn`]: the segment-recurrent model (Lin et al. 2023): a GRU over look-back segments and
//!   parallel decoding of the output segments, channel-independent, with optional reversible
//!   instance normalisation ([`SegNorm`]).

mod forecaster;
mod segrnn;

pub use forecaster::{CellType, Forecaster, ForecasterConfig};
pub use segrnn::{SegNorm, SegRnn, SegRnnConfig};
