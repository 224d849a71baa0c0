//! A segment-recurrent forecaster in the spirit of SegRNN (Lin et al., 2023): the look-back of
//! each channel is cut into segments of `segment` steps, each segment is embedded linearly, a GRU
//! runs over the segments, and every output segment is decoded in parallel by one GRU step from
//! the final state with a position + channel embedding as input. Channel-independent (one set of
//! weights for every channel), with last-value subtraction or RevIN around it, and optionally
//! CycleNet's residual cycle forecasting (Lin et al., 2024) around that: a learned per-channel
//! cycle of `cycle` steps is subtracted from the look-back at each window's phase, the network
//! forecasts the residual, and the cycle over the horizon is added back. Optionally the
//! channels' final states are mixed before decoding (a learned `[channels, channels]` map, the
//! channel-mixing step of xLSTM-Mixer and xLSTMTime at its smallest), so each channel's forecast
//! can read the others' look-backs. Optionally the GRU also reads the segments newest-first
//! and that pass's final state is added through a learned map (after xLSTM-Mixer's second,
//! reversed view). The recurrent cell is a GRU, as SegRNN's, or optionally xLSTM's sLSTM
//! ([`SegCell::SLstm`], the cell P-sLSTM and xLSTMTime run over patches).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use super::slstm::{SLstm, SLstmConfig, SLstmState};
use crate::error::RecurrentError;
use crate::{Gru, GruConfig};

/// The recurrent cell that runs over the segments and decodes them.
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum SegCell {
    /// A GRU (SegRNN's).
    Gru,
    /// xLSTM's sLSTM ([`SLstm`]): exponential input gates with a normaliser state.
    SLstm,
}

/// How each window is normalised before the network sees it (and the forecast de-normalised).
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum SegNorm {
    /// None.
    None,
    /// Subtract each channel's last look-back value, add it back to the forecast (SegRNN's).
    LastValue,
    /// Reversible instance normalisation (Kim et al., 2022): each channel's look-back mean and
    /// standard deviation, with a learnt per-channel affine map.
    RevIn,
}

/// Configuration of a [`SegRnn`].
#[derive(Config, Debug)]
pub struct SegRnnConfig {
    /// Look-back steps `L`; a multiple of `segment`.
    pub lookback: usize,
    /// Steps to forecast `H` (the last output segment is cut to fit).
    pub horizon: usize,
    /// Channels `C` (each is forecast from its own past only).
    pub channels: usize,
    /// Segment length `w`.
    #[config(default = 24)]
    pub segment: usize,
    /// Embedding and GRU hidden size `d` (even).
    #[config(default = 256)]
    pub hidden_size: usize,
    /// Dropout before the output projection (training only).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Window normalisation.
    #[config(default = "SegNorm::LastValue")]
    pub norm: SegNorm,
    /// Length in steps of a learned per-channel cycle removed before the network and added
    /// back after it (CycleNet's residual cycle forecasting), e.g. 24 for a daily cycle in
    /// hourly data; 0 for none. With a cycle, every forward pass needs each window's phase
    /// ([`SegRnn::try_forward_at`]).
    #[config(default = 0)]
    pub cycle: usize,
    /// Mix the channels' final encoder states before decoding: state `i` becomes
    /// `state_i + Σ_j mix[i, j] · state_j` with a learned `mix [channels, channels]` that starts
    /// at zero, so an untrained model is still channel-independent.
    #[config(default = false)]
    pub channel_mix: bool,
    /// The recurrent cell.
    #[config(default = "SegCell::Gru")]
    pub cell: SegCell,
    /// A second, reversed view: the GRU also runs over the segments newest-first, and that
    /// pass's final state `r` is added to the forward pass's, `h + r · W` with a learned
    /// `W [hidden, hidden]` that starts at zero, so an untrained model is plain SegRNN. GRU only.
    #[config(default = false)]
    pub reverse_view: bool,
}

