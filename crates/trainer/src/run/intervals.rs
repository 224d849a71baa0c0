//! Prediction intervals for single-series runs by split conformal prediction: the kept model
//! forecasts every validation window, and at each horizon step and target the order statistics
//! of its errors there ([`gatecast_data::probabilistic::conformal_offsets`]) become the
//! interval's ends, added to every later forecast. No distribution is assumed and the model is
//! not retrained; the price is that the validation split also chose the kept epoch, and that a
//! time series' errors are only roughly exchangeable, so the test table reports the coverage
//! the intervals actually reach.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::prepare::Prepared;
use super::report::{count_targets, forecasts_over};
use crate::artifacts::write_atomic;
use crate::model::ForecastModel;
use burn::tensor::Device;

/// The central levels every run's intervals are given at.
pub const LEVELS: [f64; 2] = [0.8, 0.95];

/// The file in a run directory that holds a run's intervals.
pub(super) const FILE: &str = "intervals.toml";

/// Split-conformal intervals: per level, horizon step and target, the offsets from the
/// forecast (original units) between which the validation split's errors put the actual value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervals {
    /// Central coverage levels, increasing (0.8 for an 80% interval).
    pub levels: Vec<f64>,
    /// How many validation windows the offsets come from.
    pub windows: usize,
    /// Steps forecast.
    pub horizon: usize,
    /// The targets, in the forecasts' order.
    pub targets: Vec<String>,
    /// Whether each target holds counts (its lower ends are floored at 0 as its forecasts are).
    pub counts: Vec<bool>,
    /// `[level][step · targets + target]`: added to the forecast for the lower end.
    pub lower: Vec<Vec<f32>>,
    /// `[level][step · targets + target]`: added to the forecast for the upper end.
    pub upper: Vec<Vec<f32>>,
}

impl Intervals {
    /// The intervals of `model` from its forecasts of every validation window of `p`;
    /// `targets` names `p.targets`. `None` when the validation split holds no window.
    pub(super) fn calibrate(
        model: &ForecastModel,
        p: &Prepared,
        targets: &[String],
        device: &Device,
    ) -> Result<Option<Self>> {
        let (starts, forecasts, _) = forecasts_over(model, p, p.split.valid.clone(), device)?;
        if starts.is_empty() {
            return Ok(None);
        }
        let (l, h, nt) = (p.window.lookback, p.window.horizon, p.targets.len());
        let mut lower = vec![Vec::with_capacity(h * nt); LEVELS.len()];
        let mut upper = vec![Vec::with_capacity(h * nt); LEVELS.len()];
        for step in 0..h {
            for (k, &col) in p.targets.iter().enumerate() {
                let errors: Vec<f32> = starts
                    .iter()
                    .enumerate()
                    .map(|(w, &s)| {
                        p.raw.row(s + l + step)[col] - forecasts[(w * h + step) * nt + k]
                    })
                    .collect();
                for (i, &level) in LEVELS.iter().enumerate() {
                    let (lo, hi) = gatecast_data::probabilistic::conformal_offsets(&errors, level)
                        .context("no finite validation error to calibrate intervals on")?;
                    lower[i].push(lo);
                    upper[i].push(hi);
                }
            }
        }
        Ok(Some(Self {
            levels: LEVELS.to_vec(),
            windows: starts.len(),
            horizon: h,
            targets: targets.to_vec(),
            counts: count_targets(p),
            lower,
            upper,
        }))
    }

    /// The ends of level `i`'s interval around `forecast` of `target` at `step` (0-based).
    pub fn bounds(&self, i: usize, step: usize, target: usize, forecast: f32) -> (f32, f32) {
        let j = step * self.targets.len() + target;
        let (mut lo, mut hi) = (forecast + self.lower[i][j], forecast + self.upper[i][j]);
        if self.counts[target] {
            lo = lo.max(0.0);
            hi = hi.max(0.0);
        }
        (lo, hi)
    }

    /// The column names of level `i`'s ends: `lo80`, `hi80`.
    pub fn columns(&self, i: usize) -> [String; 2] {
        level_columns(self.levels[i])
    }

    /// Writes `intervals.toml` into the run directory `dir`.
    pub(super) fn save(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(FILE), toml::to_string(self)?.as_bytes())
    }

    /// The intervals saved in run directory `dir`; `None` for a run written before runs had
    /// them. An error when the file is there but unreadable or does not fit the run.
    pub(super) fn load(dir: &Path, targets: &[String], horizon: usize) -> Result<Option<Self>> {
        let path = dir.join(FILE);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(None);
        };
        let it: Self =
            toml::from_str(&text).with_context(|| format!("{}: not intervals", path.display()))?;
        let cells = horizon * targets.len();
        let fits = it.targets == targets
            && it.horizon == horizon
            && it.counts.len() == targets.len()
            && it.lower.len() == it.levels.len()
            && it.upper.len() == it.levels.len()
            && it.lower.iter().chain(&it.upper).all(|v| v.len() == cells);
        if !fits {
            anyhow::bail!(
                "{}: does not fit the run's targets and horizon in config.toml (was it edited?)",
                path.display()
            );
        }
        Ok(Some(it))
    }
}

/// The column names of a level's ends: `lo80`, `hi80` for 0.8, `lo97.5` for 0.975.
pub(super) fn level_columns(level: f64) -> [String; 2] {
    let pct = (level * 1000.0).round() / 10.0;
    [format!("lo{pct}"), format!("hi{pct}")]
}

/// How one level's intervals did on the test split.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalScore {
    /// The central level (0.8).
    pub level: f64,
    /// The share of actual values inside their interval, ends included.
    pub coverage: f64,
    /// The mean width, in original units (averaged over targets as they are).
    pub width: f64,
}

/// Each level's coverage and mean width over `actual` and `forecasts`, both `[windows,
/// horizon, targets]` row-major.
pub(super) fn score(it: &Intervals, actual: &[f32], forecasts: &[f32]) -> Vec<IntervalScore> {
    let (h, nt) = (it.horizon, it.targets.len());
    (0..it.levels.len())
        .map(|i| {
            let (mut inside, mut width) = (0usize, 0.0f64);
            for (j, (&y, &f)) in actual.iter().zip(forecasts).enumerate() {
                let (step, k) = ((j / nt) % h, j % nt);
                let (lo, hi) = it.bounds(i, step, k, f);
                inside += usize::from(lo <= y && y <= hi);
                width += (hi - lo) as f64;
            }
            let n = actual.len().max(1) as f64;
            IntervalScore {
                level: it.levels[i],
                coverage: inside as f64 / n,
                width: width / n,
            }
        })
        .collect()
}
