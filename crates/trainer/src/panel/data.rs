//! A long-format file as a panel: each series loaded and validated on its own, held out at its
//! end (the last horizon for test, the rows before it for validation), given a scale from its
//! training rows only (the mean absolute value by default), and cut into windows across series
//! and time, each window scaled by its own look-back by default (DeepAR's, `data.window_scale`).

use std::path::Path;

use anyhow::Result;
use burn::tensor::{Device, Int, Tensor, TensorData};
use chrono::NaiveDateTime;
use gatecast_data::{calendar_covariates, fit_values, load_static_columns, ScalerKind};

use super::dynamic::KnownFutureScale;
use super::statics::{self, StaticEncoding};

use crate::config::Experiment;
use crate::run::prepare::{blame_option, csv_options, load_panel_noted};

/// One series of the panel, as the model reads it.
#[derive(Debug, Clone)]
pub struct PanelSeries {
    /// The id from the file's id column.
    pub id: String,
    /// The model's embedding id: the series' row in the run's `series.csv`.
    pub index: usize,
    /// One timestamp per row; at forecast time also one per step to come.
    pub times: Vec<NaiveDateTime>,
    /// The target, in the file's units.
    pub y: Vec<f32>,
    /// What the model reads is `(y - offset) / scale`, both from the training rows
    /// (`data.scaler`): 0 and the mean absolute value by default (DeepAR's), the mean and std
    /// with `standard`.
    pub offset: f32,
    /// See `offset`; positive (1 where the training rows give 0).
    pub scale: f32,
    /// Known-future covariates (calendar, then static features), `[times, calendar]`
    /// row-major.
    pub calendar: Vec<f32>,
    /// Validation rows before the test horizon: at least one horizon (`train.valid_windows`).
    pub valid: usize,
}

impl PanelSeries {
    /// Rows.
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// First row of validation (the training rows end here).
    pub fn train_end(&self, horizon: usize) -> usize {
        self.rows() - horizon - self.valid
    }

    /// First row of the test horizon.
    pub fn test_start(&self, horizon: usize) -> usize {
        self.rows() - horizon
    }
}

/// The panel of a run.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Series long enough to train on, in the file's order; the embedding id is the index.
    pub series: Vec<PanelSeries>,
    /// Series left out, with their row counts.
    pub too_short: Vec<(String, usize)>,
    /// Known-future covariates per step: the calendar features (sin/cos pairs), then the
    /// static columns' features (constant in time).
    pub calendar: Vec<String>,
    /// Look-back steps.
    pub lookback: usize,
    /// Horizon steps.
    pub horizon: usize,
    /// Each window scaled by its own look-back (`data.window_scale`) rather
    /// than by its series' training scale.
    pub window_scale: bool,
}

/// The scale of a window whose look-back's target is `lookback`: its mean absolute value
/// (GluonTS's `MeanScaler`, DeepAR's), or `None` where that is 0 or not finite.
pub fn window_scale(lookback: &[f32]) -> Option<f32> {
    let mean = lookback.iter().map(|v| v.abs() as f64).sum::<f64>() / lookback.len().max(1) as f64;
    (mean > 0.0 && mean.is_finite()).then_some(mean as f32)
}

/// The id of a series named `path [id]` by the loader.
pub(super) fn id_of(name: &str, path: &str) -> String {
    name.strip_prefix(path)
        .map(str::trim)
        .and_then(|s| s.strip_prefix('['))
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(name)
        .to_string()
}

/// The validation rows of a series of `rows` rows in a panel of `series` series: one horizon,
/// or, where the panel has fewer series than `train.valid_windows`, a span holding up to
/// `⌈valid_windows / series⌉` validation origins, no more than `data.split`'s validation share
/// of the rows, and leaving the look-back and a horizon of training rows before it (so a series
/// of `lookback + 3 · horizon` rows, the fewest a panel takes, validates on one horizon).
pub fn valid_span(exp: &Experiment, rows: usize, series: usize) -> usize {
    let (l, h) = (exp.window.lookback, exp.window.horizon);
    let origins = exp.train.valid_windows.div_ceil(series.max(1)).max(1);
    let share = (rows as f64 * exp.data.split[1]) as usize;
    let room = rows.saturating_sub(l + 2 * h);
    share.min(room).clamp(h, h + origins - 1)
}

