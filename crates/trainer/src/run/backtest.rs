//! Rolling-origin backtests of a single-series run (point forecasts): `K` folds of one horizon
//! each at the end of the data. Each fold is an ordinary run whose split is given in rows
//! (`data.split_rows`): training and validation share the rows before the fold's origin in
//! `data.split`'s train : validation proportion, the scaler is fitted on the training rows, and
//! the one test window forecasts the fold's horizon from the look-back just before its origin.
//! Without refit one model (fold 1's run) forecasts every fold, read through its own scaler.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Result};
use burn::tensor::Device;
use gatecast_data::TimeSplit;

use super::intervals::level_columns;
use super::prepare::{load_noted, prepare_noted, Prepared};
use super::report::{test, TestRow, TestTable};
use super::saved::load_model;
use super::train::{train_prepared, TrainOptions};
use crate::artifacts::{write_atomic, write_csv};
use crate::config::Experiment;
use crate::panel::Folds;

/// One fold's test table (the model's row, then the baselines').
#[derive(Debug, Clone)]
pub struct SeriesFold {
    /// 1-based fold number.
    pub fold: usize,
    /// The first forecast timestamp.
    pub origin: String,
    /// Errors of this fold's horizon, original units.
    pub table: TestTable,
}

/// What a single-series backtest measured.
#[derive(Debug, Clone)]
pub struct SeriesBacktest {
    /// Per fold.
    pub folds: Vec<SeriesFold>,
    /// Models trained (1, or one per fold with refit).
    pub fits: usize,
    /// Wall seconds.
    pub seconds: f64,
}

impl SeriesBacktest {
    /// The per-fold and mean table as Markdown.
    pub fn markdown(&self) -> String {
        let f = |v: f64, d: usize| {
            if v.is_finite() {
                format!("{v:.d$}")
            } else {
                "n/a".into()
            }
        };
        let line = |fold: &str, origin: &str, r: &TestRow| {
            let origin = if origin.is_empty() {
                " ".to_string()
            } else {
                format!(" {origin} ")
            };
            format!(
                "| {fold} |{origin}| {} | {} | {} | {} | {} | {} |\n",
                r.name,
                f(r.mse, 4),
                f(r.mae, 4),
                f(r.rmse, 4),
                f(r.smape, 2),
                f(r.mase, 4)
            )
        };
        let mut s = format!(
            "backtest: {} folds, {} model(s) trained, errors in original units",
            self.folds.len(),
            self.fits
        );
        let floored = self.folds.iter().map(|f| f.table.floored).sum();
        let values = self.folds.iter().map(|f| f.table.values).sum();
        if let Some(note) = super::report::floored_note(floored, values) {
            s += &format!(";\n{note}");
        }
        s += "\n\n| fold | origin | forecaster | MSE | MAE | RMSE | sMAPE % | MASE |\n|---|---|---|---|---|---|---|---|\n";
        for fold in &self.folds {
            for r in &fold.table.rows {
                s += &line(&fold.fold.to_string(), &fold.origin, r);
            }
        }
        for r in self.mean() {
            s += &line("mean", "", &r);
        }
        // Every fold scores one window, so the folds' coverages average with equal weights,
        // over the folds that had the level's intervals.
        let levels = self.folds[0].table.intervals.len();
        if levels > 0 && self.folds.iter().all(|f| f.table.intervals.len() == levels) {
            let parts: Vec<String> = (0..levels)
                .map(|i| {
                    let scores: Vec<&super::IntervalScore> = self
                        .folds
                        .iter()
                        .map(|f| &f.table.intervals[i])
                        .filter(|x| x.values > 0)
                        .collect();
                    let n = scores.len() as f64;
                    let mean = |get: fn(&super::IntervalScore) -> f64| {
                        scores.iter().map(|x| get(x)).sum::<f64>() / n
                    };
                    let level = 100.0 * self.folds[0].table.intervals[i].level;
                    match scores.len() {
                        0 => format!(
                            "{level:.0}%: none (no fold's calibration had the windows it needs)"
                        ),
                        k => format!(
                            "{level:.0}% covers {:.1}% of the {} (mean width {:.4})",
                            100.0 * mean(|x| x.coverage),
                            if k == self.folds.len() {
                                "folds' values".to_string()
                            } else {
                                format!(
                                    "values of the {k} of {} folds with enough windows to calibrate on",
                                    self.folds.len()
                                )
                            },
                            mean(|x| x.width)
                        ),
                    }
                })
                .collect();
            s += &format!(
                "\nmodel intervals (split conformal, each fold's on the latest windows known at its origin): {}\n",
                parts.join("; ")
            );
        }
        s
    }

