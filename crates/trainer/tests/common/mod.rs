//! Helpers shared by the trainer's integration tests.

use std::path::{Path, PathBuf};

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