/// Loads the experiment's long-format file. A series needs `lookback + 3 · horizon` rows (one
/// training window, then validation and test); shorter ones are listed in
/// [`Panel::too_short`], not silently dropped.
pub fn load(exp: &Experiment) -> Result<Panel> {
    Ok(load_with(exp, None)?.0)
}

/// `exp` with `data.season = 0` resolved to the period of the panel's sampling step (that of
/// its longest series), as a single series' is, and `data.window_scale` to what the run does:
/// the run's `config.toml` then records both.
pub fn with_season(exp: &Experiment, panel: &Panel) -> Experiment {
    let mut e = exp.clone();
    e.data.window_scale = Some(panel.window_scale);
    if e.data.season == 0 {
        let longest = panel.series.iter().max_by_key(|s| s.rows());
        let step = longest.and_then(|s| gatecast_data::infer_frequency(&s.times));
        e.data.season = e.data.season_for(step);
    }
    e
}

/// How a run turns the file's covariates into features: fitted on the rows it trains on, saved
/// in its directory, and read back by `evaluate` and `forecast`.
#[derive(Debug, Clone, Default)]
pub struct Encodings {
    /// The static columns' encoding, if the experiment has static columns.
    pub statics: Option<StaticEncoding>,
    /// The known-future columns' standardization, if the experiment has such columns (and a
    /// scaler: `data.scaler = "none"` feeds them as they are, as runs before it did).
    pub known_future: Option<KnownFutureScale>,
}

impl Encodings {
    /// Writes each encoding into the run directory.
    pub fn save(&self, dir: &Path) -> Result<()> {
        if let Some(s) = &self.statics {
            s.save(dir)?;
        }
        if let Some(k) = &self.known_future {
            k.save(dir)?;
        }
        Ok(())
    }
}

/// [`load`], with the encodings `saved` by a run (fitted on the panel's training rows when
/// `None`); returns the encodings used.
pub fn load_with(exp: &Experiment, saved: Option<&Encodings>) -> Result<(Panel, Encodings)> {
    let d = &exp.data;
    let (_, options) = csv_options(d);
    let loaded = load_panel_noted(d, Path::new(&d.path), &options)?;
    let (lookback, horizon) = (exp.window.lookback, exp.window.horizon);
    let need = lookback + 3 * horizon;
    let mut panel = Panel {
        series: Vec::new(),
        too_short: Vec::new(),
        calendar: Vec::new(),
        lookback,
        horizon,
        window_scale: exp.window_scale(),
    };
    // (id, times, target, known-future columns) of each series long enough to train on.
    let mut kept = Vec::new();
    for s in loaded {
        let id = id_of(&s.name, &d.path);
        if s.segments.len() > 1 {
            anyhow::bail!(
                "{}: series {id} has {} gaps in time; panel runs need every step (data.gaps = \"interpolate\", or fill the file)",
                d.path,
                s.segments.len() - 1
            );
        }
        if s.rows() < need {
            panel.too_short.push((id, s.rows()));
            continue;
        }
        let (y, dynamic) = target_and_dynamic(&s);
        kept.push((id, s.timestamps.clone(), y, dynamic));
    }
    let count = kept.len();
    let valid_of = |rows: usize| valid_span(exp, rows, count);
    // The known-future columns' scale, from every series' training rows.
    let known_future = match saved {
        Some(saved) => saved.known_future.clone(),
        None => {
            (!d.future_covariates.is_empty() && exp.scaler_kind() != ScalerKind::None).then(|| {
                let rows: Vec<(&[f32], usize)> = kept
                    .iter()
                    .map(|(_, _, y, dynamic)| (&dynamic[..], y.len() - horizon - valid_of(y.len())))
                    .collect();
                KnownFutureScale::fit(&d.future_covariates, &rows)
            })
        }
    };
    for (id, times, y, mut dynamic) in kept {
        if let Some(k) = &known_future {
            k.apply(&mut dynamic);
        }
        let (mut names, calendar) = calendar_covariates(&times, &d.calendar);
        let calendar = with_dynamic(&calendar, names.len(), &dynamic, times.len());
        names.extend(d.future_covariates.iter().cloned());
        panel.calendar = names;
        let valid = valid_of(y.len());
        let (offset, scale) = training_scaling(exp.scaler_kind(), &y[..y.len() - horizon - valid]);
        panel.series.push(PanelSeries {
            id,
            index: panel.series.len(),
            times,
            offset,
            scale,
            y,
            calendar,
            valid,
        });
    }
    if panel.series.is_empty() {
        anyhow::bail!(
            "{}: no series has the {need} rows a panel run needs (window.lookback {lookback} + 3 x window.horizon {horizon}); the longest has {}",
            d.path,
            panel.too_short.iter().map(|s| s.1).max().unwrap_or(0)
        );
    }
    let statics = add_statics(
        exp,
        &mut panel,
        Path::new(&d.path),
        saved.and_then(|s| s.statics.as_ref()),
    )?;
    Ok((
        panel,
        Encodings {
            statics,
            known_future,
        },
    ))
}

