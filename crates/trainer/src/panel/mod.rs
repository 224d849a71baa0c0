//! Panel runs (`data.id_column`): one global probabilistic model over every series of a
//! long-format file, DeepAR-style; with a distribution head (`model.likelihood`) and no id
//! column, a file's target columns are the series (one, or several side by side).
//!
//! | file | stage |
//! |---|---|
//! | `data.rs` | the file as a panel: per-series hold-out, series and window scales, windows |
//! | `fit.rs` | the model, the training loop with early stopping on the validation horizon |
//! | `checkpoint.rs` | the loop's state after every epoch (`checkpoint/panel-N/`), written whole, for `--resume` |
//! | `report.rs` | quantiles on the test horizon, GluonTS's metrics beside the seasonal naive, files and the interval plot |
//! | `calibrate.rs` | `intervals.panel_conformal`: each central interval scaled about the median to cover its level on the validation horizons |
//! | `backtest.rs` | rolling-origin folds: train before the first (or each) origin, score every fold |
//! | `statics.rs` | static columns (one value per series) as features: indicators per level, standardized reals |
//! | `dynamic.rs` | the file's known-future columns, standardized over the training rows |
//! | `saved.rs` | what a run keeps (series ids and scales, the data's fingerprint); `evaluate` and `forecast` of a finished run |

mod backtest;
mod calibrate;
mod checkpoint;
mod data;
mod dynamic;
mod fit;
mod report;
mod saved;
mod statics;

pub use backtest::{backtest_panel, cut, Backtest, FoldScores, Folds, PeerRow};
pub use calibrate::Calibration;
pub use data::{Origin, Panel, PanelBatch, PanelSeries};
pub use fit::{fit, FitOptions, Fitted};
pub use report::{evaluate, PanelReport, PanelRow};
pub use saved::{evaluate_run, forecast_run, forecast_run_with, panel_run, SeriesIndex};
pub use statics::StaticEncoding;

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;

use crate::artifacts::write_atomic;
use crate::config::Experiment;
use crate::run::saved::check_resumable;
use crate::run::DataFingerprint;
use crate::run::TrainOptions;

/// Trains a panel run into `dir` and evaluates it on each series' last horizon.
pub fn train_panel(
    exp: &Experiment,
    dir: &Path,
    device: &Device,
    quiet: bool,
) -> Result<PanelReport> {
    let options = TrainOptions {
        quiet,
        ..TrainOptions::default()
    };
    train_panel_with(exp, dir, device, options)
}

/// [`train_panel`] with every option: with `options.resume`, continues the run in `dir` from
/// its newest intact checkpoint (`allow_changed_data` as for a single-series run).
pub fn train_panel_with(
    exp: &Experiment,
    dir: &Path,
    device: &Device,
    options: TrainOptions,
) -> Result<PanelReport> {
    let start = Instant::now();
    let (panel, encodings) = data::load_with(exp, None)?;
    let exp = &data::with_season(exp, &panel);
    crate::sayln!("{}", data::describe(exp, &panel));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let fingerprint = saved::fingerprint(&exp.data.path, &panel)?;
    let series = SeriesIndex::of(&panel);
    if options.resume {
        checkpoint::require_any(dir)?;
        check_resumable(exp, dir)?;
        DataFingerprint::check(dir, &fingerprint, options.allow_changed_data, "--resume")?;
        // The series embedding has a row per series, in this order.
        let saved = SeriesIndex::load(dir)?;
        if saved.ids() != series.ids() {
            bail!(
                "--resume: {}: the series differ from the {} the run in {} trained on (series.csv); a resumed model has an embedding row for each of those, in order",
                exp.data.path,
                saved.ids().len(),
                dir.display()
            );
        }
    }
    write_atomic(&dir.join("config.toml"), exp.to_toml().as_bytes())?;
    fingerprint.save(dir)?;
    series.save(dir)?;
    encodings.save(dir)?;
    let fit_options = FitOptions {
        quiet: options.quiet,
        checkpoints: true,
        resume: options.resume,
    };
    let fitted = fit(exp, &panel, device, dir, fit_options)?;
    let mut report = evaluate(exp, &panel, &fitted, dir)?;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}
