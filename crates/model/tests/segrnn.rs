//! The segment-recurrent forecaster: shapes, channel independence, the two normalisations'
//! invariances, config errors, and that it learns a seasonal series better than repeat-last.

mod common;

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Distribution, Tensor, TensorData};
use common::*;
use gatecast_model::forecast::{SegNorm, SegRnnConfig};

fn max_abs(a: Tensor<3>, b: Tensor<3>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

#[test]
fn shapes_and_the_last_segment_cut_to_the_horizon() {
    let device = device();
    let model = SegRnnConfig::new(48, 20, 3)
        .with_segment(12)
        .with_hidden_size(8)
        .init(&device);
    let x = Tensor::<3>::random([4, 48, 3], Distribution::Normal(0.0, 1.0), &device);
    assert_eq!(model.forward(x).dims(), [4, 20, 3]);
    let wrong = Tensor::<3>::zeros([4, 47, 3], &device);
    assert!(model.try_forward(wrong).is_err());
    for (l, d) in [(50, 8), (48, 7), (0, 8)] {
        let e = SegRnnConfig::new(l, 20, 3)
            .with_segment(12)
            .with_hidden_size(d)
            .try_init(&device)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lookback") || e.contains("hidden_size"), "{e}");
    }
}

#[test]
fn channels_are_forecast_independently() {
    let device = device();
    let model = SegRnnConfig::new(24, 8, 3)
        .with_segment(8)
        .with_hidden_size(8)
        .init(&device);
    let x = Tensor::<3>::random([2, 24, 3], Distribution::Normal(0.0, 1.0), &device);
    let noise = Tensor::<3>::random([2, 24, 1], Distribution::Normal(0.0, 1.0), &device);
    let changed = Tensor::cat(
        vec![x.clone().narrow(2, 0, 2), x.clone().narrow(2, 2, 1) + noise],
        2,
    );
    let (a, b) = (model.forward(x), model.forward(changed));
    // Channels 0 and 1 do not see channel 2; channel 2's forecast does change.
    assert!(max_abs(a.clone().narrow(2, 0, 2), b.clone().narrow(2, 0, 2)) < 1e-6);
    assert!(max_abs(a.narrow(2, 2, 1), b.narrow(2, 2, 1)) > 1e-4);
}

#[test]
fn normalisations_make_forecasts_follow_the_level_and_scale() {
    let device = device();
    let x = Tensor::<3>::random([3, 24, 2], Distribution::Normal(0.0, 1.0), &device);
    // Last-value subtraction: a level shift moves the forecast by the same amount.
    let lv = SegRnnConfig::new(24, 8, 2)
        .with_segment(6)
        .with_hidden_size(8)
        .with_norm(SegNorm::LastValue)
        .init(&device);
    let shifted = lv.forward(x.clone() + 100.0) - 100.0;
    assert!(max_abs(lv.forward(x.clone()), shifted) < 1e-3);
    // RevIN: an affine change of the input (scale 5, shift -30) changes the forecast likewise.
    let ri = SegRnnConfig::new(24, 8, 2)
        .with_segment(6)
        .with_hidden_size(8)
        .with_norm(SegNorm::RevIn)
        .init(&device);
    let scaled = (ri.forward(x.clone() * 5.0 - 30.0) + 30.0) / 5.0;
    assert!(max_abs(ri.forward(x.clone()), scaled) < 1e-3);
    // Without normalisation neither holds.
    let none = SegRnnConfig::new(24, 8, 2)
        .with_segment(6)
        .with_hidden_size(8)
        .with_norm(SegNorm::None)
        .init(&device);
    let shifted = none.forward(x.clone() + 100.0) - 100.0;
    assert!(max_abs(none.forward(x), shifted) > 1.0);
}

#[test]
fn learns_a_seasonal_series_better_than_repeat_last() {
    let device = device().autodiff();
    device.seed(3);
    let (l, h, period) = (48usize, 12usize, 12.0f32);
    // Windows of two noisy sines with different phases and levels.
    let windows = 64;
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    let mut rng = gatecast_data::synthetic::Rng::new(9);
    for w in 0..windows {
        for t in 0..l + h {
            for c in 0..2 {
                let phase = w as f32 * 0.37 + c as f32;
                let v = 10.0 * c as f32
                    + (2.0 * std::f32::consts::PI * t as f32 / period + phase).sin()
                    + 0.05 * rng.normal() as f32;
                if t < l {
                    xs.push(v);
                } else {
                    ys.push(v);
                }
            }
        }
    }
    let x = Tensor::<3>::from_data(TensorData::new(xs, [windows, l, 2]), &device);
    let y = Tensor::<3>::from_data(TensorData::new(ys, [windows, h, 2]), &device);
    let naive = {
        let last = x.clone().narrow(1, l - 1, 1);
        (y.clone() - last)
            .powi_scalar(2)
            .mean()
            .into_scalar::<f32>()
    };
    let mut model = SegRnnConfig::new(l, h, 2)
        .with_segment(12)
        .with_hidden_size(16)
        .init(&device);
    let mut optim = AdamConfig::new().init();
    let mut loss_value = f32::NAN;
    for _ in 0..150 {
        let loss = (model.forward(x.clone()) - y.clone()).powi_scalar(2).mean();
        loss_value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    eprintln!("SegRNN training MSE {loss_value:.4}, repeat-last {naive:.4}");
    assert!(
        loss_value < 0.2 * naive,
        "MSE {loss_value} vs repeat-last {naive}"
    );
}
