//! A finished run at work: its test table again (`evaluate`), and forecasts after the end of
//! new data (`forecast`), both from the run directory.

use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use gatecast_data::Scaler;

use super::fingerprint::DataFingerprint;
use super::intervals::{window_errors, Intervals};
use super::prepare::Prepared;
use super::prepare::{load, prepare, Loaded};
use super::report::{count_targets, forecasts_over};
use super::report::{evaluate_model, TestTable};
use super::saved::{load_model, read_run};
use crate::artifacts::write_atomic;
use crate::config::Experiment;
use crate::model::ForecastModel;

/// Recomputes the test table of a finished run from its artifacts; an error if the data file
/// differs from what the run trained on.
pub fn evaluate(dir: &Path, device: &Device) -> Result<TestTable> {
    evaluate_with(dir, device, false)
}

/// [`evaluate`]; with `allow_changed_data`, changed data is evaluated as it is now, with a
/// warning naming what changed.
pub fn evaluate_with(dir: &Path, device: &Device, allow_changed_data: bool) -> Result<TestTable> {
    // The scaler is refitted on the training rows; reading the saved one checks the run is whole.
    let (exp, _) = read_run(dir)?;
    let p = prepare(&exp)?;
    let now = DataFingerprint::of(&exp.data.path, &p.raw)?;
    DataFingerprint::check(dir, &now, allow_changed_data, "evaluate")?;
    let model = load_model(dir, &exp, &p.window, device)?;
    evaluate_model(&model, &p, &exp, device)
}

/// Forecasts the `horizon` steps after the end of `input` (a CSV with the training columns),
/// prepared exactly as the run's training data was, and writes `time,target,forecast` rows in
/// original units to `output` (or standard output), followed by the run's intervals
/// (`lo80,hi80,lo95,hi95`) when it has them. A run with `data.future_covariates` needs
/// [`forecast_with`].
pub fn forecast(dir: &Path, input: &Path, output: Option<&Path>, device: &Device) -> Result<()> {
    forecast_with(dir, input, None, output, device)
}

/// [`forecast`], with the values of the run's known-future covariates
/// (`data.future_covariates`) for the steps forecast read from `future`: a CSV with the time
/// column and those columns, holding a row for each of the `horizon` steps after `input`'s end.
pub fn forecast_with(
    dir: &Path,
    input: &Path,
    future: Option<&Path>,
    output: Option<&Path>,
    device: &Device,
) -> Result<()> {
    let options = ForecastOptions {
        future,
        ..ForecastOptions::default()
    };
    forecast_options(dir, input, &options, output, device)
}

/// What a forecast after the end of the data reads and writes beside its CSV.
#[derive(Debug, Clone, Copy, Default)]
pub struct ForecastOptions<'a> {
    /// The known-future covariates' values to come ([`forecast_with`]).
    pub future: Option<&'a Path>,
    /// Steps to forecast (`None`: the run's horizon). Past the horizon the forecast is rolled
    /// out, as Darts' `predict(n)` is past its output chunk: each horizon's forecasts join the
    /// input as if they had been observed, and the model forecasts the next horizon from them.
    /// A run with past covariates cannot be rolled out (their values to come are unknown), and
    /// the `future` file then holds the known-future values of whole horizons. Only the first
    /// horizon has intervals: the later steps' errors compound the earlier ones', which no
    /// calibration window measured.
    pub steps: Option<usize>,
    /// A PNG of the input's last values, the forecast of the first target and its first
    /// interval level.
    pub plot: Option<&'a Path>,
}

