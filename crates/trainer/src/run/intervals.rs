//! Prediction intervals for single-series runs by split conformal prediction: at each horizon
//! step and target, the order statistics of the kept model's errors on recent windows
//! ([`gatecast_data::probabilistic::conformal_offsets`]) become the interval's ends, added to
//! the forecast. No distribution is assumed and the model is not retrained.
//!
//! Which windows: the latest `intervals.calibration` whose actual values are known at the
//! forecast's origin, as Darts' conformal models calibrate on the input's recent history. On
//! the test split each window is calibrated on the validation and earlier test windows known by
//! its origin (recalibrated once a horizon); `gatecast forecast` calibrates on the input's last
//! windows after the rows the model trained on (`data.toml`'s `trained_until`). A time
//! series' errors drift, and recent ones describe the next ones better than the validation
//! split's alone (README, "prediction intervals"); where they keep growing, adaptive conformal
//! inference (`intervals.adapt`) also moves each level after the windows it missed or held.
//! The validation split's own calibration is saved (`intervals.toml`) for inputs too short to
//! calibrate on.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::prepare::Prepared;
use super::report::count_targets;
use crate::artifacts::write_atomic;

/// The file in a run directory that holds a run's intervals.
pub(super) const FILE: &str = "intervals.toml";

/// Split-conformal intervals: per level, horizon step and target, the offsets from the
/// forecast (original units) between which the calibration windows' errors put the actual
/// value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervals {
    /// Central coverage levels, increasing (0.8 for an 80% interval).
    pub levels: Vec<f64>,
    /// How many windows the offsets come from.
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
    /// The intervals from the errors of some windows, each `[horizon · targets]`, actual less
    /// forecast, at the central `levels`. `None` for no window, or where a step of a target has
    /// no finite error (a forecast that is not a number gives no interval, and the run goes on
    /// without).
    pub(super) fn from_errors(
        errors: &[&[f32]],
        horizon: usize,
        targets: &[String],
        counts: Vec<bool>,
        levels: &[f64],
    ) -> Option<Self> {
        Self::from_errors_at(errors, horizon, targets, counts, levels, levels)
    }

    /// [`Intervals::from_errors`] with each level's ends read at `at[i]` instead (adaptive
    /// conformal inference), the intervals still named by `levels`.
    pub(super) fn from_errors_at(
        errors: &[&[f32]],
        horizon: usize,
        targets: &[String],
        counts: Vec<bool>,
        levels: &[f64],
        at: &[f64],
    ) -> Option<Self> {
        if errors.is_empty() {
            return None;
        }
        let cells = horizon * targets.len();
        let mut lower = vec![Vec::with_capacity(cells); levels.len()];
        let mut upper = vec![Vec::with_capacity(cells); levels.len()];
        let mut column = Vec::with_capacity(errors.len());
        for j in 0..cells {
            column.clear();
            column.extend(errors.iter().map(|e| e[j]));
            for (i, &level) in at.iter().enumerate() {
                let (lo, hi) = gatecast_data::probabilistic::conformal_offsets(&column, level)?;
                lower[i].push(lo);
                upper[i].push(hi);
            }
        }
        Some(Self {
            levels: levels.to_vec(),
            windows: errors.len(),
            horizon,
            targets: targets.to_vec(),
            counts,
            lower,
            upper,
        })
    }

    /// Which of a window's errors (`[horizon · targets]`, actual less forecast) lie outside
    /// level `i`'s offsets, as a share; `None` where the level has no ends.
    fn missed(&self, i: usize, errors: &[f32]) -> Option<f64> {
        if !self.has(i) || errors.is_empty() {
            return None;
        }
        let out = errors
            .iter()
            .zip(self.lower[i].iter().zip(&self.upper[i]))
            .filter(|(e, (lo, hi))| !(**lo <= **e && **e <= **hi))
            .count();
        Some(out as f64 / errors.len() as f64)
    }

    /// The ends of level `i`'s interval around `forecast` of `target` at `step` (0-based);
    /// `None` where the calibration had fewer windows than the level needs
    /// ([`needed_windows`]: 9 for 80%, 39 for 95%), whose ends would be the extreme errors seen
    /// and cover less than the level says (one window: an interval of width 0).
    pub fn bounds(
        &self,
        i: usize,
        step: usize,
        target: usize,
        forecast: f32,
    ) -> Option<(f32, f32)> {
        if !self.has(i) {
            return None;
        }
        let j = step * self.targets.len() + target;
        let (mut lo, mut hi) = (forecast + self.lower[i][j], forecast + self.upper[i][j]);
        if self.counts[target] {
            lo = lo.max(0.0);
            hi = hi.max(0.0);
        }
        Some((lo, hi))
    }

    /// Whether level `i` had the calibration windows it needs ([`needed_windows`]). Where
    /// adaptive conformal inference reads its ends at a higher level than the windows can
    /// give, they are the extreme errors seen, the widest the calibration allows.
    pub fn has(&self, i: usize) -> bool {
        self.windows >= needed_windows(self.levels[i])
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

/// Each window's errors, actual less forecast, `[horizon · targets]`, from `forecasts` of the
/// windows starting at `starts` (`[windows, horizon, targets]`, original units).
pub(super) fn window_errors(p: &Prepared, starts: &[usize], forecasts: &[f32]) -> Vec<Vec<f32>> {
    let (l, h, nt) = (p.window.lookback, p.window.horizon, p.targets.len());
    starts
        .iter()
        .enumerate()
        .map(|(w, &s)| {
            (0..h * nt)
                .map(|j| p.raw.row(s + l + j / nt)[p.targets[j % nt]] - forecasts[w * h * nt + j])
                .collect()
        })
        .collect()
}

/// Intervals for windows in time order, each from the latest `k` windows whose actual values
/// are all known at its origin (of `history`'s, then of the windows' own earlier ones),
/// recalibrated once a horizon has passed since the last calibration.
pub(super) struct Rolling {
    /// The calibrations, in time order.
    pub sets: Vec<Intervals>,
    /// Per window, its calibration in `sets` (`None` while no window was known).
    pub of_window: Vec<Option<usize>>,
    /// Each level's central level after every window's actual values were seen (with
    /// `adapt` > 0; the levels themselves otherwise): what a forecast after them reads at.
    pub levels_after: Vec<f64>,
}

impl Rolling {
    /// `history` and `windows`: (window starts, errors per window as [`window_errors`]), each in
    /// time order; the `windows` are the ones given intervals.
    ///
    /// With adaptive conformal inference of step size `gamma` (0: none), once a window's actual
    /// values are all known each level's miscoverage rate moves by `gamma` × (its nominal rate
    /// − the share of the window's values outside its interval), and the next calibration
    /// reads its ends at the moved level.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn calibrate(
        p: &Prepared,
        targets: &[String],
        history: (&[usize], &[Vec<f32>]),
        windows: (&[usize], &[Vec<f32>]),
        k: usize,
        levels: &[f64],
        gamma: f64,
    ) -> Self {
        let (l, h) = (p.window.lookback, p.window.horizon);
        // (the row after the window's last actual value, its errors), in that row's order even
        // where `history` and `windows` overlap (a benchmark scores the validation split)
        let mut known: Vec<(usize, &[f32])> = history
            .0
            .iter()
            .zip(history.1)
            .chain(windows.0.iter().zip(windows.1))
            .map(|(&s, e)| (s + l + h, e.as_slice()))
            .collect();
        known.sort_by_key(|w| w.0);
        let counts = count_targets(p);
        let (mut sets, mut of_window) = (Vec::new(), Vec::with_capacity(windows.0.len()));
        let mut last: Option<usize> = None;
        // Adaptive conformal inference: each level's miscoverage rate, and the next window
        // (of `windows`, in time order) whose actual values have not yet moved it.
        let mut alpha: Vec<f64> = levels.iter().map(|v| 1.0 - v).collect();
        let mut seen = 0;
        let mut adapt = |alpha: &mut Vec<f64>,
                         of_window: &[Option<usize>],
                         sets: &[Intervals],
                         until: usize| {
            while seen < of_window.len() && windows.0[seen] + l + h <= until {
                if let Some(c) = of_window[seen] {
                    for (i, a) in alpha.iter_mut().enumerate() {
                        if let Some(missed) = sets[c].missed(i, &windows.1[seen]) {
                            *a = (*a + gamma * ((1.0 - levels[i]) - missed)).clamp(1e-4, 0.9999);
                        }
                    }
                }
                seen += 1;
            }
        };
        for &s in windows.0 {
            let origin = s + l;
            if gamma > 0.0 {
                adapt(&mut alpha, &of_window, &sets, origin);
            }
            if last.is_none_or(|at| origin >= at + h) {
                let n = known.partition_point(|(end, _)| *end <= origin);
                let cal: Vec<&[f32]> = known[n.saturating_sub(k)..n].iter().map(|w| w.1).collect();
                let at: Vec<f64> = alpha.iter().map(|a| 1.0 - a).collect();
                if let Some(it) =
                    Intervals::from_errors_at(&cal, h, targets, counts.clone(), levels, &at)
                {
                    sets.push(it);
                    last = Some(origin);
                }
            }
            of_window.push(last.map(|_| sets.len() - 1));
        }
        if gamma > 0.0 {
            adapt(&mut alpha, &of_window, &sets, usize::MAX);
        }
        Self {
            sets,
            of_window,
            levels_after: alpha.iter().map(|a| 1.0 - a).collect(),
        }
    }

    /// The calibration of window `w`.
    pub(super) fn of(&self, w: usize) -> Option<&Intervals> {
        self.of_window[w].map(|i| &self.sets[i])
    }

    /// The most windows any calibration used (`k`, or fewer where fewer were known).
    pub(super) fn windows(&self) -> usize {
        self.sets.iter().map(|s| s.windows).max().unwrap_or(0)
    }
}

