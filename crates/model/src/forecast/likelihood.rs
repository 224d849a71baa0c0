//! Distribution heads: what a forecaster's raw outputs mean when it forecasts a distribution
//! instead of one number per step, and the training loss that goes with each.
//!
//! A head with likelihood `L` emits `L.raw_size()` raw values per horizon step and target,
//! `[batch, horizon, targets * raw_size]`; [`Likelihood::distribution`] maps them to
//! parameters with numerically safe transforms (softplus for scales, a degrees-of-freedom floor
//! of 2, log-space negative-binomial terms) and multiplies the location by a per-series scale
//! (DeepAR's mean-absolute scaling). The loss is the negative log-likelihood, or for
//! [`Likelihood::Quantiles`] the pinball loss averaged over the levels (MQ-RNN). Drawing samples
//! and reading quantiles are host-side: see [`crate::forecast::HostDistribution`].

use burn::tensor::activation::softplus;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// The distribution a forecaster predicts per horizon step and target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Likelihood {
    /// Normal: mean and standard deviation.
    Gaussian,
    /// Student's t: location, scale and degrees of freedom (above 2, so the variance exists).
    StudentT,
    /// Negative binomial for counts: mean and dispersion α (variance `μ + α μ²`).
    NegativeBinomial,
    /// No distribution: one value per level in `(0, 1)`, trained with the pinball loss.
    Quantiles(Vec<f64>),
}

/// The quantile levels a forecast reports by default: the deciles and the ends of the 95%
/// interval.
pub const DEFAULT_QUANTILES: [f64; 11] =
    [0.025, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.975];

/// The smallest scale or dispersion a head can emit: keeps `log` and divisions finite when the
/// raw output goes far negative.
const FLOOR: f64 = 1e-6;

impl Likelihood {
    /// `gaussian`, `student_t`, `negative_binomial` or `quantile`.
    pub fn name(&self) -> &'static str {
        match self {
            Likelihood::Gaussian => "gaussian",
            Likelihood::StudentT => "student_t",
            Likelihood::NegativeBinomial => "negative_binomial",
            Likelihood::Quantiles(_) => "quantile",
        }
    }

    /// Raw head outputs per horizon step and target.
    pub fn raw_size(&self) -> usize {
        match self {
            Likelihood::Gaussian | Likelihood::NegativeBinomial => 2,
            Likelihood::StudentT => 3,
            Likelihood::Quantiles(levels) => levels.len(),
        }
    }

    /// The distribution `raw` parameterises.
    ///
    /// - `raw`: `[batch, horizon, targets * raw_size]`, each target's values adjacent.
    /// - `scale`: `[batch, 1, targets]`, positive: the series' scale. Gaussian and Student-t
    ///   locations and scales, quantile values and the negative binomial's mean are multiplied
    ///   by it (the dispersion is scale-free, as GluonTS's PyTorch DeepAR does).
    pub fn distribution(&self, raw: Tensor<3>, scale: Tensor<3>) -> Predicted {
        let [batch, horizon, width] = raw.dims();
        let p = self.raw_size();
        let targets = width / p;
        let raw = raw.reshape([batch, horizon, targets, p]);
        let part = |k: usize| {
            raw.clone()
                .narrow(3, k, 1)
                .reshape([batch, horizon, targets])
        };
        let positive = |t: Tensor<3>| softplus(t, 1.0).add_scalar(FLOOR);
        match self {
            Likelihood::Gaussian => Predicted::Gaussian {
                mean: part(0) * scale.clone(),
                std: positive(part(1)) * scale,
            },
            Likelihood::StudentT => Predicted::StudentT {
                loc: part(0) * scale.clone(),
                scale: positive(part(1)) * scale,
                dof: positive(part(2)).add_scalar(2.0),
            },
            Likelihood::NegativeBinomial => Predicted::NegativeBinomial {
                mean: positive(part(0)) * scale,
                dispersion: positive(part(1)),
            },
            Likelihood::Quantiles(levels) => Predicted::Quantiles {
                levels: levels.clone(),
                values: raw * scale.reshape([batch, 1, targets, 1]),
            },
        }
    }

    /// Checks the quantile levels: at least one, each strictly between 0 and 1, increasing.
    pub fn validate(&self) -> Result<(), String> {
        if let Likelihood::Quantiles(levels) = self {
            if levels.is_empty() {
                return Err("give at least one quantile level".into());
            }
            if let Some(q) = levels.iter().find(|q| !(**q > 0.0 && **q < 1.0)) {
                return Err(format!(
                    "quantile level {q} is not strictly between 0 and 1"
                ));
            }
            if levels.windows(2).any(|w| w[0] >= w[1]) {
                return Err("quantile levels must increase, each once".into());
            }
        }
        Ok(())
    }
}

