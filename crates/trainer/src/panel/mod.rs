//! Panel runs (`data.id_column`): one global probabilistic model over every series of a
//! long-format file, DeepAR-style; with a distribution head (`model.likelihood`) and no id
//! column, a file's target columns are the series (one, or several side by side).
//!
//! | file | stage |
//! |---|---|
//! | `data.rs` | the file as a panel: per-series hold-out, series and window scales, windows |
//! | `fit.rs` | the model, the training loop with early stopping on the validation horizon |
//! | `report.rs` | quantiles on the test horizon, GluonTS's metrics beside the seasonal naive, files and the interval plot |
//! | `backtest.rs` | rolling-origin folds: train before the first (or each) origin, score every fold |
//! | `statics.rs` | static columns (one value per series) as features: indicators per level, standardized reals |
//! | `dynamic.rs` | the file's known-future columns, standardized over the training rows |
//! | `saved.rs` | what a run keeps (series ids and scales, the data's fingerprint); `evaluate` and `forecast` of a finished run |

mod backtest;
mod data;
mod dynamic;
mod fit;
mod report;
mod saved;
mod statics;

pub use backtest::{backtest_panel, cut, Backtest, FoldScores, Folds, PeerRow};
pub use data::{Origin, Panel, PanelBatch, PanelSeries};
pub use fit::{fit, Fitted};
pub use report::{evaluate, PanelReport, PanelRow};
pub use saved::{evaluate_run, forecast_run, forecast_run_with, panel_run, SeriesIndex};
pub use statics::StaticEncoding;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::Device;

use crate::artifacts::write_atomic;
use crate::config::Experiment;

/// Trains a panel run into `dir` and evaluates it on each series' last horizon.
pub fn train_panel(
    exp: &Experiment,
    dir: &Path,
    device: &Device,
    quiet: bool,
) -> Result<PanelReport> {
    let start = Instant::now();
    let (panel, encodings) = data::load_with(exp, None)?;
    let exp = &data::with_season(exp, &panel);
    crate::sayln!("{}", data::describe(exp, &panel));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(&dir.join("config.toml"), exp.to_toml().as_bytes())?;
    saved::fingerprint(&exp.data.path, &panel)?.save(dir)?;
    SeriesIndex::of(&panel).save(dir)?;
    encodings.save(dir)?;
    let fitted = fit(exp, &panel, device, dir, quiet)?;
    let mut report = evaluate(exp, &panel, &fitted, dir)?;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}
