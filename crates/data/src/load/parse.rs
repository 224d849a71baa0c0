//! CSV bytes to rows: the header's columns, timestamps (given or detected formats), numbers, and
//! every error naming the file, line and column. Rows are grouped by series id, not yet
//! validated otherwise (`repair.rs` does that).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use super::{CsvOptions, MissingPolicy};
use crate::error::DataError;

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
    /// `1949-01`: a month, read as its first day (monthly files as pandas writes periods).
    YearMonth,
    /// `1990Q1`, `1990-Q1`: a quarter, read as its first day (pandas' quarterly periods).
    YearQuarter,
    /// `1990`: a year, read as 1 January (yearly files; epoch seconds have more digits).
    Year,
    Rfc3339,
    Given,
}

/// The first day of a `1990Q1` or `1990-Q1` quarter.
fn year_quarter(t: &str) -> Option<NaiveDate> {
    let (year, quarter) = t.split_once(['Q', 'q'])?;
    let year = year.strip_suffix('-').unwrap_or(year);
    if year.len() != 4 || quarter.len() != 1 {
        return None;
    }
    let quarter: u32 = quarter.parse().ok().filter(|q| (1..=4).contains(q))?;
    NaiveDate::from_ymd_opt(year.parse().ok()?, 3 * quarter - 2, 1)
}

fn parse_time(text: &str, format: TimeFormat, given: Option<&str>) -> Option<NaiveDateTime> {
    let t = text.trim();
    match format {
        TimeFormat::Pattern(i) => NaiveDateTime::parse_from_str(t, FORMATS[i]).ok(),
        TimeFormat::DateOnly => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0)),
        TimeFormat::YearMonth => (t.len() == 7)
            .then(|| NaiveDate::parse_from_str(&format!("{t}-01"), "%Y-%m-%d").ok())
            .flatten()
            .and_then(|d| d.and_hms_opt(0, 0, 0)),
        TimeFormat::YearQuarter => year_quarter(t).and_then(|d| d.and_hms_opt(0, 0, 0)),
        TimeFormat::Year => (t.len() == 4 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| NaiveDate::from_ymd_opt(t.parse().ok()?, 1, 1))
            .flatten()
            .and_then(|d| d.and_hms_opt(0, 0, 0)),
        TimeFormat::Rfc3339 => DateTime::parse_from_rfc3339(t).ok().map(|d| d.naive_utc()),
        TimeFormat::Given => {
            let f = given.expect("a given format");
            NaiveDateTime::parse_from_str(t, f).ok().or_else(|| {
                NaiveDate::parse_from_str(t, f)
                    .ok()
                    // A format without a day (`%Y-%m`, `%b %Y`) names a month: its first day.
                    .or_else(|| {
                        NaiveDate::parse_from_str(&format!("{t} 1"), &format!("{f} %d")).ok()
                    })
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
        }
    }
}

/// A number cell, its decimal mark a comma with [`CsvOptions::decimal_comma`].
pub(super) fn parse_number(text: &str, options: &CsvOptions) -> Option<f64> {
    if options.decimal_comma && text.contains(',') {
        text.replacen(',', ".", 1).parse().ok()
    } else {
        text.parse().ok()
    }
}

/// What may fix a cell that is not a number: a decimal comma read as one (`12,5`).
pub(super) fn number_hint(text: &str, options: &CsvOptions) -> &'static str {
    let one_comma = text.matches(',').count() == 1 && !text.contains('.');
    if !options.decimal_comma && one_comma && text.replace(',', ".").parse::<f64>().is_ok() {
        "; a decimal comma? set decimal_comma (data.decimal = \",\", --decimal , in gatecast)"
    } else {
        ""
    }
}

/// Where a format is given, for error messages (the library's field, the command's options).
const TIME_FORMAT_OPTION: &str = "time_format (data.time_format, --time-format in gatecast)";

