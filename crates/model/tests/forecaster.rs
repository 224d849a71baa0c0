//! The direct multi-horizon forecaster: shapes, covariates, errors, and that it learns.

mod common;

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Distribution, Tensor};
use common::*;
use gatecast_model::forecast::{CellType, ForecasterConfig};

#[test]
fn shapes_for_every_cell_with_and_without_covariates() {
    let device = device();
    for cell in [CellType::Rnn, CellType::Gru, CellType::Lstm] {
        for bidir in [false, true] {
            let f = ForecasterConfig::new(cell, 3, 8, 5, 2)
                .with_num_layers(2)
                .with_bidirectional(bidir)
                .with_future_size(4)
                .init(&device);
            let x = Tensor::<3>::random([6, 10, 3], Distribution::Normal(0.0, 1.0), &device);
            let fut = Tensor::<3>::random([6, 5, 4], Distribution::Normal(0.0, 1.0), &device);
            assert_eq!(f.forward(x.clone(), Some(fut)).dims(), [6, 5, 2]);
            let err = f.try_forward(x, None, None).unwrap_err().to_string();
            assert!(err.contains("future covariates"), "{err}");
        }
    }
}

#[test]
fn covariates_change_the_forecast() {
    let device = device();
    let f = ForecasterConfig::new(CellType::Gru, 2, 4, 3, 1)
        .with_future_size(1)
        .init(&device);
    let x = Tensor::<3>::random([2, 7, 2], Distribution::Normal(0.0, 1.0), &device);
    let a = f.forward(x.clone(), Some(Tensor::zeros([2, 3, 1], &device)));
    let b = f.forward(x, Some(Tensor::ones([2, 3, 1], &device)));
    assert!(values(a - b).iter().any(|d| d.abs() > 1e-6));
}

/// 30 Adam steps on one fixed batch of sines (look-back 20, horizon 4); returns the losses.
fn fit_fixed_batch(config: ForecasterConfig) -> Vec<f32> {
    let device = device().autodiff();
    device.seed(3);
    let mut model = config.init(&device);
    let t = Tensor::<1, burn::tensor::Int>::arange(0..24, &device)
        .float()
        .reshape([1, 24]);
    let phase = Tensor::<2>::random([16, 1], Distribution::Uniform(0.0, 6.0), &device);
    let series = (t * 0.4 + phase).sin();
    let x = series.clone().narrow(1, 0, 20).reshape([16, 20, 1]);
    let y = series.narrow(1, 20, 4).reshape([16, 4, 1]);
    let mut optim = AdamConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..30 {
        let loss = (model.forward(x.clone(), None) - y.clone())
            .powi_scalar(2)
            .mean();
        losses.push(values(loss.clone())[0]);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    losses
}

/// Thirty Adam steps on a fixed batch of sines cut the MSE at least in half.
#[test]
fn learns_a_fixed_batch() {
    let losses = fit_fixed_batch(ForecasterConfig::new(CellType::Lstm, 1, 16, 4, 1));
    assert!(losses[29] < 0.5 * losses[0], "{losses:?}");
}

#[test]
fn autoregressive_shapes_and_errors() {
    let device = device();
    for cell in [CellType::Rnn, CellType::Gru, CellType::Lstm] {
        let f = ForecasterConfig::new(cell, 3, 8, 5, 2)
            .with_num_layers(2)
            .with_bidirectional(true)
            .with_future_size(4)
            .with_autoregressive(true)
            .init(&device);
        assert!(f.is_autoregressive());
        let x = Tensor::<3>::random([6, 10, 3], Distribution::Normal(0.0, 1.0), &device);
        let fut = Tensor::<3>::random([6, 5, 4], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(f.forward(x.clone(), Some(fut.clone())).dims(), [6, 5, 2]);
        let err = f
            .try_forward(x, Some(fut), Some(&[10; 6]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("autoregressive"), "{err}");
    }
}

/// Each step feeds the previous forecast back: changing only the last observed target changes
/// every horizon step, and the first step differs from a direct head's.
#[test]
fn autoregressive_feeds_its_forecasts_back() {
    let device = device();
    let f = ForecasterConfig::new(CellType::Gru, 1, 8, 4, 1)
        .with_autoregressive(true)
        .init(&device);
    let x = Tensor::<3>::random([1, 6, 1], Distribution::Normal(0.0, 1.0), &device);
    let mut y = values(x.clone());
    y[5] += 1.0;
    let x2 = Tensor::<3>::from_data(burn::tensor::TensorData::new(y, [1, 6, 1]), &device);
    let a = values(f.forward(x, None));
    let b = values(f.forward(x2, None));
    assert!(
        a.iter().zip(&b).all(|(p, q)| (p - q).abs() > 1e-7),
        "{a:?} {b:?}"
    );
}

#[test]
fn autoregressive_learns_a_fixed_batch() {
    let losses = fit_fixed_batch(
        ForecasterConfig::new(CellType::Lstm, 1, 16, 4, 1).with_autoregressive(true),
    );
    assert!(losses[29] < 0.5 * losses[0], "{losses:?}");
}

/// RevIN makes the forecast follow an affine change of each input channel: scaling the
/// targets' channel by 3 and shifting it by 10 (and the other channel by its own) scales and
/// shifts the forecast the same way. Without it the same change does not carry over.
#[test]
fn revin_is_equivariant_to_each_channels_scale_and_level() {
    let device = device();
    let x = Tensor::<3>::random([4, 9, 2], Distribution::Normal(0.0, 1.0), &device);
    let (scale, shift) = (
        Tensor::<1>::from_floats([3.0, 0.5], &device).reshape([1, 1, 2]),
        Tensor::<1>::from_floats([10.0, -4.0], &device).reshape([1, 1, 2]),
    );
    let moved = x.clone() * scale + shift;
    for (revin, autoregressive) in [(true, false), (true, true), (false, false)] {
        let f = ForecasterConfig::new(CellType::Lstm, 2, 8, 3, 1)
            .with_revin(revin)
            .with_autoregressive(autoregressive)
            .init(&device);
        let a = values(f.forward(x.clone(), None));
        let b = values(f.forward(moved.clone(), None));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (q - (3.0 * p + 10.0)).abs())
            .fold(0.0f32, f32::max);
        if revin {
            assert!(
                worst < 1e-3,
                "autoregressive {autoregressive}: off by {worst}"
            );
        } else {
            assert!(
                worst > 0.1,
                "without RevIN the change carried over ({worst})"
            );
        }
    }
    let both = ForecasterConfig::new(CellType::Lstm, 2, 8, 3, 1)
        .with_revin(true)
        .with_last_value_norm(true)
        .try_init(&device);
    assert!(both.is_err());
}

/// Last-value normalisation makes the forecast shift with the level of the input.
#[test]
fn last_value_norm_is_shift_equivariant() {
    let device = device();
    for autoregressive in [false, true] {
        let f = ForecasterConfig::new(CellType::Gru, 2, 8, 3, 2)
            .with_last_value_norm(true)
            .with_autoregressive(autoregressive)
            .init(&device);
        let x = Tensor::<3>::random([4, 7, 2], Distribution::Normal(0.0, 1.0), &device);
        let a = values(f.forward(x.clone(), None));
        let b = values(f.forward(x + 10.0, None));
        for (p, q) in a.iter().zip(&b) {
            assert!((q - p - 10.0).abs() < 1e-4, "{p} {q}");
        }
    }
}
