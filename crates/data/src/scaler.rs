//! Per-column scalers fitted on the training rows only, serializable so a model carries its own.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::series::Series;

/// How values are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalerKind {
    /// `(x − mean) / std` with the population std (ddof = 0, like scikit-learn's
    /// `StandardScaler`, which the LTSF papers use); a constant column gets std 1.
    #[default]
    Standard,
    /// `(x − min) / (max − min)` into `[0, 1]`; a constant column gets range 1.
    MinMax,
    /// No scaling.
    None,
}

/// For many series: one scaler per series, or one for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalerScope {
    /// Each series scaled by the statistics of its own training rows (the default: series of
    /// different magnitudes land on one scale).
    #[default]
    PerSeries,
    /// All series scaled by the statistics of all their training rows together.
    Global,
}

/// Fits one scaler per series (`PerSeries`) or the same global scaler for each (`Global`), on
/// each series' training rows only.
pub fn fit_panel(
    kind: ScalerKind,
    scope: ScalerScope,
    parts: &[(&Series, Range<usize>)],
) -> Vec<Scaler> {
    match scope {
        ScalerScope::PerSeries => parts
            .iter()
            .map(|(s, rows)| Scaler::fit(kind, s, rows.clone()))
            .collect(),
        ScalerScope::Global => vec![Scaler::fit_many(kind, parts); parts.len()],
    }
}

/// A fitted scaler: `scaled = (x − offset) / scale` per column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// The kind it was fitted as.
    pub kind: ScalerKind,
    /// Column names, in the order of `offset` and `scale`.
    pub columns: Vec<String>,
    /// Per column: the mean or the minimum (0 for none).
    pub offset: Vec<f64>,
    /// Per column: the std or the range (1 for none).
    pub scale: Vec<f64>,
}

impl Scaler {
    /// Fits on the rows `train` of `series` only (statistics accumulated in f64).
    pub fn fit(kind: ScalerKind, series: &Series, train: Range<usize>) -> Self {
        Self::fit_many(kind, &[(series, train)])
    }

    /// Fits one scaler over the training rows of several series (a global scaler).
    pub fn fit_many(kind: ScalerKind, parts: &[(&Series, Range<usize>)]) -> Self {
        let columns = parts
            .first()
            .map(|(s, _)| s.columns.clone())
            .unwrap_or_default();
        let w = columns.len();
        let (mut offset, mut scale) = (vec![0.0; w], vec![1.0; w]);
        match kind {
            ScalerKind::None => {}
            ScalerKind::Standard => {
                let (mut n, mut sum, mut sq) = (0usize, vec![0.0f64; w], vec![0.0f64; w]);
                for (s, rows) in parts {
                    for r in rows.clone() {
                        for (k, v) in s.row(r).iter().enumerate() {
                            sum[k] += *v as f64;
                        }
                    }
                    n += rows.len();
                }
                let mean: Vec<f64> = sum.iter().map(|s| s / n.max(1) as f64).collect();
                for (s, rows) in parts {
                    for r in rows.clone() {
                        for (k, v) in s.row(r).iter().enumerate() {
                            sq[k] += (*v as f64 - mean[k]).powi(2);
                        }
                    }
                }
                for k in 0..w {
                    let std = (sq[k] / n.max(1) as f64).sqrt();
                    offset[k] = mean[k];
                    scale[k] = if std > 0.0 { std } else { 1.0 };
                }
            }
            ScalerKind::MinMax => {
                let (mut lo, mut hi) = (vec![f64::INFINITY; w], vec![f64::NEG_INFINITY; w]);
                for (s, rows) in parts {
                    for r in rows.clone() {
                        for (k, v) in s.row(r).iter().enumerate() {
                            lo[k] = lo[k].min(*v as f64);
                            hi[k] = hi[k].max(*v as f64);
                        }
                    }
                }
                for k in 0..w {
                    if lo[k].is_finite() {
                        offset[k] = lo[k];
                        scale[k] = if hi[k] > lo[k] { hi[k] - lo[k] } else { 1.0 };
                    }
                }
            }
        }
        Self {
            kind,
            columns,
            offset,
            scale,
        }
    }