/// SegRNN: `[batch, lookback, channels]` → `[batch, horizon, channels]`.
#[derive(Module, Debug)]
pub struct SegRnn {
    /// Segment embedding `[segment] → [hidden]`, followed by ReLU.
    pub embed: Linear,
    /// The GRU over segments, also used for the one decoding step (absent with the sLSTM).
    pub gru: Option<Gru>,
    /// The sLSTM over segments and for the decoding step (absent with the GRU).
    pub slstm: Option<SLstm>,
    /// Output segment positions `[segments out, hidden / 2]`.
    pub position: Param<Tensor<2>>,
    /// Channels `[channels, hidden / 2]`.
    pub channel: Param<Tensor<2>>,
    /// Output projection `[hidden] → [segment]`.
    pub predict: Linear,
    /// RevIN's affine weight `[channels]` (absent without RevIN).
    pub revin_weight: Option<Param<Tensor<1>>>,
    /// RevIN's affine bias `[channels]`.
    pub revin_bias: Option<Param<Tensor<1>>>,
    /// The learned cycle `[cycle, channels]`, row `k` the value at phase `k` (absent without
    /// `cycle`; starts at zero, so an untrained cycle changes nothing).
    pub cycle: Option<Param<Tensor<2>>>,
    /// The channel mix `[channels, channels]`, row `i` the weights of every channel's state
    /// added to channel `i`'s (absent without `channel_mix`; starts at zero).
    pub mix: Option<Param<Tensor<2>>>,
    /// The reversed view's map `[hidden, hidden]` from the newest-first pass's final state to
    /// what is added to the forward pass's (absent without `reverse_view`; starts at zero).
    pub reverse: Option<Param<Tensor<2>>>,
    dropout: Dropout,
    lookback: usize,
    horizon: usize,
    channels: usize,
    segment: usize,
    hidden: usize,
    #[module(skip)]
    norm: SegNorm,
}

