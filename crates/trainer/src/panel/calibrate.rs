//! Conformal scaling of a panel model's central intervals (`intervals.panel_conformal`).
//!
//! A likelihood head's intervals are as wide as the distribution it learned, which on a few
//! series is often too narrow (or too wide). For each central interval the run reports (each
//! pair of levels `q` and `1 − q`, e.g. 0.1 and 0.9 for 80%), one factor `c` is fitted on the
//! validation horizons: every validation value's score is how far the interval must be
//! stretched about the median to reach it, `(median − y) / (median − lower)` below the median
//! and `(y − median) / (upper − median)` above, and `c` is the `⌈(n + 1)(1 − 2q)⌉`-th smallest
//! of the `n` scores (split conformal prediction; with too few scores for that rank, the
//! largest). Every forecast's interval then becomes `median ± c · (its own half-widths)`, so it
//! keeps the model's shape over the horizon and across series and covers its level on the
//! validation values. Quantiles are put back in order at each step afterwards, and count data
//! floored at 0 again. Values whose interval side has zero width (a count model's interval
//! collapsed at 0) are left out of the fit: no factor can stretch them. A reported level whose
//! mirror `1 − q` is not reported (from `model.quantiles`) belongs to no central interval and is
//! kept as the model gave it, apart from the re-ordering.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::data::{Origin, Panel};
use super::report::Quantiles;

/// The file a run keeps its factors in.
pub const FILE: &str = "calibration.toml";

/// The fitted factors, one per central interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The lower level of each interval (`q` of `q`, `1 − q`), increasing.
    pub lower: Vec<f64>,
    /// The factor of each interval.
    pub factors: Vec<f64>,
    /// The validation values the factors were fitted on.
    pub values: usize,
}

/// The index of `q` among `levels`, if reported.
fn index(levels: &[f64], q: f64) -> Option<usize> {
    levels.iter().position(|x| (x - q).abs() < 1e-9)
}

/// Each central interval among `levels`: `(lower level, lower index, upper index)`.
fn pairs(levels: &[f64]) -> Vec<(f64, usize, usize)> {
    levels
        .iter()
        .enumerate()
        .filter(|(_, &q)| q < 0.5 - 1e-9)
        .filter_map(|(i, &q)| index(levels, 1.0 - q).map(|j| (q, i, j)))
        .collect()
}

impl Calibration {
    /// Fits the factors on the quantiles `quantiles[origin][level][step]` of the validation
    /// `origins` against the panel's values; `None` without a median or any usable value.
    pub fn fit(
        levels: &[f64],
        panel: &Panel,
        origins: &[Origin],
        quantiles: &Quantiles,
    ) -> Option<Self> {
        let m = index(levels, 0.5)?;
        let h = panel.horizon;
        let (mut lower, mut factors, mut values) = (Vec::new(), Vec::new(), 0);
        for (q, lo, hi) in pairs(levels) {
            let mut scores = Vec::new();
            for (o, qs) in origins.iter().zip(quantiles) {
                let y = &panel.series[o.series].y[o.origin..o.origin + h];
                for (k, &y) in y.iter().enumerate() {
                    let (med, a, b) = (qs[m][k] as f64, qs[lo][k] as f64, qs[hi][k] as f64);
                    let y = y as f64;
                    let (gap, width) = if y < med {
                        (med - y, med - a)
                    } else {
                        (y - med, b - med)
                    };
                    if gap == 0.0 {
                        scores.push(0.0);
                    } else if width > 0.0 {
                        scores.push(gap / width);
                    }
                }
            }
            if scores.is_empty() {
                return None;
            }
            scores.sort_by(f64::total_cmp);
            let n = scores.len();
            let rank = gatecast_data::probabilistic::conformal_rank(n, 1.0 - 2.0 * q);
            values = values.max(n);
            lower.push(q);
            factors.push(scores[rank - 1]);
        }
        (!lower.is_empty()).then_some(Calibration {
            lower,
            factors,
            values,
        })
    }

    /// Stretches each central interval of `quantiles[series][level][step]` about the median
    /// by its factor, puts every step's quantiles back in order and, with `floor`, raises
    /// values below 0 to 0.
    pub fn apply(&self, levels: &[f64], quantiles: &mut Quantiles, floor: bool) {
        let Some(m) = index(levels, 0.5) else {
            return;
        };
        let scaled: Vec<(usize, usize, f64)> = pairs(levels)
            .into_iter()
            .filter_map(|(q, lo, hi)| {
                let at = self.lower.iter().position(|x| (x - q).abs() < 1e-9)?;
                Some((lo, hi, self.factors[at]))
            })
            .collect();
        for qs in quantiles.iter_mut() {
            let h = qs[m].len();
            for k in 0..h {
                let med = qs[m][k];
                for &(lo, hi, c) in &scaled {
                    let c = c as f32;
                    qs[lo][k] = med - c * (med - qs[lo][k]);
                    qs[hi][k] = med + c * (qs[hi][k] - med);
                }
                let mut column: Vec<f32> = qs.iter().map(|l| l[k]).collect();
                column.sort_by(f32::total_cmp);
                for (l, v) in qs.iter_mut().zip(column) {
                    l[k] = if floor { v.max(0.0) } else { v };
                }
            }
        }
    }

    /// One line for a run's output: each interval's factor and what they were fitted on.
    pub fn describe(&self) -> String {
        let each: Vec<String> = self
            .lower
            .iter()
            .zip(&self.factors)
            .map(|(q, c)| format!("{}%: ×{c:.3}", ((1.0 - 2.0 * q) * 100.0).round()))
            .collect();
        format!(
            "intervals scaled about the median by factors fitted on {} validation values (split conformal; intervals.panel_conformal): {}",
            self.values,
            each.join(", ")
        )
    }

