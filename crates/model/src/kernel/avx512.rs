//! The AVX-512 microkernel: `R ≤ 8` rows × one 32-column panel of `dst`, accumulated in 16
//! registers over the whole inner dimension — per step of `k`, two panel loads, then per row one
//! broadcast and two FMAs.

use super::pack::{MR, NR};
use std::arch::x86_64::*;

/// A second product into the same `dst`: `(k₂, lhs₂, its strides, its panels)`.
pub(super) type Second = (usize, *const f32, (usize, usize), *const f32);

/// `dst (+)= lhs · panels`, plus `lhs₂ · panels₂` in the same registers when `second` is given;
/// 8 rows × 32 columns at a time. `(acc, tall)`: add to `dst`; the order of the loops.
///
/// Not tall (the per-step products: a block of batch rows), panel by panel: each panel stays in
/// L1 while every row block passes over it, and `lhs` is re-read from L2 once per panel. Tall
/// (the whole-sequence products of BPTT, megabytes of `lhs`), row block by row block: the
/// block's rows stay in L1 while every panel passes over them, so `lhs` streams in once instead
/// of once per panel, and the panels (a weight) come from L2.
///
/// `PACKED`: `panels` holds `⌈n/32⌉` panels of `[k, 32]`; otherwise it is a row-major `[k, n]`
/// matrix with row stride `rhs_rs` (`n` a multiple of 32), read in place.
///
/// # Safety
/// - The CPU has AVX-512F (see [`super::cpu::avx512`]).
/// - `dst` is valid for reads and writes of `[m, n]` with row stride `dst_rs` (`dst_rs ≥ n`),
///   and aliases none of the inputs.
/// - `lhs [m, k]`'s element `(i, l)` at `lhs + i·lhs_rs + l·lhs_cs` is readable for every `i <
///   m`, `l < k`; the same for the second operand with its own `k₂` and strides.
/// - `panels` (and the second operand's) holds `⌈n/32⌉·k·32` values when `PACKED`; otherwise
///   `k` rows of `n` values `rhs_rs` apart, with `n` a multiple of 32.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_with<const PACKED: bool>(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    lhs: *const f32,
    (lhs_rs, lhs_cs): (usize, usize),
    (panels, rhs_rs): (*const f32, usize),
    (acc, tall): (bool, bool),
    second: Option<Second>,
) {
    let mask = |c: usize| -> __mmask16 {
        if c >= 16 {
            0xffff
        } else {
            ((1u32 << c) - 1) as __mmask16
        }
    };
    let one = |p: usize, r: usize| {
        let cols = (n - p * NR).min(NR);
        let masks = (mask(cols), mask(cols.saturating_sub(16)));
        // Offsets of panel `p` and row block `r`: inside every operand by the caller's contract.
        let b = if PACKED {
            panels.wrapping_add(p * k * NR)
        } else {
            panels.wrapping_add(p * NR)
        };
        let a = lhs.wrapping_add(r * lhs_rs);
        let c = dst.wrapping_add(r * dst_rs + p * NR);
        let two = second.map(|(k2, a2, (rs2, cs2), p2)| {
            (
                k2,
                p2.wrapping_add(p * k2 * NR),
                a2.wrapping_add(r * rs2),
                (rs2, cs2),
            )
        });
        let args = (k, b, a, (lhs_rs, lhs_cs), c, dst_rs, masks, acc, two);
        let b_rs = if PACKED { NR } else { rhs_rs };
        // SAFETY: the block's rows `r..r + R` (`R ≤ m - r`) and panel `p`'s columns, masked to
        // `n`, lie inside the operands the caller vouched for; AVX-512F is present.
        unsafe {
            match (m - r).min(MR) {
                8 => block::<8>(args, b_rs),
                7 => block::<7>(args, b_rs),
                6 => block::<6>(args, b_rs),
                5 => block::<5>(args, b_rs),
                4 => block::<4>(args, b_rs),
                3 => block::<3>(args, b_rs),
                2 => block::<2>(args, b_rs),
                _ => block::<1>(args, b_rs),
            }
        }
    };
    let panels_n = n.div_ceil(NR);
    if tall {
        for r in (0..m).step_by(MR) {
            for p in 0..panels_n {
                one(p, r);
            }
        }
    } else {
        for p in 0..panels_n {
            for r in (0..m).step_by(MR) {
                one(p, r);
            }
        }
    }
}

