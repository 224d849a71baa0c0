//! Gated recurrent unit (Cho et al. 2014), PyTorch's `nn.GRU` semantics.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Device, Tensor};

use crate::error::RecurrentError;
use crate::recurrence::{run_stack, validate, CellKind, Stack};
use crate::weights::{check_config, init_layers, RecurrentLayer};

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
#[derive(Module, Debug)]
pub struct Gru {
    /// The stacked layers, `num_layers` of them.
    pub layers: Vec<RecurrentLayer>,
    /// Dropout between layers.
    pub dropout: Dropout,
    input_size: usize,
    hidden_size: usize,
    bidirectional: bool,
}

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
        check_config(
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.dropout,
        )?;
        Ok(Gru {
            layers: init_layers(
                CellKind::Gru.gates(),
                self.input_size,
                self.hidden_size,
                self.num_layers,
                self.bias,
                self.bidirectional,
                device,
            ),
            dropout: DropoutConfig::new(self.dropout).init(),
            input_size: self.input_size,
            hidden_size: self.hidden_size,
            bidirectional: self.bidirectional,
        })
    }
}

impl Gru {
    /// Runs the GRU over whole sequences.
    ///
    /// - `input`: `[batch, time, input_size]`.
    /// - `state`: initial hidden state `[num_layers * num_directions, batch, hidden]`; zeros if `None`.
    ///
    /// Returns the last layer's outputs `[batch, time, num_directions * hidden]` (forward
    /// direction first) and the final hidden state `[num_layers * num_directions, batch, hidden]`.
    ///
    /// # Panics
    /// When shapes do not match the layer; [`Gru::try_forward`] returns the error instead.
    pub fn forward(&self, input: Tensor<3>, state: Option<Tensor<3>>) -> (Tensor<3>, Tensor<3>) {
        self.try_forward(input, state, None)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs the GRU, checking every shape, with optional per-sequence lengths.
    ///
    /// - `input`: `[batch, time, input_size]`, sequences padded to `time`.
    /// - `state`: initial hidden state `[num_layers * num_directions, batch, hidden]`; zeros if `None`.
    /// - `lengths`: `[batch]`, each in `1..=time`, in any order. Outputs after a sequence's end
    ///   are zero and its final state is the state at its last valid step (PyTorch's
    ///   packed-sequence semantics).
    pub fn try_forward(
        &self,
        input: Tensor<3>,
        state: Option<Tensor<3>>,
        lengths: Option<&[usize]>,
    ) -> Result<(Tensor<3>, Tensor<3>), RecurrentError> {
        validate(
            self.input_size,
            self.hidden_size,
            self.state_rows(),
            input.dims(),
            state.as_ref().map(|t| t.dims()),
            None,
            lengths,
        )?;
        let stack = Stack::new(CellKind::Gru, &self.layers, &self.dropout, self.hidden_size);
        let out = run_stack(stack, input, state, None, lengths);
        Ok((out.output, out.hidden))
    }
}

layer_accessors!(Gru);
