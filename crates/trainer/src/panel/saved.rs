//! A finished panel run at work: what it keeps for later (each series' embedding index and
//! scale in `series.csv`, the data's fingerprint in `data.toml`, the model), its test table
//! again (`evaluate`, for every series or one), and quantile forecasts after the end of new data
//! (`forecast`), prepared exactly as in training: the same series ids, the same scales.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use gatecast_data::calendar_covariates;
use gatecast_model::forecast::GlobalForecaster;

use super::calibrate::Calibration;
use super::data::Encodings;
use super::data::{self, Origin, Panel, PanelSeries};
use super::dynamic::KnownFutureScale;
use super::fit::model_config;
use super::report::{label, levels, model_quantiles, test_table, Floored, PanelReport};
use super::statics::StaticEncoding;
use crate::artifacts::{write_atomic, write_csv};
use crate::config::Experiment;
use crate::run::prepare::{
    blame_option, csv_options, future_file_options, load_panel_noted, refuse_unread_future,
    values_at,
};
use crate::run::saved::{load_weights, read_config};
use crate::run::DataFingerprint;

/// Each training series' id, offset and scale; its row is its embedding id.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesIndex {
    ids: Vec<String>,
    scales: Vec<f32>,
    offsets: Vec<f32>,
}

const SERIES_FILE: &str = "series.csv";

impl SeriesIndex {
    /// The series of a training panel.
    pub fn of(panel: &Panel) -> Self {
        Self {
            ids: panel.series.iter().map(|s| s.id.clone()).collect(),
            scales: panel.series.iter().map(|s| s.scale).collect(),
            offsets: panel.series.iter().map(|s| s.offset).collect(),
        }
    }

    /// Writes `series.csv` (`series,index,scale,offset`; exact, as Rust prints an `f32`).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let rows: Vec<Vec<String>> = (0..self.ids.len())
            .map(|k| {
                vec![
                    self.ids[k].clone(),
                    k.to_string(),
                    self.scales[k].to_string(),
                    self.offsets[k].to_string(),
                ]
            })
            .collect();
        write_csv(
            &dir.join(SERIES_FILE),
            &["series", "index", "scale", "offset"],
            &rows,
        )
    }

    /// Reads the run's `series.csv`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(SERIES_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut out = Self {
            ids: Vec::new(),
            scales: Vec::new(),
            offsets: Vec::new(),
        };
        // Runs before data.scaler applied to panels wrote no offset (it was 0).
        let with_offset = text.lines().next().is_some_and(|h| h.ends_with(",offset"));
        let columns = if with_offset {
            "series,index,scale,offset"
        } else {
            "series,index,scale"
        };
        for (n, line) in text.lines().enumerate().skip(1) {
            let bad = || format!("{}: line {}: not `{columns}`", path.display(), n + 1);
            // From the right: an id may hold commas (quoted).
            let mut fields: Vec<&str> = line.rsplitn(3 + with_offset as usize, ',').collect();
            let offset: f32 = if with_offset {
                fields.remove(0).parse().with_context(bad)?
            } else {
                0.0
            };
            let [scale, index, id] = fields[..] else {
                bail!(bad());
            };
            let index: usize = index.parse().with_context(bad)?;
            let scale: f32 = scale.parse().with_context(bad)?;
            if index != out.ids.len() || !(scale.is_finite() && scale > 0.0) || !offset.is_finite()
            {
                bail!(bad());
            }
            out.ids.push(id.trim_matches('"').to_string());
            out.scales.push(scale);
            out.offsets.push(offset);
        }
        Ok(out)
    }

    /// The series ids, in the order of the model's embedding rows.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Each series id's row (its embedding id).
    fn positions(&self) -> HashMap<&str, usize> {
        self.ids
            .iter()
            .enumerate()
            .map(|(k, id)| (id.as_str(), k))
            .collect()
    }

    /// Gives each series of `panel` its training embedding id, offset and scale; an error names a
    /// series the run never trained on (the model has no embedding for it).
    fn apply(&self, panel: &mut Panel, file: &str) -> Result<()> {
        let at = self.positions();
        for s in &mut panel.series {
            let Some(&k) = at.get(s.id.as_str()) else {
                bail!(
                    "{file}: series {} was not in the run's training panel ({} series); a global model forecasts only the series it was trained on",
                    s.id,
                    self.ids.len()
                );
            };
            s.index = k;
            s.scale = self.scales[k];
            s.offset = self.offsets[k];
        }
        Ok(())
    }
}

