//! The fused whole-sequence op on the GPU backend (wgpu, through Burn's cubecl backend): one
//! autodiff node per layer and direction, forward and BPTT each one kernel launch.
//!
//! The step-by-step loop ([`crate::step_loop`]) launches a dozen or more kernels per step and
//! layer forward and as many backward, each waiting on the last: on a GPU that loop is bound by
//! launch latency. Here the input projection of every step is one matmul up front; then one
//! sequence-persistent kernel runs all `T` steps of the recurrence ([`kernels::seq_forward`]):
//! each cube owns a block of batch rows, keeps their state in shared memory and reads the
//! recurrent weights from cache each step; BPTT is its mirror image ([`kernels::seq_backward`]),
//! and the weight and input gradients are large matmuls after it (the input's through Burn's
//! own matmul backward). The cost model behind this choice is in `docs/performance.md` (GPU).
//!
//! | file | job |
//! |---|---|
//! | `kernels.rs` | the two CubeCL kernels, every cell |
//! | `node.rs` | the autodiff node (the only file importing Burn's autodiff internals) |
//!
//! Around the op, [`crate::fused_stack`] runs it for every layer and direction (reversal within
//! lengths, zero outputs past them, dropout between layers), exactly as on the CPU.

mod kernels;
mod node;

use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::Autodiff;
use burn::backend::wgpu::CubeTensor;
use burn::backend::Cube;
use burn::tensor::{DType, Tensor};

use crate::fused_stack::{fused_stack, DirectionInput, DirectionOp, DirectionOutput};
use crate::stack::{CellKind, Stack, StackInput, StackOutput};
use kernels::{gate_count, GRU, LSTM, RELU, TANH};
use node::Plan;

/// Most threads per cube: one per hidden unit up to this, then each thread takes several units.
const MAX_THREADS: usize = 256;

/// The whole stack through the fused GPU op, or `None` where it does not apply: not on the
/// cubecl backend, not `f32`, a hidden size whose block state does not fit in shared memory, or
/// a buffer larger than the device allows in one allocation.
pub(crate) fn try_fused_stack(stack: Stack, args: &StackInput) -> Option<StackOutput> {
    let input = &args.input;
    if input.dtype() != DType::F32 {
        return None;
    }
    let device = limits(&on_cube(input)?);
    let [batch, time, features] = input.dims();
    let gh = stack.kind.gates() * stack.hidden_size;
    // The largest buffers: the input projection and the gate gradients `[B·T, G·H]`, the input
    // (or a bidirectional layer's output) `[B·T, F]`.
    let widest = gh.max(features).max(2 * stack.hidden_size);
    if (batch * time * widest * 4) as u64 > device.largest {
        return None;
    }
    let cubes = if device.software {
        SOFTWARE_CUBES
    } else {
        CARD_CUBES
    };
    let kind = cell_of(stack.kind);
    let rows = rows_per_cube(kind, stack.hidden_size, batch, device.shared, cubes)?;
    fused_stack(stack, args, &GpuOp { rows })
}

/// `t`'s buffer if it is a plain or autodiff tensor of the cubecl backend (a handle, no copy).
fn on_cube(t: &Tensor<3>) -> Option<CubeTensor> {
    match t.clone().try_into_primitive::<Cube>() {
        Ok(p) => Some(p),
        Err(_) => t
            .clone()
            .try_into_primitive::<Autodiff<Cube, NoCheckpointing>>()
            .ok()
            .map(|p| p.into_primitive()),
    }
}

/// What the op needs to know of a device.
struct Limits {
    /// Shared memory per cube, in bytes.
    shared: usize,
    /// The largest single buffer, in bytes.
    largest: u64,
    /// No card behind it: a CPU or software rasterizer (Mesa's lavapipe), where cubes run on a
    /// few CPU threads and each barrier costs a context switch.
    software: bool,
}

fn limits(cube: &CubeTensor) -> Limits {
    let properties = cube.client.properties();
    Limits {
        shared: properties.hardware.max_shared_memory_size,
        largest: properties.memory.max_page_size,
        software: properties.identity.physical.is_none(),
    }
}

fn cell_of(kind: CellKind) -> u32 {
    match kind {
        CellKind::Lstm => LSTM,
        CellKind::Gru => GRU,
        CellKind::ElmanTanh => TANH,
        CellKind::ElmanRelu => RELU,
    }
}

/// Cubes a card should get at least (where the batch has the rows): more cubes of fewer rows
/// read the recurrent weights more often but hide more latency; on an H100 one row per cube
/// was the fastest at B = 256 (docs/performance.md, GPU).
const CARD_CUBES: usize = 256;
/// Cubes a software device should get at least: lavapipe runs cubes on CPU threads, where fewer
/// cubes of more rows pay fewer barriers per row.
const SOFTWARE_CUBES: usize = 8;

/// Batch rows per cube: as many as keep at least `min(B, cubes)` cubes busy (up to 8), fewer
/// where the block's shared state would not fit; `None` where not even one row fits.
/// `GATECAST_GPU_ROWS` (1, 2, 4 or 8) overrides the choice, for benchmarks.
fn rows_per_cube(
    cell: u32,
    hid: usize,
    batch: usize,
    shared: usize,
    cubes: usize,
) -> Option<usize> {
    // The larger of the two kernels' shared buffers: forward 3·rows·H, BPTT (G + 2)·rows·H.
    let need = |rows: usize| rows * hid * (gate_count(cell) + 2).max(3) * 4;
    static WANTED: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    let wanted = *WANTED.get_or_init(|| {
        std::env::var("GATECAST_GPU_ROWS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|r| [1, 2, 4, 8].contains(r))
    });
    let busy = |rows: usize| batch.div_ceil(rows) >= batch.min(cubes);
    let rows = wanted.unwrap_or_else(|| [8, 4, 2, 1].into_iter().find(|&r| busy(r)).unwrap_or(1));
    [8, 4, 2, 1]
        .into_iter()
        .filter(|&r| r <= rows)
        .find(|&r| need(r) <= shared)
}

/// The fused op on the cubecl backend, `rows` batch rows per cube.
struct GpuOp {
    rows: usize,
}

impl DirectionOp for GpuOp {
    fn applies(&self, input: &Tensor<3>) -> bool {
        input.dtype() == DType::F32 && on_cube(input).is_some()
    }

    fn run(&self, input: DirectionInput) -> DirectionOutput {
        let DirectionInput {
            kind,
            weights: w,
            x,
            bias,
            b_rec,
            h0,
            c0,
            lens,
        } = input;
        let [batch, time, features] = x.dims();
        let hid = w.weight_hh.dims()[1];
        let x2 = x.reshape([batch * time, features]);
        let threads = hid.min(MAX_THREADS).next_multiple_of(32) as u32;
        let plan = Plan {
            cell: cell_of(kind),
            batch,
            time,
            hid,
            rows: self.rows,
            threads,
        };
        let (w_ih, w_hh) = (w.weight_ih.val(), w.weight_hh.val());
        let main = node::run(plan, [&x2, &w_ih, &bias, &w_hh, &b_rec, &h0, &c0], lens);
        let hs = main.clone().narrow(1, 0, time);
        let h_last = main.clone().narrow(1, time - 1, 1).reshape([batch, hid]);
        let c_last = kind
            .has_cell()
            .then(|| main.narrow(1, time, 1).reshape([batch, hid]));
        DirectionOutput { hs, h_last, c_last }
    }
}

#[cfg(test)]
mod tests;
