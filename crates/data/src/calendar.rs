//! Calendar covariates from timestamps, as cyclic sin/cos pairs: known in advance, so usable as
//! known-future covariates.

use chrono::{Datelike, NaiveDateTime, Timelike};
use serde::{Deserialize, Serialize};

use crate::series::Series;

/// A calendar feature; each becomes two columns, `<name>_sin` and `<name>_cos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calendar {
    /// Hour of day, period 24.
    HourOfDay,
    /// Day of week (Monday = 0), period 7.
    DayOfWeek,
    /// Month of year (January = 0), period 12.
    MonthOfYear,
}

impl Calendar {
    fn name(self) -> &'static str {
        match self {
            Calendar::HourOfDay => "hour",
            Calendar::DayOfWeek => "weekday",
            Calendar::MonthOfYear => "month",
        }
    }

    fn phase(self, t: &NaiveDateTime) -> f64 {
        let (value, period) = match self {
            Calendar::HourOfDay => (t.hour() as f64 + t.minute() as f64 / 60.0, 24.0),
            Calendar::DayOfWeek => (t.weekday().num_days_from_monday() as f64, 7.0),
            Calendar::MonthOfYear => (t.month0() as f64, 12.0),
        };
        2.0 * std::f64::consts::PI * value / period
    }
}

/// The column names and `[rows, 2 · features]` row-major values of `features` at `timestamps`.
pub fn calendar_covariates(
    timestamps: &[NaiveDateTime],
    features: &[Calendar],
) -> (Vec<String>, Vec<f32>) {
    let names = features
        .iter()
        .flat_map(|f| [format!("{}_sin", f.name()), format!("{}_cos", f.name())])
        .collect();
    let mut values = Vec::with_capacity(timestamps.len() * features.len() * 2);
    for t in timestamps {
        for f in features {
            let p = f.phase(t);
            values.push(p.sin() as f32);
            values.push(p.cos() as f32);
        }
    }
    (names, values)
}

/// Appends the calendar columns to `series` and returns their names.
pub fn add_calendar(series: &mut Series, features: &[Calendar]) -> Vec<String> {
    let (names, values) = calendar_covariates(&series.timestamps, features);
    series.append_columns(names.clone(), &values);
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn by_hand() {
        // 2024-01-01 was a Monday.
        let t = NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_opt(6, 0, 0)
            .unwrap();
        let (names, v) = calendar_covariates(
            &[t],
            &[
                Calendar::HourOfDay,
                Calendar::DayOfWeek,
                Calendar::MonthOfYear,
            ],
        );
        assert_eq!(
            names,
            [
                "hour_sin",
                "hour_cos",
                "weekday_sin",
                "weekday_cos",
                "month_sin",
                "month_cos"
            ]
        );
        // 6 h = a quarter turn; Monday and January = phase 0.
        let want = [1.0, 0.0, 0.0, 1.0, 0.0, 1.0];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{v:?}");
        }
    }
}
