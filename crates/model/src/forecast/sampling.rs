//! Predicted distributions on the host: seeded draws (DeepAR's ancestral sampling feeds them
//! back step by step) and quantiles (analytic for the Gaussian, interpolated between the
//! predicted levels for quantile heads, empirical from draws otherwise).

use super::likelihood::Predicted;
use burn::tensor::Tensor;

/// A small seeded generator (xoshiro256++ seeded through SplitMix64): reproducible draws with no
/// dependency; not for cryptography.
#[derive(Debug, Clone)]
pub struct Rng([u64; 4]);

impl Rng {
    /// A generator from a seed; the same seed gives the same draws.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let out = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in `(0, 1)` (never exactly 0, so `ln` of it is finite).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Gamma with `shape > 0` and scale 1 (Marsaglia and Tsang; shapes below 1 boosted by
    /// `U^(1/shape)`).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Poisson with mean `lambda ≥ 0`: inversion below 30, Hörmann's PTRS above.
    pub fn poisson(&mut self, lambda: f64) -> f64 {
        if lambda <= 0.0 {
            return 0.0;
        }
        if lambda < 30.0 {
            let (mut k, mut p, mut sum) = (0.0, (-lambda).exp(), 0.0);
            let u = self.uniform();
            sum += p;
            while u > sum && k < 1000.0 {
                k += 1.0;
                p *= lambda / k;
                sum += p;
            }
            return k;
        }
        let slam = lambda.sqrt();
        let loglam = lambda.ln();
        let b = 0.931 + 2.53 * slam;
        let a = -0.059 + 0.02483 * b;
        let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
        let vr = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + lambda + 0.43).floor();
            if us >= 0.07 && v <= vr {
                return k;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            if (v * inv_alpha / (a / (us * us) + b)).ln() <= -lambda + k * loglam - ln_factorial(k)
            {
                return k;
            }
        }
    }
}

/// `ln k!` (Stirling's series beyond 10, exact below).
fn ln_factorial(k: f64) -> f64 {
    if k < 10.0 {
        return (1..=k as u64).map(|i| (i as f64).ln()).sum();
    }
    let n = k + 1.0;
    (n - 0.5) * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI).ln() + 1.0 / (12.0 * n)
        - 1.0 / (360.0 * n * n * n)
}

/// The inverse of the standard normal CDF (Acklam's rational approximation, relative error
/// below 1.2e-9), for `0 < p < 1`.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The parameters of a [`Predicted`] distribution on the host, element by element in
/// `[batch, horizon, targets]` order.
#[derive(Debug, Clone)]
pub struct HostDistribution {
    kind: Kind,
    dims: [usize; 3],
}

#[derive(Debug, Clone)]
enum Kind {
    Gaussian {
        mean: Vec<f64>,
        std: Vec<f64>,
    },
    StudentT {
        loc: Vec<f64>,
        scale: Vec<f64>,
        dof: Vec<f64>,
    },
    NegativeBinomial {
        mean: Vec<f64>,
        dispersion: Vec<f64>,
    },
    // Values sorted per element (a quantile head's levels may cross).
    Quantiles {
        levels: Vec<f64>,
        values: Vec<Vec<f64>>,
    },
}

fn host(t: &Tensor<3>) -> Vec<f64> {
    t.to_data().try_to_vec_as::<f64>().expect("float tensor")
}

