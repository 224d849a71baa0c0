//! Windows: counts and contents at the edges, next to gaps, across many series; batches.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use chrono::{NaiveDate, TimeDelta};
use gatecast_data::*;

/// Rows 0..n with columns x = row, y = 100 + row.
fn ramp(n: usize) -> Series {
    let t0 = NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let ts = (0..n).map(|i| t0 + TimeDelta::hours(i as i64)).collect();
    let values = (0..n).flat_map(|i| [i as f32, 100.0 + i as f32]).collect();
    Series::new("ramp", ts, vec!["x".into(), "y".into()], values).unwrap()
}

fn config(l: usize, h: usize) -> WindowConfig {
    WindowConfig::new(l, h, vec!["x".into(), "y".into()], vec!["y".into()])
}

#[test]
fn counts_and_edge_windows() {
    let s = Arc::new(ramp(20));
    let d = WindowDataset::new(s.clone(), 0..20, config(4, 3)).unwrap();
    assert_eq!(d.len(), 20 - 4 - 3 + 1);
    let first = d.get(0).unwrap();
    assert_eq!(
        first.inputs,
        vec![0.0, 100.0, 1.0, 101.0, 2.0, 102.0, 3.0, 103.0]
    );
    assert_eq!(first.targets, vec![104.0, 105.0, 106.0]);
    let last = d.get(d.len() - 1).unwrap();
    assert_eq!(last.start, 13);
    assert_eq!(
        last.targets,
        vec![117.0, 118.0, 119.0],
        "last window ends on the last row"
    );
    assert!(d.get(d.len()).is_err());

    let mut strided = config(4, 3);
    strided.stride = 5;
    let d = WindowDataset::new(s.clone(), 0..20, strided).unwrap();
    assert_eq!(d.len(), (20 - 7) / 5 + 1);
    assert_eq!(d.get(2).unwrap().start, 10);

    // A row range: windows stay inside it.
    let d = WindowDataset::new(s, 5..12, config(4, 3)).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d.get(0).unwrap().start, 5);
}

#[test]
fn no_window_crosses_a_gap() {
    let mut s = ramp(20);
    s.segments = vec![0..8, 8..9, 9..20];
    let d = WindowDataset::new(Arc::new(s), 0..20, config(4, 3)).unwrap();
    // 0..8: 2 windows (starts 0, 1); 8..9: none; 9..20: 5 (starts 9..=13).
    assert_eq!(d.len(), 7);
    let starts: Vec<usize> = (0..d.len()).map(|i| d.get(i).unwrap().start).collect();
    assert_eq!(starts, vec![0, 1, 9, 10, 11, 12, 13]);
}

