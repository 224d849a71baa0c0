//! A series' sampling step: a fixed duration (seconds to weeks), or whole calendar months
//! (months, quarters, years), which have no fixed duration.

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::error::DataError;

/// The step between consecutive rows of a regular series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Frequency {
    /// A fixed duration: `30s`, `15min`, `1h`, `1d`, `7d`.
    Fixed(TimeDelta),
    /// `months` calendar months (3 a quarter, 12 a year) at one time of day, on one day of the
    /// month (`2024-01-15`, `2024-02-15`: pandas' `MS` on the 1st), or on each month's last day
    /// when `end` (`2024-01-31`, `2024-02-29`: pandas' `ME`).
    Months {
        /// Calendar months per step, at least 1.
        months: u32,
        /// On each month's last day rather than one day of the month.
        end: bool,
    },
}

impl From<TimeDelta> for Frequency {
    fn from(step: TimeDelta) -> Self {
        Frequency::Fixed(step)
    }
}

impl Frequency {
    /// The timestamp `k` steps after `t` (before it for a negative `k`). A monthly step keeps
    /// the time of day and the day of the month, or moves to the month's last day when that
    /// day does not exist there (31 January + 1 month is 28 or 29 February) or when `end`.
    ///
    /// # Panics
    /// Past chrono's dates (year 262143); [`Frequency::checked_add`] says `None` instead.
    pub fn add(self, t: NaiveDateTime, k: i64) -> NaiveDateTime {
        self.checked_add(t, k)
            .expect("a timestamp within chrono's range")
    }

    /// [`Frequency::add`], or `None` past chrono's dates.
    pub fn checked_add(self, t: NaiveDateTime, k: i64) -> Option<NaiveDateTime> {
        match self {
            Frequency::Fixed(step) => {
                t.checked_add_signed(step.checked_mul(i32::try_from(k).ok()?)?)
            }
            Frequency::Months { months, end } => {
                let index = month_index(t).checked_add(k.checked_mul(i64::from(months))?)?;
                let (year, month) = (1970 + index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
                let year = i32::try_from(year).ok()?;
                let last = days_in_month(year, month);
                let day = if end { last } else { t.day().min(last) };
                Some(NaiveDate::from_ymd_opt(year, month, day)?.and_time(t.time()))
            }
        }
    }

    /// Whole steps from `a` to `b` (negative when `b` is earlier), or `None` when `b` is not on
    /// `a`'s grid: a fixed step that does not divide the difference, or for monthly steps
    /// another time of day, another day of the month (both months' last days, when `end`), or
    /// a number of months that is not a multiple of the step.
    pub fn steps_between(self, a: NaiveDateTime, b: NaiveDateTime) -> Option<i64> {
        match self {
            Frequency::Fixed(step) => {
                let (diff, step) = (nanos(b - a), nanos(step));
                (step > 0 && diff % step == 0).then(|| (diff / step) as i64)
            }
            Frequency::Months { months, end } => {
                let same_day = if end {
                    is_month_end(a) && is_month_end(b)
                } else {
                    a.day() == b.day()
                };
                let diff = month_index(b) - month_index(a);
                let months = i64::from(months.max(1));
                (a.time() == b.time() && same_day && diff % months == 0).then_some(diff / months)
            }
        }
    }

    /// Whole steps from 1970-01-01T00:00 to `t`, rounded down: an absolute step count, the same
    /// for the same time in any series of this frequency, from which a cycle's phase is read
    /// (`step mod 24` is the hour of day of hourly data, `step mod 12` the month of monthly
    /// data). `None` for a fixed step under one millisecond.
    pub fn step_number(self, t: NaiveDateTime) -> Option<i64> {
        match self {
            Frequency::Fixed(step) => {
                let step = step.num_milliseconds();
                (step > 0).then(|| t.and_utc().timestamp_millis().div_euclid(step))
            }
            Frequency::Months { months, .. } => {
                Some(month_index(t).div_euclid(i64::from(months.max(1))))
            }
        }
    }

    /// The calendar months of a step (`None` for a fixed step).
    pub fn months(self) -> Option<u32> {
        match self {
            Frequency::Months { months, .. } => Some(months),
            Frequency::Fixed(_) => None,
        }
    }

    /// The step's length, for monthly steps the mean Gregorian month's (30.436875 days) times
    /// their count: to compare and order steps, never to step with.
    pub fn nominal(self) -> TimeDelta {
        match self {
            Frequency::Fixed(step) => step,
            Frequency::Months { months, .. } => TimeDelta::seconds(2_629_746 * i64::from(months)),
        }
    }
}

impl fmt::Display for Frequency {
    /// `15min`, `1h`, `1d`, `90s`; `1 month`, `3 months`, `12 months (month ends)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Frequency::Fixed(step) => {
                let s = step.num_seconds();
                if s % 86_400 == 0 {
                    write!(f, "{}d", s / 86_400)
                } else if s % 3_600 == 0 {
                    write!(f, "{}h", s / 3_600)
                } else if s % 60 == 0 {
                    write!(f, "{}min", s / 60)
                } else {
                    write!(f, "{s}s")
                }
            }
            Frequency::Months { months, end } => {
                let plural = if months == 1 { "" } else { "s" };
                let end = if end { " (month ends)" } else { "" };
                write!(f, "{months} month{plural}{end}")
            }
        }
    }
}