impl HostDistribution {
    /// Copies `p`'s parameters to the host.
    pub fn from_predicted(p: &Predicted) -> Self {
        let (kind, dims) = match p {
            Predicted::Gaussian { mean, std } => (
                Kind::Gaussian {
                    mean: host(mean),
                    std: host(std),
                },
                mean.dims(),
            ),
            Predicted::StudentT { loc, scale, dof } => (
                Kind::StudentT {
                    loc: host(loc),
                    scale: host(scale),
                    dof: host(dof),
                },
                loc.dims(),
            ),
            Predicted::NegativeBinomial { mean, dispersion } => (
                Kind::NegativeBinomial {
                    mean: host(mean),
                    dispersion: host(dispersion),
                },
                mean.dims(),
            ),
            Predicted::Quantiles { levels, values } => {
                let [b, h, t, n] = values.dims();
                let flat: Vec<f64> = values
                    .to_data()
                    .try_to_vec_as::<f64>()
                    .expect("float tensor");
                let values = flat
                    .chunks(n)
                    .map(|c| {
                        let mut c = c.to_vec();
                        c.sort_by(f64::total_cmp);
                        c
                    })
                    .collect();
                (
                    Kind::Quantiles {
                        levels: levels.clone(),
                        values,
                    },
                    [b, h, t],
                )
            }
        };
        Self { kind, dims }
    }

    /// `[batch, horizon, targets]`.
    pub fn dims(&self) -> [usize; 3] {
        self.dims
    }

    fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// One draw per element, `[batch, horizon, targets]` flattened. A quantile head draws by
    /// inverting its interpolated quantile function at a uniform level.
    pub fn sample(&self, rng: &mut Rng) -> Vec<f64> {
        (0..self.len()).map(|i| self.draw(i, rng)).collect()
    }

    fn draw(&self, i: usize, rng: &mut Rng) -> f64 {
        match &self.kind {
            Kind::Gaussian { mean, std } => mean[i] + std[i] * rng.normal(),
            Kind::StudentT { loc, scale, dof } => {
                let chi2 = 2.0 * rng.gamma(dof[i] / 2.0);
                loc[i] + scale[i] * rng.normal() / (chi2 / dof[i]).sqrt()
            }
            Kind::NegativeBinomial { mean, dispersion } => {
                let r = 1.0 / dispersion[i];
                let rate = rng.gamma(r) * mean[i] / r;
                rng.poisson(rate)
            }
            Kind::Quantiles { levels, values } => interpolate(levels, &values[i], rng.uniform()),
        }
    }

    /// The quantile at each of `levels`, per element: `result[level][element]`. Gaussians and
    /// quantile heads answer exactly (a quantile head interpolates linearly between its levels
    /// and holds its outermost values beyond them); Student-t and negative binomial from
    /// `samples` seeded draws per element (linear interpolation between order statistics, as
    /// NumPy's default).
    pub fn quantiles(&self, levels: &[f64], samples: usize, seed: u64) -> Vec<Vec<f64>> {
        let n = self.len();
        match &self.kind {
            Kind::Gaussian { mean, std } => levels
                .iter()
                .map(|&q| {
                    let z = normal_quantile(q);
                    (0..n).map(|i| mean[i] + std[i] * z).collect()
                })
                .collect(),
            Kind::Quantiles {
                levels: own,
                values,
            } => levels
                .iter()
                .map(|&q| (0..n).map(|i| interpolate(own, &values[i], q)).collect())
                .collect(),
            _ => {
                let mut rng = Rng::new(seed);
                let mut out = vec![vec![0.0; n]; levels.len()];
                let mut draws = vec![0.0; samples.max(1)];
                for i in 0..n {
                    for d in draws.iter_mut() {
                        *d = self.draw(i, &mut rng);
                    }
                    draws.sort_by(f64::total_cmp);
                    for (row, &q) in out.iter_mut().zip(levels) {
                        row[i] = empirical_quantile(&draws, q);
                    }
                }
                out
            }
        }
    }
}

/// The `q` quantile of sorted `draws`, linear between order statistics (NumPy's default).
pub fn empirical_quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// A quantile head's value at `q`: linear between its levels, its end values beyond them.
fn interpolate(levels: &[f64], values: &[f64], q: f64) -> f64 {
    if q <= levels[0] {
        return values[0];
    }
    for k in 1..levels.len() {
        if q <= levels[k] {
            let w = (q - levels[k - 1]) / (levels[k] - levels[k - 1]);
            return values[k - 1] + w * (values[k] - values[k - 1]);
        }
    }
    values[values.len() - 1]
}