    /// Writes `calibration.toml` in `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = toml::to_string(self).context("cannot write the calibration")?;
        crate::artifacts::write_atomic(&dir.join(FILE), text.as_bytes())
    }

    /// Reads `calibration.toml` from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}: the run was configured with intervals.panel_conformal = true and keeps its interval factors there",
                path.display()
            )
        })?;
        let c: Calibration = toml::from_str(&text)
            .with_context(|| format!("{}: not a calibration", path.display()))?;
        if c.lower.len() != c.factors.len()
            || c.factors.iter().any(|f| !(f.is_finite() && *f >= 0.0))
        {
            bail!(
                "{}: each interval needs one finite factor of at least 0",
                path.display()
            );
        }
        Ok(c)
    }

    /// Removes a calibration a previous run left in `dir`.
    pub fn clear(dir: &Path) -> Result<()> {
        match std::fs::remove_file(dir.join(FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", dir.join(FILE).display()))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::data::PanelSeries;

    fn panel(y: Vec<f32>, horizon: usize) -> Panel {
        Panel {
            series: vec![PanelSeries {
                id: "a".into(),
                index: 0,
                times: Vec::new(),
                y,
                offset: 0.0,
                scale: 1.0,
                calendar: Vec::new(),
                valid: horizon,
            }],
            too_short: Vec::new(),
            calendar: Vec::new(),
            lookback: 1,
            horizon,
            window_scale: false,
        }
    }

    /// Ten values against the same interval [-1, 1] about 0: scores |y|. At 80% the factor
    /// is the ⌈11 · 0.8⌉ = 9th smallest score.
    #[test]
    fn the_factor_is_the_conformal_order_statistic_of_the_stretch_scores() {
        let y: Vec<f32> = vec![0.5, -3.0, 2.0, 0.0, -0.25, 4.0, 1.5, -1.0, 6.0, -2.5];
        let levels = [0.1, 0.5, 0.9];
        let p = panel(y.clone(), 10);
        let q: Quantiles = vec![vec![vec![-1.0; 10], vec![0.0; 10], vec![1.0; 10]]];
        let origins = [Origin {
            series: 0,
            origin: 0,
        }];
        let c = Calibration::fit(&levels, &p, &origins, &q).unwrap();
        let mut scores: Vec<f64> = y.iter().map(|v| v.abs() as f64).collect();
        scores.sort_by(f64::total_cmp);
        assert_eq!(c.lower, vec![0.1]);
        assert_eq!(c.factors, vec![scores[8]]);
        assert_eq!(c.values, 10);
        // Stretched by it, the interval covers 9 of the 10 values.
        let mut q2 = q.clone();
        c.apply(&levels, &mut q2, false);
        let inside = y
            .iter()
            .filter(|v| **v >= q2[0][0][0] && **v <= q2[0][2][0])
            .count();
        assert_eq!(inside, 9);
        // Asymmetric halves stretch each on its own side: [-1, 2] by 4 is [-4, 8].
        let mut q3: Quantiles = vec![vec![vec![-1.0], vec![0.0], vec![2.0]]];
        Calibration {
            lower: vec![0.1],
            factors: vec![4.0],
            values: 1,
        }
        .apply(&levels, &mut q3, false);
        assert_eq!(q3, vec![vec![vec![-4.0], vec![0.0], vec![8.0]]]);
    }

    /// Nested intervals stay in order when their factors would cross them, a count floor is
    /// kept, and zero-width sides are left out of the fit.
    #[test]
    fn quantiles_stay_ordered_floored_and_zero_widths_are_skipped() {
        let levels = [0.025, 0.1, 0.5, 0.9, 0.975];
        let c = Calibration {
            lower: vec![0.025, 0.1],
            factors: vec![1.0, 3.0],
            values: 1,
        };
        let mut q: Quantiles = vec![vec![vec![1.0], vec![2.0], vec![3.0], vec![4.0], vec![5.0]]];
        c.apply(&levels, &mut q, true);
        // 80% stretched to [0, 6] (floored from 0) now lies outside 95%'s [1, 5]: re-ordered.
        let column: Vec<f32> = q.iter().flat_map(|l| l.iter().map(|s| s[0])).collect();
        assert_eq!(column, vec![0.0, 1.0, 3.0, 5.0, 6.0]);
        // A count model's interval collapsed at 0: the positive value cannot be reached by any
        // stretch and is not scored; the zero is (score 0).
        let p = panel(vec![0.0, 3.0], 2);
        let q: Quantiles = vec![vec![vec![0.0, 0.0], vec![0.0, 0.0], vec![0.0, 0.0]]];
        let origins = [Origin {
            series: 0,
            origin: 0,
        }];
        let c = Calibration::fit(&[0.1, 0.5, 0.9], &p, &origins, &q).unwrap();
        assert_eq!((c.factors.clone(), c.values), (vec![0.0], 1));
    }

    #[test]
    fn the_factors_read_back_and_a_damaged_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("gatecast-calib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = Calibration {
            lower: vec![0.025, 0.1],
            factors: vec![1.25, 0.875],
            values: 120,
        };
        c.save(&dir).unwrap();
        assert_eq!(Calibration::load(&dir).unwrap(), c);
        std::fs::write(
            dir.join(FILE),
            "lower = [0.1]\nfactors = [-1.0]\nvalues = 3\n",
        )
        .unwrap();
        let e = format!("{:#}", Calibration::load(&dir).unwrap_err());
        assert!(
            e.contains("calibration.toml") && e.contains("factor"),
            "{e}"
        );
        Calibration::clear(&dir).unwrap();
        let e = format!("{:#}", Calibration::load(&dir).unwrap_err());
        assert!(e.contains("intervals.panel_conformal"), "{e}");
        Calibration::clear(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