impl SegRnnConfig {
    /// Builds the model.
    pub fn init(&self, device: &Device) -> SegRnn {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds the model, or says which field is out of range.
    pub fn try_init(&self, device: &Device) -> Result<SegRnn, RecurrentError> {
        let bad = |option: &'static str, value: usize, expected: &'static str| {
            Err(RecurrentError::InvalidConfig {
                option,
                value: value.to_string(),
                expected,
            })
        };
        for (option, v) in [
            ("horizon", self.horizon),
            ("channels", self.channels),
            ("segment", self.segment),
        ] {
            if v == 0 {
                return bad(option, 0, "must be at least 1");
            }
        }
        if self.lookback == 0 || !self.lookback.is_multiple_of(self.segment) {
            return bad(
                "lookback",
                self.lookback,
                "must be a positive multiple of the segment length",
            );
        }
        if self.hidden_size < 2 || !self.hidden_size.is_multiple_of(2) {
            return bad(
                "hidden_size",
                self.hidden_size,
                "must be even and at least 2",
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(RecurrentError::InvalidConfig {
                option: "dropout",
                value: self.dropout.to_string(),
                expected: "must be in [0, 1)",
            });
        }
        for (option, on) in [
            ("channel_mix", self.channel_mix),
            ("reverse_view", self.reverse_view),
        ] {
            if on && self.cell == SegCell::SLstm {
                return Err(RecurrentError::InvalidConfig {
                    option,
                    value: "true".into(),
                    expected: "acts on GRU states: not with the sLSTM cell",
                });
            }
        }
        let d = self.hidden_size;
        let out_segments = self.horizon.div_ceil(self.segment);
        let normal = Distribution::Normal(0.0, 1.0);
        Ok(SegRnn {
            embed: LinearConfig::new(self.segment, d).init(device),
            gru: match self.cell {
                SegCell::Gru => Some(GruConfig::new(d, d).try_init(device)?),
                SegCell::SLstm => None,
            },
            slstm: match self.cell {
                SegCell::Gru => None,
                SegCell::SLstm => Some(SLstmConfig::new(d, d).try_init(device)?),
            },
            position: Param::from_tensor(Tensor::random([out_segments, d / 2], normal, device)),
            channel: Param::from_tensor(Tensor::random([self.channels, d / 2], normal, device)),
            predict: LinearConfig::new(d, self.segment).init(device),
            revin_weight: (self.norm == SegNorm::RevIn)
                .then(|| Param::from_tensor(Tensor::ones([self.channels], device))),
            revin_bias: (self.norm == SegNorm::RevIn)
                .then(|| Param::from_tensor(Tensor::zeros([self.channels], device))),
            cycle: (self.cycle > 0)
                .then(|| Param::from_tensor(Tensor::zeros([self.cycle, self.channels], device))),
            mix: self
                .channel_mix
                .then(|| Param::from_tensor(Tensor::zeros([self.channels, self.channels], device))),
            reverse: self
                .reverse_view
                .then(|| Param::from_tensor(Tensor::zeros([d, d], device))),
            dropout: DropoutConfig::new(self.dropout).init(),
            lookback: self.lookback,
            horizon: self.horizon,
            channels: self.channels,
            segment: self.segment,
            hidden: d,
            norm: self.norm,
        })
    }
}

impl SegRnn {
    /// `x [batch, lookback, channels]` → forecast `[batch, horizon, channels]`; a model with a
    /// cycle needs [`SegRnn::forward_at`].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.try_forward(x).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`SegRnn::forward`] with a shape check.
    pub fn try_forward(&self, x: Tensor<3>) -> Result<Tensor<3>, RecurrentError> {
        self.try_forward_at(x, None)
    }

    /// `x [batch, lookback, channels]` → forecast `[batch, horizon, channels]`, with `phases`
    /// `[batch]`: where in the cycle each window's first look-back step falls, in
    /// `0..cycle` (for an absolute step number `s`, `s mod cycle`; [`SegRnn::phases`]).
    /// Ignored without a cycle.
    pub fn forward_at(&self, x: Tensor<3>, phases: Option<&[usize]>) -> Tensor<3> {
        self.try_forward_at(x, phases)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`SegRnn::forward_at`] with shape and phase checks.
    pub fn try_forward_at(
        &self,
        x: Tensor<3>,
        phases: Option<&[usize]>,
    ) -> Result<Tensor<3>, RecurrentError> {
        let [b, l, c] = x.dims();
        if l != self.lookback || c != self.channels {
            return Err(RecurrentError::StateShape {
                which: "SegRNN input",
                expected: [b, self.lookback, self.channels],
                found: [b, l, c],
            });
        }
        let (w, d) = (self.segment, self.hidden);
        let (n, m) = (l / w, self.horizon.div_ceil(w));

        // The cycle at every look-back and horizon step of each window, `[b, l + horizon, c]`;
        // the network sees the look-back less its cycle.
        let cycle = self.cycle_at(phases, b, &x.device())?;
        let x = match &cycle {
            Some(q) => x - q.clone().narrow(1, 0, l),
            None => x,
        };

        // Normalise each window, per channel.
        type Undo = Box<dyn Fn(Tensor<3>) -> Tensor<3>>;
        let (x, undo): (Tensor<3>, Undo) = match (self.norm, &self.revin_weight, &self.revin_bias) {
            (SegNorm::LastValue, ..) => {
                let last = x.clone().narrow(1, l - 1, 1);
                (x - last.clone(), Box::new(move |y| y + last.clone()))
            }
            (SegNorm::RevIn, Some(weight), Some(bias)) => {
                let mean = x.clone().mean_dim(1);
                let std = (x.clone().var(1) + 1e-5).sqrt();
                let wt = weight.val().reshape([1, 1, c]);
                let bs = bias.val().reshape([1, 1, c]);
                let z = (x - mean.clone()) / std.clone() * wt.clone() + bs.clone();
                let undo = move |y: Tensor<3>| {
                    (y - bs.clone()) / (wt.clone() + 1e-10) * std.clone() + mean.clone()
                };
                (z, Box::new(undo))
            }
            _ => (x, Box::new(|y| y)),
        };

        // [b, l, c] → [b·c, n, w] → embedded [b·c, n, d].
        let segments = x.swap_dims(1, 2).reshape([b * c, n, w]);
        // One decoding step per output segment, all in parallel: input = [position ‖ channel].
        let hd = match (&self.gru, &self.slstm) {
            (Some(gru), _) => {
                let embedded = relu(self.embed.forward(segments));
                let hn = self.encode(gru, embedded)?;
                let hn = self.mix_channels(hn, b);
                self.decode(gru, hn, b, m, crate::fused_enabled())?
            }
            (None, Some(cell)) => {
                // Segments are sliced before the embedding, so a step's slice carries no
                // gradient of the embedded sequence (see `SLstm::run`).
                let state = cell.run(n, |t| {
                    let segment = segments.clone().narrow(1, t, 1).reshape([b * c, w]);
                    relu(self.embed.forward(segment))
                });
                self.decode_slstm(cell, state, b, m)
            }
            (None, None) => {
                return Err(RecurrentError::InvalidConfig {
                    option: "cell",
                    value: "none".into(),
                    expected: "a SegRnn needs its gru or its slstm (both are None)",
                })
            }
        };
        let y = self
            .predict
            .forward(self.dropout.forward(hd.reshape([b * c * m, d])))
            .reshape([b, c, m * w])
            .narrow(2, 0, self.horizon)
            .swap_dims(1, 2); // [b, horizon, c]
        let y = undo(y);
        Ok(match cycle {
            Some(q) => y + q.narrow(1, l, self.horizon),
            None => y,
        })
    }

    /// The GRU's final states `[b·c, d]` over the embedded segments `[b·c, n, d]`, with the
    /// reversed view's term added where the model has one.
    fn encode(&self, gru: &Gru, embedded: Tensor<3>) -> Result<Tensor<2>, RecurrentError> {
        let [rows, _, d] = embedded.dims();
        let (_, hn) = gru.try_forward(embedded.clone(), None, None)?; // [1, b·c, d]
        let hn = hn.reshape([rows, d]);
        let Some(map) = &self.reverse else {
            return Ok(hn);
        };
        let (_, hr) = gru.try_forward(embedded.flip([1]), None, None)?;
        Ok(hn + hr.reshape([rows, d]).matmul(map.val()))
    }

    /// The final states `h [b·c, d]` (row `window·c + channel`) with the channel mix added,
    /// `h_i + Σ_j mix[i, j] · h_j` within each window; `h` unchanged without a mix.
    fn mix_channels(&self, h: Tensor<2>, b: usize) -> Tensor<2> {
        let Some(mix) = &self.mix else {
            return h;
        };
        let (c, d) = (self.channels, self.hidden);
        let states = h.reshape([b, c, d]);
        let mixed = mix
            .val()
            .reshape([1, c, c])
            .expand([b, c, c])
            .matmul(states.clone());
        (states + mixed).reshape([b * c, d])
    }

    /// Each window's phase in a cycle of `cycle` steps from the absolute step number of its
    /// first look-back step (e.g. hours since some midnight for a daily cycle in hourly data);
    /// steps before zero count backwards, so `-1` is phase `cycle - 1`.
    pub fn phases(steps: &[i64], cycle: usize) -> Vec<usize> {
        let n = cycle.max(1) as i64;
        steps.iter().map(|s| s.rem_euclid(n) as usize).collect()
    }

    /// Length of the learned cycle in steps (0 without one).
    pub fn cycle_len(&self) -> usize {
        self.cycle.as_ref().map_or(0, |q| q.dims()[0])
    }

    /// The cycle `[b, lookback + horizon, c]` at each window's steps, or `None` without a cycle.
    fn cycle_at(
        &self,
        phases: Option<&[usize]>,
        b: usize,
        device: &Device,
    ) -> Result<Option<Tensor<3>>, RecurrentError> {
        let Some(q) = &self.cycle else {
            return Ok(None);
        };
        let period = q.dims()[0];
        let phases = phases.ok_or_else(|| RecurrentError::Phases {
            message: format!(
                "the model has a learned cycle of {period} steps and needs each window's phase (forward_at)"
            ),
        })?;
        if phases.len() != b {
            return Err(RecurrentError::Phases {
                message: format!("{} phases for a batch of {b} windows", phases.len()),
            });
        }
        if let Some((i, p)) = phases.iter().enumerate().find(|(_, p)| **p >= period) {
            return Err(RecurrentError::Phases {
                message: format!("phases[{i}] = {p} is not in 0..{period}"),
            });
        }
        let span = self.lookback + self.horizon;
        let index: Vec<i64> = phases
            .iter()
            .flat_map(|&p| (0..span).map(move |t| ((p + t) % period) as i64))
            .collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [b * span]), device);
        Ok(Some(q.val().select(0, index).reshape([
            b,
            span,
            self.channels,
        ])))
    }

