//! Recurrent weights stored in PyTorch's layout, so state_dicts move both ways unchanged.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use crate::error::RecurrentError;

/// The weights of one layer in one direction, in PyTorch's layout.
///
/// `G` is the number of gates (1 for Elman, 3 for GRU in order r, z, n, 4 for LSTM in order
/// i, f, g, o) and `H` the hidden size. PyTorch calls these `weight_ih_l{k}`, `weight_hh_l{k}`,
/// `bias_ih_l{k}`, `bias_hh_l{k}` (with a `_reverse` suffix for the backward direction).
#[derive(Module, Debug)]
pub struct DirectionWeights {
    /// Input-to-hidden weights `[G * H, input]`.
    pub weight_ih: Param<Tensor<2>>,
    /// Hidden-to-hidden (recurrent) weights `[G * H, H]`.
    pub weight_hh: Param<Tensor<2>>,
    /// Input-to-hidden bias `[G * H]`, absent when the layer was built with `bias = false`.
    pub bias_ih: Option<Param<Tensor<1>>>,
    /// Hidden-to-hidden bias `[G * H]`, absent when the layer was built with `bias = false`.
    pub bias_hh: Option<Param<Tensor<1>>>,
}

/// One stacked layer: the forward direction and, for bidirectional layers, the reverse one.
#[derive(Module, Debug)]
pub struct RecurrentLayer {
    /// Weights of the direction that reads the sequence from t = 0 to t = T - 1.
    pub forward: DirectionWeights,
    /// Weights of the direction that reads the sequence backwards (bidirectional layers only).
    pub reverse: Option<DirectionWeights>,
}

impl DirectionWeights {
    /// PyTorch's default initialisation: every weight and bias uniform in `(-1/sqrt(H), 1/sqrt(H))`.
    pub(crate) fn init(
        gates: usize,
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        device: &Device,
    ) -> Self {
        let k = 1.0 / (hidden_size as f64).sqrt();
        let init = Initializer::Uniform { min: -k, max: k };
        let rows = gates * hidden_size;
        Self {
            weight_ih: init.init([rows, input_size], device),
            weight_hh: init.init([rows, hidden_size], device),
            bias_ih: bias.then(|| init.init([rows], device)),
            bias_hh: bias.then(|| init.init([rows], device)),
        }
    }
}

/// Checks the fields every recurrent config shares.
pub(crate) fn check_config(
    input_size: usize,
    hidden_size: usize,
    num_layers: usize,
    dropout: f64,
) -> Result<(), RecurrentError> {
    let invalid = |option, value: String, expected| {
        Err(RecurrentError::InvalidConfig {
            option,
            value,
            expected,
        })
    };
    if input_size == 0 {
        return invalid("input_size", "0".into(), "must be at least 1");
    }
    if hidden_size == 0 {
        return invalid("hidden_size", "0".into(), "must be at least 1");
    }
    if num_layers == 0 {
        return invalid("num_layers", "0".into(), "must be at least 1");
    }
    if !(dropout.is_finite() && (0.0..1.0).contains(&dropout)) {
        return invalid("dropout", dropout.to_string(), "must be in [0, 1)");
    }
    Ok(())
}

/// Builds `num_layers` layers; layer k > 0 reads the `D * H` outputs of layer k - 1.
pub(crate) fn init_layers(
    gates: usize,
    input_size: usize,
    hidden_size: usize,
    num_layers: usize,
    bias: bool,
    bidirectional: bool,
    device: &Device,
) -> Vec<RecurrentLayer> {
    let directions = if bidirectional { 2 } else { 1 };
    (0..num_layers)
        .map(|layer| {
            let inputs = if layer == 0 {
                input_size
            } else {
                directions * hidden_size
            };
            RecurrentLayer {
                forward: DirectionWeights::init(gates, inputs, hidden_size, bias, device),
                reverse: bidirectional
                    .then(|| DirectionWeights::init(gates, inputs, hidden_size, bias, device)),
            }
        })
        .collect()
}
