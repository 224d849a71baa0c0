//! gatecast's `Rnn`/`Gru`/`Lstm` against burn-nn's modules and PyTorch, on every backend compiled
//! in: the median time of a training step (forward over the sequence, a `Linear` head on the last
//! hidden state, MSE, backward, Adam step) and of inference (forward + head), with achieved
//! GFLOP/s and the fraction of the machine's measured peak (the best of a 1024³ matmul on each
//! backend, in PyTorch, and of an FMA-throughput loop on as many threads). One markdown table.
//!
//! ```text
//! bash scripts/bench/run.sh            # PyTorch (in a virtualenv) + this bench, shapes a,b
//! cargo bench --workspace --features gatecast-trainer/ndarray,gatecast-trainer/wgpu --bench recurrent
//! ```
//!
//! Shapes (F = 7 input features): a = B64 T96 H64 1 layer, b = B64 T96 H128 2 layers,
//! c = B256 T336 H256 2 layers, and c168, c84 (shape c at T = 168, 84: cost against T).
//! Environment:
//! - `GATECAST_BENCH_SHAPES` (default `a,b`), `GATECAST_BENCH_REPS` (default 5; shape c: 3),
//!   `GATECAST_BENCH_WARMUPS` (default 1; a GPU compiles and autotunes on the first few calls),
//! - `GATECAST_BENCH_BACKENDS` (default: the CPU backends compiled in; `wgpu` to add the GPU),
//! - `GATECAST_BENCH_BURN_NN=0` skips burn-nn's modules, `GATECAST_BENCH_LOOP=0` the step-loop
//!   rows, `GATECAST_BENCH_CELLS` (default `rnn,gru,lstm`) picks cells and
//!   `GATECAST_BENCH_TRAIN=0` times inference only (e.g. for `perf`),
//! - `GATECAST_PYTORCH_JSON`: JSON lines from `scripts/bench/pytorch_rnn.py`, for the PyTorch
//!   rows, the ratio columns and PyTorch's matmul peak.
//!
//! FLOPs count the matmuls only: per layer and step `2·B·(I+H)·G·H` (G = 1, 3, 4 gate blocks),
//! forward once for inference, three times for training (forward + two matmuls per backward).

use std::collections::HashMap;
use std::time::Instant;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};

const F: usize = 7;

#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    b: usize,
    t: usize,
    h: usize,
    layers: usize,
}

const SHAPES: [Shape; 5] = [
    Shape {
        name: "a",
        b: 64,
        t: 96,
        h: 64,
        layers: 1,
    },
    Shape {
        name: "b",
        b: 64,
        t: 96,
        h: 128,
        layers: 2,
    },
    Shape {
        name: "c",
        b: 256,
        t: 336,
        h: 256,
        layers: 2,
    },
    // Shape c at a half and a quarter of its length: training time against T.
    Shape {
        name: "c168",
        b: 256,
        t: 168,
        h: 256,
        layers: 2,
    },
    Shape {
        name: "c84",
        b: 256,
        t: 84,
        h: 256,
        layers: 2,
    },
];

fn gates(cell: &str) -> usize {
    match cell {
        "rnn" => 1,
        "gru" => 3,
        _ => 4,
    }
}

/// Matmul FLOPs of one forward pass.
fn forward_flops(cell: &str, s: Shape) -> f64 {
    (0..s.layers)
        .map(|l| {
            let i = if l == 0 { F } else { s.h };
            2.0 * (s.b * (i + s.h) * gates(cell) * s.h * s.t) as f64
        })
        .sum()
}

/// The recurrent part of a network.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
enum Encoder {
    Rnn(gatecast_model::Rnn),
    Gru(gatecast_model::Gru),
    Lstm(gatecast_model::Lstm),
    BurnRnn(Vec<burn::nn::Rnn>),
    BurnGru(Vec<burn::nn::Gru>),
    BurnLstm(Vec<burn::nn::Lstm>),
}

#[derive(Module, Debug)]
struct Net {
    encoder: Encoder,
    head: Linear,
}