    /// Every distinct decoder input, `[c, m, d]`: segment position ‖ channel.
    fn queries(&self, m: usize) -> Tensor<3> {
        let (c, half) = (self.channels, self.hidden / 2);
        Tensor::cat(
            vec![
                self.position
                    .val()
                    .reshape([1, m, half])
                    .expand([c, m, half]),
                self.channel
                    .val()
                    .reshape([c, 1, half])
                    .expand([c, m, half]),
            ],
            2,
        )
    }

    /// The decoder's sLSTM step from each window's final encoder state (rows `b·c`) to every
    /// output segment `[b·c·m, d]` (row `(b·c)·m + segment`): the input gates are computed once
    /// per (channel, segment) and the recurrent gates once per state, then broadcast.
    fn decode_slstm(&self, cell: &SLstm, state: SLstmState, b: usize, m: usize) -> Tensor<2> {
        let (c, d) = (self.channels, self.hidden);
        let gi = cell
            .input
            .forward(self.queries(m))
            .reshape([1, c, m, 4 * d])
            .expand([b, c, m, 4 * d]);
        let gh = cell
            .recurrent_gates(state.h.clone())
            .reshape([b, c, 1, 4 * d])
            .expand([b, c, m, 4 * d]);
        let raw = (gi + gh).reshape([b * c * m, 4 * d]);
        cell.pointwise(raw, Some(&state.repeat_rows(m))).h
    }

