//! Aggregation to a coarser frequency: transactions → daily totals, hourly → daily means.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::frequency::Frequency;
use crate::series::Series;

/// How rows falling in one period are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Sum; a period with no rows sums to 0 (no transactions that day) and is kept.
    Sum,
    /// Mean; a period with no rows has no mean and becomes a kept gap (a segment boundary).
    Mean,
}

/// Aggregates `series` into periods of `every`, from the first to the last period that holds a
/// row. Fixed periods are aligned to the Unix epoch, so `1d` periods start at midnight; monthly
/// periods to January 1970, so quarters are calendar quarters and `12 months` calendar years,
/// each labelled by its first day (`MS`), or by its last day for a month-end step (`ME`, as
/// pandas labels them), at midnight.
pub fn resample(
    series: &Series,
    every: impl Into<Frequency>,
    how: Aggregation,
) -> Result<Series, DataError> {
    let every = every.into();
    if let Frequency::Fixed(step) = every {
        if step.num_seconds() <= 0 || step.subsec_nanos() != 0 {
            return Err(DataError::InvalidOption {
                option: "resample".into(),
                message: format!("the period ({every}) must be a whole number of seconds"),
            });
        }
    }
    let bucket = |t: &NaiveDateTime| period_of(every, *t);
    let label = |b: i64| period_label(every, b);
    let w = series.width();
    let mut sums: BTreeMap<i64, (Vec<f64>, usize)> = BTreeMap::new();
    for (r, t) in series.timestamps.iter().enumerate() {
        let e = sums.entry(bucket(t)).or_insert_with(|| (vec![0.0; w], 0));
        for (k, v) in series.row(r).iter().enumerate() {
            e.0[k] += *v as f64;
        }
        e.1 += 1;
    }
    let (Some(&first), Some(&last)) = (sums.keys().next(), sums.keys().next_back()) else {
        return Series::new(series.name.clone(), vec![], series.columns.clone(), vec![]);
    };
    let mut timestamps = Vec::new();
    let mut values = Vec::new();
    let mut segments = Vec::new();
    let mut seg_start = 0;
    for b in first..=last {
        let time = label(b);
        match (sums.get(&b), how) {
            (Some((s, n)), Aggregation::Mean) => {
                values.extend(s.iter().map(|v| (v / *n as f64) as f32));
            }
            (Some((s, _)), Aggregation::Sum) => values.extend(s.iter().map(|v| *v as f32)),
            (None, Aggregation::Sum) => values.extend(std::iter::repeat_n(0.0, w)),
            (None, Aggregation::Mean) => {
                if timestamps.len() > seg_start {
                    segments.push(seg_start..timestamps.len());
                }
                seg_start = timestamps.len();
                continue;
            }
        }
        timestamps.push(time);
    }
    segments.push(seg_start..timestamps.len());
    Ok(Series {
        name: series.name.clone(),
        timestamps,
        columns: series.columns.clone(),
        values,
        segments,
        frequency: Some(every),
    })
}

/// The period holding `t`: whole periods of `every` since the Unix epoch (since January 1970
/// for monthly periods), rounded down.
fn period_of(every: Frequency, t: NaiveDateTime) -> i64 {
    match every {
        Frequency::Fixed(step) => t.and_utc().timestamp().div_euclid(step.num_seconds()),
        Frequency::Months { months, end } => Frequency::Months { months: 1, end }
            .step_number(t)
            .expect("a monthly step number")
            .div_euclid(i64::from(months)),
    }
}

/// Period `b`'s label: its start, or for month-end periods its last day, at midnight.
fn period_label(every: Frequency, b: i64) -> NaiveDateTime {
    match every {
        Frequency::Fixed(step) => period_start(b * step.num_seconds()),
        Frequency::Months { months, end } => {
            let n = i64::from(months);
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("the epoch");
            let month = if end { b * n + n - 1 } else { b * n };
            Frequency::Months { months: 1, end }.add(epoch, month)
        }
    }
}

fn period_start(secs: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("period start within chrono's range")
        .naive_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn at(d: u32, h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2024, 3, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    }

    #[test]
    fn daily_sum_and_mean_by_hand() {
        // Day 1: 1 + 3; day 2: nothing; day 3: 5.
        let s = Series::new(
            "t",
            vec![at(1, 2), at(1, 20), at(3, 0)],
            vec!["x".into()],
            vec![1.0, 3.0, 5.0],
        )
        .unwrap();
        let sum = resample(&s, TimeDelta::days(1), Aggregation::Sum).unwrap();
        assert_eq!(sum.timestamps, vec![at(1, 0), at(2, 0), at(3, 0)]);
        assert_eq!(sum.values, vec![4.0, 0.0, 5.0]);
        assert_eq!(sum.segments, vec![0..3]);
        let mean = resample(&s, TimeDelta::days(1), Aggregation::Mean).unwrap();
        assert_eq!(mean.timestamps, vec![at(1, 0), at(3, 0)]);
        assert_eq!(mean.values, vec![2.0, 5.0]);
        assert_eq!(
            mean.segments,
            vec![0..1, 1..2],
            "the empty day is a kept gap"
        );
    }

    #[test]
    fn calendar_months_and_quarters() {
        let day = |m: u32, d: u32| {
            NaiveDate::from_ymd_opt(2023, m, d)
                .unwrap()
                .and_hms_opt(12, 0, 0)
                .unwrap()
        };
        let midnight = |y: i32, m: u32, d: u32| {
            NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
        };
        // January 1 + 2, February nothing, March 4; a quarter holds all three.
        let s = Series::new(
            "t",
            vec![day(1, 1), day(1, 31), day(3, 1)],
            vec!["x".into()],
            vec![1.0, 2.0, 4.0],
        )
        .unwrap();
        let starts = Frequency::Months {
            months: 1,
            end: false,
        };
        let m = resample(&s, starts, Aggregation::Sum).unwrap();
        assert_eq!(
            m.timestamps,
            vec![
                midnight(2023, 1, 1),
                midnight(2023, 2, 1),
                midnight(2023, 3, 1)
            ]
        );
        assert_eq!(m.values, vec![3.0, 0.0, 4.0]);
        assert_eq!(m.frequency, Some(starts));
        let ends = Frequency::Months {
            months: 1,
            end: true,
        };
        let m = resample(&s, ends, Aggregation::Mean).unwrap();
        assert_eq!(
            m.timestamps,
            vec![midnight(2023, 1, 31), midnight(2023, 3, 31)]
        );
        assert_eq!(m.values, vec![1.5, 4.0]);
        let quarter = Frequency::Months {
            months: 3,
            end: false,
        };
        let q = resample(&s, quarter, Aggregation::Sum).unwrap();
        assert_eq!(q.timestamps, vec![midnight(2023, 1, 1)]);
        assert_eq!(q.values, vec![7.0]);
        // Quarters are calendar quarters: November falls in the one from October.
        let late = Series::new("t", vec![day(11, 5)], vec!["x".into()], vec![1.0]).unwrap();
        let q = resample(&late, quarter, Aggregation::Sum).unwrap();
        assert_eq!(q.timestamps, vec![midnight(2023, 10, 1)]);
    }
}
