//! Whole-sequence products on every rayon thread: the input gradient `dpre · W` ([`matmul`]) and
//! the weight gradients `dpreᵀ · X` ([`matmul_tn`]), reductions over the `B·T` rows.

use std::ops::Range;

use rayon::prelude::*;

use super::cpu::Ftz;
use super::pack::Packed;
use super::pack::{MR, NR};
use super::products::{gemm_rhs_in_place, gemm_strided};
use crate::pool;

/// `lhs [m, k] · rhs` on all rayon threads (blocks of rows), `[m, n]` row-major.
pub(crate) fn matmul(m: usize, lhs: &[f32], rhs: &Packed) -> Vec<f32> {
    let (k, n) = (rhs.k, rhs.n);
    let mut out = pool::fresh(m * n);
    if m == 0 || n == 0 {
        return out;
    }
    let rows = m.div_ceil(rayon::current_num_threads().clamp(1, m));
    out.par_chunks_mut(rows * n)
        .zip(lhs[..m * k].par_chunks(rows * k.max(1)))
        .for_each(|(dst, lhs)| {
            let _ftz = Ftz::on();
            gemm_strided(dst.len() / n, dst, n, lhs, (k, 1), rhs, false, true)
        });
    out
}

/// Rows of the reduction per packed block in [`matmul_tn`]: the block of `a` (transposed) and
/// of `b` stay in L2 while every output row passes over them.
const KC: usize = 256;

/// `aᵀ · b` for `a [r, m]`, `b [r, n]` (row-major) → `[m, n]`: weight gradients, a reduction over
/// the `r = B·T` rows. Each rayon thread reduces its share of the rows in blocks of [`KC`]
/// (`a`'s block read transposed in place, `b`'s packed) into its own `[m, n]`; the partial sums
/// are added at the end.
pub(crate) fn matmul_tn(r: usize, a: &[f32], m: usize, b: &[f32], n: usize) -> Vec<f32> {
    if n < NR && m > n {
        // A narrow `b` (e.g. the input features of a first layer, `n = 7`) would fill a quarter
        // of each 32-column panel: compute `(bᵀ · a)ᵀ` instead, whose panels are full.
        let t = matmul_tn(r, b, n, a, m);
        let mut c = vec![0.0f32; m * n];
        for (j, row) in t.chunks_exact(m).enumerate() {
            for (i, v) in row.iter().enumerate() {
                c[i * n + j] = *v;
            }
        }
        return c;
    }
    let threads = rayon::current_num_threads().clamp(1, r.div_ceil(KC).max(1));
    let share = r.div_ceil(threads).max(1);
    let starts: Vec<usize> = (0..r).step_by(share).collect();
    let mut parts = pool::zeros(starts.len().max(1) * m * n);
    let partial = |(start, c): (usize, &mut [f32])| {
        let _ftz = Ftz::on();
        reduce_rows((a, m), (b, n), start..(start + share).min(r), c);
    };
    if m * n > 0 {
        starts
            .into_par_iter()
            .zip(parts.par_chunks_mut(m * n))
            .for_each(partial);
    }
    let mut c = vec![0.0f32; m * n];
    if m * n > 0 {
        for p in parts.chunks_exact(m * n) {
            for (x, y) in c.iter_mut().zip(p) {
                *x += *y;
            }
        }
    }
    pool::give(parts);
    c
}

/// `c [m, n] += a[rows]ᵀ · b[rows]`: one thread's share of [`matmul_tn`]'s reduction, in blocks
/// of [`KC`] rows.
fn reduce_rows(
    (a, m): (&[f32], usize),
    (b, n): (&[f32], usize),
    rows: Range<usize>,
    c: &mut [f32],
) {
    // Where `a`'s rows are a multiple of 4 KiB apart (m = 1024: the LSTM's 4H at H = 256), the
    // values read in place for one 8-row block all fall in one L1 set; there `aᵀ`'s block,
    // `[m, kc]`, is packed per 8-row block as `[kc, 8]`. Elsewhere packing costs more than it
    // saves.
    let pack = m.is_multiple_of(1024);
    let mut ap = if pack {
        pool::take(m.div_ceil(MR) * MR * KC)
    } else {
        Vec::new()
    };
    let mut k0 = rows.start;
    while k0 < rows.end {
        let kc = KC.min(rows.end - k0);
        // `b`'s block, `[kc, n]`: read in place where the kernel can, else packed.
        let bb = &b[k0 * n..(k0 + kc) * n];
        let mut bp = None;
        let mut product = |rows: usize, c: &mut [f32], lhs: &[f32], strides| {
            if !gemm_rhs_in_place(rows, c, n, lhs, strides, (bb, kc, n), true, true) {
                let bp = bp.get_or_insert_with(|| Packed::new(bb, (kc, n), n, 1));
                gemm_strided(rows, c, n, lhs, strides, bp, true, true);
            }
        };
        if !pack {
            // `a`'s rows k0..k0+kc read transposed, `[m, kc]`, in place.
            let at = &a[k0 * m..(k0 + kc) * m];
            product(m, c, at, (1, m));
            k0 += kc;
            continue;
        }
        for l in 0..kc {
            let row = &a[(k0 + l) * m..][..m];
            for (blk, vals) in row.chunks(MR).enumerate() {
                ap[(blk * kc + l) * MR..][..vals.len()].copy_from_slice(vals);
            }
        }
        for (blk, c) in c.chunks_mut(MR * n).enumerate() {
            let rows = c.len() / n;
            let lhs = &ap[blk * kc * MR..][..(kc - 1) * MR + rows];
            product(rows, c, lhs, (1, MR));
        }
        k0 += kc;
    }
    pool::give(ap);
}
