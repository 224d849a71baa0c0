//! Learning-rate schedules, evaluated per optimizer step, and reduce-on-plateau (which Burn lacks),
//! evaluated per epoch from the validation loss.

use serde::{Deserialize, Serialize};

/// A schedule over the whole run, as a function of the optimizer step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Decay factor.
        gamma: f64,
    },
    /// Multiply by `gamma` every epoch.
    Exponential {
        /// Decay factor per epoch.
        gamma: f64,
    },
    /// Cosine from the base rate down to `min_lr` over the run.
    Cosine {
        /// Final rate.
        min_lr: f64,
    },
    /// Linear warm-up from 0 over `warmup_epochs`, then cosine down to `min_lr`.
    WarmupCosine {
        /// Epochs of warm-up.
        warmup_epochs: usize,
        /// Final rate.
        min_lr: f64,
    },
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Cosine { min_lr: 1e-5 }
    }
}

impl Schedule {
    /// The rate at optimizer step `step` (0-based) of `total` steps, `per_epoch` steps an epoch.
    pub fn lr(&self, base: f64, step: usize, total: usize, per_epoch: usize) -> f64 {
        let per_epoch = per_epoch.max(1);
        let epoch = step / per_epoch;
        let cosine = |from: usize, min_lr: f64| {
            let span = total.saturating_sub(from).max(1) as f64;
            let progress = (step.saturating_sub(from)) as f64 / span;
            min_lr + 0.5 * (base - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
        };
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => base * gamma.powi((epoch / every.max(1)) as i32),
            Schedule::Exponential { gamma } => base * gamma.powi(epoch as i32),
            Schedule::Cosine { min_lr } => cosine(0, min_lr),
            Schedule::WarmupCosine {
                warmup_epochs,
                min_lr,
            } => {
                let warm = warmup_epochs * per_epoch;
                if step < warm {
                    base * (step + 1) as f64 / warm as f64
                } else {
                    cosine(warm, min_lr)
                }
            }
        }
    }

    /// Checks the parameters, naming the option.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |what: &str| Err(format!("train.schedule: {what}"));
        match *self {
            Schedule::Step { every, gamma } if every == 0 || !(gamma > 0.0 && gamma <= 1.0) => {
                bad("step needs every >= 1 and gamma in (0, 1]")
            }
            Schedule::Exponential { gamma } if !(gamma > 0.0 && gamma <= 1.0) => {
                bad("exponential needs gamma in (0, 1]")
            }
            Schedule::Cosine { min_lr } | Schedule::WarmupCosine { min_lr, .. }
                if min_lr.is_nan() || min_lr < 0.0 =>
            {
                bad("min_lr must be >= 0")
            }
            _ => Ok(()),
        }
    }
}

/// PyTorch's `ReduceLROnPlateau` (mode `min`, relative threshold): after more than `patience`
/// epochs without the validation loss falling below `best · (1 − threshold)`, multiply the rate
/// by `factor` (not below `min_lr`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReduceOnPlateau {
    /// Multiplier applied on a plateau.
    pub factor: f64,
    /// Epochs without improvement tolerated.
    pub patience: usize,
    /// Relative improvement that counts.
    pub threshold: f64,
    /// Floor for the rate.
    pub min_lr: f64,
    best: f64,
    bad_epochs: usize,
    scale: f64,
}

impl ReduceOnPlateau {
    /// A fresh plateau detector.
    pub fn new(factor: f64, patience: usize, threshold: f64, min_lr: f64) -> Self {
        Self {
            factor,
            patience,
            threshold,
            min_lr,
            best: f64::INFINITY,
            bad_epochs: 0,
            scale: 1.0,
        }
    }

    /// Feeds one epoch's validation loss; returns the multiplier to apply to the base rate from
    /// now on.
    pub fn observe(&mut self, loss: f64, base_lr: f64) -> f64 {
        if loss < self.best * (1.0 - self.threshold) {
            self.best = loss;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
            if self.bad_epochs > self.patience {
                let floor = if base_lr > 0.0 {
                    self.min_lr / base_lr
                } else {
                    0.0
                };
                self.scale = (self.scale * self.factor).max(floor);
                self.bad_epochs = 0;
            }
        }
        self.scale
    }

    /// The current multiplier.
    pub fn scale(&self) -> f64 {
        self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn warmup_then_cosine_sequence() {
        // 2 steps an epoch, 1 warm-up epoch, 6 steps in all, base 1, min 0.
        let s = Schedule::WarmupCosine {
            warmup_epochs: 1,
            min_lr: 0.0,
        };
        let lrs: Vec<f64> = (0..6).map(|i| s.lr(1.0, i, 6, 2)).collect();
        close(lrs[0], 0.5);
        close(lrs[1], 1.0);
        // Cosine over the 4 remaining steps: 1, cos²-shaped: (1 + cos(π k/4)) / 2.
        for (k, lr) in lrs[2..].iter().enumerate() {
            close(
                *lr,
                0.5 * (1.0 + (std::f64::consts::PI * k as f64 / 4.0).cos()),
            );
        }
    }

    #[test]
    fn step_exponential_cosine_constant() {
        let step = Schedule::Step {
            every: 2,
            gamma: 0.1,
        };
        let by_epoch: Vec<f64> = (0..5).map(|e| step.lr(1.0, e * 3, 15, 3)).collect();
        for (got, want) in by_epoch.iter().zip([1.0, 1.0, 0.1, 0.1, 0.01]) {
            close(*got, want);
        }
        close(
            Schedule::Exponential { gamma: 0.5 }.lr(2.0, 7, 100, 3),
            2.0 * 0.25,
        );
        let cos = Schedule::Cosine { min_lr: 0.1 };
        close(cos.lr(1.0, 0, 10, 1), 1.0);
        close(cos.lr(1.0, 5, 10, 1), 0.55);
        close(Schedule::Constant.lr(0.3, 99, 100, 1), 0.3);
        assert!(Schedule::Step {
            every: 0,
            gamma: 0.5
        }
        .validate()
        .is_err());
    }

    #[test]
    fn reduce_on_plateau_sequence() {
        // patience 1: the second epoch without improvement halves the rate.
        let mut p = ReduceOnPlateau::new(0.5, 1, 0.0, 0.1);
        let losses = [
            1.0, 0.9, 0.95, 0.92, 0.91, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85,
        ];
        let scales: Vec<f64> = losses.iter().map(|l| p.observe(*l, 1.0)).collect();
        assert_eq!(
            scales,
            vec![1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.1]
        );
    }
}