/// A loaded series' target (its first column) and its known-future columns
/// (`data.future_covariates`, the rest), `[rows, columns]` row-major.
pub(super) fn target_and_dynamic(s: &gatecast_data::Series) -> (Vec<f32>, Vec<f32>) {
    let rows = s.values.chunks(s.width());
    let y = rows.clone().map(|r| r[0]).collect();
    let dynamic = rows.flat_map(|r| &r[1..]).copied().collect();
    (y, dynamic)
}

/// Per step, the calendar features (`c` of them) and then the file's known-future columns
/// (standardized by the caller, [`KnownFutureScale`]), `[steps, c + columns]` row-major.
pub(super) fn with_dynamic(calendar: &[f32], c: usize, dynamic: &[f32], steps: usize) -> Vec<f32> {
    if dynamic.is_empty() {
        return calendar.to_vec();
    }
    let f = dynamic.len() / steps;
    (0..steps)
        .flat_map(|t| {
            calendar[t * c..(t + 1) * c]
                .iter()
                .chain(&dynamic[t * f..(t + 1) * f])
                .copied()
        })
        .collect()
}

/// Appends the static columns' features (of `file`, encoded by `saved` or by an encoding
/// fitted on the panel's series) to every series' known-future covariates; `None` without
/// static columns.
pub(super) fn add_statics(
    exp: &Experiment,
    panel: &mut Panel,
    file: &Path,
    saved: Option<&StaticEncoding>,
) -> Result<Option<StaticEncoding>> {
    let d = &exp.data;
    if !d.has_statics() {
        return Ok(None);
    }
    let (_, options) = csv_options(d);
    let columns = load_static_columns(file, &options, &d.static_categorical, &d.static_real)
        .map_err(|e| blame_option(e, d))?;
    let encoding = match saved {
        Some(e) => e.clone(),
        None => {
            let ids: Vec<&str> = panel.series.iter().map(|s| s.id.as_str()).collect();
            StaticEncoding::fit(&columns, &ids)
        }
    };
    let name = file.display().to_string();
    for s in &mut panel.series {
        let features = encoding.encode(&columns, &s.id, &name)?;
        s.calendar = statics::append(&s.calendar, s.times.len(), &features);
    }
    panel.calendar.extend(encoding.names());
    Ok(Some(encoding))
}

