//! Sliding windows over shared series, as a Burn `Dataset`, and the batcher that stacks them.

use std::ops::Range;
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::series::Series;

/// What a window holds, by column name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowConfig {
    /// Look-back `L`: input steps per window.
    pub lookback: usize,
    /// Horizon `H`: steps to forecast.
    pub horizon: usize,
    /// Rows between the starts of consecutive windows (1 = every window).
    pub stride: usize,
    /// Columns fed to the model over the look-back (targets and past covariates).
    pub inputs: Vec<String>,
    /// Columns to forecast over the horizon.
    pub targets: Vec<String>,
    /// Known-future covariates over the horizon (e.g. calendar features); may be empty.
    pub future: Vec<String>,
}

impl WindowConfig {
    /// `lookback` → `horizon` windows with stride 1, predicting `targets` from `inputs`.
    pub fn new(lookback: usize, horizon: usize, inputs: Vec<String>, targets: Vec<String>) -> Self {
        Self {
            lookback,
            horizon,
            stride: 1,
            inputs,
            targets,
            future: Vec::new(),
        }
    }

    fn check(&self) -> Result<(), DataError> {
        for (option, value) in [
            ("lookback", self.lookback),
            ("horizon", self.horizon),
            ("stride", self.stride),
        ] {
            if value == 0 {
                return Err(DataError::InvalidOption {
                    option: option.into(),
                    message: "must be at least 1".into(),
                });
            }
        }
        if self.inputs.is_empty() || self.targets.is_empty() {
            return Err(DataError::InvalidOption {
                option: "columns".into(),
                message: "a window needs at least one input and one target column".into(),
            });
        }
        Ok(())
    }
}

/// One window, copied out of the shared series.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Which series it came from.
    pub series: usize,
    /// Row of its first look-back step.
    pub start: usize,
    /// [`Series::step_number`] of its first look-back step: where a cycle's phase is read.
    pub step: Option<i64>,
    /// `[lookback, inputs]`, row-major.
    pub inputs: Vec<f32>,
    /// `[horizon, targets]`, row-major.
    pub targets: Vec<f32>,
    /// `[horizon, future]`, row-major (empty without known-future covariates).
    pub future: Vec<f32>,
}

/// Where the windows of one series segment start: `first`, `first + stride`, ...
#[derive(Debug, Clone)]
struct Run {
    series: usize,
    first: usize,
    count: usize,
}

/// All windows of some row range of one or many series, indexed without materialising them.
///
/// The series are shared (`Arc`), and only one small record per segment is kept, so memory is
/// proportional to the data, not to the number of windows. Windows never cross a kept gap (a
/// segment boundary of the [`Series`]) or the end of the range.
#[derive(Debug, Clone)]
pub struct WindowDataset {
    series: Vec<Arc<Series>>,
    runs: Vec<Run>,
    /// `ends[i]` = number of windows in runs `0..=i`.
    ends: Vec<usize>,
    config: WindowConfig,
    columns: Vec<(Vec<usize>, Vec<usize>, Vec<usize>)>,
}

impl WindowDataset {
    /// Windows of `rows` of one series.
    pub fn new(
        series: Arc<Series>,
        rows: Range<usize>,
        config: WindowConfig,
    ) -> Result<Self, DataError> {
        Self::many(vec![(series, rows)], config)
    }

    /// Windows of several series (a "global" dataset), each restricted to its row range.
    pub fn many(
        parts: Vec<(Arc<Series>, Range<usize>)>,
        config: WindowConfig,
    ) -> Result<Self, DataError> {
        config.check()?;
        let span = config.lookback + config.horizon;
        let mut runs = Vec::new();
        let mut columns = Vec::new();
        let mut series = Vec::new();
        for (index, (s, rows)) in parts.into_iter().enumerate() {
            if rows.end > s.rows() {
                return Err(DataError::InvalidOption {
                    option: "rows".into(),
                    message: format!("{}: rows {rows:?} beyond its {} rows", s.name, s.rows()),
                });
            }
            columns.push((
                s.column_indices(&config.inputs, "inputs")?,
                s.column_indices(&config.targets, "targets")?,
                s.column_indices(&config.future, "future")?,
            ));
            for seg in &s.segments {
                let (a, b) = (seg.start.max(rows.start), seg.end.min(rows.end));
                if b >= a + span {
                    runs.push(Run {
                        series: index,
                        first: a,
                        count: (b - a - span) / config.stride + 1,
                    });
                }
            }
            series.push(s);
        }
        let ends = runs
            .iter()
            .scan(0, |acc, r| {
                *acc += r.count;
                Some(*acc)
            })
            .collect();
        Ok(Self {
            series,
            runs,
            ends,
            config,
            columns,
        })
    }

