//! train → evaluate → forecast on a small synthetic CSV; resume; the divergence guard; seeds;
//! exit code 2 on bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Device;
use gatecast_data::Calendar;
use gatecast_model::forecast::SegCell;
use gatecast_trainer::config::{ClipMode, Decoder, Experiment, Optimizer};
use gatecast_trainer::run;

mod common;
use common::write_csv;

/// This package's directory. `cargo test` sets `CARGO_MANIFEST_DIR` when it runs a test, naming
/// the checkout under test even when a shared target directory reuses a binary compiled in
/// another checkout, whose path `env!` would have baked in.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn experiment(csv: &Path) -> Experiment {
    let mut e = common::small_experiment(csv);
    e.data.calendar = vec![Calendar::HourOfDay];
    e.window.lookback = 48;
    e.window.horizon = 12;
    e.window.stride = 2;
    e.model.hidden_size = 16;
    e.train.epochs = 4;
    e.train.patience = 10;
    e.train.lr = 1e-2;
    e
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gatecast-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A PNG of `size` pixels, mostly white background, with many pixels of both line colours (blue
/// and red: the first two series) — not a blank or a half-drawn image.
fn check_plot(path: &Path, size: (u32, u32)) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    assert_eq!(img.dimensions(), size, "{}", path.display());
    let count = |f: &dyn Fn(&image::Rgb<u8>) -> bool| img.pixels().filter(|p| f(p)).count();
    let white = count(&|p| p.0 == [255, 255, 255]);
    let blue = count(&|p| p.0[2] > 200 && p.0[0] < 80 && p.0[1] < 80);
    let red = count(&|p| p.0[0] > 200 && p.0[1] < 80 && p.0[2] < 80);
    let total = (size.0 * size.1) as usize;
    assert!(white > total / 2, "{}: background", path.display());
    assert!(
        blue > 500 && red > 500,
        "{}: blue {blue}, red {red} pixels",
        path.display()
    );
}

#[test]
fn train_evaluate_forecast() {
    let _rng = common::trains();
    let dir = tmp("main");
    let csv = write_csv(&dir, 1200);
    let exp = experiment(&csv);
    let run_dir = dir.join("run");
    let device = Device::flex();
    let report = run::train(&exp, &run_dir, std::slice::from_ref(&device), false, true).unwrap();

    assert_eq!(report.epochs.len(), 4);
    let first = &report.epochs[0];
    let last = report.epochs.last().unwrap();
    assert!(
        last.train_loss < 0.7 * first.train_loss,
        "{:?}",
        report.epochs
    );
    assert!(last.valid_loss < first.valid_loss, "{:?}", report.epochs);
    assert!(report
        .epochs
        .iter()
        .all(|r| r.grad_norm > 0.0 && r.lr > 0.0));

    for f in [
        "config.toml",
        "scaler.toml",
        "model.bpk",
        "metrics.csv",
        "test_metrics.csv",
        "test_metrics.md",
        "forecast.csv",
    ] {
        assert!(run_dir.join(f).exists(), "{f} written");
    }
    let metrics = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 5, "header + one row per epoch");
    let forecast = std::fs::read_to_string(run_dir.join("forecast.csv")).unwrap();
    let row: Vec<&str> = forecast.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row.len(), 10, "6 columns and two intervals' ends");
    assert!(row[4].parse::<f64>().is_ok() && row[5].parse::<f64>().is_ok());

    // The model beats repeat-last on this daily cycle.
    let t = &report.test;
    assert_eq!(t.rows[1].name, "naive");
    assert!(t.rows[0].mae < t.rows[1].mae, "{}", t.markdown());

    // Intervals at 80% and 95% (their coverage: a_conformal_interval_covers_at_its_level),
    // in forecast.csv, nested.
    let [i80, i95] = [&t.intervals[0], &t.intervals[1]];
    assert_eq!((i80.level, i95.level), (0.8, 0.95));
    assert!(t.calibration_windows > 50, "{}", t.calibration_windows);
    assert!(i80.coverage < i95.coverage, "{}", t.markdown());
    assert!(0.0 < i80.width && i80.width < i95.width, "{}", t.markdown());
    assert!(run_dir.join("intervals.toml").exists());
    let header = forecast.lines().next().unwrap();
    assert!(
        header.ends_with(",forecast,lo80,hi80,lo95,hi95"),
        "{header}"
    );
    for line in forecast.lines().skip(1) {
        let v: Vec<f64> = line
            .split(',')
            .skip(5)
            .map(|x| x.parse().unwrap())
            .collect();
        // The ends need not straddle the forecast: they correct its bias on validation too.
        let [_, lo80, hi80, lo95, hi95] = v[..] else {
            panic!("{line}")
        };
        assert!(lo95 <= lo80 && lo80 < hi80 && hi80 <= hi95, "{line}");
    }

    // The plots decode, have their sizes and show lines in both series' colours.
    check_plot(&run_dir.join("loss.png"), (900, 540));
    check_plot(&run_dir.join("forecast.png"), (1200, 540));
    // The 80% interval is shaded under the lines, a faint red.
    let img = image::open(run_dir.join("forecast.png")).unwrap().to_rgb8();
    let shaded = img
        .pixels()
        .filter(|p| p.0[0] > 240 && (190..235).contains(&p.0[1]) && p.0[1] == p.0[2])
        .count();
    assert!(shaded > 2000, "{shaded} shaded pixels");

    // evaluate recomputes the same table from the artifacts.
    let again = run::evaluate(&run_dir, &device).unwrap();
    assert_eq!(again.windows, t.windows);
    for (a, b) in again.rows.iter().zip(&t.rows) {
        assert!(
            (a.mae - b.mae).abs() < 1e-6 * b.mae.max(1.0),
            "{} vs {}",
            again.markdown(),
            t.markdown()
        );
    }

    // forecast writes the next 12 hours after the file's end, in original units.
    let out = dir.join("next.csv");
    run::forecast(&run_dir, &csv, Some(&out), &device).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 13);
    assert_eq!(lines[0], "time,target,forecast,lo80,hi80,lo95,hi95");
    assert!(
        lines[1].starts_with("2023-02-20 00:00:00,load,"),
        "{}",
        lines[1]
    );
    let cells: Vec<f64> = lines[1]
        .split(',')
        .skip(2)
        .map(|x| x.parse().unwrap())
        .collect();
    let v = cells[0];
    assert!(cells[3] <= cells[1] && cells[1] < cells[2] && cells[2] <= cells[4]);
    assert!(
        (50.0..200.0).contains(&v),
        "forecast in original units: {v}"
    );
}

/// A segment model with a learned daily cycle reads each window's phase from its timestamps:
/// `forecast` on the file cut after the last test window's look-back gives that window's test
/// forecast (the same phase from the same time, though the file and its rows differ), and the
/// cycle it learned is not zero, so a phase off by one step would show.
#[test]
fn a_learned_cycle_forecasts_with_the_phase_of_the_timestamps() {
    cycle_forecast(SegCell::Gru);
}

/// The same with the sLSTM cell, whose weights must also come back from the run directory
/// (the GRU's are absent from its record); it beats repeat-last on the test split.
#[test]
fn a_segment_model_with_the_slstm_cell_trains_saves_and_forecasts() {
    cycle_forecast(SegCell::SLstm);
}

fn cycle_forecast(cell: SegCell) {
    let _rng = common::trains();
    let dir = tmp(&format!("cycle-{cell:?}"));
    let csv = write_csv(&dir, 1200);
    let mut exp = common::small_experiment(&csv);
    exp.model.cell = gatecast_trainer::config::Cell::Segrnn;
    exp.model.segment_cell = cell;
    exp.model.segment = 4;
    exp.model.hidden_size = 16;
    exp.model.last_value_norm = true;
    exp.model.cycle = 24;
    exp.data.calendar.clear();
    exp.window.lookback = 20;
    exp.window.horizon = 6;
    exp.window.stride = 2;
    exp.train.epochs = 2;
    exp.train.lr = 1e-2;
    let run_dir = dir.join("run");
    let device = Device::flex();
    let report = run::train(&exp, &run_dir, std::slice::from_ref(&device), false, true).unwrap();
    let (l, h) = (exp.window.lookback, exp.window.horizon);
    let last = report.test_starts.len() - 1;
    let start = report.test_starts[last];
    let want = &report.test_forecasts[last * h..(last + 1) * h];

    let text = std::fs::read_to_string(&csv).unwrap();
    let cut: Vec<&str> = text.lines().take(1 + start + l).collect();
    let input = dir.join("cut.csv");
    std::fs::write(&input, cut.join("\n") + "\n").unwrap();
    let out = dir.join("next.csv");
    run::forecast(&run_dir, &input, Some(&out), &device).unwrap();
    let got: Vec<f32> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(got.len(), h);
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() < 1e-3 * w.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }

    let model = gatecast_trainer::run::load_model(
        &run_dir,
        &exp,
        &run::prepare(&exp).unwrap().window,
        &device,
    )
    .unwrap();
    let gatecast_trainer::model::Net::Segment(net) = &model.net else {
        panic!("a segment model");
    };
    assert_eq!(net.slstm.is_some(), cell == SegCell::SLstm);
    assert_eq!(net.gru.is_some(), cell == SegCell::Gru);
    let mse = |name: &str| {
        let row = report.test.rows.iter().find(|r| r.name.starts_with(name));
        row.unwrap_or_else(|| panic!("no {name} row")).mse
    };
    assert!(
        mse("model") < mse("naive"),
        "{cell:?}: model {} against repeat-last {}",
        mse("model"),
        mse("naive")
    );
    let q = net
        .cycle
        .as_ref()
        .unwrap()
        .val()
        .abs()
        .max()
        .into_scalar::<f32>();
    assert!(q > 0.01, "the learned cycle is {q} at most");
}

