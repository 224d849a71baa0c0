//! A run's data is prepared the same way at every stage: a forecast applies the run's resampling
//! and is stamped at the run's frequency.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use gatecast_data::{Aggregation, Calendar};
use gatecast_trainer::config::Experiment;
use gatecast_trainer::run;

mod common;
use common::write_csv;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gatecast-prep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Daily sums of every column of an hourly `time,load,temp` file, computed here by hand: what a
/// user who resampled the file themselves would give.
fn daily_sums(hourly: &Path, out: &Path) {
    let text = std::fs::read_to_string(hourly).unwrap();
    let mut days: Vec<(String, f64, f64)> = Vec::new();
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let day = cells[0][..10].to_string();
        let (load, temp): (f64, f64) = (cells[1].parse().unwrap(), cells[2].parse().unwrap());
        match days.last_mut() {
            Some((d, l, t)) if *d == day => {
                *l += load;
                *t += temp;
            }
            _ => days.push((day, load, temp)),
        }
    }
    let mut csv = String::from("time,load,temp\n");
    for (day, load, temp) in days {
        csv += &format!("{day} 00:00:00,{load},{temp}\n");
    }
    std::fs::write(out, csv).unwrap();
}

/// `(time, forecast)` rows of a forecast CSV.
fn rows(path: &Path) -> Vec<(String, f64)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[0].to_string(), c[2].parse().unwrap())
        })
        .collect()
}

/// `gatecast train --data FILE --time-column TIME --target TARGET --out run --quiet EXTRA..`
/// in `dir`, as a user with their own file and no config runs it: its standard output and
/// error, after asserting that it succeeded, and the run's `config.toml`.
fn train_own(
    dir: &Path,
    file: &str,
    time: &str,
    target: &str,
    extra: &[&str],
) -> (String, String, String) {
    let mut args = vec![
        "train",
        "--data",
        file,
        "--time-column",
        time,
        "--target",
        target,
        "--out",
        "run",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatecast"))
        .args(&args)
        .current_dir(dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "gatecast {args:?}: {err}");
    let config = std::fs::read_to_string(dir.join("run/config.toml")).unwrap();
    (String::from_utf8(out.stdout).unwrap(), err, config)
}

/// A run trained on hourly rows summed to days forecasts from the raw hourly file exactly as from
/// the daily sums made by hand: days after the file's last day, on the scale of daily sums.
#[test]
fn forecast_applies_the_runs_resampling() {
    let dir = tmp("resample");
    let hourly = write_csv(&dir, 24 * 120);
    let mut exp = common::small_experiment(&hourly);
    exp.data.calendar = vec![Calendar::DayOfWeek];
    exp.data.resample = "1d".into();
    exp.data.aggregate = Aggregation::Sum;
    exp.data.season = 7;
    exp.window.lookback = 14;
    exp.window.horizon = 7;
    exp.window.stride = 1;
    exp.model.hidden_size = 8;
    exp.train.epochs = 2;
    exp.validate().unwrap();
    let run_dir = dir.join("run");
    let device = Device::flex();
    run::train(&exp, &run_dir, std::slice::from_ref(&device), false, true).unwrap();

    let from_raw = dir.join("from_raw.csv");
    run::forecast(&run_dir, &hourly, Some(&from_raw), &device).unwrap();
    let daily = dir.join("daily.csv");
    daily_sums(&hourly, &daily);
    let from_daily = dir.join("from_daily.csv");
    run::forecast(&run_dir, &daily, Some(&from_daily), &device).unwrap();

    let (raw, made) = (rows(&from_raw), rows(&from_daily));
    assert_eq!(raw.len(), 7, "one row per forecast day");
    // The file's last hour is 2023-04-30 23:00: the forecast starts the next day, a day apart.
    let days: Vec<&str> = raw.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        days,
        [
            "2023-05-01 00:00:00",
            "2023-05-02 00:00:00",
            "2023-05-03 00:00:00",
            "2023-05-04 00:00:00",
            "2023-05-05 00:00:00",
            "2023-05-06 00:00:00",
            "2023-05-07 00:00:00",
        ]
    );
    for ((t_raw, v_raw), (t_made, v_made)) in raw.iter().zip(&made) {
        assert_eq!(t_raw, t_made);
        assert!(
            (v_raw - v_made).abs() <= 1e-3 * v_made.abs(),
            "{t_raw}: {v_raw} from the raw file, {v_made} from the daily sums"
        );
        // Hourly loads are ~100; their daily sums ~2,400.
        assert!((1500.0..4000.0).contains(v_raw), "{t_raw}: {v_raw}");
    }
}

