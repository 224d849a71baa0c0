//! `train.ema_decay` in real runs on Burn's Learner: the average leaves training untouched, is
//! what validation, early stopping and the kept model see, resumes with its checkpoint, and its
//! errors fire.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use gatecast_trainer::config::{Experiment, Optimizer};
use gatecast_trainer::run::{self, RunReport};

mod common;
use common::write_csv;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gatecast-ema-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small run that learns: SGD with momentum at a high rate, so consecutive steps' weights
/// differ and their average is another model.
fn experiment(csv: &Path) -> Experiment {
    let mut e = common::small_experiment(csv);
    e.window.stride = 2;
    e.model.hidden_size = 12;
    e.train.epochs = 3;
    e.train.patience = 10;
    e.train.optimizer = Optimizer::Sgd;
    e.train.lr = 0.05;
    e
}

fn train(exp: &Experiment, dir: &Path) -> RunReport {
    run::train(exp, dir, &[Device::flex()], false, true).unwrap()
}

fn column(r: &RunReport, f: impl Fn(&gatecast_trainer::renderer::EpochRow) -> f64) -> Vec<f64> {
    r.epochs.iter().map(f).collect()
}

/// The same seed with and without the average: every training loss is the same (the average
/// does not feed back into training), every validation loss differs (validation sees the
/// average), and the kept model is the best epoch's average, not its raw weights. A decay of
/// 1e-9 averages nothing, so it must reproduce the plain run's validation losses: an average
/// one step stale, or taken before the step, would not.
#[test]
fn validation_and_the_kept_model_see_the_average_and_training_does_not() {
    let _rng = common::seeded_runs();
    let dir = tmp("same-seed");
    let csv = write_csv(&dir, 600);
    let plain_exp = experiment(&csv);
    let plain = train(&plain_exp, &dir.join("plain"));
    let mut exp = plain_exp.clone();
    exp.train.ema_decay = 0.9;
    let averaged_dir = dir.join("averaged");
    let averaged = train(&exp, &averaged_dir);
    assert_eq!(
        column(&plain, |r| r.train_loss),
        column(&averaged, |r| r.train_loss),
        "the average must not change training"
    );
    for (p, a) in plain.epochs.iter().zip(&averaged.epochs) {
        assert!(
            (p.valid_loss - a.valid_loss).abs() > 1e-4 * p.valid_loss,
            "epoch {}: validation saw the raw weights ({} against {})",
            p.epoch,
            p.valid_loss,
            a.valid_loss
        );
    }
    // A short run with the average beats repeat-last (the table's `naive` row).
    let model = common::beats_repeat_last(&averaged);

    // model.bpk is the best epoch's average: the same bytes as its ema-N.bpk, and a test score
    // of its own (evaluated again from the run directory).
    let best = averaged.best_epoch.unwrap();
    let ck = averaged_dir.join("checkpoint");
    let kept = std::fs::read(averaged_dir.join("model.bpk")).unwrap();
    let average = std::fs::read(ck.join(format!("ema-{best}.bpk"))).unwrap();
    assert!(
        kept == average,
        "model.bpk is not the average of epoch {best}"
    );
    let again = run::evaluate(&averaged_dir, &Device::flex()).unwrap();
    assert!((again.rows[0].mae - model).abs() <= 1e-6 * model);
    // Averages of epochs whose checkpoint Burn deleted are deleted too.
    for epoch in 1..=averaged.epochs.len() {
        let has_model = ck.join(format!("model-{epoch}.bpk")).exists();
        let has_average = ck.join(format!("ema-{epoch}.bpk")).exists();
        assert_eq!(has_model, has_average, "epoch {epoch}");
    }

    exp.train.ema_decay = 1e-9;
    let none = train(&exp, &dir.join("none"));
    for (p, a) in plain.epochs.iter().zip(&none.epochs) {
        assert!(
            (p.valid_loss - a.valid_loss).abs() <= 1e-5 * p.valid_loss,
            "epoch {}: {} against {}",
            p.epoch,
            p.valid_loss,
            a.valid_loss
        );
    }
    // Its kept average is the best epoch's last weights: each epoch's average is saved after
    // that epoch's last step, not one step early or late.
    assert_eq!(none.best_epoch, plain.best_epoch);
    let (kept, raw) = (none.test.rows[0].mse, plain.test.rows[0].mse);
    assert!((kept - raw).abs() <= 1e-5 * raw, "{kept} against {raw}");
}

