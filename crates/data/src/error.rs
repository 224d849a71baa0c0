//! What can be wrong with a time-series file, said so the user can fix it.

use thiserror::Error;

/// An error from loading, validating or windowing a series. Messages name the file, the line
/// (1-based, the header is line 1) and the column where there is one, and what would fix it.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {error}")]
    Io {
        /// The file.
        path: String,
        /// The OS error (in the message, so not also a `source()`).
        error: std::io::Error,
    },
    /// The CSV itself is malformed (ragged row, bad quoting, not UTF-8).
    #[error("{path}:{line}: malformed CSV: {message}")]
    Csv {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// What the CSV parser said.
        message: String,
    },
    /// The file has no header or no data rows.
    #[error("{path}: {message}")]
    Empty {
        /// The file.
        path: String,
        /// What is missing.
        message: String,
    },
    /// A column named in the options is not in the header.
    #[error("{path}: no column named '{column}' (for {option}); the header has: {available}")]
    UnknownColumn {
        /// The file.
        path: String,
        /// The requested name.
        column: String,
        /// Which option asked for it.
        option: String,
        /// The header's names, comma-separated.
        available: String,
    },
    /// The same column name appears twice in the header.
    #[error("{path}:1: column '{column}' appears more than once in the header")]
    DuplicateColumn {
        /// The file.
        path: String,
        /// The repeated name.
        column: String,
    },
    /// A timestamp could not be parsed.
    #[error("{path}:{line}: column '{column}': cannot parse '{value}' as a timestamp ({hint})")]
    BadTimestamp {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// The time column.
        column: String,
        /// The cell.
        value: String,
        /// Which formats were tried, and how to give one.
        hint: String,
    },
    /// A value cell is not a number.
    #[error("{path}:{line}: column '{column}': '{value}' is not a number{hint}")]
    NonNumeric {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// The column.
        column: String,
        /// The cell.
        value: String,
        /// What may fix it (`; ...`), or empty.
        hint: &'static str,
    },
    /// A value is infinite.
    #[error("{path}:{line}: column '{column}': '{value}' is not finite")]
    NonFinite {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// The column.
        column: String,
        /// The cell.
        value: String,
    },
    /// A value is missing (empty, NA or NaN) and the missing-value policy is `error`.
    #[error("{path}:{line}: column '{column}': missing value ('{value}'); choose a missing-value policy (interpolate or forward_fill) to fill it")]
    Missing {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// The column.
        column: String,
        /// The cell as written.
        value: String,
    },
    /// A column has no value at all in a series (nothing to interpolate from).
    #[error("{path}: column '{column}' has no values{series}")]
    AllMissing {
        /// The file.
        path: String,
        /// The column.
        column: String,
        /// " in series 'id'" for long-format files, else empty.
        series: String,
    },
    /// Timestamps go backwards.
    #[error("{path}:{line}: timestamp {current} is earlier than {previous} on the line before; sort the file by time")]
    NotMonotonic {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// The earlier row's timestamp.
        previous: String,
        /// This row's timestamp.
        current: String,
    },
    /// A timestamp repeats and the duplicate policy is `error`.
    #[error("{path}:{line}: timestamp {timestamp} repeats the line before; choose a duplicate policy (first, mean or sum)")]
    Duplicate {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// The repeated timestamp.
        timestamp: String,
    },
    /// A step between timestamps is not a whole number of the series' frequency.
    #[error("{path}:{line}: step from {previous} to {current} is not a multiple of the frequency ({frequency}); {hint}")]
    Irregular {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// The earlier timestamp.
        previous: String,
        /// This timestamp.
        current: String,
        /// The frequency, e.g. `1h`.
        frequency: String,
        /// What may fix it.
        hint: &'static str,
    },
    /// Rows are missing from a regular series and the gap policy is `error`.
    #[error("{path}:{line}: gap of {missing} missing step(s) between {previous} and {current} at frequency {frequency}; choose a gap policy (interpolate or keep)")]
    Gap {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// Timestamp before the gap.
        previous: String,
        /// Timestamp after the gap.
        current: String,
        /// Number of missing steps.
        missing: i64,
        /// The frequency.
        frequency: String,
    },
    /// Interpolating a gap would invent more rows than the file has (a wrong timestamp, e.g. a
    /// mistyped year, rather than a real outage), or ten times as many over all gaps.
    #[error("{path}:{line}: filling the gap of {missing} missing step(s) between {between} at frequency {frequency} would invent {invented} rows for {rows} real ones: is a timestamp wrong? (the keep gap policy splits the series there instead)")]
    GapTooLong {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// The timestamps before and after the gap, `<before> and <after>`.
        between: String,
        /// Number of missing steps in this gap.
        missing: i64,
        /// Rows invented so far, this gap included.
        invented: i64,
        /// Rows in the file (after merging duplicates).
        rows: usize,
        /// The frequency.
        frequency: String,
    },
    /// A static column's cell: missing, not a number (real columns), or not the series' one
    /// value.
    #[error("{path}:{line}: column '{column}': {message}")]
    BadStatic {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// The column.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// An option value is out of range.
    #[error("invalid {option}: {message}")]
    InvalidOption {
        /// The option, e.g. `lookback`.
        option: String,
        /// What is wrong and what is accepted.
        message: String,
    },
}
