//! Long short-term memory (Hochreiter & Schmidhuber 1997), PyTorch's `nn.LSTM` semantics.

use burn::config::Config;
use burn::tensor::{Device, Tensor};

use crate::error::RecurrentError;
use crate::layer::{Build, LstmCell, Recurrent};
use crate::stack::CellKind;

/// Configuration of a stacked, optionally bidirectional [`Lstm`].
///
/// Field names and defaults follow PyTorch's `nn.LSTM` (with `batch_first=True`).
#[derive(Config, Debug)]
pub struct LstmConfig {
    /// Features per time step of the input.
    pub input_size: usize,
    /// Size `H` of the hidden and cell states.
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
    /// Added to the forget gate's input bias at initialisation. PyTorch's default is 0 (gates
    /// start half open, f ≈ 0.5); 1 (Gers et al. 2000; Keras' `unit_forget_bias`) keeps more of
    /// the cell, and of its gradient, across steps. Needs `bias = true`.
    #[config(default = 0.0)]
    pub forget_bias: f64,
}

/// A stacked, optionally bidirectional LSTM with PyTorch's equations and weight layout:
///
/// ```text
/// i = σ(W_ii x + b_ii + W_hi h + b_hi)      f = σ(W_if x + b_if + W_hf h + b_hf)
/// g = tanh(W_ig x + b_ig + W_hg h + b_hg)   o = σ(W_io x + b_io + W_ho h + b_ho)
/// c' = f ⊙ c + i ⊙ g                         h' = o ⊙ tanh(c')
/// ```
///
/// Weights are stored per layer and direction as `weight_ih [4H, input]`, `weight_hh [4H, H]`,
/// `bias_ih [4H]`, `bias_hh [4H]` with gates in the order (i, f, g, o), exactly as PyTorch's
/// `weight_ih_l{k}` etc., so a PyTorch state_dict loads unchanged (see [`crate::pytorch`]).
pub type Lstm = Recurrent<LstmCell>;

impl LstmConfig {
    /// Builds the layer with PyTorch's initialisation (uniform in `±1/sqrt(hidden_size)`).
    ///
    /// # Panics
    /// When the config is invalid; use [`LstmConfig::try_init`] for configs from user input.
    pub fn init(&self, device: &Device) -> Lstm {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds the layer, or says which config field is out of range.
    pub fn try_init(&self, device: &Device) -> Result<Lstm, RecurrentError> {
        let mut lstm = Lstm::build(
            Build {
                kind: CellKind::Lstm,
                input_size: self.input_size,
                hidden_size: self.hidden_size,
                num_layers: self.num_layers,
                bias: self.bias,
                dropout: self.dropout,
                bidirectional: self.bidirectional,
            },
            device,
        )?;
        if self.forget_bias != 0.0 {
            let h = self.hidden_size;
            let shift: Vec<f32> = (0..4 * h)
                .map(|i| {
                    if (h..2 * h).contains(&i) {
                        self.forget_bias as f32
                    } else {
                        0.0
                    }
                })
                .collect();
            let shift =
                Tensor::<1>::from_data(burn::tensor::TensorData::new(shift, [4 * h]), device);
            for layer in lstm.layers.iter_mut() {
                for dir in std::iter::once(&mut layer.forward).chain(layer.reverse.as_mut()) {
                    if let Some(b) = dir.bias_ih.take() {
                        let shifted = b.val() + shift.clone();
                        dir.bias_ih = Some(burn::module::Param::from_tensor(shifted.detach()));
                    }
                }
            }
        }
        Ok(lstm)
    }
}
