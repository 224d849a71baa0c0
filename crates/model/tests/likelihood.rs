//! Distribution heads against SciPy (fixtures from scripts/fixtures/make_likelihood_fixtures.py):
//! log-densities, including negative binomials that are nearly Poisson and ones with a huge
//! dispersion; the pinball loss by hand; seeded draws whose quantiles converge to the analytic
//! ones; no NaN from extreme raw outputs or all-zero series.

use burn::tensor::{Device, Tensor, TensorData};
use gatecast_model::forecast::{
    normal_quantile, pinball, HostDistribution, Likelihood, Predicted, Rng,
};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/likelihoods.json")).unwrap()
}

fn t(values: &[f64], device: &Device) -> Tensor<3> {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [1, values.len(), 1]), device)
}

fn host(x: Tensor<3>) -> Vec<f64> {
    x.to_data().try_to_vec_as::<f64>().unwrap()
}

fn column(cases: &Value, key: &str) -> Vec<f64> {
    cases
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[key].as_f64().unwrap())
        .collect()
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        // f32 arithmetic on values up to ~10³: a relative 1e-5 and an absolute 2e-4.
        let tol = 2e-4 + 1e-5 * w.abs();
        assert!((g - w).abs() <= tol, "{what} case {k}: {g} vs SciPy's {w}");
    }
}

#[test]
fn log_densities_match_scipy() {
    let device = Device::flex();
    let f = fixture();
    let g = &f["gaussian"];
    let p = Predicted::Gaussian {
        mean: t(&column(g, "mean"), &device),
        std: t(&column(g, "std"), &device),
    };
    let got = host(p.log_prob(t(&column(g, "y"), &device)).unwrap());
    assert_close(&got, &column(g, "log_prob"), "gaussian");

    let s = &f["student_t"];
    let p = Predicted::StudentT {
        loc: t(&column(s, "loc"), &device),
        scale: t(&column(s, "scale"), &device),
        dof: t(&column(s, "dof"), &device),
    };
    let got = host(p.log_prob(t(&column(s, "y"), &device)).unwrap());
    assert_close(&got, &column(s, "log_prob"), "student-t");

    let n = &f["negative_binomial"];
    let p = Predicted::NegativeBinomial {
        mean: t(&column(n, "mean"), &device),
        dispersion: t(&column(n, "dispersion"), &device),
    };
    let got = host(p.log_prob(t(&column(n, "y"), &device)).unwrap());
    assert_close(&got, &column(n, "log_prob"), "negative binomial");
}

#[test]
fn pinball_loss_by_hand() {
    let device = Device::flex();
    // Two elements, levels 0.1 and 0.9; values [1, 3] and [0, 0.5]; y = 2 and 1.
    let values = Tensor::<4>::from_data(
        TensorData::new(vec![1.0f32, 3.0, 0.0, 0.5], [1, 2, 1, 2]),
        &device,
    );
    let y = t(&[2.0, 1.0], &device);
    let got = host(pinball(values, &[0.1, 0.9], y));
    // y=2: q0.1 at 1 → 0.1·1 = 0.1; q0.9 at 3 → (0.9−1)(−1) = 0.1; mean 0.1.
    // y=1: q0.1 at 0 → 0.1·1 = 0.1; q0.9 at 0.5 → 0.9·0.5 = 0.45; mean 0.275.
    assert_close(&got, &[0.1, 0.275], "pinball");
}

/// `distribution` multiplies locations by the series' scale, keeps scales positive, and stays
/// finite (values and gradients) for raw outputs far out either side and for zero targets
/// and zero-sized scales' floors.
#[test]
fn heads_are_scaled_and_finite_at_extremes() {
    let device = Device::flex().autodiff();
    for likelihood in [
        Likelihood::Gaussian,
        Likelihood::StudentT,
        Likelihood::NegativeBinomial,
        Likelihood::Quantiles(vec![0.1, 0.5, 0.9]),
    ] {
        let p = likelihood.raw_size();
        let raw: Vec<f32> = (0..4 * p)
            .map(|k| [-1e4f32, -30.0, 0.0, 30.0, 1e4][k % 5])
            .collect();
        let raw = Tensor::<3>::from_data(TensorData::new(raw, [1, 4, p]), &device).require_grad();
        let scale = Tensor::<3>::from_data(TensorData::new(vec![1e-3f32], [1, 1, 1]), &device);
        let y = t(&[0.0, 0.0, 3.0, 1e4], &device);
        let loss = likelihood.distribution(raw.clone(), scale).loss(y).sum();
        let v = loss.clone().into_scalar::<f64>();
        assert!(v.is_finite(), "{likelihood:?}: loss {v}");
        let grads = loss.backward();
        let g = host(raw.grad(&grads).unwrap().reshape([1, 4 * p, 1]));
        assert!(
            g.iter().all(|x| x.is_finite()),
            "{likelihood:?}: gradient {g:?}"
        );
    }
    // Scaling: the same raw outputs at scale 10 give ten times the location and scale.
    let device = Device::flex();
    let raw = Tensor::<3>::from_data(TensorData::new(vec![0.7f32, -0.2], [1, 1, 2]), &device);
    let one = Tensor::<3>::ones([1, 1, 1], &device);
    let ten = one.clone().mul_scalar(10.0);
    let (
        Predicted::Gaussian { mean: m1, std: s1 },
        Predicted::Gaussian {
            mean: m10,
            std: s10,
        },
    ) = (
        Likelihood::Gaussian.distribution(raw.clone(), one),
        Likelihood::Gaussian.distribution(raw, ten),
    )
    else {
        unreachable!()
    };
    assert_close(&host(m10), &[10.0 * host(m1)[0]], "scaled mean");
    let softplus = (1.0f64 + (-0.2f64).exp()).ln();
    assert_close(&host(s1.clone()), &[softplus + 1e-6], "softplus std");
    assert_close(&host(s10), &[10.0 * host(s1)[0]], "scaled std");
}

