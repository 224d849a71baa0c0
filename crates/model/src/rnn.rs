//! The Elman recurrent network, PyTorch's `nn.RNN` semantics.

use burn::config::Config;
use burn::tensor::Device;

use crate::error::RecurrentError;
use crate::layer::{Build, ElmanCell, Recurrent};
use crate::stack::CellKind;

/// The activation of an Elman [`Rnn`].
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum Nonlinearity {
    /// `tanh`, PyTorch's default.
    Tanh,
    /// `relu`.
    Relu,
}

/// Configuration of a stacked, optionally bidirectional Elman [`Rnn`].
///
/// Field names and defaults follow PyTorch's `nn.RNN` (with `batch_first=True`).
#[derive(Config, Debug)]
pub struct RnnConfig {
    /// Features per time step of the input.
    pub input_size: usize,
    /// Size `H` of the hidden state.
    pub hidden_size: usize,
    /// Number of stacked layers `L`; layer k > 0 reads the outputs of layer k - 1.
    #[config(default = 1)]
    pub num_layers: usize,
    /// `tanh` (default) or `relu`.
    #[config(default = "Nonlinearity::Tanh")]
    pub nonlinearity: Nonlinearity,
    /// Whether the layer has the biases `b_ih` and `b_hh`.
    #[config(default = true)]
    pub bias: bool,
    /// Dropout probability on the outputs of every layer but the last, in `[0, 1)`; only active
    /// in training (module in training mode on an autodiff device).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Run a second direction over the reversed sequence and concatenate both (`D = 2`).
    #[config(default = false)]
    pub bidirectional: bool,
}

/// A stacked, optionally bidirectional Elman RNN with PyTorch's equations and weight layout:
///
/// ```text
/// h' = tanh(W_ih x + b_ih + W_hh h + b_hh)      (or relu)
/// ```
///
/// Weights per layer and direction: `weight_ih [H, input]`, `weight_hh [H, H]`, `bias_ih [H]`,
/// `bias_hh [H]`, as PyTorch's `weight_ih_l{k}`.
///
/// The state is the hidden state `[num_layers * num_directions, batch, hidden]`.
pub type Rnn = Recurrent<ElmanCell>;

impl RnnConfig {
    /// Builds the layer with PyTorch's initialisation (uniform in `±1/sqrt(hidden_size)`).
    ///
    /// # Panics
    /// When the config is invalid; use [`RnnConfig::try_init`] for configs from user input.
    pub fn init(&self, device: &Device) -> Rnn {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds the layer, or says which config field is out of range.
    pub fn try_init(&self, device: &Device) -> Result<Rnn, RecurrentError> {
        let kind = match self.nonlinearity {
            Nonlinearity::Tanh => CellKind::ElmanTanh,
            Nonlinearity::Relu => CellKind::ElmanRelu,
        };
        Rnn::build(
            Build {
                kind,
                input_size: self.input_size,
                hidden_size: self.hidden_size,
                num_layers: self.num_layers,
                bias: self.bias,
                dropout: self.dropout,
                bidirectional: self.bidirectional,
            },
            device,
        )
    }
}

impl Rnn {
    /// The activation this RNN applies.
    pub fn nonlinearity(&self) -> Nonlinearity {
        if self.kind() == CellKind::ElmanRelu {
            Nonlinearity::Relu
        } else {
            Nonlinearity::Tanh
        }
    }
}
