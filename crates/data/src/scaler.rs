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
    /// `x / mean(|x|)`: DeepAR's scale, no offset, so counts stay non-negative; a column whose
    /// training values are all 0 gets 1.
    MeanAbs,
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

/// `(offset, scale)` of `kind` fitted on one column's training values (statistics in f64): the
/// mean and population std, the minimum and range, 0 and the mean absolute value, or 0 and 1.
/// A scale that would be 0 (a constant column, or no values) is 1.
pub fn fit_values(kind: ScalerKind, values: impl Iterator<Item = f32> + Clone) -> (f64, f64) {
    let positive = |s: f64| if s > 0.0 { s } else { 1.0 };
    match kind {
        ScalerKind::None => (0.0, 1.0),
        ScalerKind::Standard => {
            let (n, sum) = values
                .clone()
                .fold((0usize, 0.0f64), |(n, s), v| (n + 1, s + v as f64));
            let mean = sum / n.max(1) as f64;
            let sq: f64 = values.map(|v| (v as f64 - mean).powi(2)).sum();
            (mean, positive((sq / n.max(1) as f64).sqrt()))
        }
        ScalerKind::MinMax => {
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v as f64), hi.max(v as f64))
            });
            if lo.is_finite() {
                (lo, positive(hi - lo))
            } else {
                (0.0, 1.0)
            }
        }
        ScalerKind::MeanAbs => {
            let (n, sum) = values.fold((0usize, 0.0f64), |(n, s), v| (n + 1, s + (v as f64).abs()));
            (0.0, positive(sum / n.max(1) as f64))
        }
    }
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
        for k in 0..w {
            let values = parts
                .iter()
                .flat_map(|(s, rows)| rows.clone().map(move |r| s.row(r)[k]));
            (offset[k], scale[k]) = fit_values(kind, values);
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
        let ma = Scaler::fit(ScalerKind::MeanAbs, &s, 0..3);
        assert_eq!(ma.offset, vec![0.0, 0.0]);
        assert_eq!(
            ma.scale,
            vec![104.0 / 3.0, 17.0 / 3.0],
            "mean |x| of 1,3,100 and 5,5,-7"
        );
        let zeros = series(vec![0.0, 1.0, 0.0, 2.0]);
        assert_eq!(Scaler::fit(ScalerKind::MeanAbs, &zeros, 0..2).scale[0], 1.0);
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
