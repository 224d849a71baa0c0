//! One model over many series (DeepAR-class): a learned embedding of the series id joins every
//! look-back step's features, and one of two decoders gives a distribution per horizon step, in
//! the series' own units through its scale:
//!
//! - direct: a recurrent encoder reads the look-back and one head emits every horizon step's
//!   parameters at once (MQ-RNN's decoder);
//! - autoregressive (DeepAR): one recurrent network reads, at each step, the previous step's
//!   value with this step's covariates and emits this step's distribution. Training feeds it the
//!   actual previous values (teacher forcing: look-back and horizon in one pass); forecasting
//!   feeds back values drawn from its own distributions, one path per draw (ancestral
//!   sampling).
//!
//! Features per step are `[value / scale, covariates..., ln(1 + scale)]`: the first is the one
//! the autoregressive decoder shifts by a step.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

use super::forecaster::{build_cell, CellType, Encoder, Forecaster, ForecasterConfig};
use super::likelihood::{Likelihood, Predicted};
use super::sampling::HostDistribution;
use crate::error::RecurrentError;

/// Configuration of a [`GlobalForecaster`].
#[derive(Config, Debug)]
pub struct GlobalForecasterConfig {
    /// The recurrent cell.
    pub cell: CellType,
    /// Features per look-back step, not counting the embedding (e.g. the scaled target, calendar
    /// features, the log of the series' scale).
    pub input_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Steps forecast.
    pub horizon: usize,
    /// How many series the embedding knows (ids `0..series`).
    pub series: usize,
    /// What is forecast per step.
    pub likelihood: Likelihood,
    /// Width of the series-id embedding (0: no embedding).
    #[config(default = 8)]
    pub embedding_size: usize,
    /// Known-future covariates per horizon step (0 for none).
    #[config(default = 0)]
    pub future_size: usize,
    /// Stacked recurrent layers.
    #[config(default = 2)]
    pub num_layers: usize,
    /// Dropout between recurrent layers (training only).
    #[config(default = 0.1)]
    pub dropout: f64,
    /// DeepAR's decoder (see the module docs) instead of the direct head. Needs `future_size`
    /// to be `input_size - 2` (the covariates of every step, known ahead).
    #[config(default = false)]
    pub autoregressive: bool,
}

/// A global probabilistic forecaster: `inputs [batch, lookback, input_size]`, `series
/// [batch]`, `future [batch, horizon, future_size]`, `scale [batch, 1, 1]` → a distribution
/// per horizon step ([`Predicted`], `[batch, horizon, 1]`).
#[derive(Module, Debug)]
pub struct GlobalForecaster {
    embedding: Option<Embedding>,
    /// The direct model (absent when autoregressive).
    net: Option<Forecaster>,
    /// The autoregressive network and its per-step head `[hidden] → [raw_size]`.
    rnn: Option<Encoder>,
    step_head: Option<Linear>,
    #[module(skip)]
    horizon: usize,
    #[module(skip)]
    likelihood: Likelihood,
    #[module(skip)]
    series: usize,
}

impl GlobalForecasterConfig {
    /// Builds the model, or says which field is out of range.
    pub fn try_init(&self, device: &Device) -> Result<GlobalForecaster, RecurrentError> {
        if self.series == 0 {
            return Err(RecurrentError::InvalidConfig {
                option: "series",
                value: "0".into(),
                expected: "must be at least 1",
            });
        }
        self.likelihood
            .validate()
            .map_err(|_| RecurrentError::InvalidConfig {
                option: "likelihood",
                value: format!("{:?}", self.likelihood),
                expected: "quantile levels strictly between 0 and 1, increasing",
            })?;
        let embedding = (self.embedding_size > 0)
            .then(|| EmbeddingConfig::new(self.series, self.embedding_size).init(device));
        let inputs = self.input_size + self.embedding_size;
        let raw = self.likelihood.raw_size();
        let (net, rnn, step_head) = if self.autoregressive {
            if self.input_size != self.future_size + 2 {
                return Err(RecurrentError::InvalidConfig {
                    option: "future_size",
                    value: self.future_size.to_string(),
                    expected: "input_size - 2 when autoregressive: every step's covariates are known ahead",
                });
            }
            let rnn = build_cell(
                self.cell,
                inputs,
                self.hidden_size,
                self.num_layers,
                self.dropout,
                false,
                device,
            )?;
            let head = LinearConfig::new(self.hidden_size, raw).init(device);
            (None, Some(rnn), Some(head))
        } else {
            let net = ForecasterConfig::new(self.cell, inputs, self.hidden_size, self.horizon, raw)
                .with_future_size(self.future_size)
                .with_num_layers(self.num_layers)
                .with_dropout(self.dropout)
                .try_init(device)?;
            (Some(net), None, None)
        };
        Ok(GlobalForecaster {
            embedding,
            net,
            rnn,
            step_head,
            horizon: self.horizon,
            likelihood: self.likelihood.clone(),
            series: self.series,
        })
    }
}

