//! Trains a small LSTM forecaster on noisy sine waves and prints its falling loss.
//!
//! ```text
//! cargo run --release --example synthetic_lstm
//! ```
//!
//! Each sample is 48 steps of `sin(ω t + φ) + noise` with a random frequency and phase; the model
//! (2-layer LSTM, hidden 32, then a linear head on the last hidden state) predicts the next 8
//! steps. The table compares the validation MSE with the repeat-last-value baseline.

use std::time::Instant;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use gatecast_model::{Lstm, LstmConfig};

const LOOKBACK: usize = 48;
const HORIZON: usize = 8;

#[derive(Module, Debug)]
struct Forecaster {
    lstm: Lstm,
    head: Linear,
}

impl Forecaster {
    fn new(device: &Device) -> Self {
        Self {
            lstm: LstmConfig::new(1, 32).with_num_layers(2).init(device),
            head: LinearConfig::new(32, HORIZON).init(device),
        }
    }

    /// `[batch, lookback, 1]` → `[batch, horizon]`.
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let (_, state) = self.lstm.forward(x, None);
        // Last layer's final hidden state: [batch, hidden].
        let layers = state.hidden.dims()[0];
        let last = state.hidden.narrow(0, layers - 1, 1).squeeze_dim::<2>(0);
        self.head.forward(last)
    }
}

/// `[batch, LOOKBACK + HORIZON]` noisy sine windows with random frequency and phase.
fn sines(batch: usize, device: &Device) -> Tensor<2> {
    let steps = LOOKBACK + HORIZON;
    let t = Tensor::<1, burn::tensor::Int>::arange(0..steps as i64, device)
        .float()
        .reshape([1, steps]);
    let freq = Tensor::<2>::random([batch, 1], Distribution::Uniform(0.1, 0.3), device);
    let phase = Tensor::<2>::random(
        [batch, 1],
        Distribution::Uniform(0.0, std::f64::consts::TAU),
        device,
    );
    let noise = Tensor::<2>::random([batch, steps], Distribution::Normal(0.0, 0.05), device);
    (t * freq + phase).sin() + noise
}

fn split(series: Tensor<2>) -> (Tensor<3>, Tensor<2>) {
    let [batch, _] = series.dims();
    let x = series
        .clone()
        .narrow(1, 0, LOOKBACK)
        .reshape([batch, LOOKBACK, 1]);
    let y = series.narrow(1, LOOKBACK, HORIZON);
    (x, y)
}

fn scalar(t: Tensor<1>) -> f32 {
    t.into_data().try_into_vec_as::<f32>().unwrap()[0]
}

fn main() {
    let device = Device::flex();
    device.seed(42);
    let train_device = device.clone().autodiff();

    let (valid_x, valid_y) = split(sines(512, &device));
    let naive = {
        let last = valid_x.clone().narrow(1, LOOKBACK - 1, 1).reshape([512, 1]);
        scalar((valid_y.clone() - last).powi_scalar(2).mean())
    };

    let mut model = Forecaster::new(&train_device);
    let mut optim = AdamConfig::new().init();
    let (epochs, batches, batch) = (12, 16, 64);
    println!(
        "synthetic_lstm: 2-layer LSTM(32) on noisy sines, lookback {LOOKBACK}, horizon {HORIZON}"
    );
    println!("repeat-last baseline validation MSE: {naive:.4}");
    println!("| epoch | train MSE | valid MSE | seconds |");
    println!("|---|---|---|---|");
    let start = Instant::now();
    let mut valid = f32::NAN;
    for epoch in 1..=epochs {
        let mut total = 0.0;
        for _ in 0..batches {
            let (x, y) = split(sines(batch, &train_device));
            let loss = (model.forward(x) - y).powi_scalar(2).mean();
            total += scalar(loss.clone().inner());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(5e-3, model, grads);
        }
        valid = scalar(
            (model.valid().forward(valid_x.clone()) - valid_y.clone())
                .powi_scalar(2)
                .mean(),
        );
        println!(
            "| {epoch} | {:.4} | {valid:.4} | {:.1} |",
            total / batches as f32,
            start.elapsed().as_secs_f64()
        );
    }
    // For examples/tests/claims.rs: the LSTM ends well below the repeat-last baseline.
    println!("check: naive_mse={naive} valid_mse={valid}");
}
