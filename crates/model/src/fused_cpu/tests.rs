//! The fused op against the step-by-step loop (forward and backward, every cell, lengths,
//! bidirectional, uneven blocks of rows) and the activations against libm.

use burn::tensor::{Device, Distribution, Tensor};

use super::activation::{sigmoid_in_place, tanh_in_place};
use super::try_fused_stack;
use crate::fused_testing::{compare_fused, host_devices, Case};
use crate::stack::{CellKind, Stack, StackInput};
use crate::step_loop::loop_stack;
use crate::{GruConfig, LstmConfig, Nonlinearity, RecurrentLayer, RnnConfig};

fn compare(kind: CellKind, layers: &[RecurrentLayer], device: &Device, h: usize, b: usize) {
    compare_with(kind, layers, device, h, b, None);
}

fn compare_with(
    kind: CellKind,
    layers: &[RecurrentLayer],
    device: &Device,
    h: usize,
    b: usize,
    lengths: Option<&[usize]>,
) {
    let shape = Case {
        h,
        b,
        t: 17,
        lengths,
    };
    compare_fused(kind, layers, device, shape, &|stack, args| {
        try_fused_stack(stack, args).expect("the fused path applies")
    });
}

/// The gate activations (16 lanes with AVX-512 where the CPU has it, else scalar) against
/// `f32::tanh` and the exact sigmoid, over the clamp and past it, with tails of every length
/// below 16; NaN stays NaN.
#[test]
fn activations_match_libm() {
    for len in [1, 5, 15, 16, 17, 40, 131] {
        let xs: Vec<f32> = (0..len * 61)
            .map(|i| (i as f32 / (len * 61) as f32 - 0.5) * 24.0)
            .collect();
        for chunk in xs.chunks(len) {
            let mut t = chunk.to_vec();
            tanh_in_place(&mut t);
            let mut s = chunk.to_vec();
            sigmoid_in_place(&mut s);
            for ((x, t), s) in chunk.iter().zip(&t).zip(&s) {
                let (want_t, want_s) = (x.tanh(), 1.0 / (1.0 + (-x).exp()));
                assert!(
                    (t - want_t).abs() <= 4e-7 * (1.0 + want_t.abs()),
                    "tanh({x}) {t}"
                );
                assert!((s - want_s).abs() <= 4e-7, "sigmoid({x}) {s}");
            }
        }
    }
    let mut v = vec![0.5, f32::NAN, -3.0];
    tanh_in_place(&mut v);
    assert!(v[1].is_nan() && !v[0].is_nan() && !v[2].is_nan());
    let mut v = vec![f32::NAN; 17];
    sigmoid_in_place(&mut v);
    assert!(v.iter().all(|x| x.is_nan()));
}

/// Variable-length batches (PyTorch's packed sequences): states frozen past each row's
/// length, zero outputs there, and the reverse direction reversed within each length.
#[test]
fn fused_lengths_match_the_loop() {
    for device in host_devices() {
        lengths_case(&device.autodiff());
    }
}

fn lengths_case(device: &Device) {
    let device = device.clone();
    device.seed(9);
    let (i, h) = (5, 6);
    let lengths: &[usize] = &[17, 4, 11, 1];
    let lstm = LstmConfig::new(i, h)
        .with_num_layers(2)
        .with_bidirectional(true)
        .init(&device);
    compare_with(CellKind::Lstm, &lstm.layers, &device, h, 4, Some(lengths));
    let gru = GruConfig::new(i, h)
        .with_num_layers(2)
        .with_bidirectional(true)
        .init(&device);
    compare_with(CellKind::Gru, &gru.layers, &device, h, 4, Some(lengths));
    let rnn = RnnConfig::new(i, h).with_num_layers(2).init(&device);
    compare_with(
        CellKind::ElmanTanh,
        &rnn.layers,
        &device,
        h,
        4,
        Some(lengths),
    );
}

/// Inference (no autodiff): the fused forward against the loop.
#[test]
fn fused_inference_matches_the_loop() {
    for device in host_devices() {
        inference_case(&device);
    }
}

