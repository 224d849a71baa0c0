//! What a configuration will need, checked before anything is allocated: a batch larger than the
//! training windows is clamped, and a model whose weights, optimizer state and one training
//! step's activations would not fit in memory is an error naming the options, instead of the
//! process aborting on a failed allocation.

use anyhow::{bail, Result};
use gatecast_data::WindowConfig;

use crate::config::{Decoder, Experiment};

/// A training configuration's size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Trainable parameters.
    pub params: u64,
    /// Bytes of weights, gradients, Adam's two moments (and the weight average, with
    /// `train.ema_decay`) and one training step's activations.
    pub bytes: u64,
}

impl Estimate {
    /// The size of training `exp` on windows shaped by `window`, `batch` windows a step. The
    /// activations are those the fused op keeps per layer and direction (saved gates, states,
    /// gradient scratch: about `B·T·H·(2G + 6)` values) plus the input.
    pub fn of(exp: &Experiment, window: &WindowConfig, batch: usize) -> Self {
        Self::of_sizes(
            exp,
            [
                window.inputs.len(),
                window.targets.len(),
                window.future.len(),
            ],
            batch,
        )
    }

    /// [`Estimate::of`] from the feature counts `[inputs, outputs, future]` per step (a panel
    /// model: its features and embedding in, its distribution's parameters out).
    pub fn of_sizes(exp: &Experiment, [inputs, targets, future]: [usize; 3], batch: usize) -> Self {
        let m = &exp.model;
        let (h, b) = (m.hidden_size as u64, batch as u64);
        let (inputs, targets, future) = (inputs as u64, targets as u64, future as u64);
        let horizon = exp.window.horizon as u64;
        let (params, activations) = match m.cell_type() {
            None => {
                // SegRNN: one GRU layer over `lookback / segment` steps for every channel, and
                // the output segments decoded in parallel.
                let seg = m.segment.max(1) as u64;
                let steps = exp.window.lookback as u64 / seg + horizon.div_ceil(seg);
                let params = 2 * seg * h + 3 * h * 2 * h + 8 * h + h * (inputs + horizon);
                (params, b * inputs * steps * h * 12)
            }
            Some(cell) => {
                let g = match cell {
                    gatecast_model::forecast::CellType::Rnn => 1,
                    gatecast_model::forecast::CellType::Gru => 3,
                    gatecast_model::forecast::CellType::Lstm => 4,
                };
                let (layers, dirs) = (m.num_layers as u64, if m.bidirectional { 2 } else { 1 });
                let layer = |input: u64| dirs * (g * h * (input + h) + 2 * g * h);
                let stack = layer(inputs) + layers.saturating_sub(1) * layer(dirs * h);
                let head = match m.decoder {
                    Decoder::Direct => (dirs * h + horizon * future + 1) * horizon * targets,
                    Decoder::Autoregressive => {
                        g * h * (targets + future + h) + 2 * g * h + (h + 1) * targets
                    }
                };
                let time = exp.window.lookback as u64 + horizon;
                let per_layer = b * time * h * (2 * g + 6);
                (stack + head, layers * dirs * per_layer + b * time * inputs)
            }
        };
        let copies = if exp.train.ema_decay > 0.0 { 5 } else { 4 };
        Self {
            params,
            // Weights, gradients and Adam's two moments (and the average), then the step's
            // activations.
            bytes: 4 * (copies * params + activations),
        }
    }
}

/// `train.batch_size`, or the number of training windows where that is fewer (with a note).
pub(crate) fn batch_size(exp: &Experiment, windows: usize) -> usize {
    let asked = exp.train.batch_size;
    if asked > windows {
        crate::tell!(
            "note: train.batch_size = {asked} is more than the {windows} training windows; each step uses all {windows}"
        );
        return windows.max(1);
    }
    asked
}

/// An error naming the options when the estimate passes `limit` bytes.
pub(crate) fn check(exp: &Experiment, estimate: Estimate, limit: u64) -> Result<()> {
    if estimate.bytes <= limit {
        return Ok(());
    }
    let m = &exp.model;
    bail!(
        "this model needs about {} to train ({} parameters; model.hidden_size = {}, model.num_layers = {}, model.bidirectional = {}, window.lookback = {}, window.horizon = {}, train.batch_size = {}), more than the {} allowed (train.memory_limit_mb, or the memory available); make the model, the window or the batch smaller",
        human(estimate.bytes),
        estimate.params,
        m.hidden_size,
        m.num_layers,
        m.bidirectional,
        exp.window.lookback,
        exp.window.horizon,
        exp.train.batch_size,
        human(limit)
    )
}

/// The limit: `train.memory_limit_mb`, or (0) the memory the system says is available, or no
/// limit where it says nothing.
pub(crate) fn limit(exp: &Experiment) -> u64 {
    if exp.train.memory_limit_mb > 0 {
        return exp.train.memory_limit_mb.saturating_mul(1 << 20);
    }
    available().unwrap_or(u64::MAX)
}

/// `MemAvailable` of `/proc/meminfo` (Linux), in bytes.
fn available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `1.5 GB`, `300.0 MB`.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.1} MB", b / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cell;

    fn window(inputs: usize, exp: &Experiment) -> WindowConfig {
        let names: Vec<String> = (0..inputs).map(|i| format!("c{i}")).collect();
        WindowConfig::new(
            exp.window.lookback,
            exp.window.horizon,
            names.clone(),
            names[..1].to_vec(),
        )
    }

    /// The parameter count of a small LSTM forecaster, counted by hand.
    #[test]
    fn counts_the_parameters_of_a_stack_and_its_head() {
        let mut exp = Experiment::default();
        exp.model.cell = Cell::Lstm;
        exp.model.hidden_size = 8;
        exp.model.num_layers = 2;
        exp.window.lookback = 10;
        exp.window.horizon = 3;
        let w = window(2, &exp);
        let e = Estimate::of(&exp, &w, 4);
        // Layer 0: 4·8·(2 + 8) + 2·4·8 = 384; layer 1: 4·8·(8 + 8) + 64 = 576; head: (8 + 1)·3.
        assert_eq!(e.params, 384 + 576 + 27);
        // Weights, gradients, Adam: 4 copies; activations: 2 layers of 4·13·8·14, and the input.
        assert_eq!(e.bytes, 4 * (4 * 987 + 2 * 4 * 13 * 8 * 14 + 4 * 13 * 2));
        // The weight average is a fifth copy.
        exp.train.ema_decay = 0.99;
        assert_eq!(Estimate::of(&exp, &w, 4).bytes, e.bytes + 4 * 987);
    }

    #[test]
    fn a_model_beyond_the_limit_is_an_error_naming_the_options() {
        let mut exp = Experiment::default();
        exp.model.hidden_size = 50_000;
        let e = Estimate::of(&exp, &window(3, &exp), 64);
        let err = check(&exp, e, 8 << 30).unwrap_err().to_string();
        assert!(
            err.contains("model.hidden_size = 50000") && err.contains("GB"),
            "{err}"
        );
        assert!(check(
            &Experiment::default(),
            Estimate::of(&Experiment::default(), &window(3, &exp), 64),
            8 << 30
        )
        .is_ok());
    }

    #[test]
    fn a_batch_beyond_the_windows_is_clamped() {
        let mut exp = Experiment::default();
        exp.train.batch_size = 1_000_000;
        assert_eq!(batch_size(&exp, 123), 123);
        exp.train.batch_size = 64;
        assert_eq!(batch_size(&exp, 123), 64);
    }
}
