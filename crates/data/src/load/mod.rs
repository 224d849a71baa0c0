//! CSV files to validated [`Series`]: the options and policies, and the entry points. Parsing
//! (header, timestamps, numbers) is in `parse.rs`; validation and repair of one series' rows
//! (order, duplicates, gaps, missing values) in `repair.rs`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::series::Series;

mod parse;
mod repair;
mod statics;

pub use statics::{load_static_columns, StaticColumns};

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
    /// value that follows. Also read as `ffill`, pandas' name.
    #[serde(alias = "ffill")]
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
    /// Numbers are written with a decimal comma (`12,5`), as spreadsheets in much of Europe
    /// export them; the delimiter is then another character (`;`).
    pub decimal_comma: bool,
    /// Missing values.
    pub missing: MissingPolicy,
    /// Repeated timestamps.
    pub duplicates: DuplicatePolicy,
    /// Missing rows.
    pub gaps: GapPolicy,
    /// The sampling step; `None` infers the most common step (calendar months where the rows
    /// fall on one day of the month, or on months' last days).
    pub frequency: Option<crate::Frequency>,
    /// Take the rows as they come, at any times (a transaction log), with no sampling step to
    /// keep and so no gaps: for a series that is resampled next ([`crate::resample()`]), which
    /// puts it on a regular grid. Missing cells are filled from the rows before and after.
    pub irregular: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            time_column: "date".into(),
            time_format: None,
            columns: None,
            id_column: None,
            delimiter: b',',
            decimal_comma: false,
            missing: MissingPolicy::Error,
            duplicates: DuplicatePolicy::Error,
            gaps: GapPolicy::Error,
            frequency: None,
            irregular: false,
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

/// What a file's repair policies changed on the way to a [`Series`], so that a caller can say
/// so: duplicate rows merged, rows inserted into gaps, gaps kept, missing cells filled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repairs {
    /// Rows whose timestamp repeats the row before, merged into it (`duplicates`).
    pub duplicate_rows: usize,
    /// Rows inserted into gaps and interpolated (`gaps = interpolate`).
    pub inserted_rows: usize,
    /// Gaps kept as boundaries between segments (`gaps = keep`).
    pub kept_gaps: usize,
    /// Missing cells of the file filled by `missing`, per value column in the series' order
    /// (not counting the cells of inserted rows).
    pub filled: Vec<usize>,
    /// The longest run of rows inserted into one gap (`gaps = interpolate`), where any were:
    /// interpolation across a long gap draws a straight line the model then trains on.
    pub longest_gap: Option<FilledGap>,
}

/// One gap filled by interpolation: the rows inserted between two rows of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilledGap {
    /// The series' id in a long-format file (empty for a file of one series).
    pub series: String,
    /// The file's row before the gap.
    pub after: chrono::NaiveDateTime,
    /// The file's row after it.
    pub before: chrono::NaiveDateTime,
    /// Rows inserted.
    pub rows: usize,
}

impl Repairs {
    /// Whether the file was taken as it is.
    pub fn is_empty(&self) -> bool {
        self.duplicate_rows == 0
            && self.inserted_rows == 0
            && self.kept_gaps == 0
            && self.filled.iter().all(|&n| n == 0)
    }

    /// Adds another series' repairs (the same columns), for a panel's total.
    pub fn add(&mut self, other: &Repairs) {
        self.duplicate_rows += other.duplicate_rows;
        self.inserted_rows += other.inserted_rows;
        self.kept_gaps += other.kept_gaps;
        if self.filled.len() < other.filled.len() {
            self.filled.resize(other.filled.len(), 0);
        }
        for (a, b) in self.filled.iter_mut().zip(&other.filled) {
            *a += b;
        }
        if let Some(g) = &other.longest_gap {
            if self
                .longest_gap
                .as_ref()
                .is_none_or(|mine| g.rows > mine.rows)
            {
                self.longest_gap = Some(g.clone());
            }
        }
    }

