//! A downstream Burn project using gatecast's `Gru` inside its own module: a sequence classifier
//! that decides whether a noisy sequence trends up or down. Trains one epoch, saves the weights,
//! loads them back.
//!
//! ```text
//! cd examples/downstream && cargo run --release
//! ```

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use gatecast_model::{Gru, GruConfig};

/// The user's own module: gatecast's GRU followed by a linear read-out.
#[derive(Module, Debug)]
struct TrendClassifier {
    gru: Gru,
    out: Linear,
}

impl TrendClassifier {
    fn new(device: &Device) -> Self {
        Self {
            gru: GruConfig::new(1, 16).with_num_layers(2).init(device),
            out: LinearConfig::new(16, 1).init(device),
        }
    }

    /// `[batch, time, 1]` → logits `[batch, 1]`.
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let (_, h) = self.gru.forward(x, None);
        let [layers, batch, hidden] = h.dims();
        self.out
            .forward(h.narrow(0, layers - 1, 1).reshape([batch, hidden]))
    }
}

/// Sequences with slope ±0.1 plus noise; label 1 for upward.
fn data(batch: usize, device: &Device) -> (Tensor<3>, Tensor<2>) {
    let sign = Tensor::<2>::random([batch, 1], Distribution::Bernoulli(0.5), device);
    let t = Tensor::<1, burn::tensor::Int>::arange(0..30, device)
        .float()
        .reshape([1, 30]);
    let slope = (sign.clone() * 2.0 - 1.0) * 0.1;
    let noise = Tensor::<2>::random([batch, 30], Distribution::Normal(0.0, 0.5), device);
    ((t * slope + noise).reshape([batch, 30, 1]), sign)
}

fn bce(logits: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
    // log(1 + e^z) - y z, stable form.
    let softplus = logits.clone().abs().neg().exp().log1p() + logits.clone().clamp_min(0.0);
    (softplus - y * logits).mean()
}

fn main() {
    let device = Device::flex();
    device.seed(1);
    let train = device.clone().autodiff();
    let mut model = TrendClassifier::new(&train);
    let mut optim = AdamConfig::new().init();
    for step in 1..=100 {
        let (x, y) = data(64, &train);
        let loss = bce(model.forward(x), y);
        if step % 20 == 0 {
            println!(
                "step {step:>3}: loss {:.4}",
                loss.clone().into_scalar::<f32>()
            );
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    let (x, y) = data(1000, &device);
    let trained = model.valid();
    let accuracy = |m: &TrendClassifier| {
        let pred = m.forward(x.clone()).greater_elem(0.0).float();
        (pred - y.clone()).abs().mean().into_scalar::<f32>()
    };
    let err = accuracy(&trained);
    println!("test accuracy: {:.1}%", 100.0 * (1.0 - err));

    let path = std::env::temp_dir().join("downstream-trend.bpk");
    trained.clone().save_file(&path).expect("save weights");
    let record = burn::store::ModuleRecord::load(&path).expect("read weights");
    let loaded = TrendClassifier::new(&device).load_record(record);
    assert_eq!(
        accuracy(&loaded),
        err,
        "the saved weights reproduce the model"
    );
    println!("saved and reloaded {}", path.display());
}