/// The fingerprint of a panel's file: every series' rows, from the earliest to the latest time.
pub fn fingerprint(path: &str, panel: &Panel) -> Result<DataFingerprint> {
    let rows = panel.series.iter().map(|s| s.rows()).sum();
    let first = panel.series.iter().filter_map(|s| s.times.first()).min();
    let last = panel.series.iter().filter_map(|s| s.times.last()).max();
    let step = panel
        .series
        .iter()
        .find_map(|s| gatecast_data::infer_frequency(&s.times));
    DataFingerprint::of_rows(path, rows, first, last, step)
}

/// The encodings of the run in `dir`; an error if its experiment has static columns and the
/// run has no `statics.toml`. A run without `known_future.toml` reads its known-future columns
/// as they are, as it was trained.
fn saved_encodings(dir: &Path, exp: &Experiment) -> Result<Encodings> {
    let statics = StaticEncoding::load(dir)?;
    if statics.is_none() && exp.data.has_statics() {
        bail!(
            "{}: no statics.toml, though config.toml names static columns: the run is incomplete",
            dir.display()
        );
    }
    let known_future = KnownFutureScale::load(dir)?;
    if let Some(k) = &known_future {
        if k.columns != exp.data.future_covariates {
            bail!(
                "{}: known_future.toml scales {:?}, config.toml names {:?} (was it edited?)",
                dir.display(),
                k.columns,
                exp.data.future_covariates
            );
        }
    }
    Ok(Encodings {
        statics,
        known_future,
    })
}

/// The run's experiment if `dir` holds a panel run, `None` for another run.
pub fn panel_run(dir: &Path) -> Result<Option<Experiment>> {
    let mut exp = read_config(dir)?;
    // Runs record data.window_scale since it exists; one that names nothing scaled each window
    // by its series' training scale, and its model reads windows only as it was trained.
    exp.data.window_scale.get_or_insert(false);
    Ok(exp.is_panel().then_some(exp))
}

/// The run's model, for a panel shaped like `panel` with `series` embeddings.
fn load_model(
    dir: &Path,
    exp: &Experiment,
    panel: &Panel,
    series: usize,
    device: &Device,
) -> Result<GlobalForecaster> {
    load_weights(dir, model_config(exp, panel, series)?.try_init(device)?)
}

/// The index of series `id` in `panel`, or an error listing a few that exist.
fn series_named(panel: &Panel, id: &str, file: &str) -> Result<usize> {
    panel
        .series
        .iter()
        .position(|s| s.id == id)
        .with_context(|| {
            let some: Vec<&str> = panel.series.iter().take(5).map(|s| s.id.as_str()).collect();
            format!(
                "--series {id}: no such series in {file} (it has {}: {}{})",
                panel.series.len(),
                some.join(", "),
                if panel.series.len() > 5 { ", …" } else { "" }
            )
        })
}

/// `gatecast evaluate` of a panel run: the test table on every series' last horizon (or on
/// series `only`'s, whose interval plot goes to `forecast_<id>.png` in the run directory),
/// recomputed from the run's model on its data; an error if the data changed since training,
/// unless `allow_changed_data`.
pub fn evaluate_run(
    dir: &Path,
    device: &Device,
    allow_changed_data: bool,
    only: Option<&str>,
) -> Result<PanelReport> {
    let exp = panel_run(dir)?.context("not a panel run")?;
    let (mut panel, _) = data::load_with(&exp, Some(&saved_encodings(dir, &exp)?))?;
    let now = fingerprint(&exp.data.path, &panel)?;
    DataFingerprint::check(dir, &now, allow_changed_data, "evaluate")?;
    let index = SeriesIndex::load(dir)?;
    index.apply(&mut panel, &exp.data.path)?;
    let one = only
        .map(|id| series_named(&panel, id, &exp.data.path))
        .transpose()?;
    let model = load_model(dir, &exp, &panel, index.ids.len(), device)?;
    let calibration = saved_calibration(dir, &exp)?;
    let (rows, mut quantiles, _) = test_table(&exp, &panel, &model, one, calibration.as_ref())?;
    if let Some(k) = one {
        // The chosen series' interval plot beside the run's own.
        let name: String = panel.series[k]
            .id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let alone = Panel {
            series: vec![panel.series[k].clone()],
            too_short: Vec::new(),
            calendar: panel.calendar.clone(),
            lookback: panel.lookback,
            horizon: panel.horizon,
            window_scale: panel.window_scale,
        };
        let path = dir.join(format!("forecast_{name}.png"));
        crate::plots::panel_intervals(
            &path,
            &alone,
            &levels(&exp),
            &[quantiles.swap_remove(k)],
            false,
        )?;
        crate::tell!("{}", path.display());
    }
    Ok(PanelReport {
        rows,
        series: if one.is_some() { 1 } else { panel.series.len() },
        epochs: 0,
        best_epoch: 0,
        epoch_seconds: 0.0,
        seconds: 0.0,
        calibration: calibration.as_ref().map(Calibration::describe),
    })
}

