//! The first stage of every run, and of `evaluate` and `forecast` on a finished one: the data as
//! the model reads it. One loader for all of them, so the preparation a model was trained on is
//! the preparation it forecasts from.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::NaiveDateTime;
use gatecast_data::{
    add_calendar, load_csv_with_repairs, load_panel_with_repairs, CsvOptions, DataError,
    DuplicatePolicy, MissingPolicy, Repairs, Scaler, Series, TimeSplit, WindowConfig,
};

use crate::config::{DataConfig, Experiment};

/// The cleaned, split and scaled data of an experiment.
pub struct Prepared {
    /// The series in original units, calendar columns appended.
    pub raw: Series,
    /// The same, scaled by `scaler`.
    pub scaled: Arc<Series>,
    /// Fitted on the training rows only.
    pub scaler: Scaler,
    /// Row ranges.
    pub split: TimeSplit,
    /// Window columns.
    pub window: WindowConfig,
    /// Column index of each target.
    pub targets: Vec<usize>,
    /// The seasonal naive's and MASE's period: `data.season`, or inferred from the sampling
    /// step where that is 0.
    pub season: usize,
}

/// A CSV file as a run's model reads it: loaded and cleaned with `[data]`'s options, resampled,
/// calendar covariates appended.
#[derive(Clone)]
pub(super) struct Loaded {
    /// Targets, covariates, then the calendar columns.
    pub(super) series: Series,
    /// The window's input columns: targets, covariates, calendar columns.
    pub(super) inputs: Vec<String>,
    /// The calendar columns (known-future covariates).
    pub(super) future: Vec<String>,
}

impl Loaded {
    /// The window over these columns: `lookback` steps of every input, `horizon` steps of the
    /// targets (and of the future covariates).
    pub(super) fn window(&self, exp: &Experiment) -> WindowConfig {
        let mut window = WindowConfig::new(
            exp.window.lookback,
            exp.window.horizon,
            self.inputs.clone(),
            exp.data.targets.clone(),
        );
        window.future = self.future.clone();
        window
    }
}

/// Loads `path` as `[data]` says: the one preparation `train`, `evaluate` and `forecast` share.
pub(super) fn load(d: &DataConfig, path: &Path) -> Result<Loaded> {
    load_noted(d, path, true)
}

/// [`load`], saying what the repair policies changed only where `noted` (a run that loads the
/// same file again says it once).
pub(super) fn load_noted(d: &DataConfig, path: &Path, noted: bool) -> Result<Loaded> {
    let (columns, options) = csv_options(d);
    let (series, repairs) =
        load_csv_with_repairs(path, &options).map_err(|e| blame_option(e, d))?;
    if noted {
        note_repairs(path, &series.columns, &repairs, &options);
    }
    let mut series = resampled(d, series)?;
    // The known-future columns: the file's (the last value columns), then the calendar's
    // (appended after them), so that they are the series' last columns.
    let mut future = d.future_covariates.clone();
    future.extend(add_calendar(&mut series, &d.calendar));
    let mut inputs = columns;
    inputs.extend(future.iter().skip(d.future_covariates.len()).cloned());
    Ok(Loaded {
        series,
        inputs,
        future,
    })
}

/// The sampling step of `[data]`'s file as a run reads it (the resampled step where
/// `data.resample` is set) and its rows (a panel's longest series'), or
/// `None` where the file does not load or has one row: the run that follows then reports why.
pub fn file_step(d: &DataConfig) -> Option<(gatecast_data::Frequency, usize)> {
    let (_, options) = csv_options(d);
    let path = Path::new(&d.path);
    let series = if d.id_column.is_empty() {
        load_csv_with_repairs(path, &options).ok()?.0
    } else {
        load_panel_with_repairs(path, &options)
            .ok()?
            .into_iter()
            .map(|(s, _)| s)
            .filter(|s| s.frequency.is_some())
            .max_by_key(|s| s.rows())?
    };
    let series = resampled(d, series).ok()?;
    Some((series.frequency?, series.rows()))
}

/// `series` aggregated to `data.resample`'s step, or as it is where that is unset.
fn resampled(d: &DataConfig, series: Series) -> Result<Series> {
    if d.resample.is_empty() {
        return Ok(series);
    }
    let every = gatecast_data::parse_frequency(&d.resample)?;
    Ok(gatecast_data::resample(&series, every, d.aggregate)?)
}

