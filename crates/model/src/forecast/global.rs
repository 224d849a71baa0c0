//! One model over many series (DeepAR-class): a learned embedding of the series id joins every
//! look-back step's features, a recurrent encoder reads them, and a direct head emits a
//! distribution for every horizon step at once (MQ-RNN's decoder), in the series' own units
//! through its scale.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::{Device, Int, Tensor};

use super::forecaster::{CellType, Forecaster, ForecasterConfig};
use super::likelihood::{Likelihood, Predicted};
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
}

/// A global probabilistic forecaster: `inputs [batch, lookback, input_size]`, `series
/// [batch]`, `future [batch, horizon, future_size]`, `scale [batch, 1, 1]` → a distribution
/// per horizon step ([`Predicted`], `[batch, horizon, 1]`).
#[derive(Module, Debug)]
pub struct GlobalForecaster {
    embedding: Option<Embedding>,
    net: Forecaster,
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
        let net = ForecasterConfig::new(
            self.cell,
            self.input_size + self.embedding_size,
            self.hidden_size,
            self.horizon,
            self.likelihood.raw_size(),
        )
        .with_future_size(self.future_size)
        .with_num_layers(self.num_layers)
        .with_dropout(self.dropout)
        .try_init(device)?;
        Ok(GlobalForecaster {
            embedding,
            net,
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
    pub fn forward(
        &self,
        inputs: Tensor<3>,
        series: Tensor<1, Int>,
        future: Option<Tensor<3>>,
        scale: Tensor<3>,
    ) -> Result<Predicted, RecurrentError> {
        let [batch, lookback, _] = inputs.dims();
        let inputs = match &self.embedding {
            Some(e) => {
                let id = e.forward(series.reshape([batch, 1]));
                Tensor::cat(vec![inputs, id.repeat_dim(1, lookback)], 2)
            }
            None => inputs,
        };
        let raw = self.net.try_forward(inputs, future, None)?;
        Ok(self.likelihood.distribution(raw, scale))
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
        self.net.horizon()
    }
}
