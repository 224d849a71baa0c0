//! The right-hand side of the per-step products, packed once per sequence so no step re-packs it.

use super::cpu::avx512;
use crate::pool;

/// Columns per packed panel: two AVX-512 registers.
pub(super) const NR: usize = 32;
/// Rows per register block of the AVX-512 kernel.
pub(super) const MR: usize = 8;

/// A `[k, n]` right-hand side: `⌈n/32⌉` zero-padded panels of `[k, 32]` where the AVX-512 kernel
/// runs, a row-major copy for the `gemm` crate elsewhere. Its storage returns to the
/// [`crate::pool`].
#[derive(Debug)]
pub(crate) struct Packed {
    /// Rows: the inner dimension of the product.
    pub(super) k: usize,
    /// Columns.
    pub(super) n: usize,
    /// The row-major copy the `gemm` crate reads (empty where there are panels).
    pub(super) plain: Vec<f32>,
    /// The panels' storage and where in it they start: at a 64-byte boundary, so that no
    /// 16-lane load of a panel row straddles two cache lines (a buffer from the allocator is
    /// only 16-byte aligned).
    panels: Option<(Vec<f32>, usize)>,
}

impl Drop for Packed {
    fn drop(&mut self) {
        pool::give(std::mem::take(&mut self.plain));
        if let Some((p, _)) = self.panels.take() {
            pool::give(p);
        }
    }
}

impl Packed {
    /// The `[k, n]` matrix whose element `(i, j)` is `src[i * rs + j * cs]`.
    pub(crate) fn new(src: &[f32], (k, n): (usize, usize), rs: usize, cs: usize) -> Self {
        Self::with(src, (k, n), rs, cs, avx512())
    }

    /// The first panel (64-byte aligned) where the AVX-512 kernel runs.
    pub(super) fn panel_ptr(&self) -> Option<*const f32> {
        self.panels.as_ref().map(|(p, off)| p[*off..].as_ptr())
    }

    /// Rows of the matrix (the inner dimension of the product).
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// [`Packed::new`], with panels (`panels`, AVX-512 only) or a row-major copy.
    pub(super) fn with(
        src: &[f32],
        (k, n): (usize, usize),
        rs: usize,
        cs: usize,
        panels: bool,
    ) -> Self {
        let at = |i: usize, j: usize| src[i * rs + j * cs];
        if panels {
            let np = n.div_ceil(NR);
            // Zero-padded past `n`: the kernel multiplies whole panels.
            let mut buf = pool::zeros(np * k * NR + 16);
            let off = buf.as_ptr().align_offset(64).min(16);
            let p = &mut buf[off..];
            for panel in 0..np {
                let cols = NR.min(n - panel * NR);
                for i in 0..k {
                    let dst = &mut p[(panel * k + i) * NR..][..cols];
                    if cs == 1 {
                        dst.copy_from_slice(&src[i * rs + panel * NR..][..cols]);
                    } else {
                        for (c, v) in dst.iter_mut().enumerate() {
                            *v = at(i, panel * NR + c);
                        }
                    }
                }
            }
            return Self {
                k,
                n,
                plain: Vec::new(),
                panels: Some((buf, off)),
            };
        }
        let mut plain = pool::take(k * n);
        for (i, row) in plain.chunks_exact_mut(n.max(1)).enumerate().take(k) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = at(i, j);
            }
        }
        Self {
            k,
            n,
            plain,
            panels: None,
        }
    }
}