    /// A copy of `series` with every column scaled.
    pub fn transform(&self, series: &Series) -> Series {
        let w = series.width();
        assert_eq!(w, self.offset.len(), "scaler fitted on another column set");
        let mut out = series.clone();
        for (i, v) in out.values.iter_mut().enumerate() {
            let k = i % w;
            *v = ((*v as f64 - self.offset[k]) / self.scale[k]) as f32;
        }
        out
    }

    /// Back to original units, for values of column `column`.
    pub fn inverse(&self, column: usize, values: &mut [f32]) {
        for v in values {
            *v = (*v as f64 * self.scale[column] + self.offset[column]) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn series(values: Vec<f32>) -> Series {
        let t0 = NaiveDate::from_ymd_opt(2020, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let rows = values.len() / 2;
        let ts = (0..rows)
            .map(|i| t0 + chrono::TimeDelta::hours(i as i64))
            .collect();
        Series::new("s", ts, vec!["a".into(), "b".into()], values).unwrap()
    }

    #[test]
    fn fitted_on_train_rows_only() {
        // a: 1, 3 in train; 100 in test. b constant in train.
        let s = series(vec![1.0, 5.0, 3.0, 5.0, 100.0, -7.0]);
        let sc = Scaler::fit(ScalerKind::Standard, &s, 0..2);
        assert_eq!(sc.offset, vec![2.0, 5.0]);
        assert_eq!(
            sc.scale,
            vec![1.0, 1.0],
            "std of 1,3 is 1; constant column gets 1"
        );
        let t = sc.transform(&s);
        assert_eq!(t.values, vec![-1.0, 0.0, 1.0, 0.0, 98.0, -12.0]);
        let mut back = t.column(0);
        sc.inverse(0, &mut back);
        assert_eq!(back, vec![1.0, 3.0, 100.0]);

        let mm = Scaler::fit(ScalerKind::MinMax, &s, 0..2);
        assert_eq!(
            (mm.offset.clone(), mm.scale.clone()),
            (vec![1.0, 5.0], vec![2.0, 1.0])
        );
        let none = Scaler::fit(ScalerKind::None, &s, 0..3);
        assert_eq!(none.transform(&s).values, s.values);
    }

    #[test]
    fn per_series_or_global() {
        let a = series(vec![0.0, 0.0, 2.0, 2.0]);
        let b = series(vec![10.0, 10.0, 30.0, 30.0]);
        let per = fit_panel(
            ScalerKind::Standard,
            ScalerScope::PerSeries,
            &[(&a, 0..2), (&b, 0..2)],
        );
        assert_eq!((per[0].offset[0], per[0].scale[0]), (1.0, 1.0));
        assert_eq!((per[1].offset[0], per[1].scale[0]), (20.0, 10.0));
        let global = fit_panel(
            ScalerKind::Standard,
            ScalerScope::Global,
            &[(&a, 0..2), (&b, 0..2)],
        );
        // values 0, 2, 10, 30: mean 10.5, population std sqrt(((10.5² + 8.5² + 0.5² + 19.5²)/4)
        let std = ((10.5f64.powi(2) + 8.5f64.powi(2) + 0.25 + 19.5f64.powi(2)) / 4.0).sqrt();
        assert_eq!(global[0], global[1]);
        assert!(
            (global[0].offset[0] - 10.5).abs() < 1e-12 && (global[0].scale[0] - std).abs() < 1e-12
        );
    }

    #[test]
    fn round_trips_through_json() {
        let s = series(vec![1.0, 5.0, 3.0, 6.0]);
        let sc = Scaler::fit(ScalerKind::Standard, &s, 0..2);
        let text = serde_json::to_string(&sc).unwrap();
        assert!(text.contains("\"standard\""), "{text}");
        let back: Scaler = serde_json::from_str(&text).unwrap();
        assert_eq!(back, sc);
    }
}
