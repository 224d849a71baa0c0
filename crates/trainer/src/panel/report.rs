//! The test horizon of every series: quantiles from the model's distribution, GluonTS's
//! weighted quantile loss and coverage, MASE and sMAPE of the median, beside the seasonal naive
//! with empirical quantiles; `forecast.csv` with quantile columns, `per_series.csv`, and
//! `forecast.png` with the 80% and 95% intervals.

use std::path::Path;

use anyhow::{Context, Result};
use gatecast_data::metrics::{mae, mase, smape};
use gatecast_data::probabilistic::{seasonal_naive_quantiles, QuantileScore};
use gatecast_model::forecast::{empirical_quantile, GlobalForecaster, Rng};

use super::calibrate::Calibration;
use super::data::{Origin, Panel, PanelSeries};
use super::fit::Fitted;
use crate::artifacts::write_csv;
use crate::config::Experiment;

/// One row of the test table.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelRow {
    /// `gatecast` or the baseline's name.
    pub name: String,
    /// GluonTS's `mean_wQuantileLoss` over the reported levels.
    pub wql: Option<f64>,
    /// Share of actual values inside the central 80% interval.
    pub coverage80: Option<f64>,
    /// Share inside the central 95% interval.
    pub coverage95: Option<f64>,
    /// Mean over series of the median's MASE (seasonal period `data.season`).
    pub mase: Option<f64>,
    /// sMAPE of the median over every value, in percent.
    pub smape: Option<f64>,
    /// MAE of the median over every value.
    pub mae: Option<f64>,
}

/// What a panel run measured.
#[derive(Debug, Clone)]
pub struct PanelReport {
    /// The model first, then the baseline.
    pub rows: Vec<PanelRow>,
    /// Series evaluated.
    pub series: usize,
    /// Epochs run, and the one kept.
    pub epochs: usize,
    /// The best epoch.
    pub best_epoch: usize,
    /// Mean seconds per epoch.
    pub epoch_seconds: f64,
    /// Wall seconds of the whole run.
    pub seconds: f64,
    /// How the model's intervals were scaled (`intervals.panel_conformal`), in a line.
    pub calibration: Option<String>,
}

impl PanelReport {
    /// The table as Markdown.
    pub fn markdown(&self) -> String {
        let f = |v: Option<f64>, d: usize| v.map_or("n/a".into(), |v| format!("{v:.d$}"));
        let which = if self.series == 1 {
            // One horizon of one series is a small sample; a backtest scores several.
            "the last horizon of 1 series (`gatecast backtest --folds K` scores K horizons)".into()
        } else {
            format!("the last horizon of {} series", self.series)
        };
        let mut s = format!(
            "test: {which}\n\n| model | mean wQL | 80% coverage | 95% coverage | MASE | sMAPE % | MAE |\n|---|---|---|---|---|---|---|\n"
        );
        for r in &self.rows {
            s += &format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                r.name,
                f(r.wql, 4),
                f(r.coverage80, 3),
                f(r.coverage95, 3),
                f(r.mase, 3),
                f(r.smape, 1),
                f(r.mae, 2)
            );
        }
        if let Some(c) = &self.calibration {
            s += &format!("\nmodel {c}\n");
        }
        s
    }
}

/// Levels the run reports, with the median and the ends of the 80% and 95% intervals always in.
pub(super) fn levels(exp: &Experiment) -> Vec<f64> {
    let mut l = exp.model.quantiles.clone();
    for q in [0.025, 0.1, 0.5, 0.9, 0.975] {
        if !l.iter().any(|x| (x - q).abs() < 1e-9) {
            l.push(q);
        }
    }
    l.sort_by(f64::total_cmp);
    l
}

fn at(levels: &[f64], q: f64) -> usize {
    levels
        .iter()
        .position(|x| (x - q).abs() < 1e-9)
        .expect("the level is reported")
}

/// Quantiles of a forecaster per series: `[series][level][step]`.
pub(super) type Quantiles = Vec<Vec<Vec<f32>>>;

/// Scores the quantile forecasts `qs` (`[level][step]`) of each series' `h` steps from `start`,
/// pooled over the series given.
pub(super) fn score<'a>(
    name: &str,
    series: impl IntoIterator<Item = (&'a PanelSeries, usize, &'a Vec<Vec<f32>>)>,
    h: usize,
    levels: &[f64],
    season: usize,
) -> PanelRow {
    let mut all = QuantileScore::new(levels);
    let (mut actual, mut median, mut mases) = (Vec::new(), Vec::new(), Vec::new());
    let m = at(levels, 0.5);
    for (s, start, qs) in series {
        let y = &s.y[start..start + h];
        all.add(y, qs);
        if let Some(v) = mase(y, &qs[m], &s.y[..start], season) {
            mases.push(v);
        }
        actual.extend_from_slice(y);
        median.extend_from_slice(&qs[m]);
    }
    PanelRow {
        name: name.into(),
        wql: all.mean_weighted(),
        coverage80: all.interval_coverage(0.1, 0.9),
        coverage95: all.interval_coverage(0.025, 0.975),
        mase: (!mases.is_empty()).then(|| mases.iter().sum::<f64>() / mases.len() as f64),
        smape: smape(&actual, &median),
        mae: mae(&actual, &median),
    }
}

