//! Forecast error metrics, accumulated in f64.
//!
//! Every function takes the actual values and the forecasts as equal-length slices (any
//! flattening of `[windows, horizon, targets]`, in the same order) and returns `None` when the
//! metric is undefined for the input (empty slices, or — for MAPE and MASE — no usable
//! denominator), never NaN.

/// Mean squared error `mean((y - ŷ)²)`.
pub fn mse(actual: &[f32], forecast: &[f32]) -> Option<f64> {
    mean_of(actual, forecast, |a, f| (a - f).powi(2))
}

/// Mean absolute error `mean(|y - ŷ|)`.
pub fn mae(actual: &[f32], forecast: &[f32]) -> Option<f64> {
    mean_of(actual, forecast, |a, f| (a - f).abs())
}

/// Root mean squared error `sqrt(mse)`.
pub fn rmse(actual: &[f32], forecast: &[f32]) -> Option<f64> {
    mse(actual, forecast).map(f64::sqrt)
}

/// Mean absolute percentage error, in percent: `100 · mean(|y - ŷ| / |y|)`.
///
/// Zero-safe: terms whose actual value is exactly 0 have no defined percentage error and are left
/// out of the mean (so are their forecasts). Returns `None` when every actual value is 0.
pub fn mape(actual: &[f32], forecast: &[f32]) -> Option<f64> {
    check(actual, forecast);
    let (sum, n) = actual
        .iter()
        .zip(forecast)
        .filter(|(a, _)| **a != 0.0)
        .fold((0.0f64, 0usize), |(s, n), (a, f)| {
            let (a, f) = (*a as f64, *f as f64);
            (s + (a - f).abs() / a.abs(), n + 1)
        });
    (n > 0).then(|| 100.0 * sum / n as f64)
}

/// Symmetric MAPE, in percent, in `[0, 200]`: `100 · mean(2|y - ŷ| / (|y| + |ŷ|))`, with the
/// term taken as 0 when both `y` and `ŷ` are 0 (a perfect forecast of zero).
pub fn smape(actual: &[f32], forecast: &[f32]) -> Option<f64> {
    mean_of(actual, forecast, |a, f| {
        let denom = a.abs() + f.abs();
        if denom == 0.0 {
            0.0
        } else {
            2.0 * (a - f).abs() / denom
        }
    })
    .map(|m| 100.0 * m)
}

/// Mean absolute scaled error (Hyndman & Koehler 2006): the forecast's MAE divided by the in-sample
/// MAE of the seasonal naive forecast with period `m` on the training series `history`
/// (`mean(|h_t - h_{t-m}|)`; `m = 1` is the plain naive forecast).
///
/// `None` when `history` has no more than `m` values, or when the naive in-sample error is 0
/// (a constant-by-season history), where the ratio is undefined.
pub fn mase(actual: &[f32], forecast: &[f32], history: &[f32], m: usize) -> Option<f64> {
    assert!(m >= 1, "MASE needs a seasonal period m >= 1");
    if history.len() <= m {
        return None;
    }
    let scale = history
        .iter()
        .zip(&history[m..])
        .map(|(a, b)| (*b as f64 - *a as f64).abs())
        .sum::<f64>()
        / (history.len() - m) as f64;
    if scale == 0.0 {
        return None;
    }
    mae(actual, forecast).map(|e| e / scale)
}

fn check(actual: &[f32], forecast: &[f32]) {
    assert_eq!(
        actual.len(),
        forecast.len(),
        "metrics need as many forecasts as actual values"
    );
}

fn mean_of(actual: &[f32], forecast: &[f32], term: impl Fn(f64, f64) -> f64) -> Option<f64> {
    check(actual, forecast);
    if actual.is_empty() {
        return None;
    }
    let sum: f64 = actual
        .iter()
        .zip(forecast)
        .map(|(a, f)| term(*a as f64, *f as f64))
        .sum();
    Some(sum / actual.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const Y: [f32; 4] = [1.0, 2.0, 0.0, 4.0];
    const F: [f32; 4] = [2.0, 2.0, 1.0, 1.0];

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("defined");
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn by_hand() {
        // errors: -1, 0, -1, 3
        close(mse(&Y, &F), (1.0 + 0.0 + 1.0 + 9.0) / 4.0);
        close(mae(&Y, &F), (1.0 + 0.0 + 1.0 + 3.0) / 4.0);
        close(rmse(&Y, &F), (11.0f64 / 4.0).sqrt());
        // MAPE skips y = 0: (1/1 + 0/2 + 3/4) / 3
        close(mape(&Y, &F), 100.0 * (1.0 + 0.0 + 0.75) / 3.0);
        // sMAPE: 2·1/3, 0, 2·1/1, 2·3/5
        close(
            smape(&Y, &F),
            100.0 * (2.0 / 3.0 + 0.0 + 2.0 + 6.0 / 5.0) / 4.0,
        );
    }

    #[test]
    fn mase_by_hand() {
        // history 1,3,2,6 with m = 1: |2| + |1| + |4| = 7 over 3; MAE(Y, F) = 5/4.
        close(
            mase(&Y, &F, &[1.0, 3.0, 2.0, 6.0], 1),
            (5.0 / 4.0) / (7.0 / 3.0),
        );
        // m = 2: |2-1| + |6-3| = 4 over 2.
        close(mase(&Y, &F, &[1.0, 3.0, 2.0, 6.0], 2), (5.0 / 4.0) / 2.0);
        assert_eq!(mase(&Y, &F, &[1.0, 1.0, 1.0], 1), None, "zero scale");
        assert_eq!(mase(&Y, &F, &[1.0, 2.0], 2), None, "history too short");
    }

    #[test]
    fn undefined_cases_are_none_not_nan() {
        assert_eq!(mse(&[], &[]), None);
        assert_eq!(mape(&[0.0, 0.0], &[1.0, 2.0]), None);
        close(smape(&[0.0], &[0.0]), 0.0);
    }

    #[test]
    fn accumulates_in_f64() {
        // 10 million terms of 0.1²: an f32 running sum drifts by percents, f64 does not.
        let n = 10_000_000;
        let y = vec![0.1f32; n];
        let f = vec![0.0f32; n];
        let m = mse(&y, &f).unwrap();
        let exact = (0.1f32 as f64).powi(2);
        assert!((m - exact).abs() / exact < 1e-9, "{m}");
    }
}
