//! The last stage of a run: forecasts of every test window, the test table beside the
//! baselines, the intervals' coverage, `forecast.csv` and the plots.

use std::ops::Range;
use std::path::Path;

use anyhow::{Context, Result};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::tensor::Device;
use gatecast_data::{metrics, Baseline, ForecastBatcher, WindowDataset};

use super::intervals::{level_columns, score, window_errors, IntervalScore, Intervals, Rolling};
use super::prepare::Prepared;
use crate::artifacts::{write_atomic, write_csv};
use crate::config::{Choice, Experiment};
use crate::model::ForecastModel;
use crate::plots::TargetLines;
use crate::renderer::EpochRow;

/// What testing a trained model leaves.
pub(super) struct Tested {
    pub(super) table: TestTable,
    /// The first look-back row of every test window.
    pub(super) starts: Vec<usize>,
    /// `[windows, horizon, targets]`, original units.
    pub(super) forecasts: Vec<f32>,
    /// The intervals of the last test window (the latest calibration).
    pub(super) intervals: Option<Intervals>,
}

/// The model's forecasts of the test split and their intervals.
struct Forecasts {
    starts: Vec<usize>,
    forecasts: Vec<f32>,
    floored: usize,
    /// Calibrated once on the whole validation split (`intervals.toml`).
    validation: Option<Intervals>,
    /// Each test window's, from the latest windows known at its origin.
    rolling: Rolling,
}

impl Forecasts {
    /// One inference pass over the validation split and one over the test split.
    fn of(model: &ForecastModel, p: &Prepared, exp: &Experiment, device: &Device) -> Result<Self> {
        let (vs, vf, _) = forecasts_over(model, p, p.split.valid.clone(), device)?;
        let valid_errors = window_errors(p, &vs, &vf);
        let all: Vec<&[f32]> = valid_errors.iter().map(Vec::as_slice).collect();
        let targets = &exp.data.targets;
        let counts = count_targets(p);
        let levels = &exp.intervals.levels;
        let validation = Intervals::from_errors(&all, p.window.horizon, targets, counts, levels);
        let (starts, forecasts, floored) = forecasts_over(model, p, p.split.test.clone(), device)?;
        let test_errors = window_errors(p, &starts, &forecasts);
        let rolling = Rolling::calibrate(
            p,
            targets,
            (&vs, &valid_errors),
            (&starts, &test_errors),
            exp.intervals.calibration,
            levels,
            exp.intervals.adapt,
        );
        Ok(Self {
            starts,
            forecasts,
            floored,
            validation,
            rolling,
        })
    }

    fn table(&self, p: &Prepared, exp: &Experiment) -> TestTable {
        test_table(
            p,
            exp,
            &self.starts,
            &self.forecasts,
            self.floored,
            &self.rolling,
        )
    }

    fn tested(self, table: TestTable) -> Tested {
        let last = self.starts.len().checked_sub(1);
        Tested {
            table,
            intervals: last.and_then(|w| self.rolling.of(w)).cloned(),
            starts: self.starts,
            forecasts: self.forecasts,
        }
    }
}

