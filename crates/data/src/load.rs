//! CSV files to validated [`Series`]: parsing, validation and the user's repair policies.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::series::{format_frequency, infer_frequency, Series};

/// What to do with a missing value (empty cell, `NA`, `NaN`, `null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// Refuse the file, naming the line and column (the default).
    #[default]
    Error,
    /// Linear interpolation in time between the nearest values before and after; missing values
    /// at the start or end of a segment take the nearest value.
    Interpolate,
    /// Carry the last value forward; missing values at the start of a segment take the first
    /// value that follows.
    ForwardFill,
}

/// What to do with rows that repeat a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicatePolicy {
    /// Refuse the file, naming the line (the default).
    #[default]
    Error,
    /// Keep the first row of each timestamp.
    First,
    /// Average each column over the rows of a timestamp (missing values left out).
    Mean,
    /// Sum each column over the rows of a timestamp (missing values left out).
    Sum,
}

/// What to do where rows are missing from a regular series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapPolicy {
    /// Refuse the file, naming the line after the gap (the default).
    #[default]
    Error,
    /// Insert the missing rows and interpolate their values linearly.
    Interpolate,
    /// Keep the gap: the series is split into segments and no window crosses a gap.
    Keep,
}

/// How to read a CSV file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsvOptions {
    /// The timestamp column.
    pub time_column: String,
    /// A chrono format (`%Y-%m-%d %H:%M:%S`); `None` detects the common ISO-like formats
    /// (`2016-07-01 00:00:00`, `2016-07-01T00:00`, `2016-07-01`, RFC 3339 with offset).
    pub time_format: Option<String>,
    /// The value columns to keep, in this order; `None` keeps every other column.
    pub columns: Option<Vec<String>>,
    /// For long-format files holding many series: the column with the series id.
    pub id_column: Option<String>,
    /// Field delimiter, `,` by default.
    pub delimiter: u8,
    /// Missing values.
    pub missing: MissingPolicy,
    /// Repeated timestamps.
    pub duplicates: DuplicatePolicy,
    /// Missing rows.
    pub gaps: GapPolicy,
    /// The sampling step; `None` infers the most common step.
    pub frequency: Option<TimeDelta>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            time_column: "date".into(),
            time_format: None,
            columns: None,
            id_column: None,
            delimiter: b',',
            missing: MissingPolicy::Error,
            duplicates: DuplicatePolicy::Error,
            gaps: GapPolicy::Error,
            frequency: None,
        }
    }
}

impl CsvOptions {
    /// Options for a file whose timestamps are in `time_column`, with the safe default policies.
    pub fn new(time_column: impl Into<String>) -> Self {
        Self {
            time_column: time_column.into(),
            ..Self::default()
        }
    }
}

/// Formats tried, in order, when no `time_format` is given.
const FORMATS: [&str; 6] = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeFormat {
    Pattern(usize),
    DateOnly,
    Rfc3339,
    Given,
}

fn parse_time(text: &str, format: TimeFormat, given: Option<&str>) -> Option<NaiveDateTime> {
    let t = text.trim();
    match format {
        TimeFormat::Pattern(i) => NaiveDateTime::parse_from_str(t, FORMATS[i]).ok(),
        TimeFormat::DateOnly => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0)),
        TimeFormat::Rfc3339 => DateTime::parse_from_rfc3339(t).ok().map(|d| d.naive_utc()),
        TimeFormat::Given => {
            let f = given.expect("a given format");
            NaiveDateTime::parse_from_str(t, f).ok().or_else(|| {
                NaiveDate::parse_from_str(t, f)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
        }
    }
}

fn detect_format(text: &str) -> Option<TimeFormat> {
    let mut candidates: Vec<TimeFormat> = (0..FORMATS.len()).map(TimeFormat::Pattern).collect();
    candidates.extend([TimeFormat::DateOnly, TimeFormat::Rfc3339]);
    candidates
        .into_iter()
        .find(|f| parse_time(text, *f, None).is_some())
}

/// A parsed data row before validation.
struct RawRow {
    line: u64,
    time: NaiveDateTime,
    /// `None` for a missing cell, with the cell text kept for messages.
    values: Vec<Option<f32>>,
}

fn is_missing(cell: &str) -> bool {
    matches!(
        cell.trim().to_ascii_lowercase().as_str(),
        "" | "na" | "n/a" | "nan" | "null" | "none" | "-nan"
    )
}

/// Loads a single-series CSV file. Errors if `id_column` is set: use [`load_panel`] for those.
pub fn load_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Series, DataError> {
    let path_str = path.as_ref().display().to_string();
    if options.id_column.is_some() {
        return Err(DataError::InvalidOption {
            option: "id_column".into(),
            message: format!(
                "{path_str}: a long-format file holds many series: load it with load_panel"
            ),
        });
    }
    let mut all = read(path.as_ref(), options)?;
    Ok(all
        .pop()
        .expect("read returns one series without an id column"))
}

