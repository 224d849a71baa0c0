//! Loading and validating CSV files: every policy and every error, on small inline files.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use gatecast_data::*;

fn load(text: &str, options: &CsvOptions) -> Result<Series, DataError> {
    load_csv_str("t.csv", text, options).map(|mut v| v.remove(0))
}

fn opts() -> CsvOptions {
    CsvOptions::new("date")
}

fn err(text: &str, options: &CsvOptions) -> String {
    load(text, options).unwrap_err().to_string()
}

fn at(day: u32, hour: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 1, day)
        .unwrap()
        .and_hms_opt(hour, 0, 0)
        .unwrap()
}

#[test]
fn clean_file_loads_with_inferred_frequency() {
    let s = load(
        "date,a,b\n2024-01-01 00:00:00,1,10\n2024-01-01 01:00:00,2,20\n2024-01-01 02:00:00,3,\"30\"\n",
        &opts(),
    )
    .unwrap();
    assert_eq!(s.columns, ["a", "b"]);
    assert_eq!(s.values, vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
    assert_eq!(s.timestamps, vec![at(1, 0), at(1, 1), at(1, 2)]);
    assert_eq!(s.frequency, Some(TimeDelta::hours(1).into()));
    assert_eq!(s.segments, vec![0..3]);
}

#[test]
fn formats_bom_delimiter_and_column_choice() {
    let mut o = opts();
    o.columns = Some(vec!["b".into()]);
    o.delimiter = b';';
    let s = load(
        "\u{feff}date;a;b\n2024-01-01T00:00;1;10\n2024-01-01T01:00;2;20\n",
        &o,
    )
    .unwrap();
    assert_eq!(s.columns, ["b"]);
    assert_eq!(s.values, vec![10.0, 20.0]);
    let d = load("date,x\n2024-01-01,1\n2024-01-02,2\n", &opts()).unwrap();
    assert_eq!(d.frequency, Some(TimeDelta::days(1).into()));
    let mut given = opts();
    given.time_format = Some("%d/%m/%Y %H:%M".into());
    let g = load("date,x\n01/01/2024 00:00,1\n01/01/2024 01:00,2\n", &given).unwrap();
    assert_eq!(g.timestamps[1], at(1, 1));
}

fn day(y: i32, m: u32, d: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

/// Monthly, quarterly and month-end files load on the calendar: their step is calendar months,
/// a missing month is a gap (filled on the 1st of the month that is missing, or refused
/// naming it), `1949-01`, `1990Q1` and `1990` read as a month, a quarter and a year, and a row
/// off the month's day is refused.
#[test]
fn calendar_months_load_with_their_gaps() {
    let months = |months, end| Frequency::Months { months, end };
    // Month starts, one month (April) missing, written as pandas writes periods.
    let text = "date,x\n2023-01,1\n2023-02,2\n2023-03,3\n2023-05,5\n2023-06,6\n";
    let e = err(text, &opts());
    assert!(
        e.contains("t.csv:5:") && e.contains("gap of 1 missing step(s)") && e.contains("1 month"),
        "{e}"
    );
    let mut o = opts();
    o.gaps = GapPolicy::Interpolate;
    let s = load(text, &o).unwrap();
    assert_eq!(s.frequency, Some(months(1, false)));
    assert_eq!(s.timestamps[3], day(2023, 4, 1));
    assert_eq!(s.values, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(s.step_number(0).unwrap().rem_euclid(12), 0, "January");
    // Month ends across a leap February and a year end.
    let ends = "date,x\n2023-11-30,1\n2023-12-31,2\n2024-01-31,3\n2024-03-31,5\n";
    let s = load(ends, &o).unwrap();
    assert_eq!(s.frequency, Some(months(1, true)));
    assert_eq!(s.timestamps[3], day(2024, 2, 29));
    // Quarters.
    let q = load(
        "date,x\n2023-01-01,1\n2023-04-01,2\n2023-07-01,3\n",
        &opts(),
    )
    .unwrap();
    assert_eq!(q.frequency, Some(months(3, false)));
    // A row on another day of the month is refused, saying what a monthly row must be.
    let off = "date,x\n2023-01-01,1\n2023-02-01,2\n2023-03-01,3\n2023-04-02,4\n";
    let e = err(off, &opts());
    assert!(
        e.contains("t.csv:5:") && e.contains("one day of the month") && e.contains("1 month"),
        "{e}"
    );
    // Pandas' quarterly periods and bare years are quarters and years.
    let q = load("date,x\n1990Q4,1\n1991Q1,2\n1991-Q2,3\n", &opts()).unwrap();
    assert_eq!(
        q.timestamps,
        vec![day(1990, 10, 1), day(1991, 1, 1), day(1991, 4, 1)]
    );
    assert_eq!(q.frequency, Some(months(3, false)));
    let y = load("date,x\n1700,5\n1701,11\n1702,16\n", &opts()).unwrap();
    assert_eq!(y.timestamps[2], day(1702, 1, 1));
    assert_eq!(y.frequency, Some(months(12, false)));
    let e = err("date,x\n1990Q5,1\n", &opts());
    assert!(e.contains("t.csv:2") && e.contains("1990Q5"), "{e}");
    // Eight digits that make a date are advised as one.
    let e = err("date,x\n19580329,316.1\n", &opts());
    assert!(e.contains("'%Y%m%d'") && e.contains("'%s'"), "{e}");
    // A given format without a day names months, too.
    let mut given = opts();
    given.time_format = Some("%b %Y".into());
    let g = load("date,x\nJan 1949,112\nFeb 1949,118\n", &given).unwrap();
    assert_eq!(g.timestamps, vec![day(1949, 1, 1), day(1949, 2, 1)]);
    assert_eq!(g.frequency, Some(months(1, false)));
}

/// Spreadsheet exports: a decimal comma under a ';' delimiter, and timestamps as seconds since
/// 1970 or day/month dates, each refused with advice that fixes it when not asked for.
#[test]
fn decimal_commas_epoch_seconds_and_their_advice() {
    let text = "date;a\n2024-01-01 00:00:00;1,5\n2024-01-01 01:00:00;-2,25\n";
    let mut o = opts();
    o.delimiter = b';';
    let e = err(text, &o);
    assert!(
        e.contains("t.csv:2") && e.contains("'1,5'") && e.contains("decimal comma"),
        "{e}"
    );
    o.decimal_comma = true;
    assert_eq!(load(text, &o).unwrap().values, vec![1.5, -2.25]);
    // Not a decimal comma: no such advice.
    o.decimal_comma = false;
    let e = err("date;a\n2024-01-01 00:00:00;1,234,5\n", &o);
    assert!(e.contains("not a number") && !e.contains("decimal"), "{e}");

    let epoch = "date,a\n1704067200,1\n1704070800,2\n";
    let e = err(epoch, &opts());
    assert!(
        e.contains("'%s'") && e.contains("seconds since 1970"),
        "{e}"
    );
    let mut seconds = opts();
    seconds.time_format = Some("%s".into());
    assert_eq!(
        load(epoch, &seconds).unwrap().timestamps,
        vec![at(1, 0), at(1, 1)]
    );
    let e = err("date,a\n1704067200000,1\n", &opts());
    assert!(e.contains("milliseconds"), "{e}");
    let e = err("date,a\n13/01/2024 00:00,1\n", &opts());
    assert!(
        e.contains("'%d/%m/%Y %H:%M'") && e.contains("'%m/%d/%Y %H:%M'"),
        "{e}"
    );
}

#[test]
fn errors_name_file_line_and_column() {
    let e = err(
        "date,a\n2024-01-01 00:00:00,1\n2024-01-01 01:00:00,abc\n",
        &opts(),
    );
    assert!(
        e.contains("t.csv:3") && e.contains("'a'") && e.contains("'abc' is not a number"),
        "{e}"
    );
    let e = err(
        "date,a\n2024-01-01 00:00:00,1\n2024-01-01 01:00:00,\n",
        &opts(),
    );
    assert!(e.contains("t.csv:3") && e.contains("missing value"), "{e}");
    let e = err("date,a\n2024-01-01 00:00:00,NaN\n", &opts());
    assert!(
        e.contains("t.csv:2") && e.contains("missing value ('NaN')"),
        "{e}"
    );
    let e = err("date,a\n2024-01-01 00:00:00,inf\n", &opts());
    assert!(e.contains("t.csv:2") && e.contains("not finite"), "{e}");
    let e = err("date,a\n2024-01-01 00:00:00,1e39\n", &opts());
    assert!(e.contains("not finite"), "{e}");
    let e = err("time,a\n2024-01-01 00:00:00,1\n", &opts());
    assert!(
        e.contains("no column named 'date'") && e.contains("time, a"),
        "{e}"
    );
    let mut o = opts();
    o.columns = Some(vec!["zzz".into()]);
    let e = err("date,a\n2024-01-01 00:00:00,1\n", &o);
    assert!(e.contains("'zzz'") && e.contains("columns"), "{e}");
    let e = err("date,a,a\n2024-01-01 00:00:00,1,2\n", &opts());
    assert!(e.contains("'a' appears more than once"), "{e}");
    let e = err("date,a\nyesterday,1\n", &opts());
    assert!(
        e.contains("t.csv:2") && e.contains("'yesterday'") && e.contains("data.time_format"),
        "{e}"
    );
    let e = err("date,a\n2024-01-01 00:00:00,1\n2024-01-01,2\n", &opts());
    assert!(e.contains("t.csv:3") && e.contains("timestamp"), "{e}");
    let e = err(
        "date,a\n2024-01-01 00:00:00,1\n2024-01-01 01:00:00,2,3\n",
        &opts(),
    );
    assert!(e.contains("t.csv:3") && e.contains("malformed CSV"), "{e}");
    let e = err("", &opts());
    assert!(e.contains("empty"), "{e}");
    let e = err("date,a\n", &opts());
    assert!(e.contains("no data rows"), "{e}");
    let e = err("date\n2024-01-01,\n", &opts());
    assert!(e.contains("no value columns"), "{e}");
}

#[test]
fn line_numbers_are_right_with_crlf_endings() {
    let text =
        "date,a\r\n2024-01-01 00:00:00,1\r\n2024-01-01 01:00:00,2\r\n2024-01-01 01:00:00,3\r\n";
    let e = err(text, &opts());
    assert!(e.contains("t.csv:4: timestamp"), "{e}");
    let e = err(
        "date,a\r\n2024-01-01 00:00:00,1\r\n2024-01-01 01:00:00,x\r\n",
        &opts(),
    );
    assert!(e.contains("t.csv:3:"), "{e}");
    let e = err(
        "date,a\r\n2024-01-01 00:00:00,1\r\n2024-01-01 01:00:00,2,3\r\n",
        &opts(),
    );
    assert!(e.contains("t.csv:3:"), "{e}");
}

#[test]
fn timestamps_must_not_go_backwards() {
    let e = err(
        "date,a\n2024-01-01 02:00:00,1\n2024-01-01 01:00:00,2\n",
        &opts(),
    );
    assert!(
        e.contains("t.csv:3") && e.contains("earlier than") && e.contains("sort"),
        "{e}"
    );
}

const DUPES: &str = "date,a,b\n2024-01-01 00:00:00,1,10\n2024-01-01 01:00:00,2,20\n2024-01-01 01:00:00,4,\n2024-01-01 02:00:00,3,30\n";

#[test]
fn duplicate_policies() {
    let mut o = opts();
    o.missing = MissingPolicy::Interpolate;
    let e = err(DUPES, &o);
    assert!(e.contains("t.csv:4") && e.contains("repeats"), "{e}");
    o.duplicates = DuplicatePolicy::First;
    assert_eq!(
        load(DUPES, &o).unwrap().values,
        vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0]
    );
    o.duplicates = DuplicatePolicy::Mean;
    // b's second duplicate is missing: left out of the mean.
    assert_eq!(
        load(DUPES, &o).unwrap().values,
        vec![1.0, 10.0, 3.0, 20.0, 3.0, 30.0]
    );
    o.duplicates = DuplicatePolicy::Sum;
    assert_eq!(
        load(DUPES, &o).unwrap().values,
        vec![1.0, 10.0, 6.0, 20.0, 3.0, 30.0]
    );
}

const MISSING: &str = "date,a\n2024-01-01 00:00:00,\n2024-01-01 01:00:00,1\n2024-01-01 02:00:00,NA\n2024-01-01 03:00:00,\n2024-01-01 04:00:00,4\n2024-01-01 05:00:00,\n";

#[test]
fn missing_value_policies() {
    let mut o = opts();
    let e = err(MISSING, &o);
    assert!(e.contains("t.csv:2") && e.contains("'a'"), "{e}");
    o.missing = MissingPolicy::Interpolate;
    // leading takes the first value, trailing the last.
    assert_eq!(
        load(MISSING, &o).unwrap().values,
        vec![1.0, 1.0, 2.0, 3.0, 4.0, 4.0]
    );
    o.missing = MissingPolicy::ForwardFill;
    assert_eq!(
        load(MISSING, &o).unwrap().values,
        vec![1.0, 1.0, 1.0, 1.0, 4.0, 4.0]
    );
    let e = err("date,a\n2024-01-01 00:00:00,\n2024-01-01 01:00:00,NA\n", &o);
    assert!(e.contains("column 'a' has no values"), "{e}");
}

const GAPPY: &str = "date,a\n2024-01-01 00:00:00,0\n2024-01-01 01:00:00,1\n2024-01-01 04:00:00,4\n2024-01-01 05:00:00,5\n";

#[test]
fn gap_policies() {
    let mut o = opts();
    let e = err(GAPPY, &o);
    assert!(
        e.contains("t.csv:4") && e.contains("gap of 2 missing step(s)") && e.contains("1h"),
        "{e}"
    );
    o.gaps = GapPolicy::Interpolate;
    let s = load(GAPPY, &o).unwrap();
    assert_eq!(s.values, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(s.timestamps[2], at(1, 2));
    assert_eq!(s.segments, vec![0..6]);
    o.gaps = GapPolicy::Keep;
    let s = load(GAPPY, &o).unwrap();
    assert_eq!(s.values, vec![0.0, 1.0, 4.0, 5.0]);
    assert_eq!(s.segments, vec![0..2, 2..4]);
    // A step that is not a multiple of the frequency.
    o.frequency = Some(TimeDelta::hours(2).into());
    let e = err(GAPPY, &o);
    assert!(e.contains("not a multiple of the frequency (2h)"), "{e}");
}

#[test]
fn many_series_in_long_format() {
    let text = "id,date,v\nA,2024-01-01 00:00:00,1\nB,2024-01-01 00:00:00,10\nA,2024-01-01 01:00:00,2\nB,2024-01-01 01:00:00,20\nB,2024-01-01 03:00:00,40\n";
    let mut o = opts();
    o.id_column = Some("id".into());
    let e = load_csv_str("t.csv", text, &o).unwrap_err().to_string();
    assert!(
        e.contains("gap") && e.contains("t.csv:6"),
        "B is validated on its own: {e}"
    );
    o.gaps = GapPolicy::Interpolate;
    let all = load_csv_str("t.csv", text, &o).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].name, "t.csv [A]");
    assert_eq!(all[0].values, vec![1.0, 2.0]);
    assert_eq!(all[1].values, vec![10.0, 20.0, 30.0, 40.0]);
    assert_eq!(all[1].columns, ["v"], "the id column is not a value");
}

#[test]
fn files_on_disk_and_io_errors() {
    let dir = std::env::temp_dir().join(format!("gatecast-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("x.csv");
    std::fs::write(&path, "date,a\n2024-01-01,1\n2024-01-02,2\n").unwrap();
    assert_eq!(load_csv(&path, &opts()).unwrap().rows(), 2);
    let e = load_csv(dir.join("absent.csv"), &opts())
        .unwrap_err()
        .to_string();
    assert!(e.contains("absent.csv") && e.contains("cannot read"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}

/// Found by fuzzing: a mistyped year made a gap of ~100k steps that interpolation filled in
/// quadratic time. Such gaps are refused; gaps as long as the data are filled in linear time.
#[test]
fn gaps_longer_than_the_data_are_refused() {
    let mut o = opts();
    o.gaps = GapPolicy::Interpolate;
    let typo =
        "date,x\n2012-01-01 00:00,1\n2024-01-01 01:00,2\n2024-01-01 02:00,3\n2024-01-01 03:00,4\n";
    let e = err(typo, &o);
    assert!(
        e.contains("t.csv:3") && e.contains("for 4 real ones") && e.contains("timestamp wrong"),
        "{e}"
    );
    // 2,000 rows around a 1,999-step hole: allowed, and interpolated exactly.
    let mut text = String::from("date,x\n");
    let t0 = at(1, 0);
    for i in (0..1000).chain(2999..4000) {
        let t = t0 + TimeDelta::hours(i);
        text += &format!("{},{}\n", t.format("%Y-%m-%d %H:%M"), i);
    }
    let s = load(&text, &o).unwrap();
    assert_eq!(s.rows(), 4000);
    for (i, v) in s.values.iter().enumerate() {
        assert!((v - i as f32).abs() < 1e-3, "row {i}: {v}");
    }
    // Many smaller gaps: at most ten invented rows per real one.
    let mut text = String::from("date,x\n");
    for i in 0..20 {
        let t = t0 + TimeDelta::hours(30 * i);
        text += &format!(
            "{},{i}\n{},{i}\n",
            t.format("%Y-%m-%d %H:%M"),
            (t + TimeDelta::hours(1)).format("%Y-%m-%d %H:%M")
        );
    }
    let e = err(&text, &o);
    assert!(e.contains("would invent"), "{e}");
}

/// Loads `text` from a file, with what the policies changed.
fn repaired(text: &str, options: &CsvOptions) -> (Series, Repairs) {
    let dir = std::env::temp_dir().join(format!("gatecast-repairs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("r.csv");
    std::fs::write(&path, text).unwrap();
    let out = load_csv_with_repairs(&path, options).unwrap();
    std::fs::remove_dir_all(dir).ok();
    out
}

#[test]
fn repairs_are_counted_and_named_by_their_options() {
    // A clean file: nothing changed, nothing to say.
    let (_, r) = repaired(
        "date,a\n2024-01-01 00:00:00,1\n2024-01-01 01:00:00,2\n",
        &opts(),
    );
    assert!(r.is_empty(), "{r:?}");
    assert_eq!(r.describe(&["a".into()], &opts()), None);

    // One repeated timestamp under `first`, one missing cell of b (the second duplicate's b is
    // dropped with its row, so it does not count).
    let mut o = opts();
    o.missing = MissingPolicy::Interpolate;
    o.duplicates = DuplicatePolicy::First;
    let (s, r) = repaired(DUPES, &o);
    assert_eq!(s.rows(), 3);
    assert_eq!(
        r,
        Repairs {
            duplicate_rows: 1,
            inserted_rows: 0,
            kept_gaps: 0,
            filled: vec![0, 0],
            longest_gap: None,
        }
    );
    let (_, r) = repaired(MISSING, &o);
    assert_eq!(r.filled, vec![4], "the four empty or NA cells of MISSING");
    let line = r.describe(&["a".into()], &o).unwrap();
    assert_eq!(
        line,
        "4 missing value(s) filled (data.missing = \"interpolate\"; a 4)"
    );

    // Gaps: two rows inserted and interpolated (not counted as missing cells), or one gap kept.
    o.gaps = GapPolicy::Interpolate;
    let (_, r) = repaired(GAPPY, &o);
    assert_eq!(
        (r.inserted_rows, r.kept_gaps, r.filled.clone()),
        (2, 0, vec![0])
    );
    // Two gaps, of 1 and 3 rows: the note names the longer, where the interpolated line is.
    let two = "date,a\n2024-01-01 00:00:00,0\n2024-01-01 02:00:00,2\n2024-01-01 03:00:00,3\n2024-01-01 07:00:00,7\n";
    let (_, r) = repaired(two, &o);
    let g = r.longest_gap.clone().unwrap();
    assert_eq!((r.inserted_rows, g.rows, g.series.as_str()), (4, 3, ""));
    assert_eq!(g.after.to_string(), "2024-01-01 03:00:00");
    let line = r.describe(&["a".into()], &o).unwrap();
    assert!(
        line.contains("the longest 3 rows, between 2024-01-01 03:00:00 and 2024-01-01 07:00:00"),
        "{line}"
    );
    o.gaps = GapPolicy::Keep;
    let (_, r) = repaired(GAPPY, &o);
    assert_eq!((r.inserted_rows, r.kept_gaps), (0, 1));
    assert_eq!(r.longest_gap, None);
    let line = r.describe(&["a".into()], &o).unwrap();
    assert!(
        line.contains("1 gap(s) kept") && line.contains("data.gaps = \"keep\""),
        "{line}"
    );

    // A panel's total: each series' repairs added.
    let text = "id,date,v\nA,2024-01-01 00:00:00,1\nA,2024-01-01 00:00:00,9\nA,2024-01-01 01:00:00,\nB,2024-01-01 00:00:00,10\nB,2024-01-01 01:00:00,20\nB,2024-01-01 04:00:00,50\n";
    let dir = std::env::temp_dir().join(format!("gatecast-repairs-panel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("p.csv");
    std::fs::write(&path, text).unwrap();
    o.id_column = Some("id".into());
    o.gaps = GapPolicy::Interpolate;
    let all = load_panel_with_repairs(&path, &o).unwrap();
    std::fs::remove_dir_all(dir).ok();
    let mut total = Repairs::default();
    for (_, r) in &all {
        total.add(r);
    }
    assert_eq!(
        total,
        Repairs {
            duplicate_rows: 1,
            inserted_rows: 2,
            kept_gaps: 0,
            filled: vec![1],
            longest_gap: Some(FilledGap {
                series: "B".into(),
                after: chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
                    .unwrap()
                    .and_hms_opt(1, 0, 0)
                    .unwrap(),
                before: chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
                    .unwrap()
                    .and_hms_opt(4, 0, 0)
                    .unwrap(),
                rows: 2,
            }),
        }
    );
    let line = total.describe(&["v".into()], &o).unwrap();
    assert!(
        line.contains("1 row(s) repeating a timestamp dropped")
            && line.contains("2 row(s) inserted into gaps")
            && line.contains(
                "the longest 2 rows in series B, between 2024-01-01 01:00:00 and 2024-01-01 04:00:00"
            )
            && line.contains("1 missing value(s) filled"),
        "{line}"
    );
}

/// `irregular`: rows at any times (a transaction log) load as they come, one segment with no
/// grid and no gaps, ready to be resampled; without it the same file is refused.
#[test]
fn irregular_rows_load_as_they_come_for_resampling() {
    let log = "date,a\n2024-01-01 08:13:00,1\n2024-01-01 09:47:00,2\n2024-01-01 09:50:00,\n2024-01-02 11:00:00,4\n";
    let mut o = opts();
    o.missing = MissingPolicy::Interpolate;
    let e = err(log, &o);
    assert!(e.contains("not a multiple of the frequency"), "{e}");
    o.irregular = true;
    let s = load(log, &o).unwrap();
    assert_eq!(s.rows(), 4);
    assert_eq!(s.segments, vec![0..4]);
    // The missing cell lies between the rows before and after it.
    assert_eq!(s.values, vec![1.0, 2.0, 3.0, 4.0]);
    let daily = resample(&s, TimeDelta::days(1), Aggregation::Sum).unwrap();
    assert_eq!(daily.values, vec![6.0, 4.0]);
}

/// The columns whose first row reads as a number, without the time column, in header order;
/// with a decimal comma (and another delimiter) `12,5` is a number, without it not.
#[test]
fn number_columns_are_those_whose_first_row_is_a_number() {
    let dir = std::env::temp_dir().join(format!("gatecast-numbers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("n.csv");
    std::fs::write(&path, "date;name;price;units;note\n2024-01-01;a;12,5;3;\n").unwrap();
    let mut options = opts();
    options.delimiter = b';';
    assert_eq!(number_columns(&path, &options).unwrap(), ["units"]);
    options.decimal_comma = true;
    assert_eq!(number_columns(&path, &options).unwrap(), ["price", "units"]);
    std::fs::write(&path, "date;7;x\n2024-01-01;1;2\n").unwrap();
    options.time_column = "7".into();
    assert_eq!(number_columns(&path, &options).unwrap(), ["x"]);
    let err = number_columns(dir.join("missing.csv"), &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.csv"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