/// One inference pass over the validation split gives the intervals (`intervals.toml`), one
/// over the test split feeds the table (`test_metrics.md`, `.csv`), `forecast.csv` and the
/// plots (`loss.png` from `epochs`, `forecast.png`).
pub(super) fn write_report(
    model: &ForecastModel,
    p: &Prepared,
    exp: &Experiment,
    dir: &Path,
    epochs: &[EpochRow],
    device: &Device,
) -> Result<Tested> {
    let f = Forecasts::of(model, p, exp, device)?;
    if let Some(it) = &f.validation {
        it.save(dir)?;
    }
    let table = f.table(p, exp);
    table.write(dir)?;
    let written = write_forecasts(
        &dir.join("forecast.csv"),
        p,
        exp,
        &f.starts,
        &f.forecasts,
        &f.rolling,
    )?;
    crate::plots::loss_curves(&dir.join("loss.png"), epochs, &exp.train.loss_name())?;
    let keep = (10 * exp.window.horizon).min(written[0].actual.len());
    let tail = |v: &[f64]| v[v.len() - keep..].to_vec();
    let tails: Vec<TargetLines> = written
        .iter()
        .map(|t| TargetLines {
            name: t.name.clone(),
            actual: tail(&t.actual),
            forecast: tail(&t.forecast),
            band: t.band.as_ref().map(|(lo, hi)| (tail(lo), tail(hi))),
        })
        .collect();
    crate::plots::forecast_vs_actual(
        &dir.join("forecast.png"),
        ": forecast vs actual, end of the test split",
        &band_name(exp.intervals.levels[0]),
        &tails,
        exp.window.horizon,
    )?;
    Ok(f.tested(table))
}

/// The plot's name of the band of central `level`: `80% interval`.
fn band_name(level: f64) -> String {
    format!("{}% interval", (level * 1000.0).round() / 10.0)
}

/// One row of the test table: a forecaster and its errors in original units.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRow {
    /// `model (lstm)`, `naive`, `seasonal_naive(24)`.
    pub name: String,
    /// Mean squared error.
    pub mse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Symmetric MAPE, percent.
    pub smape: f64,
    /// Mean absolute scaled error against the in-sample seasonal naive of the training split.
    pub mase: f64,
}

impl TestRow {
    /// The metrics as CSV cells: MSE, MAE, RMSE, sMAPE, MASE.
    fn cells(&self) -> [String; 5] {
        [self.mse, self.mae, self.rmse, self.smape, self.mase].map(|x| x.to_string())
    }
}

/// The test table.
#[derive(Debug, Clone, PartialEq)]
pub struct TestTable {
    /// Number of test windows.
    pub windows: usize,
    /// Model first, then baselines.
    pub rows: Vec<TestRow>,
    /// How many of the model's forecasts of count targets (see [`gatecast_data::is_counts`],
    /// over the training rows) were below 0 and are raised to 0 in `rows` and `forecast.csv`.
    pub floored: usize,
    /// The model's forecasts in all: windows × horizon × targets.
    pub values: usize,
    /// The model's split-conformal intervals on the test split, one per level (none when the
    /// validation split held no window to calibrate them on).
    pub intervals: Vec<IntervalScore>,
    /// How many windows the intervals were calibrated on (the latest known at each origin, up
    /// to `intervals.calibration`).
    pub calibration_windows: usize,
    /// The step size of the intervals' adaptive conformal inference (`intervals.adapt`; 0 for
    /// none).
    pub adapt: f64,
    /// With several targets, each one's own rows (the model first, then the baselines, as in
    /// `rows`, which pool the targets); empty with one target.
    pub per_target: Vec<TargetRows>,
}

/// One target's rows of a test table with several targets.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRows {
    /// The target column.
    pub target: String,
    /// Its errors: the model first, then the baselines.
    pub rows: Vec<TestRow>,
    /// The model's intervals on this target's values, one per level (as
    /// [`TestTable::intervals`], which pools the targets).
    pub intervals: Vec<IntervalScore>,
}