fn sampled(p: &Predicted, levels: &[f64]) -> Vec<f64> {
    let h = p.to_host();
    h.quantiles(levels, 40_000, 7)
        .into_iter()
        .map(|v| v[0])
        .collect()
}

/// Quantiles read from seeded draws converge to the analytic ones: a scale that is off (the
/// variance used as the standard deviation, α read as 1/α, a draw one count off) fails.
#[test]
fn sampled_quantiles_converge_to_the_analytic_ones() {
    let device = Device::flex();
    let f = fixture();
    let levels: Vec<f64> = f["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let want = |key: &str| -> Vec<f64> {
        f[key]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let st = &f["student_t_quantiles"];
    let p = Predicted::StudentT {
        loc: t(&[st["loc"].as_f64().unwrap()], &device),
        scale: t(&[st["scale"].as_f64().unwrap()], &device),
        dof: t(&[st["dof"].as_f64().unwrap()], &device),
    };
    for ((q, g), w) in levels
        .iter()
        .zip(sampled(&p, &levels))
        .zip(want("student_t_quantiles"))
    {
        // The 2.5% tail of a t(3) draws with a spread of ~0.1 at 40k samples.
        assert!(
            (g - w).abs() < 0.15,
            "student-t q{q}: sampled {g}, SciPy {w}"
        );
    }
    let nb = &f["negative_binomial_quantiles"];
    let p = Predicted::NegativeBinomial {
        mean: t(&[nb["mean"].as_f64().unwrap()], &device),
        dispersion: t(&[nb["dispersion"].as_f64().unwrap()], &device),
    };
    for ((q, g), w) in levels
        .iter()
        .zip(sampled(&p, &levels))
        .zip(want("negative_binomial_quantiles"))
    {
        // Integer quantiles: the sampled one, interpolated, is within a count.
        assert!(
            (g - w).abs() < 1.0,
            "negative binomial q{q}: sampled {g}, SciPy {w}"
        );
    }
    // A Gaussian answers exactly; its draws agree with that.
    let p = Predicted::Gaussian {
        mean: t(&[3.0], &device),
        std: t(&[2.0], &device),
    };
    let exact: Vec<f64> = p
        .to_host()
        .quantiles(&levels, 1, 0)
        .into_iter()
        .map(|v| v[0])
        .collect();
    assert!((exact[4] - (3.0 + 2.0 * 1.959_963_985)).abs() < 1e-6);
    let mut rng = Rng::new(11);
    let mut draws: Vec<f64> = (0..40_000)
        .map(|_| p.to_host().sample(&mut rng)[0])
        .collect();
    draws.sort_by(f64::total_cmp);
    for (q, e) in levels.iter().zip(&exact) {
        let g = gatecast_model::forecast::empirical_quantile(&draws, *q);
        assert!(
            (g - e).abs() < 0.08,
            "gaussian q{q}: sampled {g}, exact {e}"
        );
    }
}

#[test]
fn negative_binomial_draws_have_its_mean_and_variance() {
    let device = Device::flex();
    for (mu, alpha) in [(0.3, 0.01), (6.0, 0.4), (200.0, 2.0), (50.0, 1e-6)] {
        let h: HostDistribution = Predicted::NegativeBinomial {
            mean: t(&[mu], &device),
            dispersion: t(&[alpha], &device),
        }
        .to_host();
        let mut rng = Rng::new(5);
        let n = 100_000;
        let x: Vec<f64> = (0..n).map(|_| h.sample(&mut rng)[0]).collect();
        let mean = x.iter().sum::<f64>() / n as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        let want_var = mu + alpha * mu * mu;
        assert!(
            (mean - mu).abs() < 4.0 * (want_var / n as f64).sqrt() + 1e-3,
            "mean {mean} vs {mu}"
        );
        assert!(
            (var / want_var - 1.0).abs() < 0.1,
            "variance {var} vs {want_var} (μ {mu}, α {alpha})"
        );
        assert!(x.iter().all(|v| *v >= 0.0 && v.fract() == 0.0));
    }
}

#[test]
fn quantile_heads_interpolate_and_uncross() {
    let device = Device::flex();
    // Levels 0.1, 0.5, 0.9 emitted crossed (5, 1, 3): sorted to 1, 3, 5.
    let p = Predicted::Quantiles {
        levels: vec![0.1, 0.5, 0.9],
        values: Tensor::<4>::from_data(
            TensorData::new(vec![5.0f32, 1.0, 3.0], [1, 1, 1, 3]),
            &device,
        ),
    };
    let got: Vec<f64> = p
        .to_host()
        .quantiles(&[0.05, 0.1, 0.3, 0.5, 0.7, 0.95], 1, 0)
        .into_iter()
        .map(|v| v[0])
        .collect();
    assert_close(
        &got,
        &[1.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        "interpolated quantiles",
    );
    assert!((normal_quantile(0.5)).abs() < 1e-9);
    assert!((normal_quantile(0.1) + 1.281_551_565_5).abs() < 1e-8);
    assert!(Likelihood::Quantiles(vec![0.5, 0.1]).validate().is_err());
    assert!(Likelihood::Quantiles(vec![0.0, 0.5]).validate().is_err());
    assert!(Likelihood::Quantiles(vec![]).validate().is_err());
    assert!(Likelihood::Quantiles(vec![0.1, 0.9]).validate().is_ok());
}