type Args = (
    usize,
    *const f32,
    *const f32,
    (usize, usize),
    *mut f32,
    usize,
    (__mmask16, __mmask16),
    bool,
    Option<(usize, *const f32, *const f32, (usize, usize))>,
);

/// `R` rows × one 32-column panel, accumulated in registers over all of `k` (and of `k₂`);
/// the panel's rows are `b_rs` apart (the second operand's: packed, 32).
///
/// # Safety
/// AVX-512F is present; `c` is writable for `R` rows of `c_rs` (the columns the masks select);
/// `a` readable at `i·a_rs + l·a_cs` for `i < R`, `l < k`; `b` readable for `k` rows of 32
/// values `b_rs` apart (the masked columns); the same for the second operand.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<const R: usize>(
    (k, b, a, (a_rs, a_cs), c, c_rs, (m0, m1), acc, two): Args,
    b_rs: usize,
) {
    let mut c0 = [_mm512_setzero_ps(); R];
    let mut c1 = [_mm512_setzero_ps(); R];
    if acc {
        for i in 0..R {
            // SAFETY: row `i < R` of `c`, masked to its columns.
            unsafe {
                c0[i] = _mm512_maskz_loadu_ps(m0, c.add(i * c_rs));
                c1[i] = _mm512_maskz_loadu_ps(m1, c.add(i * c_rs + 16));
            }
        }
    }
    let mut run = |k: usize, (b, b_rs): (*const f32, usize), a: *const f32, (a_rs, a_cs)| {
        // One pointer into `a` and one into `b` move on per step of `k` (wrapping: after the
        // last step they may point past the end, which `add` does not allow); the rows' offsets
        // stay in registers, so each broadcast is a single load with no address arithmetic.
        // (Opaque to LLVM: knowing them to be multiples of `a_rs`, it would chain the
        // addresses, one `add` after another, in the loop.)
        let offs: [usize; R] = std::array::from_fn(|i| {
            let mut o = i * a_rs;
            // SAFETY: an empty template: the value passes through a register unchanged.
            unsafe { std::arch::asm!("/* {0} */", inout(reg) o, options(pure, nomem, nostack)) };
            o
        });
        let (mut ap, mut bp) = (a, b);
        for _ in 0..k {
            // SAFETY: `bp` is row `l < k` of the panel (32 values), `ap + offs[i]` element
            // `(i, l)` of `a`: inside the operands by the function's contract. The panel's
            // columns past `n` are zero padding (packed) or other columns of a row-major matrix
            // whose width is whole panels, so both loads stay in bounds.
            let (b0, b1) = unsafe { (_mm512_loadu_ps(bp), _mm512_loadu_ps(bp.add(16))) };
            for i in 0..R {
                // SAFETY: as above.
                let av = _mm512_set1_ps(unsafe { *ap.add(offs[i]) });
                c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
                c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
            }
            ap = ap.wrapping_add(a_cs);
            bp = bp.wrapping_add(b_rs);
        }
    };
    run(k, (b, b_rs), a, (a_rs, a_cs));
    if let Some((k2, b2, a2, strides2)) = two {
        run(k2, (b2, NR), a2, strides2);
    }
    for i in 0..R {
        // SAFETY: row `i < R` of `c`, masked to its columns.
        unsafe {
            _mm512_mask_storeu_ps(c.add(i * c_rs), m0, c0[i]);
            _mm512_mask_storeu_ps(c.add(i * c_rs + 16), m1, c1[i]);
        }
    }
}