/// Says on standard error what the repair policies changed in `path` (duplicates merged, gaps
/// kept or filled, missing values filled), so that no repair goes unseen; silent when the file
/// was taken as it is.
fn note_repairs(path: &Path, columns: &[String], repairs: &Repairs, options: &CsvOptions) {
    if let Some(what) = repairs.describe(columns, options) {
        crate::tell!("note: {}: {what}", path.display());
    }
}

/// A panel file's series, loaded as `[data]` says, with one note on what the repair policies
/// changed, each resampled where `data.resample` asks: one series per id of `data.id_column`,
/// or, without an id column (a distribution head on a file of series side by side), one per
/// target column ([`by_target`]).
pub(crate) fn load_panel_noted(
    d: &DataConfig,
    path: &Path,
    options: &CsvOptions,
) -> Result<Vec<Series>> {
    let series = if options.id_column.is_some() {
        let loaded = load_panel_with_repairs(path, options).map_err(|e| blame_option(e, d))?;
        let mut total = Repairs::default();
        let repaired = loaded.iter().filter(|(_, r)| !r.is_empty()).count();
        for (_, r) in &loaded {
            total.add(r);
        }
        let columns = loaded.first().map_or(&[][..], |(s, _)| &s.columns[..]);
        if let Some(what) = total.describe(columns, options) {
            crate::tell!(
                "note: {}: in {repaired} of {} series, {what}",
                path.display(),
                loaded.len()
            );
        }
        loaded.into_iter().map(|(s, _)| s).collect()
    } else {
        let (series, repairs) =
            load_csv_with_repairs(path, options).map_err(|e| blame_option(e, d))?;
        note_repairs(path, &series.columns, &repairs, options);
        by_target(&series, &d.targets, path)
    };
    series
        .into_iter()
        .map(|s| {
            let name = s.name.clone();
            resampled(d, s).with_context(|| format!("{}: series {name}", path.display()))
        })
        .collect()
}

/// A file of series side by side as a panel: one series per column of `targets`, named `path
/// [target]` as the panel loader names a long file's series (so its id is the column's name),
/// each with the file's other columns (the known-future ones) after its own.
fn by_target(series: &Series, targets: &[String], path: &Path) -> Vec<Series> {
    let width = series.width();
    let others: Vec<usize> = (0..width)
        .filter(|&c| !targets.contains(&series.columns[c]))
        .collect();
    targets
        .iter()
        .filter_map(|t| series.columns.iter().position(|c| c == t))
        .map(|k| {
            let keep: Vec<usize> = std::iter::once(k).chain(others.iter().copied()).collect();
            Series {
                name: format!("{} [{}]", path.display(), series.columns[k]),
                timestamps: series.timestamps.clone(),
                columns: keep.iter().map(|&c| series.columns[c].clone()).collect(),
                values: series
                    .values
                    .chunks(width)
                    .flat_map(|row| keep.iter().map(move |&c| row[c]))
                    .collect(),
                segments: series.segments.clone(),
                frequency: series.frequency,
            }
        })
        .collect()
}

/// The value columns (targets, then covariates) and the loader options of `[data]` (with its
/// id column for a panel).
pub(crate) fn csv_options(d: &DataConfig) -> (Vec<String>, CsvOptions) {
    let mut columns = d.targets.clone();
    for c in d.covariates.iter().chain(&d.future_covariates) {
        if !columns.contains(c) {
            columns.push(c.clone());
        }
    }
    let options = CsvOptions {
        time_column: d.time_column.clone(),
        time_format: (!d.time_format.is_empty()).then(|| d.time_format.clone()),
        columns: Some(columns.clone()),
        id_column: (!d.id_column.is_empty()).then(|| d.id_column.clone()),
        delimiter: d.delimiter_byte().unwrap_or(b','),
        decimal_comma: d.decimal == ",",
        missing: d.missing,
        duplicates: d.duplicates,
        gaps: d.gaps,
        frequency: None,
        // A file resampled next may be a log at any times; resampling puts it on the grid.
        irregular: !d.resample.is_empty(),
    };
    (columns, options)
}