impl TestTable {
    /// The table as markdown.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "test split: {} windows, errors in original units",
            self.windows
        );
        if let Some(note) = floored_note(self.floored, self.values) {
            s += &format!(";\n{note}");
        }
        s += "\n\n| forecaster | MSE | MAE | RMSE | sMAPE % | MASE |\n|---|---|---|---|---|---|\n";
        for r in &self.rows {
            let mase = if r.mase.is_finite() {
                format!("{:.4}", r.mase)
            } else {
                "n/a".into()
            };
            s += &format!(
                "| {} | {:.4} | {:.4} | {:.4} | {:.2} | {mase} |\n",
                r.name, r.mse, r.mae, r.rmse, r.smape
            );
        }
        if let Some(first) = self.per_target.first() {
            let mut names: Vec<String> = first.rows.iter().map(|r| r.name.clone()).collect();
            names.extend(
                first
                    .intervals
                    .iter()
                    .map(|i| format!("{:.0}% covers", 100.0 * i.level)),
            );
            s += &format!(
                "\nMAE per target, and the model's interval coverage (per_target.csv has every metric):\n\n| target | {} |\n|---|{}\n",
                names.join(" | "),
                "---|".repeat(names.len())
            );
            for t in &self.per_target {
                let mut cells: Vec<String> =
                    t.rows.iter().map(|r| format!("{:.4}", r.mae)).collect();
                cells.extend(t.intervals.iter().map(|i| {
                    if i.coverage.is_finite() {
                        format!("{:.1}%", 100.0 * i.coverage)
                    } else {
                        "n/a".into()
                    }
                }));
                s += &format!("| {} | {} |\n", t.target, cells.join(" | "));
            }
        }
        if !self.intervals.is_empty() {
            let parts: Vec<String> = self
                .intervals
                .iter()
                .map(|i| i.describe("test values"))
                .collect();
            let adaptive = if self.adapt > 0.0 {
                format!(", adaptive with step {}", self.adapt)
            } else {
                String::new()
            };
            s += &format!(
                "\nmodel intervals (split conformal{adaptive}, each on the latest {} windows known at its origin): {}\n",
                self.calibration_windows,
                parts.join("; ")
            );
            if self.intervals.iter().any(|i| i.values < i.of) {
                let needs: Vec<String> = self
                    .intervals
                    .iter()
                    .map(|i| {
                        let n = super::intervals::needed_windows(i.level);
                        format!("{n} for {:.0}%", 100.0 * i.level)
                    })
                    .collect();
                s += &format!(
                    "note: a level's ends are left empty where fewer windows than it needs were known at the origin ({}): they would be the extreme errors seen, and cover less than the level says; a longer validation split (data.split, --split-fractions) gives more\n",
                    needs.join(", ")
                );
            }
        }
        s
    }

    fn write(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join("test_metrics.md"), self.markdown().as_bytes())?;
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut row = vec![r.name.clone()];
                row.extend(r.cells());
                row.extend(interval_cells(&self.intervals, i == 0));
                row
            })
            .collect();
        let mut header: Vec<String> = ["forecaster", "mse", "mae", "rmse", "smape", "mase"]
            .map(String::from)
            .to_vec();
        header.extend(interval_header(&self.intervals));
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        write_csv(&dir.join("test_metrics.csv"), &header, &rows)?;
        let per_target = dir.join("per_target.csv");
        if self.per_target.is_empty() {
            // An earlier run's in the same directory would describe other targets.
            if per_target.exists() {
                std::fs::remove_file(&per_target).with_context(|| {
                    format!("cannot remove {} of an earlier run", per_target.display())
                })?;
            }
            return Ok(());
        }
        let rows: Vec<Vec<String>> = self
            .per_target
            .iter()
            .flat_map(|t| {
                t.rows.iter().enumerate().map(|(i, r)| {
                    let mut row = vec![t.target.clone(), r.name.clone()];
                    row.extend(r.cells());
                    row.extend(interval_cells(&t.intervals, i == 0));
                    row
                })
            })
            .collect();
        let mut header: Vec<String> = [
            "target",
            "forecaster",
            "mse",
            "mae",
            "rmse",
            "smape",
            "mase",
        ]
        .map(String::from)
        .to_vec();
        header.extend(interval_header(&self.intervals));
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        write_csv(&per_target, &header, &rows)
    }
}

