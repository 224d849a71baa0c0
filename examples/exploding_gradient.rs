//! An Elman RNN whose recurrent weights start too large (PyTorch's init ×3: spectral norm ≈ 3.4), trained with plain
//! SGD, with and without global-norm gradient clipping (PyTorch's `clip_grad_norm_`, max 1).
//!
//! ```text
//! cargo run --release --example exploding_gradient
//! ```
//!
//! Task: predict the next value of a noisy sine from the last 64. Prints per epoch the training
//! loss and the largest pre-clip gradient norm of each run, and writes
//! `runs/exploding_gradient/{results.csv, loss.png}`.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Tensor, TensorData};
use gatecast_data::synthetic::noisy_sine;
use gatecast_model::diagnostics::{recurrent_spectral_norms, Probe};
use gatecast_model::{Rnn, RnnConfig};
use gatecast_trainer::clip::clip_global_norm;
use gatecast_trainer::renderer::EpochRow;

const LOOKBACK: usize = 64;

#[derive(Module, Debug)]
struct Net {
    rnn: Rnn,
    head: Linear,
}

impl Net {
    fn new(device: &Device, scale: f32) -> Self {
        let mut rnn = RnnConfig::new(1, 32).init(device);
        let w = &mut rnn.layers[0].forward.weight_hh;
        *w = Param::from_tensor((w.val() * scale).detach());
        Self {
            rnn,
            head: LinearConfig::new(32, 1).init(device),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let (_, h) = self.rnn.forward(x, None);
        let [_, b, hid] = h.dims();
        self.head.forward(h.reshape([b, hid]))
    }
}

fn batch(seed: u64, size: usize, device: &Device) -> (Tensor<3>, Tensor<2>) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..size as u64 {
        let s = noisy_sine(LOOKBACK + 1, 12.0, 30.0, 0.05, seed * 10_000 + i);
        x.extend_from_slice(&s[..LOOKBACK]);
        y.push(s[LOOKBACK]);
    }
    (
        Tensor::from_data(TensorData::new(x, [size, LOOKBACK, 1]), device),
        Tensor::from_data(TensorData::new(y, [size, 1]), device),
    )
}

/// Returns per-epoch rows: mean training loss and the max pre-clip global gradient norm.
fn run(clip: Option<f64>, epochs: usize) -> Vec<EpochRow> {
    let device = Device::flex().autodiff();
    device.seed(3);
    let mut net = Net::new(&device, scale());
    let mut optim = SgdConfig::new().init();
    let mut rows = Vec::new();
    for epoch in 1..=epochs {
        let (mut loss_sum, mut max_norm, n) = (0.0, 0.0f64, 40);
        for step in 0..n {
            let (x, y) = batch((epoch * n + step) as u64, 32, &device);
            let loss = (net.forward(x) - y).powi_scalar(2).mean();
            loss_sum += loss.clone().into_scalar::<f64>();
            let mut grads = GradientsParams::from_grads(loss.backward(), &net);
            let norm = match clip {
                Some(max) => clip_global_norm(&net, &mut grads, max),
                None => gatecast_trainer::clip::global_norm(&net, &grads),
            };
            max_norm = max_norm.max(norm);
            if norm.is_finite() {
                net = optim.step(0.05, net, grads);
            }
        }
        rows.push(EpochRow {
            epoch,
            train_loss: loss_sum / n as f64,
            grad_norm_max: max_norm,
            ..EpochRow::default()
        });
    }
    rows
}

/// How much the PyTorch-initialised recurrent weights are scaled up (`GATECAST_SCALE`, default 3).
fn scale() -> f32 {
    std::env::var("GATECAST_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0)
}

fn main() {
    let device = Device::flex();
    device.seed(3);
    let spectral = recurrent_spectral_norms(Probe::Rnn(&Net::new(&device, scale()).rnn));
    println!(
        "Elman RNN, hidden 32, W_hh scaled x{} at init: spectral norm {:.2}",
        scale(),
        spectral[0]
    );
    let epochs = 8;
    let plain = run(None, epochs);
    let clipped = run(Some(1.0), epochs);
    println!("SGD lr 0.05, 40 batches of 32 per epoch");
    println!("| epoch | loss, no clipping | max grad norm | loss, global-norm clip 1.0 | max grad norm (pre-clip) |");
    println!("|---|---|---|---|---|");
    let mut csv = String::from("epoch,loss_noclip,max_norm_noclip,loss_clip,max_norm_clip\n");
    for (a, b) in plain.iter().zip(&clipped) {
        println!(
            "| {} | {:.3e} | {:.3e} | {:.4} | {:.3e} |",
            a.epoch, a.train_loss, a.grad_norm_max, b.train_loss, b.grad_norm_max
        );
        csv += &format!(
            "{},{},{},{},{}\n",
            a.epoch, a.train_loss, a.grad_norm_max, b.train_loss, b.grad_norm_max
        );
    }
    let out = std::path::Path::new("runs/exploding_gradient");
    std::fs::create_dir_all(out).expect("output directory");
    std::fs::write(out.join("results.csv"), csv).expect("results.csv");
    let points = |rows: &[EpochRow]| -> Vec<(f64, f64)> {
        rows.iter()
            .map(|r| (r.epoch as f64, r.train_loss.min(10.0)))
            .collect()
    };
    gatecast_trainer::plots::curves(
        &out.join("loss.png"),
        "Elman RNN, W_hh x3 at init: training loss with SGD",
        "training MSE (capped at 10)",
        &[
            ("no clipping", points(&plain)),
            ("global-norm clip 1.0", points(&clipped)),
        ],
    )
    .expect("plot");
    println!("wrote {}/results.csv and loss.png", out.display());
    // For examples/tests/claims.rs: without clipping the gradient norm explodes; with it the
    // loss stays finite and falls.
    let max_norm = |rows: &[EpochRow]| rows.iter().map(|r| r.grad_norm_max).fold(0.0, f64::max);
    let losses = |rows: &[EpochRow]| rows.iter().map(|r| r.train_loss).collect::<Vec<_>>();
    let clipped_losses = losses(&clipped);
    println!(
        "check: unclipped_max_grad_norm={} clipped_first_loss={} clipped_last_loss={} clipped_max_loss={}",
        max_norm(&plain),
        clipped_losses[0],
        clipped_losses[clipped_losses.len() - 1],
        clipped_losses.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
    );
}