/// How a `--future` file is read: the time column (and the id column, for a panel) and the
/// known-future columns, the rows as they come (only the steps forecast matter, so there is no
/// sampling step to keep), no missing cell and no repeated time.
pub(crate) fn future_file_options(d: &DataConfig) -> CsvOptions {
    let (_, mut options) = csv_options(d);
    options.columns = Some(d.future_covariates.clone());
    options.irregular = true;
    options.missing = MissingPolicy::Error;
    options.duplicates = DuplicatePolicy::Error;
    options
}

/// An error for a `--future` file given to a run that reads no known-future columns.
pub(crate) fn refuse_unread_future(future: Option<&Path>) -> Result<()> {
    match future {
        Some(path) => anyhow::bail!(
            "--future {}: the run reads no known-future columns (data.future_covariates is empty)",
            path.display()
        ),
        None => Ok(()),
    }
}

/// `series`' values at `times`, `[times, columns]` row-major, from a `--future` file; an error
/// names `what` (the file, and the series of a panel) and the first step forecast it lacks.
pub(crate) fn values_at(series: &Series, times: &[NaiveDateTime], what: &str) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(times.len() * series.width());
    for (k, t) in times.iter().enumerate() {
        let Ok(row) = series.timestamps.binary_search(t) else {
            anyhow::bail!(
                "{what}: no row for {t}, step {} of the forecast (the file needs a row for each step from {} to {})",
                k + 1,
                times[0],
                times[times.len() - 1]
            );
        };
        out.extend_from_slice(series.row(row));
    }
    Ok(out)
}

/// An unknown column blamed on the option that named it.
pub(crate) fn blame_option(e: DataError, d: &DataConfig) -> anyhow::Error {
    match e {
        DataError::UnknownColumn {
            path,
            column,
            option,
            available,
        } => anyhow::Error::new(DataError::UnknownColumn {
            option: if option.starts_with("data.") {
                option
            } else if option == "time column" {
                "data.time_column, --time-column".into()
            } else if option == "id column" {
                "data.id_column, --id-column".into()
            } else if d.targets.contains(&column) {
                "data.targets, --target".into()
            } else if d.future_covariates.contains(&column) {
                "data.future_covariates, --future-covariates".into()
            } else {
                "data.covariates, --covariates".into()
            },
            path,
            column,
            available,
        }),
        e => e.into(),
    }
}

/// Loads, validates, adds calendar covariates, splits and scales the experiment's data.
pub fn prepare(exp: &Experiment) -> Result<Prepared> {
    prepare_noted(exp, true)
}

/// [`prepare`], with its notes (repairs, a season longer than the look-back) only where
/// `noted`: a backtest's later folds prepare the same file again.
pub(super) fn prepare_noted(exp: &Experiment, noted: bool) -> Result<Prepared> {
    let d = &exp.data;
    let loaded = load_noted(d, Path::new(&d.path), noted)?;
    let raw = &loaded.series;
    let lookback = exp.window.lookback;
    let split = match d.split_rows {
        Some([a, b, c]) => {
            TimeSplit::by_rows(raw.rows(), a, b, c, lookback).with_context(|| {
                format!(
                    "{}: {} rows, data.split_rows = {:?} with window.lookback = {lookback}",
                    d.path,
                    raw.rows(),
                    [a, b, c]
                )
            })?
        }
        None => TimeSplit::by_ratios(raw.rows(), (d.split[0], d.split[1], d.split[2]), lookback)
            .with_context(|| {
                format!(
                    "{}: {} rows, data.split = {:?} with window.lookback = {lookback}",
                    d.path,
                    raw.rows(),
                    d.split
                )
            })?,
    };
    let scaler = Scaler::fit(exp.scaler_kind(), raw, split.train.clone());
    let scaled = Arc::new(scaler.transform(raw));
    let window = loaded.window(exp);
    let targets = raw.column_indices(&d.targets, "data.targets")?;
    let season = d.season_for(raw.frequency);
    let l = exp.window.lookback;
    if noted && season > l {
        crate::tell!(
            "note: no seasonal_naive({season}) row: it repeats the last season, and window.lookback = {l} holds less (data.season = {season})"
        );
    }
    Ok(Prepared {
        raw: loaded.series,
        scaled,
        scaler,
        split,
        window,
        targets,
        season,
    })
}