/// What to say of a first timestamp that no ISO format reads: a likely format for numbers
/// since 1970 and for day/month orders, else an example.
fn undetected_hint(text: &str) -> String {
    let t = text.trim();
    let example = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        match t.len() {
            13.. => "'%s' reads seconds since 1970-01-01; these look like milliseconds (13 digits), which need converting to seconds first".to_string(),
            8 if NaiveDate::parse_from_str(t, "%Y%m%d").is_ok() => "'%Y%m%d' for dates written 19580329, or '%s' for seconds since 1970-01-01".to_string(),
            _ => "'%s' for seconds since 1970-01-01".to_string(),
        }
    } else if t.contains('/') {
        "'%d/%m/%Y %H:%M' (day first) or '%m/%d/%Y %H:%M' (month first)".to_string()
    } else {
        "'%d.%m.%Y %H:%M'".to_string()
    };
    format!("not an ISO date/time such as 2016-07-01 00:00:00; give the format: {TIME_FORMAT_OPTION}, e.g. {example}")
}

fn detect_format(text: &str) -> Option<TimeFormat> {
    let mut candidates: Vec<TimeFormat> = (0..FORMATS.len()).map(TimeFormat::Pattern).collect();
    candidates.extend([
        TimeFormat::DateOnly,
        TimeFormat::YearMonth,
        TimeFormat::YearQuarter,
        TimeFormat::Year,
        TimeFormat::Rfc3339,
    ]);
    candidates
        .into_iter()
        .find(|f| parse_time(text, *f, None).is_some())
}

/// A parsed data row before validation.
pub(super) struct RawRow {
    pub(super) line: u64,
    pub(super) time: NaiveDateTime,
    /// `None` for a missing cell.
    pub(super) values: Vec<Option<f32>>,
}

pub(super) fn is_missing(cell: &str) -> bool {
    matches!(
        cell.trim().to_ascii_lowercase().as_str(),
        "" | "na" | "n/a" | "nan" | "null" | "none" | "-nan"
    )
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
                " (one column: the file looks {:?}-separated; set the delimiter: data.delimiter, --delimiter in gatecast)",
                d as char
            );
        }
    }
    text
}

/// Line numbers from byte offsets: the csv crate's own line count is off for files with CRLF
/// line endings. Records are counted forward incrementally, so the whole file is scanned once.
pub(super) struct Lines<'a> {
    bytes: &'a [u8],
    counted_to: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            counted_to: 0,
            line: 1,
        }
    }

    /// The first non-newline byte at or after `at`: with CRLF endings a record's position can
    /// point at the previous line's '\n'.
    fn skip_newlines(&self, mut at: usize) -> usize {
        while matches!(self.bytes.get(at), Some(b'\r' | b'\n')) {
            at += 1;
        }
        at
    }

    /// The line of byte `byte`, counted from the start (for errors).
    fn of(&self, byte: u64) -> u64 {
        let at = self.skip_newlines((byte as usize).min(self.bytes.len()));
        1 + self.bytes[..at].iter().filter(|b| **b == b'\n').count() as u64
    }

    /// The line of a record starting at `byte`, at or after the previous record's.
    pub(super) fn advance_to(&mut self, byte: usize) -> u64 {
        let start = self.skip_newlines(byte);
        self.line += self.bytes[self.counted_to..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        self.counted_to = start;
        self.line
    }
}

/// A csv crate error as a [`DataError`] naming the line and saying what is wrong.
pub(super) fn csv_error(path: &str, lines: &Lines, e: csv::Error) -> DataError {
    DataError::Csv {
        path: path.into(),
        line: e.position().map(|p| lines.of(p.byte())).unwrap_or(1),
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
}

/// The index of column `name` in `header`; an error names `option`, the one asking for it.
pub(super) fn find_column(
    header: &[String],
    name: &str,
    option: &str,
    path: &str,
    options: &CsvOptions,
) -> Result<usize, DataError> {
    header
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| DataError::UnknownColumn {
            path: path.into(),
            column: name.into(),
            option: option.into(),
            available: describe_header(header, options.delimiter),
        })
}

/// A CSV reader, the line counter for its errors, and the header's names.
pub(super) type Opened<'a> = (csv::Reader<&'a [u8]>, Lines<'a>, Vec<String>);

