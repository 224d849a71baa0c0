//! Time to load ETTh1, build the training windows and batch one epoch (L=336, H=96, batch 32),
//! beside a peer that materialises every window up front (what a per-window `Vec` dataset does).
//!
//! ```text
//! cargo bench --workspace --features gatecast-trainer/ndarray,gatecast-trainer/wgpu --bench windows
//! ```
//!
//! Reads `../shared/datasets/ETT/ETTh1.csv` (or the path in `GATECAST_ETTH1`); skips when absent.

use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use gatecast_data::*;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let path = std::env::var("GATECAST_ETTH1").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/datasets/ETT/ETTh1.csv"
        )
        .into()
    });
    if !std::path::Path::new(&path).exists() {
        eprintln!("skipped: {path} is absent (set GATECAST_ETTH1)");
        return;
    }
    let device = Device::flex();
    let (l, h, b) = (336, 96, 32);
    let reps = 5;
    let mut ours = Vec::new();
    let mut peer = Vec::new();
    let mut load_ms = Vec::new();
    for _ in 0..reps {
        let t0 = Instant::now();
        let series = load_csv(&path, &CsvOptions::new("date")).unwrap();
        load_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        let split = TimeSplit::ett_hourly(series.rows(), l).unwrap();
        let scaler = Scaler::fit(ScalerKind::Standard, &series, split.train.clone());
        let scaled = Arc::new(scaler.transform(&series));
        let cols = scaled.columns.clone();
        let config = WindowConfig::new(l, h, cols.clone(), cols);
        let batcher = ForecastBatcher::new(&config);

        let t = Instant::now();
        let d = WindowDataset::new(scaled.clone(), split.train.clone(), config.clone()).unwrap();
        let mut sink = 0usize;
        for start in (0..d.len()).step_by(b) {
            let items = (start..(start + b).min(d.len()))
                .map(|i| d.get(i).unwrap())
                .collect();
            sink += batcher.batch(items, &device).inputs.dims()[0];
        }
        ours.push(t.elapsed().as_secs_f64() * 1e3);
        let windows = sink;

        let t = Instant::now();
        let all: Vec<Window> = (0..d.len()).map(|i| d.get(i).unwrap()).collect();
        let bytes: usize = all
            .iter()
            .map(|w| (w.inputs.len() + w.targets.len()) * 4)
            .sum();
        let mut peer_sink = 0usize;
        for chunk in all.chunks(b) {
            peer_sink += batcher.batch(chunk.to_vec(), &device).inputs.dims()[0];
        }
        assert_eq!(peer_sink, windows);
        peer.push(t.elapsed().as_secs_f64() * 1e3);
        if ours.len() == 1 {
            println!(
                "ETTh1 train split: {windows} windows; shared series {:.1} MB vs materialised windows {:.0} MB",
                (scaled.values.len() * 4) as f64 / 1e6,
                bytes as f64 / 1e6
            );
        }
    }
    println!("load + validate CSV: median {:.1} ms", median(load_ms));
    let (o, p) = (median(ours), median(peer));
    println!(
        "build + batch one epoch (L={l}, H={h}, batch {b}, flex): gatecast WindowDataset {o:.0} ms, materialise-then-batch {p:.0} ms, ratio {:.2}x",
        p / o
    );
}