    /// Each forecaster's errors averaged over the folds where they are defined (MASE is not
    /// where the in-sample seasonal naive is exact).
    pub fn mean(&self) -> Vec<TestRow> {
        self.folds[0]
            .table
            .rows
            .iter()
            .enumerate()
            .map(|(i, first)| {
                let avg = |get: fn(&TestRow) -> f64| {
                    let v: Vec<f64> = self
                        .folds
                        .iter()
                        .map(|f| get(&f.table.rows[i]))
                        .filter(|v| v.is_finite())
                        .collect();
                    if v.is_empty() {
                        f64::NAN
                    } else {
                        v.iter().sum::<f64>() / v.len() as f64
                    }
                };
                TestRow {
                    name: first.name.clone(),
                    mse: avg(|r| r.mse),
                    mae: avg(|r| r.mae),
                    rmse: avg(|r| r.rmse),
                    smape: avg(|r| r.smape),
                    mase: avg(|r| r.mase),
                }
            })
            .collect()
    }
}

/// Fold `k`'s split of a series of `rows` rows, as `data.split_rows`: validation from the row
/// that divides the rows before the origin in `data.split`'s train : validation proportion,
/// test from the origin to the end of its horizon. An error when training or validation would
/// hold no complete window.
pub fn fold_rows(exp: &Experiment, rows: usize, folds: Folds, k: usize) -> Result<[usize; 3]> {
    let (l, h) = (exp.window.lookback, exp.window.horizon);
    let first = folds.rows_needed(l, h).saturating_sub(l + 2 * h);
    if rows < first + l + 2 * h {
        bail!(
            "{}: {rows} rows; {} folds {} steps apart need at least {} (window.lookback {l} + 2 x window.horizon {h} before the first origin, for one training and one validation window, then the folds)",
            exp.data.path,
            folds.count,
            folds.stride,
            first + l + 2 * h
        );
    }
    let origin = folds.origin(rows, h, k);
    let [a, b, _] = exp.data.split;
    let proportional = (origin as f64 * a / (a + b)).round() as usize;
    let valid = proportional.clamp(l + h, origin - h);
    Ok([valid, origin, origin + h])
}