fn small_run(name: &str) -> (PathBuf, PathBuf, Experiment) {
    let dir = tmp(name);
    let csv = write_csv(&dir, 600);
    let mut exp = common::small_experiment(&csv);
    exp.model.hidden_size = 8;
    exp.train.epochs = 1;
    let run_dir = dir.join("run");
    run::train(&exp, &run_dir, &[Device::flex()], false, true).unwrap();
    (csv, run_dir, exp)
}

/// `evaluate` refuses data that changed since training, naming what changed, unless told to go
/// on; an edit that keeps the size, rows and span is caught by the content hash.
#[test]
fn evaluate_refuses_changed_data() {
    let (csv, run_dir, _) = small_run("evaluate");
    let device = Device::flex();
    assert!(run_dir.join("data.toml").exists());
    run::evaluate(&run_dir, &device).expect("unchanged data evaluates");

    let text = std::fs::read_to_string(&csv).unwrap();
    // One digit of one value, same length.
    let line = text.lines().nth(300).unwrap();
    let digit = line.rfind(|c: char| c.is_ascii_digit()).unwrap();
    let new_digit = if &line[digit..digit + 1] == "1" {
        "2"
    } else {
        "1"
    };
    let edited_line = format!("{}{new_digit}{}", &line[..digit], &line[digit + 1..]);
    std::fs::write(&csv, text.replacen(line, &edited_line, 1)).unwrap();
    let err = run::evaluate(&run_dir, &device).unwrap_err().to_string();
    assert!(
        err.contains("values edited") && err.contains("--allow-changed-data"),
        "{err}"
    );

    // Rows removed at the end.
    let kept: Vec<&str> = text.lines().take(500).collect();
    std::fs::write(&csv, kept.join("\n") + "\n").unwrap();
    let err = run::evaluate(&run_dir, &device).unwrap_err().to_string();
    assert!(err.contains("rows 600 → 499"), "{err}");
    assert!(err.contains("last timestamp"), "{err}");
    run::evaluate_with(&run_dir, &device, true).expect("allowed: evaluated as it is now");
}

/// `--resume` refuses data that changed since the run began, unless told to go on.
#[test]
fn resume_refuses_changed_data() {
    let (csv, run_dir, mut exp) = small_run("resume");
    let text = std::fs::read_to_string(&csv).unwrap();
    let kept: Vec<&str> = text.lines().take(550).collect();
    std::fs::write(&csv, kept.join("\n") + "\n").unwrap();
    exp.train.epochs = 2;
    let resume = run::TrainOptions {
        resume: true,
        quiet: true,
        allow_changed_data: false,
    };
    let devices = [Device::flex()];
    let err = run::train_with(&exp, &run_dir, &devices, resume)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--resume") && err.contains("rows 600 → 549"),
        "{err}"
    );
    let allowed = run::TrainOptions {
        allow_changed_data: true,
        ..resume
    };
    let report = run::train_with(&exp, &run_dir, &devices, allowed).unwrap();
    assert_eq!(report.resumed_from, Some(1));
}