impl Net {
    fn new(who: &str, cell: &str, s: Shape, device: &Device) -> Self {
        let sizes = |l: usize| if l == 0 { F } else { s.h };
        let encoder = match (who, cell) {
            ("gatecast", "rnn") => Encoder::Rnn(
                gatecast_model::RnnConfig::new(F, s.h)
                    .with_num_layers(s.layers)
                    .init(device),
            ),
            ("gatecast", "gru") => Encoder::Gru(
                gatecast_model::GruConfig::new(F, s.h)
                    .with_num_layers(s.layers)
                    .init(device),
            ),
            ("gatecast", _) => Encoder::Lstm(
                gatecast_model::LstmConfig::new(F, s.h)
                    .with_num_layers(s.layers)
                    .init(device),
            ),
            // burn-nn has no num_layers: its layers are chained by hand.
            (_, "rnn") => Encoder::BurnRnn(
                (0..s.layers)
                    .map(|l| burn::nn::RnnConfig::new(sizes(l), s.h, true).init(device))
                    .collect(),
            ),
            (_, "gru") => Encoder::BurnGru(
                (0..s.layers)
                    .map(|l| burn::nn::GruConfig::new(sizes(l), s.h, true).init(device))
                    .collect(),
            ),
            _ => Encoder::BurnLstm(
                (0..s.layers)
                    .map(|l| burn::nn::LstmConfig::new(sizes(l), s.h, true).init(device))
                    .collect(),
            ),
        };
        Net {
            encoder,
            head: LinearConfig::new(s.h, 1).init(device),
        }
    }

    /// `x [B, T, F]` → `[B, 1]` from the last step's hidden state of the top layer.
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let [b, t, _] = x.dims();
        let out: Tensor<3> = match &self.encoder {
            Encoder::Rnn(m) => m.forward(x, None).0,
            Encoder::Gru(m) => m.forward(x, None).0,
            Encoder::Lstm(m) => m.forward(x, None).0,
            Encoder::BurnRnn(ls) => ls.iter().fold(x, |x, l| l.forward(x, None).0),
            Encoder::BurnGru(ls) => ls.iter().fold(x, |x, l| l.forward(x, None)),
            Encoder::BurnLstm(ls) => ls.iter().fold(x, |x, l| l.forward(x, None).0),
        };
        let h = out.dims()[2];
        let last = out.slice([0..b, t - 1..t, 0..h]).reshape([b, h]);
        self.head.forward(last)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    // GPU backends compile and autotune kernels on first use: more than one warm-up there.
    let warmups: usize = std::env::var("GATECAST_BENCH_WARMUPS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    for _ in 0..warmups.max(1) {
        f();
    }
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
    // Reading one value forces a (possibly lazy or asynchronous) computation to finish. The bytes
    // themselves must be read: on wgpu, Burn 0.22.1's `into_data` returns before they arrive
    // (they are fetched on first access), so `let _ = t.into_data()` timed only the enqueueing
    // (a 1024³ matmul "ran" at 13-28 TFLOP/s on Mesa's software Vulkan; 135 ms when read).
    let data = t.sum().into_data();
    std::hint::black_box(data.as_bytes().first().copied());
}

/// Median GFLOP/s of a 1024³ f32 matmul.
fn matmul_peak(device: &Device) -> f64 {
    let n = 1024;
    let a = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), device);
    let b = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), device);
    let ms = time(5, || sync(a.clone().matmul(b.clone())));
    2.0 * (n * n * n) as f64 / (ms * 1e-3) / 1e9
}

/// GFLOP/s of `threads` threads each running 16 independent chains of 16-lane FMAs: the ceiling
/// of any f32 matmul on this machine (AVX-512 only; `None` elsewhere).
fn fma_peak(threads: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        use std::arch::x86_64::*;
        #[target_feature(enable = "avx512f")]
        fn chains(iters: u64) -> f32 {
            let (a, b) = (_mm512_set1_ps(1.000_000_1), _mm512_set1_ps(0.999_999_9));
            let mut c = [_mm512_setzero_ps(); 16];
            for _ in 0..iters {
                for c in c.iter_mut() {
                    *c = _mm512_fmadd_ps(a, b, *c);
                }
            }
            c.iter().map(|c| _mm512_reduce_add_ps(*c)).sum()
        }
        let iters = 20_000_000u64;
        let best = (0..3)
            .map(|_| {
                let t0 = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        // SAFETY: the CPU has AVX-512F.
                        s.spawn(|| std::hint::black_box(unsafe { chains(iters) }));
                    }
                });
                t0.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        return Some((threads as u64 * iters * 16 * 32) as f64 / best / 1e9);
    }
    let _ = threads;
    None
}