#[test]
fn many_series_and_future_covariates() {
    let mut a = ramp(10);
    add_calendar(&mut a, &[Calendar::HourOfDay]);
    let b = {
        let mut b = ramp(8);
        add_calendar(&mut b, &[Calendar::HourOfDay]);
        b
    };
    let mut cfg = config(3, 2);
    cfg.future = vec!["hour_sin".into(), "hour_cos".into()];
    let d =
        WindowDataset::many(vec![(Arc::new(a), 0..10), (Arc::new(b), 0..8)], cfg.clone()).unwrap();
    assert_eq!(d.len(), 6 + 4);
    let w = d.get(6).unwrap();
    assert_eq!((w.series, w.start), (1, 0));
    assert_eq!(w.future.len(), 2 * 2);
    // Hour 3 (first horizon step) is a quarter of a 12 h half-turn: sin(2π·3/24) = 1/√2.
    assert!((w.future[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);

    let batcher = ForecastBatcher::new(&cfg);
    let items = vec![d.get(0).unwrap(), d.get(9).unwrap()];
    let batch = batcher.batch(items, &Device::flex());
    assert_eq!(batch.inputs.dims(), [2, 3, 2]);
    assert_eq!(batch.targets.dims(), [2, 2, 1]);
    assert_eq!(batch.future.as_ref().unwrap().dims(), [2, 2, 2]);
    let targets = batch.targets.into_data().try_into_vec_as::<f32>().unwrap();
    assert_eq!(targets, vec![103.0, 104.0, 106.0, 107.0]);
}

#[test]
fn bad_window_options_are_errors() {
    let s = Arc::new(ramp(10));
    let e = WindowDataset::new(s.clone(), 0..10, config(0, 3))
        .unwrap_err()
        .to_string();
    assert!(e.contains("lookback"), "{e}");
    let mut c = config(3, 3);
    c.targets = vec!["nope".into()];
    let e = WindowDataset::new(s.clone(), 0..10, c)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'nope'") && e.contains("targets"), "{e}");
    // Too short for one window: an empty dataset, not a panic.
    assert_eq!(WindowDataset::new(s, 0..10, config(8, 3)).unwrap().len(), 0);
}

#[test]
fn scaler_from_train_split_only() {
    let s = ramp(100);
    let split = TimeSplit::by_ratios(100, (0.7, 0.1, 0.2), 10).unwrap();
    let sc = Scaler::fit(ScalerKind::Standard, &s, split.train.clone());
    // x over rows 0..70: mean 34.5.
    assert!((sc.offset[0] - 34.5).abs() < 1e-9);
    let scaled = Arc::new(sc.transform(&s));
    let test = WindowDataset::new(scaled, split.test.clone(), config(10, 5)).unwrap();
    assert_eq!(test.len(), split.test.len() - 15 + 1);
    let first = test.get(0).unwrap();
    let mut y = first.targets.clone();
    sc.inverse(1, &mut y);
    assert_eq!(
        y[0].round(),
        180.0,
        "first test target is row 80, just after the boundary"
    );
}

#[test]
fn variable_length_batches() {
    use gatecast_data::sequence::PaddingBatcher;
    use gatecast_data::synthetic::adding_problem;
    let mut samples = adding_problem(2, 6, 1);
    samples.extend(adding_problem(1, 4, 2));
    let batch = PaddingBatcher.batch(samples.clone(), &Device::flex());
    assert_eq!(batch.lengths, vec![6, 6, 4]);
    assert_eq!(batch.inputs.dims(), [3, 6, 2]);
    let x = batch.inputs.into_data().try_into_vec_as::<f32>().unwrap();
    assert_eq!(&x[2 * 12..2 * 12 + 8], &samples[2].inputs[..]);
    assert!(x[2 * 12 + 8..].iter().all(|v| *v == 0.0), "zero padding");
}

/// Each window carries the absolute step number of its first look-back row: hours since
/// 1970-01-01T00:00 for hourly data, so `mod 24` is that row's hour of day, whichever file or
/// split the window comes from; steps before 1970 count down, and a series without a sampling
/// step has none. The batch carries every window's step.
#[test]
fn windows_carry_the_absolute_step_of_their_first_row() {
    let s = Arc::new(ramp(40)); // hourly from 2024-01-01T00:00
    let d = WindowDataset::new(s.clone(), 5..40, config(4, 3)).unwrap();
    let hours_to_2024 = NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp()
        / 3600;
    for i in [0, 7, 20] {
        let w = d.get(i).unwrap();
        let step = w.step.unwrap();
        assert_eq!(step, hours_to_2024 + w.start as i64, "window {i}");
        assert_eq!(step.rem_euclid(24), (w.start % 24) as i64, "hour of day");
    }
    let items: Vec<_> = (0..3).map(|i| d.get(i).unwrap()).collect();
    let steps: Vec<_> = items.iter().map(|w| w.step.unwrap()).collect();
    let batch = ForecastBatcher::new(d.config()).batch(items, &Device::flex());
    assert_eq!(batch.steps, Some(steps));

    // Quarter-hourly, from 1969-12-31T23:00: four steps before the epoch.
    let t = NaiveDate::from_ymd_opt(1969, 12, 31)
        .unwrap()
        .and_hms_opt(23, 0, 0)
        .unwrap();
    assert_eq!(
        Frequency::Fixed(TimeDelta::minutes(15)).step_number(t),
        Some(-4)
    );
    assert_eq!(Frequency::Fixed(TimeDelta::zero()).step_number(t), None);
    let one = Series::new("one", vec![t], vec!["x".into()], vec![1.0]).unwrap();
    assert_eq!(one.step_number(0), None);
}