    /// The window configuration.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// The series windows are drawn from.
    pub fn series(&self) -> &[Arc<Series>] {
        &self.series
    }

    /// `(series, start row)` of window `index`.
    pub fn locate(&self, index: usize) -> Option<(usize, usize)> {
        let run = self.ends.partition_point(|e| *e <= index);
        let r = self.runs.get(run)?;
        let before = if run == 0 { 0 } else { self.ends[run - 1] };
        Some((r.series, r.first + (index - before) * self.config.stride))
    }

    fn gather(s: &Series, rows: Range<usize>, cols: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * cols.len());
        for r in rows {
            let row = s.row(r);
            out.extend(cols.iter().map(|c| row[*c]));
        }
        out
    }
}

impl Dataset<Window> for WindowDataset {
    fn get(&self, index: usize) -> Result<Window, DatasetError> {
        let (series, start) = self.locate(index).ok_or_else(|| {
            DatasetError::new(std::io::Error::other(format!(
                "window {index} of {}",
                self.len()
            )))
        })?;
        let s = &self.series[series];
        let (inputs, targets, future) = &self.columns[series];
        let (l, h) = (self.config.lookback, self.config.horizon);
        Ok(Window {
            series,
            start,
            step: s.step_number(start),
            inputs: Self::gather(s, start..start + l, inputs),
            targets: Self::gather(s, start + l..start + l + h, targets),
            future: Self::gather(s, start + l..start + l + h, future),
        })
    }

    fn len(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }
}

/// A batch of windows.
#[derive(Debug, Clone)]
pub struct ForecastBatch {
    /// `[batch, lookback, inputs]`.
    pub inputs: Tensor<3>,
    /// `[batch, horizon, targets]`.
    pub targets: Tensor<3>,
    /// `[batch, horizon, future]`, `None` without known-future covariates.
    pub future: Option<Tensor<3>>,
    /// `[batch]`: each window's [`Window::step`], `None` if any window has none (a series
    /// without a sampling step).
    pub steps: Option<Vec<i64>>,
}

/// Stacks [`Window`]s into a [`ForecastBatch`].
#[derive(Debug, Clone)]
pub struct ForecastBatcher {
    lookback: usize,
    horizon: usize,
    inputs: usize,
    targets: usize,
    future: usize,
}

impl ForecastBatcher {
    /// A batcher for windows shaped by `config`.
    pub fn new(config: &WindowConfig) -> Self {
        Self {
            lookback: config.lookback,
            horizon: config.horizon,
            inputs: config.inputs.len(),
            targets: config.targets.len(),
            future: config.future.len(),
        }
    }
}

fn stack(
    items: &[Window],
    part: impl Fn(&Window) -> &[f32],
    shape: [usize; 3],
    device: &Device,
) -> Tensor<3> {
    let mut data = Vec::with_capacity(shape.iter().product());
    for w in items {
        data.extend_from_slice(part(w));
    }
    Tensor::from_data(TensorData::new(data, shape), device)
}

impl Batcher<Window, ForecastBatch> for ForecastBatcher {
    fn batch(&self, items: Vec<Window>, device: &Device) -> ForecastBatch {
        let b = items.len();
        ForecastBatch {
            inputs: stack(
                &items,
                |w| &w.inputs,
                [b, self.lookback, self.inputs],
                device,
            ),
            targets: stack(
                &items,
                |w| &w.targets,
                [b, self.horizon, self.targets],
                device,
            ),
            future: (self.future > 0).then(|| {
                stack(
                    &items,
                    |w| &w.future,
                    [b, self.horizon, self.future],
                    device,
                )
            }),
            steps: items.iter().map(|w| w.step).collect(),
        }
    }
}