    /// The decoder's GRU step from each window's state `h [b·c, d]` (row `b·c`) to every output
    /// segment `[b·c·m, d]` (row `(b·c)·m + segment`), its input the segment's position ‖ its
    /// channel.
    ///
    /// Where `fused` and the fused CPU op applies (f32 on flex or ndarray), the input gates are
    /// computed once per (channel, segment) and the hidden gates once per state, and the op
    /// combines them (`crate::fused_cpu::try_gru_fanout`); otherwise one GRU step runs over
    /// the `b·c·m` expanded rows. Both compute the same function.
    fn decode(
        &self,
        gru: &Gru,
        h: Tensor<2>,
        b: usize,
        m: usize,
        fused: bool,
    ) -> Result<Tensor<2>, RecurrentError> {
        let (c, d) = (self.channels, self.hidden);
        let queries = self.queries(m);
        #[cfg(any(feature = "flex", feature = "ndarray"))]
        if fused && crate::fused_cpu::fanout_applies(&h) {
            let w = &gru.layers[0].forward;
            let mut gi = queries
                .clone()
                .reshape([c * m, d])
                .matmul(w.weight_ih.val().transpose());
            if let Some(bias) = &w.bias_ih {
                gi = gi + bias.val().reshape([1, 3 * d]);
            }
            let mut gh = h.clone().matmul(w.weight_hh.val().transpose());
            if let Some(bias) = &w.bias_hh {
                gh = gh + bias.val().reshape([1, 3 * d]);
            }
            if let Some(out) = crate::fused_cpu::try_gru_fanout(&gi, &gh, &h, c) {
                return Ok(out);
            }
        }
        let _ = fused;
        let queries = queries
            .reshape([1, c, m, d])
            .expand([b, c, m, d])
            .reshape([b * c * m, 1, d]);
        let h0 = h
            .reshape([b * c, 1, d])
            .expand([b * c, m, d])
            .reshape([1, b * c * m, d]);
        let (_, hd) = gru.try_forward(queries, Some(h0), None)?; // [1, b·c·m, d]
        Ok(hd.reshape([b * c * m, d]))
    }

    /// Steps forecast.
    pub fn horizon(&self) -> usize {
        self.horizon
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.channels
    }
}

#[cfg(all(test, any(feature = "flex", feature = "ndarray")))]
mod tests {
    use super::*;
    use crate::fused_testing::{host_devices, worst_relative_difference};

    /// The reversed view: the forward pass's final state plus the newest-first pass's (the
    /// segments reordered by an index, not by `flip`) times the map.
    #[test]
    fn the_reversed_view_adds_the_newest_first_pass_through_its_map() {
        let device = crate::fused_testing::host_devices().remove(0);
        let (rows, n, d) = (5, 4, 6);
        let mut model = SegRnnConfig::new(n * 3, 3, 1)
            .with_segment(3)
            .with_hidden_size(d)
            .with_reverse_view(true)
            .init(&device);
        let map = Tensor::<2>::random([d, d], Distribution::Normal(0.0, 0.5), &device);
        model.reverse = Some(Param::from_tensor(map.clone()));
        let gru = model.gru.as_ref().unwrap();
        let x = Tensor::<3>::random([rows, n, d], Distribution::Normal(0.0, 1.0), &device);
        let order = Tensor::<1, Int>::from_data(TensorData::new(vec![3i64, 2, 1, 0], [n]), &device);
        let last = |x: Tensor<3>| gru.try_forward(x, None, None).unwrap().1.reshape([rows, d]);
        let expected = last(x.clone()) + last(x.clone().select(1, order)).matmul(map);
        let got = model.encode(gru, x.clone()).unwrap();
        got.into_data().assert_approx_eq::<f32>(
            &expected.into_data(),
            burn::tensor::Tolerance::absolute(1e-6),
        );
        // Without the view, the forward pass alone.
        model.reverse = None;
        let plain = model
            .encode(model.gru.as_ref().unwrap(), x.clone())
            .unwrap();
        plain.into_data().assert_approx_eq::<f32>(
            &last(x).into_data(),
            burn::tensor::Tolerance::absolute(1e-6),
        );
    }