/// [`forecast_with`] with every [`ForecastOptions`].
pub fn forecast_options(
    dir: &Path,
    input: &Path,
    options: &ForecastOptions,
    output: Option<&Path>,
    device: &Device,
) -> Result<()> {
    let future = options.future;
    let steps = options.steps;
    let (mut exp, scaler) = read_run(dir)?;
    exp.data.path = input.display().to_string();
    let h = exp.window.horizon;
    let n = steps.unwrap_or(h);
    if n == 0 {
        bail!("--steps 0: forecast at least one step");
    }
    // Each horizon past the first compounds the errors before it; a thousand is far past use.
    if n > 1000 * h {
        bail!(
            "--steps {n}: at most 1000 horizons of window.horizon = {h} ({} steps)",
            1000 * h
        );
    }
    if n > h && !exp.data.covariates.is_empty() {
        bail!(
            "--steps {n}: past window.horizon = {h} the forecast is rolled out from its own forecasts, and the run's past covariates ({}) have no values there; forecast {h} steps at a time from inputs that hold them",
            exp.data.covariates.join(", ")
        );
    }
    let loaded = load(&exp.data, input)?;
    DataFingerprint::check_step(dir, input, loaded.series.frequency)?;
    let trained = load_model(dir, &exp, &loaded.window(&exp), device)?;
    let p = input_prepared(&loaded, &exp, &scaler)?;
    let trained_until = DataFingerprint::trained_until(dir)?;
    let recent = recent_intervals(&trained, &p, &exp, trained_until, device)?;
    if let Some(it) = &recent {
        crate::tell!(
            "note: {}: intervals from the model's errors on the input's latest {} complete windows{}",
            input.display(),
            it.windows,
            trained_until
                .map(|t| format!(" after the rows it trained on (to {t})"))
                .unwrap_or_default()
        );
    }
    let model = trained.valid();
    let targets = &p.targets;
    let nt = targets.len();
    // Count targets (as the test split's forecasts, judged on the rows given) are floored at 0.
    let counts = count_targets(&p);
    let mut floored = 0;
    // Each horizon in original units, floored, then joined to the input for the next one.
    let mut rolled = loaded.clone();
    let (mut times, mut values) = (Vec::with_capacity(n), Vec::with_capacity(n * nt));
    while times.len() < n {
        let last = LastWindow::of(&rolled, &exp, &scaler, input, future)?;
        let pred = predict(&model, &last, &rolled, &exp, device)?;
        let mut horizon = vec![0.0f32; h * nt];
        for step in 0..h {
            for (k, &col) in targets.iter().enumerate() {
                let mut v = [pred[step * nt + k]];
                scaler.inverse(col, &mut v);
                if counts[k] && v[0] < 0.0 {
                    floored += usize::from(times.len() + step < n);
                    v[0] = 0.0;
                }
                horizon[step * nt + k] = v[0];
            }
        }
        if times.len() + h < n {
            last.append_to(&mut rolled.series, targets, &horizon);
        }
        times.extend_from_slice(&last.times);
        values.extend_from_slice(&horizon);
    }
    times.truncate(n);
    values.truncate(n * nt);
    let intervals = intervals_or_saved(recent, dir, &exp, input, trained_until)?;
    if n > h {
        crate::tell!(
            "note: {}: steps {} to {n} are forecast from the model's own forecasts, a horizon ({h} steps) at a time, and have no intervals",
            input.display(),
            h + 1
        );
    }
    let mut text = String::from("time,target,forecast");
    if let Some(it) = &intervals {
        for i in 0..it.levels.len() {
            text += &format!(",{}", it.columns(i).join(","));
        }
    }
    text.push('\n');
    for (step, t) in times.iter().enumerate() {
        for k in 0..nt {
            let v = values[step * nt + k];
            text += &format!("{t},{},{v}", exp.data.targets[k]);
            for i in 0..intervals.as_ref().map_or(0, |it| it.levels.len()) {
                let ends = intervals
                    .as_ref()
                    .filter(|_| step < h)
                    .and_then(|it| it.bounds(i, step, k, v));
                match ends {
                    Some((lo, hi)) => text += &format!(",{lo},{hi}"),
                    None => text += ",,",
                }
            }
            text.push('\n');
        }
    }
    if let Some(note) = super::report::floored_note(floored, n * nt) {
        crate::tell!("note: {}: {note}", input.display());
    }
    match output {
        Some(path) => write_atomic(path, text.as_bytes())?,
        None => crate::say!("{text}"),
    }
    if let Some(path) = options.plot {
        let it = intervals.as_ref();
        plot_ahead(path, &loaded.series, targets, &values, it, &exp, input)?;
    }
    Ok(())
}

