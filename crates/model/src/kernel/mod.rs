//! The fused CPU op's matrix products: `dst [m, n] (+)= lhs [m, k] · rhs [k, n]`.
//!
//! - Per step ([`gemm`], [`gemm_pair`]): the same `rhs` (a recurrent weight) at every step, so it
//!   is packed once per sequence ([`Packed`]) into 32-column panels. Single-threaded: the fused
//!   op already runs one block of batch rows per thread.
//! - Per sequence ([`matmul`], [`matmul_tn`]): the input and weight gradients after BPTT, on
//!   every rayon thread.
//!
//! On CPUs with AVX-512 ([`cpu::avx512`]) a register-blocked kernel (8 rows × 32 columns of
//! accumulators, one broadcast and two FMAs per row and `k`) runs on the panels; elsewhere the
//! `gemm` crate (what flex uses, AVX2 at best on stable Rust) multiplies a plain row-major copy.
//!
//! | file | role |
//! |---|---|
//! | `cpu.rs` | feature detection, the flush-to-zero guard |
//! | `pack.rs` | [`Packed`]: the right-hand side as panels or a row-major copy |
//! | `products.rs` | single-threaded products on a block of rows |
//! | `parallel.rs` | whole-sequence products on every thread |
//! | `avx512.rs` | the microkernel |

#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod cpu;
mod pack;
mod parallel;
mod products;
#[cfg(test)]
mod tests;

pub(crate) use cpu::Ftz;
pub(crate) use pack::Packed;
pub(crate) use parallel::{matmul, matmul_tn};
pub(crate) use products::{gemm, gemm_pair};