fn inference_case(device: &Device) {
    let device = device.clone();
    device.seed(6);
    let (b, t, i, h) = (4, 13, 3, 6);
    let x = Tensor::<3>::random([b, t, i], Distribution::Normal(0.0, 1.0), &device);
    let dropout = burn::nn::DropoutConfig::new(0.0).init();
    let lstm = LstmConfig::new(i, h).with_num_layers(2).init(&device);
    let gru = GruConfig::new(i, h).with_num_layers(2).init(&device);
    let rnn = RnnConfig::new(i, h).with_num_layers(2).init(&device);
    let gru_bi = GruConfig::new(i, h)
        .with_num_layers(2)
        .with_bidirectional(true)
        .init(&device);
    let cases = [
        (CellKind::Lstm, &lstm.layers),
        (CellKind::Gru, &gru.layers),
        (CellKind::ElmanTanh, &rnn.layers),
        (CellKind::Gru, &gru_bi.layers),
    ];
    for (kind, layers) in cases {
        let stack = Stack::new(kind, layers, &dropout, h);
        let args = || StackInput {
            input: x.clone(),
            hidden0: None,
            cell0: None,
            lengths: None,
        };
        let fused =
            try_fused_stack(stack, &args()).expect("the fused path applies without autodiff");
        let looped = loop_stack(stack, args());
        for (a, b) in [
            (fused.output, looped.output),
            (
                fused.hidden.unsqueeze_dim::<4>(0).squeeze_dim::<3>(0),
                looped.hidden,
            ),
        ] {
            let worst: f32 = (a - b).abs().max().into_scalar();
            assert!(worst < 1e-5, "{kind:?}: {worst}");
        }
    }
}

/// Batch rows split into uneven blocks (3 rows over 4 threads, 7 over 3): every block's
/// rows must land where the loop puts them, forward and backward.
#[test]
fn fused_blocks_of_rows_match_the_loop() {
    for (threads, batch, seed) in [(4, 3, 7), (3, 7, 8)] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            for device in host_devices() {
                let device = device.autodiff();
                device.seed(seed);
                let lstm = LstmConfig::new(5, 6).with_num_layers(2).init(&device);
                compare(CellKind::Lstm, &lstm.layers, &device, 6, batch);
                let gru = GruConfig::new(5, 6).with_num_layers(2).init(&device);
                compare(CellKind::Gru, &gru.layers, &device, 6, batch);
            }
        });
    }
}

#[test]
fn fused_matches_the_loop_forward_and_backward() {
    for device in host_devices() {
        forward_backward_case(&device.autodiff());
    }
}

fn forward_backward_case(device: &Device) {
    let device = device.clone();
    device.seed(5);
    let (i, h) = (5, 8);
    let lstm = LstmConfig::new(i, h).with_num_layers(2).init(&device);
    compare(CellKind::Lstm, &lstm.layers, &device, h, 3);
    let gru = GruConfig::new(i, h).with_num_layers(2).init(&device);
    compare(CellKind::Gru, &gru.layers, &device, h, 3);
    let gru = GruConfig::new(i, h)
        .with_num_layers(2)
        .with_bias(false)
        .init(&device);
    compare(CellKind::Gru, &gru.layers, &device, h, 3);
    let rnn = RnnConfig::new(i, h).with_num_layers(2).init(&device);
    compare(CellKind::ElmanTanh, &rnn.layers, &device, h, 3);
    let rnn = RnnConfig::new(i, h)
        .with_num_layers(2)
        .with_nonlinearity(Nonlinearity::Relu)
        .init(&device);
    compare(CellKind::ElmanRelu, &rnn.layers, &device, h, 3);
    // Bidirectional stacks: the reverse directions run the op on the flipped sequence.
    let lstm = LstmConfig::new(i, h)
        .with_num_layers(2)
        .with_bidirectional(true)
        .init(&device);
    compare(CellKind::Lstm, &lstm.layers, &device, h, 3);
    let gru = GruConfig::new(i, h)
        .with_num_layers(2)
        .with_bidirectional(true)
        .init(&device);
    compare(CellKind::Gru, &gru.layers, &device, h, 3);
    let rnn = RnnConfig::new(i, h)
        .with_num_layers(2)
        .with_bidirectional(true)
        .init(&device);
    compare(CellKind::ElmanTanh, &rnn.layers, &device, h, 3);
}
