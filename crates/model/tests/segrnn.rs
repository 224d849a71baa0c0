//! The segment-recurrent forecaster: shapes, channel independence, the two normalisations'
//! invariances, config errors, and that it learns a seasonal series better than repeat-last.

mod common;

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Distribution, Tensor, TensorData};
use common::*;
use gatecast_model::forecast::{SegCell, SegNorm, SegRnnConfig};

const CELLS: [SegCell; 2] = [SegCell::Gru, SegCell::SLstm];

fn max_abs(a: Tensor<3>, b: Tensor<3>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

#[test]
fn shapes_and_the_last_segment_cut_to_the_horizon() {
    let device = device();
    for cell in CELLS {
        let model = SegRnnConfig::new(48, 20, 3)
            .with_segment(12)
            .with_hidden_size(8)
            .with_cell(cell)
            .init(&device);
        let x = Tensor::<3>::random([4, 48, 3], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(model.forward(x).dims(), [4, 20, 3]);
        let wrong = Tensor::<3>::zeros([4, 47, 3], &device);
        assert!(model.try_forward(wrong).is_err());
    }
    // The channel mix and the reversed view act on GRU states only.
    let e = SegRnnConfig::new(48, 20, 3)
        .with_segment(12)
        .with_hidden_size(8)
        .with_cell(SegCell::SLstm)
        .with_channel_mix(true)
        .try_init(&device)
        .unwrap_err()
        .to_string();
    assert!(e.contains("channel_mix"), "{e}");
    let e = SegRnnConfig::new(48, 20, 3)
        .with_segment(12)
        .with_hidden_size(8)
        .with_cell(SegCell::SLstm)
        .with_reverse_view(true)
        .try_init(&device)
        .unwrap_err()
        .to_string();
    assert!(e.contains("reverse_view"), "{e}");
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
    for cell in CELLS {
        let model = SegRnnConfig::new(24, 8, 3)
            .with_segment(8)
            .with_hidden_size(8)
            .with_cell(cell)
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
        assert!(
            max_abs(a.narrow(2, 2, 1), b.narrow(2, 2, 1)) > 1e-4,
            "{cell:?}"
        );
    }
}

#[test]
fn normalisations_make_forecasts_follow_the_level_and_scale() {
    let device = device();
    let x = Tensor::<3>::random([3, 24, 2], Distribution::Normal(0.0, 1.0), &device);
    // Last-value subtraction: a level shift moves the forecast by the same amount.
    for cell in CELLS {
        let lv = SegRnnConfig::new(24, 8, 2)
            .with_segment(6)
            .with_hidden_size(8)
            .with_norm(SegNorm::LastValue)
            .with_cell(cell)
            .init(&device);
        let shifted = lv.forward(x.clone() + 100.0) - 100.0;
        assert!(max_abs(lv.forward(x.clone()), shifted) < 1e-3);
    }
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
    for cell in CELLS {
        learns_a_seasonal_series_with(cell, false);
    }
    learns_a_seasonal_series_with(SegCell::Gru, true);
}

/// A reversed view starts as plain SegRNN (its map is zero) and, once the map is not, changes
/// the forecast while keeping channels independent.
#[test]
fn a_reversed_view_starts_as_segrnn() {
    let device = device();
    let model = SegRnnConfig::new(24, 8, 3)
        .with_segment(6)
        .with_hidden_size(8)
        .with_reverse_view(true)
        .init(&device);
    let x = Tensor::<3>::random([2, 24, 3], Distribution::Normal(0.0, 1.0), &device);
    let mut plain = model.clone();
    plain.reverse = None;
    assert!(max_abs(model.forward(x.clone()), plain.forward(x.clone())) < 1e-7);
    let mut turned = model.clone();
    turned.reverse = Some(burn::module::Param::from_tensor(Tensor::random(
        [8, 8],
        Distribution::Normal(0.0, 0.5),
        &device,
    )));
    let a = turned.forward(x.clone());
    assert!(max_abs(a.clone(), plain.forward(x.clone())) > 1e-4);
    let noise = Tensor::<3>::random([2, 24, 1], Distribution::Normal(0.0, 1.0), &device);
    let changed = Tensor::cat(
        vec![x.clone().narrow(2, 0, 2), x.narrow(2, 2, 1) + noise],
        2,
    );
    let b = turned.forward(changed);
    assert!(max_abs(a.narrow(2, 0, 2), b.narrow(2, 0, 2)) < 1e-6);
}

fn learns_a_seasonal_series_with(cell: SegCell, reverse_view: bool) {
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
        .with_cell(cell)
        .with_reverse_view(reverse_view)
        .init(&device);
    let mut optim = AdamConfig::new().init();
    let mut loss_value = f32::NAN;
    for _ in 0..150 {
        let loss = (model.forward(x.clone()) - y.clone()).powi_scalar(2).mean();
        loss_value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    eprintln!(
        "SegRNN ({cell:?}, reversed view {reverse_view}) training MSE {loss_value:.4}, repeat-last {naive:.4}"
    );
    assert!(
        loss_value < 0.2 * naive,
        "{cell:?}, {reverse_view}: MSE {loss_value} vs repeat-last {naive}"
    );
}

/// `profile [period, c]` at phases `p + t` for `t` in `from..from + len`, as `[b, len, c]`.
fn cycle_values(
    profile: &[f32],
    period: usize,
    c: usize,
    phases: &[usize],
    from: usize,
    len: usize,
) -> Vec<f32> {
    let mut out = Vec::new();
    for &p in phases {
        for t in from..from + len {
            let row = (p + t) % period;
            out.extend_from_slice(&profile[row * c..(row + 1) * c]);
        }
    }
    out
}

/// With a learned cycle, the network sees the look-back less the cycle at each window's own
/// steps and the forecast gets the cycle of the horizon's steps back: a window that is a
/// residual plus the cycle is forecast as the same network without the cycle forecasts the
/// residual, plus the cycle ahead. Phases that wrap past the end of the cycle (look-back and
/// horizon longer than it) and a phase at every end of the range are included.
#[test]
fn a_learned_cycle_is_removed_from_the_lookback_and_added_to_the_forecast() {
    let device = device();
    let (l, h, c, period) = (20usize, 9usize, 2usize, 7usize);
    for norm in [SegNorm::LastValue, SegNorm::RevIn, SegNorm::None] {
        let mut model = SegRnnConfig::new(l, h, c)
            .with_segment(5)
            .with_hidden_size(8)
            .with_norm(norm)
            .with_cycle(period)
            .init(&device);
        assert_eq!(model.cycle_len(), period);
        let mut rng = gatecast_data::synthetic::Rng::new(5);
        let profile: Vec<f32> = (0..period * c).map(|_| 3.0 * rng.normal() as f32).collect();
        model.cycle = Some(burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::new(profile.clone(), [period, c]),
            &device,
        )));
        let mut plain = model.clone();
        plain.cycle = None;
        let phases = [0usize, 3, 6, 1];
        let b = phases.len();
        let residual = Tensor::<3>::random([b, l, c], Distribution::Normal(0.0, 1.0), &device);
        let back = cycle_values(&profile, period, c, &phases, 0, l);
        let ahead = cycle_values(&profile, period, c, &phases, l, h);
        let x = residual.clone() + Tensor::from_data(TensorData::new(back, [b, l, c]), &device);
        let want =
            plain.forward(residual) + Tensor::from_data(TensorData::new(ahead, [b, h, c]), &device);
        let got = model.forward_at(x, Some(&phases));
        assert!(max_abs(got, want) < 1e-4, "{norm:?}");
    }
}

/// A cycle starts at zero (the untrained model forecasts as the same weights would without
/// one), and a model with a cycle refuses to run without one valid phase per window.
#[test]
fn a_cycle_starts_at_zero_and_needs_a_phase_per_window() {
    let device = device();
    let with = SegRnnConfig::new(12, 5, 2)
        .with_segment(4)
        .with_hidden_size(8)
        .with_cycle(24)
        .init(&device);
    let mut without = with.clone();
    without.cycle = None;
    assert_eq!(without.cycle_len(), 0);
    let x = Tensor::<3>::random([3, 12, 2], Distribution::Normal(0.0, 1.0), &device);
    let a = with.forward_at(x.clone(), Some(&[0, 23, 7]));
    assert!(max_abs(a, without.forward(x.clone())) < 1e-6);
    for (phases, says) in [
        (None, "needs each window's phase"),
        (Some(&[1usize, 2][..]), "2 phases for a batch of 3"),
        (Some(&[1, 24, 2][..]), "phases[1] = 24"),
    ] {
        let e = with
            .try_forward_at(x.clone(), phases)
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{e}");
    }
    assert_eq!(
        gatecast_model::forecast::SegRnn::phases(&[-1, 0, 25, 48], 24),
        [23, 0, 1, 0]
    );
}

/// Where the look-back is shorter than the cycle and the cycle is no sine (each phase's value
/// drawn at random), a short run with the windows' phases learns the cycle and forecasts
/// windows it did not train on far better than the same model without it and than
/// repeat-last.
#[test]
fn a_learned_cycle_forecasts_a_sharp_daily_profile_from_a_short_lookback() {
    let device = device().autodiff();
    let (l, h, period, windows) = (4usize, 8usize, 24usize, 96usize);
    let mut rng = gatecast_data::synthetic::Rng::new(21);
    let profile: Vec<f32> = (0..period).map(|_| rng.normal() as f32).collect();
    let mut draw = || {
        let (mut xs, mut ys, mut phases) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..windows {
            let p = (rng.uniform() * period as f64) as usize % period;
            let level = 3.0 * rng.normal() as f32;
            for t in 0..l + h {
                let v = level + profile[(p + t) % period] + 0.3 * rng.normal() as f32;
                if t < l {
                    xs.push(v);
                } else {
                    ys.push(v);
                }
            }
            phases.push(p);
        }
        (
            Tensor::<3>::from_data(TensorData::new(xs, [windows, l, 1]), &device),
            Tensor::<3>::from_data(TensorData::new(ys, [windows, h, 1]), &device),
            phases,
        )
    };
    let (x, y, phases) = draw();
    let (xt, yt, test_phases) = draw();
    let naive = (yt.clone() - xt.clone().narrow(1, l - 1, 1))
        .powi_scalar(2)
        .mean()
        .into_scalar::<f32>();
    let train = |cycle: usize| {
        let mut model = SegRnnConfig::new(l, h, 1)
            .with_segment(4)
            .with_hidden_size(16)
            .with_cycle(cycle)
            .init(&device);
        let mut optim = AdamConfig::new().init();
        for _ in 0..200 {
            let pred = model.forward_at(x.clone(), Some(&phases));
            let loss = (pred - y.clone()).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(2e-2, model, grads);
        }
        let pred = model.forward_at(xt.clone(), Some(&test_phases));
        (pred - yt.clone())
            .powi_scalar(2)
            .mean()
            .into_scalar::<f32>()
    };
    let (with, without) = (train(period), train(0));
    eprintln!("held-out MSE: cycle {with:.4}, no cycle {without:.4}, repeat-last {naive:.4}");
    assert!(with < 0.3 * without, "cycle {with} vs no cycle {without}");
    assert!(with < 0.1 * naive, "cycle {with} vs repeat-last {naive}");
}

/// A channel mix starts at zero (the untrained model forecasts as the same weights would
/// without one, each channel from its own look-back); once it is not zero, a channel's forecast
/// moves with another channel's look-back.
#[test]
fn a_channel_mix_starts_channel_independent_and_then_reads_other_channels() {
    let device = device();
    let mut with = SegRnnConfig::new(24, 8, 3)
        .with_segment(8)
        .with_hidden_size(8)
        .with_channel_mix(true)
        .init(&device);
    let mut without = with.clone();
    without.mix = None;
    let x = Tensor::<3>::random([2, 24, 3], Distribution::Normal(0.0, 1.0), &device);
    let noise = Tensor::<3>::random([2, 24, 1], Distribution::Normal(0.0, 1.0), &device);
    let changed = Tensor::cat(
        vec![x.clone().narrow(2, 0, 2), x.clone().narrow(2, 2, 1) + noise],
        2,
    );
    assert!(max_abs(with.forward(x.clone()), without.forward(x.clone())) < 1e-6);
    // Channel 0 reads channel 2 (mix[0, 2]); channel 1 reads nothing but itself.
    let mut mix = vec![0.0f32; 9];
    mix[2] = 0.8;
    with.mix = Some(burn::module::Param::from_tensor(Tensor::from_data(
        TensorData::new(mix, [3, 3]),
        &device,
    )));
    let (a, b) = (with.forward(x), with.forward(changed));
    assert!(max_abs(a.clone().narrow(2, 0, 1), b.clone().narrow(2, 0, 1)) > 1e-4);
    assert!(max_abs(a.narrow(2, 1, 1), b.narrow(2, 1, 1)) < 1e-6);
}

/// Where one channel's look-back says nothing about its future and another channel's says
/// everything (channel 1 is flat until the horizon, where it follows channel 0's sine), a short
/// run with the channel mix forecasts channel 1 on held-out windows far better than the same
/// model without it, which can only forecast one flat path for every window.
#[test]
fn a_channel_mix_forecasts_a_channel_from_another_channels_lookback() {
    let device = device().autodiff();
    let (l, h, windows) = (24usize, 8usize, 96usize);
    let mut rng = gatecast_data::synthetic::Rng::new(5);
    let mut draw = || {
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for _ in 0..windows {
            let phase = rng.uniform() as f32 * std::f32::consts::TAU;
            let level = rng.normal() as f32;
            for t in 0..l + h {
                let wave = (std::f32::consts::TAU * t as f32 / 12.0 + phase).sin();
                let lead = wave + 0.05 * rng.normal() as f32;
                let follow = if t < l { level } else { level + wave };
                if t < l {
                    xs.extend([lead, follow]);
                } else {
                    ys.extend([lead, follow]);
                }
            }
        }
        (
            Tensor::<3>::from_data(TensorData::new(xs, [windows, l, 2]), &device),
            Tensor::<3>::from_data(TensorData::new(ys, [windows, h, 2]), &device),
        )
    };
    let (x, y) = draw();
    let (xt, yt) = draw();
    let train = |mix: bool| {
        let mut model = SegRnnConfig::new(l, h, 2)
            .with_segment(8)
            .with_hidden_size(16)
            .with_channel_mix(mix)
            .init(&device);
        let mut optim = AdamConfig::new().init();
        for _ in 0..200 {
            let loss = (model.forward(x.clone()) - y.clone()).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(2e-2, model, grads);
        }
        (model.forward(xt.clone()) - yt.clone())
            .narrow(2, 1, 1)
            .powi_scalar(2)
            .mean()
            .into_scalar::<f32>()
    };
    let (with, without) = (train(true), train(false));
    eprintln!("held-out MSE of channel 1: mix {with:.4}, no mix {without:.4}");
    assert!(with < 0.3 * without, "mix {with} vs no mix {without}");
}
