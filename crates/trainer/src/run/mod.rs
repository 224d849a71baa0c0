//! A run, stage by stage.
//!
//! | file | stage |
//! |---|---|
//! | `prepare.rs` | the data as the model reads it: load, clean, resample, calendar, split, scale |
//! | `budget.rs` | what a configuration needs, checked before anything is allocated |
//! | `build.rs` | the model and the optimizer an experiment describes |
//! | `train.rs` | training on Burn's Learner, resuming, keeping the best epoch |
//! | `choose.rs` | `model.auto_norm`: a run per window normalisation, the best on validation kept |
//! | `report.rs` | the test table beside the baselines, `forecast.csv`, the plots |
//! | `intervals.rs` | prediction intervals from the latest windows' errors (split conformal) |
//! | `saved.rs` | the run directory: weights, experiment and scaler written and read back |
//! | `fingerprint.rs` | what the data was at training (rows, span, step), so `evaluate`, `--resume` and `forecast` see changes |
//! | `forecast.rs` | a finished run: `evaluate` again, `forecast` after new data (rolled out past the horizon) |
//! | `backtest.rs` | rolling-origin folds, each a run split by rows, scored beside the baselines |

mod backtest;
pub(crate) mod budget;
pub(crate) mod build;
mod choose;
mod fingerprint;
mod forecast;
mod intervals;
pub(crate) mod prepare;
mod report;
pub(crate) mod saved;
mod train;

pub use backtest::{backtest_series, fold_rows, SeriesBacktest, SeriesFold};
pub use budget::Estimate;
pub use build::build_model;
pub use choose::{describe as describe_norm_choice, Norm, NormCandidate};
pub use fingerprint::DataFingerprint;
pub use forecast::{
    evaluate, evaluate_with, forecast, forecast_options, forecast_with, ForecastOptions,
};
pub use intervals::{needed_windows, IntervalScore, Intervals};
pub use prepare::{file_step, prepare, Prepared};
pub use report::{evaluate_model, TargetRows, TestRow, TestTable};
pub use saved::{last_checkpoint, load_model, read_config};
pub use train::{train, train_prepared, train_with, RunReport, TrainOptions};