/// A predicted distribution per horizon step and target; every tensor `[batch, horizon,
/// targets]` except the quantile values, `[batch, horizon, targets, levels]`.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // built once per forward pass; boxing buys nothing
pub enum Predicted {
    /// Normal.
    Gaussian {
        /// Mean.
        mean: Tensor<3>,
        /// Standard deviation.
        std: Tensor<3>,
    },
    /// Student's t.
    StudentT {
        /// Location (the median).
        loc: Tensor<3>,
        /// Scale.
        scale: Tensor<3>,
        /// Degrees of freedom.
        dof: Tensor<3>,
    },
    /// Negative binomial.
    NegativeBinomial {
        /// Mean μ.
        mean: Tensor<3>,
        /// Dispersion α: variance `μ + α μ²` (α → 0 is Poisson).
        dispersion: Tensor<3>,
    },
    /// Quantile forecasts.
    Quantiles {
        /// Levels, increasing.
        levels: Vec<f64>,
        /// Values, one per level in the last dimension.
        values: Tensor<4>,
    },
}

impl Predicted {
    /// Log-density (log-mass for the negative binomial) of `y` `[batch, horizon, targets]`,
    /// elementwise; `None` for quantile forecasts, which have no density.
    pub fn log_prob(&self, y: Tensor<3>) -> Option<Tensor<3>> {
        let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        Some(match self {
            Predicted::Gaussian { mean, std } => {
                let z = (y - mean.clone()) / std.clone();
                (z.square().mul_scalar(-0.5) - std.clone().log()).sub_scalar(half_log_2pi)
            }
            Predicted::StudentT { loc, scale, dof } => {
                let z = (y - loc.clone()) / scale.clone();
                let half = dof.clone().mul_scalar(0.5);
                lgamma_shift(half.clone(), half.zeros_like().add_scalar(0.5))
                    - (dof.clone() * std::f64::consts::PI).log().mul_scalar(0.5)
                    - scale.clone().log()
                    - (dof.clone().add_scalar(1.0).mul_scalar(0.5))
                        * (z.square() / dof.clone()).log1p()
            }
            Predicted::NegativeBinomial { mean, dispersion } => {
                // With r = 1/α: ln C(y + r − 1, y) + r ln(r/(r+μ)) + y ln(μ/(r+μ)). The
                // binomial coefficient as the difference of the two small ln Γ terms, never
                // of large ones (r is 10⁶ when nearly Poisson, y thousands on busy days); the
                // logs of ratios through log1p, finite as α → 0.
                let r = dispersion.clone().recip();
                let r_larger = r.clone().greater(y.clone());
                let small_y =
                    lgamma_shift(r.clone(), y.clone()) - lgamma(y.clone().add_scalar(1.0));
                let large_y = lgamma_shift(y.clone().add_scalar(1.0), r.clone().sub_scalar(1.0))
                    - lgamma(r.clone());
                let comb = large_y.mask_where(r_larger, small_y);
                comb - r.clone() * (mean.clone() / r.clone()).log1p()
                    - y * (r / mean.clone()).log1p()
            }
            Predicted::Quantiles { .. } => return None,
        })
    }