/// A user's own month-end file, with no config: its step is calendar months, so the seasonal
/// naive compares with last year (12), the calendar feature is the month, the test forecasts
/// and the forecast after the file fall on months' last days (29 February in a leap year), and
/// the forecast starts the month after the file's last; daily rows are refused as its input.
#[test]
fn an_own_monthly_file_runs_on_the_calendar() {
    let _guard = common::trains();
    let dir = tmp("monthly");
    let mut csv = String::from("month,sales\n");
    let end = gatecast_data::Frequency::Months {
        months: 1,
        end: true,
    };
    let first = chrono::NaiveDate::from_ymd_opt(2000, 1, 31)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    for t in 0..240i64 {
        let at = end.add(first, t);
        let season = (t % 12) as f64 - 5.5;
        csv += &format!(
            "{},{:.2}\n",
            at.format("%Y-%m-%d"),
            100.0 + 4.0 * season + (t % 7) as f64
        );
    }
    std::fs::write(dir.join("m.csv"), csv).unwrap();
    let (out, _, config) = train_own(
        &dir,
        "m.csv",
        "month",
        "sales",
        &["--lookback", "24", "--horizon", "12", "--epochs", "2"],
    );
    assert!(out.contains("| seasonal_naive(12) |"), "{out}");
    // No normalisation flag: the three were tried and one kept (the run's config says which).
    assert!(
        out.contains("normalisation chosen on the validation split: "),
        "{out}"
    );
    assert!(dir.join("run/norm_choice.csv").exists());
    assert!(config.contains("auto_norm = false"), "{config}");
    let kept = if config.contains("revin = true") {
        "revin"
    } else if config.contains("last_value_norm = true") {
        "last-value"
    } else {
        "none"
    };
    let again = common::gatecast_ok(&["evaluate", "run"], &dir);
    assert!(
        again.contains(&format!(
            "normalisation: {kept}, chosen on the validation split"
        )),
        "{again}"
    );
    assert!(
        config.contains("stride = 1"),
        "every window of a short file: {config}"
    );
    assert!(
        config.contains("calendar = [\"month_of_year\"]"),
        "{config}"
    );
    let is_month_end = |t: &str| {
        let day = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .date();
        day.succ_opt().unwrap().day0() == 0
    };
    use chrono::Datelike;
    let tested = std::fs::read_to_string(dir.join("run/forecast.csv")).unwrap();
    let times: Vec<&str> = tested
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert!(times.iter().all(|t| is_month_end(t)), "{times:?}");
    assert!(times.contains(&"2016-02-29 00:00:00"), "{times:?}");
    common::gatecast_ok(
        &["forecast", "run", "--input", "m.csv", "--output", "f.csv"],
        &dir,
    );
    // Without --input, the file the run trained on.
    common::gatecast_ok(&["forecast", "run", "--output", "g.csv"], &dir);
    assert_eq!(
        std::fs::read_to_string(dir.join("f.csv")).unwrap(),
        std::fs::read_to_string(dir.join("g.csv")).unwrap()
    );
    let ahead: Vec<String> = rows(&dir.join("f.csv"))
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let want: Vec<String> = (240..252)
        .map(|t| end.add(first, t).format("%Y-%m-%d %H:%M:%S").to_string())
        .collect();
    assert_eq!(want[0], "2020-01-31 00:00:00");
    assert_eq!(want[1], "2020-02-29 00:00:00");
    assert_eq!(ahead, want);

    // Daily rows given to the monthly run: the model would read 24 days as 24 months.
    let mut daily = String::from("month,sales\n");
    for d in 0..60 {
        let day = first.date() + chrono::TimeDelta::days(d);
        daily += &format!("{day},{}\n", 100 + d % 7);
    }
    std::fs::write(dir.join("daily.csv"), daily).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatecast"))
        .args(["forecast", "run", "--input", "daily.csv"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("daily.csv: its rows are 1d apart")
            && err.contains("trained on rows 1 month (month ends) apart"),
        "{err}"
    );
}

/// A user's own yearly file (years written `1700`): no calendar feature tells years apart and
/// no seasonal naive differs from repeat-last, so the run has neither; with no window given it
/// forecasts M4's 6 years from 18, dated on the years after the file's last.
#[test]
fn an_own_yearly_file_has_no_season() {
    let _guard = common::trains();
    let dir = tmp("yearly");
    let mut csv = String::from("year,spots\n");
    for y in 1700..1900 {
        csv += &format!("{y},{}\n", 60 + (y * 37) % 50);
    }
    std::fs::write(dir.join("y.csv"), csv).unwrap();
    let (out, _, config) = train_own(&dir, "y.csv", "year", "spots", &["--epochs", "1"]);
    assert!(
        out.contains("| naive |") && !out.contains("seasonal_naive"),
        "{out}"
    );
    assert!(config.contains("calendar = []"), "{config}");
    // M4's yearly horizon, from three times as far back.
    assert!(
        config.contains("lookback = 18\nhorizon = 6\nstride = 1"),
        "{config}"
    );
    common::gatecast_ok(
        &["forecast", "run", "--input", "y.csv", "--output", "f.csv"],
        &dir,
    );
    let years: Vec<String> = rows(&dir.join("f.csv")).into_iter().map(|r| r.0).collect();
    assert_eq!(years[0], "1900-01-01 00:00:00");
    assert_eq!(years[5], "1905-01-01 00:00:00");
    assert_eq!(years.len(), 6);
}

/// A monthly file of 12 years (AirPassengers' length) is too short for M4's 18 months from 54:
/// its own-file window is a year ahead from three years back, whole seasons, and the run says
/// why; a horizon asked for is kept.
#[test]
fn a_short_own_file_gets_a_window_that_fits() {
    let _guard = common::trains();
    let dir = tmp("short");
    let mut csv = String::from("month,passengers\n");
    for t in 0..144 {
        csv += &format!(
            "{}-{:02},{}\n",
            1949 + t / 12,
            t % 12 + 1,
            100 + 2 * t + 10 * (t % 12)
        );
    }
    std::fs::write(dir.join("air.csv"), csv).unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec!["--epochs", "1"];
        args.extend_from_slice(extra);
        let (_, err, config) = train_own(&dir, "air.csv", "month", "passengers", &args);
        (err, config)
    };
    let (err, config) = train(&[]);
    assert!(config.contains("lookback = 36\nhorizon = 12\n"), "{config}");
    assert!(
        err.contains("air.csv: 144 rows: forecasting 12 steps from 36")
            && err.contains("M4's horizon of 18"),
        "{err}"
    );
    let (err, config) = train(&["--horizon", "6"]);
    assert!(config.contains("lookback = 18\nhorizon = 6\n"), "{config}");
    assert!(!err.contains("M4"), "{err}");
}