/// The run's interval factors, where it was trained with `intervals.panel_conformal`.
fn saved_calibration(dir: &Path, exp: &Experiment) -> Result<Option<Calibration>> {
    exp.intervals
        .panel_conformal
        .then(|| Calibration::load(dir))
        .transpose()
}

/// The panel in `input` ready to forecast after its end: each series' last look-back (it needs
/// that many rows without a gap), its training id and scale, and the calendar of the steps to
/// come. Series the run never trained on, and series too short, are left out and named in the
/// second list; with `only`, that series alone, and an error instead.
fn forecast_panel(
    exp: &Experiment,
    input: &Path,
    future: Option<&Path>,
    index: &SeriesIndex,
    encodings: &Encodings,
    only: Option<&str>,
) -> Result<(Panel, Vec<String>)> {
    let d = &exp.data;
    let file = input.display().to_string();
    let (_, options) = csv_options(d);
    let loaded = load_panel_noted(d, input, &options)?;
    let future = KnownFuture::load(exp, future)?;
    let (l, h) = (exp.window.lookback, exp.window.horizon);
    let mut panel = Panel {
        series: Vec::new(),
        too_short: Vec::new(),
        calendar: Vec::new(),
        lookback: l,
        horizon: h,
        window_scale: exp.window_scale(),
    };
    let known = index.positions();
    let mut skipped = Vec::new();
    for s in loaded {
        let id = data::id_of(&s.name, &file);
        if only.is_some_and(|o| o != id) {
            continue;
        }
        let tail = s.segments.last().map_or(0, |r| r.len());
        let why = if !known.contains_key(id.as_str()) {
            Some(format!(
                "{id} (not in the run's training panel: a global model forecasts only the series it was trained on)"
            ))
        } else if tail < l {
            Some(format!(
                "{id} (ends with {tail} rows without a gap; a forecast needs the last {l}, window.lookback)"
            ))
        } else {
            None
        };
        if let Some(why) = why {
            if only.is_some() {
                bail!("{file}: series {why}");
            }
            skipped.push(why);
            continue;
        }
        let step = s.frequency.with_context(|| {
            format!("{file}: series {id}: cannot tell the sampling step from fewer than two rows")
        })?;
        let keep = s.rows() - l;
        let mut times = s.timestamps[keep..].to_vec();
        let end = *times.last().expect("rows");
        let ahead = (1..=h as i64)
            .map(|k| step.checked_add(end, k))
            .collect::<Option<Vec<_>>>()
            .with_context(|| {
                format!("{file}: series {id}: the steps after {end} fall past the last date a timestamp can hold")
            })?;
        times.extend(ahead);
        let (mut names, calendar) = calendar_covariates(&times, &d.calendar);
        let (y, mut dynamic) = data::target_and_dynamic(&s);
        let f = d.future_covariates.len();
        dynamic.drain(..keep * f);
        if let Some(given) = &future {
            dynamic.extend(given.values(&id, &times[l..])?);
        }
        if let Some(k) = &encodings.known_future {
            k.apply(&mut dynamic);
        }
        let calendar = data::with_dynamic(&calendar, names.len(), &dynamic, times.len());
        names.extend(d.future_covariates.iter().cloned());
        panel.calendar = names;
        panel.series.push(PanelSeries {
            id,
            index: 0,
            times,
            y: y[keep..].to_vec(),
            offset: 0.0,
            scale: 1.0,
            calendar,
            // Nothing is held out of a forecast's history.
            valid: 0,
        });
    }
    if panel.series.is_empty() {
        match only {
            Some(id) => bail!("--series {id}: no such series in {file}"),
            None => bail!(
                "{file}: no series to forecast{}",
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(": {}", skipped.join("; "))
                }
            ),
        }
    }
    index.apply(&mut panel, &file)?;
    // The static columns as the run encoded them, from --input.
    data::add_statics(exp, &mut panel, input, encodings.statics.as_ref())?;
    Ok((panel, skipped))
}

/// `gatecast forecast` of a panel run: the quantiles of the `horizon` steps after the end of
/// each series in `input` (long format, the training columns), or of series `only`, written as
/// `series,timestamp,p2.5,…,p97.5` rows to `output` (or standard output).
pub fn forecast_run(
    dir: &Path,
    input: &Path,
    output: Option<&Path>,
    only: Option<&str>,
    device: &Device,
) -> Result<()> {
    forecast_run_with(dir, input, None, output, None, only, device)
}