impl GlobalForecaster {
    /// The distribution of every horizon step.
    ///
    /// - `inputs`: `[batch, lookback, input_size]`, already divided by the series' scale.
    /// - `series`: `[batch]`, ids in `0..series`.
    /// - `future`: `[batch, horizon, future_size]` when built with `future_size > 0`.
    /// - `scale`: `[batch, 1, 1]`, positive: the distribution comes out multiplied by it.
    ///
    /// Autoregressive models need `target` `[batch, horizon, 1]` (the actual values, fed back
    /// one step late: teacher forcing); direct ones ignore it. To forecast with an
    /// autoregressive model, draw paths with [`GlobalForecaster::sample_paths`].
    pub fn forward(
        &self,
        inputs: Tensor<3>,
        series: Tensor<1, Int>,
        future: Option<Tensor<3>>,
        scale: Tensor<3>,
        target: Option<Tensor<3>>,
    ) -> Result<Predicted, RecurrentError> {
        let [batch, lookback, _] = inputs.dims();
        let id = self.embed(series, batch);
        if let Some(net) = &self.net {
            let inputs = with_id(inputs, &id, lookback);
            let raw = net.try_forward(inputs, future, None)?;
            return Ok(self.likelihood.distribution(raw, scale));
        }
        let target = target.ok_or(RecurrentError::InvalidConfig {
            option: "autoregressive",
            value: "true".into(),
            expected: "the actual horizon values to train on (teacher forcing); forecast with sample_paths",
        })?;
        let h = self.horizon;
        // Horizon steps read the previous step's actual value.
        let last = inputs.clone().narrow(1, lookback - 1, 1).narrow(2, 0, 1);
        let previous = if h > 1 {
            Tensor::cat(vec![last, (target / scale.clone()).narrow(1, 0, h - 1)], 1)
        } else {
            last
        };
        let horizon = step_features(previous, future, log_scale(&inputs), h);
        let all = Tensor::cat(vec![context(inputs), horizon], 1);
        let steps = all.dims()[1];
        let (out, _) = self.rnn().run(with_id(all, &id, steps), None)?;
        let raw = self.head(out.narrow(1, steps - h, h));
        Ok(self.likelihood.distribution(raw, scale))
    }