/// The intervals calibrated on the input (`recent`), or where it held too few windows the
/// run's own from its validation split (`intervals.toml`), with a note saying so.
fn intervals_or_saved(
    recent: Option<Intervals>,
    dir: &Path,
    exp: &Experiment,
    input: &Path,
    trained_until: Option<chrono::NaiveDateTime>,
) -> Result<Option<Intervals>> {
    let h = exp.window.horizon;
    Ok(match recent {
        Some(it) => Some(it),
        None => {
            let saved = Intervals::load(dir, &exp.data.targets, h)?;
            let empty: Vec<String> = saved.as_ref().map_or(Vec::new(), |it| {
                (0..it.levels.len())
                    .filter(|&i| !it.has(i))
                    .map(|i| format!("{:.0}%", 100.0 * it.levels[i]))
                    .collect()
            });
            crate::tell!(
                "note: {}: fewer than the {} complete windows the intervals need to calibrate on{}; {}",
                input.display(),
                min_calibration(exp),
                trained_until
                    .map(|t| format!(" after the rows the model trained on (to {t})"))
                    .unwrap_or_default(),
                match &saved {
                    Some(it) if empty.is_empty() => format!(
                        "they are the run's, from its validation split's {} windows (intervals.toml)",
                        it.windows
                    ),
                    Some(it) => format!(
                        "they are the run's, from its validation split's {} windows (intervals.toml), too few for the {} interval: its columns are empty",
                        it.windows,
                        empty.join(" and ")
                    ),
                    None => "and the run has no intervals.toml (it is older than intervals): no interval columns".into(),
                }
            );
            saved
        }
    })
}