/// [`forecast_run`], with the values of the run's known-future columns
/// (`data.future_covariates`) for the steps forecast read from `future`: a long-format CSV with
/// the time and id columns and those columns, a row for each series and step. With `plot`, the
/// forecast of up to four series (the largest over their last horizon) with its intervals is
/// drawn there as a PNG.
pub fn forecast_run_with(
    dir: &Path,
    input: &Path,
    future: Option<&Path>,
    output: Option<&Path>,
    plot: Option<&Path>,
    only: Option<&str>,
    device: &Device,
) -> Result<()> {
    let exp = panel_run(dir)?.context("not a panel run")?;
    let index = SeriesIndex::load(dir)?;
    let encodings = saved_encodings(dir, &exp)?;
    let (panel, skipped) = forecast_panel(&exp, input, future, &index, &encodings, only)?;
    let l = exp.window.lookback;
    let mut steps: Vec<_> = panel
        .series
        .iter()
        .filter_map(|s| gatecast_data::infer_frequency(&s.times[..l]))
        .collect();
    steps.dedup();
    for step in steps {
        DataFingerprint::check_step(dir, input, Some(step))?;
    }
    if !skipped.is_empty() {
        crate::tell!(
            "warning: {} series not forecast: {}",
            skipped.len(),
            skipped.join("; ")
        );
    }
    let model = load_model(dir, &exp, &panel, index.ids.len(), device)?;
    let calibration = saved_calibration(dir, &exp)?;
    let levels = levels(&exp);
    let origins: Vec<Origin> = (0..panel.series.len())
        .map(|k| Origin {
            series: k,
            origin: panel.lookback,
        })
        .collect();
    // Count data as the training rows were judged, over the history read.
    let counts = panel.is_counts_before(|_| panel.lookback);
    let mut floored = Floored::default();
    let mut q = model_quantiles(
        &exp,
        &panel,
        &model,
        &levels,
        &origins,
        (counts, &mut floored),
    )?;
    floored.note();
    if let Some(c) = &calibration {
        c.apply(&levels, &mut q, counts);
    }
    let mut text = String::from("series,timestamp");
    for l in &levels {
        text += &format!(",{}", label(*l));
    }
    text.push('\n');
    for (s, qs) in panel.series.iter().zip(&q) {
        for k in 0..panel.horizon {
            text += &format!(
                "{},{}",
                s.id,
                s.times[panel.lookback + k].format("%Y-%m-%d %H:%M:%S")
            );
            for lv in qs {
                text += &format!(",{:.4}", lv[k]);
            }
            text.push('\n');
        }
    }
    match output {
        Some(path) => write_atomic(path, text.as_bytes())?,
        None => crate::say!("{text}"),
    }
    if let Some(path) = plot {
        // Each series' history is its look-back, as `forecast_panel` keeps it.
        crate::plots::panel_intervals(path, &panel, &levels, &q, true)?;
        crate::tell!("{}", path.display());
    }
    Ok(())
}

/// The known-future columns' values for the steps forecast, per series (`--future`).
struct KnownFuture {
    path: String,
    /// Per series id: its rows.
    series: std::collections::HashMap<String, gatecast_data::Series>,
}

impl KnownFuture {
    /// `None` for a run without known-future columns; an error when the run has them and no
    /// file gives them, or a file is given to a run without them.
    fn load(exp: &Experiment, future: Option<&Path>) -> Result<Option<Self>> {
        let d = &exp.data;
        match (d.future_covariates.is_empty(), future) {
            (true, _) => refuse_unread_future(future).map(|()| None),
            (false, None) => bail!(
                "the run reads known-future covariates {:?} (data.future_covariates): give their values for the {} steps after each series' end with --future FILE (long format: {}, {} and those columns)",
                d.future_covariates,
                exp.window.horizon,
                d.time_column,
                d.id_column
            ),
            (false, Some(path)) => {
                let name = path.display().to_string();
                let options = future_file_options(d);
                let series = if options.id_column.is_some() {
                    gatecast_data::load_panel(path, &options)
                        .map_err(|e| blame_option(e, d))?
                        .into_iter()
                        .map(|s| (data::id_of(&s.name, &name), s))
                        .collect()
                } else {
                    // Series side by side share the file's known-future values.
                    let s = gatecast_data::load_csv(path, &options)
                        .map_err(|e| blame_option(e, d))?;
                    d.targets.iter().map(|t| (t.clone(), s.clone())).collect()
                };
                Ok(Some(Self { path: name, series }))
            }
        }
    }

    /// Series `id`'s values at `times`, `[times, columns]` row-major.
    fn values(&self, id: &str, times: &[chrono::NaiveDateTime]) -> Result<Vec<f32>> {
        let s = self.series.get(id).with_context(|| {
            format!(
                "{}: no rows for series {id}, whose next {} steps are forecast",
                self.path,
                times.len()
            )
        })?;
        values_at(s, times, &format!("{}: series {id}", self.path))
    }
}