/// Loads a long-format CSV with many series (one `id_column` value per series): each series is
/// validated and repaired on its own. Series come out in the order of their first row.
pub fn load_panel(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Vec<Series>, DataError> {
    if options.id_column.is_none() {
        return Err(DataError::InvalidOption {
            option: "id_column".into(),
            message: "load_panel needs the column that holds the series id".into(),
        });
    }
    read(path.as_ref(), options)
}

/// Parses CSV text already in memory (for tests and for data that is not in a file); `name`
/// stands for the file in messages.
pub fn load_csv_str(
    name: &str,
    text: &str,
    options: &CsvOptions,
) -> Result<Vec<Series>, DataError> {
    parse(name, text.as_bytes(), options)
}

fn read(path: &Path, options: &CsvOptions) -> Result<Vec<Series>, DataError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| DataError::Io {
        path: name.clone(),
        error,
    })?;
    parse(&name, &bytes, options)
}

/// The header's names for an error message, control characters escaped, with a hint when the
/// whole header is one name holding another common delimiter.
fn describe_header(header: &[String], delimiter: u8) -> String {
    let names: Vec<String> = header
        .iter()
        .map(|h| {
            if h.chars().any(char::is_control) {
                h.escape_debug().to_string()
            } else {
                h.clone()
            }
        })
        .collect();
    let mut text = names.join(", ");
    if let [only] = header {
        if let Some(d) = [b';', b'\t', b'|', b','] // commonest first
            .into_iter()
            .find(|d| *d != delimiter && only.as_bytes().contains(d))
        {
            text += &format!(
                " (one column: the file looks {:?}-separated; set the delimiter)",
                d as char
            );
        }
    }
    text
}