/// A resumed run continues the saved average; without the average's file it stops with an
/// error naming it, instead of restarting the average silently.
#[test]
fn resume_continues_the_average() {
    let _rng = common::seeded_runs();
    let dir = tmp("resume");
    let csv = write_csv(&dir, 600);
    let mut exp = experiment(&csv);
    exp.train.ema_decay = 0.9;
    exp.train.epochs = 2;
    let run_dir = dir.join("run");
    train(&exp, &run_dir);
    exp.train.epochs = 3;
    let resumed = run::train(&exp, &run_dir, &[Device::flex()], true, true).unwrap();
    assert_eq!(resumed.resumed_from, Some(2));
    assert_eq!(resumed.epochs.len(), 3);
    assert!(run_dir.join("checkpoint/ema-3.bpk").exists());

    let lost = dir.join("lost");
    exp.train.epochs = 2;
    train(&exp, &lost);
    std::fs::remove_file(lost.join("checkpoint/ema-2.bpk")).unwrap();
    exp.train.epochs = 3;
    let err = run::train(&exp, &lost, &[Device::flex()], true, true).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("ema-2.bpk") && msg.contains("train.ema_decay"),
        "{msg}"
    );
}

/// Out-of-range decays and several devices are refused with the option named.
#[test]
fn bad_settings_are_refused() {
    let _rng = common::seeded_runs();
    let dir = tmp("bad");
    let csv = write_csv(&dir, 600);
    for bad in [1.0, -0.5, f64::NAN] {
        let mut exp = experiment(&csv);
        exp.train.ema_decay = bad;
        let err = exp.validate().unwrap_err();
        assert!(err.contains("train.ema_decay"), "{err}");
    }
    let mut exp = experiment(&csv);
    exp.train.ema_decay = 0.9;
    let err = run::train(
        &exp,
        &dir.join("two"),
        &[Device::flex(), Device::flex()],
        false,
        true,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("train.ema_decay"), "{err:#}");
}

/// `(train_loss, valid_loss)` per epoch from a panel run's `metrics.csv`.
fn panel_losses(dir: &Path) -> Vec<(f64, f64)> {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<f64> = l.split(',').map(|v| v.parse().unwrap()).collect();
            (f[1], f[2])
        })
        .collect()
}

/// Panel runs (their own training loop) average the same way: the same training losses, other
/// validation losses, and a kept model that still forecasts.
#[test]
fn panel_runs_validate_the_average() {
    let _rng = common::seeded_runs();
    let dir = tmp("panel");
    let mut text = String::from("date,store,units\n");
    let t0 = chrono::NaiveDate::from_ymd_opt(2023, 1, 2).unwrap();
    for k in 0..6 {
        for d in 0..120 {
            let day = t0 + chrono::TimeDelta::days(d);
            let y = (10 + 3 * k) as f64
                * (1.0 + 0.4 * ((d % 7) as f64 / 7.0 * std::f64::consts::TAU).sin())
                + ((d * 37 + k * 11) % 5) as f64;
            text += &format!("{day},s{k},{y:.2}\n");
        }
    }
    let csv = dir.join("panel.csv");
    std::fs::write(&csv, text).unwrap();
    let toml = |ema: f64| {
        format!(
            "[data]\npath = \"{}\"\ntime_column = \"date\"\nid_column = \"store\"\ntargets = [\"units\"]\ncovariates = []\n[window]\nlookback = 21\nhorizon = 7\n[model]\ncell = \"gru\"\nhidden_size = 12\n[train]\nepochs = 3\nbatch_size = 16\nlr = 0.01\npatience = 5\nema_decay = {ema}\n",
            csv.display()
        )
    };
    let device = Device::flex();
    let plain = Experiment::from_toml(&toml(0.0), "plain").unwrap();
    let averaged = Experiment::from_toml(&toml(0.9), "averaged").unwrap();
    let p =
        gatecast_trainer::panel::train_panel(&plain, &dir.join("plain"), &device, true).unwrap();
    let a =
        gatecast_trainer::panel::train_panel(&averaged, &dir.join("avg"), &device, true).unwrap();
    let (lp, la) = (
        panel_losses(&dir.join("plain")),
        panel_losses(&dir.join("avg")),
    );
    assert_eq!(lp.len(), la.len());
    for ((tp, vp), (ta, va)) in lp.iter().zip(&la) {
        assert_eq!(tp, ta, "the average must not change training");
        assert!(
            (vp - va).abs() > 1e-4 * vp.abs(),
            "validation saw the raw weights"
        );
    }
    assert!(a.rows[0].mae.unwrap().is_finite() && p.rows[0].mae.unwrap().is_finite());
}
