//! The Elman recurrent network, PyTorch's `nn.RNN` semantics.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Device, Tensor};

use crate::error::RecurrentError;
use crate::recurrence::{run_stack, validate, CellKind, Stack};
use crate::weights::{check_config, init_layers, RecurrentLayer};

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
#[derive(Module, Debug)]
pub struct Rnn {
    /// The stacked layers, `num_layers` of them.
    pub layers: Vec<RecurrentLayer>,
    /// Dropout between layers.
    pub dropout: Dropout,
    input_size: usize,
    hidden_size: usize,
    bidirectional: bool,
    relu: bool,
}

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
        check_config(
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.dropout,
        )?;
        Ok(Rnn {
            layers: init_layers(
                1,
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
            relu: self.nonlinearity == Nonlinearity::Relu,
        })
    }
}

impl Rnn {
    /// Runs the RNN over whole sequences.
    ///
    /// - `input`: `[batch, time, input_size]`.
    /// - `state`: initial hidden state `[num_layers * num_directions, batch, hidden]`; zeros if `None`.
    ///
    /// Returns the last layer's outputs `[batch, time, num_directions * hidden]` (forward
    /// direction first) and the final hidden state `[num_layers * num_directions, batch, hidden]`.
    ///
    /// # Panics
    /// When shapes do not match the layer; [`Rnn::try_forward`] returns the error instead.
    pub fn forward(&self, input: Tensor<3>, state: Option<Tensor<3>>) -> (Tensor<3>, Tensor<3>) {
        self.try_forward(input, state, None)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs the RNN, checking every shape, with optional per-sequence lengths.
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
        let kind = if self.relu {
            CellKind::ElmanRelu
        } else {
            CellKind::ElmanTanh
        };
        let stack = Stack::new(kind, &self.layers, &self.dropout, self.hidden_size);
        let out = run_stack(stack, input, state, None, lengths);
        Ok((out.output, out.hidden))
    }

    /// The activation this RNN applies.
    pub fn nonlinearity(&self) -> Nonlinearity {
        if self.relu {
            Nonlinearity::Relu
        } else {
            Nonlinearity::Tanh
        }
    }
}

layer_accessors!(Rnn);
