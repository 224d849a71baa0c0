//! # gatecast-data
//!
//! Real, messy time-series files to Burn batches, and the yardsticks to judge forecasts by.
//! Depends on no model code.
//!
//! ```text
//! CSV ──load_csv (validate, repair by policy)──▶ Series ──TimeSplit + Scaler (train rows only)──▶
//!     WindowDataset (look-back L, horizon H, stride S) ──ForecastBatcher──▶ ForecastBatch
//! ```
//!
//! - [`load_csv`] / [`load_panel`]: CSV with a time column; errors name file, line and column;
//!   policies for missing values, duplicate timestamps and gaps ([`CsvOptions`]).
//! - [`resample()`], [`calendar`] covariates, [`TimeSplit`] (ratios, dates, the ETT LTSF
//!   protocol), [`Scaler`] fitted on training rows only.
//! - [`WindowDataset`] (a Burn `Dataset` that indexes into shared series) and [`ForecastBatcher`]
//!   producing `inputs [B, L, F]`, `targets [B, H, T]`, `future [B, H, C]`.
//! - Variable-length [`sequence`] batches with `lengths [B]`; seeded [`synthetic`] tasks.
//! - [`metrics`] accumulated in f64 and naive [`Baseline`]s; [`probabilistic`] metrics
//!   (GluonTS's weighted quantile loss, coverage) and the seasonal naive with quantiles.
#![warn(missing_docs)]

mod baselines;
pub mod calendar;
mod error;
mod frequency;
mod load;
pub mod metrics;
pub mod probabilistic;
pub mod resample;
pub mod scaler;
#[cfg(feature = "burn")]
pub mod sequence;
mod series;
mod split;
pub mod synthetic;
#[cfg(feature = "burn")]
mod window;

pub use baselines::{is_counts, Baseline};
pub use calendar::{add_calendar, calendar_covariates, Calendar};
pub use error::DataError;
pub use frequency::{format_frequency, infer_frequency, parse_frequency, Frequency};
pub use load::{
    load_csv, load_csv_str, load_csv_with_repairs, load_panel, load_panel_with_repairs,
    load_static_columns, number_columns, time_columns, CsvOptions, DuplicatePolicy, FilledGap,
    GapPolicy, MissingPolicy, Repairs, StaticColumns,
};
pub use resample::{resample, Aggregation};
pub use scaler::{fit_panel, fit_values, Scaler, ScalerKind, ScalerScope};
pub use series::Series;
pub use split::TimeSplit;
#[cfg(feature = "burn")]
pub use window::{ForecastBatch, ForecastBatcher, Window, WindowConfig, WindowDataset};
