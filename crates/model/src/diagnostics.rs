//! Gradient-flow diagnostics: how strongly the loss at the last step reaches back to each earlier
//! hidden state, and the spectral norm of the recurrent weights.
//!
//! For an Elman RNN, `∂h_t/∂h_{t-1} = diag(1 − h_t²) W_hh`, so `‖∂L/∂h_t‖` shrinks (or grows)
//! geometrically with the distance to the last step; the LSTM's additive cell path lets it decay
//! more slowly. [`hidden_gradient_norms`] measures it.

use burn::tensor::{Distribution, Tensor};

use crate::step_loop::{step, CellState, StepWeights};
use crate::{Gru, Lstm, Rnn};

/// A single-direction layer whose first layer is probed.
pub enum Probe<'a> {
    /// Elman RNN.
    Rnn(&'a Rnn),
    /// GRU.
    Gru(&'a Gru),
    /// LSTM.
    Lstm(&'a Lstm),
}

/// `‖∂L/∂h_t‖` for `t = 1..=T` (index 0 is the first step), averaged over the batch, for the
/// first layer's forward direction, where `L = Σ h_T ⊙ r` with a fixed random `r`.
///
/// `input` is `[batch, time, input_size]` on an autodiff device. Each step's hidden state gets a
/// zero-valued leaf tensor added to it, so its gradient is exactly `∂L/∂h_t`.
pub fn hidden_gradient_norms(layer: Probe<'_>, input: Tensor<3>) -> Vec<f64> {
    let (kind, weights, hidden) = match layer {
        Probe::Rnn(m) => (m.kind(), &m.layers[0].forward, m.hidden_size()),
        Probe::Gru(m) => (m.kind(), &m.layers[0].forward, m.hidden_size()),
        Probe::Lstm(m) => (m.kind(), &m.layers[0].forward, m.hidden_size()),
    };
    let device = input.device();
    let [batch, time, _] = input.dims();
    let w = StepWeights::new(kind, weights);
    let mut state = CellState {
        hidden: Tensor::zeros([batch, hidden], &device),
        cell: kind
            .has_cell()
            .then(|| Tensor::zeros([batch, hidden], &device)),
    };
    let mut probes = Vec::with_capacity(time);
    for t in 0..time {
        let x = input.clone().narrow(1, t, 1).squeeze_dim::<2>(1);
        let mut next = step(kind, &w, hidden, x, &state);
        let probe = Tensor::<2>::zeros([batch, hidden], &device).require_grad();
        next.hidden = next.hidden + probe.clone();
        probes.push(probe);
        state = next;
    }
    let r = Tensor::<2>::random([batch, hidden], Distribution::Normal(0.0, 1.0), &device);
    let loss = (state.hidden * r).sum();
    let grads = loss.backward();
    probes
        .iter()
        .map(|p| {
            let g = p.grad(&grads).expect("every probe reaches the loss");
            let per_seq = g.powi_scalar(2).sum_dim(1).sqrt().mean();
            per_seq.into_scalar::<f64>()
        })
        .collect()
}

/// The largest singular value of a matrix `[rows, cols]` (power iteration on `AᵀA`, in f64).
pub fn spectral_norm(matrix: Tensor<2>) -> f64 {
    let [rows, cols] = matrix.dims();
    let a: Vec<f64> = matrix
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data")
        .into_iter()
        .map(f64::from)
        .collect();
    let mut v = vec![1.0 / (cols as f64).sqrt(); cols];
    let mut sigma = 0.0;
    for _ in 0..200 {
        let av: Vec<f64> = (0..rows)
            .map(|i| (0..cols).map(|j| a[i * cols + j] * v[j]).sum())
            .collect();
        let mut atav: Vec<f64> = (0..cols)
            .map(|j| (0..rows).map(|i| a[i * cols + j] * av[i]).sum())
            .collect();
        let norm = atav.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return 0.0;
        }
        atav.iter_mut().for_each(|x| *x /= norm);
        v = atav;
        sigma = norm.sqrt();
    }
    sigma
}

/// The largest singular value of each gate block of the first layer's `W_hh` (`[H, H]` each;
/// Elman: one block; GRU: r, z, n; LSTM: i, f, g, o).
pub fn recurrent_spectral_norms(layer: Probe<'_>) -> Vec<f64> {
    let (w, h) = match layer {
        Probe::Rnn(m) => (&m.layers[0].forward.weight_hh, m.hidden_size()),
        Probe::Gru(m) => (&m.layers[0].forward.weight_hh, m.hidden_size()),
        Probe::Lstm(m) => (&m.layers[0].forward.weight_hh, m.hidden_size()),
    };
    let full = w.val();
    let gates = full.dims()[0] / h;
    (0..gates)
        .map(|g| spectral_norm(full.clone().narrow(0, g * h, h)))
        .collect()
}