/// The `coverage<level>` and `width<level>` columns of a metrics CSV, one pair per level.
fn interval_header(intervals: &[IntervalScore]) -> Vec<String> {
    intervals
        .iter()
        .flat_map(|score| {
            let pct = (score.level * 1000.0).round() / 10.0;
            [format!("coverage{pct}"), format!("width{pct}")]
        })
        .collect()
}

/// A row's coverage and width cells: the model's (`model`, the first row) where it had
/// intervals, empty for the baselines, which have none.
fn interval_cells(intervals: &[IntervalScore], model: bool) -> Vec<String> {
    let cell = |x: f64| {
        if model && x.is_finite() {
            x.to_string()
        } else {
            String::new()
        }
    };
    intervals
        .iter()
        .flat_map(|score| [cell(score.coverage), cell(score.width)])
        .collect()
}

/// What a table says of forecasts raised to 0 on count data, if any were.
pub(super) fn floored_note(floored: usize, values: usize) -> Option<String> {
    (floored > 0).then(|| {
        format!(
            "{floored} of the model's {values} forecasts ({:.2}%) were below 0 on count data (every training value a whole number of at least 0) and are raised to 0",
            100.0 * floored as f64 / values.max(1) as f64
        )
    })
}

/// Per target, whether it holds counts over the training rows ([`gatecast_data::is_counts`]).
pub(super) fn count_targets(p: &Prepared) -> Vec<bool> {
    p.targets
        .iter()
        .map(|&col| gatecast_data::is_counts(p.split.train.clone().map(|r| p.raw.row(r)[col])))
        .collect()
}

/// Forecasts of every window in `rows` (a split) in original units: (window start rows,
/// `[windows, horizon, targets]` forecasts, how many were raised to 0). A count target's
/// forecasts are floored at 0, as a model of counts has no business forecasting fewer than none.
pub(super) fn forecasts_over(
    model: &ForecastModel,
    p: &Prepared,
    rows: Range<usize>,
    device: &Device,
) -> Result<(Vec<usize>, Vec<f32>, usize)> {
    let counts = count_targets(p);
    let mut floored = 0;
    let ds = WindowDataset::new(p.scaled.clone(), rows, p.window.clone())?;
    let batcher = ForecastBatcher::new(&p.window);
    let (h, nt) = (p.window.horizon, p.targets.len());
    let mut starts = Vec::with_capacity(ds.len());
    let mut out = Vec::with_capacity(ds.len() * h * nt);
    let model = model.valid();
    for first in (0..ds.len()).step_by(256) {
        let items: Vec<_> = (first..(first + 256).min(ds.len()))
            .map(|i| ds.get(i))
            .collect::<std::result::Result<_, _>>()?;
        starts.extend(items.iter().map(|w| w.start));
        let batch = batcher.batch(items, device);
        let pred = model.predict(batch.inputs, batch.future, batch.steps.as_deref());
        let mut v = pred
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        // Back to original units, target by target.
        for (k, &col) in p.targets.iter().enumerate() {
            let mut column: Vec<f32> = v.iter().skip(k).step_by(nt).copied().collect();
            p.scaler.inverse(col, &mut column);
            for (i, mut x) in column.into_iter().enumerate() {
                if counts[k] && x < 0.0 {
                    floored += 1;
                    x = 0.0;
                }
                v[i * nt + k] = x;
            }
        }
        out.extend(v);
    }
    Ok((starts, out, floored))
}

/// The model's forecasts of every test window and the test table, written nowhere.
pub(super) fn test(
    model: &ForecastModel,
    p: &Prepared,
    exp: &Experiment,
    device: &Device,
) -> Result<Tested> {
    let f = Forecasts::of(model, p, exp, device)?;
    let table = f.table(p, exp);
    Ok(f.tested(table))
}

/// Test metrics of the model beside the naive and seasonal-naive baselines, in original units.
pub fn evaluate_model(
    model: &ForecastModel,
    p: &Prepared,
    exp: &Experiment,
    device: &Device,
) -> Result<TestTable> {
    Ok(test(model, p, exp, device)?.table)
}

