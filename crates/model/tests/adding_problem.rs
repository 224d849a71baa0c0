//! The adding problem (T = 50): gated cells learn it, the Elman RNN stays near chance (1/6).
//! Hidden 24 for every cell, batches of 64 fresh sequences, Adam at 1e-2. The LSTM (forget-gate
//! bias 1) needs about three times the GRU's steps to leave the plateau; measured here: 600 steps
//! leave it at 0.158, 1800 reach 0.0003.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use gatecast_data::synthetic::{adding_problem, SequenceSample};
use gatecast_model::{GruConfig, LstmConfig, RnnConfig};

const T: usize = 50;

#[derive(Module, Debug)]
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
    let b = samples.len();
    let x: Vec<f32> = samples
        .iter()
        .flat_map(|s| s.inputs.iter().copied())
        .collect();
    let y: Vec<f32> = samples.iter().map(|s| s.target[0]).collect();
    (
        Tensor::from_data(TensorData::new(x, [b, T, 2]), device),
        Tensor::from_data(TensorData::new(y, [b, 1]), device),
    )
}

/// Trains on fresh batches and returns the test MSE.
fn train(which: &str, steps: usize) -> f64 {
    let device = Device::flex().autodiff();
    device.seed(5);
    let hidden = 24;
    let cell = match which {
        "rnn" => Cell::Rnn(RnnConfig::new(2, hidden).init(&device)),
        "gru" => Cell::Gru(GruConfig::new(2, hidden).init(&device)),
        _ => Cell::Lstm(
            LstmConfig::new(2, hidden)
                .with_forget_bias(1.0)
                .init(&device),
        ),
    };
    let mut net = Net {
        cell,
        head: LinearConfig::new(hidden, 1).init(&device),
    };
    let mut optim = AdamConfig::new().init();
    for i in 0..steps {
        let (x, y) = batch(&adding_problem(64, T, 1000 + i as u64), &device);
        let loss = (net.forward(x) - y).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-2, net, grads);
    }
    let plain = Device::flex();
    let (x, y) = batch(&adding_problem(1000, T, 7), &plain);
    let mse = (net.valid().forward(x) - y).powi_scalar(2).mean();
    mse.into_scalar::<f64>()
}

#[test]
fn gated_cells_solve_the_adding_problem_elman_does_not() {
    let steps = 600;
    let (rnn, gru, lstm) = (
        train("rnn", steps),
        train("gru", steps),
        train("lstm", 3 * steps),
    );
    eprintln!("adding problem T={T}: test MSE rnn {rnn:.4} and gru {gru:.4} after {steps} Adam steps, lstm (forget_bias 1) {lstm:.4} after {} (chance 0.167)", 3 * steps);
    assert!(gru < 0.05, "GRU {gru}");
    assert!(lstm < 0.05, "LSTM {lstm}");
    assert!(rnn > 0.1, "Elman {rnn}");
}