#[test]
fn autoregressive_decoder_trains_and_evaluates() {
    let _rng = common::trains();
    let dir = tmp("ar");
    let csv = write_csv(&dir, 800);
    let mut exp = experiment(&csv);
    exp.model.decoder = Decoder::Autoregressive;
    exp.train.epochs = 3;
    let run_dir = dir.join("run");
    let report = run::train(&exp, &run_dir, &[Device::flex()], false, true).unwrap();
    assert!(
        report.epochs[2].train_loss < report.epochs[0].train_loss,
        "{:?}",
        report.epochs
    );
    let again = run::evaluate(&run_dir, &Device::flex()).unwrap();
    assert!((again.rows[0].mae - report.test.rows[0].mae).abs() < 1e-6 * report.test.rows[0].mae);
}

#[test]
fn resume_continues_from_the_last_checkpoint() {
    let _rng = common::trains();
    let dir = tmp("resume");
    let csv = write_csv(&dir, 800);
    let mut exp = experiment(&csv);
    exp.train.epochs = 2;
    let run_dir = dir.join("run");
    let device = Device::flex();
    run::train(&exp, &run_dir, std::slice::from_ref(&device), false, true).unwrap();
    assert_eq!(run::last_checkpoint(&run_dir), Some(2));
    exp.train.epochs = 3;
    let report = run::train(&exp, &run_dir, std::slice::from_ref(&device), true, true).unwrap();
    assert_eq!(
        report.resumed_from,
        Some(2),
        "only the remaining epoch runs"
    );
    let epochs: Vec<usize> = report.epochs.iter().map(|r| r.epoch).collect();
    assert_eq!(
        epochs,
        vec![1, 2, 3],
        "metrics.csv keeps the earlier epochs"
    );
    assert_eq!(run::last_checkpoint(&run_dir), Some(3));
    let err = run::train(
        &exp,
        &dir.join("fresh"),
        std::slice::from_ref(&device),
        true,
        true,
    )
    .unwrap_err();
    assert!(err.to_string().contains("no intact checkpoint"), "{err}");
}

#[test]
fn divergence_stops_with_a_clear_message() {
    let _rng = common::trains();
    let dir = tmp("nan");
    let csv = write_csv(&dir, 800);
    let mut exp = experiment(&csv);
    exp.train.lr = 1e12;
    exp.train.clip = ClipMode::None;
    exp.train.optimizer = Optimizer::Sgd;
    exp.train.epochs = 3;
    let report = run::train(&exp, &dir.join("run"), &[Device::flex()], false, true).unwrap();
    let why = report.diverged.expect("the guard fires");
    assert!(
        why.contains("diverged") && why.contains("train.lr"),
        "{why}"
    );
}

/// Two good epochs, then the run is resumed with an absurd learning rate: the guard stops it,
/// and the kept model is the best epoch's, loadable and as good as before.
#[test]
fn divergence_keeps_the_best_checkpoint_loadable() {
    let _rng = common::trains();
    let dir = tmp("blowup");
    let csv = write_csv(&dir, 800);
    let run_dir = dir.join("run");
    let device = Device::flex();
    let mut exp = experiment(&csv);
    exp.train.epochs = 2;
    exp.train.optimizer = Optimizer::Sgd;
    exp.train.lr = 0.05;
    let good = run::train(&exp, &run_dir, std::slice::from_ref(&device), false, true).unwrap();
    let good_mae = good.test.rows[0].mae;
    exp.train.epochs = 5;
    exp.train.lr = 1e12;
    exp.train.clip = ClipMode::None;
    exp.train.schedule = Some(gatecast_trainer::schedule::Schedule::Constant);
    let bad = run::train(&exp, &run_dir, std::slice::from_ref(&device), true, true).unwrap();
    let why = bad.diverged.expect("the guard fires");
    assert!(why.contains("train.lr"), "{why}");
    let last = bad.epochs.last().unwrap();
    assert!(last.epoch < 5, "training stopped early: {:?}", bad.epochs);
    let best = bad.best_epoch.expect("a best epoch");
    assert!(best <= 2, "the best epoch is a good one, not {best}");
    // model.bpk is the best epoch's weights: loadable, finite, the same test error as before.
    let table = run::evaluate(&run_dir, &device).unwrap();
    let mae = table.rows[0].mae;
    assert!(mae.is_finite(), "{mae}");
    assert!(
        (mae - good_mae).abs() <= 1e-3 * good_mae,
        "kept model MAE {mae} vs {good_mae} after the good epochs"
    );
    for epoch in gatecast_trainer::checkpoint::checkpoint_epochs(&run_dir) {
        assert_eq!(gatecast_trainer::checkpoint::damage(&run_dir, epoch), None);
    }
}

/// Every float parameter's bits, in visiting order.
struct Bits(Vec<u32>);

impl burn::module::ModuleVisitor for Bits {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        let v: Vec<f32> = param.val().into_data().try_to_vec().unwrap();
        self.0.extend(v.iter().map(|x| x.to_bits()));
    }
}

#[test]
fn same_seed_same_losses() {
    let _rng = common::seeded_runs();
    let dir = tmp("seed");
    let csv = write_csv(&dir, 800);
    let mut exp = experiment(&csv);
    exp.train.epochs = 2;
    let device = Device::flex();
    let a = run::train(
        &exp,
        &dir.join("a"),
        std::slice::from_ref(&device),
        false,
        true,
    )
    .unwrap();
    let b = run::train(
        &exp,
        &dir.join("b"),
        std::slice::from_ref(&device),
        false,
        true,
    )
    .unwrap();
    let losses = |r: &run::RunReport| {
        r.epochs
            .iter()
            .map(|e| (e.train_loss, e.valid_loss))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&a), losses(&b));
    // Bitwise the same saved weights (the files themselves differ: Burn stores random
    // parameter ids in them).
    let p = run::prepare(&exp).unwrap();
    let weights = |run: &str| {
        let m = run::load_model(&dir.join(run), &exp, &p.window, &device).unwrap();
        let mut bits = Bits(Vec::new());
        burn::module::Module::visit(&m, &mut bits);
        bits.0
    };
    let (wa, wb) = (weights("a"), weights("b"));
    assert!(wa.len() > 100);
    assert!(
        wa == wb,
        "model.bpk weights differ between two runs with the same seed"
    );
    exp.train.seed += 1;
    let c = run::train(
        &exp,
        &dir.join("c"),
        std::slice::from_ref(&device),
        false,
        true,
    )
    .unwrap();
    assert_ne!(losses(&a), losses(&c));
}