/// How many of a model's quantiles fell below 0 on count data and were floored there.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Floored {
    /// Quantile values floored at 0.
    pub below: usize,
    /// Quantile values in all.
    pub total: usize,
}

impl Floored {
    /// Says on standard error how many values were floored, if any were.
    pub fn note(&self) {
        if self.below > 0 {
            crate::tell!(
                "note: {} of the model's {} quantile values ({:.1}%) were below 0 on count data (every training value a whole number of at least 0) and are floored at 0, as the seasonal naive's are",
                self.below,
                self.total,
                100.0 * self.below as f64 / self.total as f64
            );
        }
    }
}

/// The model's quantiles after each of `origins` (history up to the origin, each series' offset
/// and scale from its training rows only), in the file's units: `[origin][level][step]`. With
/// `floor` (count data) each value is at least 0, and `floored` counts those raised to it: a
/// continuous head, or a quantile head on series that are mostly zeros, puts mass below 0, and
/// a count below 0 is no forecast.
pub(super) fn model_quantiles(
    exp: &Experiment,
    panel: &Panel,
    model: &GlobalForecaster,
    levels: &[f64],
    origins: &[Origin],
    (floor, floored): (bool, &mut Floored),
) -> Result<Quantiles> {
    use burn::module::Module;
    let device = model
        .devices()
        .into_iter()
        .next()
        .context("the model has weights")?;
    let h = panel.horizon;
    let mut out = Vec::with_capacity(origins.len());
    for chunk in origins.chunks(256) {
        let b = panel.batch(chunk, &device);
        // [level][batch * horizon]
        let q = if model.is_autoregressive() {
            let mut rng = Rng::new(exp.train.seed);
            let paths = model.sample_paths(
                b.inputs,
                b.series,
                b.future,
                b.scale,
                exp.model.samples,
                |d| d.sample(&mut rng),
            )?;
            path_quantiles(&paths, levels)
        } else {
            model
                .forward(b.inputs, b.series, b.future, b.scale, None)?
                .to_host()
                .quantiles(levels, exp.model.samples, exp.train.seed)
        };
        // The model forecasts the series less its offset.
        for (i, o) in chunk.iter().enumerate() {
            let offset = panel.series[o.series].offset;
            out.push(
                q.iter()
                    .map(|lv| {
                        lv[i * h..(i + 1) * h]
                            .iter()
                            .map(|v| {
                                let v = *v as f32 + offset;
                                floored.total += 1;
                                if floor && v < 0.0 {
                                    floored.below += 1;
                                    0.0
                                } else {
                                    v
                                }
                            })
                            .collect()
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// Empirical quantiles over sample paths `[batch][paths][horizon]`: `[level][batch * horizon]`.
fn path_quantiles(paths: &[Vec<Vec<f64>>], levels: &[f64]) -> Vec<Vec<f64>> {
    let mut out = vec![Vec::new(); levels.len()];
    for window in paths {
        let h = window.first().map_or(0, Vec::len);
        for k in 0..h {
            let mut v: Vec<f64> = window.iter().map(|p| p[k]).collect();
            v.sort_by(f64::total_cmp);
            for (row, &q) in out.iter_mut().zip(levels) {
                row.push(empirical_quantile(&v, q));
            }
        }
    }
    out
}

/// The test table of `model` and the seasonal naive on every series' last horizon (or, with
/// `only`, one series'), and both forecasters' quantiles `[series][level][step]`; the model's
/// intervals scaled by `calibration` where given.
pub(super) fn test_table(
    exp: &Experiment,
    panel: &Panel,
    model: &GlobalForecaster,
    only: Option<usize>,
    calibration: Option<&Calibration>,
) -> Result<(Vec<PanelRow>, Quantiles, Quantiles)> {
    let levels = levels(exp);
    let season = exp.data.season;
    let h = panel.horizon;
    let origins = panel.origins_at(|s| s.test_start(h));
    let counts = panel.is_counts();
    let mut floored = Floored::default();
    let mut model_q =
        model_quantiles(exp, panel, model, &levels, &origins, (counts, &mut floored))?;
    floored.note();
    if let Some(c) = calibration {
        c.apply(&levels, &mut model_q, counts);
    }
    let naive: Quantiles = panel
        .series
        .iter()
        .map(|s| {
            seasonal_naive_quantiles(&s.y[..s.test_start(h)], season, h, &levels, counts)
                .expect("a series has more rows than a season")
        })
        .collect();
    let picked: Vec<usize> = (0..panel.series.len())
        .filter(|k| only.is_none_or(|o| o == *k))
        .collect();
    fn of<'a>(
        panel: &'a Panel,
        picked: &[usize],
        q: &'a Quantiles,
    ) -> Vec<(&'a PanelSeries, usize, &'a Vec<Vec<f32>>)> {
        let h = panel.horizon;
        picked
            .iter()
            .map(|&k| (&panel.series[k], panel.series[k].test_start(h), &q[k]))
            .collect()
    }
    let rows = vec![
        score("gatecast", of(panel, &picked, &model_q), h, &levels, season),
        score(
            &format!("seasonal_naive({season})"),
            of(panel, &picked, &naive),
            h,
            &levels,
            season,
        ),
    ];
    Ok((rows, model_q, naive))
}

/// Evaluates the fitted model and the seasonal naive on every series' last horizon, writes
/// `forecast.csv`, `per_series.csv`, `test_metrics.md` and `forecast.png`.
pub fn evaluate(
    exp: &Experiment,
    panel: &Panel,
    fitted: &Fitted,
    dir: &Path,
) -> Result<PanelReport> {
    let levels = levels(exp);
    let calibration = calibrate(exp, panel, &fitted.model, dir)?;
    let (rows, model, naive) = test_table(exp, panel, &fitted.model, None, calibration.as_ref())?;
    write_forecasts(dir, panel, &levels, &model)?;
    write_per_series(dir, panel, &levels, exp.data.season, &model, &naive)?;
    crate::plots::panel_intervals(&dir.join("forecast.png"), panel, &levels, &model, false)?;
    let n = fitted.epochs.len();
    let report = PanelReport {
        rows,
        series: panel.series.len(),
        epochs: n,
        best_epoch: fitted.best_epoch,
        epoch_seconds: fitted.epochs.iter().map(|e| e.2).sum::<f64>() / n.max(1) as f64,
        seconds: 0.0,
        calibration: calibration.as_ref().map(Calibration::describe),
    };
    crate::artifacts::write_atomic(&dir.join("test_metrics.md"), report.markdown().as_bytes())?;
    Ok(report)
}

/// With `intervals.panel_conformal`, the factors fitted on the validation horizons of `panel`
/// (kept in `dir`); without, none, and a previous run's factors in `dir` are removed.
pub(super) fn calibrate(
    exp: &Experiment,
    panel: &Panel,
    model: &GlobalForecaster,
    dir: &Path,
) -> Result<Option<Calibration>> {
    if !exp.intervals.panel_conformal {
        Calibration::clear(dir)?;
        return Ok(None);
    }
    let c = fit_calibration(exp, panel, model)?;
    c.save(dir)?;
    Ok(Some(c))
}

/// The factors of `model` on the validation horizons of `panel`.
pub(super) fn fit_calibration(
    exp: &Experiment,
    panel: &Panel,
    model: &GlobalForecaster,
) -> Result<Calibration> {
    let levels = levels(exp);
    let origins = panel.valid_origins();
    let mut floored = Floored::default();
    let counts = panel.is_counts();
    let q = model_quantiles(exp, panel, model, &levels, &origins, (counts, &mut floored))?;
    Calibration::fit(&levels, panel, &origins, &q).context(
        "intervals.panel_conformal: no validation value to fit the interval factors on (every interval of the validation horizons has zero width)",
    )
}

pub(super) fn label(q: f64) -> String {
    let p = q * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("p{}", p.round())
    } else {
        format!("p{p}")
    }
}

/// `forecast.csv`: series, timestamp, actual and one column per level, for each test step.
fn write_forecasts(dir: &Path, panel: &Panel, levels: &[f64], q: &Quantiles) -> Result<()> {
    let h = panel.horizon;
    let mut header = vec!["series".to_string(), "timestamp".into(), "actual".into()];
    header.extend(levels.iter().map(|l| label(*l)));
    let mut rows = Vec::new();
    for (s, qs) in panel.series.iter().zip(q) {
        let start = s.test_start(h);
        for k in 0..h {
            let mut r = vec![
                s.id.clone(),
                s.times[start + k].format("%Y-%m-%d %H:%M:%S").to_string(),
                s.y[start + k].to_string(),
            ];
            r.extend(qs.iter().map(|lv| format!("{:.4}", lv[k])));
            rows.push(r);
        }
    }
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    write_csv(&dir.join("forecast.csv"), &header, &rows)
}

/// `per_series.csv`: each series' wQL, coverage and median errors, the model's and the
/// seasonal naive's.
fn write_per_series(
    dir: &Path,
    panel: &Panel,
    levels: &[f64],
    season: usize,
    model: &Quantiles,
    naive: &Quantiles,
) -> Result<()> {
    let mut rows = Vec::new();
    let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.5}"));
    let h = panel.horizon;
    for (k, s) in panel.series.iter().enumerate() {
        let start = s.test_start(h);
        let a = score("gatecast", [(s, start, &model[k])], h, levels, season);
        let b = score("naive", [(s, start, &naive[k])], h, levels, season);
        rows.push(vec![
            s.id.clone(),
            f(a.wql),
            f(a.coverage80),
            f(a.mase),
            f(a.smape),
            f(b.wql),
            f(b.coverage80),
            f(b.mase),
        ]);
    }
    write_csv(
        &dir.join("per_series.csv"),
        &[
            "series",
            "wql",
            "coverage80",
            "mase",
            "smape",
            "naive_wql",
            "naive_coverage80",
            "naive_mase",
        ],
        &rows,
    )
}
