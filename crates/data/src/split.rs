//! Train / validation / test splits by time.

use std::ops::Range;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::series::Series;

/// Row ranges of the three splits. Validation and test start `lookback` rows before their first
/// target row, so their first window's look-back reads the rows just before the boundary (as in
/// the LTSF code of Informer, Autoformer, DLinear and SegRNN); targets never cross a boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSplit {
    /// Rows windows of the training split are built from.
    pub train: Range<usize>,
    /// Rows of the validation split, look-back included.
    pub valid: Range<usize>,
    /// Rows of the test split, look-back included.
    pub test: Range<usize>,
}

impl TimeSplit {
    /// Splits `rows` by ratios (train, valid, test) summing to 1, the LTSF way: `train =
    /// floor(rows · r_train)`, `test = floor(rows · r_test)`, validation the rest.
    pub fn by_ratios(
        rows: usize,
        ratios: (f64, f64, f64),
        lookback: usize,
    ) -> Result<Self, DataError> {
        let (a, b, c) = ratios;
        if [a, b, c].iter().any(|r| !(0.0..=1.0).contains(r)) || ((a + b + c) - 1.0).abs() > 1e-9 {
            return Err(DataError::InvalidOption {
                option: "split ratios".into(),
                message: format!("{a}/{b}/{c}: each in [0, 1], summing to 1 (e.g. 0.7/0.1/0.2)"),
            });
        }
        let train = (rows as f64 * a) as usize;
        let test = (rows as f64 * c) as usize;
        let valid = rows - train - test;
        Self::by_rows(rows, train, train + valid, rows, lookback)
    }

    /// The LTSF protocol for the ETT hourly files: train `[0, 8640)`, validation
    /// `[8640 − L, 11520)`, test `[11520 − L, 14400)`; rows from 14400 on are never used.
    pub fn ett_hourly(rows: usize, lookback: usize) -> Result<Self, DataError> {
        if rows < 14_400 {
            return Err(DataError::InvalidOption {
                option: "split".into(),
                message: format!("the ETT hourly protocol needs 14400 rows, the series has {rows}"),
            });
        }
        Self::by_rows(rows, 8_640, 11_520, 14_400, lookback)
    }

    /// Validation starts at the first row at or after `valid_start`, test at `test_start`.
    pub fn by_dates(
        series: &Series,
        valid_start: NaiveDateTime,
        test_start: NaiveDateTime,
        lookback: usize,
    ) -> Result<Self, DataError> {
        if test_start <= valid_start {
            return Err(DataError::InvalidOption {
                option: "split dates".into(),
                message: format!(
                    "test start {test_start} must come after validation start {valid_start}"
                ),
            });
        }
        let v = series.row_at_or_after(valid_start);
        let t = series.row_at_or_after(test_start);
        Self::by_rows(series.rows(), v, t, series.rows(), lookback)
    }

    /// Train `[0, valid_start)`, validation `[valid_start − L, test_start)`, test
    /// `[test_start − L, end)`.
    pub fn by_rows(
        rows: usize,
        valid_start: usize,
        test_start: usize,
        end: usize,
        lookback: usize,
    ) -> Result<Self, DataError> {
        if !(lookback <= valid_start && valid_start < test_start && test_start < end && end <= rows)
        {
            return Err(DataError::InvalidOption {
                option: "split".into(),
                message: format!(
                    "train [0, {valid_start}), validation from {valid_start}, test from {test_start} to {end} of {rows} rows with look-back {lookback}: each split needs rows, and the look-back must fit in the training rows"
                ),
            });
        }
        Ok(Self {
            train: 0..valid_start,
            valid: valid_start - lookback..test_start,
            test: test_start - lookback..end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ett_boundaries_are_exact() {
        let s = TimeSplit::ett_hourly(17_420, 336).unwrap();
        assert_eq!(s.train, 0..8640);
        assert_eq!(s.valid, 8640 - 336..11_520);
        assert_eq!(s.test, 11_520 - 336..14_400);
        assert!(TimeSplit::ett_hourly(14_399, 96).is_err());
    }

    #[test]
    fn by_dates() {
        use chrono::{NaiveDate, TimeDelta};
        let t0 = NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let ts: Vec<_> = (0..30).map(|d| t0 + TimeDelta::days(d)).collect();
        let s = Series::new("s", ts, vec!["x".into()], vec![0.0; 30]).unwrap();
        let d = |day| {
            NaiveDate::from_ymd_opt(2024, 1, day)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
        };
        let split = TimeSplit::by_dates(&s, d(21), d(26), 7).unwrap();
        assert_eq!(split.train, 0..20);
        assert_eq!(split.valid, 13..25);
        assert_eq!(split.test, 18..30);
        assert!(TimeSplit::by_dates(&s, d(26), d(21), 7).is_err());
    }

    #[test]
    fn ratios_follow_ltsf_rounding() {
        // 1000 rows 0.7/0.1/0.2: train 700, test 200, valid 100.
        let s = TimeSplit::by_ratios(1000, (0.7, 0.1, 0.2), 24).unwrap();
        assert_eq!(s.train, 0..700);
        assert_eq!(s.valid, 676..800);
        assert_eq!(s.test, 776..1000);
        let err = TimeSplit::by_ratios(1000, (0.7, 0.2, 0.2), 24).unwrap_err();
        assert!(err.to_string().contains("summing to 1"));
        assert!(TimeSplit::by_ratios(10, (0.7, 0.1, 0.2), 24).is_err());
    }
}
