//! Which implementation runs a recurrent stack.
//!
//! On the CPU backends (flex, ndarray; autodiff or not) every stack runs through the fused
//! whole-sequence op (`crate::fused_cpu`: one autodiff node per layer and direction,
//! hand-written BPTT); on the GPU backend (wgpu) through its GPU twin (`crate::fused_gpu`:
//! CubeCL kernels); everywhere else, and with the fused op switched off
//! ([`crate::set_fused`]), through the step-by-step loop ([`crate::step_loop`]).

use crate::stack::{Stack, StackInput, StackOutput};

/// The forward pass of a stacked, optionally bidirectional recurrent layer on arguments already
/// validated (see [`crate::stack::validate`]).
pub(crate) fn forward_stack(stack: Stack, args: StackInput) -> StackOutput {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if crate::switches::fused_enabled() {
        if let Some(out) = crate::fused_cpu::try_fused_stack(stack, &args) {
            return out;
        }
    }
    #[cfg(feature = "wgpu")]
    if crate::switches::fused_enabled() {
        if let Some(out) = crate::fused_gpu::try_fused_stack(stack, &args) {
            return out;
        }
    }
    crate::step_loop::loop_stack(stack, args)
}
