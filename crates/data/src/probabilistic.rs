//! Probabilistic forecast metrics as GluonTS's `Evaluator` defines them, so numbers compare
//! across toolkits, and the seasonal-naive baseline with empirical residual quantiles.
//!
//! Quantile forecasts come as one slice per level, each aligned with `actual` (any flattening
//! of `[series, horizon]`, in the same order). Sums accumulate in f64 over every series before
//! dividing, as GluonTS aggregates its `wQuantileLoss`.

/// Running sums for the weighted quantile loss and interval coverage over many series.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileScore {
    /// The levels, increasing.
    pub levels: Vec<f64>,
    /// Per level: `2 Σ |(ŷ_q − y)(1{y ≤ ŷ_q} − q)|` (GluonTS's `QuantileLoss`).
    pub loss: Vec<f64>,
    /// Per level: how many actual values lie at or below the quantile.
    pub below: Vec<usize>,
    /// Per level: how many actual values lie strictly below the quantile (differs from `below`
    /// only where a value equals its quantile: counts, whose quantiles are whole numbers).
    pub strictly_below: Vec<usize>,
    /// `Σ |y|`.
    pub abs_target: f64,
    /// Values seen.
    pub count: usize,
}

impl QuantileScore {
    /// Empty sums for `levels`.
    pub fn new(levels: &[f64]) -> Self {
        Self {
            levels: levels.to_vec(),
            loss: vec![0.0; levels.len()],
            below: vec![0; levels.len()],
            strictly_below: vec![0; levels.len()],
            abs_target: 0.0,
            count: 0,
        }
    }

    /// Adds one batch: `quantiles[k][i]` is the level-`k` forecast of `actual[i]`.
    pub fn add(&mut self, actual: &[f32], quantiles: &[Vec<f32>]) {
        assert_eq!(quantiles.len(), self.levels.len(), "one forecast per level");
        for (k, (&q, fq)) in self.levels.iter().zip(quantiles).enumerate() {
            assert_eq!(
                fq.len(),
                actual.len(),
                "forecasts aligned with actual values"
            );
            for (&y, &f) in actual.iter().zip(fq) {
                let (y, f) = (y as f64, f as f64);
                let below = y <= f;
                self.loss[k] += 2.0 * ((f - y) * (if below { 1.0 } else { 0.0 } - q)).abs();
                self.below[k] += below as usize;
                self.strictly_below[k] += (y < f) as usize;
            }
        }
        self.abs_target += actual.iter().map(|y| (*y as f64).abs()).sum::<f64>();
        self.count += actual.len();
    }

    /// `wQuantileLoss[q]` per level: the loss over `Σ|y|`; `None` when every actual value is 0.
    pub fn weighted(&self) -> Option<Vec<f64>> {
        (self.abs_target > 0.0).then(|| self.loss.iter().map(|l| l / self.abs_target).collect())
    }

    /// `mean_wQuantileLoss`: the mean of [`QuantileScore::weighted`] over the levels (a
    /// discretisation of the CRPS scaled by `Σ|y|`).
    pub fn mean_weighted(&self) -> Option<f64> {
        let w = self.weighted()?;
        Some(w.iter().sum::<f64>() / w.len() as f64)
    }

    /// The share of actual values at or below the level-`q` quantile (GluonTS's `Coverage[q]`).
    pub fn coverage_at(&self, q: f64) -> Option<f64> {
        let k = self.level(q)?;
        (self.count > 0).then(|| self.below[k] as f64 / self.count as f64)
    }

    /// The share of actual values inside the closed central interval `[q_lo, q_hi]`: at or
    /// below `q_hi` and not strictly below `q_lo`. Closed at both ends because a count's
    /// quantiles are whole numbers: a zero day under a lower quantile of 0 is inside the
    /// interval, where the difference of the two [`QuantileScore::coverage_at`] would count it
    /// as below. For continuous forecasts (no ties) the two agree.
    pub fn interval_coverage(&self, lo: f64, hi: f64) -> Option<f64> {
        let (lo, hi) = (self.level(lo)?, self.level(hi)?);
        (self.count > 0)
            .then(|| (self.below[hi] as f64 - self.strictly_below[lo] as f64) / self.count as f64)
    }

    fn level(&self, q: f64) -> Option<usize> {
        self.levels.iter().position(|l| (l - q).abs() < 1e-9)
    }
}

/// The seasonal-naive forecast of period `m` with quantiles: the point forecast repeats the
/// last season; the level-`q` quantile adds the empirical `q` quantile of the history's
/// seasonal differences `y_t − y_{t−m}` (so the interval is as wide as last season's changes
/// were). With `nonnegative`, quantiles are floored at 0 (counts).
///
/// Returns `quantiles[level][step]`, `None` when the history has no more than `m` values.
pub fn seasonal_naive_quantiles(
    history: &[f32],
    m: usize,
    horizon: usize,
    levels: &[f64],
    nonnegative: bool,
) -> Option<Vec<Vec<f32>>> {
    let n = history.len();
    if m == 0 || n <= m {
        return None;
    }
    let mut residuals: Vec<f64> = (m..n)
        .map(|t| history[t] as f64 - history[t - m] as f64)
        .collect();
    residuals.sort_by(f64::total_cmp);
    Some(
        levels
            .iter()
            .map(|&q| {
                let shift = sorted_quantile(&residuals, q);
                (0..horizon)
                    .map(|h| {
                        let v = history[n - m + h % m] as f64 + shift;
                        (if nonnegative { v.max(0.0) } else { v }) as f32
                    })
                    .collect()
            })
            .collect(),
    )
}

