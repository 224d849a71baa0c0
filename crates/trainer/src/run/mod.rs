//! A run, stage by stage.
//!
//! | file | stage |
//! |---|---|
//! | `prepare.rs` | the data as the model reads it: load, clean, resample, calendar, split, scale |
//! | `build.rs` | the model and the optimizer an experiment describes |
//! | `train.rs` | training on Burn's Learner, resuming, keeping the best epoch |
//! | `report.rs` | the test table beside the baselines, `forecast.csv`, the plots |
//! | `saved.rs` | the run directory: weights, experiment and scaler written and read back |
//! | `forecast.rs` | a finished run: `evaluate` again, `forecast` after new data |

mod build;
mod forecast;
mod prepare;
mod report;
mod saved;
mod train;

pub use build::build_model;
pub use forecast::{evaluate, forecast};
pub use prepare::{prepare, Prepared};
pub use report::{evaluate_model, TestRow, TestTable};
pub use saved::{last_checkpoint, load_model};
pub use train::{train, train_prepared, RunReport};
