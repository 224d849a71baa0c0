//! Helpers shared by the trainer's integration tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use gatecast_trainer::config::Experiment;

/// An hourly series with a daily cycle, a weak trend and noise, plus a temperature covariate.
pub fn write_csv(dir: &Path, rows: usize) -> PathBuf {
    let mut rng = gatecast_data::synthetic::Rng::new(11);
    let mut text = String::from("time,load,temp\n");
    let t0 = chrono::NaiveDate::from_ymd_opt(2023, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    for i in 0..rows {
        let t = t0 + chrono::TimeDelta::hours(i as i64);
        let day = (2.0 * std::f64::consts::PI * i as f64 / 24.0).sin();
        let temp = 10.0 + 5.0 * day + rng.normal();
        let load = 100.0 + 30.0 * day + 0.01 * i as f64 + 2.0 * rng.normal();
        text += &format!("{},{load:.3},{temp:.3}\n", t.format("%Y-%m-%d %H:%M:%S"));
    }
    let path = dir.join("load.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// Burn's flex device has one random generator per process (initialisation, dropout), which
/// `device.seed` resets: two runs training at once on the test harness's threads draw from it
/// in turn, so neither sees its seed's sequence. A test that compares runs by seed holds this
/// exclusively ([`seeded_runs`]); every other test that trains holds it shared ([`trains`]).
static DEVICE_RNG: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// For a test whose runs must each see exactly their seed's random sequence.
#[allow(dead_code)]
pub fn seeded_runs() -> std::sync::RwLockWriteGuard<'static, ()> {
    DEVICE_RNG.write().unwrap_or_else(|e| e.into_inner())
}

/// For a test that trains (and so draws from the device's generator) without comparing seeds.
#[allow(dead_code)]
pub fn trains() -> std::sync::RwLockReadGuard<'static, ()> {
    DEVICE_RNG.read().unwrap_or_else(|e| e.into_inner())
}

/// An experiment on [`write_csv`]'s file at `csv`: `load` forecast from itself and `temp`,
/// 24 steps back, 6 ahead; the rest is the defaults, for each test to change.
#[allow(dead_code)]
pub fn small_experiment(csv: &Path) -> Experiment {
    let mut e = Experiment::default();
    e.data.path = csv.display().to_string();
    e.data.time_column = "time".into();
    e.data.targets = vec!["load".into()];
    e.data.covariates = vec!["temp".into()];
    e.window.lookback = 24;
    e.window.horizon = 6;
    e
}

/// Runs the `gatecast` binary with `args` in `dir`; its stdout, after asserting that it succeeded
/// (the failure message carries its stderr).
#[allow(dead_code)]
pub fn gatecast_ok<S: AsRef<std::ffi::OsStr>>(args: &[S], dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gatecast"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gatecast {:?}: {}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts that a run's model beats repeat-last (the test table's `naive` row) on the MAE, and
/// returns the model's MAE.
#[allow(dead_code)]
pub fn beats_repeat_last(report: &gatecast_trainer::run::RunReport) -> f64 {
    let model = report.test.rows[0].mae;
    let naive = report
        .test
        .rows
        .iter()
        .find(|r| r.name == "naive")
        .unwrap()
        .mae;
    assert!(
        model < naive,
        "model MAE {model} against repeat-last {naive}"
    );
    model
}