/// Split-conformal interval offsets at the central `level` (0.8 for an 80% interval) from
/// calibration residuals `actual − forecast` of a held-out split: the order statistics
/// `⌊(n + 1)(1 − level)/2⌋` and `⌈(n + 1)(1 + level)/2⌉` (1-based, clamped to the `n`
/// finite residuals). A new residual exchangeable with these falls below the lower one with
/// probability at most `(1 − level)/2` and above the upper one likewise, so `forecast +
/// [lower, upper]` covers the actual value with probability at least `level`, unless `n <
/// 2/(1 − level) − 1` (39 for 95%), where a clamp binds and the interval is narrower than that.
/// `None` when no residual is finite.
pub fn conformal_offsets(residuals: &[f32], level: f64) -> Option<(f32, f32)> {
    let mut r: Vec<f32> = residuals
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if r.is_empty() {
        return None;
    }
    r.sort_by(f32::total_cmp);
    let n = r.len();
    let tail = (1.0 - level.clamp(0.0, 1.0)) / 2.0;
    // The slack keeps (n + 1)·tail from rounding below a whole number it equals: 20 · 0.1 is
    // 1.9999999999999996 in floating point.
    let lower = ((n + 1) as f64 * tail + 1e-9).floor() as usize;
    Some((
        r[lower.clamp(1, n) - 1],
        r[conformal_rank(n, 1.0 - tail) - 1],
    ))
}

/// The 1-based rank among `n ≥ 1` sorted calibration scores of split conformal prediction's
/// bound for a `share` of new scores: `⌈(n + 1) · share⌉`, clamped to `1..=n` (so with fewer
/// than `1/(1 − share) − 1` scores it is the largest, and covers less than `share`).
pub fn conformal_rank(n: usize, share: f64) -> usize {
    // The slack keeps (n + 1)·share from rounding above a whole number it equals.
    let rank = ((n + 1) as f64 * share.clamp(0.0, 1.0) - 1e-9).ceil() as usize;
    rank.clamp(1, n.max(1))
}

