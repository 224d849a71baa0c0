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
    /// Decode step by step instead of all horizon steps at once: a one-layer decoder of the same
    /// cell starts from the encoder's last-layer forward state and, at each step, reads the
    /// previous step's forecast (at the first step the last observed targets, which must be the
    /// first `targets` input features) and that step's known-future covariates.
    #[config(default = false)]
    pub autoregressive: bool,
    /// Subtract each sequence's last look-back value from every input channel before encoding,
    /// and add the last target values back to the forecast (SegRNN's normalisation): robust to
    /// level shifts between training and test data. Needs the targets as the first input
    /// features.
    #[config(default = false)]
    pub last_value_norm: bool,
    /// Reversible instance normalisation (Kim et al., ICLR 2022), without its affine weights:
    /// each sequence's input channels are standardised by their own look-back mean and
    /// standard deviation before encoding, and the forecast is scaled back by the targets'.
    /// Robust to level and scale shifts between training and test data; instead of
    /// `last_value_norm`. Needs the targets as the first input features.
    #[config(default = false)]
    pub revin: bool,
}

/// The recurrent encoder of a [`Forecaster`].
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Encoder {
    /// Elman RNN.
    Rnn(Rnn),
    /// GRU.
    Gru(Gru),
    /// LSTM.
    Lstm(Lstm),
}

impl Encoder {
    /// Runs the cell from an optional initial state; returns the last layer's output
    /// `[batch, time, directions * hidden]` and the final state (hidden, and the LSTM's cell).
    #[allow(clippy::type_complexity)]
    pub(super) fn run(
        &self,
        input: Tensor<3>,
        state: Option<(Tensor<3>, Option<Tensor<3>>)>,
    ) -> Result<(Tensor<3>, (Tensor<3>, Option<Tensor<3>>)), RecurrentError> {
        Ok(match self {
            Encoder::Rnn(m) => {
                let (out, h) = m.try_forward(input, state.map(|s| s.0), None)?;
                (out, (h, None))
            }
            Encoder::Gru(m) => {
                let (out, h) = m.try_forward(input, state.map(|s| s.0), None)?;
                (out, (h, None))
            }
            Encoder::Lstm(m) => {
                let init = state.and_then(|(h, c)| c.map(|c| LstmState::new(h, c)));
                let (out, LstmState { hidden, cell }) = m.try_forward(input, init, None)?;
                (out, (hidden, Some(cell)))
            }
        })
    }

    /// Runs the cell from an optional initial state; returns the final hidden state
    /// `[layers * directions, batch, hidden]` and, for the LSTM, the final cell state.
    fn final_state(
        &self,
        input: Tensor<3>,
        state: Option<(Tensor<3>, Option<Tensor<3>>)>,
        lengths: Option<&[usize]>,
    ) -> Result<(Tensor<3>, Option<Tensor<3>>), RecurrentError> {
        Ok(match self {
            Encoder::Rnn(m) => (m.try_forward(input, state.map(|s| s.0), lengths)?.1, None),
            Encoder::Gru(m) => (m.try_forward(input, state.map(|s| s.0), lengths)?.1, None),
            Encoder::Lstm(m) => {
                let init = state.and_then(|(h, c)| c.map(|c| LstmState::new(h, c)));
                let (_, LstmState { hidden, cell }) = m.try_forward(input, init, lengths)?;
                (hidden, Some(cell))
            }
        })
    }
}

pub(super) fn build_cell(
    cell: CellType,
    input: usize,
    hidden: usize,
    layers: usize,
    dropout: f64,
    bidirectional: bool,
    device: &Device,
) -> Result<Encoder, RecurrentError> {
    Ok(match cell {
        CellType::Rnn => Encoder::Rnn(
            RnnConfig::new(input, hidden)
                .with_num_layers(layers)
                .with_dropout(dropout)
                .with_bidirectional(bidirectional)
                .try_init(device)?,
        ),
        CellType::Gru => Encoder::Gru(
            GruConfig::new(input, hidden)
                .with_num_layers(layers)
                .with_dropout(dropout)
                .with_bidirectional(bidirectional)
                .try_init(device)?,
        ),
        CellType::Lstm => Encoder::Lstm(
            LstmConfig::new(input, hidden)
                .with_num_layers(layers)
                .with_dropout(dropout)
                .with_bidirectional(bidirectional)
                .try_init(device)?,
        ),
    })
}

