//! Seeded synthetic tasks: noisy sines, the adding problem and the copy-memory task.
//!
//! A small SplitMix64 generator keeps every task reproducible from its seed on every platform and
//! independent of any RNG crate's version.

/// A deterministic pseudo-random generator (SplitMix64) with uniform and normal draws.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose whole stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[low, high)`.
    pub fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// Uniform integer in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// One sequence-to-target sample: `inputs` is `[time, features]` row-major, `target` the values
/// to predict.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceSample {
    /// `[time, features]`, row-major.
    pub inputs: Vec<f32>,
    /// Number of time steps.
    pub time: usize,
    /// Features per step.
    pub features: usize,
    /// What the model should output for this sequence.
    pub target: Vec<f32>,
}

/// A univariate noisy sine `sin(2π t / period + phase) + noise·N(0, 1)` of `len` steps, with
/// the period drawn in `[period_min, period_max)` and the phase uniform.
pub fn noisy_sine(len: usize, period_min: f64, period_max: f64, noise: f64, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let period = rng.range(period_min, period_max);
    let phase = rng.range(0.0, 2.0 * std::f64::consts::PI);
    (0..len)
        .map(|t| {
            ((2.0 * std::f64::consts::PI * t as f64 / period + phase).sin() + noise * rng.normal())
                as f32
        })
        .collect()
}

/// The adding problem (Hochreiter & Schmidhuber 1997): `time` steps of two features, a value
/// uniform in `[0, 1)` and a marker that is 1 at exactly two positions (one in each half of the
/// sequence); the target is the sum of the two marked values. Predicting the mean, 1, gives MSE
/// 1/6 ≈ 0.167: the chance level.
pub fn adding_problem(samples: usize, time: usize, seed: u64) -> Vec<SequenceSample> {
    assert!(time >= 2, "the adding problem needs at least 2 steps");
    let mut rng = Rng::new(seed);
    (0..samples)
        .map(|_| {
            let half = time / 2;
            let first = rng.below(half);
            let second = half + rng.below(time - half);
            let mut inputs = vec![0.0f32; time * 2];
            let mut sum = 0.0;
            for t in 0..time {
                let v = rng.uniform() as f32;
                inputs[t * 2] = v;
                if t == first || t == second {
                    inputs[t * 2 + 1] = 1.0;
                    sum += v;
                }
            }
            SequenceSample {
                inputs,
                time,
                features: 2,
                target: vec![sum],
            }
        })
        .collect()
}

/// The copy-memory task: `copy_len` symbols from an alphabet of `symbols` (one-hot), then
/// `delay` blanks, a recall marker, and `copy_len` more blanks; the target is the copied symbol
/// indices (as f32), to be emitted over the last `copy_len` steps. Features: `symbols + 2`
/// (symbols, blank, marker). Guessing uniformly gets accuracy `1 / symbols`.
pub fn copy_memory(
    samples: usize,
    copy_len: usize,
    delay: usize,
    symbols: usize,
    seed: u64,
) -> Vec<SequenceSample> {
    assert!(
        symbols >= 2 && copy_len >= 1,
        "copy memory needs symbols >= 2, copy_len >= 1"
    );
    let mut rng = Rng::new(seed);
    let features = symbols + 2;
    let (blank, marker) = (symbols, symbols + 1);
    let time = copy_len + delay + 1 + copy_len;
    (0..samples)
        .map(|_| {
            let seq: Vec<usize> = (0..copy_len).map(|_| rng.below(symbols)).collect();
            let mut inputs = vec![0.0f32; time * features];
            for t in 0..time {
                let hot = if t < copy_len {
                    seq[t]
                } else if t == copy_len + delay {
                    marker
                } else {
                    blank
                };
                inputs[t * features + hot] = 1.0;
            }
            SequenceSample {
                inputs,
                time,
                features,
                target: seq.iter().map(|s| *s as f32).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_reproducible() {
        assert_eq!(adding_problem(4, 10, 7), adding_problem(4, 10, 7));
        assert_ne!(adding_problem(4, 10, 7), adding_problem(4, 10, 8));
        assert_eq!(
            noisy_sine(20, 5.0, 10.0, 0.1, 3),
            noisy_sine(20, 5.0, 10.0, 0.1, 3)
        );
    }

    #[test]
    fn adding_problem_is_what_it_says() {
        let samples = adding_problem(2000, 50, 1);
        let mut sq = 0.0;
        for s in &samples {
            let marked: Vec<usize> = (0..50).filter(|t| s.inputs[t * 2 + 1] == 1.0).collect();
            assert_eq!(marked.len(), 2);
            assert!(marked[0] < 25 && marked[1] >= 25);
            let sum: f32 = marked.iter().map(|t| s.inputs[t * 2]).sum();
            assert!((sum - s.target[0]).abs() < 1e-6);
            sq += (s.target[0] as f64 - 1.0).powi(2);
        }
        // Chance level: predicting 1 gives MSE 1/6.
        let chance = sq / samples.len() as f64;
        assert!((chance - 1.0 / 6.0).abs() < 0.02, "{chance}");
    }

    #[test]
    fn copy_memory_layout() {
        let s = &copy_memory(1, 3, 5, 4, 9)[0];
        assert_eq!(s.time, 3 + 5 + 1 + 3);
        assert_eq!(s.features, 6);
        for t in 0..s.time {
            let row = &s.inputs[t * 6..(t + 1) * 6];
            assert_eq!(row.iter().sum::<f32>(), 1.0, "one-hot");
            if t < 3 {
                assert_eq!(row[s.target[t] as usize], 1.0);
            } else if t == 8 {
                assert_eq!(row[5], 1.0, "marker");
            } else {
                assert_eq!(row[4], 1.0, "blank");
            }
        }
    }

    #[test]
    fn normal_draws_have_unit_variance() {
        let mut rng = Rng::new(5);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
    }
}