/// (train ms, inference ms) of one implementation.
fn measure(who: &str, cell: &str, s: Shape, device: &Device, reps: usize) -> (f64, f64) {
    let net = Net::new(who, cell, s, device);
    let x = Tensor::<3>::random([s.b, s.t, F], Distribution::Normal(0.0, 1.0), device);
    let infer = time(reps, || sync(net.forward(x.clone())));
    drop(net);
    if std::env::var("GATECAST_BENCH_TRAIN").as_deref() == Ok("0") {
        return (f64::NAN, infer);
    }

    let ad = device.clone().autodiff();
    let mut net = Some(Net::new(who, cell, s, &ad));
    let mut optim = AdamConfig::new().init();
    let x = Tensor::<3>::random([s.b, s.t, F], Distribution::Normal(0.0, 1.0), &ad);
    let y = Tensor::<2>::random([s.b, 1], Distribution::Normal(0.0, 1.0), &ad);
    let train = time(reps, || {
        let model = net.take().expect("model");
        let diff = model.forward(x.clone()) - y.clone();
        let loss = (diff.clone() * diff).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optim.step(1e-3, model, grads);
        // The update is lazy on some backends: wait for it, and for every other parameter's.
        sync(model.head.weight.val());
        ad.sync().expect("the training step ran");
        net = Some(model);
    });
    (train, infer)
}

struct Row {
    shape: &'static str,
    cell: String,
    who: String,
    train: f64,
    infer: f64,
}

fn pytorch_rows(path: &str) -> (Vec<Row>, Option<f64>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("{path}: cannot read; no PyTorch rows");
        return (Vec::new(), None);
    };
    let mut rows = Vec::new();
    let mut peak = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: HashMap<String, serde_json::Value> =
            serde_json::from_str(line).expect("a JSON object per line");
        if let Some(p) = v.get("matmul_gflops").and_then(|p| p.as_f64()) {
            peak = Some(p);
            continue;
        }
        let shape = v["shape"].as_str().unwrap_or("");
        let Some(s) = SHAPES.iter().find(|s| s.name == shape) else {
            continue;
        };
        rows.push(Row {
            shape: s.name,
            cell: v["cell"].as_str().unwrap_or("").to_string(),
            who: format!(
                "PyTorch {} ({})",
                v["version"].as_str().unwrap_or(""),
                match &v["threads"] {
                    serde_json::Value::String(d) => d.clone(),
                    n => format!("{n} threads"),
                }
            ),
            train: v["train_ms"].as_f64().unwrap_or(f64::NAN),
            infer: v["infer_ms"].as_f64().unwrap_or(f64::NAN),
        });
    }
    (rows, peak)
}

