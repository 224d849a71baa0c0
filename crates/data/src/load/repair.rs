//! One series' parsed rows to a validated [`Series`], in four steps, each under the user's
//! policy: order, repeated timestamps, the sampling step and its gaps, missing values.

use chrono::NaiveDateTime;

use super::parse::RawRow;
use super::{CsvOptions, DuplicatePolicy, FilledGap, GapPolicy, MissingPolicy, Repairs};
use crate::error::DataError;
use crate::frequency::{infer_frequency, Frequency};
use crate::series::Series;

/// Validates and repairs one series' rows: order, duplicates, frequency, gaps, missing values;
/// returns the series and what the policies changed.
pub(super) fn build(
    path: &str,
    name: &str,
    id: &str,
    rows: Vec<RawRow>,
    columns: &[String],
    options: &CsvOptions,
) -> Result<(Series, Repairs), DataError> {
    let read = rows.len();
    let merged = merge_duplicates(path, rows, options.duplicates)?;
    let mut filled = vec![0usize; columns.len()];
    for row in &merged {
        for (n, v) in filled.iter_mut().zip(&row.values) {
            *n += v.is_none() as usize;
        }
    }
    let times: Vec<NaiveDateTime> = merged.iter().map(|r| r.time).collect();
    let frequency = options.frequency.or_else(|| infer_frequency(&times));
    // Irregular rows have no grid to check against: one segment, as they come.
    let grid = if options.irregular { None } else { frequency };
    let laid = lay_out(path, &merged, grid, options.gaps, columns.len())?;
    // Inserted gap rows are always interpolated.
    let gap_rows_present = laid.timestamps.len() != merged.len();
    let policy = match (options.missing, gap_rows_present) {
        (MissingPolicy::Error, true) => MissingPolicy::Interpolate,
        (p, _) => p,
    };
    let values = fill_missing(&laid, columns, policy).map_err(|k| DataError::AllMissing {
        path: path.into(),
        column: columns[k].clone(),
        series: if id.is_empty() {
            String::new()
        } else {
            format!(" in series '{id}'")
        },
    })?;
    let longest_gap = grid
        .filter(|_| options.gaps == GapPolicy::Interpolate)
        .and_then(|step| {
            merged
                .windows(2)
                .filter_map(|w| {
                    let steps = step.steps_between(w[0].time, w[1].time)?;
                    (steps > 1).then(|| FilledGap {
                        series: id.to_string(),
                        after: w[0].time,
                        before: w[1].time,
                        rows: steps as usize - 1,
                    })
                })
                .max_by_key(|g| g.rows)
        });
    let repairs = Repairs {
        duplicate_rows: read - merged.len(),
        inserted_rows: laid.timestamps.len() - merged.len(),
        longest_gap,
        kept_gaps: if options.gaps == GapPolicy::Keep {
            laid.segments.len() - 1
        } else {
            0
        },
        filled,
    };
    let series = Series {
        name: name.into(),
        timestamps: laid.timestamps,
        columns: columns.to_vec(),
        values,
        segments: laid.segments,
        frequency,
    };
    Ok((series, repairs))
}

/// Steps 1 and 2: rows in time order (an error otherwise), and one row per timestamp as the
/// policy says (`mean` and `sum` leave missing cells out).
fn merge_duplicates(
    path: &str,
    rows: Vec<RawRow>,
    policy: DuplicatePolicy,
) -> Result<Vec<RawRow>, DataError> {
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
                match policy {
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
    if policy == DuplicatePolicy::Mean {
        for (row, count) in merged.iter_mut().zip(&counts) {
            for (v, n) in row.values.iter_mut().zip(count) {
                if let Some(v) = v.as_mut() {
                    *v /= *n as f32;
                }
            }
        }
    }
    Ok(merged)
}

/// The rows on the time grid: timestamps, cells `[rows, width]` (`None` where missing or
/// inserted into a gap) and the segments between kept gaps.
struct Laid {
    timestamps: Vec<NaiveDateTime>,
    cells: Vec<Option<f32>>,
    segments: Vec<std::ops::Range<usize>>,
    width: usize,
}

/// Step 3: every step between rows a whole number of the sampling step (an error otherwise), and
/// gaps refused, kept as segment boundaries, or filled with rows to interpolate.
fn lay_out(
    path: &str,
    merged: &[RawRow],
    frequency: Option<Frequency>,
    gaps: GapPolicy,
    width: usize,
) -> Result<Laid, DataError> {
    let mut laid = Laid {
        timestamps: Vec::with_capacity(merged.len()),
        cells: Vec::with_capacity(merged.len() * width),
        segments: Vec::new(),
        width,
    };
    let mut segment_start = 0;
    let mut invented = 0i64;
    for (i, row) in merged.iter().enumerate() {
        if let (Some(step), true) = (frequency, i > 0) {
            let prev = merged[i - 1].time;
            let Some(steps) = step.steps_between(prev, row.time) else {
                let months = step.months().is_some()
                    || (28..=31).contains(&(step.nominal().num_seconds() / 86_400));
                return Err(DataError::Irregular {
                    path: path.into(),
                    line: row.line,
                    previous: prev.to_string(),
                    current: row.time.to_string(),
                    frequency: step.to_string(),
                    hint: if months {
                        "monthly rows must fall on one day of the month (or each on its month's last day) at one time of day"
                    } else {
                        "give the frequency (CsvOptions::frequency) or resample (data.resample in gatecast, e.g. \"1d\")"
                    },
                });
            };
            let missing = steps - 1;
            if missing > 0 {
                match gaps {
                    GapPolicy::Error => {
                        return Err(DataError::Gap {
                            path: path.into(),
                            line: row.line,
                            previous: prev.to_string(),
                            current: row.time.to_string(),
                            missing,
                            frequency: step.to_string(),
                        })
                    }
                    GapPolicy::Keep => {
                        laid.segments.push(segment_start..laid.timestamps.len());
                        segment_start = laid.timestamps.len();
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
                                frequency: step.to_string(),
                            });
                        }
                        // Rows whose cells are filled by linear interpolation in step 4.
                        for k in 1..=missing {
                            laid.timestamps.push(step.add(prev, k));
                            laid.cells.extend(std::iter::repeat_n(None, width));
                        }
                    }
                }
            }
        }
        laid.timestamps.push(row.time);
        laid.cells.extend(row.values.iter().copied());
    }
    laid.segments.push(segment_start..laid.timestamps.len());
    Ok(laid)
}

/// Step 4: missing values filled within each segment, `[rows, width]`; `Err(k)` when column `k`
/// has no value at all in a segment.
fn fill_missing(laid: &Laid, columns: &[String], policy: MissingPolicy) -> Result<Vec<f32>, usize> {
    let width = laid.width;
    debug_assert_eq!(columns.len(), width);
    let mut values = vec![0.0f32; laid.cells.len()];
    for seg in &laid.segments {
        for k in 0..width {
            let column: Vec<Option<f32>> = seg.clone().map(|r| laid.cells[r * width + k]).collect();
            let filled = fill(&column, policy).ok_or(k)?;
            for (r, v) in seg.clone().zip(filled) {
                values[r * width + k] = v;
            }
        }
    }
    Ok(values)
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