impl TryFrom<String> for Frequency {
    type Error = DataError;
    fn try_from(text: String) -> Result<Self, DataError> {
        parse_frequency(&text)
    }
}

impl From<Frequency> for String {
    fn from(f: Frequency) -> String {
        f.to_string()
    }
}

/// Months since January 1970 (negative before).
fn month_index(t: NaiveDateTime) -> i64 {
    (i64::from(t.year()) - 1970) * 12 + i64::from(t.month0())
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    next.and_then(|d| d.pred_opt()).map_or(31, |d| d.day())
}

fn is_month_end(t: NaiveDateTime) -> bool {
    t.day() == days_in_month(t.year(), t.month())
}

fn nanos(d: TimeDelta) -> i128 {
    i128::from(d.num_seconds()) * 1_000_000_000 + i128::from(d.subsec_nanos())
}

/// The monthly step from `a` to a later `b` when both fall on one day of the month (or both on
/// their months' last days) at one time of day.
fn calendar_step(a: NaiveDateTime, b: NaiveDateTime) -> Option<Frequency> {
    let months = u32::try_from(month_index(b) - month_index(a)).ok()?;
    let end = is_month_end(a) && is_month_end(b);
    (months > 0 && a.time() == b.time() && (a.day() == b.day() || end))
        .then_some(Frequency::Months { months, end })
}

