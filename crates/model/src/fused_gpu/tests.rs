//! The fused GPU op against the step-by-step loop on the wgpu device (Mesa's software Vulkan
//! where there is no GPU): forward and backward, every cell, lengths, bidirectional, and the
//! sizes that stress the kernels' indexing — a hidden size that is no multiple of the cube's
//! threads and one above them (threads owning two units), one row, one step, and blocks of rows
//! that do not divide the batch.

use burn::tensor::{Device, DeviceKind, Distribution, Tensor};

use super::{rows_per_cube, GpuOp, CARD_CUBES, GRU, LSTM, SOFTWARE_CUBES};
use crate::fused_stack::fused_stack;
use crate::fused_testing::{compare_fused, Case};
use crate::stack::{CellKind, Stack, StackInput};
use crate::step_loop::loop_stack;
use crate::{GruConfig, LstmConfig, Nonlinearity, RecurrentLayer, RnnConfig};

fn wgpu() -> Device {
    Device::wgpu(DeviceKind::DefaultDevice)
}

fn compare(kind: CellKind, layers: &[RecurrentLayer], device: &Device, case: Case, rows: usize) {
    compare_fused(kind, layers, device, case, &|stack, args| {
        fused_stack(stack, args, &GpuOp { rows }).expect("the GPU op applies on wgpu")
    });
}

fn case(h: usize, b: usize, t: usize) -> Case<'static> {
    Case {
        h,
        b,
        t,
        lengths: None,
    }
}

#[test]
fn gpu_op_matches_the_loop_forward_and_backward() {
    let device = wgpu().autodiff();
    device.seed(5);
    let (i, h) = (5, 8);
    let c = case(h, 3, 9);
    let lstm = LstmConfig::new(i, h).with_num_layers(2).init(&device);
    compare(CellKind::Lstm, &lstm.layers, &device, c, 2);
    let gru = GruConfig::new(i, h).with_num_layers(2).init(&device);
    compare(CellKind::Gru, &gru.layers, &device, c, 2);
    let gru = GruConfig::new(i, h).with_bias(false).init(&device);
    compare(CellKind::Gru, &gru.layers, &device, c, 2);
    let rnn = RnnConfig::new(i, h).with_num_layers(2).init(&device);
    compare(CellKind::ElmanTanh, &rnn.layers, &device, c, 2);
    let rnn = RnnConfig::new(i, h)
        .with_nonlinearity(Nonlinearity::Relu)
        .init(&device);
    compare(CellKind::ElmanRelu, &rnn.layers, &device, c, 2);
}

/// Bidirectional stacks with rows of every length (the reverse direction runs the op on each
/// row reversed within its length; past it the state is frozen and the output zero).
#[test]
fn gpu_op_matches_the_loop_with_lengths_both_directions() {
    let device = wgpu().autodiff();
    device.seed(9);
    let (i, h) = (5, 6);
    let lengths: &[usize] = &[11, 4, 7, 1, 11];
    let c = Case {
        lengths: Some(lengths),
        ..case(h, 5, 11)
    };
    let lstm = LstmConfig::new(i, h)
        .with_num_layers(2)
        .with_bidirectional(true)
        .init(&device);
    compare(CellKind::Lstm, &lstm.layers, &device, c, 2);
    let gru = GruConfig::new(i, h).with_bidirectional(true).init(&device);
    compare(CellKind::Gru, &gru.layers, &device, c, 2);
    let rnn = RnnConfig::new(i, h).with_bidirectional(true).init(&device);
    compare(CellKind::ElmanTanh, &rnn.layers, &device, c, 2);
}