/// A series' `(offset, scale)` of `kind` from its training rows (DeepAR's `mean_abs`: 0 and
/// their mean absolute value, 1 where they are all 0).
pub(super) fn training_scaling(kind: ScalerKind, train: &[f32]) -> (f32, f32) {
    let (offset, scale) = fit_values(kind, train.iter().copied());
    (offset as f32, scale as f32)
}

/// A window: series `series`, forecast origin `origin` (look-back rows `origin - lookback ..
/// origin`, targets `origin .. origin + horizon`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Index into [`Panel::series`].
    pub series: usize,
    /// First forecast row.
    pub origin: usize,
}

/// One batch on a device.
pub struct PanelBatch {
    /// `[batch, lookback, 2 + calendar]`: the target less its series' offset over its scale,
    /// the calendar features, and `ln(1 + scale)`.
    pub inputs: Tensor<3>,
    /// `[batch]` series ids.
    pub series: Tensor<1, Int>,
    /// `[batch, horizon, calendar]`, or `None` without calendar features.
    pub future: Option<Tensor<3>>,
    /// `[batch, 1, 1]`.
    pub scale: Tensor<3>,
    /// `[batch, horizon, 1]` in the file's units less the series' offset (zeros past the end
    /// of a series: only at forecast time, where there is nothing to compare with).
    pub target: Tensor<3>,
}

impl Panel {
    /// Features per look-back step.
    pub fn input_size(&self) -> usize {
        2 + self.calendar.len()
    }

    /// Training origins: every `stride`-th one whose targets end within the training rows.
    pub fn train_origins(&self, stride: usize) -> Vec<Origin> {
        let mut out = Vec::new();
        for (k, s) in self.series.iter().enumerate() {
            let last = s.train_end(self.horizon) - self.horizon;
            out.extend(
                (self.lookback..=last)
                    .rev()
                    .step_by(stride)
                    .map(|origin| Origin { series: k, origin }),
            );
        }
        out
    }

    /// The validation origins: each series' from its training rows' end on, while the
    /// horizon stays within its validation rows (one per series where those are one horizon).
    pub fn valid_origins(&self) -> Vec<Origin> {
        let mut out = Vec::new();
        for (k, s) in self.series.iter().enumerate() {
            let first = s.train_end(self.horizon);
            out.extend(
                (first..=first + s.valid - self.horizon).map(|origin| Origin { series: k, origin }),
            );
        }
        out
    }

    /// One origin per series at `at(series)`.
    pub fn origins_at(&self, at: impl Fn(&PanelSeries) -> usize) -> Vec<Origin> {
        self.series
            .iter()
            .enumerate()
            .map(|(k, s)| Origin {
                series: k,
                origin: at(s),
            })
            .collect()
    }

    /// The batch of `origins` on `device`.
    pub fn batch(&self, origins: &[Origin], device: &Device) -> PanelBatch {
        let (l, h, c) = (self.lookback, self.horizon, self.calendar.len());
        let f = self.input_size();
        let b = origins.len();
        let mut inputs = Vec::with_capacity(b * l * f);
        let mut future = Vec::with_capacity(b * h * c);
        let mut target = Vec::with_capacity(b * h);
        let mut scales = Vec::with_capacity(b);
        let mut ids = Vec::with_capacity(b);
        for o in origins {
            let s = &self.series[o.series];
            let scale = if self.window_scale {
                // The series' training scale where the look-back is all zero.
                window_scale(&s.y[o.origin - l..o.origin]).unwrap_or(s.scale)
            } else {
                s.scale
            };
            let log_scale = scale.ln_1p();
            for t in o.origin - l..o.origin {
                inputs.push((s.y[t] - s.offset) / scale);
                inputs.extend_from_slice(&s.calendar[t * c..(t + 1) * c]);
                inputs.push(log_scale);
            }
            for t in o.origin..o.origin + h {
                let cal = t.min(s.times.len() - 1) * c;
                future.extend_from_slice(&s.calendar[cal..cal + c]);
                target.push(s.y.get(t).map_or(0.0, |y| y - s.offset));
            }
            scales.push(scale);
            ids.push(s.index as i64);
        }
        PanelBatch {
            inputs: Tensor::from_data(TensorData::new(inputs, [b, l, f]), device),
            series: Tensor::from_data(TensorData::new(ids, [b]), device),
            future: (c > 0).then(|| Tensor::from_data(TensorData::new(future, [b, h, c]), device)),
            scale: Tensor::from_data(TensorData::new(scales, [b, 1, 1]), device),
            target: Tensor::from_data(TensorData::new(target, [b, h, 1]), device),
        }
    }

