//! Gated recurrent unit (Cho et al. 2014), PyTorch's `nn.GRU` semantics.

use burn::config::Config;
use burn::tensor::Device;

use crate::error::RecurrentError;
use crate::layer::{Build, GruCell, Recurrent};
use crate::stack::CellKind;

/// Configuration of a stacked, optionally bidirectional [`Gru`].
///
/// Field names and defaults follow PyTorch's `nn.GRU` (with `batch_first=True`).
#[derive(Config, Debug)]
pub struct GruConfig {
    /// Features per time step of the input.
    pub input_size: usize,
    /// Size `H` of the hidden state.
    pub hidden_size: usize,
    /// Number of stacked layers `L`; layer k > 0 reads the outputs of layer k - 1.
    #[config(default = 1)]
    pub num_layers: usize,
    /// Whether the gates have the biases `b_ih` and `b_hh`.
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

/// A stacked, optionally bidirectional GRU with PyTorch's equations and weight layout:
///
/// ```text
/// r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
/// n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
/// h' = (1 - z) ⊙ n + z ⊙ h
/// ```
///
/// Weights per layer and direction: `weight_ih [3H, input]`, `weight_hh [3H, H]`,
/// `bias_ih [3H]`, `bias_hh [3H]`, gates in the order (r, z, n), as PyTorch's `weight_ih_l{k}`.
///
/// The state is the hidden state `[num_layers * num_directions, batch, hidden]`.
pub type Gru = Recurrent<GruCell>;

impl GruConfig {
    /// Builds the layer with PyTorch's initialisation (uniform in `±1/sqrt(hidden_size)`).
    ///
    /// # Panics
    /// When the config is invalid; use [`GruConfig::try_init`] for configs from user input.
    pub fn init(&self, device: &Device) -> Gru {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds the layer, or says which config field is out of range.
    pub fn try_init(&self, device: &Device) -> Result<Gru, RecurrentError> {
        Gru::build(
            Build {
                kind: CellKind::Gru,
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
