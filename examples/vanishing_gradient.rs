//! The adding problem at T ∈ {25, 50, 100, 200} for an Elman RNN, a GRU and an LSTM with about the
//! same number of parameters, against the chance level 1/6; plus the gradient-flow plot.
//!
//! ```text
//! cargo run --release --example vanishing_gradient
//! ```
//!
//! Writes `runs/vanishing_gradient/{results.csv, gradient_flow.png, gradient_flow.csv}`.

use std::time::Instant;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use gatecast_data::synthetic::{adding_problem, SequenceSample};
use gatecast_model::{GruConfig, LstmConfig, RnnConfig};

#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
enum Cell {
    Rnn(gatecast_model::Rnn),
    Gru(gatecast_model::Gru),
    Lstm(gatecast_model::Lstm),
}

#[derive(Module, Debug)]
struct Net {
    cell: Cell,
    head: Linear,
}

impl Net {
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let h = match &self.cell {
            Cell::Rnn(m) => m.forward(x, None).1,
            Cell::Gru(m) => m.forward(x, None).1,
            Cell::Lstm(m) => m.forward(x, None).1.hidden,
        };
        let [_, b, hid] = h.dims();
        self.head.forward(h.reshape([b, hid]))
    }
}

fn batch(samples: &[SequenceSample], device: &Device) -> (Tensor<3>, Tensor<2>) {
    let (b, t) = (samples.len(), samples[0].time);
    let x: Vec<f32> = samples
        .iter()
        .flat_map(|s| s.inputs.iter().copied())
        .collect();
    let y: Vec<f32> = samples.iter().map(|s| s.target[0]).collect();
    (
        Tensor::from_data(TensorData::new(x, [b, t, 2]), device),
        Tensor::from_data(TensorData::new(y, [b, 1]), device),
    )
}

/// (hidden size, parameters) per cell for a budget of about 2,700 recurrent parameters.
fn build(cell: &str, device: &Device) -> (Net, usize) {
    let (c, hidden) = match cell {
        "rnn" => (Cell::Rnn(RnnConfig::new(2, 50).init(device)), 50),
        "gru" => (Cell::Gru(GruConfig::new(2, 28).init(device)), 28),
        _ => (
            Cell::Lstm(LstmConfig::new(2, 24).with_forget_bias(1.0).init(device)),
            24,
        ),
    };
    let net = Net {
        cell: c,
        head: LinearConfig::new(hidden, 1).init(device),
    };
    let params = net.num_params();
    (net, params)
}

fn main() {
    let steps = 1500;
    let out = std::path::Path::new("runs/vanishing_gradient");
    std::fs::create_dir_all(out).expect("output directory");
    println!(
        "adding problem: test MSE after {steps} Adam steps (lr 1e-2, batch 64); chance level 0.167"
    );
    println!("| T | rnn | gru | lstm (forget bias 1) | seconds |");
    println!("|---|---|---|---|---|");
    let mut csv = String::from("T,cell,params,test_mse\n");
    let mut checks = Vec::new();
    for t in [25usize, 50, 100, 200] {
        let start = Instant::now();
        let mut row = Vec::new();
        for cell in ["rnn", "gru", "lstm"] {
            let device = Device::flex().autodiff();
            device.seed(5);
            let (mut net, params) = build(cell, &device);
            let mut optim = AdamConfig::new().init();
            for i in 0..steps {
                let (x, y) = batch(&adding_problem(64, t, 1000 + i as u64), &device);
                let loss = (net.forward(x) - y).powi_scalar(2).mean();
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                net = optim.step(1e-2, net, grads);
            }
            let (x, y) = batch(&adding_problem(1000, t, 7), &Device::flex());
            let mse: f64 = (net.valid().forward(x) - y)
                .powi_scalar(2)
                .mean()
                .into_scalar::<f64>();
            csv += &format!("{t},{cell},{params},{mse}\n");
            checks.push(format!("{cell}_t{t}={mse}"));
            row.push(mse);
        }
        println!(
            "| {t} | {:.4} | {:.4} | {:.4} | {:.0} |",
            row[0],
            row[1],
            row[2],
            start.elapsed().as_secs_f64()
        );
    }
    std::fs::write(out.join("results.csv"), csv).expect("results.csv");
    let flow = gatecast_trainer::diagnose::diagnose(out, 100, 32, 32, 42, &Device::flex())
        .expect("gradient flow");
    println!("\n||dL/dh_1|| / ||dL/dh_T|| at initialisation, T = 100:");
    for (name, v, _) in &flow {
        let ratio = v[0] / v[v.len() - 1];
        println!("  {name}: {ratio:.2e}");
        let key = name.split(' ').next().unwrap_or(name);
        let key = if name.contains("forget_bias") {
            "lstm_fb"
        } else {
            key
        };
        checks.push(format!("ratio_{key}={ratio}"));
    }
    // For examples/tests/claims.rs: test MSEs per cell and T, and the gradient ratios.
    println!("check: {}", checks.join(" "));
    println!(
        "wrote {}/results.csv, gradient_flow.png, gradient_flow.csv",
        out.display()
    );
}