    /// Whether every training value is a non-negative whole number (counts): then interval
    /// floors at 0 make sense for the baseline.
    pub fn is_counts(&self) -> bool {
        self.is_counts_before(|s| s.train_end(self.horizon))
    }

    /// [`Panel::is_counts`] over each series' rows before `end(series)`.
    pub fn is_counts_before(&self, end: impl Fn(&PanelSeries) -> usize) -> bool {
        self.series
            .iter()
            .all(|s| gatecast_data::is_counts(s.y[..end(s)].iter().copied()))
    }
}

/// One line on what was loaded, naming the series too short to train on.
pub fn describe(exp: &Experiment, panel: &Panel) -> String {
    let rows: usize = panel.series.iter().map(|s| s.rows()).sum();
    format!(
        "{}: {} series ({} rows){}",
        exp.data.path,
        panel.series.len(),
        rows,
        if panel.too_short.is_empty() {
            String::new()
        } else {
            format!(
                "; {} too short to train on (fewer than {} rows): {}",
                panel.too_short.len(),
                panel.lookback + 3 * panel.horizon,
                panel
                    .too_short
                    .iter()
                    .take(10)
                    .map(|(id, n)| format!("{id} ({n})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panel_with(last_rows: f32) -> Panel {
        panel_scaled(last_rows, None)
    }

    /// The panel of `series` (id and daily values from 2020-01-01) in a file `day,id,v`, loaded
    /// with a look-back of `lookback` and a horizon of 4 as `setup` sets the experiment.
    fn load_values(
        name: &str,
        series: &[(&str, Vec<f32>)],
        lookback: usize,
        setup: impl FnOnce(&mut Experiment),
    ) -> Panel {
        let dir = std::env::temp_dir().join(format!("gatecast-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = String::from("day,id,v\n");
        let t0 = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        for (id, values) in series {
            for (d, v) in values.iter().enumerate() {
                text += &format!("{},{id},{v}\n", t0 + chrono::TimeDelta::days(d as i64));
            }
        }
        let path = dir.join("p.csv");
        std::fs::write(&path, text).unwrap();
        let mut exp = Experiment::default();
        exp.data.path = path.display().to_string();
        exp.data.time_column = "day".into();
        exp.data.id_column = "id".into();
        exp.data.targets = vec!["v".into()];
        exp.data.covariates.clear();
        exp.data.calendar.clear();
        exp.window.lookback = lookback;
        exp.window.horizon = 4;
        setup(&mut exp);
        exp.validate().unwrap();
        let p = load(&exp).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        p
    }

    fn panel_scaled(last_rows: f32, scaler: Option<ScalerKind>) -> Panel {
        // Rows 12.. are validation and test (horizon 4): their values must not matter.
        let values = |sign: f32| -> Vec<f32> {
            (0..20)
                .map(|d| {
                    if d >= 12 {
                        last_rows
                    } else {
                        sign * (d as f32 + 1.0)
                    }
                })
                .collect()
        };
        let series = [("a", values(1.0)), ("b", values(-1.0))];
        load_values(&format!("scale-{last_rows}"), &series, 4, |exp| {
            exp.data.scaler = scaler;
            // One scale per series: window scales have a test of their own.
            exp.data.window_scale = Some(false);
        })
    }

    /// Each series' scale is the mean absolute value of its own training rows only; the model
    /// reads values over that scale, which multiply back to the file's values.
    #[test]
    fn per_series_scale_from_training_rows_round_trips() {
        let p = panel_with(0.0);
        assert!(p.series.iter().all(|s| s.offset == 0.0));
        // Training rows 1..=12: mean |v| = 6.5 for both series.
        assert_eq!(
            p.series.iter().map(|s| s.scale).collect::<Vec<_>>(),
            [6.5, 6.5]
        );
        assert_eq!(
            panel_with(1e6).series[0].scale,
            6.5,
            "held-out rows moved the scale"
        );
        let device = Device::flex();
        let origins = p.origins_at(|s| s.train_end(p.horizon));
        let b = p.batch(&origins, &device);
        let x = b.inputs.narrow(2, 0, 1).reshape([2, 4]) * b.scale.reshape([2, 1]);
        let got = x.to_data().try_to_vec_as::<f32>().unwrap();
        assert_eq!(got, [9.0, 10.0, 11.0, 12.0, -9.0, -10.0, -11.0, -12.0]);
        // Training origins end their targets inside the training rows.
        for o in p.train_origins(1) {
            assert!(o.origin + p.horizon <= p.series[o.series].train_end(p.horizon));
            assert!(o.origin >= p.lookback);
        }
        assert_eq!(p.train_origins(1).len(), 2 * 5);
    }

    /// `data.scaler = "standard"`: each series less the mean of its own training rows, over
    /// their std; the batch multiplies back to the file's values, and the targets are the
    /// series less its offset.
    #[test]
    fn standard_scaling_per_series_from_training_rows_round_trips() {
        let p = panel_scaled(0.0, Some(ScalerKind::Standard));
        let std = (143.0f32 / 12.0).sqrt();
        for (s, mean) in p.series.iter().zip([6.5, -6.5]) {
            assert_eq!(s.offset, mean);
            assert!((s.scale - std).abs() < 1e-5, "{}", s.scale);
        }
        let moved = panel_scaled(1e6, Some(ScalerKind::Standard));
        assert_eq!(
            moved.series[1].offset, -6.5,
            "held-out rows moved the offset"
        );
        let device = Device::flex();
        let origins = p.origins_at(|s| s.train_end(p.horizon));
        let b = p.batch(&origins, &device);
        let offsets = Tensor::<2>::from_data(TensorData::new(vec![6.5f32, -6.5], [2, 1]), &device);
        let x = b.inputs.narrow(2, 0, 1).reshape([2, 4]) * b.scale.reshape([2, 1]) + offsets;
        let got = x.to_data().try_to_vec_as::<f32>().unwrap();
        for (g, want) in got
            .iter()
            .zip([9.0, 10.0, 11.0, 12.0, -9.0, -10.0, -11.0, -12.0])
        {
            assert!((g - want).abs() < 1e-5, "{got:?}");
        }
        let target = b.target.to_data().try_to_vec_as::<f32>().unwrap();
        assert_eq!(target, [-6.5, -6.5, -6.5, -6.5, 6.5, 6.5, 6.5, 6.5]);
    }

    /// A panel of `series` series of `rows` rows, values 1 before `1e6` from row `huge` on.
    fn few(series: usize, rows: usize, huge: usize, valid_windows: usize) -> Panel {
        let values: Vec<f32> = (0..rows)
            .map(|d| if d >= huge { 1e6 } else { 1.0 })
            .collect();
        let ids: Vec<String> = (0..series).map(|k| format!("s{k}")).collect();
        let series: Vec<(&str, Vec<f32>)> =
            ids.iter().map(|id| (id.as_str(), values.clone())).collect();
        let name = format!("valid-{}-{rows}-{valid_windows}", series.len());
        load_values(&name, &series, 8, |exp| {
            exp.train.valid_windows = valid_windows;
            exp.data.window_scale = Some(false);
        })
    }

    /// A panel of fewer series than `train.valid_windows` validates each on a span of several
    /// origins (at most 10% of its rows), and trains and scales on the rows before it only; a
    /// panel of as many series, or `valid_windows = 1`, on one horizon each.
    #[test]
    fn few_series_validate_on_more_windows_held_out_of_training() {
        // One series of 200 rows, horizon 4: 20 validation rows (10%), 17 origins.
        let p = few(1, 200, 176, 64);
        let s = &p.series[0];
        assert_eq!((s.valid, s.train_end(4)), (20, 176));
        assert_eq!(s.scale, 1.0, "validation rows moved the scale");
        let valid = p.valid_origins();
        assert_eq!(valid.len(), 17);
        for o in &valid {
            assert!(
                o.origin >= s.train_end(4) && o.origin + 4 <= s.test_start(4),
                "{o:?}"
            );
        }
        for o in p.train_origins(1) {
            assert!(o.origin + 4 <= s.train_end(4), "{o:?} reaches validation");
        }
        // Two series: up to 32 origins each, still capped at 10% of the rows.
        let p = few(2, 300, 266, 64);
        assert!(p.series.iter().all(|s| s.valid == 30));
        assert_eq!(p.valid_origins().len(), 2 * 27);
        // 40 rows: the span leaves a look-back and a horizon of training rows (40 − 16 = 24
        // rows of room, 10% is 4), so one horizon.
        assert_eq!(few(1, 40, 40, 64).series[0].valid, 4);
        // Enough series, or one window asked for: one horizon per series, as before.
        let p = few(8, 200, 200, 8);
        assert!(p.series.iter().all(|s| s.valid == 4));
        assert_eq!(p.valid_origins().len(), 8);
        assert_eq!(few(1, 200, 200, 1).valid_origins().len(), 1);
    }

    /// `data.window_scale`: a window's scale is its look-back's mean absolute value, whatever
    /// the series' training scale; a look-back of zeros takes the series' training scale.
    #[test]
    fn a_window_is_scaled_by_its_own_lookback() {
        // Zero for 20 days, then a level of 10 rising by 1 a day.
        let values = (0..60)
            .map(|d| if d < 20 { 0.0 } else { (d - 10) as f32 })
            .collect();
        let p = load_values("wscale", &[("a", values)], 4, |exp| {
            exp.data.window_scale = Some(true);
        });
        assert!(p.window_scale);
        let s = &p.series[0];
        // Training rows 0..52: 20 zeros and 10..=41.
        let trained = (10..=41).sum::<i32>() as f32 / 52.0;
        assert!((s.scale - trained).abs() < 1e-5, "{}", s.scale);
        let device = Device::flex();
        let at = |origin| Origin { series: 0, origin };
        // Origin 30: look-back rows 26..30 hold 16..=19, mean 17.5. Origin 10: all zero.
        let b = p.batch(&[at(30), at(10)], &device);
        let scales = b.scale.to_data().try_to_vec_as::<f32>().unwrap();
        assert_eq!(scales[0], 17.5);
        assert!((scales[1] - trained).abs() < 1e-5, "{scales:?}");
        let x = b.inputs.narrow(2, 0, 1).reshape([2, 4]);
        let first = x.to_data().try_to_vec_as::<f32>().unwrap();
        assert_eq!(
            first[..4],
            [16.0 / 17.5, 17.0 / 17.5, 18.0 / 17.5, 19.0 / 17.5]
        );
        // Off: every window of the series has its training scale.
        let mut off = p.clone();
        off.window_scale = false;
        let b = off.batch(&[at(30)], &device);
        let scales = b.scale.to_data().try_to_vec_as::<f32>().unwrap();
        assert!((scales[0] - trained).abs() < 1e-5, "{scales:?}");
        assert_eq!(window_scale(&[0.0, 0.0]), None);
        assert_eq!(window_scale(&[-2.0, 4.0]), Some(3.0));
    }
}