#[test]
fn bad_input_exits_with_code_2_and_names_the_option() {
    let _rng = common::trains();
    let bin = env!("CARGO_BIN_EXE_gatecast");
    let dir = tmp("cli");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["train".into(), "--lr".into(), "0".into()], "train.lr"),
        (
            vec!["train".into(), "--dropout".into(), "1.5".into()],
            "model.dropout",
        ),
        (
            vec!["train".into(), "--cell".into(), "tcn".into()],
            "model.cell",
        ),
        (
            vec![
                "train".into(),
                "--data".into(),
                dir.join("absent.csv").display().to_string(),
            ],
            "absent.csv",
        ),
        (
            vec!["evaluate".into(), dir.join("nope").display().to_string()],
            "not a gatecast run directory",
        ),
    ];
    for (args, want) in cases {
        let out = Command::new(bin)
            .args(&args)
            .current_dir(manifest_dir())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// `benchmark` sets the LTSF protocol's look-back and stride only when no experiment file is
/// given: a file's own stride is what its runs train with, not silently replaced by 1.
#[test]
fn a_benchmark_keeps_the_experiment_files_stride() {
    let dir = tmp("bench-stride");
    let file = dir.join("strided.toml");
    std::fs::write(
        &file,
        "[window]\nlookback = 48\nstride = 3\n\n[model]\ncell = \"gru\"\n",
    )
    .unwrap();
    let printed = |extra: &[&str]| {
        let args = [&["benchmark", "ett", "--print-config"], extra].concat();
        let text = common::gatecast_ok(&args, &manifest_dir());
        Experiment::from_toml(&text, "printed").unwrap().window
    };
    let filed = printed(&["--config", file.to_str().unwrap()]);
    assert_eq!((filed.lookback, filed.stride), (48, 3));
    let bare = printed(&[]);
    assert_eq!((bare.lookback, bare.stride), (96, 1));
}

/// The GPU code path: one short epoch on wgpu (Mesa lavapipe where there is no GPU).
#[cfg(feature = "wgpu")]
#[test]
fn trains_on_wgpu() {
    let _rng = common::trains();
    let dir = tmp("wgpu");
    let csv = write_csv(&dir, 400);
    let mut exp = experiment(&csv);
    exp.train.epochs = 1;
    exp.window.lookback = 24;
    exp.window.horizon = 6;
    exp.model.hidden_size = 8;
    let device = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    let report = run::train(
        &exp,
        &dir.join("run"),
        std::slice::from_ref(&device),
        false,
        true,
    )
    .unwrap();
    assert_eq!(report.epochs.len(), 1);
    assert!(report.epochs[0].train_loss.is_finite() && report.epochs[0].valid_loss.is_finite());
    assert!(report.test.rows[0].mae.is_finite());
}

/// Burn's multi-device data-parallel strategy, on two CPU devices.
#[test]
fn trains_data_parallel_on_two_devices() {
    let _rng = common::trains();
    let dir = tmp("multi");
    let csv = write_csv(&dir, 800);
    let mut exp = experiment(&csv);
    exp.train.epochs = 2;
    let devices = [Device::flex(), Device::flex()];
    let report = run::train(&exp, &dir.join("run"), &devices, false, true).unwrap();
    assert_eq!(report.epochs.len(), 2);
    assert!(
        report.epochs[1].train_loss < report.epochs[0].train_loss,
        "{:?}",
        report.epochs
    );
    assert!(report.test.rows[0].mae.is_finite());
}

#[test]
fn diagnose_writes_the_gradient_flow() {
    let _rng = common::trains();
    let dir = tmp("diagnose");
    let flow = gatecast_trainer::diagnose::diagnose(&dir, 30, 8, 4, 1, &Device::flex()).unwrap();
    assert_eq!(flow.len(), 4);
    assert!(flow.iter().all(|(_, v, _)| v.len() == 30));
    let csv = std::fs::read_to_string(dir.join("gradient_flow.csv")).unwrap();
    assert_eq!(csv.lines().count(), 31);
    check_plot(&dir.join("gradient_flow.png"), (900, 540));
    let spectral = std::fs::read_to_string(dir.join("spectral_norms.csv")).unwrap();
    assert!(spectral.contains("lstm (forget_bias 1),"));
}

/// The ETTh1 LTSF benchmark: every test window, repeat-last recomputed here by hand from the CSV.
#[test]
fn ett_benchmark_protocol() {
    let _rng = common::trains();
    let path = manifest_dir().join("../../../shared/datasets/ETT/ETTh1.csv");
    if !path.exists() {
        eprintln!("skipped: {} is absent", path.display());
        return;
    }
    let mut exp = Experiment::default();
    exp.window.lookback = 48;
    exp.window.stride = 8;
    exp.model.hidden_size = 4;
    exp.train.epochs = 1;
    let dir = tmp("ett");
    let r =
        gatecast_trainer::benchmark::ett(&path, "S", &[24], &exp, &dir, &Device::flex()).unwrap();
    assert_eq!(r[0].windows, 2880 - 24 + 1);
    // By hand: OT z-scored with the mean/std of rows [0, 8640), last look-back value repeated.
    let text = std::fs::read_to_string(&path).unwrap();
    let ot: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let mean = ot[..8640].iter().sum::<f64>() / 8640.0;
    let std = (ot[..8640].iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 8640.0).sqrt();
    let z: Vec<f64> = ot.iter().map(|v| (v - mean) / std).collect();
    let (mut se, mut n) = (0.0, 0);
    for s in (11_520 - 48)..=(14_400 - 48 - 24) {
        for k in 0..24 {
            se += (z[s + 48 - 1] - z[s + 48 + k]).powi(2);
            n += 1;
        }
    }
    let naive = se / n as f64;
    assert!(
        (r[0].naive_mse - naive).abs() < 1e-5,
        "{} vs {naive}",
        r[0].naive_mse
    );
    assert!(r[0].mse.is_finite() && dir.join("ett-S-L48.md").exists());
    let csv = std::fs::read_to_string(dir.join("ett-S-L48.csv")).unwrap();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(&row[..4], ["ETTh1", "S", "48", "24"]);
    assert_eq!(row[11], exp.train.seed.to_string());
}

/// An ETT-shaped file of `rows` hourly rows (`date,HUFL,OT`) and its OT column: a level that
/// drifts (so statistics from the wrong rows would show), a daily cycle and noise.
fn synthetic_ett(dir: &Path, rows: usize) -> (PathBuf, Vec<f64>) {
    let mut rng = gatecast_data::synthetic::Rng::new(21);
    let t0 = chrono::NaiveDate::from_ymd_opt(2016, 7, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let mut text = String::from("date,HUFL,OT\n");
    let mut ot = Vec::with_capacity(rows);
    for i in 0..rows {
        let t = t0 + chrono::TimeDelta::hours(i as i64);
        let v = 0.001 * i as f64 + (i as f64 / 24.0 * std::f64::consts::TAU).sin() + rng.normal();
        let v = (v * 1000.0).round() / 1000.0;
        ot.push(v);
        text += &format!(
            "{},{:.3},{v:.3}\n",
            t.format("%Y-%m-%d %H:%M:%S"),
            rng.normal()
        );
    }
    let path = dir.join("synthetic_ett.csv");
    std::fs::write(&path, text).unwrap();
    (path, ot)
}

/// `gatecast benchmark --member`: each member trains as it would alone (the same figures as its
/// solo run, in its own directory), and the scored forecast is their mean, matched by the rows
/// forecast although the members' look-backs differ.
#[test]
fn an_averaged_benchmark_forecast_trains_each_member_as_alone() {
    let _rng = common::seeded_runs();
    use gatecast_trainer::benchmark::{run as bench, run_members, BenchSplit, Scored};
    let dir = tmp("bench_members");
    let (path, _) = synthetic_ett(&dir, 14_500);
    let h = 12;
    let mut a = Experiment::default();
    a.window.lookback = 24;
    a.window.stride = 16;
    a.model.hidden_size = 4;
    a.train.epochs = 1;
    a.data.calendar.clear();
    let mut b = a.clone();
    b.window.lookback = 48;
    b.model.hidden_size = 6;
    b.model.last_value_norm = true;
    let device = Device::flex();
    let solo = |e: &Experiment, name: &str| {
        bench(
            &path,
            "S",
            &[h],
            BenchSplit::EttHourly,
            Scored::Test,
            e,
            &dir.join(name),
            &device,
        )
        .unwrap()
        .remove(0)
    };
    let (ra, rb) = (solo(&a, "a"), solo(&b, "b"));
    let averaged = |members: &[Experiment], name: &str| {
        run_members(
            &path,
            "S",
            &[h],
            BenchSplit::EttHourly,
            Scored::Test,
            members,
            &dir.join(name),
            &device,
        )
        .unwrap()
        .remove(0)
    };
    let r = averaged(&[a.clone(), b.clone()], "ab");
    assert_eq!(r.members.len(), 2);
    assert_eq!((r.members[0].mse, r.members[0].mae), (ra.mse, ra.mae));
    assert_eq!((r.members[1].mse, r.members[1].mae), (rb.mse, rb.mae));
    assert_eq!([r.members[0].lookback, r.members[1].lookback], [24, 48]);
    assert_eq!((r.windows, r.naive_mse), (ra.windows, ra.naive_mse));
    assert_eq!(r.epochs, ra.epochs + rb.epochs);
    // The mean of two different forecasts: no worse than their mean error (convexity), and
    // neither member's own.
    assert!(
        r.mse <= (ra.mse + rb.mse) / 2.0,
        "{} vs {} / {}",
        r.mse,
        ra.mse,
        rb.mse
    );
    assert!(r.mse != ra.mse && r.mse != rb.mse);
    // A model averaged with itself is that model.
    let same = averaged(&[a.clone(), a.clone()], "aa");
    assert_eq!((same.mse, same.mae), (ra.mse, ra.mae));
    for member in ["S-L24-H12-member1", "S-L48-H12-member2"] {
        assert!(
            dir.join("ab").join(member).join("model.bpk").exists(),
            "{member}"
        );
    }
    let csv = std::fs::read_to_string(dir.join("ab/ett-S-L24.csv")).unwrap();
    let members: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(18).unwrap())
        .collect();
    assert_eq!(members, ["mean", "1", "2"], "{csv}");
    let table = std::fs::read_to_string(dir.join("ab/ett-S-L24.md")).unwrap();
    assert!(
        table.contains("mean of 2 members") && table.contains("| member 2 alone |"),
        "{table}"
    );
}

/// The LTSF protocol pinned on a synthetic ETT-shaped file (runs everywhere, unlike the ETTh1
/// test): ETTh's row boundaries, z-score statistics from the training rows only, every test
/// window, and the repeat-last MSE recomputed by hand; then `--split ratios` on the same file.
#[test]
fn ltsf_protocol_on_a_synthetic_ett_file() {
    let _rng = common::trains();
    let dir = tmp("ltsf");
    let rows = 14_500;
    let (path, ot) = synthetic_ett(&dir, rows);
    let (l, h) = (24usize, 12usize);
    let mut exp = Experiment::default();
    exp.window.lookback = l;
    exp.window.stride = 16;
    exp.model.hidden_size = 4;
    exp.train.epochs = 1;
    exp.data.calendar.clear();
    use gatecast_trainer::benchmark::{run as bench, BenchSplit, Scored};
    let by_hand = |train_end: usize, test: std::ops::Range<usize>| {
        let mean = ot[..train_end].iter().sum::<f64>() / train_end as f64;
        let var = ot[..train_end]
            .iter()
            .map(|v| (v - mean).powi(2))
            .sum::<f64>()
            / train_end as f64;
        let z = |v: f64| (v - mean) / var.sqrt();
        let (mut se, mut windows) = (0.0, 0);
        for s in (test.start - l)..=(test.end - l - h) {
            windows += 1;
            for k in 0..h {
                se += (z(ot[s + l - 1]) - z(ot[s + l + k])).powi(2);
            }
        }
        (windows, se / (windows * h) as f64)
    };
    let device = Device::flex();
    let r = bench(
        &path,
        "S",
        &[h],
        BenchSplit::EttHourly,
        Scored::Test,
        &exp,
        &dir.join("ett"),
        &device,
    )
    .unwrap();
    let (windows, naive) = by_hand(8_640, 11_520..14_400);
    assert_eq!(windows, 2880 - h + 1);
    assert_eq!(r[0].windows, windows);
    assert!(
        (r[0].naive_mse - naive).abs() < 1e-4,
        "{} vs {naive}",
        r[0].naive_mse
    );
    assert!(r[0].mse.is_finite());
    // The z-score statistics the run saved come from the training rows only.
    let scaler: gatecast_data::Scaler =
        toml::from_str(&std::fs::read_to_string(dir.join("ett/S-L24-H12/scaler.toml")).unwrap())
            .unwrap();
    let train = &ot[..8_640];
    let mean = train.iter().sum::<f64>() / 8_640.0;
    let std = (train.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 8_640.0).sqrt();
    assert!(
        (scaler.offset[0] - mean).abs() < 1e-4,
        "{} vs {mean}",
        scaler.offset[0]
    );
    assert!(
        (scaler.scale[0] - std).abs() < 1e-4,
        "{} vs {std}",
        scaler.scale[0]
    );
    // Ratios 0.7 / 0.1 / 0.2: train floor(0.7 n), test the last floor(0.2 n) rows.
    exp.data.split = [0.7, 0.1, 0.2];
    let r = bench(
        &path,
        "MS",
        &[h],
        BenchSplit::Ratios,
        Scored::Test,
        &exp,
        &dir.join("ratios"),
        &device,
    )
    .unwrap();
    let (train, test) = ((rows as f64 * 0.7) as usize, (rows as f64 * 0.2) as usize);
    let (windows, naive) = by_hand(train, rows - test..rows);
    assert_eq!(r[0].windows, windows);
    assert!(
        (r[0].naive_mse - naive).abs() < 1e-4,
        "{} vs {naive}",
        r[0].naive_mse
    );
    // --validate: every validation window instead, the test rows unread.
    exp.data.split = [0.7, 0.1, 0.2];
    let r = bench(
        &path,
        "S",
        &[h],
        BenchSplit::EttHourly,
        Scored::Validation,
        &exp,
        &dir.join("valid"),
        &device,
    )
    .unwrap();
    let (windows, naive) = by_hand(8_640, 8_640..11_520);
    assert_eq!(r[0].windows, windows);
    assert!(
        (r[0].naive_mse - naive).abs() < 1e-4,
        "{} vs {naive}",
        r[0].naive_mse
    );
    let table = std::fs::read_to_string(dir.join("valid/ett-S-L24-valid.md")).unwrap();
    assert!(
        table.contains("every validation window") && !table.contains("Informer"),
        "{table}"
    );
    // Not the protocol's every training window, and the table says so.
    assert!(table.contains("training windows: one in 16"), "{table}");
    assert!(dir.join("valid/S-L24-H12-valid/model.bpk").exists());
    let csv = std::fs::read_to_string(dir.join("valid/ett-S-L24-valid.csv")).unwrap();
    assert!(
        csv.lines().nth(1).unwrap().ends_with(",validation"),
        "{csv}"
    );
}

/// A single-series backtest against errors by hand: the series holds 1, 4 and 9 over the three
/// folds after a 0 at the last row before the first, so the naive (repeat-last) forecaster's
/// per-fold MAE is 1, 3 and 5. Each fold's scaler comes from its training rows alone, and
/// `evaluate` on a fold's run re-tests that fold.
#[test]
fn a_single_series_backtest_scores_each_fold_as_computed_by_hand() {
    let _rng = common::trains();
    use gatecast_trainer::panel::Folds;
    let dir = tmp("backtest");
    let rows = 200;
    let (h, first_origin) = (6, 182);
    let y: Vec<f64> = (0..rows)
        .map(|t| match t {
            t if t == first_origin - 1 => 0.0,
            t if t < first_origin => 10.0 + ((3 * t) % 7) as f64,
            t => [1.0, 4.0, 9.0][(t - first_origin) / h],
        })
        .collect();
    let t0 = chrono::NaiveDate::from_ymd_opt(2023, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let mut text = String::from("time,load\n");
    for (i, v) in y.iter().enumerate() {
        let t = t0 + chrono::TimeDelta::hours(i as i64);
        text += &format!("{},{v}\n", t.format("%Y-%m-%d %H:%M:%S"));
    }
    let csv = dir.join("steps.csv");
    std::fs::write(&csv, text).unwrap();
    let mut exp = experiment(&csv);
    exp.data.covariates = Vec::new();
    exp.data.calendar = Vec::new();
    exp.data.split = [0.7, 0.15, 0.15];
    exp.window.lookback = 24;
    exp.window.horizon = h;
    exp.model.hidden_size = 8;
    exp.train.epochs = 1;
    let folds = Folds {
        count: 3,
        stride: h,
        refit: false,
    };
    let dev = Device::flex();
    let report = run::backtest_series(&exp, folds, &dir.join("bt"), &dev, true).unwrap();
    let naive = |r: &run::SeriesBacktest, get: fn(&run::TestRow) -> f64| -> Vec<f64> {
        r.folds
            .iter()
            .map(|f| get(f.table.rows.iter().find(|r| r.name == "naive").unwrap()))
            .collect()
    };
    assert_eq!(
        naive(&report, |r| r.mae),
        [1.0, 3.0, 5.0],
        "{}",
        report.markdown()
    );
    assert_eq!(naive(&report, |r| r.mse), [1.0, 9.0, 25.0]);
    assert_eq!(report.fits, 1);
    assert!(
        report
            .markdown()
            .contains("| mean | | naive | 11.6667 | 3.0000 |"),
        "{}",
        report.markdown()
    );
    // The intervals' coverage is the mean of the folds' (each fold one window).
    let c80: f64 = report
        .folds
        .iter()
        .map(|f| f.table.intervals[0].coverage)
        .sum::<f64>()
        / 3.0;
    let line = format!("80% covers {:.1}% of the folds' values", 100.0 * c80);
    assert!(report.markdown().contains(&line), "{}", report.markdown());
    // Fold 1's scaler: the training rows before its validation start, nothing after.
    let [valid, origin, _] = run::fold_rows(&exp, rows, folds, 0).unwrap();
    assert_eq!(origin, first_origin);
    let scaler: gatecast_data::Scaler =
        toml::from_str(&std::fs::read_to_string(dir.join("bt/fold1/scaler.toml")).unwrap())
            .unwrap();
    let mean = y[..valid].iter().sum::<f64>() / valid as f64;
    assert!(
        (scaler.offset[0] - mean).abs() < 1e-9,
        "scaler mean {} against {mean} of rows 0..{valid}",
        scaler.offset[0]
    );
    // Fold 1's run is a run: evaluate re-tests that fold and nothing else.
    let again = run::evaluate(&dir.join("bt/fold1"), &dev).unwrap();
    assert_eq!(again.windows, 1);
    assert_eq!(again.rows, report.folds[0].table.rows);
    let lines = std::fs::read_to_string(dir.join("bt/historical_forecasts.csv")).unwrap();
    assert_eq!(lines.lines().count(), 1 + 3 * h);
    assert!(lines.starts_with("fold,target,timestamp,actual,forecast,lo80,hi80,lo95,hi95\n"));
    // Each fold's interval ends are its model's: fold 1's from fold 1's run.
    let fold1 = std::fs::read_to_string(dir.join("bt/fold1/forecast.csv")).unwrap();
    let ends = |l: &str, from: usize| -> Vec<String> {
        l.split(',').skip(from).map(String::from).collect()
    };
    let first = lines.lines().nth(1).unwrap();
    assert!(first.starts_with("1,"), "{first}");
    assert_eq!(ends(first, 4), ends(fold1.lines().nth(1).unwrap(), 5));
    assert!(lines.contains(",2023-01-09 07:00:00,9,"), "{lines}");
    check_plot(&dir.join("bt/backtest.png"), (1200, 540));
    // Fold 2 without refit is fold 1's model reading the history up to fold 2's origin through
    // fold 1's scaler: exactly what `forecast` on fold 1's run gives from the data cut there.
    let cut = dir.join("cut.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let kept: Vec<&str> = text.lines().take(1 + first_origin + h).collect();
    std::fs::write(&cut, kept.join("\n") + "\n").unwrap();
    let out = dir.join("fold2.csv");
    run::forecast(&dir.join("bt/fold1"), &cut, Some(&out), &dev).unwrap();
    let forecast: Vec<f64> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    let fold2: Vec<f64> = lines
        .lines()
        .filter(|l| l.starts_with("2,"))
        .map(|l| l.split(',').nth(4).unwrap().parse().unwrap())
        .collect();
    assert_eq!(forecast.len(), h);
    for (a, b) in forecast.iter().zip(&fold2) {
        assert!((a - b).abs() < 1e-4, "{forecast:?} against {fold2:?}");
    }
    // With --refit: a run per fold, the naive's errors unchanged.
    let refit = Folds {
        refit: true,
        ..folds
    };
    let again = run::backtest_series(&exp, refit, &dir.join("refit"), &dev, true).unwrap();
    assert_eq!(again.fits, 3);
    assert_eq!(naive(&again, |r| r.mae), [1.0, 3.0, 5.0]);
    let third: gatecast_data::Scaler =
        toml::from_str(&std::fs::read_to_string(dir.join("refit/fold3/scaler.toml")).unwrap())
            .unwrap();
    let [valid, _, _] = run::fold_rows(&exp, rows, folds, 2).unwrap();
    let mean = y[..valid].iter().sum::<f64>() / valid as f64;
    assert!((third.offset[0] - mean).abs() < 1e-9);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Training afresh (no `--resume`) in the directory of a longer earlier run: the earlier run's
/// logged validation losses for later epochs must not steer which checkpoint is kept, and none
/// of its checkpoints survive. (Burn read them, kept the earlier run's best epoch number and
/// deleted this run's best checkpoint, so the kept model was not the best epoch's.)
#[test]
fn a_fresh_run_in_an_earlier_runs_directory_starts_clean() {
    use gatecast_trainer::config::{Loss, Optimizer};
    let _rng = common::trains();
    let dir = tmp("rerun");
    let csv = write_csv(&dir, 400);
    let mut exp = common::small_experiment(&csv);
    exp.window.stride = 2;
    exp.model.hidden_size = 32;
    exp.train.optimizer = Optimizer::Adam;
    exp.train.lr = 0.03;
    exp.train.schedule = Some(gatecast_trainer::schedule::Schedule::Constant);
    exp.train.epochs = 13;
    exp.train.patience = 13;
    exp.train.loss = Loss::Mae;
    let run_dir = dir.join("run");
    let device = Device::flex();
    run::train(&exp, &run_dir, std::slice::from_ref(&device), false, true).unwrap();
    for (loss, epochs) in [(Loss::Mse, 13), (Loss::Mae, 5)] {
        exp.train.loss = loss;
        exp.train.epochs = epochs;
        exp.train.seed += 1;
        let again = run::train(&exp, &run_dir, std::slice::from_ref(&device), false, true)
            .unwrap_or_else(|e| panic!("{e:#}"));
        let best = again.best_epoch.unwrap();
        let lowest = again
            .epochs
            .iter()
            .min_by(|a, b| a.valid_loss.total_cmp(&b.valid_loss))
            .unwrap()
            .epoch;
        assert_eq!(best, lowest);
        let kept = gatecast_trainer::checkpoint::checkpoint_epochs(&run_dir);
        assert!(kept.contains(&best), "{kept:?}");
        assert!(
            kept.iter().all(|&e| e <= epochs),
            "stale checkpoints: {kept:?}"
        );
    }
    // An earlier run's per-target table and normalisation choice do not outlive it either.
    exp.train.epochs = 1;
    exp.data.targets = vec!["load".into(), "temp".into()];
    exp.model.auto_norm = true;
    run::train(&exp, &run_dir, std::slice::from_ref(&device), false, true).unwrap();
    for file in ["per_target.csv", "norm_choice.csv", "norm"] {
        assert!(run_dir.join(file).exists(), "{file}");
    }
    exp.data.targets = vec!["load".into()];
    exp.model.auto_norm = false;
    run::train(&exp, &run_dir, std::slice::from_ref(&device), false, true).unwrap();
    for file in ["per_target.csv", "norm_choice.csv", "norm"] {
        assert!(!run_dir.join(file).exists(), "stale {file}");
    }
}

/// An hourly count series: a daily burst on every day, zero for half of each day (a model's
/// forecast dips below 0 around the zeros). With `fraction`, one early training value is made
/// 0.5, so the series is no longer counts.
fn write_counts(dir: &Path, rows: usize, fraction: bool) -> PathBuf {
    let mut rng = gatecast_data::synthetic::Rng::new(5);
    let mut text = String::from("time,load,temp\n");
    let t0 = chrono::NaiveDate::from_ymd_opt(2023, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    for i in 0..rows {
        let t = t0 + chrono::TimeDelta::hours(i as i64);
        let day = (2.0 * std::f64::consts::PI * i as f64 / 24.0).sin();
        let mut load = (40.0 * day + 4.0 * rng.normal()).max(0.0).round();
        if fraction && i == 5 {
            load = 0.5;
        }
        let temp = 10.0 + 5.0 * day + rng.normal();
        text += &format!("{},{load},{temp:.3}\n", t.format("%Y-%m-%d %H:%M:%S"));
    }
    let path = dir.join(if fraction { "almost.csv" } else { "counts.csv" });
    std::fs::write(&path, text).unwrap();
    path
}

/// The forecast column of a run's `forecast.csv`.
fn forecast_column(run_dir: &Path) -> Vec<f64> {
    std::fs::read_to_string(run_dir.join("forecast.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(5).unwrap().parse().unwrap())
        .collect()
}

/// A count target's forecasts are floored at 0 (a count below 0 is no forecast) in the test
/// table, `forecast.csv` and `forecast`, and the table says how many were raised; the same
/// series with one fractional value is not counts, and its model's forecasts go below 0.
#[test]
fn forecasts_of_counts_are_floored_at_zero() {
    let _rng = common::trains();
    let dir = tmp("counts");
    let device = Device::flex();
    let mut below = Vec::new();
    for fraction in [false, true] {
        // 50.5 days: the file ends at noon, so the next 12 hours are the zero half of a day.
        let csv = write_counts(&dir, 1212, fraction);
        let exp = experiment(&csv);
        let run_dir = dir.join(format!("run-{fraction}"));
        let report = run::train(&exp, &run_dir, std::slice::from_ref(&device), false, true)
            .unwrap_or_else(|e| panic!("{e:#}"));
        let t = &report.test;
        assert_eq!(t.values, report.test_forecasts.len());
        let negative = report.test_forecasts.iter().filter(|v| **v < 0.0).count();
        let written = forecast_column(&run_dir);
        if fraction {
            assert_eq!(t.floored, 0, "{}", t.markdown());
            assert!(!t.markdown().contains("raised to 0"), "{}", t.markdown());
            below.push(negative);
        } else {
            assert!(t.floored > 0, "nothing floored: {}", t.markdown());
            assert_eq!(negative, 0);
            assert!(written.iter().all(|v| *v >= 0.0));
            assert!(written.contains(&0.0));
            let note = format!("{} of the model's {} forecasts", t.floored, t.values);
            assert!(t.markdown().contains(&note), "{}", t.markdown());
            let md = std::fs::read_to_string(run_dir.join("test_metrics.md")).unwrap();
            assert!(md.contains(&note), "{md}");
            // evaluate floors as the run did.
            let again = run::evaluate(&run_dir, &device).unwrap();
            assert_eq!(again.floored, t.floored);
            assert!((again.rows[0].mse - t.rows[0].mse).abs() < 1e-6 * t.rows[0].mse);
            // forecast after the file's end floors too, and so do its intervals' ends.
            let out = dir.join("next.csv");
            run::forecast(&run_dir, &csv, Some(&out), &device).unwrap();
            let next: Vec<Vec<f64>> = std::fs::read_to_string(&out)
                .unwrap()
                .lines()
                .skip(1)
                .map(|l| l.split(',').skip(2).map(|x| x.parse().unwrap()).collect())
                .collect();
            assert_eq!(next.len(), 12);
            assert!(next.iter().flatten().all(|v| *v >= 0.0), "{next:?}");
            assert!(next.iter().flatten().any(|v| *v == 0.0), "{next:?}");
            // The test table's interval ends are floored as well: the 95% one reaches 0.
            let csv_rows = std::fs::read_to_string(run_dir.join("forecast.csv")).unwrap();
            let lo95: Vec<f64> = csv_rows
                .lines()
                .skip(1)
                .map(|l| l.split(',').nth(8).unwrap().parse().unwrap())
                .collect();
            assert!(lo95.iter().all(|v| *v >= 0.0) && lo95.contains(&0.0));
        }
    }
    // Not counts: nothing floored, so the model's dips below 0 stay.
    assert!(below[0] > 0, "the unfloored model never went below 0");
}

/// 3000 hours of `load = 100 + 20·sin(2πt/24) + noise(t)` beside `temp = 10 + 5·sin(2πt/24)`,
/// as `time,load,temp` in `dir/name`.
fn daily_cycle(
    dir: &Path,
    name: &str,
    seed: u64,
    mut noise: impl FnMut(i64, &mut gatecast_data::synthetic::Rng) -> f64,
) -> PathBuf {
    let mut rng = gatecast_data::synthetic::Rng::new(seed);
    let mut text = String::from("time,load,temp\n");
    let t0 = chrono::NaiveDate::from_ymd_opt(2023, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    for i in 0..3000 {
        let t = t0 + chrono::TimeDelta::hours(i);
        let day = (2.0 * std::f64::consts::PI * i as f64 / 24.0).sin();
        text += &format!(
            "{},{:.3},{:.3}\n",
            t.format("%Y-%m-%d %H:%M:%S"),
            100.0 + 20.0 * day + noise(i, &mut rng),
            10.0 + 5.0 * day
        );
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A stationary daily cycle under skewed noise (exponential, so an interval placed the wrong
/// way round would miss): the model's intervals, calibrated on the latest windows known at
/// each origin, cover the test values about as often as their levels say.
#[test]
fn a_conformal_interval_covers_at_its_level() {
    let _rng = common::trains();
    let dir = tmp("conformal");
    let csv_path = daily_cycle(&dir, "skewed.csv", 8, |_, rng| {
        -3.0 * (1.0 - rng.uniform()).ln()
    });
    let mut exp = experiment(&csv_path);
    exp.train.epochs = 6;
    let report = run::train(&exp, &dir.join("run"), &[Device::flex()], false, true)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let t = &report.test;
    let [i80, i95] = [&t.intervals[0], &t.intervals[1]];
    assert!((0.72..0.88).contains(&i80.coverage), "{}", t.markdown());
    assert!((0.9..0.99).contains(&i95.coverage), "{}", t.markdown());

    // Other levels (intervals.levels): their own coverage, their own columns.
    exp.intervals.levels = vec![0.5, 0.9];
    let run_dir = dir.join("levels");
    let report = run::train(&exp, &run_dir, &[Device::flex()], false, true).unwrap();
    let t = &report.test;
    assert_eq!(t.intervals.len(), 2);
    assert!(
        (0.42..0.58).contains(&t.intervals[0].coverage),
        "{}",
        t.markdown()
    );
    assert!(
        (0.85..0.95).contains(&t.intervals[1].coverage),
        "{}",
        t.markdown()
    );
    let csv = std::fs::read_to_string(run_dir.join("forecast.csv")).unwrap();
    assert!(csv.starts_with("origin,time,step,target,actual,forecast,lo50,hi50,lo90,hi90\n"));

    // Calibrated on 20 windows: enough for 80% (9), too few for 95% (39), whose ends would be
    // the extreme errors seen. Its columns are empty, in the test split's forecasts and after
    // the input alike, and it scores no value.
    exp.intervals.levels = vec![0.8, 0.95];
    exp.intervals.calibration = 20;
    let run_dir = dir.join("few");
    let report = run::train(&exp, &run_dir, &[Device::flex()], false, true).unwrap();
    let t = &report.test;
    assert_eq!(t.intervals[0].values, t.intervals[0].of, "{}", t.markdown());
    assert!(t.intervals[0].coverage > 0.6, "{}", t.markdown());
    assert_eq!(t.intervals[1].values, 0, "{}", t.markdown());
    assert!(t.markdown().contains("95%: none"), "{}", t.markdown());
    let ends = |text: &str, from: usize| -> Vec<[String; 4]> {
        text.lines()
            .skip(1)
            .map(|l| {
                let c: Vec<&str> = l.split(',').collect();
                std::array::from_fn(|i| c[from + i].to_string())
            })
            .collect()
    };
    let tested = ends(
        &std::fs::read_to_string(run_dir.join("forecast.csv")).unwrap(),
        6,
    );
    let ahead_path = dir.join("ahead.csv");
    run::forecast(&run_dir, &csv_path, Some(&ahead_path), &Device::flex()).unwrap();
    let ahead = ends(&std::fs::read_to_string(&ahead_path).unwrap(), 3);
    for row in tested.iter().chain(&ahead) {
        let lo: f64 = row[0].parse().unwrap();
        let hi: f64 = row[1].parse().unwrap();
        assert!(lo < hi, "{row:?}");
        assert!(row[2].is_empty() && row[3].is_empty(), "{row:?}");
    }
    assert_eq!(ahead.len(), exp.window.horizon);
}

/// `rows` hours of sales that jump by 40 in the hours of a promotion drawn at random, so no
/// look-back predicts it, as `time,sales,promo`.
fn promo_csv(rows: i64) -> String {
    let mut rng = gatecast_data::synthetic::Rng::new(4);
    let t0 = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let mut text = String::from("time,sales,promo\n");
    for i in 0..rows {
        let promo = u8::from(rng.uniform() < 0.2);
        let t = (t0 + chrono::TimeDelta::hours(i)).format("%Y-%m-%d %H:%M:%S");
        let day = (2.0 * std::f64::consts::PI * i as f64 / 24.0).sin();
        let sales = 100.0 + 20.0 * day + 40.0 * promo as f64 + 2.0 * rng.normal();
        text += &format!("{t},{sales:.2},{promo}\n");
    }
    text
}

/// A column known ahead (`data.future_covariates`) is read over the horizon: a promotion drawn
/// at random is forecast when its hours are given, and not when the same column is only a past
/// covariate. `forecast` takes its next values from `--future`, and refuses without them.
#[test]
fn a_known_future_covariate_is_read_over_the_horizon() {
    let _rng = common::trains();
    let dir = tmp("future");
    let csv = dir.join("promo.csv");
    std::fs::write(&csv, promo_csv(1500)).unwrap();
    let mut exp = common::small_experiment(&csv);
    exp.data.targets = vec!["sales".into()];
    exp.data.covariates = vec![];
    exp.data.calendar = vec![Calendar::HourOfDay];
    exp.window.lookback = 48;
    exp.window.horizon = 12;
    exp.model.hidden_size = 16;
    exp.train.epochs = 40;
    exp.train.lr = 1e-2;
    let device = Device::flex();
    let mut mae = Vec::new();
    for known_ahead in [true, false] {
        let mut e = exp.clone();
        if known_ahead {
            e.data.future_covariates = vec!["promo".into()];
        } else {
            e.data.covariates = vec!["promo".into()];
        }
        e.validate().unwrap();
        let run_dir = dir.join(format!("run-{known_ahead}"));
        let report = run::train(&e, &run_dir, std::slice::from_ref(&device), false, true)
            .unwrap_or_else(|e| panic!("{e:#}"));
        mae.push(report.test.rows[0].mae);
    }
    // Noise alone (sd 2) gives an MAE of 1.6; not knowing the promotions, about 12.
    assert!(mae[0] < 4.0 && mae[0] < 0.4 * mae[1], "{mae:?}");

    // The next 12 hours after the file, with promotions at steps 3 and 9 only.
    let run_dir = dir.join("run-true");
    let t0 = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let mut future = String::from("time,promo\n");
    for step in 1..=12 {
        let t = t0 + chrono::TimeDelta::hours(1499 + step);
        let promo = u8::from(step == 3 || step == 9);
        future += &format!("{},{promo}\n", t.format("%Y-%m-%d %H:%M:%S"));
    }
    let future_csv = dir.join("future.csv");
    std::fs::write(&future_csv, &future).unwrap();
    let out = dir.join("next.csv");
    run::forecast_with(&run_dir, &csv, Some(&future_csv), Some(&out), &device).unwrap();
    let f: Vec<f64> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(f.len(), 12);
    for step in [3, 9] {
        let (at, around) = (f[step - 1], (f[step - 2] + f[step]) / 2.0);
        assert!(at - around > 25.0, "step {step}: {f:?}");
    }
    // Without the file, or with a step missing from it: an error naming what is needed.
    let e = run::forecast(&run_dir, &csv, Some(&out), &device).unwrap_err();
    assert!(format!("{e:#}").contains("--future"), "{e:#}");
    let short: String = future.lines().take(5).map(|l| format!("{l}\n")).collect();
    std::fs::write(&future_csv, short).unwrap();
    let e = run::forecast_with(&run_dir, &csv, Some(&future_csv), Some(&out), &device).unwrap_err();
    assert!(
        format!("{e:#}").contains("no row for 2024-03-03 16:00:00, step 5"),
        "{e:#}"
    );
}

/// Intervals follow the errors as they change: noise four times larger from the test split on
/// is covered by intervals calibrated on the latest windows (`intervals.calibration`), far more
/// often than by intervals from every window known, most of them quiet; and `forecast`
/// calibrates on its input's latest windows, wider than the validation split's.
#[test]
fn intervals_follow_the_latest_errors() {
    let _rng = common::trains();
    let dir = tmp("drift");
    let csv = daily_cycle(&dir, "drift.csv", 12, |i, rng| {
        let sd = if i < 2400 { 1.0 } else { 4.0 };
        sd * rng.normal()
    });
    let mut exp = experiment(&csv);
    exp.train.epochs = 6;
    exp.intervals.calibration = 100;
    let run_dir = dir.join("run");
    let device = Device::flex();
    let report = run::train(&exp, &run_dir, std::slice::from_ref(&device), false, true)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let t = &report.test;
    assert_eq!(t.calibration_windows, 100);
    assert!(t.intervals[0].coverage > 0.65, "{}", t.markdown());
    assert!(t.intervals[1].coverage > 0.85, "{}", t.markdown());

    // The validation split's intervals, saved for short inputs, are the quiet ones; a forecast
    // from the whole file calibrates on its last 100 windows, all noisy.
    let saved: toml::Table =
        toml::from_str(&std::fs::read_to_string(run_dir.join("intervals.toml")).unwrap()).unwrap();
    let first = |key: &str| {
        saved[key].as_array().unwrap()[0].as_array().unwrap()[0]
            .as_float()
            .unwrap()
    };
    let saved_width = first("upper") - first("lower");
    let out = dir.join("next.csv");
    run::forecast(&run_dir, &csv, Some(&out), &device).unwrap();
    let next = std::fs::read_to_string(&out).unwrap();
    let cells: Vec<f64> = next
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .skip(2)
        .map(|x| x.parse().unwrap())
        .collect();
    let width = cells[2] - cells[1];
    assert!(width > 2.5 * saved_width, "{width} against {saved_width}");
}

/// A user's own file trained from flags alone gets the seasonal naive of its sampling step's
/// cycle (a week of days here), not the bundled hourly default's 24; `--season` overrides it.
#[test]
fn an_own_files_season_follows_its_sampling_step() {
    let _rng = common::trains();
    let dir = std::env::temp_dir().join(format!("gatecast-season-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = String::from("date,y\n");
    let d0 = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    for i in 0..400 {
        let d = d0 + chrono::TimeDelta::days(i);
        text += &format!("{d},{}\n", 50 + (i * 7919) % 13);
    }
    std::fs::write(dir.join("daily.csv"), text).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            "daily.csv",
            "--time-column",
            "date",
            "--target",
            "y",
            "--lookback",
            "28",
            "--horizon",
            "7",
            "--epochs",
            "1",
            "--out",
            "run",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        common::gatecast_ok(&args, &dir)
    };
    let out = run(&[]);
    assert!(
        out.contains("| seasonal_naive(7) |") && !out.contains("(24)"),
        "{out}"
    );
    let out = run(&["--season", "14"]);
    assert!(out.contains("| seasonal_naive(14) |"), "{out}");
}

/// `(time, forecast, lo80)` of each row of a `gatecast forecast` CSV.
fn forecast_rows(path: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[0].to_string(), c[2].to_string(), c[3].to_string())
        })
        .collect()
}

/// Past the horizon a forecast is rolled out: its second horizon is exactly the forecast from
/// the input with the first horizon's forecasts appended as if observed, its first horizon is
/// the plain forecast's, and only the first has intervals. A run with past covariates, whose
/// values to come are unknown, is refused.
#[test]
fn a_forecast_past_the_horizon_is_rolled_out() {
    let _rng = common::trains();
    let dir = tmp("rollout");
    let csv = daily_cycle(&dir, "cycle.csv", 3, |_, rng| rng.normal());
    let mut exp = experiment(&csv);
    exp.data.covariates.clear();
    let run_dir = dir.join("run");
    run::train(&exp, &run_dir, &[Device::flex()], false, true).unwrap();
    let device = Device::flex();
    let h = exp.window.horizon;
    let plain = dir.join("plain.csv");
    run::forecast(&run_dir, &csv, Some(&plain), &device).unwrap();
    let long = dir.join("long.csv");
    let png = dir.join("ahead.png");
    let options = run::ForecastOptions {
        steps: Some(3 * h - 5),
        plot: Some(&png),
        ..Default::default()
    };
    run::forecast_options(&run_dir, &csv, &options, Some(&long), &device).unwrap();
    check_plot(&png, (1200, 540));
    let (plain, long) = (forecast_rows(&plain), forecast_rows(&long));
    assert_eq!(long.len(), 3 * h - 5);
    assert_eq!(long[..h], plain[..]);
    assert!(long[h..].iter().all(|r| r.2.is_empty()), "{long:?}");

    // The input and the first horizon's forecasts as one file: its forecast is the second.
    let mut text = std::fs::read_to_string(&csv).unwrap();
    for (time, value, _) in &plain {
        text += &format!("{time},{value},0\n");
    }
    let extended = dir.join("extended.csv");
    std::fs::write(&extended, text).unwrap();
    let next = dir.join("next.csv");
    run::forecast(&run_dir, &extended, Some(&next), &device).unwrap();
    let next = forecast_rows(&next);
    for (a, b) in long[h..2 * h].iter().zip(&next) {
        assert_eq!((&a.0, &a.1), (&b.0, &b.1));
    }

    // Past covariates have no values past the input.
    let with_temp = experiment(&csv);
    let temp_dir = dir.join("temp");
    run::train(&with_temp, &temp_dir, &[Device::flex()], false, true).unwrap();
    let steps = |n| run::ForecastOptions {
        steps: Some(n),
        ..Default::default()
    };
    let err = run::forecast_options(&temp_dir, &csv, &steps(h + 1), None, &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--steps 13") && err.contains("past covariates (temp)"),
        "{err}"
    );
    run::forecast_options(
        &temp_dir,
        &csv,
        &steps(h),
        Some(&dir.join("h.csv")),
        &device,
    )
    .expect("a horizon needs no roll-out");
}

/// RevIN on a recurrent cell: a daily cycle on a rising level, whose test split lies above
/// every training value. Standardised per window, the LSTM beats repeat-last and the same run
/// without it, which the standard scaling leaves extrapolating.
#[test]
fn revin_carries_a_recurrent_cell_past_the_training_range() {
    let _rng = common::trains();
    let dir = tmp("revin");
    let csv = daily_cycle(&dir, "rising.csv", 5, |i, rng| {
        0.1 * i as f64 + rng.normal()
    });
    let mut exp = experiment(&csv);
    let plain = run::train(&exp, &dir.join("plain"), &[Device::flex()], false, true).unwrap();
    exp.model.revin = true;
    let revin = run::train(&exp, &dir.join("revin"), &[Device::flex()], false, true).unwrap();
    let mae = common::beats_repeat_last(&revin);
    assert!(
        mae < 0.5 * plain.test.rows[0].mae,
        "RevIN {mae} against {}",
        plain.test.rows[0].mae
    );
}

/// `model.auto_norm` on the rising cycle: the three normalisations are trained, the one kept has
/// the lowest validation loss of them, and the run directory is that normalisation's own run
/// (its `config.toml` names it, and its test forecasts and `evaluate` equal those of a run
/// trained with it alone on the same seed). A backtest that trains once loads fold 1's model as
/// the normalisation kept, so its later folds equal a backtest with that normalisation given.
#[test]
fn auto_norm_keeps_the_normalisation_best_on_validation() {
    let _rng = common::seeded_runs();
    use gatecast_trainer::panel::Folds;
    let dir = tmp("auto_norm");
    let csv = daily_cycle(&dir, "rising.csv", 5, |i, rng| {
        0.1 * i as f64 + rng.normal()
    });
    let mut exp = experiment(&csv);
    exp.model.auto_norm = true;
    let dev = Device::flex();
    let auto = run::train(
        &exp,
        &dir.join("auto"),
        std::slice::from_ref(&dev),
        false,
        true,
    )
    .unwrap();
    let table = &auto.norm_choice;
    let names: Vec<&str> = table.iter().map(|c| c.norm.name()).collect();
    assert_eq!(names, ["none", "last-value", "revin"]);
    let kept = table.iter().find(|c| c.kept).expect("one kept");
    assert_eq!(table.iter().filter(|c| c.kept).count(), 1);
    assert!(
        table.iter().all(|c| kept.valid <= c.valid),
        "kept {kept:?} of {table:?}"
    );
    // The level rises out of the training range: without a window normalisation the
    // validation loss is far higher, so this test sees a kept run other than the plain one.
    assert_ne!(kept.norm, run::Norm::None, "{table:?}");

    let saved = std::fs::read_to_string(dir.join("auto/config.toml")).unwrap();
    let saved = Experiment::parse_toml(&saved, "config.toml").unwrap();
    assert!(!saved.model.auto_norm);
    assert_eq!(saved.model.revin, kept.norm == run::Norm::Revin);
    assert_eq!(
        saved.model.last_value_norm,
        kept.norm == run::Norm::LastValue
    );
    let listed = std::fs::read_to_string(dir.join("auto/norm_choice.csv")).unwrap();
    assert_eq!(listed.lines().count(), 4, "{listed}");
    assert!(
        listed.contains(&format!("{},", kept.norm.name())),
        "{listed}"
    );
    for c in table.iter().filter(|c| !c.kept) {
        assert!(dir
            .join("auto/norm")
            .join(c.norm.name())
            .join("model.bpk")
            .exists());
    }

    let alone_exp = kept.norm.apply(&exp);
    let alone = run::train(
        &alone_exp,
        &dir.join("alone"),
        std::slice::from_ref(&dev),
        false,
        true,
    )
    .unwrap();
    assert_eq!(auto.test_forecasts, alone.test_forecasts);
    let again = run::evaluate(&dir.join("auto"), &dev).unwrap();
    assert_eq!(again.rows[0].mae, alone.test.rows[0].mae);

    let folds = Folds {
        count: 2,
        stride: 12,
        refit: false,
    };
    let model_mae = |r: &run::SeriesBacktest| -> Vec<f64> {
        r.folds.iter().map(|f| f.table.rows[0].mae).collect()
    };
    let bt = run::backtest_series(&exp, folds, &dir.join("bt"), &dev, true).unwrap();
    let fixed = run::backtest_series(&alone_exp, folds, &dir.join("bt_fixed"), &dev, true).unwrap();
    assert_eq!(model_mae(&bt), model_mae(&fixed));
}

/// `gatecast forecast` on the file the run trained on calibrates its intervals only on windows
/// whose forecast steps all lie after the rows the model trained on (`data.toml` records the
/// last): on those rows its errors are smaller than on rows to come. A daily cycle that is clean
/// up to the end of the training split and noisy (sd 10) after it: calibrated on the later
/// windows alone, the 80% interval is about as wide as the noise calls for (2 × 1.28 × 10);
/// with the training windows in the calibration too it would be far narrower.
#[test]
fn forecast_intervals_calibrate_after_the_training_rows() {
    let _rng = common::trains();
    let dir = tmp("calibrate_unseen");
    let csv = daily_cycle(&dir, "late_noise.csv", 7, |i, rng| {
        if i < 2100 {
            0.0
        } else {
            10.0 * rng.normal()
        }
    });
    let mut exp = experiment(&csv);
    exp.data.split = [0.7, 0.1, 0.2];
    exp.intervals.calibration = 3000;
    let run_dir = dir.join("run");
    run::train(&exp, &run_dir, &[Device::flex()], false, true).unwrap();
    let data = std::fs::read_to_string(run_dir.join("data.toml")).unwrap();
    assert!(
        data.contains("trained_until = \"2023-03-29 11:00:00\""),
        "row 2099: {data}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_gatecast"))
        .args([
            "forecast",
            "run",
            "--input",
            "late_noise.csv",
            "--output",
            "f.csv",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Forecasts from rows 2100 to 2988 (look-back 48, horizon 12, 3000 rows): 889 windows.
    assert!(
        err.contains(
            "latest 889 complete windows after the rows it trained on (to 2023-03-29 11:00:00)"
        ),
        "{err}"
    );
    let text = std::fs::read_to_string(dir.join("f.csv")).unwrap();
    let widths: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| {
            let v: Vec<f64> = l.split(',').skip(3).map(|x| x.parse().unwrap()).collect();
            v[1] - v[0]
        })
        .collect();
    let mean = widths.iter().sum::<f64>() / widths.len() as f64;
    assert!(mean > 20.0, "80% widths {widths:?}");
}

/// Several targets: the table's rows pool them, and `per_target` (and `per_target.csv`) give
/// each its own rows, the pooled MAE and MSE being their means. `temp` is forecast beside
/// `load` at a fifth of its scale, so the two targets' rows differ.
#[test]
fn several_targets_are_scored_each_and_pooled() {
    let _rng = common::trains();
    let dir = tmp("per_target");
    let csv_path = write_csv(&dir, 800);
    let mut exp = experiment(&csv_path);
    exp.data.targets = vec!["load".into(), "temp".into()];
    exp.data.covariates = Vec::new();
    let report = run::train(&exp, &dir.join("run"), &[Device::flex()], false, true).unwrap();
    let t = &report.test;
    let names: Vec<&str> = t.per_target.iter().map(|x| x.target.as_str()).collect();
    assert_eq!(names, ["load", "temp"]);
    for (i, pooled) in t.rows.iter().enumerate() {
        let each: Vec<&run::TestRow> = t.per_target.iter().map(|x| &x.rows[i]).collect();
        assert_eq!(each[0].name, pooled.name);
        let mean = |get: fn(&run::TestRow) -> f64| (get(each[0]) + get(each[1])) / 2.0;
        assert!(
            (mean(|r| r.mae) - pooled.mae).abs() < 1e-9 * pooled.mae,
            "{t:?}"
        );
        assert!(
            (mean(|r| r.mse) - pooled.mse).abs() < 1e-9 * pooled.mse,
            "{t:?}"
        );
        assert!(
            (mean(|r| r.mase) - pooled.mase).abs() < 1e-9 * pooled.mase,
            "{t:?}"
        );
        assert!(
            each[0].mae > 2.0 * each[1].mae,
            "load's scale is 5× temp's: {t:?}"
        );
    }
    // Each target's intervals: their values add up to the pooled ones, the pooled coverage is
    // their values-weighted mean, and load's are wider than temp's, at a fifth of its scale.
    assert!(!t.intervals.is_empty(), "{}", t.markdown());
    for (i, pooled) in t.intervals.iter().enumerate() {
        let each: Vec<_> = t.per_target.iter().map(|p| &p.intervals[i]).collect();
        assert_eq!(each.iter().map(|s| s.values).sum::<usize>(), pooled.values);
        let weighted = each
            .iter()
            .map(|s| s.coverage * s.values as f64)
            .sum::<f64>()
            / pooled.values as f64;
        assert!(
            (weighted - pooled.coverage).abs() < 1e-9,
            "{each:?} {pooled:?}"
        );
        assert!(each[0].width > 2.0 * each[1].width, "{each:?}");
    }
    let csv = std::fs::read_to_string(dir.join("run/per_target.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * t.rows.len(), "{csv}");
    assert!(
        csv.starts_with("target,forecaster,mse,mae,rmse,smape,mase,coverage80,width80,"),
        "{csv}"
    );
    assert!(t.markdown().contains("| temp | "), "{}", t.markdown());

    // Each target has its own chart, one above the other, in the test plot and in a forecast's.
    let ahead = dir.join("ahead.png");
    let options = run::ForecastOptions {
        plot: Some(&ahead),
        ..Default::default()
    };
    let next = dir.join("next.csv");
    run::forecast_options(
        &dir.join("run"),
        &csv_path,
        &options,
        Some(&next),
        &Device::flex(),
    )
    .unwrap();
    for png in [dir.join("run/forecast.png"), ahead] {
        check_plot(&png, (1200, 800));
        let img = image::open(&png).unwrap().to_rgb8();
        for half in [0, 400] {
            let part = image::imageops::crop_imm(&img, 0, half, 1200, 400).to_image();
            let blue = part
                .pixels()
                .filter(|p| p.0[2] > 200 && p.0[0] < 80 && p.0[1] < 80);
            let red = part
                .pixels()
                .filter(|p| p.0[0] > 200 && p.0[1] < 80 && p.0[2] < 80);
            let (blue, red) = (blue.count(), red.count());
            assert!(
                blue > 300 && red > 300,
                "{}: rows {half}..: blue {blue}, red {red}",
                png.display()
            );
        }
    }
}

/// Adaptive conformal inference (`intervals.adapt`): a daily cycle whose noise grows tenfold
/// over the rows, so the latest windows' errors always understate the next ones'. Fixed
/// split-conformal intervals under-cover on the test split; moving each level's miscoverage
/// rate after every window brings the 80% interval's coverage to within a few points of 80%,
/// with wider intervals, and `gatecast forecast` reads its ends at the level the input's
/// windows moved it to (wider than the fixed level's).
#[test]
fn adaptive_intervals_follow_growing_errors() {
    let _rng = common::seeded_runs();
    let dir = tmp("adapt");
    let csv = daily_cycle(&dir, "growing.csv", 9, |i, rng| {
        (1.0 + 9.0 * i as f64 / 3000.0) * rng.normal()
    });
    let mut exp = experiment(&csv);
    exp.intervals.calibration = 1000;
    exp.intervals.adapt = 0.0;
    let fixed = run::train(&exp, &dir.join("fixed"), &[Device::flex()], false, true).unwrap();
    exp.intervals.adapt = 0.02;
    let adapted = run::train(&exp, &dir.join("adapted"), &[Device::flex()], false, true).unwrap();
    let (f, a) = (&fixed.test.intervals[0], &adapted.test.intervals[0]);
    assert!(f.coverage < 0.76, "fixed: {}", fixed.test.markdown());
    assert!(
        (a.coverage - 0.8).abs() < 0.03 && (a.coverage - 0.8).abs() < (f.coverage - 0.8).abs(),
        "adapted {} against fixed {}",
        adapted.test.markdown(),
        fixed.test.markdown()
    );
    assert!(a.width > f.width);
    assert_eq!(
        fixed.test_forecasts, adapted.test_forecasts,
        "the same model"
    );

    let width = |run: &str| -> f64 {
        let out = dir.join(format!("{run}.csv"));
        run::forecast(&dir.join(run), &csv, Some(&out), &Device::flex()).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let rows: Vec<Vec<f64>> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').skip(2).map(|x| x.parse().unwrap()).collect())
            .collect();
        rows.iter().map(|r| r[2] - r[1]).sum::<f64>() / rows.len() as f64
    };
    assert!(width("adapted") > width("fixed"));
}

/// A backtest says what the loader repaired once, though it loads the file to count its rows
/// and again for every fold it trains (`--refit`).
#[test]
fn a_backtest_says_its_repairs_once() {
    let dir = tmp("repairs_once");
    let mut text = String::from("date,sales\n");
    let t0 = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    for i in 0..300 {
        let v = if i % 50 == 7 {
            String::new()
        } else {
            format!("{}", 100 + (i * 7) % 13)
        };
        text += &format!("{},{v}\n", t0 + chrono::TimeDelta::days(i));
    }
    std::fs::write(dir.join("gaps.csv"), text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gatecast"))
        .args([
            "backtest",
            "--data",
            "gaps.csv",
            "--missing",
            "interpolate",
            "--norm",
            "none",
            "--folds",
            "2",
            "--refit",
            "--epochs",
            "1",
            "--quiet",
            "--out",
            "bt",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("6 missing value(s) filled").count(), 1, "{err}");
}
