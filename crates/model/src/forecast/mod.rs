//! Forecasting models built on the recurrent layers.
//!
//! - [`Forecaster`]: a recurrent encoder over the look-back window (Elman, GRU or LSTM, chosen by
//!   [`CellType`]) with a direct multi-horizon head or an autoregressive decoder, optionally fed
//!   known-future covariates: `[batch, lookback, inputs]` → `[batch, horizon, targets]`.
//! - [`SegRnn`]: the segment-recurrent model (Lin et al. 2023): a GRU over look-back segments and
//!   parallel decoding of the output segments, channel-independent, with optional reversible
//!   instance normalisation ([`SegNorm`]); its cell a GRU or xLSTM's sLSTM ([`SLstm`]).
//! - [`GlobalForecaster`]: one model over many series (DeepAR-class): a series-id embedding, a
//!   recurrent encoder and a distribution head for every horizon step, in each series' units.
//! - [`Likelihood`]: distribution heads (Gaussian, Student-t, negative binomial, quantiles), their
//!   losses, and on the host ([`HostDistribution`]) seeded draws and quantiles.

mod forecaster;
mod global;
mod likelihood;
mod sampling;
mod segrnn;
mod slstm;

pub use forecaster::{CellType, Forecaster, ForecasterConfig};
pub use global::{GlobalForecaster, GlobalForecasterConfig};
pub use likelihood::{lgamma, pinball, Likelihood, Predicted, DEFAULT_QUANTILES};
pub use sampling::{empirical_quantile, normal_quantile, HostDistribution, Rng};
pub use segrnn::{SegCell, SegNorm, SegRnn, SegRnnConfig};
pub use slstm::{SLstm, SLstmConfig, SLstmState};