/// The test table from forecasts of every test window (original units).
fn test_table(
    p: &Prepared,
    exp: &Experiment,
    starts: &[usize],
    forecasts: &[f32],
    floored: usize,
    rolling: &Rolling,
) -> TestTable {
    let (l, h, nt) = (p.window.lookback, p.window.horizon, p.targets.len());
    let season = p.season;
    // Repeat-last, then seasonal naive for every period the look-back covers (a period of 1,
    // a yearly file's, is repeat-last again).
    let mut baselines = vec![Baseline::RepeatLast];
    for m in std::iter::once(season).chain(exp.data.baseline_seasons.iter().copied()) {
        if m > 1 && l >= m && !baselines.contains(&Baseline::SeasonalNaive(m)) {
            baselines.push(Baseline::SeasonalNaive(m));
        }
    }
    // (`prepare` says once per run why a season longer than the look-back has no row.)
    let mut actual = Vec::with_capacity(forecasts.len());
    let mut baseline_forecasts = vec![Vec::with_capacity(forecasts.len()); baselines.len()];
    for &s in starts {
        for step in 0..h {
            for &col in &p.targets {
                actual.push(p.raw.row(s + l + step)[col]);
            }
        }
        for (b, out) in baselines.iter().zip(baseline_forecasts.iter_mut()) {
            let per_target: Vec<Vec<f32>> = p
                .targets
                .iter()
                .map(|&col| {
                    let history: Vec<f32> = (s..s + l).map(|r| p.raw.row(r)[col]).collect();
                    b.forecast(&history, h)
                })
                .collect();
            for step in 0..h {
                out.extend(per_target.iter().map(|f| f[step]));
            }
        }
    }
    let histories: Vec<Vec<f32>> = p
        .targets
        .iter()
        .map(|&col| p.split.train.clone().map(|r| p.raw.row(r)[col]).collect())
        .collect();
    // Target `k`'s values of `values` (`[windows, horizon, targets]` row-major).
    let of = |values: &[f32], k: usize| -> Vec<f32> {
        values.iter().skip(k).step_by(nt).copied().collect()
    };
    // The errors of `f` on the targets `ks` (all of them, or one).
    let row = |name: String, f: &[f32], ks: &[usize]| -> TestRow {
        let one;
        let (a, g): (&[f32], &[f32]) = match ks {
            [k] if nt > 1 => {
                one = (of(&actual, *k), of(f, *k));
                (&one.0, &one.1)
            }
            _ => (&actual, f),
        };
        // MASE per target (its own scale), averaged over targets.
        // Undefined (NaN, shown as n/a) when any target's in-sample seasonal naive is exact.
        let mase = ks
            .iter()
            .map(|&k| {
                metrics::mase(&of(&actual, k), &of(f, k), &histories[k], season).unwrap_or(f64::NAN)
            })
            .sum::<f64>()
            / ks.len() as f64;
        TestRow {
            name,
            mse: metrics::mse(a, g).unwrap_or(f64::NAN),
            mae: metrics::mae(a, g).unwrap_or(f64::NAN),
            rmse: metrics::rmse(a, g).unwrap_or(f64::NAN),
            smape: metrics::smape(a, g).unwrap_or(f64::NAN),
            mase,
        }
    };
    let model_name = format!("model ({})", exp.model.cell.name());
    let rows_of = |ks: &[usize]| -> Vec<TestRow> {
        let mut rows = vec![row(model_name.clone(), forecasts, ks)];
        for (b, f) in baselines.iter().zip(&baseline_forecasts) {
            rows.push(row(b.name(), f, ks));
        }
        rows
    };
    let all: Vec<usize> = (0..nt).collect();
    let rows = rows_of(&all);
    let per_target = if nt > 1 {
        exp.data
            .targets
            .iter()
            .enumerate()
            .map(|(k, target)| TargetRows {
                target: target.clone(),
                rows: rows_of(&[k]),
                intervals: if rolling.sets.is_empty() {
                    Vec::new()
                } else {
                    score(rolling, h, nt, &actual, forecasts, Some(k))
                },
            })
            .collect()
    } else {
        Vec::new()
    };
    TestTable {
        windows: starts.len(),
        rows,
        floored,
        values: forecasts.len(),
        intervals: if rolling.sets.is_empty() {
            Vec::new()
        } else {
            score(rolling, h, nt, &actual, forecasts, None)
        },
        calibration_windows: rolling.windows(),
        adapt: exp.intervals.adapt,
        per_target,
    }
}

