//! `model.ensemble`: segment-recurrent members, each trained on its own loss as if alone, whose
//! mean is the forecast; a short real run that beats repeat-last and reloads from its directory.

use std::path::PathBuf;

use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor};
use burn::train::TrainStep;
use gatecast_data::{ForecastBatch, WindowConfig};
use gatecast_model::forecast::{SegNorm, SegRnn};
use gatecast_trainer::config::{Cell, ClipMode, Experiment};
use gatecast_trainer::model::{Clip, ForecastModel, Net};
use gatecast_trainer::run;

mod common;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gatecast-ens-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A two-member ensemble (last value, RevIN) over two channels, the first the target.
fn ensemble_experiment() -> Experiment {
    let mut e = Experiment::default();
    e.model.cell = Cell::Segrnn;
    e.model.segment = 6;
    e.model.hidden_size = 8;
    e.model.ensemble = vec![SegNorm::LastValue, SegNorm::RevIn];
    e.window.lookback = 24;
    e.window.horizon = 8;
    e.train.clip = ClipMode::None;
    e.train.loss = gatecast_trainer::config::Loss::Mae;
    e
}

fn members(model: &ForecastModel) -> Vec<SegRnn> {
    match &model.net {
        Net::Segments(m) => m.clone(),
        _ => panic!("model.ensemble built a single network"),
    }
}

fn max_abs(a: Tensor<3>, b: Tensor<3>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// Trained side by side for a few Adam steps, each member ends exactly where the same member
/// trained alone on the same batches does: it learns from its own loss, not from the loss of the
/// mean (which would couple the members and make them a single, larger model).
#[test]
fn each_member_trains_as_it_would_alone() {
    let device = Device::flex().autodiff();
    let _rng = common::trains();
    let exp = ensemble_experiment();
    let window = WindowConfig::new(24, 8, vec!["a".into(), "b".into()], vec!["a".into()]);
    let model = run::build_model(&exp, &window, &device, None).unwrap();
    let solo: Vec<ForecastModel> = members(&model)
        .into_iter()
        .map(|m| ForecastModel::new(Net::Segment(m), 1, Clip::None, None).with_l1_loss(true))
        .collect();
    let normal = Distribution::Normal(0.0, 1.0);
    let batches: Vec<ForecastBatch> = (0..4)
        .map(|_| ForecastBatch {
            inputs: Tensor::random([5, 24, 2], normal, &device),
            targets: Tensor::random([5, 8, 1], normal, &device),
            future: None,
        })
        .collect();
    let fit = |mut m: ForecastModel| {
        let mut optim: ModuleOptimizer = AdamConfig::new().init();
        for b in &batches {
            let grads = TrainStep::step(&m, b.clone()).grads;
            m = m.optimize(&mut optim, ModuleLearningRate::from(1e-2), grads);
        }
        m
    };
    let x = Tensor::<3>::random([3, 24, 2], normal, &device);
    let before = members(&model)[0].forward(x.clone());
    let together = members(&fit(model));
    for (k, alone) in solo.into_iter().map(fit).enumerate() {
        let Net::Segment(alone) = &alone.net else {
            unreachable!()
        };
        let diff = max_abs(together[k].forward(x.clone()), alone.forward(x.clone()));
        assert!(
            diff < 1e-6,
            "member {k} differs from its solo run by {diff}"
        );
    }
    // The steps did move the weights, so the comparison above compared trained models.
    assert!(max_abs(together[0].forward(x.clone()), before) > 1e-3);
}

/// The ensemble forecasts the mean of its members' forecasts of the target channels, and its
/// members differ (built one after the other from the device's generator).
#[test]
fn the_forecast_is_the_members_mean() {
    let device = Device::flex();
    let exp = ensemble_experiment();
    let window = WindowConfig::new(24, 8, vec!["a".into(), "b".into()], vec!["a".into()]);
    let model = run::build_model(&exp, &window, &device, None).unwrap();
    let m = members(&model);
    assert_eq!(m.len(), 2);
    let x = Tensor::<3>::random([3, 24, 2], Distribution::Normal(0.0, 1.0), &device);
    let (a, b) = (
        m[0].forward(x.clone()).narrow(2, 0, 1),
        m[1].forward(x.clone()).narrow(2, 0, 1),
    );
    assert!(max_abs(a.clone(), b.clone()) > 1e-3, "members are copies");
    let mean = (a + b) / 2.0;
    assert!(max_abs(model.predict(x, None), mean) < 1e-6);
}

/// A real run on Burn's Learner: the ensemble beats repeat-last on the test split, its training
/// loss falls, and `evaluate` rebuilds it from the run directory to the same test table.
#[test]
fn a_short_run_beats_repeat_last_and_reloads() {
    let _rng = common::trains();
    let dir = tmp("run");
    let csv = common::write_csv(&dir, 1200);
    let mut e = common::small_experiment(&csv);
    e.data.calendar.clear();
    e.model.cell = Cell::Segrnn;
    e.model.segment = 6;
    e.model.hidden_size = 16;
    e.model.ensemble = vec![SegNorm::LastValue, SegNorm::RevIn];
    e.window.stride = 2;
    e.train.epochs = 6;
    e.train.lr = 5e-3;
    let run_dir = dir.join("out");
    let device = Device::flex();
    let report = run::train(&e, &run_dir, std::slice::from_ref(&device), false, true).unwrap();
    let rows = &report.test.rows;
    let (model, naive) = (&rows[0], rows.iter().find(|r| r.name == "naive").unwrap());
    assert!(
        model.mse < 0.7 * naive.mse,
        "ensemble MSE {} vs repeat-last {}",
        model.mse,
        naive.mse
    );
    let losses: Vec<f64> = report.epochs.iter().map(|r| r.train_loss).collect();
    assert!(losses.last() < losses.first(), "training loss {losses:?}");
    let again = run::evaluate(&run_dir, &device).unwrap();
    assert!((again.rows[0].mse - model.mse).abs() < 1e-9 * model.mse.max(1.0));
    let saved = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    let saved = Experiment::from_toml(&saved, "config.toml").unwrap();
    assert_eq!(saved.model.ensemble, e.model.ensemble);
}
