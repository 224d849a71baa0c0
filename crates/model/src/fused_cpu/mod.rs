//! The fused whole-sequence op on the CPU backends (flex, ndarray): one autodiff node per layer
//! and direction, BPTT written by hand.
//!
//! The step-by-step loop ([`crate::step_loop`]) records about fifteen autodiff nodes per step and
//! layer. Here one node takes the layer input `x [B·T, F]`, `weight_ih`, the folded bias,
//! `weight_hh` and the initial state, runs the recurrence on plain `f32` buffers — each step
//! `x_t W_ihᵀ + h_{t-1} W_hhᵀ` straight into the cell's gate rows, then one vectorised pass of gate
//! math per row — saves what BPTT needs, and runs BPTT as a plain loop; the weight and input
//! gradients are large products after it.
//!
//! Batch rows never interact inside a recurrence, so both loops split the batch into one block of
//! rows per thread and run every block from `t = 0` to `T - 1` (or back) without synchronising;
//! the per-step products are single-threaded ([`crate::kernel`], weights packed once per
//! sequence) and write in place into preallocated buffers ([`crate::pool`]). One generic driver
//! runs every cell; a cell ([`cell::RowCell`]) says only which buffers it keeps, what its step's
//! products are and what one row does forward and backward.
//!
//! | file | job |
//! |---|---|
//! | `host.rs` | a backend's tensors as plain slices ([`host::HostBackend`]: flex, ndarray) |
//! | `activation.rs` | sigmoid and tanh over a row, portable and AVX-512 |
//! | `cell.rs` | each cell's per-row math, forward and backward, behind [`cell::RowCell`] |
//! | `layout.rs` | sizes, blocks of rows, what the forward saves, where output gradients arrive |
//! | `multiversion.rs` | each driver compiled for AVX-512 too, chosen at run time, with FTZ |
//! | `forward.rs` | the forward driver: blocks of rows over time |
//! | `backward.rs` | the BPTT driver, then the weight and input gradients |
//! | `node.rs` | the autodiff nodes |
//! | `fanout.rs` | one GRU step from each state to many inputs (SegRNN's decoding), its own node |
//! | `slstm.rs` | one sLSTM step's element-wise update (the segment model's sLSTM cell), its own node |
//! | `tests.rs` | against the step-by-step loop and libm |
//!
//! Around the op, [`crate::fused_stack`] runs it for every layer and direction (reversal within
//! lengths, zero outputs past them, dropout between layers). The design and its measurements
//! are in `docs/design/fused-cpu.md`.

mod activation;
mod backward;
mod cell;
mod fanout;
mod forward;
mod host;
mod layout;
mod multiversion;
mod node;
mod slstm;
#[cfg(test)]
mod tests;

pub(crate) use fanout::{fanout_applies, try_gru_fanout};
pub(crate) use slstm::{slstm_applies, try_slstm_step};

use crate::fused_stack::fused_stack;
use crate::stack::{Stack, StackInput, StackOutput};

/// The whole stack through the fused op, or `None` where it does not apply: not on flex or
/// ndarray, or not `f32`.
pub(crate) fn try_fused_stack(stack: Stack, args: &StackInput) -> Option<StackOutput> {
    fused_stack(stack, args, &node::CpuOp)
}
