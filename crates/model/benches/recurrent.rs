//! gatecast's `Lstm`/`Gru` against burn-nn's, forward and training step, on every CPU backend
//! compiled in. Prints one table; run with
//!
//! ```text
//! cargo bench -p gatecast-model --bench recurrent --features flex,ndarray
//! ```
//!
//! Shapes: B=64, F=7, H=128, 2 stacked layers, T ∈ {96, 336} (burn-nn has no `num_layers`, so
//! two of its layers are chained by hand). `GATECAST_BENCH_REPS` sets the timed repetitions
//! (default 5, after one warm-up); the median is reported. A train step is forward + backward of
//! the mean output (no optimizer), the part the layer implementation decides.

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};

const B: usize = 64;
const F: usize = 7;
const H: usize = 128;

#[allow(clippy::large_enum_variant)] // built once per measurement
enum Model {
    OursLstm(gatecast_model::Lstm),
    OursGru(gatecast_model::Gru),
    BurnLstm(burn::nn::Lstm, burn::nn::Lstm),
    BurnGru(burn::nn::Gru, burn::nn::Gru),
}

impl Model {
    fn build(name: &str, device: &Device) -> Self {
        match name {
            "gatecast Lstm" => Model::OursLstm(
                gatecast_model::LstmConfig::new(F, H)
                    .with_num_layers(2)
                    .init(device),
            ),
            "gatecast Gru" => Model::OursGru(
                gatecast_model::GruConfig::new(F, H)
                    .with_num_layers(2)
                    .init(device),
            ),
            "burn-nn Lstm" => Model::BurnLstm(
                burn::nn::LstmConfig::new(F, H, true).init(device),
                burn::nn::LstmConfig::new(H, H, true).init(device),
            ),
            "burn-nn Gru" => Model::BurnGru(
                burn::nn::GruConfig::new(F, H, true).init(device),
                burn::nn::GruConfig::new(H, H, true).init(device),
            ),
            _ => unreachable!(),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            Model::OursLstm(m) => m.forward(x, None).0,
            Model::OursGru(m) => m.forward(x, None).0,
            Model::BurnLstm(a, b) => b.forward(a.forward(x, None).0, None).0,
            Model::BurnGru(a, b) => b.forward(a.forward(x, None), None),
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    median(
        (0..reps)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

fn sync<const D: usize>(t: Tensor<D>) {
    // Reading one value forces the (possibly lazy) computation to finish.
    let _ = t.sum().into_data();
}

#[allow(clippy::vec_init_then_push)] // the pushes depend on cfg features
fn main() {
    let reps: usize = std::env::var("GATECAST_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    #[allow(unused_mut)]
    let mut backends: Vec<(&str, Device)> = Vec::new();
    #[cfg(feature = "flex")]
    backends.push(("flex", Device::flex()));
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    backends.push(("ndarray", Device::ndarray()));
    if backends.is_empty() {
        eprintln!("no CPU backend compiled: run with --features flex,ndarray");
        return;
    }
    println!("B={B} F={F} H={H}, 2 layers; median of {reps} runs (ms); ratio = burn-nn / gatecast");
    println!(
        "| backend | cell | T | gatecast fwd | burn-nn fwd | ratio | gatecast train | burn-nn train | ratio | gatecast train ms/step |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (backend, device) in &backends {
        for cell in ["Lstm", "Gru"] {
            for t in [96usize, 336] {
                let mut row = Vec::new();
                for who in ["gatecast", "burn-nn"] {
                    let name = format!("{who} {cell}");
                    let model = Model::build(&name, device);
                    let x = Tensor::<3>::random([B, t, F], Distribution::Normal(0.0, 1.0), device);
                    let fwd = time(reps, || sync(model.forward(x.clone())));

                    let ad = device.clone().autodiff();
                    let model = Model::build(&name, &ad);
                    let xa = Tensor::<3>::random([B, t, F], Distribution::Normal(0.0, 1.0), &ad);
                    let train = time(reps, || {
                        let loss = model.forward(xa.clone()).mean();
                        let grads = loss.backward();
                        drop(grads);
                    });
                    row.push((fwd, train));
                }
                let (ours, theirs) = (row[0], row[1]);
                println!(
                    "| {backend} | {cell} | {t} | {:.1} | {:.1} | {:.2}x | {:.1} | {:.1} | {:.2}x | {:.3} |",
                    ours.0,
                    theirs.0,
                    theirs.0 / ours.0,
                    ours.1,
                    theirs.1,
                    theirs.1 / ours.1,
                    ours.1 / t as f64,
                );
            }
        }
    }
}
