//! A validated, regularly sampled multivariate time series.

use std::ops::Range;

use chrono::NaiveDateTime;

use crate::error::DataError;
use crate::frequency::{infer_frequency, Frequency};

/// A validated time series: strictly increasing timestamps and finite `f32` values.
///
/// Values are stored row-major, `[rows, columns]`, so a window of consecutive rows is one
/// contiguous slice. When the file had gaps kept as gaps, `segments` lists the runs of rows
/// without a gap; windows are only built inside one segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Where the series came from: the file, plus the series id for long-format files.
    pub name: String,
    /// One timestamp per row, strictly increasing.
    pub timestamps: Vec<NaiveDateTime>,
    /// The value columns' names.
    pub columns: Vec<String>,
    /// `[rows, columns]`, row-major.
    pub values: Vec<f32>,
    /// Runs of rows with no gap between them, in order, covering every row.
    pub segments: Vec<Range<usize>>,
    /// The sampling step, when the series has at least two rows.
    pub frequency: Option<Frequency>,
}

impl Series {
    /// Builds a gap-free series from timestamps and row-major values, checking the shapes.
    pub fn new(
        name: impl Into<String>,
        timestamps: Vec<NaiveDateTime>,
        columns: Vec<String>,
        values: Vec<f32>,
    ) -> Result<Self, DataError> {
        let name = name.into();
        if values.len() != timestamps.len() * columns.len() {
            return Err(DataError::InvalidOption {
                option: "values".into(),
                message: format!(
                    "{name}: {} values for {} rows x {} columns",
                    values.len(),
                    timestamps.len(),
                    columns.len()
                ),
            });
        }
        let frequency = infer_frequency(&timestamps);
        let rows = timestamps.len();
        Ok(Self {
            name,
            timestamps,
            columns,
            values,
            segments: std::iter::once(0..rows).collect(),
            frequency,
        })
    }

    /// Whole sampling steps from 1970-01-01T00:00 to row `row`'s timestamp, rounded down: an
    /// absolute step count, the same for the same time in any file of this frequency, from
    /// which a cycle's phase is read (`step mod cycle`; hours since a midnight for hourly data,
    /// so `mod 24` is the hour of day; months since January 1970 for monthly data, so `mod 12`
    /// is the month). `None` without a frequency ([`Frequency::step_number`]).
    pub fn step_number(&self, row: usize) -> Option<i64> {
        self.frequency?.step_number(self.timestamps[row])
    }

    /// Number of rows (time steps).
    pub fn rows(&self) -> usize {
        self.timestamps.len()
    }

    /// Number of value columns.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// One row's values, `[columns]`.
    pub fn row(&self, index: usize) -> &[f32] {
        let w = self.width();
        &self.values[index * w..(index + 1) * w]
    }

    /// One column's values over all rows.
    pub fn column(&self, index: usize) -> Vec<f32> {
        let w = self.width();
        self.values.iter().skip(index).step_by(w).copied().collect()
    }

    /// The index of a column by name, or an error listing the available names.
    pub fn column_index(&self, name: &str, option: &str) -> Result<usize, DataError> {
        self.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| DataError::UnknownColumn {
                path: self.name.clone(),
                column: name.into(),
                option: option.into(),
                available: self.columns.join(", "),
            })
    }

    /// Indices of several columns by name.
    pub fn column_indices(&self, names: &[String], option: &str) -> Result<Vec<usize>, DataError> {
        names.iter().map(|n| self.column_index(n, option)).collect()
    }

    /// The first row at or after `time` (`rows()` when there is none).
    pub fn row_at_or_after(&self, time: NaiveDateTime) -> usize {
        self.timestamps.partition_point(|t| *t < time)
    }

    /// Appends columns, `[rows, extra]` row-major, after the existing ones.
    pub fn append_columns(&mut self, names: Vec<String>, extra: &[f32]) {
        let (w, k, rows) = (self.width(), names.len(), self.rows());
        assert_eq!(extra.len(), rows * k, "one value per row and new column");
        let mut values = Vec::with_capacity(rows * (w + k));
        for r in 0..rows {
            values.extend_from_slice(&self.values[r * w..(r + 1) * w]);
            values.extend_from_slice(&extra[r * k..(r + 1) * k]);
        }
        self.values = values;
        self.columns.extend(names);
    }
}
