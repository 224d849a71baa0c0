//! Naive forecasting baselines: what every model must beat.

use serde::{Deserialize, Serialize};

/// Whether `values` are counts: at least one value, and every value a whole number of at least
/// 0 (NaN is none). A forecast of counts below 0 is no forecast, so forecasters of such series
/// floor theirs at 0.
pub fn is_counts(values: impl IntoIterator<Item = f32>) -> bool {
    let mut any = false;
    for v in values {
        if !(v >= 0.0 && v.fract() == 0.0) {
            return false;
        }
        any = true;
    }
    any
}

/// A baseline forecaster over one series' history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Baseline {
    /// Repeat the last observed value (the "naive" forecast).
    RepeatLast,
    /// Repeat the last full season of period `m`: `ŷ_{T+h} = y_{T+h-m·k}` for the smallest `k`
    /// that lands in the history.
    SeasonalNaive(usize),
    /// The mean of the history.
    Mean,
    /// The line through the first and last observations, extended (random walk with drift).
    Drift,
}

impl Baseline {
    /// Forecasts `horizon` steps after `history` (oldest first).
    ///
    /// # Panics
    /// When `history` is empty, or shorter than the season for [`Baseline::SeasonalNaive`]; the
    /// callers build windows of at least that length.
    pub fn forecast(self, history: &[f32], horizon: usize) -> Vec<f32> {
        assert!(!history.is_empty(), "a baseline needs at least one value");
        let n = history.len();
        let last = history[n - 1];
        match self {
            Baseline::RepeatLast => vec![last; horizon],
            Baseline::SeasonalNaive(m) => {
                assert!(m >= 1 && n >= m, "seasonal naive needs m >= 1 and m values");
                (0..horizon).map(|h| history[n - m + h % m]).collect()
            }
            Baseline::Mean => {
                let mean = history.iter().map(|v| *v as f64).sum::<f64>() / n as f64;
                vec![mean as f32; horizon]
            }
            Baseline::Drift => {
                let slope = if n > 1 {
                    (last as f64 - history[0] as f64) / (n - 1) as f64
                } else {
                    0.0
                };
                (1..=horizon)
                    .map(|h| (last as f64 + slope * h as f64) as f32)
                    .collect()
            }
        }
    }

    /// A short name for tables: `naive`, `seasonal_naive(24)`, `mean`, `drift`.
    pub fn name(self) -> String {
        match self {
            Baseline::RepeatLast => "naive".into(),
            Baseline::SeasonalNaive(m) => format!("seasonal_naive({m})"),
            Baseline::Mean => "mean".into(),
            Baseline::Drift => "drift".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: [f32; 5] = [1.0, 2.0, 4.0, 3.0, 5.0];

    #[test]
    fn counts_are_whole_numbers_of_at_least_zero() {
        assert!(is_counts(H));
        assert!(is_counts([0.0, 0.0, 7.0]));
        assert!(!is_counts([1.0, 2.5, 3.0]), "a fraction");
        assert!(!is_counts([1.0, -1.0, 3.0]), "a negative whole number");
        assert!(!is_counts([1.0, f32::NAN]), "a missing value");
        assert!(!is_counts([]), "no values");
    }

    #[test]
    fn by_hand() {
        assert_eq!(Baseline::RepeatLast.forecast(&H, 3), vec![5.0, 5.0, 5.0]);
        // season 2: last season is [3, 5]
        assert_eq!(
            Baseline::SeasonalNaive(2).forecast(&H, 5),
            vec![3.0, 5.0, 3.0, 5.0, 3.0]
        );
        assert_eq!(Baseline::SeasonalNaive(1).forecast(&H, 2), vec![5.0, 5.0]);
        assert_eq!(Baseline::Mean.forecast(&H, 2), vec![3.0, 3.0]);
        // slope (5 - 1) / 4 = 1
        assert_eq!(Baseline::Drift.forecast(&H, 3), vec![6.0, 7.0, 8.0]);
        assert_eq!(Baseline::Drift.forecast(&[2.0], 2), vec![2.0, 2.0]);
        assert_eq!(Baseline::SeasonalNaive(24).name(), "seasonal_naive(24)");
    }
}
