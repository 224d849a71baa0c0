//! A direct multi-horizon forecaster: a recurrent encoder, then one linear map from its last
//! state (and any known-future covariates) to every step of the horizon at once.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::error::RecurrentError;
use crate::{Gru, Lstm, Rnn};
use crate::{GruConfig, LstmConfig, LstmState, RnnConfig};

/// Which recurrent cell encodes the look-back.
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum CellType {
    /// Elman RNN with tanh.
    Rnn,
    /// GRU.
    Gru,
    /// LSTM.
    Lstm,
}

/// Configuration of a [`Forecaster`].
#[derive(Config, Debug)]
pub struct ForecasterConfig {
    /// The recurrent cell.
    pub cell: CellType,
    /// Features per look-back step.
    pub input_size: usize,
    /// Hidden size of the recurrent layers.
    pub hidden_size: usize,
    /// Steps to forecast.
    pub horizon: usize,
    /// Target series forecast per step.
    pub targets: usize,
    /// Known-future covariates per horizon step (0 for none).
    #[config(default = 0)]
    pub future_size: usize,
    /// Stacked recurrent layers.
    #[config(default = 1)]
    pub num_layers: usize,
    /// Dropout between recurrent layers (training only).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Bidirectional encoder.
    #[config(default = false)]
    pub bidirectional: bool,
}

/// The recurrent encoder of a [`Forecaster`].
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Encoder {
    /// Elman RNN.
    Rnn(Rnn),
    /// GRU.
    Gru(Gru),
    /// LSTM.
    Lstm(Lstm),
}

impl Encoder {
    /// Runs the encoder; returns the final hidden state `[layers * directions, batch, hidden]`.
    fn final_hidden(
        &self,
        input: Tensor<3>,
        lengths: Option<&[usize]>,
    ) -> Result<Tensor<3>, RecurrentError> {
        Ok(match self {
            Encoder::Rnn(m) => m.try_forward(input, None, lengths)?.1,
            Encoder::Gru(m) => m.try_forward(input, None, lengths)?.1,
            Encoder::Lstm(m) => {
                let (_, LstmState { hidden, .. }) = m.try_forward(input, None, lengths)?;
                hidden
            }
        })
    }
}

/// Encoder + direct multi-horizon head: `[batch, lookback, inputs]` (+ `[batch, horizon,
/// future]`) → `[batch, horizon, targets]`.
///
/// The head reads the last layer's final hidden state (both directions when bidirectional),
/// concatenated with the flattened known-future covariates.
#[derive(Module, Debug)]
pub struct Forecaster {
    /// The recurrent encoder.
    pub encoder: Encoder,
    /// `[directions * hidden + horizon * future] → [horizon * targets]`.
    pub head: Linear,
    horizon: usize,
    targets: usize,
    future_size: usize,
    directions: usize,
}

impl ForecasterConfig {
    /// Builds the forecaster (PyTorch-style initialisation for the recurrent layers).
    pub fn init(&self, device: &Device) -> Forecaster {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds the forecaster, or says which config field is out of range.
    pub fn try_init(&self, device: &Device) -> Result<Forecaster, RecurrentError> {
        for (option, v) in [("horizon", self.horizon), ("targets", self.targets)] {
            if v == 0 {
                return Err(RecurrentError::InvalidConfig {
                    option,
                    value: "0".into(),
                    expected: "must be at least 1",
                });
            }
        }
        let (i, h, l, p, b) = (
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.dropout,
            self.bidirectional,
        );
        let encoder = match self.cell {
            CellType::Rnn => Encoder::Rnn(
                RnnConfig::new(i, h)
                    .with_num_layers(l)
                    .with_dropout(p)
                    .with_bidirectional(b)
                    .try_init(device)?,
            ),
            CellType::Gru => Encoder::Gru(
                GruConfig::new(i, h)
                    .with_num_layers(l)
                    .with_dropout(p)
                    .with_bidirectional(b)
                    .try_init(device)?,
            ),
            CellType::Lstm => Encoder::Lstm(
                LstmConfig::new(i, h)
                    .with_num_layers(l)
                    .with_dropout(p)
                    .with_bidirectional(b)
                    .try_init(device)?,
            ),
        };
        let directions = if b { 2 } else { 1 };
        let head = LinearConfig::new(
            directions * h + self.horizon * self.future_size,
            self.horizon * self.targets,
        )
        .init(device);
        Ok(Forecaster {
            encoder,
            head,
            horizon: self.horizon,
            targets: self.targets,
            future_size: self.future_size,
            directions,
        })
    }
}

impl Forecaster {
    /// Forecasts every horizon step at once.
    ///
    /// - `inputs`: `[batch, lookback, input_size]`.
    /// - `future`: `[batch, horizon, future_size]` known-future covariates, required when the
    ///   forecaster was built with `future_size > 0`.
    ///
    /// Returns `[batch, horizon, targets]`.
    ///
    /// # Panics
    /// On shapes that do not match the config; [`Forecaster::try_forward`] returns errors.
    pub fn forward(&self, inputs: Tensor<3>, future: Option<Tensor<3>>) -> Tensor<3> {
        self.try_forward(inputs, future, None)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Forecaster::forward`] with shape checks and optional look-back lengths `[batch]`.
    pub fn try_forward(
        &self,
        inputs: Tensor<3>,
        future: Option<Tensor<3>>,
        lengths: Option<&[usize]>,
    ) -> Result<Tensor<3>, RecurrentError> {
        let batch = inputs.dims()[0];
        let hidden = self.encoder.final_hidden(inputs, lengths)?;
        let [rows, _, h] = hidden.dims();
        // The last layer's directions: [directions, batch, hidden] → [batch, directions * hidden].
        let last = hidden
            .narrow(0, rows - self.directions, self.directions)
            .swap_dims(0, 1)
            .reshape([batch, self.directions * h]);
        let features = match (future, self.future_size) {
            (None, 0) => last,
            (Some(f), c) if c > 0 && f.dims() == [batch, self.horizon, c] => {
                Tensor::cat(vec![last, f.reshape([batch, self.horizon * c])], 1)
            }
            (f, c) => {
                return Err(RecurrentError::StateShape {
                    which: "future covariates",
                    expected: [batch, self.horizon, c],
                    found: f.map(|f| f.dims()).unwrap_or([0, 0, 0]),
                })
            }
        };
        Ok(self
            .head
            .forward(features)
            .reshape([batch, self.horizon, self.targets]))
    }

    /// Steps forecast.
    pub fn horizon(&self) -> usize {
        self.horizon
    }

    /// Targets per step.
    pub fn targets(&self) -> usize {
        self.targets
    }
}