/// The `q` quantile of sorted values, linear between order statistics (NumPy's default, and
/// `gatecast_model::forecast::empirical_quantile`'s: the model crate does not depend on this
/// one); `sorted` must be non-empty, `q` is clamped to `[0, 1]`.
fn sorted_quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn conformal_offsets_are_the_order_statistics_that_bound_each_tail() {
        // Residuals 1..=19 in a scrambled order: n + 1 = 20, so an 80% interval leaves 2 of 20
        // ranks in each tail (the 2nd and the 18th values), a 90% one 1 (1st and 19th).
        let r: Vec<f32> = (0..19).map(|i| ((i * 7) % 19 + 1) as f32).collect();
        assert_eq!(conformal_offsets(&r, 0.8), Some((2.0, 18.0)));
        assert_eq!(conformal_offsets(&r, 0.9), Some((1.0, 19.0)));
        // 95% wants ranks 0.5 and 19.5 of 19: clamped to the ends.
        assert_eq!(conformal_offsets(&r, 0.95), Some((1.0, 19.0)));
        // 39 residuals: the 1st and 39th for 95%, the 4th and 36th for 80%.
        let r: Vec<f32> = (1..=39).map(|i| i as f32 - 20.0).collect();
        assert_eq!(conformal_offsets(&r, 0.95), Some((-19.0, 19.0)));
        assert_eq!(conformal_offsets(&r, 0.8), Some((-16.0, 16.0)));
        // Non-finite residuals are left out; none at all is no interval.
        assert_eq!(conformal_offsets(&[f32::NAN, 3.0], 0.8), Some((3.0, 3.0)));
        assert_eq!(conformal_offsets(&[f32::NAN], 0.8), None);
    }

    /// On exchangeable draws the interval covers new draws at least as often as its level, and
    /// not much more often.
    #[test]
    fn conformal_intervals_cover_new_draws_at_their_level() {
        let mut rng = crate::synthetic::Rng::new(3);
        let draw = |rng: &mut crate::synthetic::Rng| (rng.normal() * 2.0 + 0.5) as f32;
        let calibration: Vec<f32> = (0..199).map(|_| draw(&mut rng)).collect();
        for level in [0.8, 0.95] {
            let (lo, hi) = conformal_offsets(&calibration, level).unwrap();
            // Coverage of a fixed calibration set varies with the set; averaged over many
            // sets it is at least `level`. Here: one set, 20000 new draws, a loose band.
            let mut covered = 0;
            for _ in 0..20000 {
                let x = draw(&mut rng);
                covered += usize::from(lo <= x && x <= hi);
            }
            let c = covered as f64 / 20000.0;
            assert!((level - 0.04..level + 0.04).contains(&c), "{level}: {c}");
        }
    }

    #[test]
    fn sorted_quantile_is_numpys_linear_rule() {
        // numpy.quantile([1, 2, 4, 8], q) for q = 0, 0.25, 0.5, 0.9, 1.
        let v = [1.0, 2.0, 4.0, 8.0];
        for (q, want) in [(0.0, 1.0), (0.25, 1.75), (0.5, 3.0), (0.9, 6.8), (1.0, 8.0)] {
            close(sorted_quantile(&v, q), want);
        }
        // Levels outside [0, 1] read the ends; one value is every quantile.
        close(sorted_quantile(&v, -0.5), 1.0);
        close(sorted_quantile(&v, 1.5), 8.0);
        close(sorted_quantile(&[5.0], 0.3), 5.0);
    }

    #[test]
    fn weighted_quantile_loss_by_hand() {
        // y = [2, 0, 4]; q0.1 forecasts [1, 1, 1], q0.9 forecasts [3, 3, 3].
        let mut s = QuantileScore::new(&[0.1, 0.9]);
        s.add(
            &[2.0, 0.0, 4.0],
            &[vec![1.0, 1.0, 1.0], vec![3.0, 3.0, 3.0]],
        );
        // q0.1: y>f: 2·0.1·1, y≤f: 2·0.9·1, y>f: 2·0.1·3 → 0.2 + 1.8 + 0.6 = 2.6
        // q0.9: y≤f: 2·0.1·1, y≤f: 2·0.1·3, y>f: 2·0.9·1 → 0.2 + 0.6 + 1.8 = 2.6
        let w = s.weighted().unwrap();
        close(w[0], 2.6 / 6.0);
        close(w[1], 2.6 / 6.0);
        close(s.mean_weighted().unwrap(), 2.6 / 6.0);
        // Below q0.1: only y = 0; below q0.9: 2 and 0.
        close(s.coverage_at(0.1).unwrap(), 1.0 / 3.0);
        close(s.coverage_at(0.9).unwrap(), 2.0 / 3.0);
        close(s.interval_coverage(0.1, 0.9).unwrap(), 1.0 / 3.0);
        assert_eq!(s.coverage_at(0.5), None);
        // Sums run over batches (series) before dividing.
        s.add(&[10.0], &[vec![0.0], vec![0.0]]);
        close(s.weighted().unwrap()[0], (2.6 + 2.0) / 16.0);
        assert_eq!(QuantileScore::new(&[0.5]).mean_weighted(), None);
    }

    #[test]
    fn an_interval_holds_the_values_at_its_ends() {
        // Counts: y = [0, 0, 3, 5, 9] under an interval [0, 5] at every step. The zeros sit on
        // the lower end and 5 on the upper one; all but 9 are inside.
        let mut s = QuantileScore::new(&[0.1, 0.5, 0.9]);
        let y = [0.0, 0.0, 3.0, 5.0, 9.0];
        s.add(&y, &[vec![0.0; 5], vec![2.0; 5], vec![5.0; 5]]);
        close(s.interval_coverage(0.1, 0.9).unwrap(), 4.0 / 5.0);
        // Per-level coverage stays GluonTS's `y <= q`.
        close(s.coverage_at(0.1).unwrap(), 2.0 / 5.0);
        close(s.coverage_at(0.9).unwrap(), 4.0 / 5.0);
        // Without ties the interval is the difference of the two coverages.
        let mut c = QuantileScore::new(&[0.1, 0.9]);
        c.add(&[0.5, 1.5, 2.5, 6.0], &[vec![1.0; 4], vec![5.0; 4]]);
        close(
            c.interval_coverage(0.1, 0.9).unwrap(),
            c.coverage_at(0.9).unwrap() - c.coverage_at(0.1).unwrap(),
        );
        close(c.interval_coverage(0.1, 0.9).unwrap(), 0.5);
        assert_eq!(c.interval_coverage(0.1, 0.5), None);
        assert_eq!(
            QuantileScore::new(&[0.1, 0.9]).interval_coverage(0.1, 0.9),
            None
        );
    }

    #[test]
    fn seasonal_naive_quantiles_by_hand() {
        // m = 2: differences 3-1, 4-2, 7-3, 6-4 → 2, 2, 4, 2 → sorted 2, 2, 2, 4.
        let h = [1.0, 2.0, 3.0, 4.0, 7.0, 6.0];
        let q = seasonal_naive_quantiles(&h, 2, 3, &[0.0, 0.5, 1.0], false).unwrap();
        assert_eq!(q[0], vec![9.0, 8.0, 9.0]);
        assert_eq!(q[1], vec![9.0, 8.0, 9.0]);
        assert_eq!(q[2], vec![11.0, 10.0, 11.0]);
        // Floored at zero for counts.
        let q = seasonal_naive_quantiles(&[5.0, 0.0, 0.0], 1, 1, &[0.0], true).unwrap();
        assert_eq!(q[0], vec![0.0]);
        assert_eq!(seasonal_naive_quantiles(&h, 6, 3, &[0.5], false), None);
    }
}