/// A CSV reader over `bytes` (a UTF-8 byte-order mark skipped), the line counter for its
/// errors, and the header's names, trimmed.
pub(super) fn open<'a>(
    path: &str,
    bytes: &'a [u8],
    options: &CsvOptions,
) -> Result<Opened<'a>, DataError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(options.delimiter)
        .has_headers(true)
        .from_reader(bytes);
    let lines = Lines::new(bytes);
    let header = reader
        .headers()
        .map_err(|e| csv_error(path, &lines, e))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    Ok((reader, lines, header))
}

/// The header's columns whose first row reads as a timestamp (under `time_format`, or a format
/// the loader detects; bare years such as `1700` are left out, as a column of numbers reads so
/// too), in header order.
pub(super) fn time_columns(
    path: &str,
    bytes: &[u8],
    options: &CsvOptions,
) -> Result<Vec<String>, DataError> {
    let reads = |_: &str, v: &str| match &options.time_format {
        Some(f) => parse_time(v, TimeFormat::Given, Some(f)).is_some(),
        None => detect_format(v).is_some_and(|f| f != TimeFormat::Year),
    };
    first_row_columns(path, bytes, options, reads)
}

/// The columns other than the time column whose first row reads as a number, in header order.
pub(super) fn number_columns(
    path: &str,
    bytes: &[u8],
    options: &CsvOptions,
) -> Result<Vec<String>, DataError> {
    let reads =
        |h: &str, v: &str| h != options.time_column && parse_number(v.trim(), options).is_some();
    first_row_columns(path, bytes, options, reads)
}

/// The header's names whose first row's value passes `reads(name, value)`.
fn first_row_columns(
    path: &str,
    bytes: &[u8],
    options: &CsvOptions,
    reads: impl Fn(&str, &str) -> bool,
) -> Result<Vec<String>, DataError> {
    let (mut reader, _, header) = open(path, bytes, options)?;
    let Some(Ok(first)) = reader.records().next() else {
        return Ok(Vec::new());
    };
    Ok(header
        .iter()
        .zip(first.iter())
        .filter(|(h, v)| reads(h, v))
        .map(|(h, _)| h.clone())
        .collect())
}

/// Where the options' columns are in the header.
struct Layout {
    time: usize,
    id: Option<usize>,
    /// The value columns, in the options' order (or the file's).
    values: Vec<usize>,
    /// Their names.
    columns: Vec<String>,
}

impl Layout {
    fn of(header: &[String], options: &CsvOptions, path: &str) -> Result<Self, DataError> {
        if header.iter().all(|h| h.is_empty()) {
            return Err(DataError::Empty {
                path: path.into(),
                message: "the file is empty: expected a header line naming the columns".into(),
            });
        }
        let mut seen = HashMap::new();
        for h in header {
            if seen.insert(h.as_str(), ()).is_some() {
                return Err(DataError::DuplicateColumn {
                    path: path.into(),
                    column: h.clone(),
                });
            }
        }
        let find = |name: &str, option: &str| find_column(header, name, option, path, options);
        let time = find(&options.time_column, "time column")?;
        let id = match &options.id_column {
            Some(id) => Some(find(id, "id column")?),
            None => None,
        };
        let values: Vec<usize> = match &options.columns {
            Some(cols) => cols
                .iter()
                .map(|c| find(c, "columns"))
                .collect::<Result<_, _>>()?,
            None => (0..header.len())
                .filter(|i| *i != time && Some(*i) != id)
                .collect(),
        };
        if values.is_empty() {
            return Err(DataError::Empty {
                path: path.into(),
                message: format!("no value columns besides '{}'", options.time_column),
            });
        }
        let columns = values.iter().map(|i| header[*i].clone()).collect();
        Ok(Self {
            time,
            id,
            values,
            columns,
        })
    }
}

/// A file's rows, not yet validated: one group per series id (one group without an id column),
/// in the order of each id's first row.
pub(super) struct Parsed {
    pub(super) groups: Vec<(String, Vec<RawRow>)>,
    /// The value columns' names.
    pub(super) columns: Vec<String>,
    /// Whether the file has an id column (long format).
    pub(super) has_id: bool,
}