/// An own monthly panel of ten years per series: the season is a year, the calendar the month,
/// and M4's 18 months from 72 do not fit 120 rows beside two held-out horizons, so it forecasts
/// a year from four.
#[test]
fn an_own_monthly_panel_gets_its_season_and_a_window_that_fits() {
    let _guard = common::trains();
    let dir = tmp("panel");
    let mut csv = String::from("month,store,units\n");
    for store in 0..3 {
        for t in 0..120 {
            csv += &format!(
                "{}-{:02}-01,s{store},{}\n",
                2010 + t / 12,
                t % 12 + 1,
                20 + 5 * store + (t % 12)
            );
        }
    }
    std::fs::write(dir.join("p.csv"), csv).unwrap();
    let extra = ["--id-column", "store", "--epochs", "1"];
    let (_, _, config) = train_own(&dir, "p.csv", "month", "units", &extra);
    for want in [
        "calendar = [\"month_of_year\"]",
        "season = 12",
        "lookback = 48\nhorizon = 12\n",
        // Each series is scaled on its own: no window normalisation to choose.
        "auto_norm = false",
    ] {
        assert!(config.contains(want), "{want}: {config}");
    }
}

/// An own single-series file chooses its window normalisation on the validation split unless a
/// flag names one; an experiment file keeps its own; `--norm` refuses an unknown value and a
/// second flag that disagrees.
#[test]
fn an_own_file_chooses_its_normalisation_unless_told() {
    let dir = tmp("norm");
    let mut csv = String::from("month,sales\n");
    for t in 0..120 {
        csv += &format!("{}-{:02},{}\n", 2010 + t / 12, t % 12 + 1, 100 + t + t % 12);
    }
    std::fs::write(dir.join("m.csv"), csv).unwrap();
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec!["train", "--data", "m.csv", "--target", "sales"];
        args.push("--print-config");
        args.extend_from_slice(extra);
        args
    };
    let resolved = |extra: &[&'static str]| -> String { common::gatecast_ok(&with(extra), &dir) };
    let norm = |config: &str| -> (bool, bool, bool) {
        let e = Experiment::parse_toml(config, "printed").unwrap();
        (e.model.auto_norm, e.model.last_value_norm, e.model.revin)
    };
    assert_eq!(norm(&resolved(&[])), (true, false, false));
    assert_eq!(norm(&resolved(&["--norm", "none"])), (false, false, false));
    assert_eq!(norm(&resolved(&["--norm", "revin"])), (false, false, true));
    assert_eq!(norm(&resolved(&["--revin"])), (false, false, true));
    assert_eq!(
        norm(&resolved(&["--last-value-norm"])),
        (false, true, false)
    );
    assert_eq!(
        norm(&resolved(&["--norm", "last-value", "--last-value-norm"])),
        (false, true, false)
    );
    // The segment model on an own file: no calendar features, and segments that divide the
    // look-back (or those --segment gives, which validation then judges).
    let segrnn = |extra: &[&'static str]| -> Experiment {
        let mut args = vec!["--cell", "segrnn"];
        args.extend_from_slice(extra);
        Experiment::parse_toml(&resolved(&args), "printed").unwrap()
    };
    let e = segrnn(&[]);
    assert!(e.data.calendar.is_empty());
    assert_eq!(e.window.lookback % e.model.segment, 0, "{e:?}");
    assert!(
        e.window.lookback % 24 != 0,
        "the default segment would not divide it"
    );
    assert_eq!(
        segrnn(&["--segment", "3", "--lookback", "36"])
            .model
            .segment,
        3
    );
    assert_eq!(
        segrnn(&["--segment-cell", "slstm"]).model.segment_cell,
        gatecast_model::forecast::SegCell::SLstm
    );
    let split = Experiment::parse_toml(&resolved(&["--split-fractions", "0.6,0.2,0.2"]), "p")
        .unwrap()
        .data
        .split;
    assert_eq!(split, [0.6, 0.2, 0.2]);
    // An experiment file says what it wants; --norm auto asks for the choice there too.
    std::fs::write(dir.join("e.toml"), "[data]\ntime_column = \"month\"\n").unwrap();
    let file = ["--config", "e.toml"];
    assert_eq!(norm(&resolved(&file)), (false, false, false));
    assert_eq!(
        norm(&resolved(&["--config", "e.toml", "--norm", "auto"])),
        (true, false, false)
    );
    for (extra, want) in [
        (
            &["--norm", "robust"][..],
            "--norm robust: expected none, last-value, revin or auto",
        ),
        (
            &["--norm", "none", "--revin"][..],
            "--norm none and --revin: choose one window normalisation",
        ),
        (
            &["--norm", "auto", "--last-value-norm"][..],
            "--norm auto and --last-value-norm: choose one window normalisation",
        ),
        (
            &["--split-fractions", "0.8,0.2"][..],
            "--split-fractions 0.8,0.2: three fractions",
        ),
        (
            &["--cell", "segrnn", "--segment-cell", "mlstm"][..],
            "model.segment_cell = 'mlstm': expected gru or slstm",
        ),
        (
            &["--segment-cell", "slstm"][..],
            "only model.cell = \"segrnn\" has a segment cell",
        ),
    ] {
        let args = with(extra);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatecast"))
            .args(&args)
            .current_dir(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "{args:?}: {err}"
        );
    }
}