/// The fewest calibration windows `n` for which a split-conformal interval at `level` is
/// bounded by errors seen: `(n + 1)(1 − level)/2 ≥ 1`, 9 for 80% and 39 for 95%. With fewer,
/// its ends are the smallest and largest errors seen and it covers less than `level`.
pub fn needed_windows(level: f64) -> usize {
    ((2.0 / (1.0 - level).max(1e-9)) - 1.0 - 1e-9)
        .ceil()
        .max(1.0) as usize
}

/// How one level's intervals did on the test split.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalScore {
    /// The central level (0.8).
    pub level: f64,
    /// The share of actual values inside their interval, ends included (NaN where no value
    /// had one).
    pub coverage: f64,
    /// The mean width, in original units (averaged over targets as they are; NaN where no
    /// value had an interval).
    pub width: f64,
    /// The values that had an interval at this level: windows whose calibration had the
    /// windows the level needs ([`needed_windows`]).
    pub values: usize,
    /// The values forecast in all.
    pub of: usize,
}

impl IntervalScore {
    /// `80% covers 79.8% of the test values (mean width 854.1614)`, saying which values
    /// where not all had an interval; `what` names the values (`test values`).
    pub fn describe(&self, what: &str) -> String {
        let pct = 100.0 * self.level;
        if self.values == 0 {
            return format!(
                "{pct:.0}%: none (no calibration had the {} windows it needs)",
                needed_windows(self.level)
            );
        }
        let which = if self.values == self.of {
            format!("the {what}")
        } else {
            format!(
                "the {} of {} {what} whose calibration had the {} windows it needs",
                self.values,
                self.of,
                needed_windows(self.level)
            )
        };
        format!(
            "{pct:.0}% covers {:.1}% of {which} (mean width {:.4})",
            100.0 * self.coverage,
            self.width
        )
    }
}