    /// The sLSTM decoding step (input gates once per (channel, segment), recurrent gates once
    /// per state, broadcast) against one sLSTM step over every expanded row, from a state the
    /// encoder produced.
    #[test]
    fn the_slstm_decoding_step_is_the_cell_step_on_every_row() {
        let device = crate::fused_testing::host_devices().remove(0);
        let (b, c, m, d) = (3, 2, 4, 6);
        let mut model = SegRnnConfig::new(8, m * 4 - 1, c)
            .with_segment(4)
            .with_hidden_size(d)
            .with_cell(SegCell::SLstm)
            .init(&device);
        let cell = model.slstm.as_mut().unwrap();
        cell.recurrent = Param::from_tensor(Tensor::random(
            [d, 4 * d],
            Distribution::Normal(0.0, 0.5),
            &device,
        ));
        let cell = model.slstm.as_ref().unwrap();
        let x = Tensor::<3>::random([b * c, 2, 5], Distribution::Normal(0.0, 1.0), &device);
        let state = SLstmConfig::new(5, d)
            .try_init(&device)
            .unwrap()
            .forward_final(x);
        let got = model.decode_slstm(cell, state.clone(), b, m);
        // Row (window·c + channel)·m + segment: the input is that segment's position ‖ that
        // channel, the state is that window and channel's.
        let queries = model
            .queries(m)
            .reshape([1, c, m, d])
            .expand([b, c, m, d])
            .reshape([b * c * m, d]);
        let expected = cell.update(cell.input.forward(queries), Some(&state.repeat_rows(m)));
        got.into_data().assert_approx_eq::<f32>(
            &expected.h.into_data(),
            burn::tensor::Tolerance::absolute(1e-6),
        );
    }

    /// The fused decoding step (input gates once per (channel, segment), hidden gates once per
    /// state, `fused_cpu::try_gru_fanout` for the rest) against one GRU step over every expanded
    /// row: the same states, and the same gradients for the state and every parameter, on
    /// uneven sizes (rows not a multiple of the threads' blocks) and with the model on an
    /// autodiff device and off it.
    #[test]
    fn the_fused_decoding_step_is_the_gru_step_on_every_row() {
        for device in host_devices() {
            for (b, c, m, d) in [(5, 3, 4, 8), (1, 1, 1, 2), (7, 2, 3, 16)] {
                let ad = device.clone().autodiff();
                let model = SegRnnConfig::new(m * 4, m * 4 - 1, c)
                    .with_segment(4)
                    .with_hidden_size(d)
                    .init(&ad);
                let h = Tensor::<2>::random([b * c, d], Distribution::Normal(0.0, 0.7), &ad)
                    .require_grad();
                // An uneven weight per output, so a transposed or misplaced row shows.
                let weight = Tensor::<1, burn::tensor::Int>::arange(0..(b * c * m * d) as i64, &ad)
                    .float()
                    .reshape([b * c * m, d])
                    .sin();
                let run = |fused: bool| {
                    let gru = model.gru.as_ref().unwrap();
                    let out = model.decode(gru, h.clone(), b, m, fused).unwrap();
                    let grads = (out.clone() * weight.clone()).sum().backward();
                    let w = &gru.layers[0].forward;
                    let mut all = vec![out.into_data(), h.grad(&grads).unwrap().into_data()];
                    for p in [&model.position, &model.channel, &w.weight_ih, &w.weight_hh] {
                        all.push(p.val().grad(&grads).unwrap().into_data());
                    }
                    for p in [&w.bias_ih, &w.bias_hh].into_iter().flatten() {
                        all.push(p.val().grad(&grads).unwrap().into_data());
                    }
                    all.into_iter()
                        .map(|t| t.try_into_vec::<f32>().unwrap())
                        .collect::<Vec<_>>()
                };
                let (fused, step) = (run(true), run(false));
                for (k, (a, e)) in fused.iter().zip(&step).enumerate() {
                    let worst = worst_relative_difference(a, e);
                    assert!(worst < 2e-5, "{b}/{c}/{m}/{d}, tensor {k}: {worst}");
                }
                // Inference (no autodiff): the same states.
                let plain = model.valid();
                let h = Tensor::<2>::from_data(h.clone().into_data(), &device);
                let gru = plain.gru.as_ref().unwrap();
                let a = plain
                    .decode(gru, h.clone(), b, m, true)
                    .unwrap()
                    .into_data();
                let e = plain.decode(gru, h, b, m, false).unwrap().into_data();
                a.assert_approx_eq::<f32>(&e, burn::tensor::Tolerance::absolute(2e-5));
            }
        }
    }
}