/// `forecast.csv`: for non-overlapping test windows, every horizon step's forecast beside the
/// actual value, in original units, and each level's interval (`lo80`, `hi80`, ...).
fn write_forecasts(
    path: &Path,
    p: &Prepared,
    exp: &Experiment,
    starts: &[usize],
    forecasts: &[f32],
    rolling: &Rolling,
) -> Result<Vec<TargetLines>> {
    let (l, h, nt) = (p.window.lookback, p.window.horizon, p.targets.len());
    let levels = if rolling.sets.is_empty() {
        0
    } else {
        exp.intervals.levels.len()
    };
    let mut rows = Vec::new();
    // What the plot draws of the first targets: actual, forecast, the first level's ends.
    let mut plotted: Vec<TargetLines> = exp
        .data
        .targets
        .iter()
        .take(crate::plots::MAX_PLOTTED_TARGETS)
        .map(|name| TargetLines {
            name: name.clone(),
            band: (levels > 0).then(|| (Vec::new(), Vec::new())),
            ..TargetLines::default()
        })
        .collect();
    for (w, &s) in starts.iter().enumerate().step_by(h) {
        for step in 0..h {
            let r = s + l + step;
            for (k, &col) in p.targets.iter().enumerate() {
                let (actual, forecast) = (p.raw.row(r)[col], forecasts[(w * h + step) * nt + k]);
                let mut row = vec![
                    p.raw.timestamps[s + l - 1].to_string(),
                    p.raw.timestamps[r].to_string(),
                    (step + 1).to_string(),
                    exp.data.targets[k].clone(),
                    actual.to_string(),
                    forecast.to_string(),
                ];
                for i in 0..levels {
                    // A window before any calibration (none known yet) has empty ends.
                    let Some(it) = rolling.of(w) else {
                        row.extend([String::new(), String::new()]);
                        if let (Some(t), 0) = (plotted.get_mut(k), i) {
                            let band = t.band.as_mut().expect("levels");
                            band.0.push(forecast as f64);
                            band.1.push(forecast as f64);
                        }
                        continue;
                    };
                    // A level calibrated on too few windows has empty ends, and no band.
                    let (lo, hi) = match it.bounds(i, step, k, forecast) {
                        Some((lo, hi)) => {
                            row.extend([lo.to_string(), hi.to_string()]);
                            (lo, hi)
                        }
                        None => {
                            row.extend([String::new(), String::new()]);
                            (forecast, forecast)
                        }
                    };
                    if let (Some(t), 0) = (plotted.get_mut(k), i) {
                        let band = t.band.as_mut().expect("intervals");
                        band.0.push(lo as f64);
                        band.1.push(hi as f64);
                    }
                }
                rows.push(row);
                if let Some(t) = plotted.get_mut(k) {
                    t.actual.push(actual as f64);
                    t.forecast.push(forecast as f64);
                }
            }
        }
    }
    let mut header: Vec<String> = ["origin", "time", "step", "target", "actual", "forecast"]
        .map(String::from)
        .to_vec();
    if levels > 0 {
        header.extend(exp.intervals.levels.iter().flat_map(|l| level_columns(*l)));
    }
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    write_csv(path, &header, &rows)?;
    Ok(plotted)
}