fn parse(path: &str, bytes: &[u8], options: &CsvOptions) -> Result<Vec<Series>, DataError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(options.delimiter)
        .has_headers(true)
        .from_reader(bytes);
    // Line numbers come from byte offsets: the csv crate's own line count is off for files with
    // CRLF line endings.
    let line_of = |byte: u64| {
        let mut at = (byte as usize).min(bytes.len());
        while matches!(bytes.get(at), Some(b'\r' | b'\n')) {
            at += 1;
        }
        1 + bytes[..at].iter().filter(|b| **b == b'\n').count() as u64
    };
    let csv_error = |e: csv::Error| {
        DataError::Csv {
        path: path.into(),
        line: e.position().map(|p| line_of(p.byte())).unwrap_or(1),
        // The csv crate's own message repeats a record number and an (off-by-one for CRLF)
        // line: say what is wrong instead.
        message: match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!(
                "this row has {len} field(s) but the header has {expected_len} (a stray or missing delimiter, or an unclosed quote)"
            ),
            csv::ErrorKind::Utf8 { err, .. } => format!(
                "field {} is not valid UTF-8: save the file as UTF-8",
                err.field() + 1
            ),
            _ => e.to_string(),
        },
    }
    };
    let (mut counted_to, mut counted_line) = (0usize, 1u64);
    let header: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header.iter().all(|h| h.is_empty()) {
        return Err(DataError::Empty {
            path: path.into(),
            message: "the file is empty: expected a header line naming the columns".into(),
        });
    }
    let mut seen = HashMap::new();
    for h in &header {
        if seen.insert(h.as_str(), ()).is_some() {
            return Err(DataError::DuplicateColumn {
                path: path.into(),
                column: h.clone(),
            });
        }
    }
    let find = |name: &str, option: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| DataError::UnknownColumn {
                path: path.into(),
                column: name.into(),
                option: option.into(),
                available: describe_header(&header, options.delimiter),
            })
    };
    let time_idx = find(&options.time_column, "time column")?;
    let id_idx = match &options.id_column {
        Some(id) => Some(find(id, "id column")?),
        None => None,
    };
    let value_idx: Vec<usize> = match &options.columns {
        Some(cols) => cols
            .iter()
            .map(|c| find(c, "columns"))
            .collect::<Result<_, _>>()?,
        None => (0..header.len())
            .filter(|i| *i != time_idx && Some(*i) != id_idx)
            .collect(),
    };
    if value_idx.is_empty() {
        return Err(DataError::Empty {
            path: path.into(),
            message: format!("no value columns besides '{}'", options.time_column),
        });
    }
    let columns: Vec<String> = value_idx.iter().map(|i| header[*i].clone()).collect();

    let mut format: Option<TimeFormat> = options.time_format.as_ref().map(|_| TimeFormat::Given);
    let mut groups: Vec<(String, Vec<RawRow>)> = Vec::new();
    let mut group_of: HashMap<String, usize> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let mut start = record.position().map(|p| p.byte() as usize).unwrap_or(0);
        // With CRLF endings a record's position can point at the previous line's '\n'.
        while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        counted_line += bytes[counted_to..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        counted_to = start;
        let line = counted_line;
        let cell = |i: usize| record.get(i).unwrap_or("");
        let time_text = cell(time_idx);
        let fmt = match format {
            Some(f) => f,
            None => {
                let f = detect_format(time_text).ok_or_else(|| DataError::BadTimestamp {
                    path: path.into(),
                    line,
                    column: options.time_column.clone(),
                    value: time_text.into(),
                    hint: "not an ISO date/time such as 2016-07-01 00:00:00; give the format with --time-format, e.g. '%d/%m/%Y %H:%M'".into(),
                })?;
                format = Some(f);
                f
            }
        };
        let time = parse_time(time_text, fmt, options.time_format.as_deref()).ok_or_else(|| {
            DataError::BadTimestamp {
                path: path.into(),
                line,
                column: options.time_column.clone(),
                value: time_text.into(),
                hint: match &options.time_format {
                    Some(f) => format!("expected format '{f}'"),
                    None => "it does not match the format of the first row; give the format with --time-format".into(),
                },
            }
        })?;
        let mut values = Vec::with_capacity(value_idx.len());
        for (k, &i) in value_idx.iter().enumerate() {
            let text = cell(i).trim();
            if is_missing(text) {
                if options.missing == MissingPolicy::Error {
                    return Err(DataError::Missing {
                        path: path.into(),
                        line,
                        column: columns[k].clone(),
                        value: text.into(),
                    });
                }
                values.push(None);
                continue;
            }
            let v: f64 = text.parse().map_err(|_| DataError::NonNumeric {
                path: path.into(),
                line,
                column: columns[k].clone(),
                value: text.into(),
            })?;
            if !v.is_finite() || v.abs() > f32::MAX as f64 {
                return Err(DataError::NonFinite {
                    path: path.into(),
                    line,
                    column: columns[k].clone(),
                    value: text.into(),
                });
            }
            values.push(Some(v as f32));
        }
        let id = id_idx
            .map(|i| cell(i).trim().to_string())
            .unwrap_or_default();
        let g = *group_of.entry(id.clone()).or_insert_with(|| {
            groups.push((id, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(RawRow { line, time, values });
    }
    if groups.is_empty() {
        return Err(DataError::Empty {
            path: path.into(),
            message: "the file has a header but no data rows".into(),
        });
    }
    groups
        .into_iter()
        .map(|(id, rows)| {
            let name = if id_idx.is_some() {
                format!("{path} [{id}]")
            } else {
                path.to_string()
            };
            build(path, &name, &id, rows, &columns, options)
        })
        .collect()
}

/// Validates and repairs one series' rows: order, duplicates, frequency, gaps, missing values.
fn build(
    path: &str,
    name: &str,
    id: &str,
    rows: Vec<RawRow>,
    columns: &[String],
    options: &CsvOptions,
) -> Result<Series, DataError> {
    let width = columns.len();
    // 1. Order, 2. duplicates.
    let mut merged: Vec<RawRow> = Vec::with_capacity(rows.len());
    let mut counts: Vec<Vec<u32>> = Vec::new(); // per merged row, per column: values summed
    for row in rows {
        if let Some(prev) = merged.last_mut() {
            if row.time < prev.time {
                return Err(DataError::NotMonotonic {
                    path: path.into(),
                    line: row.line,
                    previous: prev.time.to_string(),
                    current: row.time.to_string(),
                });
            }
            if row.time == prev.time {
                match options.duplicates {
                    DuplicatePolicy::Error => {
                        return Err(DataError::Duplicate {
                            path: path.into(),
                            line: row.line,
                            timestamp: row.time.to_string(),
                        })
                    }
                    DuplicatePolicy::First => {}
                    DuplicatePolicy::Mean | DuplicatePolicy::Sum => {
                        let count = counts.last_mut().expect("one count row per merged row");
                        let cells = prev.values.iter_mut().zip(count.iter_mut());
                        for ((acc, n), v) in cells.zip(&row.values) {
                            if let Some(v) = v {
                                *acc = Some(acc.unwrap_or(0.0) + v);
                                *n += 1;
                            }
                        }
                    }
                }
                continue;
            }
        }
        counts.push(row.values.iter().map(|v| v.is_some() as u32).collect());
        merged.push(row);
    }
    if options.duplicates == DuplicatePolicy::Mean {
        for (row, count) in merged.iter_mut().zip(&counts) {
            for (v, n) in row.values.iter_mut().zip(count) {
                if let Some(v) = v.as_mut() {
                    *v /= *n as f32;
                }
            }
        }
    }

    // 3. Frequency and gaps.
    let times: Vec<NaiveDateTime> = merged.iter().map(|r| r.time).collect();
    let frequency = options.frequency.or_else(|| infer_frequency(&times));
    let mut timestamps = Vec::with_capacity(merged.len());
    let mut cells: Vec<Option<f32>> = Vec::with_capacity(merged.len() * width);
    let mut segments = Vec::new();
    let mut segment_start = 0;
    let mut invented = 0i64;
    for (i, row) in merged.iter().enumerate() {
        if let (Some(step), true) = (frequency, i > 0) {
            let prev = merged[i - 1].time;
            let diff = row.time - prev;
            let secs = step.num_seconds().max(1);
            if diff.num_seconds() % secs != 0 || diff.subsec_nanos() != 0 {
                return Err(DataError::Irregular {
                    path: path.into(),
                    line: row.line,
                    previous: prev.to_string(),
                    current: row.time.to_string(),
                    frequency: format_frequency(step),
                });
            }
            let missing = diff.num_seconds() / secs - 1;
            if missing > 0 {
                match options.gaps {
                    GapPolicy::Error => {
                        return Err(DataError::Gap {
                            path: path.into(),
                            line: row.line,
                            previous: prev.to_string(),
                            current: row.time.to_string(),
                            missing,
                            frequency: format_frequency(step),
                        })
                    }
                    GapPolicy::Keep => {
                        segments.push(segment_start..timestamps.len());
                        segment_start = timestamps.len();
                    }
                    GapPolicy::Interpolate => {
                        invented += missing;
                        let rows = merged.len() as i64;
                        if missing > rows || invented > 10 * rows {
                            return Err(DataError::GapTooLong {
                                path: path.into(),
                                line: row.line,
                                between: format!("{prev} and {}", row.time),
                                missing,
                                invented,
                                rows: merged.len(),
                                frequency: format_frequency(step),
                            });
                        }
                        // Rows whose cells are filled by linear interpolation below.
                        for k in 1..=missing {
                            timestamps.push(prev + step * k as i32);
                            cells.extend(std::iter::repeat_n(None, width));
                        }
                    }
                }
            }
        }
        timestamps.push(row.time);
        cells.extend(row.values.iter().copied());
    }
    segments.push(segment_start..timestamps.len());

    // 4. Missing values, within each segment. Inserted gap rows are always interpolated.
    let gap_rows_present = cells.len() != merged.len() * width;
    let policy = match (options.missing, gap_rows_present) {
        (MissingPolicy::Error, true) => MissingPolicy::Interpolate,
        (p, _) => p,
    };
    let mut values = vec![0.0f32; cells.len()];
    for seg in &segments {
        for k in 0..width {
            let column: Vec<Option<f32>> = seg.clone().map(|r| cells[r * width + k]).collect();
            let filled = fill(&column, policy).ok_or_else(|| DataError::AllMissing {
                path: path.into(),
                column: columns[k].clone(),
                series: if id.is_empty() {
                    String::new()
                } else {
                    format!(" in series '{id}'")
                },
            })?;
            for (r, v) in seg.clone().zip(filled) {
                values[r * width + k] = v;
            }
        }
    }
    Ok(Series {
        name: name.into(),
        timestamps,
        columns: columns.to_vec(),
        values,
        segments,
        frequency,
    })
}

/// Fills the `None`s of one column segment; `None` when it has no value at all.
fn fill(column: &[Option<f32>], policy: MissingPolicy) -> Option<Vec<f32>> {
    let first = column.iter().position(Option::is_some)?;
    // The next known index at or after each position, in one backward pass (linear time).
    let mut next_known = vec![None; column.len()];
    let mut next = None;
    for i in (0..column.len()).rev() {
        if column[i].is_some() {
            next = Some(i);
        }
        next_known[i] = next;
    }
    let mut out = Vec::with_capacity(column.len());
    let mut last_known: (usize, f32) = (first, column[first].expect("found"));
    for (i, v) in column.iter().enumerate() {
        match v {
            Some(v) => {
                out.push(*v);
                last_known = (i, *v);
            }
            None if i < first => out.push(last_known.1),
            None => match policy {
                MissingPolicy::ForwardFill | MissingPolicy::Error => out.push(last_known.1),
                MissingPolicy::Interpolate => match next_known[i] {
                    Some(j) => {
                        let (a, va) = last_known;
                        let vb = column[j].expect("found");
                        let w = (i - a) as f32 / (j - a) as f32;
                        out.push(va + w * (vb - va));
                    }
                    None => out.push(last_known.1),
                },
            },
        }
    }
    Some(out)
}