#[allow(clippy::vec_init_then_push)] // the pushes depend on cfg features
fn main() {
    let env = |k: &str| std::env::var(k).ok();
    let reps: usize = env("GATECAST_BENCH_REPS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let shapes: Vec<Shape> = env("GATECAST_BENCH_SHAPES")
        .unwrap_or_else(|| "a,b".into())
        .split(',')
        .filter_map(|n| SHAPES.iter().copied().find(|s| s.name == n.trim()))
        .collect();
    let burn_nn = env("GATECAST_BENCH_BURN_NN").as_deref() != Some("0");
    let step_loop = env("GATECAST_BENCH_LOOP").as_deref() != Some("0");
    let cells = env("GATECAST_BENCH_CELLS").unwrap_or_else(|| "rnn,gru,lstm".into());
    let mut available: Vec<(&str, Device)> = Vec::new();
    #[cfg(feature = "flex")]
    available.push(("flex", Device::flex()));
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    available.push(("ndarray", Device::ndarray()));
    #[cfg(feature = "wgpu")]
    available.push((
        "wgpu",
        Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
    ));
    let wanted = env("GATECAST_BENCH_BACKENDS").unwrap_or_else(|| "flex,ndarray".into());
    let backends: Vec<(&str, Device)> = available
        .into_iter()
        .filter(|(n, _)| wanted.split(',').any(|w| w.trim() == *n))
        .collect();
    if backends.is_empty() {
        eprintln!("no backend selected: build with --features flex,ndarray (wgpu) and check GATECAST_BENCH_BACKENDS");
        return;
    }
    let (torch, torch_peak) = env("GATECAST_PYTORCH_JSON")
        .map(|p| pytorch_rows(&p))
        .unwrap_or_default();

    let mut peaks = Vec::new();
    for (name, device) in &backends {
        let p = matmul_peak(device);
        println!("matmul 1024³ f32 on {name}: {p:.1} GFLOP/s");
        peaks.push(p);
    }
    if let Some(p) = torch_peak {
        println!("matmul 1024³ f32 in PyTorch: {p:.1} GFLOP/s");
        peaks.push(p);
    }
    let threads = env("RAYON_NUM_THREADS")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if let Some(p) = fma_peak(threads) {
        println!("FMA throughput, {threads} threads × 16 chains of 16 lanes: {p:.1} GFLOP/s");
        peaks.push(p);
    }
    let peak = peaks.iter().cloned().fold(0.0, f64::max);
    println!("peak used for the % columns: {peak:.1} GFLOP/s (the best of the above)\n");

    let mut rows: Vec<Row> = Vec::new();
    for s in &shapes {
        let reps = if s.name.starts_with('c') {
            reps.clamp(1, 3)
        } else {
            reps
        };
        for cell in ["rnn", "gru", "lstm"] {
            if !cells.split(',').any(|c| c.trim() == cell) {
                continue;
            }
            for (backend, device) in &backends {
                let mut who = vec!["gatecast"];
                // The step-by-step path beside the fused one (every backend has a fused op).
                if step_loop {
                    who.push("gatecast-loop");
                }
                if burn_nn {
                    who.push("burn-nn");
                }
                for w in who {
                    // The switch, not the environment: `GATECAST_FUSED` is read only once.
                    let looped = w == "gatecast-loop";
                    gatecast_model::set_fused(!looped);
                    let w = if looped { "gatecast" } else { w };
                    let label = if looped { "gatecast, step loop" } else { w };
                    // burn-nn's backward grows with T² at shape c: one repetition is plenty.
                    let r = if w == "burn-nn" && s.name.starts_with('c') {
                        1
                    } else {
                        reps
                    };
                    let (train, infer) = measure(w, cell, *s, device, r);
                    eprintln!(
                        "{} {cell} {label} {backend}: train {train:.1} ms, inference {infer:.1} ms",
                        s.name
                    );
                    rows.push(Row {
                        shape: s.name,
                        cell: cell.into(),
                        who: format!("{label} ({backend})"),
                        train,
                        infer,
                    });
                }
            }
        }
    }
    rows.extend(torch);

    println!(
        "Median of {reps} runs (shape c: up to 3) after one warm-up. ×PyTorch = time / PyTorch's time (below 1: faster)."
    );
    println!("| shape | cell | implementation | train ms | ×PyTorch | GFLOP/s | % peak | inference ms | ×PyTorch | GFLOP/s | % peak |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for s in &shapes {
        for cell in ["rnn", "gru", "lstm"] {
            let fwd = forward_flops(cell, *s);
            let reference = rows
                .iter()
                .find(|r| r.shape == s.name && r.cell == cell && r.who.starts_with("PyTorch"));
            for r in rows.iter().filter(|r| r.shape == s.name && r.cell == cell) {
                let ratio = |mine: f64, theirs: Option<f64>| {
                    theirs
                        .map(|t| format!("{:.2}", mine / t))
                        .unwrap_or_else(|| "–".into())
                };
                let gflops = |flops: f64, ms: f64| flops / (ms * 1e-3) / 1e9;
                let (gt, gi) = (gflops(3.0 * fwd, r.train), gflops(fwd, r.infer));
                println!(
                    "| {} (B{} T{} H{} ×{}) | {cell} | {} | {:.1} | {} | {:.1} | {:.0}% | {:.1} | {} | {:.1} | {:.0}% |",
                    s.name,
                    s.b,
                    s.t,
                    s.h,
                    s.layers,
                    r.who,
                    r.train,
                    ratio(r.train, reference.map(|p| p.train)),
                    gt,
                    100.0 * gt / peak,
                    r.infer,
                    ratio(r.infer, reference.map(|p| p.infer)),
                    gi,
                    100.0 * gi / peak,
                );
            }
        }
    }
    // The fused op against the step loop on the same backend: the speed-up it exists for.
    let speedups: Vec<String> = rows
        .iter()
        .filter(|r| r.who.starts_with("gatecast ("))
        .filter_map(|fused| {
            let backend = fused.who.trim_start_matches("gatecast ");
            let looped = rows.iter().find(|r| {
                r.shape == fused.shape
                    && r.cell == fused.cell
                    && r.who == format!("gatecast, step loop {backend}")
            })?;
            Some(format!(
                "| {} | {} | {} | {:.1}× | {:.1}× |",
                fused.shape,
                fused.cell,
                backend.trim_matches(|c| c == '(' || c == ')'),
                looped.train / fused.train,
                looped.infer / fused.infer
            ))
        })
        .collect();
    if !speedups.is_empty() {
        println!("\nStep loop time / fused op time (above 1: the fused op is faster):");
        println!("| shape | cell | backend | train | inference |");
        println!("|---|---|---|---|---|");
        for line in speedups {
            println!("{line}");
        }
    }
}