    /// Forecast paths of an autoregressive model: each of `paths` copies of every window runs
    /// the horizon feeding back the value `draw` takes from its own step's distribution (a
    /// seeded sampler for DeepAR's ancestral sampling). Returns `[batch][paths][horizon]` in
    /// the series' units.
    #[allow(clippy::too_many_arguments)]
    pub fn sample_paths(
        &self,
        inputs: Tensor<3>,
        series: Tensor<1, Int>,
        future: Option<Tensor<3>>,
        scale: Tensor<3>,
        paths: usize,
        mut draw: impl FnMut(&HostDistribution) -> Vec<f64>,
    ) -> Result<Vec<Vec<Vec<f64>>>, RecurrentError> {
        let [batch, lookback, _] = inputs.dims();
        let h = self.horizon;
        let n = batch * paths;
        let id = self.embed(series, batch);
        // Each window's rows repeated `paths` times, consecutively.
        let rep = |t: Tensor<3>| {
            let [b, s, c] = t.dims();
            t.unsqueeze_dim::<4>(1)
                .repeat_dim(1, paths)
                .reshape([b * paths, s, c])
        };
        let ctx = context(inputs.clone());
        let steps = ctx.dims()[1];
        let (_, state) = self.rnn().run(with_id(ctx, &id, steps), None)?;
        let rep_state = |t: Tensor<3>| {
            let [l, b, c] = t.dims();
            t.unsqueeze_dim::<4>(2)
                .repeat_dim(2, paths)
                .reshape([l, b * paths, c])
        };
        let mut state = (rep_state(state.0), state.1.map(rep_state));
        // Only what the horizon steps read is repeated, not the whole look-back.
        let device = inputs.device();
        let mut previous = rep(inputs.clone().narrow(1, lookback - 1, 1).narrow(2, 0, 1));
        let log_scale = rep(log_scale(&inputs));
        let future = future.map(rep);
        let id = id.map(rep);
        let scale = rep(scale);
        let mut out = vec![vec![vec![0.0; h]; paths]; batch];
        // k is the horizon step: it slices the covariates and indexes every path.
        #[allow(clippy::needless_range_loop)]
        for k in 0..h {
            let cov = future.clone().map(|fu| fu.narrow(1, k, 1));
            let x = step_features(previous, cov, log_scale.clone(), 1);
            let (y, next) = self.rnn().run(with_id(x, &id, 1), Some(state))?;
            state = next;
            let dist = self.likelihood.distribution(self.head(y), scale.clone());
            let values = draw(&dist.to_host());
            for (row, v) in values.iter().enumerate() {
                out[row / paths][row % paths][k] = *v;
            }
            let v: Vec<f32> = values.iter().map(|v| *v as f32).collect();
            previous = Tensor::<3>::from_data(burn::tensor::TensorData::new(v, [n, 1, 1]), &device)
                / scale.clone();
        }
        Ok(out)
    }

    fn rnn(&self) -> &Encoder {
        self.rnn
            .as_ref()
            .expect("an autoregressive model has its network")
    }

    fn head(&self, out: Tensor<3>) -> Tensor<3> {
        let head = self
            .step_head
            .as_ref()
            .expect("an autoregressive model has its head");
        head.forward(out)
    }

    fn embed(&self, series: Tensor<1, Int>, batch: usize) -> Option<Tensor<3>> {
        self.embedding
            .as_ref()
            .map(|e| e.forward(series.reshape([batch, 1])))
    }

    /// Whether the model is DeepAR's autoregressive one.
    pub fn is_autoregressive(&self) -> bool {
        self.rnn.is_some()
    }

    /// What the model forecasts.
    pub fn likelihood(&self) -> &Likelihood {
        &self.likelihood
    }

    /// How many series ids the embedding knows.
    pub fn series(&self) -> usize {
        self.series
    }

    /// Steps forecast.
    pub fn horizon(&self) -> usize {
        self.horizon
    }
}

/// `[batch, steps, features]` for horizon steps: the previous value, the steps' covariates,
/// and `log_scale` `[batch, 1, 1]` on every step.
fn step_features(
    previous: Tensor<3>,
    future: Option<Tensor<3>>,
    log_scale: Tensor<3>,
    steps: usize,
) -> Tensor<3> {
    let mut parts = vec![previous];
    parts.extend(future);
    parts.push(log_scale.repeat_dim(1, steps));
    Tensor::cat(parts, 2)
}

/// The log-scale feature of each window (the last input feature), `[batch, 1, 1]`.
fn log_scale(inputs: &Tensor<3>) -> Tensor<3> {
    let f = inputs.dims()[2];
    inputs.clone().narrow(1, 0, 1).narrow(2, f - 1, 1)
}

/// The look-back as the autoregressive network reads it: at step t the value of step t − 1 and
/// the covariates of step t (so `lookback − 1` steps).
fn context(inputs: Tensor<3>) -> Tensor<3> {
    let [_, l, f] = inputs.dims();
    Tensor::cat(
        vec![
            inputs.clone().narrow(1, 0, l - 1).narrow(2, 0, 1),
            inputs.narrow(1, 1, l - 1).narrow(2, 1, f - 1),
        ],
        2,
    )
}

/// `x` with the series embedding `[batch, 1, e]` appended to each of its `steps` steps.
fn with_id(x: Tensor<3>, id: &Option<Tensor<3>>, steps: usize) -> Tensor<3> {
    match id {
        Some(id) => Tensor::cat(vec![x, id.clone().repeat_dim(1, steps)], 2),
        None => x,
    }
}
