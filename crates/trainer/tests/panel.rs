//! Panel runs end to end: a synthetic panel of negative-binomial counts with known parameters,
//! whose held-out 80% intervals must cover 70–90% of the points after a short run; series too
//! short to train on are named; a user's CSV trains from flags alone; the likelihood options'
//! errors fire.

use std::path::{Path, PathBuf};
use std::process::Command;

use gatecast_model::forecast::Rng;
use gatecast_trainer::config::{Experiment, LikelihoodKind};

/// `series` daily count series: series k has mean `m_k` (from 2 to ~40) times a weekly profile,
/// negative-binomial with dispersion 0.3; plus one series of `short` rows.
fn write_panel(dir: &Path, series: usize, days: usize, short: usize) -> PathBuf {
    let mut rng = Rng::new(17);
    let t0 = chrono::NaiveDate::from_ymd_opt(2022, 1, 3).unwrap();
    let mut text = String::from("date,store,units\n");
    let alpha = 0.3;
    let mut emit = |id: &str, n: usize, level: f64, rng: &mut Rng| {
        for d in 0..n {
            let week = [1.4, 1.2, 1.0, 1.0, 1.1, 0.7, 0.6][d % 7];
            let mu = level * week;
            let r = 1.0 / alpha;
            let rate = rng.gamma(r) * mu / r;
            let y = rng.poisson(rate);
            let day = t0 + chrono::TimeDelta::days(d as i64);
            text += &format!("{day},{id},{y}\n");
        }
    };
    for k in 0..series {
        emit(
            &format!("s{k}"),
            days,
            2.0 * 1.1f64.powi(k as i32),
            &mut rng,
        );
    }
    emit("tiny", short, 5.0, &mut rng);
    let path = dir.join("panel.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatecast-panel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn experiment(path: &Path) -> Experiment {
    let text = format!(
        r#"[data]
path = "{}"
time_column = "date"
id_column = "store"
targets = ["units"]
covariates = []
calendar = ["day_of_week"]
season = 7
[window]
lookback = 28
horizon = 14
stride = 1
[model]
cell = "lstm"
hidden_size = 24
num_layers = 1
likelihood = "negative_binomial"
samples = 400
[train]
epochs = 8
batch_size = 32
lr = 1e-2
patience = 8
"#,
        path.display()
    );
    Experiment::from_toml(&text, "panel test").unwrap()
}

/// The model's (first) row: its 80% interval covers 70-90% of the held-out points and its
/// weighted quantile loss is below the seasonal naive's (second row).
fn calibrated_and_better_than_naive(report: &gatecast_trainer::panel::PanelReport) {
    let (model, naive) = (&report.rows[0], &report.rows[1]);
    let c80 = model.coverage80.unwrap();
    assert!((0.7..=0.9).contains(&c80), "80% interval covers {c80}");
    assert!(
        model.wql.unwrap() < naive.wql.unwrap(),
        "{model:?} vs {naive:?}"
    );
}

/// Known negative-binomial counts: after a short run, the held-out 80% intervals cover between
/// 70% and 90% of the points and the weighted quantile loss beats the seasonal naive's. A head
/// whose dispersion or scale were wrong would miss the band.
#[test]
fn negative_binomial_panel_intervals_cover_as_stated() {
    let dir = scratch("nb");
    let path = write_panel(&dir, 24, 200, 30);
    let exp = experiment(&path);
    let device = burn::tensor::Device::flex();
    let report =
        gatecast_trainer::panel::train_panel(&exp, &dir.join("run"), &device, true).unwrap();
    eprintln!("{}", report.markdown());
    calibrated_and_better_than_naive(&report);
    // The short series is reported, not silently used or dropped.
    assert_eq!(report.series, 24);
    let forecast = std::fs::read_to_string(dir.join("run/forecast.csv")).unwrap();
    let header = forecast.lines().next().unwrap();
    assert!(
        header.starts_with("series,timestamp,actual,p2.5,p10,"),
        "{header}"
    );
    assert_eq!(forecast.lines().count(), 1 + 24 * 14);
    // Quantiles are ordered within each row, and counts are never negative.
    for line in forecast.lines().skip(1) {
        let q: Vec<f64> = line
            .split(',')
            .skip(3)
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(q.windows(2).all(|w| w[0] <= w[1]) && q[0] >= 0.0, "{line}");
    }
    let png = image::open(dir.join("run/forecast.png")).unwrap();
    assert_eq!((png.width(), png.height()), (1400, 900));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Series far from zero (levels 500 to 1650) with a weekly swing of ±8 and Gaussian noise of
/// std 4: over DeepAR's mean absolute scale the swing is about 1% of the input. With
/// `data.scaler = "standard"` (each series less its training mean, over its std) a short run's
/// Gaussian 80% intervals cover as stated and beat the seasonal naive, and the weighted
/// quantile loss beats the mean-absolute scale's on the same run.
#[test]
fn standard_scaling_fits_series_far_from_zero() {
    let dir = scratch("standard");
    let mut rng = gatecast_data::synthetic::Rng::new(5);
    let t0 = chrono::NaiveDate::from_ymd_opt(2022, 1, 3).unwrap();
    let mut text = String::from("date,store,units\n");
    for k in 0..24 {
        for d in 0..200 {
            let week = [8.0, 5.0, 0.0, -3.0, -8.0, -4.0, 2.0][d % 7];
            let y = 500.0 + 50.0 * k as f64 + week + 4.0 * rng.normal();
            let day = t0 + chrono::TimeDelta::days(d as i64);
            text += &format!("{day},s{k},{y:.3}\n");
        }
    }
    let path = dir.join("levels.csv");
    std::fs::write(&path, text).unwrap();
    let mut exp = experiment(&path);
    exp.model.likelihood = LikelihoodKind::Gaussian;
    let device = burn::tensor::Device::flex();
    let run = |scaler: gatecast_data::ScalerKind, name: &str| {
        let mut e = exp.clone();
        e.data.scaler = Some(scaler);
        let r = gatecast_trainer::panel::train_panel(&e, &dir.join(name), &device, true).unwrap();
        eprintln!("{name}:\n{}", r.markdown());
        r
    };
    let standard = run(gatecast_data::ScalerKind::Standard, "standard");
    let mean_abs = run(gatecast_data::ScalerKind::MeanAbs, "mean_abs");
    calibrated_and_better_than_naive(&standard);
    let model = &standard.rows[0];
    assert!(
        model.wql.unwrap() < mean_abs.rows[0].wql.unwrap(),
        "standard {model:?} vs mean_abs {:?}",
        mean_abs.rows[0]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Static columns carry what the look-back cannot: two groups of white-noise series, std 1
/// and std 5, read through a two-step look-back with no series embedding. Told each series'
/// group (`data.static_categorical`) the model's 80% intervals cover as stated and its
/// weighted quantile loss beats the same run without it. A forecast reads the groups from
/// `--input` through the run's saved encoding: one series moved to the other group forecasts
/// wider, and a group the run never saw is refused.
#[test]
fn static_columns_tell_the_model_what_the_lookback_cannot() {
    let dir = scratch("statics");
    let mut rng = gatecast_data::synthetic::Rng::new(9);
    let t0 = chrono::NaiveDate::from_ymd_opt(2022, 1, 3).unwrap();
    let mut text = String::from("date,store,group,size,units\n");
    for k in 0..32 {
        let (group, std) = if k % 2 == 0 {
            ("calm", 1.0)
        } else {
            ("wild", 5.0)
        };
        for d in 0..150 {
            let y = 20.0 + std * rng.normal();
            let day = t0 + chrono::TimeDelta::days(d as i64);
            text += &format!("{day},s{k},{group},{},{y:.3}\n", 10 + k);
        }
    }
    let path = dir.join("groups.csv");
    std::fs::write(&path, &text).unwrap();
    let mut exp = experiment(&path);
    exp.model.likelihood = LikelihoodKind::Gaussian;
    exp.model.embedding_size = 0;
    exp.data.calendar.clear();
    exp.data.scaler = Some(gatecast_data::ScalerKind::None);
    exp.window.lookback = 2;
    exp.window.horizon = 7;
    let device = burn::tensor::Device::flex();
    let without =
        gatecast_trainer::panel::train_panel(&exp, &dir.join("without"), &device, true).unwrap();
    exp.data.static_categorical = vec!["group".into()];
    exp.data.static_real = vec!["size".into()];
    let run = dir.join("with");
    let with = gatecast_trainer::panel::train_panel(&exp, &run, &device, true).unwrap();
    eprintln!(
        "without:\n{}\nwith:\n{}",
        without.markdown(),
        with.markdown()
    );
    let c80 = with.rows[0].coverage80.unwrap();
    assert!((0.7..=0.9).contains(&c80), "80% interval covers {c80}");
    assert!(
        with.rows[0].wql.unwrap() < without.rows[0].wql.unwrap(),
        "with {:?} vs without {:?}",
        with.rows[0],
        without.rows[0]
    );
    let saved = std::fs::read_to_string(run.join("statics.toml")).unwrap();
    assert!(
        saved.contains("\"calm\"") && saved.contains("\"wild\""),
        "{saved}"
    );

    // Forecasts read the groups from --input: s0 (calm) moved to wild forecasts wider.
    let width = |input: &Path| -> f64 {
        let out = dir.join("f.csv");
        let os = |s: &str| std::ffi::OsString::from(s);
        let args: Vec<std::ffi::OsString> = vec![
            os("forecast"),
            run.clone().into(),
            os("--input"),
            input.into(),
            os("--series"),
            os("s0"),
            os("--output"),
            out.clone().into(),
        ];
        let (ok, o, err) = gatecast(&args);
        assert!(ok, "{o}\n{err}");
        let text = std::fs::read_to_string(&out).unwrap();
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        let (lo, hi) = (
            header.iter().position(|h| *h == "p10").unwrap(),
            header.iter().position(|h| *h == "p90").unwrap(),
        );
        let first: Vec<f64> = text
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .skip(2)
            .map(|v| v.parse().unwrap())
            .collect();
        first[hi - 2] - first[lo - 2]
    };
    let calm = width(&path);
    let moved = dir.join("moved.csv");
    std::fs::write(&moved, text.replace(",s0,calm,", ",s0,wild,")).unwrap();
    let wild = width(&moved);
    assert!(wild > 2.0 * calm, "calm {calm}, as wild {wild}");
    let unseen = dir.join("unseen.csv");
    std::fs::write(&unseen, text.replace(",s0,calm,", ",s0,stormy,")).unwrap();
    let os = |s: &str| std::ffi::OsString::from(s);
    let (ok, _, err) = gatecast(&[
        os("forecast"),
        run.clone().into(),
        os("--input"),
        unseen.into(),
    ]);
    assert!(!ok && err.contains("'group' = 'stormy'"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same panel through DeepAR's decoder: teacher forcing in training, ancestral sampling
/// (400 paths) at forecast time; its 80% intervals cover as stated too.
#[test]
fn autoregressive_decoder_samples_calibrated_paths() {
    let dir = scratch("ar");
    let path = write_panel(&dir, 24, 200, 30);
    let mut exp = experiment(&path);
    exp.model.decoder = gatecast_trainer::config::Decoder::Autoregressive;
    let device = burn::tensor::Device::flex();
    let report =
        gatecast_trainer::panel::train_panel(&exp, &dir.join("run"), &device, true).unwrap();
    eprintln!("{}", report.markdown());
    calibrated_and_better_than_naive(&report);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `gatecast train --data F --time-column date --target units --id-column store` trains a
/// panel with no config file and names the series too short to use; `--panel-conformal`
/// reaches the run.
#[test]
fn a_users_csv_trains_from_flags_alone() {
    let dir = scratch("flags");
    let path = write_panel(&dir, 6, 120, 20);
    let out = Command::new(env!("CARGO_BIN_EXE_gatecast"))
        .args(["train", "--data"])
        .arg(&path)
        .args([
            "--time-column",
            "date",
            "--target",
            "units",
            "--id-column",
            "store",
            "--horizon",
            "7",
            "--epochs",
            "1",
            "--likelihood",
            "student_t",
            "--panel-conformal",
            "--quiet",
            "--out",
        ])
        .arg(dir.join("run"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("6 series"), "{stdout}");
    assert!(
        stdout.contains("too short") && stdout.contains("tiny (20)"),
        "{stdout}"
    );
    assert!(stdout.contains("| gatecast |") && stdout.contains("| seasonal_naive(7) |"));
    let config = std::fs::read_to_string(dir.join("run/config.toml")).unwrap();
    assert!(config.contains("likelihood = \"student_t\""), "{config}");
    // --panel-conformal reaches the run: its factors are kept and the table says so.
    assert!(config.contains("panel_conformal = true"), "{config}");
    assert!(dir.join("run/calibration.toml").exists());
    assert!(stdout.contains("validation values"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn likelihood_options_are_checked() {
    // A likelihood without an id column makes a panel of the file's target columns, with the
    // panel's limits: the default experiment's covariates are refused, naming why.
    let mut e = Experiment::default();
    e.model.likelihood = LikelihoodKind::Gaussian;
    assert!(e.is_panel());
    let err = e.validate().unwrap_err();
    assert!(
        err.contains("model.likelihood") && err.contains("data.covariates"),
        "{err}"
    );
    let mut e = Experiment::default();
    e.data.id_column = "store".into();
    e.data.covariates.clear();
    e.model.quantiles = vec![0.5, 0.2];
    assert!(e.validate().unwrap_err().contains("model.quantiles"));
    e.model.quantiles = vec![0.1, 0.5, 0.9];
    e.model.cell = gatecast_trainer::config::Cell::Segrnn;
    assert!(e.validate().unwrap_err().contains("segrnn"));
    // Counts cannot take an offset.
    e.model.cell = gatecast_trainer::config::Cell::Lstm;
    e.model.likelihood = LikelihoodKind::NegativeBinomial;
    e.validate().unwrap();
    e.data.scaler = Some(gatecast_data::ScalerKind::Standard);
    let err = e.validate().unwrap_err();
    assert!(
        err.contains("data.scaler = standard") && err.contains("mean_abs"),
        "{err}"
    );
    e.data.split_rows = Some([10, 20, 30]);
    e.model.likelihood = LikelihoodKind::Gaussian;
    assert!(e.validate().unwrap_err().contains("data.split_rows"));
    let err = Experiment::parse_toml("[model]\nlikelihood = \"poisson\"\n", "x.toml").unwrap_err();
    assert!(
        err.contains("model.likelihood = 'poisson'") && err.contains("negative_binomial"),
        "{err}"
    );
}

fn gatecast(args: &[std::ffi::OsString]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatecast"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A finished panel run at work: `evaluate` recomputes the training run's table (every series,
/// and one series' row matching per_series.csv), `forecast` writes quantiles after the end of
/// each series (leaving out, and naming, the series the run never trained on), and changed data
/// or an unknown series are refused.
#[test]
fn a_panel_run_evaluates_and_forecasts_per_series() {
    let dir = scratch("reuse");
    let path = write_panel(&dir, 5, 120, 40);
    let run = dir.join("run");
    let os = |s: &str| std::ffi::OsString::from(s);
    let mut train: Vec<std::ffi::OsString> = ["train", "--data"].map(os).to_vec();
    train.push(path.clone().into());
    train.extend(
        [
            "--time-column",
            "date",
            "--target",
            "units",
            "--id-column",
            "store",
            "--horizon",
            "7",
            "--lookback",
            "28",
            "--epochs",
            "1",
            "--scaler",
            "standard",
            "--quiet",
            "--out",
        ]
        .map(os),
    );
    train.push(run.clone().into());
    let (ok, out, err) = gatecast(&train);
    assert!(ok, "{out}\n{err}");
    // Each series' training mean and std, saved for forecasts.
    let index = std::fs::read_to_string(run.join("series.csv")).unwrap();
    assert!(index.starts_with("series,index,scale,offset\n"), "{index}");
    assert!(
        index
            .lines()
            .skip(1)
            .all(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap() > 1.0),
        "{index}"
    );

    let line = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no {name} row in {text}"))
            .to_string()
    };
    let saved = std::fs::read_to_string(run.join("test_metrics.md")).unwrap();
    let eval: Vec<std::ffi::OsString> = vec![os("evaluate"), run.clone().into()];
    let (ok, out, err) = gatecast(&eval);
    assert!(ok, "{err}");
    assert_eq!(line(&out, "gatecast"), line(&saved, "gatecast"));
    assert_eq!(
        line(&out, "seasonal_naive(7)"),
        line(&saved, "seasonal_naive(7)")
    );

    // One series: its wQL is per_series.csv's.
    let mut one = eval.clone();
    one.extend(["--series", "s3"].map(os));
    let (ok, out, err) = gatecast(&one);
    assert!(ok, "{err}");
    assert!(out.contains("last horizon of 1 series"), "{out}");
    assert!(run.join("forecast_s3.png").exists(), "{err}");
    let wql: f64 = line(&out, "gatecast")
        .split('|')
        .nth(2)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let per_series = std::fs::read_to_string(run.join("per_series.csv")).unwrap();
    let s3 = per_series.lines().find(|l| l.starts_with("s3,")).unwrap();
    let want: f64 = s3.split(',').nth(1).unwrap().parse().unwrap();
    assert!((wql - want).abs() < 1e-4, "{wql} vs per_series.csv {want}");
    let mut unknown = eval.clone();
    unknown.extend(["--series", "nope"].map(os));
    let (ok, _, err) = gatecast(&unknown);
    assert!(!ok && err.contains("--series nope"), "{err}");

    // Forecasts after the end of every series the run trained on.
    let csv = dir.join("f.csv");
    let forecast: Vec<std::ffi::OsString> = vec![
        os("forecast"),
        run.clone().into(),
        os("--input"),
        path.clone().into(),
        os("--output"),
        csv.clone().into(),
    ];
    let (ok, _, err) = gatecast(&forecast);
    assert!(ok, "{err}");
    assert!(
        err.contains("tiny (not in the run's training panel"),
        "{err}"
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..2], ["series", "timestamp"]);
    assert!(header.contains(&"p2.5") && header.contains(&"p50") && header.contains(&"p97.5"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 5 * 7);
    let last_day =
        chrono::NaiveDate::from_ymd_opt(2022, 1, 3).unwrap() + chrono::TimeDelta::days(119);
    for (k, r) in rows.iter().filter(|r| r[0] == "s3").enumerate() {
        let day = last_day + chrono::TimeDelta::days(k as i64 + 1);
        assert_eq!(r[1], format!("{day} 00:00:00"));
        let q: Vec<f64> = r[2..].iter().map(|v| v.parse().unwrap()).collect();
        assert!(q.windows(2).all(|w| w[0] <= w[1]), "quantiles cross: {r:?}");
    }
    // From the data up to each series' test origin, the forecasts are the run's own test
    // forecasts (forecast.csv): the same ids, scales and calendar as in training.
    let truncated = dir.join("truncated.csv");
    let all = std::fs::read_to_string(&path).unwrap();
    let last_days: Vec<String> = (0..7)
        .map(|k| (last_day - chrono::TimeDelta::days(k)).to_string())
        .collect();
    let kept: Vec<&str> = all
        .lines()
        .filter(|l| !last_days.iter().any(|d| l.starts_with(d.as_str())))
        .collect();
    std::fs::write(&truncated, kept.join("\n") + "\n").unwrap();
    let mut again = forecast[..3].to_vec();
    again.push(truncated.into());
    let (ok, out, err) = gatecast(&again);
    assert!(ok, "{err}");
    let test = std::fs::read_to_string(run.join("forecast.csv")).unwrap();
    let mut compared = 0;
    for l in out.lines().skip(1) {
        let (id_time, quantiles) = l.split_at(l.find(' ').unwrap() + 9);
        let want = test
            .lines()
            .find(|t| t.starts_with(id_time))
            .unwrap_or_else(|| panic!("{id_time} not in forecast.csv"));
        // forecast.csv has the actual value before the quantiles.
        let want_q = want.splitn(4, ',').nth(3).unwrap();
        assert_eq!(quantiles.trim_start_matches(','), want_q, "{id_time}");
        compared += 1;
    }
    assert_eq!(compared, 5 * 7);

    // To standard output, one series.
    let mut single = forecast[..4].to_vec();
    single.extend(["--series", "s3"].map(os));
    let (ok, out, err) = gatecast(&single);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1 + 7, "{out}");
    assert!(out.lines().skip(1).all(|l| l.starts_with("s3,")), "{out}");
    let mut tiny = forecast.clone();
    tiny.extend(["--series", "tiny"].map(os));
    let (ok, _, err) = gatecast(&tiny);
    assert!(
        !ok && err.contains("not in the run's training panel"),
        "{err}"
    );

    // Changed data: refused by evaluate.
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replacen(",s0,", ",s0,1", 1);
    std::fs::write(&path, edited).unwrap();
    let (ok, _, err) = gatecast(&eval);
    assert!(!ok && err.contains("--allow-changed-data"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A backtest's seasonal-naive rows against errors computed by hand: two weekly-periodic series
/// shifted up by 1, 3 and 6 in the three folds. The naive repeats the week before each origin
/// (its median seasonal change is 0), so its per-fold MAE is |1 - 0|, |3 - 1|, |6 - 3|.
#[test]
fn a_backtest_scores_each_fold_as_computed_by_hand() {
    use gatecast_trainer::panel::{backtest_panel, Folds};
    let dir = scratch("backtest");
    let t0 = chrono::NaiveDate::from_ymd_opt(2022, 1, 3).unwrap();
    let pattern = [10.0, 12.0, 9.0, 15.0, 20.0, 30.0, 25.0];
    let rows = 84;
    let mut text = String::from("date,store,units\n");
    for (id, level) in [("a", 0.0), ("b", 40.0)] {
        for d in 0..rows {
            let shift = if d < rows - 21 {
                0.0
            } else {
                [1.0, 3.0, 6.0][(d - (rows - 21)) / 7]
            };
            let day = t0 + chrono::TimeDelta::days(d as i64);
            text += &format!("{day},{id},{}\n", pattern[d % 7] + level + shift);
        }
    }
    let path = dir.join("weekly.csv");
    std::fs::write(&path, text).unwrap();
    let mut exp = experiment(&path);
    exp.window.lookback = 14;
    exp.window.horizon = 7;
    exp.train.epochs = 1;
    let folds = Folds {
        count: 3,
        stride: 7,
        refit: false,
    };
    let device = burn::tensor::Device::flex();
    let report = backtest_panel(&exp, folds, &dir.join("bt"), &device, true, None).unwrap();
    let naive: Vec<f64> = report
        .folds
        .iter()
        .map(|f| f.rows[1].mae.unwrap())
        .collect();
    assert_eq!(naive, [1.0, 2.0, 3.0], "{}", report.markdown());
    assert!(dir.join("bt/backtest.png").exists());
    assert_eq!(report.fits, 1);
    // With --refit: one model per fold, each trained before its own origin.
    let refit = Folds {
        refit: true,
        ..folds
    };
    let again = backtest_panel(&exp, refit, &dir.join("bt-refit"), &device, true, None).unwrap();
    assert_eq!(again.fits, 3);
    for k in 1..=3 {
        assert!(dir.join(format!("bt-refit/fold{k}/model.bpk")).exists());
    }
    let naive_again: Vec<f64> = again.folds.iter().map(|f| f.rows[1].mae.unwrap()).collect();
    assert_eq!(naive_again, [1.0, 2.0, 3.0]);
    // Conformal intervals (a continuous head, whose factors are not stuck at 1 by whole-number
    // quantiles): each refit fold keeps the factors of its own validation horizons, and its
    // forecasts are the plain fold's stretched by them.
    exp.model.likelihood = LikelihoodKind::Gaussian;
    let plain = backtest_panel(&exp, refit, &dir.join("bt-gauss"), &device, true, None).unwrap();
    exp.intervals.panel_conformal = true;
    let scaled = backtest_panel(&exp, refit, &dir.join("bt-conf"), &device, true, None).unwrap();
    let factors: Vec<Vec<f64>> = (1..=3)
        .map(|k| {
            let fold = dir.join(format!("bt-conf/fold{k}"));
            gatecast_trainer::panel::Calibration::load(&fold)
                .unwrap()
                .factors
        })
        .collect();
    assert!(
        factors[0] != factors[1] || factors[1] != factors[2],
        "{factors:?}"
    );
    let table = |name: &str| {
        let path = dir.join(format!("{name}/historical_forecasts.csv"));
        let folds: Vec<usize> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        folds
            .into_iter()
            .zip(quantile_rows(&path, 4))
            .collect::<Vec<_>>()
    };
    let (p, s) = (table("bt-gauss"), table("bt-conf"));
    assert_eq!(p.len(), s.len());
    for ((k, a), (_, b)) in p.iter().zip(&s) {
        assert_stretched(&factors[k - 1], a, b);
    }
    assert_ne!(plain.folds[0].rows[0].coverage80, None);
    assert!(plain
        .folds
        .iter()
        .zip(&scaled.folds)
        .any(|(a, b)| a.rows[0].wql != b.rows[0].wql));
    let csv = std::fs::read_to_string(dir.join("bt/historical_forecasts.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3 * 2 * 7);
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .starts_with("fold,series,timestamp,actual,p2.5"));
    // Fold 3 forecasts the last week.
    let last = (t0 + chrono::TimeDelta::days(rows as i64 - 1)).to_string();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("3,b,") && l.contains(&last)),
        "{csv}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `gatecast backtest --peer FILE` shows the peer's mean row and wall time beside gatecast's
/// (and in backtest.md); a malformed file is refused before any training.
#[test]
fn a_backtest_shows_the_peer_row() {
    let dir = scratch("peer");
    let path = write_panel(&dir, 4, 120, 0);
    let peer = dir.join("peer.csv");
    std::fs::write(
        &peer,
        "name,mean_wql,coverage80,coverage95,mase,seconds\nGluonTS DeepAR,0.7792,0.59,0.7625,0.8034,495.3\n",
    )
    .unwrap();
    let args = |peer: &Path| -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> =
            vec!["backtest".into(), "--data".into(), path.clone().into()];
        a.extend(
            [
                "--time-column",
                "date",
                "--target",
                "units",
                "--id-column",
                "store",
                "--horizon",
                "7",
                "--lookback",
                "14",
                "--epochs",
                "1",
                "--folds",
                "2",
                "--quiet",
                "--peer",
            ]
            .map(std::ffi::OsString::from),
        );
        a.push(peer.into());
        a.push("--out".into());
        a.push(dir.join("bt").into());
        a
    };
    let (ok, out, err) = gatecast(&args(&peer));
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("| mean | | GluonTS DeepAR | 0.7792 | 0.590 | 0.762 | 0.803 | n/a |"),
        "{out}"
    );
    assert!(out.contains("GluonTS DeepAR 495 s"), "{out}");
    let md = std::fs::read_to_string(dir.join("bt/backtest.md")).unwrap();
    assert!(md.contains("GluonTS DeepAR"), "{md}");
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "name,mean_wql\nGluonTS,x\n").unwrap();
    let (ok, _, err) = gatecast(&args(&bad));
    assert!(
        !ok && err.contains("--peer") && err.contains("line 2"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The lowest quantile (p2.5) of every row of a run's forecast.csv.
fn lowest_quantiles(run: &Path) -> Vec<f64> {
    let forecast = std::fs::read_to_string(run.join("forecast.csv")).unwrap();
    forecast
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(3).unwrap().parse().unwrap())
        .collect()
}

/// A Gaussian head on low counts puts its lower quantiles below 0. On count data (every
/// training value a whole number of at least 0) they are floored at 0, as the seasonal naive's
/// are; the same series shifted by 0.5 are not counts, and keep their negative quantiles.
#[test]
fn quantiles_of_count_data_are_floored_at_zero() {
    let dir = scratch("floor");
    let path = write_panel(&dir, 8, 120, 30);
    let mut exp = experiment(&path);
    exp.model.likelihood = LikelihoodKind::Gaussian;
    exp.train.epochs = 3;
    let device = burn::tensor::Device::flex();
    gatecast_trainer::panel::train_panel(&exp, &dir.join("counts"), &device, true).unwrap();
    let low = lowest_quantiles(&dir.join("counts"));
    assert!(low.iter().all(|&v| v >= 0.0), "{low:?}");
    assert!(low.contains(&0.0), "the floor was never needed: {low:?}");

    let text = std::fs::read_to_string(&path).unwrap();
    let mut shifted = String::from("date,store,units\n");
    for line in text.lines().skip(1) {
        let (head, y) = line.rsplit_once(',').unwrap();
        let y: f64 = y.parse().unwrap();
        shifted += &format!("{head},{}\n", y + 0.5);
    }
    let shifted_path = dir.join("shifted.csv");
    std::fs::write(&shifted_path, shifted).unwrap();
    exp.data.path = shifted_path.display().to_string();
    gatecast_trainer::panel::train_panel(&exp, &dir.join("shifted"), &device, true).unwrap();
    let low = lowest_quantiles(&dir.join("shifted"));
    assert!(low.iter().any(|&v| v < 0.0), "{low:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A known-future column of the file (`data.future_covariates`, GluonTS's `feat_dynamic_real`)
/// in a panel run: units rise by 15 on promotion days drawn at random, which the model
/// forecasts when it reads the column over the horizon and cannot otherwise; `forecast` takes
/// the promotions to come from `--future` and refuses without them.
#[test]
fn a_panel_reads_a_known_future_column() {
    let dir = scratch("future");
    let mut rng = gatecast_data::synthetic::Rng::new(21);
    let t0 = chrono::NaiveDate::from_ymd_opt(2022, 1, 3).unwrap();
    let mut text = String::from("date,store,promo,units\n");
    for k in 0..16 {
        for d in 0..150 {
            let promo = u8::from(rng.uniform() < 0.3);
            let y = 20.0 + 15.0 * promo as f64 + 2.0 * rng.normal();
            let day = t0 + chrono::TimeDelta::days(d as i64);
            text += &format!("{day},s{k},{promo},{y:.3}\n");
        }
    }
    let path = dir.join("promo.csv");
    std::fs::write(&path, &text).unwrap();
    let mut exp = experiment(&path);
    exp.model.likelihood = LikelihoodKind::Gaussian;
    exp.data.calendar.clear();
    exp.window.lookback = 7;
    exp.window.horizon = 7;
    exp.train.epochs = 20;
    let device = burn::tensor::Device::flex();
    let without =
        gatecast_trainer::panel::train_panel(&exp, &dir.join("without"), &device, true).unwrap();
    exp.data.future_covariates = vec!["promo".into()];
    exp.validate().unwrap();
    let run = dir.join("with");
    let with = gatecast_trainer::panel::train_panel(&exp, &run, &device, true).unwrap();
    let (a, b) = (with.rows[0].mae.unwrap(), without.rows[0].mae.unwrap());
    // Noise alone (sd 2) gives a median's MAE of 1.6; not knowing the promotions, about 7.
    assert!(a < 3.0 && a < 0.5 * b, "with {a}, without {b}");

    // The next week of s0 with promotions on days 2 and 5.
    let end = t0 + chrono::TimeDelta::days(149);
    let mut future = String::from("date,store,promo\n");
    for step in 1..=7 {
        let day = end + chrono::TimeDelta::days(step);
        future += &format!("{day},s0,{}\n", u8::from(step == 2 || step == 5));
    }
    let future_csv = dir.join("future.csv");
    std::fs::write(&future_csv, &future).unwrap();
    let out = dir.join("f.csv");
    let os = |s: &str| std::ffi::OsString::from(s);
    let (ok, o, err) = gatecast(&[
        os("forecast"),
        run.clone().into(),
        os("--input"),
        path.clone().into(),
        os("--series"),
        os("s0"),
        os("--future"),
        future_csv.clone().into(),
        os("--output"),
        out.clone().into(),
    ]);
    assert!(ok, "{o}\n{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let p50 = header.iter().position(|h| *h == "p50").unwrap();
    let median: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(p50).unwrap().parse().unwrap())
        .collect();
    assert_eq!(median.len(), 7);
    for day in [2, 5] {
        let around = (median[day - 2] + median[day]) / 2.0;
        assert!(median[day - 1] - around > 8.0, "day {day}: {median:?}");
    }
    // Without --future: an error that says what to give.
    let (ok, _, err) = gatecast(&[
        os("forecast"),
        run.clone().into(),
        os("--input"),
        path.clone().into(),
        os("--series"),
        os("s0"),
    ]);
    assert!(!ok && err.contains("--future"), "{err}");

    // The same column in other units (1000 + 500 · promo): standardized over the training
    // rows, it reaches the model as before, and so do the forecast's values to come.
    let units = |line: &str, column: usize| {
        let mut cells: Vec<String> = line.split(',').map(String::from).collect();
        let promo: f64 = cells[column].parse().unwrap();
        cells[column] = format!("{}", 1000.0 + 500.0 * promo);
        cells.join(",")
    };
    let rescale = |text: &str| -> String {
        let mut lines = text.lines();
        let mut out = format!("{}\n", lines.next().unwrap());
        for line in lines {
            out += &format!("{}\n", units(line, 2));
        }
        out
    };
    let big = dir.join("big.csv");
    std::fs::write(&big, rescale(&text_of(&path))).unwrap();
    let big_future = dir.join("big_future.csv");
    std::fs::write(&big_future, rescale(&future)).unwrap();
    exp.data.path = big.display().to_string();
    let big_run = dir.join("big");
    let rescaled = gatecast_trainer::panel::train_panel(&exp, &big_run, &device, true).unwrap();
    let c = rescaled.rows[0].mae.unwrap();
    assert!((c - a).abs() < 1e-3 * a, "{c} in other units, {a} before");
    let big_out = dir.join("big_f.csv");
    let (ok, o, err) = gatecast(&[
        os("forecast"),
        big_run.into(),
        os("--input"),
        big.into(),
        os("--series"),
        os("s0"),
        os("--future"),
        big_future.into(),
        os("--output"),
        big_out.clone().into(),
    ]);
    assert!(ok, "{o}\n{err}");
    let again: Vec<f64> = std::fs::read_to_string(&big_out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(p50).unwrap().parse().unwrap())
        .collect();
    for (x, y) in again.iter().zip(&median) {
        assert!((x - y).abs() < 1e-2, "{again:?} against {median:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn text_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// A panel experiment that leaves `data.season` out (0) gets its sampling step's period, 7 for
/// daily series, as a single series does: the run's `config.toml` records it, and the seasonal
/// naive's row is the one a run given 7 reports.
#[test]
fn a_panels_season_is_inferred_from_its_step() {
    let dir = scratch("season");
    let path = write_panel(&dir, 6, 120, 30);
    let mut exp = experiment(&path);
    exp.train.epochs = 1;
    let device = burn::tensor::Device::flex();
    let given =
        gatecast_trainer::panel::train_panel(&exp, &dir.join("given"), &device, true).unwrap();
    exp.data.season = 0;
    exp.validate().unwrap();
    let inferred =
        gatecast_trainer::panel::train_panel(&exp, &dir.join("inferred"), &device, true).unwrap();
    let saved = std::fs::read_to_string(dir.join("inferred/config.toml")).unwrap();
    let saved = Experiment::parse_toml(&saved, "config.toml").unwrap();
    assert_eq!(saved.data.season, 7);
    assert_eq!(
        format!("{:?}", inferred.rows[1]),
        format!("{:?}", given.rows[1])
    );
}

/// A file of one series with `--likelihood` and no id column trains a panel of that one series
/// (DeepAR on a single series): the same run, to every printed digit, as the file with an id
/// column holding one id; `forecast` reads another copy of the file and draws its intervals.
#[test]
fn one_series_with_a_likelihood_is_a_panel_of_one() {
    let dir = scratch("one");
    let panel = text_of(&write_panel(&dir, 4, 150, 10));
    let (mut with_id, mut alone) = (
        String::from("date,store,units\n"),
        String::from("date,units\n"),
    );
    for line in panel.lines().filter(|l| l.contains(",s2,")) {
        with_id += &format!("{line}\n");
        alone += &format!("{}\n", line.replace(",s2,", ","));
    }
    let (with_id_path, alone_path) = (dir.join("with_id.csv"), dir.join("alone.csv"));
    std::fs::write(&with_id_path, with_id).unwrap();
    std::fs::write(&alone_path, &alone).unwrap();
    let os = |s: &str| std::ffi::OsString::from(s);
    let train = |data: &Path, run: &Path, more: &[&str]| {
        let mut args: Vec<std::ffi::OsString> = vec![os("train"), os("--data"), data.into()];
        args.extend(
            [
                "--likelihood",
                "gaussian",
                "--horizon",
                "7",
                "--epochs",
                "2",
                "--quiet",
            ]
            .map(os),
        );
        args.extend(more.iter().map(|m| os(m)));
        args.extend([os("--out"), run.into()]);
        gatecast(&args)
    };
    let (one, panel_run) = (dir.join("one"), dir.join("panel"));
    let (ok, out, err) = train(&alone_path, &one, &[]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("1 series") && out.contains("--folds K"),
        "{out}"
    );
    let (ok, panel_out, err) = train(&with_id_path, &panel_run, &["--id-column", "store"]);
    assert!(ok, "{panel_out}\n{err}");
    let rows = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("| gatecast |") || l.starts_with("| seasonal_naive"))
            .map(String::from)
            .collect()
    };
    assert_eq!(rows(&out).len(), 2, "{out}");
    assert_eq!(rows(&out), rows(&panel_out));
    // The quantiles of the test horizon, without the series column (the target's name here,
    // the file's id there).
    let quantiles = |run: &Path| -> Vec<String> {
        text_of(&run.join("forecast.csv"))
            .lines()
            .skip(1)
            .map(|l| l.split_once(',').unwrap().1.to_string())
            .collect()
    };
    assert_eq!(quantiles(&one), quantiles(&panel_run));
    let config = Experiment::parse_toml(&text_of(&one.join("config.toml")), "config.toml").unwrap();
    assert!(config.data.id_column.is_empty() && config.is_panel());
    assert_eq!(config.model.likelihood, LikelihoodKind::Gaussian);

    // A forecast from a copy of the file: the series is known by the target's name, not by the
    // file's.
    let copy = dir.join("later.csv");
    std::fs::write(&copy, &alone).unwrap();
    let (csv, png) = (dir.join("ahead.csv"), dir.join("ahead.png"));
    let mut args: Vec<std::ffi::OsString> = vec![os("forecast"), one.clone().into()];
    args.extend([
        os("--input"),
        copy.into(),
        os("--output"),
        csv.clone().into(),
    ]);
    args.extend([os("--plot"), png.clone().into()]);
    let (ok, out, err) = gatecast(&args);
    assert!(ok, "{out}\n{err}");
    let ahead = text_of(&csv);
    assert_eq!(ahead.lines().count(), 1 + 7, "{ahead}");
    assert!(
        ahead.lines().skip(1).all(|l| l.starts_with("units,")),
        "{ahead}"
    );
    assert_eq!(image::image_dimensions(&png).unwrap(), (900, 560));
    // Ahead of the data there are no actual values (red) to draw, as in the test plot.
    let lines = |png: &Path| {
        let img = image::open(png).unwrap().to_rgb8();
        let count = |f: &dyn Fn(&image::Rgb<u8>) -> bool| img.pixels().filter(|p| f(p)).count();
        let red = count(&|p| p.0[0] > 200 && p.0[1] < 80 && p.0[2] < 80);
        let blue = count(&|p| p.0[2] > 200 && p.0[0] < 80 && p.0[1] < 80);
        (red, blue)
    };
    let (red, blue) = lines(&png);
    assert!(red < 20 && blue > 300, "ahead: red {red}, blue {blue}");
    let (red, blue) = lines(&one.join("forecast.png"));
    assert!(red > 300 && blue > 300, "test: red {red}, blue {blue}");

    // The panel's limits name the option that made the run a panel.
    let (ok, _, err) = train(&alone_path, &dir.join("x"), &["--revin"]);
    assert!(
        !ok && err.contains("model.likelihood") && err.contains("revin"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An epoch over few training windows runs `train.epoch_batches` batches, passing over the
/// windows again: after one epoch of 50 batches the validation loss is lower than after one
/// pass of 5, and `metrics.csv` records one epoch either way.
#[test]
fn an_epoch_of_few_windows_runs_its_batches() {
    let dir = scratch("batches");
    let path = write_panel(&dir, 1, 200, 10);
    let mut exp = experiment(&path);
    exp.train.epochs = 1;
    let device = burn::tensor::Device::flex();
    let valid_loss = |exp: &Experiment, name: &str| -> f64 {
        let run = dir.join(name);
        gatecast_trainer::panel::train_panel(exp, &run, &device, true).unwrap();
        let metrics = text_of(&run.join("metrics.csv"));
        let rows: Vec<&str> = metrics.lines().skip(1).collect();
        assert_eq!(rows.len(), 1, "{metrics}");
        rows[0].split(',').nth(2).unwrap().parse().unwrap()
    };
    // 200 days less the look-back and three horizons: 130 windows, 5 batches of 32 a pass.
    exp.train.epoch_batches = 0;
    let one_pass = valid_loss(&exp, "one_pass");
    exp.train.epoch_batches = 50;
    let fifty = valid_loss(&exp, "fifty");
    assert!(
        fifty < one_pass,
        "{fifty} after 50 batches, {one_pass} after 5"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run records whether it scaled each window by its own look-back; a run directory from
/// before `data.window_scale` (its config.toml names nothing) is evaluated as it was trained,
/// with each series' training scale, though new runs scale windows by default.
#[test]
fn a_run_from_before_window_scaling_evaluates_as_trained() {
    let dir = scratch("wscale");
    let path = write_panel(&dir, 4, 120, 10);
    let mut exp = experiment(&path);
    exp.train.epochs = 2;
    exp.data.scaler = Some(gatecast_data::ScalerKind::MeanAbs);
    exp.data.window_scale = None;
    assert!(exp.window_scale(), "the panel default");
    let device = burn::tensor::Device::flex();
    let row = |r: &gatecast_trainer::panel::PanelReport| format!("{:?}", r.rows[0]);
    let scaled =
        gatecast_trainer::panel::train_panel(&exp, &dir.join("new"), &device, true).unwrap();
    assert!(text_of(&dir.join("new/config.toml")).contains("window_scale = true"));
    exp.data.window_scale = Some(false);
    let run = dir.join("old");
    let unscaled = gatecast_trainer::panel::train_panel(&exp, &run, &device, true).unwrap();
    assert_ne!(row(&scaled), row(&unscaled));
    let config = text_of(&run.join("config.toml"));
    assert!(config.contains("window_scale = false\n"), "{config}");
    std::fs::write(
        run.join("config.toml"),
        config.replace("window_scale = false\n", ""),
    )
    .unwrap();
    let again = gatecast_trainer::panel::evaluate_run(&run, &device, false, None).unwrap();
    assert_eq!(row(&again), row(&unscaled));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--resample` on a panel aggregates each series on its own: a daily panel resampled to
/// calendar months (`MS`, summed) is tested on the last 3 months of each series, whose actual
/// values are that series' monthly sums by hand.
#[test]
fn a_panel_is_resampled_series_by_series() {
    let dir = scratch("resample");
    let t0 = chrono::NaiveDate::from_ymd_opt(2018, 1, 1).unwrap();
    let mut text = String::from("date,store,units\n");
    let mut sums = std::collections::HashMap::new();
    for (k, id) in ["a", "b"].iter().enumerate() {
        for d in 0..1461 {
            let day = t0 + chrono::TimeDelta::days(d);
            let v = (d as usize * (k + 3)) % 11;
            text += &format!("{day},{id},{v}\n");
            *sums
                .entry((id.to_string(), day.format("%Y-%m-01 00:00:00").to_string()))
                .or_insert(0usize) += v;
        }
    }
    let path = dir.join("daily.csv");
    std::fs::write(&path, text).unwrap();
    let os = |s: &str| std::ffi::OsString::from(s);
    let mut args: Vec<std::ffi::OsString> = vec![os("train"), os("--data"), path.into()];
    args.extend(
        [
            "--id-column",
            "store",
            "--resample",
            "MS",
            "--aggregate",
            "sum",
            "--horizon",
            "3",
            "--lookback",
            "12",
            "--epochs",
            "1",
            "--quiet",
            "--out",
        ]
        .map(os),
    );
    let run = dir.join("run");
    args.push(run.clone().into());
    let (ok, out, err) = gatecast(&args);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("2 series (96 rows)"), "{out}");
    let forecast = text_of(&run.join("forecast.csv"));
    let rows: Vec<Vec<&str>> = forecast
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 2 * 3, "{forecast}");
    for r in &rows {
        let want = sums[&(r[0].to_string(), r[1].to_string())];
        assert_eq!(r[2].parse::<f64>().unwrap(), want as f64, "{r:?}");
    }
    assert!(
        rows.iter().any(|r| r[1] == "2021-12-01 00:00:00"),
        "{forecast}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file of series side by side, `--target north,south` with `--likelihood` and no id column,
/// is the panel of its columns: the same test rows and quantiles as the long-format file of the
/// same values (a `store` column holding the column's name), with a known-future column shared
/// by the series in training and in a forecast's `--future` file.
#[test]
fn series_side_by_side_are_a_panel_of_their_columns() {
    let dir = scratch("wide");
    let t0 = chrono::NaiveDate::from_ymd_opt(2022, 1, 3).unwrap();
    let day = |d: i64| t0 + chrono::TimeDelta::days(d);
    let promo = |d: i64| u8::from(d % 9 == 4);
    let value = |k: i64, d: i64| 20 * (k + 1) + (d * (k + 2)) % 7 + 15 * i64::from(promo(d));
    let (mut wide, mut long) = (
        String::from("date,north,south,promo\n"),
        String::from("date,store,units,promo\n"),
    );
    for d in 0..200 {
        wide += &format!("{},{},{},{}\n", day(d), value(0, d), value(1, d), promo(d));
    }
    for (k, id) in ["north", "south"].iter().enumerate() {
        for d in 0..200 {
            long += &format!("{},{id},{},{}\n", day(d), value(k as i64, d), promo(d));
        }
    }
    let (mut wide_future, mut long_future) = (
        String::from("date,promo\n"),
        String::from("date,store,promo\n"),
    );
    for d in 200..207 {
        wide_future += &format!("{},{}\n", day(d), promo(d));
        for id in ["north", "south"] {
            long_future += &format!("{},{id},{}\n", day(d), promo(d));
        }
    }
    for (name, text) in [
        ("wide.csv", &wide),
        ("long.csv", &long),
        ("wide_future.csv", &wide_future),
        ("long_future.csv", &long_future),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let os = |s: &str| std::ffi::OsString::from(s);
    let run = |args: &[&str]| {
        let (ok, out, err) = gatecast(&args.iter().map(|a| os(a)).collect::<Vec<_>>());
        assert!(ok, "{args:?}\n{out}\n{err}");
        out
    };
    let common = [
        "--likelihood",
        "gaussian",
        "--future-covariates",
        "promo",
        "--horizon",
        "7",
        "--epochs",
        "2",
        "--quiet",
    ];
    let d = |name: &str| dir.join(name).display().to_string();
    let mut wide_args = vec!["train", "--data"];
    let (wide_csv, long_csv, wide_run, long_run) = (d("wide.csv"), d("long.csv"), d("w"), d("l"));
    wide_args.extend([
        wide_csv.as_str(),
        "--target",
        "north,south",
        "--out",
        &wide_run,
    ]);
    wide_args.extend(common);
    let mut long_args = vec!["train", "--data"];
    long_args.extend([
        long_csv.as_str(),
        "--id-column",
        "store",
        "--target",
        "units",
    ]);
    long_args.extend(["--out", long_run.as_str()]);
    long_args.extend(common);
    let wide_out = run(&wide_args);
    let long_out = run(&long_args);
    assert!(wide_out.contains("2 series"), "{wide_out}");
    let rows = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("| gatecast |") || l.starts_with("| seasonal_naive"))
            .map(String::from)
            .collect()
    };
    assert_eq!(rows(&wide_out).len(), 2, "{wide_out}");
    assert_eq!(rows(&wide_out), rows(&long_out));
    assert_eq!(
        text_of(&dir.join("w/forecast.csv")),
        text_of(&dir.join("l/forecast.csv"))
    );
    // Without --target, a distribution head takes every column of numbers the flags leave
    // (promo is a known-future column) as the series: the same run.
    let found = d("found");
    let mut args = vec![
        "train",
        "--data",
        wide_csv.as_str(),
        "--out",
        found.as_str(),
    ];
    args.extend(common);
    run(&args);
    assert_eq!(
        text_of(&dir.join("found/forecast.csv")),
        text_of(&dir.join("w/forecast.csv"))
    );
    // A forecast, the known-future values from a file without ids for the wide run.
    let (wf, lf) = (d("wide_future.csv"), d("long_future.csv"));
    let (wa, la) = (d("wide_ahead.csv"), d("long_ahead.csv"));
    run(&["forecast", &wide_run, "--future", &wf, "--output", &wa]);
    run(&["forecast", &long_run, "--future", &lf, "--output", &la]);
    let ahead = text_of(Path::new(&wa));
    assert_eq!(ahead.lines().count(), 1 + 2 * 7, "{ahead}");
    assert_eq!(ahead, text_of(Path::new(&la)));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A panel run reads `train.schedule`, `train.optimizer` and reduce-on-plateau: a step
/// schedule whose rate falls to a billionth after the first epoch leaves the second epoch's
/// validation loss where the first left it, while a constant rate (the panel default) moves it;
/// SGD trains to another loss than Adam.
#[test]
fn a_panel_follows_the_schedule_and_optimizer_it_is_given() {
    let dir = scratch("schedule");
    let path = write_panel(&dir, 3, 120, 10);
    let device = burn::tensor::Device::flex();
    let losses = |exp: &Experiment, name: &str| -> Vec<f64> {
        let run = dir.join(name);
        gatecast_trainer::panel::train_panel(exp, &run, &device, true).unwrap();
        text_of(&run.join("metrics.csv"))
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
            .collect()
    };
    let mut exp = experiment(&path);
    exp.train.epochs = 2;
    assert_eq!(
        exp.schedule(),
        gatecast_trainer::schedule::Schedule::Constant
    );
    let constant = losses(&exp, "constant");
    assert!((constant[1] - constant[0]).abs() > 1e-4, "{constant:?}");
    exp.train.schedule = Some(gatecast_trainer::schedule::Schedule::Step {
        every: 1,
        gamma: 1e-9,
    });
    let stepped = losses(&exp, "step");
    assert_eq!(stepped[0], constant[0]);
    assert!((stepped[1] - stepped[0]).abs() < 1e-6, "{stepped:?}");
    assert!(text_of(&dir.join("step/config.toml")).contains("kind = \"step\""));
    exp.train.schedule = None;
    exp.train.optimizer = gatecast_trainer::config::Optimizer::Sgd;
    let sgd = losses(&exp, "sgd");
    assert_ne!(sgd[0], constant[0]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Per-epoch losses of a finished run (metrics.csv: epoch, train, valid, seconds), without
/// the seconds.
fn epoch_losses(run: &Path) -> Vec<(String, String)> {
    text_of(&run.join("metrics.csv"))
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].to_string(), f[2].to_string())
        })
        .collect()
}

/// A panel run stopped after two epochs and resumed to four repeats the four-epoch run to
/// every digit: the same losses each epoch and the same test forecast (of an epoch after the
/// stop). It carries the optimizer's moments, the weight average and the batch order across
/// the stop (dropout is off: its masks cannot be carried). A damaged newest checkpoint
/// and a killed save's temporary directory are skipped; a run without checkpoints, or of other
/// series, is refused by name.
#[test]
fn a_resumed_panel_run_repeats_the_uninterrupted_one() {
    let dir = scratch("resume");
    let path = write_panel(&dir, 12, 150, 10);
    let device = burn::tensor::Device::flex();
    let mut exp = experiment(&path);
    exp.model.dropout = 0.0;
    exp.train.ema_decay = 0.9;
    exp.train.plateau_patience = 1;
    exp.train.epochs = 4;
    exp.train.lr = 1e-3;
    // Several passes an epoch, so the batch order after a stop is not the first pass's.
    exp.train.epoch_batches = 30;
    let train = |exp: &Experiment, run: &Path, resume: bool| {
        let options = gatecast_trainer::run::TrainOptions {
            resume,
            quiet: true,
            allow_changed_data: false,
        };
        gatecast_trainer::panel::train_panel_with(exp, run, &device, options)
    };
    let whole = dir.join("whole");
    let report = train(&exp, &whole, false).unwrap();
    let losses = epoch_losses(&whole);
    assert_eq!(losses.len(), 4);
    // The forecast is of weights trained after the stop.
    assert!(
        report.best_epoch > 2,
        "best epoch {}: {losses:?}",
        report.best_epoch
    );
    let forecast = text_of(&whole.join("forecast.csv"));

    let parts = dir.join("parts");
    let mut short = exp.clone();
    short.train.epochs = 2;
    train(&short, &parts, false).unwrap();
    assert_eq!(epoch_losses(&parts), losses[..2]);
    let ck = parts.join("checkpoint");
    assert!(ck.join("panel-1").is_dir() && ck.join("panel-2").is_dir());
    train(&exp, &parts, true).unwrap();
    assert_eq!(epoch_losses(&parts), losses);
    assert_eq!(text_of(&parts.join("forecast.csv")), forecast);
    // Only the two newest epochs are kept.
    assert!(!ck.join("panel-2").exists() && ck.join("panel-4").is_dir());

    // The newest checkpoint damaged, as by a disk fault, and a save killed half-way: the run
    // resumes from epoch 3 and ends where the whole run did.
    std::fs::write(ck.join("panel-4/optim.bpk"), b"truncated").unwrap();
    std::fs::create_dir_all(ck.join(".panel-5.tmp1")).unwrap();
    train(&exp, &parts, true).unwrap();
    assert_eq!(epoch_losses(&parts), losses);
    assert_eq!(text_of(&parts.join("forecast.csv")), forecast);
    assert!(!ck.join(".panel-5.tmp1").exists());
    // A finished run resumed trains nothing more and evaluates the same weights.
    train(&exp, &parts, true).unwrap();
    assert_eq!(epoch_losses(&parts), losses);
    assert_eq!(text_of(&parts.join("forecast.csv")), forecast);

    // Nothing to resume from.
    let fresh = dir.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::copy(whole.join("config.toml"), fresh.join("config.toml")).unwrap();
    std::fs::copy(whole.join("data.toml"), fresh.join("data.toml")).unwrap();
    std::fs::copy(whole.join("series.csv"), fresh.join("series.csv")).unwrap();
    let e = format!("{:#}", train(&exp, &fresh, true).err().unwrap());
    assert!(e.contains("no intact checkpoint"), "{e}");
    // Other series (the file rewritten with five): the embedding's rows would belong to other
    // ids.
    let other = write_panel(&dir, 13, 150, 10);
    let mut changed = exp.clone();
    changed.data.path = other.display().to_string();
    let options = gatecast_trainer::run::TrainOptions {
        resume: true,
        quiet: true,
        allow_changed_data: true,
    };
    let e = format!(
        "{:#}",
        gatecast_trainer::panel::train_panel_with(&changed, &parts, &device, options)
            .err()
            .unwrap()
    );
    assert!(
        e.contains("series differ") && e.contains("series.csv"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `gatecast train --resume --out DIR` continues a panel run with its own config.toml; the
/// flags may lengthen it, but not add a weight average the run never kept.
#[test]
fn the_cli_resumes_a_panel_run() {
    let dir = scratch("resume-cli");
    let path = write_panel(&dir, 3, 100, 10);
    let run = dir.join("run");
    let args = |extra: &[&str]| -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = vec!["train".into()];
        v.extend(extra.iter().map(Into::into));
        v.push("--out".into());
        v.push(run.clone().into());
        v
    };
    let first = args(&[
        "--data",
        path.to_str().unwrap(),
        "--time-column",
        "date",
        "--id-column",
        "store",
        "--target",
        "units",
        "--likelihood",
        "student_t",
        "--lookback",
        "14",
        "--horizon",
        "7",
        "--epochs",
        "1",
        "--quiet",
    ]);
    let (ok, out, err) = gatecast(&first);
    assert!(ok, "{out}\n{err}");
    let (ok, out, err) = gatecast(&args(&["--resume", "--epochs", "2", "--quiet"]));
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("resuming after epoch 1"), "{out}");
    assert_eq!(epoch_losses(&run).len(), 2);
    assert!(text_of(&run.join("config.toml")).contains("epochs = 2"));
    // A weight average the run never kept cannot be continued.
    let (ok, out, err) = gatecast(&args(&[
        "--resume",
        "--epochs",
        "3",
        "--ema-decay",
        "0.9",
        "--quiet",
    ]));
    assert!(!ok, "{out}");
    assert!(
        err.contains("holds no weight average")
            && err.contains("train.ema_decay")
            && !err.contains("earlier checkpoint"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rows of a forecast file's quantile columns, from column `skip` on.
fn quantile_rows(path: &Path, skip: usize) -> Vec<Vec<f64>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .skip(skip)
                .map(|v| v.parse().unwrap())
                .collect()
        })
        .collect()
}

/// That `scaled` is the quantile row `plain` (levels symmetric about the median, in order)
/// with each central interval stretched about the median by its factor (outermost first),
/// re-ordered and floored at 0, to the files' 4 decimals.
fn assert_stretched(factors: &[f64], plain: &[f64], scaled: &[f64]) {
    let n = plain.len();
    assert_eq!(n, 2 * factors.len() + 1);
    let m = plain[n / 2];
    let mut v = plain.to_vec();
    for (i, f) in factors.iter().enumerate() {
        v[i] = m - f * (m - plain[i]);
        v[n - 1 - i] = m + f * (plain[n - 1 - i] - m);
    }
    v.sort_by(f64::total_cmp);
    for (x, y) in v.iter().map(|x| x.max(0.0)).zip(scaled) {
        assert!(
            (x - y).abs() < 1e-3 + 1e-4 * y.abs(),
            "{plain:?} -> {scaled:?}"
        );
    }
}

/// `intervals.panel_conformal`: the same run (same seed, same weights) with and without it.
/// The calibrated run keeps one factor per central interval in `calibration.toml` and its test
/// forecasts are the plain run's stretched about the median by them (re-ordered, counts
/// floored at 0); `evaluate` and `forecast` of the finished run apply the same factors, and
/// without the file they refuse to run rather than give unscaled intervals.
#[test]
fn conformal_panel_intervals_stretch_the_models_by_the_validation_factors() {
    let dir = scratch("conformal");
    let path = write_panel(&dir, 12, 160, 0);
    let mut exp = experiment(&path);
    exp.train.epochs = 2;
    // A continuous head: a count head's quantiles are whole numbers, many of the validation
    // values sit on an interval's end, and the factors can all come out 1.
    exp.model.likelihood = LikelihoodKind::Gaussian;
    let device = burn::tensor::Device::flex();
    let train = |exp: &Experiment, name: &str| {
        gatecast_trainer::panel::train_panel(exp, &dir.join(name), &device, true).unwrap()
    };
    let plain = train(&exp, "plain");
    exp.intervals.panel_conformal = true;
    let scaled = train(&exp, "scaled");
    assert!(!dir.join("plain/calibration.toml").exists());
    let c = gatecast_trainer::panel::Calibration::load(&dir.join("scaled")).unwrap();
    // The default levels: 2.5%, 10%, ..., 90%, 97.5%, as symmetric pairs about the median.
    assert_eq!(c.lower, vec![0.025, 0.1, 0.2, 0.3, 0.4]);
    assert!(c.values >= 12 * 14, "{c:?}");
    // On these small counts, floored at 0, a validation 0 scores exactly 1 on the lower side
    // (the floored interval just reaches it), and the outer intervals' factors can be 1.
    assert!(c.factors.iter().all(|f| *f > 0.0), "{c:?}");
    assert!(c.factors.iter().any(|f| (f - 1.0).abs() > 0.01), "{c:?}");
    let note = scaled.calibration.clone().unwrap();
    assert!(note.contains("validation values"), "{note}");
    assert!(plain.calibration.is_none());
    let md = std::fs::read_to_string(dir.join("scaled/test_metrics.md")).unwrap();
    assert!(md.contains(&note), "{md}");
    // The medians agree; the intervals are the plain ones stretched.
    let same = |a: &[Vec<f64>], b: &[Vec<f64>]| {
        assert_eq!(a.len(), b.len());
        for (p, s) in a.iter().zip(b) {
            assert_stretched(&c.factors, p, s);
        }
    };
    let (p, s) = (
        quantile_rows(&dir.join("plain/forecast.csv"), 3),
        quantile_rows(&dir.join("scaled/forecast.csv"), 3),
    );
    same(&p, &s);
    let moved = p
        .iter()
        .zip(&s)
        .any(|(a, b)| a.iter().zip(b).any(|(x, y)| (x - y).abs() > 1e-2));
    assert!(moved, "no quantile moved");
    // A finished run: evaluate gives the training table, forecast the same stretch.
    let again =
        gatecast_trainer::panel::evaluate_run(&dir.join("scaled"), &device, false, None).unwrap();
    assert_eq!(again.rows, scaled.rows);
    assert_eq!(again.calibration.as_deref(), Some(note.as_str()));
    for name in ["plain", "scaled"] {
        let out = dir.join(format!("{name}-ahead.csv"));
        gatecast_trainer::panel::forecast_run(&dir.join(name), &path, Some(&out), None, &device)
            .unwrap();
    }
    same(
        &quantile_rows(&dir.join("plain-ahead.csv"), 2),
        &quantile_rows(&dir.join("scaled-ahead.csv"), 2),
    );
    std::fs::remove_file(dir.join("scaled/calibration.toml")).unwrap();
    let e = format!(
        "{:#}",
        gatecast_trainer::panel::evaluate_run(&dir.join("scaled"), &device, false, None)
            .unwrap_err()
    );
    assert!(
        e.contains("calibration.toml") && e.contains("panel_conformal"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
