//! The bundled datasets load with sensible policies, and ETTh1 (when present beside the
//! checkout) splits exactly as the LTSF protocol says.

use std::path::PathBuf;
use std::sync::Arc;

use burn::data::dataset::Dataset;
use chrono::TimeDelta;
use gatecast_data::*;

/// This package's directory. `cargo test` sets `CARGO_MANIFEST_DIR` when it runs a test, naming
/// the checkout under test even when a shared target directory reuses a binary compiled in
/// another checkout, whose path `env!` would have baked in.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn repo() -> PathBuf {
    manifest_dir().join("../..")
}

#[test]
fn traffic_loads_with_duplicate_and_gap_policies() {
    let path = repo().join("datasets/hourly_traffic_volume.csv");
    let mut o = CsvOptions::new("date_time");
    o.columns = Some(vec![
        "traffic_volume".into(),
        "temp".into(),
        "clouds_all".into(),
    ]);
    // The safe defaults refuse it, naming the first duplicate.
    let e = load_csv(&path, &o).unwrap_err().to_string();
    assert!(
        e.contains("hourly_traffic_volume.csv:181: timestamp 2012-10-10 07:00:00 repeats"),
        "{e}"
    );
    o.duplicates = DuplicatePolicy::First;
    let e = load_csv(&path, &o).unwrap_err().to_string();
    assert!(e.contains("gap of"), "{e}");
    o.gaps = GapPolicy::Keep;
    let s = load_csv(&path, &o).unwrap();
    assert_eq!(s.rows(), 48_204 - 7_629, "one row per distinct hour");
    assert_eq!(s.frequency, Some(TimeDelta::hours(1).into()));
    assert_eq!(
        s.segments.len(),
        2_588 + 1,
        "one segment between each pair of gaps"
    );
    o.gaps = GapPolicy::Interpolate;
    let filled = load_csv(&path, &o).unwrap();
    assert_eq!(
        filled.rows(),
        48_204 - 7_629 + 11_976,
        "every missing hour filled"
    );
    // Daily totals, with calendar covariates for the model.
    let mut daily = resample(&filled, TimeDelta::days(1), Aggregation::Sum).unwrap();
    let names = add_calendar(&mut daily, &[Calendar::DayOfWeek, Calendar::MonthOfYear]);
    assert_eq!(names.len(), 4);
    assert!(daily.rows() > 2_000);
}

#[test]
fn retail_daily_loads_with_closed_days_as_gaps() {
    let path = repo().join("datasets/online_retail_daily.csv");
    let mut o = CsvOptions::new("date");
    let e = load_csv(&path, &o).unwrap_err().to_string();
    assert!(e.contains("gap of") && e.contains("1d"), "{e}");
    o.gaps = GapPolicy::Keep;
    let s = load_csv(&path, &o).unwrap();
    assert_eq!(s.rows(), 604);
    assert_eq!(s.columns, ["orders", "units", "revenue", "customers"]);
    assert_eq!(s.segments.len(), 109);
    // The shop closes every Saturday, so kept gaps leave no 3-week stretch to window over.
    let config = WindowConfig::new(14, 7, vec!["revenue".into()], vec!["revenue".into()]);
    let d = WindowDataset::new(Arc::new(s.clone()), 0..604, config.clone()).unwrap();
    assert_eq!(d.len(), 0);
    // A closed day sold nothing: daily sums turn the gaps into zero-sale days.
    let daily = resample(&s, TimeDelta::days(1), Aggregation::Sum).unwrap();
    assert_eq!(daily.rows(), 739);
    assert_eq!(daily.segments, vec![0..739]);
    let revenue = daily.column(2);
    assert_eq!(revenue.iter().filter(|v| **v == 0.0).count(), 739 - 604);
    let d = WindowDataset::new(Arc::new(daily), 0..739, config).unwrap();
    assert_eq!(d.len(), 739 - 21 + 1);
}

#[test]
fn etth1_ltsf_protocol() {
    let path = repo().join("../shared/datasets/ETT/ETTh1.csv");
    if !path.exists() {
        eprintln!("skipped: {} is absent", path.display());
        return;
    }
    let s = load_csv(&path, &CsvOptions::new("date")).unwrap();
    assert_eq!((s.rows(), s.width()), (17_420, 7));
    let l = 336;
    let split = TimeSplit::ett_hourly(s.rows(), l).unwrap();
    assert_eq!(
        s.timestamps[split.train.end].to_string(),
        "2017-06-26 00:00:00"
    );
    let sc = Scaler::fit(ScalerKind::Standard, &s, split.train.clone());
    // The mean of OT over train rows only, computed here by hand.
    let ot = s.column_index("OT", "test").unwrap();
    let mean = s.column(ot)[..8640].iter().map(|v| *v as f64).sum::<f64>() / 8640.0;
    assert!((sc.offset[ot] - mean).abs() < 1e-9);
    let all = s.column(ot).iter().map(|v| *v as f64).sum::<f64>() / 17_420.0;
    assert!((sc.offset[ot] - all).abs() > 0.1, "not fitted on all rows");
    let scaled = Arc::new(sc.transform(&s));
    let cols: Vec<String> = s.columns.clone();
    for h in [24usize, 96, 720] {
        let test = WindowDataset::new(
            scaled.clone(),
            split.test.clone(),
            WindowConfig::new(l, h, cols.clone(), cols.clone()),
        )
        .unwrap();
        assert_eq!(test.len(), 2880 - h + 1, "every test window, H={h}");
        let first = test.get(0).unwrap();
        assert_eq!(
            first.start + l,
            11_520,
            "the first test target is row 11520"
        );
    }
}

/// The weekly CO2 record reads with its date format, and its monthly means are calendar months
/// from March 1958 to December 2001, each the mean of its weeks (the 59 empty weeks
/// interpolated first).
#[test]
fn co2_averages_into_calendar_months() {
    let path = repo().join("datasets/mauna_loa_co2_weekly.csv");
    let mut o = CsvOptions::new("date");
    o.time_format = Some("%Y%m%d".into());
    let e = load_csv(&path, &o).unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
    o.missing = MissingPolicy::Interpolate;
    o.irregular = true;
    let (weekly, repairs) = load_csv_with_repairs(&path, &o).unwrap();
    assert_eq!(weekly.rows(), 2284);
    assert_eq!(repairs.filled, vec![59]);
    let start = Frequency::Months {
        months: 1,
        end: false,
    };
    let monthly = resample(&weekly, start, Aggregation::Mean).unwrap();
    assert_eq!(monthly.rows(), 526);
    assert_eq!(monthly.frequency, Some(start));
    assert_eq!(monthly.segments, vec![0..526]);
    let day = |y, m| {
        chrono::NaiveDate::from_ymd_opt(y, m, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
    };
    assert_eq!(monthly.timestamps[0], day(1958, 3));
    assert_eq!(monthly.timestamps[525], day(2001, 12));
    // March 1958: the weeks of the 29th alone; December 2001: its five weeks.
    assert_eq!(monthly.values[0], weekly.values[0]);
    let december: Vec<f32> = weekly.values[2279..].to_vec();
    let mean = december.iter().sum::<f32>() / 5.0;
    assert!((monthly.values[525] - mean).abs() < 1e-3, "{december:?}");
}