/// Parses the file's bytes into rows grouped by series id.
pub(super) fn parse(path: &str, bytes: &[u8], options: &CsvOptions) -> Result<Parsed, DataError> {
    let (mut reader, mut lines, header) = open(path, bytes, options)?;
    let layout = Layout::of(&header, options, path)?;
    let mut rows = RowParser {
        path,
        options,
        layout: &layout,
        format: options.time_format.as_ref().map(|_| TimeFormat::Given),
    };
    let mut groups: Vec<(String, Vec<RawRow>)> = Vec::new();
    let mut group_of: HashMap<String, usize> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, &lines, e))?;
        let start = record.position().map(|p| p.byte() as usize).unwrap_or(0);
        let line = lines.advance_to(start);
        let (id, row) = rows.row(&record, line)?;
        let g = *group_of.entry(id.clone()).or_insert_with(|| {
            groups.push((id, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(row);
    }
    if groups.is_empty() {
        return Err(DataError::Empty {
            path: path.into(),
            message: "the file has a header but no data rows".into(),
        });
    }
    Ok(Parsed {
        groups,
        columns: layout.columns,
        has_id: layout.id.is_some(),
    })
}

/// Reads one record after another; the first timestamp fixes the format when none was given.
struct RowParser<'a> {
    path: &'a str,
    options: &'a CsvOptions,
    layout: &'a Layout,
    format: Option<TimeFormat>,
}

impl RowParser<'_> {
    /// The record's series id and row.
    fn row(
        &mut self,
        record: &csv::StringRecord,
        line: u64,
    ) -> Result<(String, RawRow), DataError> {
        let cell = |i: usize| record.get(i).unwrap_or("");
        let time = self.time(cell(self.layout.time), line)?;
        let mut values = Vec::with_capacity(self.layout.values.len());
        for (k, &i) in self.layout.values.iter().enumerate() {
            values.push(self.value(cell(i).trim(), k, line)?);
        }
        let id = self
            .layout
            .id
            .map(|i| cell(i).trim().to_string())
            .unwrap_or_default();
        Ok((id, RawRow { line, time, values }))
    }

    fn time(&mut self, text: &str, line: u64) -> Result<NaiveDateTime, DataError> {
        let (path, options) = (self.path, self.options);
        let bad = |hint: String| DataError::BadTimestamp {
            path: path.into(),
            line,
            column: options.time_column.clone(),
            value: text.into(),
            hint,
        };
        let format = match self.format {
            Some(f) => f,
            None => {
                let f = detect_format(text).ok_or_else(|| bad(undetected_hint(text)))?;
                self.format = Some(f);
                f
            }
        };
        parse_time(text, format, options.time_format.as_deref()).ok_or_else(|| {
            bad(match &options.time_format {
                Some(f) => format!("expected format '{f}'"),
                None => format!("it does not match the format of the first row; give the format: {TIME_FORMAT_OPTION}"),
            })
        })
    }

    /// Value column `k`'s cell: `None` when missing (and the policy allows it).
    fn value(&self, text: &str, k: usize, line: u64) -> Result<Option<f32>, DataError> {
        let column = || self.layout.columns[k].clone();
        let path = || self.path.to_string();
        if is_missing(text) {
            if self.options.missing == MissingPolicy::Error {
                return Err(DataError::Missing {
                    path: path(),
                    line,
                    column: column(),
                    value: text.into(),
                });
            }
            return Ok(None);
        }
        let v: f64 = parse_number(text, self.options).ok_or_else(|| DataError::NonNumeric {
            path: path(),
            line,
            column: column(),
            value: text.into(),
            hint: number_hint(text, self.options),
        })?;
        if !v.is_finite() || v.abs() > f32::MAX as f64 {
            return Err(DataError::NonFinite {
                path: path(),
                line,
                column: column(),
                value: text.into(),
            });
        }
        Ok(Some(v as f32))
    }
}