    /// One line on what changed, naming each policy by its `data.` option, or `None` when
    /// nothing did. `columns` names `filled`'s entries.
    pub fn describe(&self, columns: &[String], options: &CsvOptions) -> Option<String> {
        let mut parts = Vec::new();
        if self.duplicate_rows > 0 {
            let (policy, what) = match options.duplicates {
                DuplicatePolicy::First => ("first", "dropped, the first row of each time kept"),
                DuplicatePolicy::Mean => ("mean", "averaged into the first"),
                DuplicatePolicy::Sum => ("sum", "summed into the first"),
                DuplicatePolicy::Error => ("error", "merged"),
            };
            parts.push(format!(
                "{} row(s) repeating a timestamp {what} (data.duplicates = \"{policy}\")",
                self.duplicate_rows
            ));
        }
        if self.kept_gaps > 0 {
            parts.push(format!(
                "{} gap(s) kept, no window crosses one (data.gaps = \"keep\")",
                self.kept_gaps
            ));
        }
        if self.inserted_rows > 0 {
            let longest = match &self.longest_gap {
                Some(g) if g.rows > 1 => {
                    let series = if g.series.is_empty() {
                        String::new()
                    } else {
                        format!(" in series {}", g.series)
                    };
                    format!(
                        "; the longest {} rows{series}, between {} and {}",
                        g.rows, g.after, g.before
                    )
                }
                _ => String::new(),
            };
            parts.push(format!(
                "{} row(s) inserted into gaps and interpolated (data.gaps = \"interpolate\"{longest})",
                self.inserted_rows
            ));
        }
        let filled: usize = self.filled.iter().sum();
        if filled > 0 {
            let policy = match options.missing {
                MissingPolicy::Interpolate => "interpolate",
                MissingPolicy::ForwardFill => "forward_fill",
                MissingPolicy::Error => "error",
            };
            let per_column: Vec<String> = columns
                .iter()
                .zip(&self.filled)
                .filter(|(_, &n)| n > 0)
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            parts.push(format!(
                "{filled} missing value(s) filled (data.missing = \"{policy}\"; {})",
                per_column.join(", ")
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Loads a single-series CSV file. Errors if `id_column` is set: use [`load_panel`] for those.
pub fn load_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Series, DataError> {
    load_csv_with_repairs(path, options).map(|(series, _)| series)
}

/// [`load_csv`], with what the policies changed.
pub fn load_csv_with_repairs(
    path: impl AsRef<Path>,
    options: &CsvOptions,
) -> Result<(Series, Repairs), DataError> {
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
    let loaded = load_panel_with_repairs(path, options)?;
    Ok(loaded.into_iter().map(|(series, _)| series).collect())
}

/// [`load_panel`], with what the policies changed in each series.
pub fn load_panel_with_repairs(
    path: impl AsRef<Path>,
    options: &CsvOptions,
) -> Result<Vec<(Series, Repairs)>, DataError> {
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
    let loaded = load_bytes(name, text.as_bytes(), options)?;
    Ok(loaded.into_iter().map(|(series, _)| series).collect())
}

/// The columns of the CSV file at `path` whose first row reads as a timestamp (as `options`
/// would read it: its delimiter and `time_format`; bare years left out), in header order: to
/// find a file's time column when none is named.
pub fn time_columns(
    path: impl AsRef<Path>,
    options: &CsvOptions,
) -> Result<Vec<String>, DataError> {
    let (name, bytes) = read_bytes(path.as_ref())?;
    parse::time_columns(&name, &bytes, options)
}

/// The columns of the CSV file at `path`, other than `options.time_column`, whose first row
/// reads as a number (with `options`' delimiter and decimal mark), in header order: the
/// candidates for a target when none is named.
pub fn number_columns(
    path: impl AsRef<Path>,
    options: &CsvOptions,
) -> Result<Vec<String>, DataError> {
    let (name, bytes) = read_bytes(path.as_ref())?;
    parse::number_columns(&name, &bytes, options)
}

/// The file's name as messages give it, and its bytes.
fn read_bytes(path: &Path) -> Result<(String, Vec<u8>), DataError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| DataError::Io {
        path: name.clone(),
        error,
    })?;
    Ok((name, bytes))
}

fn read(path: &Path, options: &CsvOptions) -> Result<Vec<(Series, Repairs)>, DataError> {
    let (name, bytes) = read_bytes(path)?;
    load_bytes(&name, &bytes, options)
}

/// Parses a file's bytes and validates and repairs each of its series.
fn load_bytes(
    path: &str,
    bytes: &[u8],
    options: &CsvOptions,
) -> Result<Vec<(Series, Repairs)>, DataError> {
    let parsed = parse::parse(path, bytes, options)?;
    parsed
        .groups
        .into_iter()
        .map(|(id, rows)| {
            let name = if parsed.has_id {
                format!("{path} [{id}]")
            } else {
                path.to_string()
            };
            repair::build(path, &name, &id, rows, &parsed.columns, options)
        })
        .collect()
}