/// Sizes at the kernels' edges: H = 37 (no multiple of 32 threads), H = 300 (threads own two
/// units), B = 1, T = 1, 7 rows in blocks of 3, and B·T = 560 rows, whose weight gradients are
/// summed over two slices of 280.
#[test]
fn gpu_op_matches_the_loop_at_odd_sizes() {
    let device = wgpu().autodiff();
    device.seed(3);
    let lstm = LstmConfig::new(3, 37).init(&device);
    compare(CellKind::Lstm, &lstm.layers, &device, case(37, 2, 5), 1);
    let gru = GruConfig::new(3, 300).init(&device);
    compare(CellKind::Gru, &gru.layers, &device, case(300, 2, 3), 2);
    let lstm = LstmConfig::new(4, 6).with_num_layers(2).init(&device);
    compare(CellKind::Lstm, &lstm.layers, &device, case(6, 1, 6), 1);
    compare(CellKind::Lstm, &lstm.layers, &device, case(6, 4, 1), 4);
    compare(CellKind::Lstm, &lstm.layers, &device, case(6, 7, 5), 3);
    let gru = GruConfig::new(4, 6).init(&device);
    compare(CellKind::Gru, &gru.layers, &device, case(6, 7, 5), 3);
    compare(CellKind::Gru, &gru.layers, &device, case(6, 8, 70), 4);
}

/// Inference (no autodiff): the fused forward against the loop.
#[test]
fn gpu_op_inference_matches_the_loop() {
    let device = wgpu();
    device.seed(6);
    let (b, t, i, h) = (4, 13, 3, 6);
    let x = Tensor::<3>::random([b, t, i], Distribution::Normal(0.0, 1.0), &device);
    let dropout = burn::nn::DropoutConfig::new(0.0).init();
    let lstm = LstmConfig::new(i, h).with_num_layers(2).init(&device);
    let gru = GruConfig::new(i, h).with_bidirectional(true).init(&device);
    for (kind, layers) in [(CellKind::Lstm, &lstm.layers), (CellKind::Gru, &gru.layers)] {
        let stack = Stack::new(kind, layers, &dropout, h);
        let args = || StackInput {
            input: x.clone(),
            hidden0: None,
            cell0: None,
            lengths: None,
        };
        let fused = fused_stack(stack, &args(), &GpuOp { rows: 2 }).expect("applies");
        let looped = loop_stack(stack, args());
        let worst: f32 = (fused.output - looped.output).abs().max().into_scalar();
        assert!(worst < 1e-5, "{kind:?}: {worst}");
        let worst: f32 = (fused.hidden - looped.hidden).abs().max().into_scalar();
        assert!(worst < 1e-5, "{kind:?}: {worst}");
    }
}

/// The layers run the GPU op on wgpu, and the step loop with the fused op switched off.
#[test]
fn the_switch_selects_the_gpu_op_or_the_loop() {
    let device = wgpu().autodiff();
    let lstm = LstmConfig::new(3, 5).init(&device);
    let x = Tensor::<3>::random([2, 4, 3], Distribution::Normal(0.0, 1.0), &device);
    let before = super::node::launches();
    let _ = lstm.forward(x.clone(), None);
    assert_eq!(super::node::launches(), before + 1, "the GPU op ran");
    crate::set_fused(false);
    let _ = lstm.forward(x, None);
    crate::set_fused(true);
    assert_eq!(super::node::launches(), before + 1, "the loop ran");
}

/// Rows per cube: enough cubes to fill a GPU, none that overflow shared memory.
#[test]
fn rows_per_cube_fit_shared_memory() {
    assert_eq!(
        rows_per_cube(LSTM, 256, 256, 48 * 1024, CARD_CUBES),
        Some(1)
    );
    assert_eq!(
        rows_per_cube(LSTM, 256, 4096, 48 * 1024, CARD_CUBES),
        Some(8)
    );
    assert_eq!(
        rows_per_cube(LSTM, 256, 1024, 48 * 1024, CARD_CUBES),
        Some(4)
    );
    assert_eq!(
        rows_per_cube(LSTM, 512, 2048, 48 * 1024, CARD_CUBES),
        Some(4)
    );
    assert_eq!(
        rows_per_cube(LSTM, 512, 2048, 48 * 1024 - 4, CARD_CUBES),
        Some(2)
    );
    assert_eq!(rows_per_cube(GRU, 64, 5, 32 * 1024, CARD_CUBES), Some(1));
    assert_eq!(
        rows_per_cube(GRU, 64, 64, 32 * 1024, SOFTWARE_CUBES),
        Some(8)
    );
    assert_eq!(rows_per_cube(LSTM, 4096, 256, 48 * 1024, CARD_CUBES), None);
}