/// Encoder + direct multi-horizon head: `[batch, lookback, inputs]` (+ `[batch, horizon,
/// future]`) → `[batch, horizon, targets]`.
///
/// The head reads the last layer's final hidden state (both directions when bidirectional),
/// concatenated with the flattened known-future covariates.
#[derive(Module, Debug)]
pub struct Forecaster {
    /// The recurrent encoder.
    encoder: Encoder,
    /// Direct head: `[directions * hidden + horizon * future] → [horizon * targets]` (absent
    /// when autoregressive).
    pub head: Option<Linear>,
    /// Autoregressive decoder: one layer, input `targets + future`, hidden as the encoder's.
    decoder: Option<Encoder>,
    /// Autoregressive read-out `[hidden] → [targets]`.
    pub step_head: Option<Linear>,
    horizon: usize,
    targets: usize,
    future_size: usize,
    directions: usize,
    last_value_norm: bool,
    revin: bool,
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
        if self.revin && self.last_value_norm {
            return Err(RecurrentError::InvalidConfig {
                option: "revin",
                value: "true".into(),
                expected: "one window normalisation: revin or last_value_norm, not both",
            });
        }
        if (self.revin || self.last_value_norm) && self.input_size < self.targets {
            return Err(RecurrentError::InvalidConfig {
                option: if self.revin {
                    "revin"
                } else {
                    "last_value_norm"
                },
                value: "true".into(),
                expected: "the targets among the input features (input_size >= targets)",
            });
        }
        let (i, h, l, p, b) = (
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.dropout,
            self.bidirectional,
        );
        let encoder = build_cell(self.cell, i, h, l, p, b, device)?;
        let directions = if b { 2 } else { 1 };
        let (head, decoder, step_head) = if self.autoregressive {
            (
                None,
                Some(build_cell(
                    self.cell,
                    self.targets + self.future_size,
                    h,
                    1,
                    0.0,
                    false,
                    device,
                )?),
                Some(LinearConfig::new(h, self.targets).init(device)),
            )
        } else {
            let head = LinearConfig::new(
                directions * h + self.horizon * self.future_size,
                self.horizon * self.targets,
            )
            .init(device);
            (Some(head), None, None)
        };
        Ok(Forecaster {
            encoder,
            head,
            decoder,
            step_head,
            horizon: self.horizon,
            targets: self.targets,
            future_size: self.future_size,
            directions,
            last_value_norm: self.last_value_norm,
            revin: self.revin,
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
        if !self.last_value_norm && !self.revin {
            return self.forward_normalised(inputs, future, lengths);
        }
        if lengths.is_some() {
            return Err(RecurrentError::InvalidConfig {
                option: if self.revin { "revin" } else { "last_value_norm" },
                value: "true".into(),
                expected: "each look-back must be all real steps: give full-length look-backs (no lengths)",
            });
        }
        let t = self.targets;
        if self.revin {
            // [batch, 1, input_size]: each sequence's own mean and (sample) standard deviation.
            let mean = inputs.clone().mean_dim(1);
            let std = (inputs.clone().var(1) + 1e-5).sqrt();
            let z = (inputs - mean.clone()) / std.clone();
            let out = self.forward_normalised(z, future, None)?;
            return Ok(out * std.narrow(2, 0, t) + mean.narrow(2, 0, t));
        }
        let lookback = inputs.dims()[1];
        let last = inputs.clone().narrow(1, lookback - 1, 1);
        let out = self.forward_normalised(inputs - last.clone(), future, None)?;
        Ok(out + last.narrow(2, 0, t))
    }

    fn forward_normalised(
        &self,
        inputs: Tensor<3>,
        future: Option<Tensor<3>>,
        lengths: Option<&[usize]>,
    ) -> Result<Tensor<3>, RecurrentError> {
        let [batch, lookback, _] = inputs.dims();
        let c = self.future_size;
        match (&future, c) {
            (None, 0) => {}
            (Some(f), c) if c > 0 && f.dims() == [batch, self.horizon, c] => {}
            (f, c) => {
                return Err(RecurrentError::StateShape {
                    which: "future covariates",
                    expected: [batch, self.horizon, c],
                    found: f.as_ref().map(|f| f.dims()).unwrap_or([0, 0, 0]),
                })
            }
        }
        let (hidden, cell) = self.encoder.final_state(inputs.clone(), None, lengths)?;
        let [rows, _, h] = hidden.dims();
        if let (Some(decoder), Some(step_head)) = (&self.decoder, &self.step_head) {
            if lengths.is_some() {
                return Err(RecurrentError::InvalidConfig {
                    option: "autoregressive",
                    value: "true".into(),
                    expected: "decoding starts from the last look-back step: give full-length look-backs (no lengths)",
                });
            }
            // The last layer's forward direction starts the decoder.
            let row = rows - self.directions;
            let mut state = (hidden.narrow(0, row, 1), cell.map(|c| c.narrow(0, row, 1)));
            let mut previous = inputs.narrow(1, lookback - 1, 1).narrow(2, 0, self.targets);
            let mut steps = Vec::with_capacity(self.horizon);
            for k in 0..self.horizon {
                let x = match &future {
                    Some(f) => Tensor::cat(vec![previous, f.clone().narrow(1, k, 1)], 2),
                    None => previous,
                };
                let (hn, cn) = decoder.final_state(x, Some(state), None)?;
                let y = step_head.forward(hn.clone().reshape([batch, h]));
                previous = y.clone().reshape([batch, 1, self.targets]);
                steps.push(y);
                state = (hn, cn);
            }
            return Ok(Tensor::stack(steps, 1));
        }
        // The last layer's directions: [directions, batch, hidden] → [batch, directions * hidden].
        let last = hidden
            .narrow(0, rows - self.directions, self.directions)
            .swap_dims(0, 1)
            .reshape([batch, self.directions * h]);
        let features = match future {
            Some(f) => Tensor::cat(vec![last, f.reshape([batch, self.horizon * c])], 1),
            None => last,
        };
        let head = self
            .head
            .as_ref()
            .expect("a direct forecaster has its head");
        Ok(head
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

    /// Whether the forecaster decodes step by step, feeding its forecasts back (built with
    /// `autoregressive = true`), instead of one direct head for the whole horizon.
    pub fn is_autoregressive(&self) -> bool {
        self.decoder.is_some() && self.head.is_none()
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// Each decoder step reads the previous step's forecast (the first, the last observed
    /// targets): unrolled by hand here from the encoder's state, the forecast matches
    /// `forward` step by step. Feeding anything else back (the observed value again, zeros)
    /// fails it from the second step on.
    #[test]
    fn autoregressive_step_reads_the_previous_forecast() {
        let device = Device::flex();
        device.seed(3);
        let (batch, lookback, horizon) = (3, 6, 4);
        for cell in [CellType::Gru, CellType::Lstm] {
            let f = ForecasterConfig::new(cell, 2, 8, horizon, 1)
                .with_autoregressive(true)
                .init(&device);
            let x = Tensor::<3>::random(
                [batch, lookback, 2],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let out = f.forward(x.clone(), None);
            let (decoder, step_head) = (f.decoder.as_ref().unwrap(), f.step_head.as_ref().unwrap());
            let (hidden, cell_state) = f.encoder.final_state(x.clone(), None, None).unwrap();
            let mut state = (hidden, cell_state);
            let mut previous = x.narrow(1, lookback - 1, 1).narrow(2, 0, 1);
            for k in 0..horizon {
                let (h, c) = decoder.final_state(previous, Some(state), None).unwrap();
                let y = step_head.forward(h.clone().reshape([batch, 8]));
                let got = out.clone().narrow(1, k, 1).reshape([batch, 1]);
                let worst: f32 = (got - y.clone()).abs().max().into_scalar();
                assert!(worst < 1e-5, "{cell:?} step {k}: off by {worst}");
                previous = y.reshape([batch, 1, 1]);
                state = (h, c);
            }
        }
    }
}
