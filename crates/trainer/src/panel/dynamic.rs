//! A panel's known-future columns from the file (`data.future_covariates`): each standardized
//! by its mean and standard deviation over the training rows of every series, so that a price
//! in cents and a 0/1 promotion flag reach the network on one scale (GluonTS leaves this to
//! the user). Fitted once, on the rows a run trains on, and saved (`known_future.toml`), so
//! `evaluate` and `forecast` read the columns exactly as training did.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::artifacts::{load_toml, save_toml};

const FILE: &str = "known_future.toml";

/// Per known-future column of the file: `(x - mean) / std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownFutureScale {
    /// The columns, in `data.future_covariates`' order.
    pub columns: Vec<String>,
    /// Mean over the training rows of every series.
    pub mean: Vec<f64>,
    /// Population standard deviation over the same rows (1 where they all agree).
    pub std: Vec<f64>,
}

impl KnownFutureScale {
    /// Fitted on `rows`: per series, its values `[rows, columns]` row-major and how many of
    /// its first rows are training rows.
    pub fn fit(columns: &[String], rows: &[(&[f32], usize)]) -> Self {
        let f = columns.len();
        let (mut sum, mut sq, mut n) = (vec![0.0f64; f], vec![0.0f64; f], 0usize);
        for &(values, train) in rows {
            for row in values.chunks(f.max(1)).take(train) {
                for (j, &v) in row.iter().enumerate() {
                    sum[j] += f64::from(v);
                    sq[j] += f64::from(v) * f64::from(v);
                }
                n += 1;
            }
        }
        let n = n.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| {
                let sd = (q / n - m * m).max(0.0).sqrt();
                if sd > 1e-12 * m.abs().max(1.0) {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Self {
            columns: columns.to_vec(),
            mean,
            std,
        }
    }

    /// `values` (`[rows, columns]` row-major) standardized in place.
    pub fn apply(&self, values: &mut [f32]) {
        let f = self.columns.len();
        for row in values.chunks_mut(f.max(1)) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = ((f64::from(*v) - self.mean[j]) / self.std[j]) as f32;
            }
        }
    }

    /// Writes `known_future.toml` into the run directory.
    pub fn save(&self, dir: &Path) -> Result<()> {
        save_toml(dir, FILE, self)
    }

    /// The run's `known_future.toml`, if it has one (runs before it fed the columns as they
    /// were, and still do).
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        load_toml(dir, FILE, "a known-future scale")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean and population std by hand, over training rows only; a constant column gets 1.
    #[test]
    fn fitted_on_the_training_rows_of_every_series() {
        let a = [1.0, 5.0, 3.0, 5.0, 100.0, 5.0];
        let b = [5.0, 5.0, 7.0, 5.0];
        let s = KnownFutureScale::fit(&["x".into(), "c".into()], &[(&a, 2), (&b, 2)]);
        // x over the training rows: 1, 3, 5, 7.
        assert_eq!(s.mean, vec![4.0, 5.0]);
        assert!((s.std[0] - 5f64.sqrt()).abs() < 1e-12, "{:?}", s.std);
        assert_eq!(s.std[1], 1.0);
        let mut v = vec![4.0, 5.0, 6.0, 6.0];
        s.apply(&mut v);
        assert!((v[2] - (2.0 / 5f64.sqrt()) as f32).abs() < 1e-6, "{v:?}");
        assert_eq!((v[0], v[1], v[3]), (0.0, 0.0, 1.0));
    }
}
