//! The AVX2 + FMA microkernel, for CPUs without AVX-512: `R ≤ 6` rows × one 16-column half of
//! a 32-column panel of `dst`, accumulated in 12 registers over the whole inner dimension — per
//! step of `k`, two loads of the half panel, then per row one broadcast and two FMAs. It reads
//! the same panels as the AVX-512 kernel (`avx512.rs`); AVX2 has 16 vector registers, so a
//! whole panel row (four of them) would leave too few for the accumulators of more than two
//! rows.

use super::avx512::Second;
use super::pack::NR;
use std::arch::x86_64::*;

/// Rows per register block.
const MR: usize = 6;
/// Columns per register block: half a panel.
const HALF: usize = NR / 2;

/// `dst (+)= lhs · panels`, plus `lhs₂ · panels₂` in the same registers when `second` is given:
/// the AVX-512 kernel's contract ([`super::avx512::gemm_with`]), 6 rows × 16 columns at a time.
///
/// # Safety
/// - The CPU has AVX2 and FMA (see [`super::cpu::avx2`]).
/// - Every other condition of [`super::avx512::gemm_with`].
#[target_feature(enable = "avx2,fma")]
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
    // The lanes of 8 columns from `first` that lie inside `n`'s `cols` (as `maskload` wants:
    // all ones where kept).
    let mask = |cols: usize, first: usize| -> __m256i {
        let live = cols.saturating_sub(first).min(8) as i32;
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(live),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    };
    let one = |p: usize, h: usize, r: usize| {
        let cols = (n - p * NR).min(NR);
        if cols <= h * HALF {
            return;
        }
        let masks = (mask(cols, h * HALF), mask(cols, h * HALF + 8));
        // Offsets of panel `p`'s half `h` and row block `r`: inside every operand by the
        // caller's contract (a packed panel's columns past `n` are zero padding; a row-major
        // right-hand side is whole panels wide).
        let b = if PACKED {
            panels.wrapping_add(p * k * NR + h * HALF)
        } else {
            panels.wrapping_add(p * NR + h * HALF)
        };
        let a = lhs.wrapping_add(r * lhs_rs);
        let c = dst.wrapping_add(r * dst_rs + p * NR + h * HALF);
        let two = second.map(|(k2, a2, (rs2, cs2), p2)| {
            (
                k2,
                p2.wrapping_add(p * k2 * NR + h * HALF),
                a2.wrapping_add(r * rs2),
                (rs2, cs2),
            )
        });
        let args = (k, b, a, (lhs_rs, lhs_cs), c, dst_rs, masks, acc, two);
        let b_rs = if PACKED { NR } else { rhs_rs };
        // SAFETY: the block's rows `r..r + R` (`R ≤ m - r`) and the half panel's columns,
        // masked to `n`, lie inside the operands the caller vouched for; AVX2 and FMA are
        // present.
        unsafe {
            match (m - r).min(MR) {
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
                one(p, 0, r);
                one(p, 1, r);
            }
        }
    } else {
        for p in 0..panels_n {
            for h in 0..2 {
                for r in (0..m).step_by(MR) {
                    one(p, h, r);
                }
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
    (__m256i, __m256i),
    bool,
    Option<(usize, *const f32, *const f32, (usize, usize))>,
);

/// `R` rows × 16 columns, accumulated in registers over all of `k` (and of `k₂`); the panel's
/// rows are `b_rs` apart (the second operand's: packed, 32).
///
/// # Safety
/// AVX2 and FMA are present; `c` is writable for `R` rows of `c_rs` (the columns the masks
/// select); `a` readable at `i·a_rs + l·a_cs` for `i < R`, `l < k`; `b` readable for `k` rows of
/// 16 values `b_rs` apart; the same for the second operand.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn block<const R: usize>(
    (k, b, a, (a_rs, a_cs), c, c_rs, (m0, m1), acc, two): Args,
    b_rs: usize,
) {
    let mut c0 = [_mm256_setzero_ps(); R];
    let mut c1 = [_mm256_setzero_ps(); R];
    if acc {
        for i in 0..R {
            // SAFETY: row `i < R` of `c`, masked to its columns.
            unsafe {
                c0[i] = _mm256_maskload_ps(c.add(i * c_rs), m0);
                c1[i] = _mm256_maskload_ps(c.add(i * c_rs + 8), m1);
            }
        }
    }
    let mut run = |k: usize, (b, b_rs): (*const f32, usize), a: *const f32, (a_rs, a_cs)| {
        // The rows' offsets stay in registers (opaque to LLVM, as in the AVX-512 kernel), so
        // each broadcast is a single load with no address arithmetic.
        let offs: [usize; R] = std::array::from_fn(|i| {
            let mut o = i * a_rs;
            // SAFETY: an empty template: the value passes through a register unchanged.
            unsafe { std::arch::asm!("/* {0} */", inout(reg) o, options(pure, nomem, nostack)) };
            o
        });
        let (mut ap, mut bp) = (a, b);
        for _ in 0..k {
            // SAFETY: `bp` is row `l < k` of the half panel (16 values), `ap + offs[i]`
            // element `(i, l)` of `a`: inside the operands by the function's contract.
            let (b0, b1) = unsafe { (_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8))) };
            for i in 0..R {
                // SAFETY: as above.
                let av = _mm256_set1_ps(unsafe { *ap.add(offs[i]) });
                c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
                c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
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
            _mm256_maskstore_ps(c.add(i * c_rs), m0, c0[i]);
            _mm256_maskstore_ps(c.add(i * c_rs + 8), m1, c1[i]);
        }
    }
}