/// Each level's coverage and mean width over `actual` and `forecasts`, both `[windows,
/// horizon, targets]` row-major, of the windows that have intervals: over every target, or
/// target `only`'s values alone.
pub(super) fn score(
    rolling: &Rolling,
    horizon: usize,
    targets: usize,
    actual: &[f32],
    forecasts: &[f32],
    only: Option<usize>,
) -> Vec<IntervalScore> {
    let per_window = horizon * targets;
    let levels = rolling.sets.first().map_or(&[][..], |s| &s.levels[..]);
    (0..levels.len())
        .map(|i| {
            let (mut inside, mut width, mut n) = (0usize, 0.0f64, 0usize);
            for (j, (&y, &f)) in actual.iter().zip(forecasts).enumerate() {
                let (step, k) = ((j % per_window) / targets, j % targets);
                if only.is_some_and(|o| o != k) {
                    continue;
                }
                let Some((lo, hi)) = rolling
                    .of(j / per_window)
                    .and_then(|it| it.bounds(i, step, k, f))
                else {
                    continue;
                };
                inside += usize::from(lo <= y && y <= hi);
                width += (hi - lo) as f64;
                n += 1;
            }
            let share = |x: f64| if n == 0 { f64::NAN } else { x / n as f64 };
            IntervalScore {
                level: levels[i],
                coverage: share(inside as f64),
                width: share(width),
                values: n,
                of: if only.is_some() {
                    actual.len() / targets
                } else {
                    actual.len()
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `needed_windows` is the first `n` at which `conformal_offsets`' lower rank is no longer
    /// clamped up to 1: with one window fewer, an interval's ends are the extreme errors.
    #[test]
    fn needed_windows_is_where_the_clamp_stops_binding() {
        for (level, want) in [(0.5, 3), (0.8, 9), (0.9, 19), (0.95, 39), (0.99, 199)] {
            assert_eq!(needed_windows(level), want, "{level}");
            let tail = (1.0 - level) / 2.0;
            let rank = |n: usize| ((n + 1) as f64 * tail + 1e-9).floor() as usize;
            assert_eq!(rank(want), 1, "{level}");
            assert_eq!(rank(want - 1), 0, "{level}");
        }
    }
}