/// An own weekly file: M4's 13 weeks ahead, from a year back (three horizons would be 39
/// weeks, less than the season the seasonal naive repeats), so the table has its row.
#[test]
fn an_own_weekly_file_looks_back_a_season() {
    let _guard = common::trains();
    let dir = tmp("weekly");
    let first = chrono::NaiveDate::from_ymd_opt(2015, 1, 3).unwrap();
    let mut csv = String::from("week,orders\n");
    for w in 0..300 {
        let day = first + chrono::TimeDelta::weeks(w);
        csv += &format!("{day},{}\n", 50 + (w * 7) % 52);
    }
    std::fs::write(dir.join("w.csv"), csv).unwrap();
    let (out, _, config) = train_own(&dir, "w.csv", "week", "orders", &["--epochs", "1"]);
    assert!(out.contains("| seasonal_naive(52) |"), "{out}");
    assert!(config.contains("lookback = 52\nhorizon = 13\n"), "{config}");
}

/// An own file needs no `--time-column` when one column reads as times: here the second, after
/// a column of four-digit numbers that are not years, and the run says which it took.
#[test]
fn an_own_files_time_column_is_found() {
    let _guard = common::trains();
    let dir = tmp("timecol");
    let mut csv = String::from("sales,month\n");
    for t in 0..120 {
        csv += &format!(
            "{},{}-{:02}\n",
            1000 + (t * 37) % 500,
            2010 + t / 12,
            t % 12 + 1
        );
    }
    std::fs::write(dir.join("s.csv"), csv).unwrap();
    let args = [
        "train", "--data", "s.csv", "--target", "sales", "--epochs", "1", "--out", "run", "--quiet",
    ];
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatecast"))
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("s.csv: time column 'month'"), "{err}");
    let config = std::fs::read_to_string(dir.join("run/config.toml")).unwrap();
    assert!(config.contains("time_column = \"month\""), "{config}");
}