/// `--plot`: per target (the first [`crate::plots::MAX_PLOTTED_TARGETS`]), the input's last
/// values (three horizons, its look-back at most; `series`' columns `columns`), its forecast
/// (`values`: `[steps, targets]` row-major, original units) and the first interval level's ends
/// where there are any.
fn plot_ahead(
    path: &Path,
    series: &gatecast_data::Series,
    columns: &[usize],
    values: &[f32],
    intervals: Option<&Intervals>,
    exp: &Experiment,
    input: &Path,
) -> Result<()> {
    let (h, nt) = (exp.window.horizon, columns.len());
    let back = (3 * h).max(exp.window.lookback).min(series.rows());
    let targets: Vec<crate::plots::TargetLines> = columns
        .iter()
        .zip(&exp.data.targets)
        .enumerate()
        .take(crate::plots::MAX_PLOTTED_TARGETS)
        .map(|(k, (&column, name))| {
            let own: Vec<f32> = values.iter().skip(k).step_by(nt).copied().collect();
            // The first level's ends over the first horizon, where it has them.
            let (lo, hi): (Vec<f64>, Vec<f64>) = intervals
                .map(|it| {
                    own.iter()
                        .take(h)
                        .enumerate()
                        .map_while(|(s, &v)| it.bounds(0, s, k, v))
                        .map(|(lo, hi)| (f64::from(lo), f64::from(hi)))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
                .into_iter()
                .unzip();
            crate::plots::TargetLines {
                name: name.clone(),
                actual: (series.rows() - back..series.rows())
                    .map(|r| f64::from(series.row(r)[column]))
                    .collect(),
                forecast: own.iter().map(|&v| f64::from(v)).collect(),
                band: (!lo.is_empty()).then_some((lo, hi)),
            }
        })
        .collect();
    let band = intervals.map_or(String::new(), |it| {
        format!("{:.0}% interval", 100.0 * it.levels[0])
    });
    let what = format!(": forecast after {}", input.display());
    crate::plots::forecast_ahead(path, &what, &band, &targets)
}

/// The model's forecast from `last`, `[horizon, targets]` row-major, scaled.
fn predict(
    model: &ForecastModel,
    last: &LastWindow,
    loaded: &Loaded,
    exp: &Experiment,
    device: &Device,
) -> Result<Vec<f32>> {
    let (l, h) = (exp.window.lookback, exp.window.horizon);
    let x = TensorData::new(last.x.clone(), [1, l, loaded.inputs.len()]);
    let x = Tensor::<3>::from_data(x, device);
    let future = (!loaded.future.is_empty()).then(|| {
        let f = TensorData::new(last.future.clone(), [1, h, loaded.future.len()]);
        Tensor::<3>::from_data(f, device)
    });
    let steps = last.step.map(|s| vec![s]);
    model
        .predict(x, future, steps.as_deref())
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// The model's input for a forecast after the end of the data: the last look-back, scaled, and
/// the calendar covariates of the steps to come.
struct LastWindow {
    /// `[lookback, inputs]`, row-major, scaled.
    x: Vec<f32>,
    /// `[horizon, future]`, scaled.
    future: Vec<f32>,
    /// The timestamps forecast.
    times: Vec<chrono::NaiveDateTime>,
    /// `[horizon, future]` in original units: the known-future columns' values to come.
    future_raw: Vec<f32>,
    /// The absolute step number of the look-back's first row (a learned cycle's phase).
    step: Option<i64>,
}

impl LastWindow {
    fn of(
        loaded: &Loaded,
        exp: &Experiment,
        scaler: &Scaler,
        input: &Path,
        future_file: Option<&Path>,
    ) -> Result<Self> {
        let series = &loaded.series;
        if series.columns != scaler.columns {
            bail!(
                "{}: columns {:?} differ from the run's {:?}",
                input.display(),
                series.columns,
                scaler.columns
            );
        }
        let (l, h) = (exp.window.lookback, exp.window.horizon);
        let last_segment = series.segments.last().cloned().unwrap_or(0..0);
        if last_segment.len() < l {
            bail!(
                "{}: the forecast needs the last {l} rows without a gap (window.lookback); the file ends with {}",
                input.display(),
                last_segment.len()
            );
        }
        let step = series.frequency.with_context(|| {
            format!(
                "{}: cannot tell the sampling step from fewer than two rows",
                input.display()
            )
        })?;
        // Only the look-back is scaled (as `Scaler::transform` would): a roll-out calls this
        // once a horizon on an ever longer series.
        let in_idx = series.column_indices(&loaded.inputs, "inputs")?;
        let x: Vec<f32> = (series.rows() - l..series.rows())
            .flat_map(|r| in_idx.iter().map(move |&c| (r, c)))
            .map(|(r, c)| ((series.row(r)[c] as f64 - scaler.offset[c]) / scaler.scale[c]) as f32)
            .collect();
        let end = *series.timestamps.last().expect("rows");
        let times = (1..=h as i64)
            .map(|k| step.checked_add(end, k))
            .collect::<Option<Vec<_>>>()
            .with_context(|| {
                format!(
                    "{}: the steps after {end} fall past the last date a timestamp can hold",
                    input.display()
                )
            })?;
        // Per step: the file's known-future columns, then the calendar's, as in training.
        let given = known_future(exp, future_file, input, &times)?;
        let (_, calendar) = gatecast_data::calendar_covariates(&times, &exp.data.calendar);
        let (nf, width) = (exp.data.future_covariates.len(), loaded.future.len());
        let ncal = width - nf;
        let mut future = Vec::with_capacity(h * width);
        for step in 0..h {
            future.extend_from_slice(&given[step * nf..(step + 1) * nf]);
            future.extend_from_slice(&calendar[step * ncal..(step + 1) * ncal]);
        }
        let future_raw = future.clone();
        let first_future = series.width() - width;
        for (i, v) in future.iter_mut().enumerate() {
            let col = first_future + i % width.max(1);
            *v = ((*v as f64 - scaler.offset[col]) / scaler.scale[col]) as f32;
        }
        let step = series.step_number(series.rows() - l);
        Ok(Self {
            x,
            future,
            times,
            future_raw,
            step,
        })
    }

    /// Appends the forecast `values` (`[horizon, targets]`, original units, for the columns
    /// `targets`) to `series` as rows at this window's times, beside their known-future
    /// values: a roll-out's next input. The series holds no past covariates (their values to
    /// come are unknown), so its other columns are the known-future ones, last.
    fn append_to(&self, series: &mut gatecast_data::Series, targets: &[usize], values: &[f32]) {
        let (w, nt) = (series.width(), targets.len());
        let width = self.future_raw.len() / self.times.len().max(1);
        for (step, &t) in self.times.iter().enumerate() {
            let mut row = vec![0.0f32; w];
            row[w - width..].copy_from_slice(&self.future_raw[step * width..(step + 1) * width]);
            for (k, &c) in targets.iter().enumerate() {
                row[c] = values[step * nt + k];
            }
            series.timestamps.push(t);
            series.values.extend_from_slice(&row);
        }
        let rows = series.rows();
        if let Some(last) = series.segments.last_mut() {
            last.end = rows;
        }
    }
}

/// The values of `data.future_covariates` at `times`, `[times, columns]` row-major, original
/// units, from the `future` file (empty when the run has none).
fn known_future(
    exp: &Experiment,
    future: Option<&Path>,
    input: &Path,
    times: &[chrono::NaiveDateTime],
) -> Result<Vec<f32>> {
    let names = &exp.data.future_covariates;
    if names.is_empty() {
        super::prepare::refuse_unread_future(future)?;
        return Ok(Vec::new());
    }
    let Some(path) = future else {
        bail!(
            "the run reads known-future covariates {names:?} (data.future_covariates): give their values for the {} steps after the end of {} ({} to {}) with --future FILE",
            times.len(),
            input.display(),
            times.first().map(|t| t.to_string()).unwrap_or_default(),
            times.last().map(|t| t.to_string()).unwrap_or_default()
        );
    };
    let given = gatecast_data::load_csv(path, &super::prepare::future_file_options(&exp.data))
        .map_err(|e| super::prepare::blame_option(e, &exp.data))?;
    super::prepare::values_at(&given, times, &path.display().to_string())
}

/// The fewest windows the input must hold for its own intervals: those its highest level
/// needs ([`super::needed_windows`]: 39 for 95%).
fn min_calibration(exp: &Experiment) -> usize {
    exp.intervals
        .levels
        .iter()
        .map(|&l| super::needed_windows(l))
        .max()
        .unwrap_or(1)
}

/// The input as a run's data, scaled by the run's scaler; its "training" rows, which the count
/// test reads, are all of them, and so are its test rows, whose latest windows calibrate the
/// intervals.
fn input_prepared(loaded: &Loaded, exp: &Experiment, scaler: &Scaler) -> Result<Prepared> {
    let series = &loaded.series;
    let rows = series.rows();
    Ok(Prepared {
        raw: series.clone(),
        scaled: std::sync::Arc::new(scaler.transform(series)),
        scaler: scaler.clone(),
        split: gatecast_data::TimeSplit {
            train: 0..rows,
            valid: 0..0,
            test: 0..rows,
        },
        window: loaded.window(exp),
        targets: series.column_indices(&exp.data.targets, "data.targets")?,
        season: exp.data.season_for(series.frequency),
    })
}

/// Intervals from the model's errors on the input's latest `intervals.calibration` complete
/// windows (the input holds their actual values) whose forecast steps all lie after
/// `trained_until` (the model fitted the rows up to it, and its errors there understate those
/// to come); `None` when the input holds fewer such windows than [`min_calibration`] and than
/// `intervals.calibration`.
fn recent_intervals(
    model: &ForecastModel,
    p: &Prepared,
    exp: &Experiment,
    trained_until: Option<chrono::NaiveDateTime>,
    device: &Device,
) -> Result<Option<Intervals>> {
    let rows = p.raw.rows();
    let (l, h, k) = (
        exp.window.lookback,
        exp.window.horizon,
        exp.intervals.calibration,
    );
    // The first row the model did not train on: a window's forecast starts there or later.
    let unseen = trained_until.map_or(0, |t| p.raw.timestamps.partition_point(|r| *r <= t));
    let from = rows
        .saturating_sub(k + l + h - 1)
        .max(unseen.saturating_sub(l))
        .min(rows);
    let (starts, forecasts, _) = forecasts_over(model, p, from..rows, device)?;
    // The windows asked for, or those the highest level needs where fewer are asked for.
    if starts.len() < min_calibration(exp).min(k) {
        return Ok(None);
    }
    let errors = window_errors(p, &starts, &forecasts);
    let latest: Vec<&[f32]> = errors[errors.len().saturating_sub(k)..]
        .iter()
        .map(Vec::as_slice)
        .collect();
    let (targets, levels) = (&exp.data.targets, &exp.intervals.levels);
    // Adaptive conformal inference: the levels as the input's windows, issued in time order
    // and recalibrated once a horizon as on the test split, left them.
    let at = if exp.intervals.adapt > 0.0 {
        super::intervals::Rolling::calibrate(
            p,
            targets,
            (&[], &[]),
            (&starts, &errors),
            k,
            levels,
            exp.intervals.adapt,
        )
        .levels_after
    } else {
        levels.clone()
    };
    Ok(Intervals::from_errors_at(
        &latest,
        h,
        targets,
        count_targets(p),
        levels,
        &at,
    ))
}