    /// The training loss per element `[batch, horizon, targets]`: the negative log-likelihood,
    /// or the pinball loss averaged over the quantile levels.
    pub fn loss(&self, y: Tensor<3>) -> Tensor<3> {
        match self {
            Predicted::Quantiles { levels, values } => pinball(values.clone(), levels, y),
            _ => self.log_prob(y).expect("a parametric distribution").neg(),
        }
    }

    /// Copies the parameters to the host, for sampling and quantiles.
    pub fn to_host(&self) -> crate::forecast::HostDistribution {
        crate::forecast::HostDistribution::from_predicted(self)
    }
}

/// Pinball (quantile) loss of `values` `[b, h, t, levels]` at `levels` against `y` `[b, h, t]`,
/// averaged over the levels: `max(q (y - v), (q - 1) (y - v))`.
pub fn pinball(values: Tensor<4>, levels: &[f64], y: Tensor<3>) -> Tensor<3> {
    let [b, h, t, n] = values.dims();
    let mut total: Option<Tensor<3>> = None;
    for (k, &q) in levels.iter().enumerate() {
        let err = y.clone() - values.clone().narrow(3, k, 1).reshape([b, h, t]);
        let l = err.clone().mul_scalar(q).max_pair(err.mul_scalar(q - 1.0));
        total = Some(match total {
            Some(s) => s + l,
            None => l,
        });
    }
    total.expect("at least one level").div_scalar(n as f64)
}

/// Stirling's series for `ln Γ(z)` without its leading terms, accurate for `z ≥ 6`:
/// `1/(12z) − 1/(360z³) + 1/(1260z⁵)`.
fn stirling_tail(z: Tensor<3>) -> Tensor<3> {
    let inv = z.recip();
    let inv2 = inv.clone().square();
    inv.clone().mul_scalar(1.0 / 12.0) - (inv.clone() * inv2.clone()).mul_scalar(1.0 / 360.0)
        + (inv * inv2.clone() * inv2).mul_scalar(1.0 / 1260.0)
}

/// How far arguments are shifted up before Stirling's series is used.
const SHIFT: usize = 6;

/// `ln Γ(x)` for `x > 0`, differentiable: `ln Γ(x + 6) − Σₖ ln(x + k)` with Stirling's series
/// at `x + 6`.
pub fn lgamma(x: Tensor<3>) -> Tensor<3> {
    let z = x.clone().add_scalar(SHIFT as f64);
    let mut out = (z.clone().sub_scalar(0.5) * z.clone().log()) - z.clone()
        + stirling_tail(z).add_scalar(0.5 * (2.0 * std::f64::consts::PI).ln());
    for k in 0..SHIFT {
        out = out - x.clone().add_scalar(k as f64).log();
    }
    out
}

/// `ln Γ(r + d) − ln Γ(r)` for `r > 0`, `d > −1`, without the cancellation of subtracting two
/// large `ln Γ`s (r can be 10⁶ when a negative binomial is nearly Poisson): with `z₀ = r + 6`
/// and `z₁ = z₀ + d`, Stirling's series gives `(z₀ − ½) ln(1 + d/z₀) + d (ln z₁ − 1)` plus the
/// series' tails, and the shift contributes `−Σₖ ln(1 + d/(r + k))`.
pub fn lgamma_shift(r: Tensor<3>, d: Tensor<3>) -> Tensor<3> {
    let z0 = r.clone().add_scalar(SHIFT as f64);
    let z1 = z0.clone() + d.clone();
    let mut out = z0.clone().sub_scalar(0.5) * (d.clone() / z0.clone()).log1p()
        + d.clone() * z1.clone().log().sub_scalar(1.0)
        + stirling_tail(z1)
        - stirling_tail(z0);
    for k in 0..SHIFT {
        out = out - (d.clone() / r.clone().add_scalar(k as f64)).log1p();
    }
    out
}