/// An own file without `--target`: its one column of numbers besides the time column is
/// forecast, with a note; where several are left the error lists them, and columns other flags
/// name (`--covariates`) are not candidates.
#[test]
fn an_own_files_target_is_found() {
    let dir = tmp("target");
    let mut csv = String::from("day,note,sales,price\n");
    for d in 0..60 {
        let day = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::TimeDelta::days(d);
        csv += &format!("{day},x{d},{},{}\n", 100 + d % 7, 5 + d % 2);
    }
    std::fs::write(dir.join("two.csv"), &csv).unwrap();
    let one: String = csv
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect();
    std::fs::write(dir.join("one.csv"), one).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["train", "--print-config"];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_gatecast"))
            .args(&args)
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let targets = |out: &std::process::Output| {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Experiment::parse_toml(&text, "printed")
            .unwrap()
            .data
            .targets
    };
    let out = run(&["--data", "one.csv"]);
    assert_eq!(targets(&out), ["sales"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("forecasting 'sales', the one column of numbers"),
        "{err}"
    );

    let out = run(&["--data", "two.csv"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("two.csv: which column to forecast? name it with --target, or several comma-separated (columns of numbers: sales, price;"),
        "{err}"
    );
    assert_eq!(
        targets(&run(&["--data", "two.csv", "--covariates", "price"])),
        ["sales"]
    );
    assert_eq!(
        targets(&run(&["--data", "two.csv", "--target", "price"])),
        ["price"]
    );
    assert_eq!(
        targets(&run(&["--data", "two.csv", "--target", "price,sales"])),
        ["price", "sales"]
    );
}

/// An experiment file that leaves `data.season` out gets its sampling step's period (7 for a
/// daily file), as an own file does, not the bundled hourly file's 24.
#[test]
fn a_config_without_a_season_infers_it() {
    let _guard = common::trains();
    let dir = tmp("config_season");
    let mut csv = String::from("day,sales\n");
    for d in 0..300 {
        let day = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::TimeDelta::days(d);
        csv += &format!("{day},{}\n", 100 + 3 * (d % 7) + d % 5);
    }
    std::fs::write(dir.join("d.csv"), csv).unwrap();
    std::fs::write(
        dir.join("e.toml"),
        "[data]\npath = \"d.csv\"\ntime_column = \"day\"\ntargets = [\"sales\"]\ncovariates = []\ncalendar = []\n[window]\nlookback = 28\nhorizon = 7\n[train]\nepochs = 1\n",
    )
    .unwrap();
    let out = common::gatecast_ok(
        &["train", "--config", "e.toml", "--quiet", "--out", "run"],
        &dir,
    );
    assert!(out.contains("| seasonal_naive(7) |"), "{out}");
}
