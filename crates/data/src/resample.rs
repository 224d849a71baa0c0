//! Aggregation to a coarser frequency: transactions → daily totals, hourly → daily means.

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::error::DataError;
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

/// Aggregates `series` into periods of `every` (aligned to the Unix epoch, so `1d` periods start
/// at midnight), from the first to the last period that holds a row.
pub fn resample(series: &Series, every: TimeDelta, how: Aggregation) -> Result<Series, DataError> {
    let secs = every.num_seconds();
    if secs <= 0 {
        return Err(DataError::InvalidOption {
            option: "resample".into(),
            message: "the period must be positive".into(),
        });
    }
    let bucket = |t: &NaiveDateTime| t.and_utc().timestamp().div_euclid(secs);
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
        let time = period_start(b * secs);
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

fn period_start(secs: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("period start within chrono's range")
        .naive_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

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
}