/// Runs the backtest of `exp` (a single-series experiment) into `dir`:
/// `historical_forecasts.csv` (fold, target, timestamp, actual, forecast, each level's interval
/// ends), `backtest.md` (per
/// fold and mean, beside the baselines), `backtest.png` (the folds of the first target), and
/// the run of each model trained (`fold1/`, or `fold<k>/` for every fold with `refit`), whose
/// `data.split_rows` makes `gatecast evaluate` re-test that fold.
pub fn backtest_series(
    exp: &Experiment,
    folds: Folds,
    dir: &Path,
    device: &Device,
    quiet: bool,
) -> Result<SeriesBacktest> {
    let start = std::time::Instant::now();
    if folds.count == 0 || folds.stride == 0 {
        bail!("--folds and --stride must be at least 1");
    }
    if exp.data.split_rows.is_some() {
        bail!("data.split_rows: the backtest sets each fold's rows itself; leave it unset");
    }
    // The folds' preparation says what the loader repaired.
    let rows = load_noted(&exp.data, Path::new(&exp.data.path), false)?
        .series
        .rows();
    let splits: Vec<[usize; 3]> = (0..folds.count)
        .map(|k| fold_rows(exp, rows, folds, k))
        .collect::<Result<_>>()?;
    std::fs::create_dir_all(dir)?;
    write_atomic(&dir.join("config.toml"), exp.to_toml().as_bytes())?;
    let h = exp.window.horizon;
    let options = TrainOptions {
        quiet,
        ..TrainOptions::default()
    };
    let mut fits = 0;
    let mut trained: Option<(Prepared, Experiment)> = None;
    let mut scored = Vec::new();
    let mut csv = Vec::new();
    let mut plot_folds = Vec::new();
    for (k, &split_rows) in splits.iter().enumerate() {
        let mut fold_exp = exp.clone();
        fold_exp.data.split_rows = Some(split_rows);
        let fold_dir = dir.join(format!("fold{}", k + 1));
        let train_now = trained.is_none() || folds.refit;
        let p = match &trained {
            Some((first, _)) if !folds.refit => Prepared {
                // The model trained before fold 1 reads every later fold through its scaler.
                raw: first.raw.clone(),
                scaled: Arc::clone(&first.scaled),
                scaler: first.scaler.clone(),
                split: TimeSplit::by_rows(
                    rows,
                    split_rows[0],
                    split_rows[1],
                    split_rows[2],
                    exp.window.lookback,
                )?,
                window: first.window.clone(),
                targets: first.targets.clone(),
                season: first.season,
            },
            _ => prepare_noted(&fold_exp, k == 0)?,
        };
        let mut kept_norm = None;
        let (table, starts, forecasts, intervals) = if train_now {
            if !quiet {
                crate::sayln!(
                    "fold {}: training on the rows before {} (validation from {})",
                    k + 1,
                    p.raw.timestamps[split_rows[1]],
                    p.raw.timestamps[split_rows[0]]
                );
            }
            let report = train_prepared(
                &fold_exp,
                &p,
                &fold_dir,
                std::slice::from_ref(device),
                options,
            )?;
            fits += 1;
            kept_norm = report.norm_choice.iter().find(|c| c.kept).map(|c| c.norm);
            if kept_norm.is_some() && !quiet {
                crate::sayln!(
                    "fold {}: {}",
                    k + 1,
                    super::describe_norm_choice(&report.norm_choice, exp.train.monitor)
                );
            }
            (
                report.test,
                report.test_starts,
                report.test_forecasts,
                report.intervals,
            )
        } else {
            let (_, first_exp) = trained.as_ref().expect("trained before fold 1");
            let model = load_model(&dir.join("fold1"), first_exp, &p.window, device)?;
            let t = test(&model, &p, &fold_exp, device)?;
            (t.table, t.starts, t.forecasts, t.intervals)
        };
        if starts.len() != 1 {
            bail!(
                "fold {}: {} test windows, expected one",
                k + 1,
                starts.len()
            );
        }
        let origin = split_rows[1];
        let nt = p.targets.len();
        let mut line = Vec::with_capacity(h);
        for step in 0..h {
            let r = origin + step;
            for (j, &col) in p.targets.iter().enumerate() {
                let forecast = forecasts[step * nt + j];
                let mut row = vec![
                    (k + 1).to_string(),
                    exp.data.targets[j].clone(),
                    p.raw.timestamps[r].to_string(),
                    p.raw.row(r)[col].to_string(),
                    forecast.to_string(),
                ];
                // Each level's ends, empty where a fold had no validation window to calibrate
                // on, or fewer than the level needs.
                for i in 0..exp.intervals.levels.len() {
                    match intervals
                        .as_ref()
                        .and_then(|it| it.bounds(i, step, j, forecast))
                    {
                        Some((lo, hi)) => row.extend([lo.to_string(), hi.to_string()]),
                        None => row.extend([String::new(), String::new()]),
                    }
                }
                csv.push(row);
                if j == 0 {
                    line.push((r as f64, forecast as f64));
                }
            }
        }
        plot_folds.push(line);
        scored.push(SeriesFold {
            fold: k + 1,
            origin: p.raw.timestamps[origin].to_string(),
            table,
        });
        if trained.is_none() {
            // Later folds load fold 1's model, built as the normalisation it kept.
            let built = match kept_norm {
                Some(norm) => norm.apply(&fold_exp),
                None => fold_exp,
            };
            trained = Some((p, built));
        }
    }
    let mut header: Vec<String> = ["fold", "target", "timestamp", "actual", "forecast"]
        .map(String::from)
        .to_vec();
    header.extend(exp.intervals.levels.iter().flat_map(|l| level_columns(*l)));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    write_csv(&dir.join("historical_forecasts.csv"), &header, &csv)?;
    let (p, _) = trained.as_ref().expect("at least one fold");
    let from = splits[0][1].saturating_sub(2 * h);
    let to = splits[folds.count - 1][2];
    let col = p.targets[0];
    let actual: Vec<(f64, f64)> = (from..to)
        .map(|r| (r as f64, p.raw.row(r)[col] as f64))
        .collect();
    crate::plots::point_folds(
        &dir.join("backtest.png"),
        &format!(
            "{}: {} backtest folds of {h} steps",
            exp.data.targets[0], folds.count
        ),
        actual,
        plot_folds,
    )?;
    let report = SeriesBacktest {
        folds: scored,
        fits,
        seconds: start.elapsed().as_secs_f64(),
    };
    write_atomic(&dir.join("backtest.md"), report.markdown().as_bytes())?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_rows_by_hand() {
        let mut exp = Experiment::default();
        exp.window.lookback = 10;
        exp.window.horizon = 5;
        exp.data.split = [0.6, 0.2, 0.2];
        let folds = Folds {
            count: 3,
            stride: 5,
            refit: false,
        };
        // 100 rows: origins 85, 90, 95; validation from 3/4 of the rows before each.
        let rows: Vec<[usize; 3]> = (0..3)
            .map(|k| fold_rows(&exp, 100, folds, k).unwrap())
            .collect();
        assert_eq!(rows, [[64, 85, 90], [68, 90, 95], [71, 95, 100]]);
        // Too few rows before the origin for a validation window: validation shrinks to one.
        exp.data.split = [0.98, 0.01, 0.01];
        assert_eq!(fold_rows(&exp, 100, folds, 0).unwrap(), [80, 85, 90]);
        // Nor a training window: it grows to one.
        exp.data.split = [0.01, 0.98, 0.01];
        assert_eq!(fold_rows(&exp, 100, folds, 0).unwrap(), [15, 85, 90]);
        // 10 + 2 x 5 before the first origin, then 15 rows of folds.
        assert!(fold_rows(&exp, 35, folds, 0).is_ok());
        let err = fold_rows(&exp, 34, folds, 0).unwrap_err().to_string();
        assert!(
            err.contains("34 rows") && err.contains("at least 35"),
            "{err}"
        );
    }
}