/// The most common step between consecutive timestamps (`None` with fewer than two rows),
/// monthly where rows fall on one day of the month, or on months' last days, at one time of
/// day; the shorter step on a tie.
pub fn infer_frequency(timestamps: &[NaiveDateTime]) -> Option<Frequency> {
    let mut counts: std::collections::HashMap<Frequency, usize> = Default::default();
    for w in timestamps.windows(2) {
        let d = w[1] - w[0];
        if d > TimeDelta::zero() {
            let step = calendar_step(w[0], w[1]).unwrap_or(Frequency::Fixed(d));
            *counts.entry(step).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| {
            a.1.cmp(&b.1)
                .then(b.0.nominal().cmp(&a.0.nominal()))
                .then(a.0.months().cmp(&b.0.months()))
        })
        .map(|(d, _)| d)
}

/// Writes a step as `15min`, `1h`, `1d`, `90s`, `1 month`, `3 months (month ends)`.
pub fn format_frequency(step: Frequency) -> String {
    step.to_string()
}

/// Parses a step: `30s`, `15min` (also `15m`, `15T`), `1h`, `2d`, `1w`; calendar months as
/// `1 month`, `3 months`, `1mo`, `quarter`, `year`, or pandas' aliases `MS`, `QS`, `YS` (on the
/// 1st) and `M`, `ME`, `Q`, `QE`, `Y`, `YE`, `A` (on months' last days). Capital `M` is months,
/// as in pandas; small `m` minutes. A unit without a number is one unit.
pub fn parse_frequency(text: &str) -> Result<Frequency, DataError> {
    let t = text.trim();
    // How `Display` writes a month-end step, so that every written step reads back.
    let (t, end_suffix) = match t.strip_suffix("(month ends)") {
        Some(rest) => (rest.trim_end(), true),
        None => (t, false),
    };
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let n: i64 = if num.is_empty() {
        1
    } else {
        num.parse().unwrap_or(0)
    };
    let months = |m: i64, end: bool| {
        u32::try_from(n * m)
            .ok()
            .filter(|_| n > 0)
            .map(|months| Frequency::Months { months, end })
    };
    let lower = unit.to_ascii_lowercase();
    let parsed = match unit {
        "MS" => months(1, false),
        "M" | "ME" => months(1, true),
        "QS" => months(3, false),
        "Q" | "QE" => months(3, true),
        "YS" | "AS" => months(12, false),
        "Y" | "YE" | "A" => months(12, true),
        _ => match lower.as_str() {
            "mo" | "month" | "months" => months(1, end_suffix),
            "quarter" | "quarters" => months(3, end_suffix),
            "y" | "year" | "years" => months(12, end_suffix),
            _ => {
                let unit_secs = match lower.as_str() {
                    "s" | "sec" => 1,
                    "min" | "t" | "m" => 60,
                    "h" | "hour" | "hours" => 3_600,
                    "d" | "day" | "days" => 86_400,
                    "w" | "week" | "weeks" => 604_800,
                    _ => 0,
                };
                (n > 0 && unit_secs > 0)
                    .then(|| Frequency::Fixed(TimeDelta::seconds(n * unit_secs)))
            }
        },
    };
    let parsed = parsed.filter(|f| !end_suffix || matches!(f, Frequency::Months { end: true, .. }));
    parsed.ok_or_else(|| DataError::InvalidOption {
        option: "frequency".into(),
        message: format!(
            "'{text}' is not a frequency; write e.g. 30s, 15min, 1h, 1d, 1w, 1 month, 3 months (or pandas' MS, ME, QS, YS)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
    }

    #[test]
    fn frequencies_round_trip() {
        for text in [
            "30s",
            "15min",
            "1h",
            "6h",
            "1d",
            "7d",
            "1 month",
            "3 months",
            "12 months (month ends)",
        ] {
            assert_eq!(format_frequency(parse_frequency(text).unwrap()), text);
        }
        let fixed = |d| Frequency::Fixed(d);
        assert_eq!(parse_frequency("H").unwrap(), fixed(TimeDelta::hours(1)));
        assert_eq!(parse_frequency("1w").unwrap(), fixed(TimeDelta::days(7)));
        assert_eq!(
            parse_frequency("15m").unwrap(),
            fixed(TimeDelta::minutes(15))
        );
        let months = |months, end| Frequency::Months { months, end };
        assert_eq!(parse_frequency("MS").unwrap(), months(1, false));
        assert_eq!(parse_frequency("M").unwrap(), months(1, true));
        assert_eq!(parse_frequency("1mo").unwrap(), months(1, false));
        assert_eq!(parse_frequency("QS").unwrap(), months(3, false));
        assert_eq!(parse_frequency("2Q").unwrap(), months(6, true));
        assert_eq!(parse_frequency("YS").unwrap(), months(12, false));
        assert_eq!(parse_frequency("quarter").unwrap(), months(3, false));
        for bad in ["3 fortnights", "0MS", "0h", "mo1", "1h (month ends)"] {
            let err = parse_frequency(bad).unwrap_err().to_string();
            assert!(err.contains("frequency") && err.contains(bad), "{err}");
        }
    }

    #[test]
    fn months_step_on_the_calendar() {
        let m = Frequency::Months {
            months: 1,
            end: false,
        };
        assert_eq!(m.add(at(2024, 1, 15), 1), at(2024, 2, 15));
        assert_eq!(m.add(at(2024, 1, 15), 12), at(2025, 1, 15));
        assert_eq!(m.add(at(2024, 1, 15), -1), at(2023, 12, 15));
        // A day the month lacks is its last.
        assert_eq!(m.add(at(2024, 1, 31), 1), at(2024, 2, 29));
        let end = Frequency::Months {
            months: 1,
            end: true,
        };
        assert_eq!(end.add(at(2023, 2, 28), 1), at(2023, 3, 31));
        assert_eq!(end.add(at(2023, 2, 28), 12), at(2024, 2, 29));
        let q = Frequency::Months {
            months: 3,
            end: false,
        };
        assert_eq!(q.add(at(2023, 10, 1), 1), at(2024, 1, 1));
        assert_eq!(q.steps_between(at(2023, 1, 1), at(2024, 1, 1)), Some(4));
        assert_eq!(q.steps_between(at(2023, 1, 1), at(2023, 2, 1)), None);
        assert_eq!(m.steps_between(at(2023, 1, 1), at(2023, 2, 2)), None);
        assert_eq!(end.steps_between(at(2023, 1, 31), at(2023, 4, 30)), Some(3));
        assert_eq!(end.steps_between(at(2023, 1, 31), at(2023, 4, 29)), None);
        // The phase of a monthly cycle is the month of the year.
        for month in 1..=12 {
            let n = m.step_number(at(2021, month, 1)).unwrap();
            assert_eq!(n.rem_euclid(12), i64::from(month) - 1);
        }
        assert_eq!(m.step_number(at(1969, 12, 1)), Some(-1));
        // Past chrono's last year: no date, no panic.
        let year = Frequency::Months {
            months: 12,
            end: false,
        };
        assert_eq!(year.checked_add(at(262_142, 1, 1), 1), None);
        assert_eq!(
            Frequency::Fixed(TimeDelta::days(365)).checked_add(at(262_142, 1, 1), 2),
            None
        );
        assert_eq!(q.step_number(at(1970, 6, 30)), Some(1));
    }

    #[test]
    fn fixed_steps_keep_their_arithmetic() {
        let h = Frequency::Fixed(TimeDelta::hours(1));
        assert_eq!(
            h.add(at(2024, 1, 1), 25),
            at(2024, 1, 2) + TimeDelta::hours(1)
        );
        assert_eq!(h.steps_between(at(2024, 1, 1), at(2024, 1, 2)), Some(24));
        let t = at(2024, 1, 1) + TimeDelta::minutes(30);
        assert_eq!(h.steps_between(at(2024, 1, 1), t), None);
        assert_eq!(h.step_number(at(1970, 1, 2)), Some(24));
    }

    #[test]
    fn inference_finds_calendar_months() {
        let starts: Vec<_> = (1..=12).map(|m| at(2023, m, 1)).collect();
        let month = |end| Frequency::Months { months: 1, end };
        assert_eq!(infer_frequency(&starts), Some(month(false)));
        let ends: Vec<_> = (1..=12)
            .map(|m| month(true).add(at(2023, 1, 31), m - 1))
            .collect();
        assert_eq!(ends[1], at(2023, 2, 28));
        assert_eq!(infer_frequency(&ends), Some(month(true)));
        // One missing month is a gap, not another step.
        let gapped: Vec<_> = [1, 2, 3, 5, 6, 7]
            .iter()
            .map(|&m| at(2023, m, 15))
            .collect();
        assert_eq!(infer_frequency(&gapped), Some(month(false)));
        let years: Vec<_> = (2000..2010).map(|y| at(y, 1, 1)).collect();
        assert_eq!(
            infer_frequency(&years),
            Some(Frequency::Months {
                months: 12,
                end: false
            })
        );
        let days: Vec<_> = (0..40)
            .map(|d| at(2024, 1, 1) + TimeDelta::days(d))
            .collect();
        assert_eq!(
            infer_frequency(&days),
            Some(Frequency::Fixed(TimeDelta::days(1)))
        );
        assert_eq!(infer_frequency(&days[..1]), None);
    }
}
