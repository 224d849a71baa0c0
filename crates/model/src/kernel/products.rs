//! Single-threaded products on a block of rows: `dst (+)= lhs · rhs` for the per-step
//! recurrent products and the building blocks of the parallel ones. The AVX-512 kernel runs where
//! the right-hand side was packed into panels; the `gemm` crate runs everywhere else.

use super::pack::Packed;
#[cfg(target_arch = "x86_64")]
use super::pack::NR;
#[cfg(target_arch = "x86_64")]
use super::{avx512, cpu};

/// `dst [m, n] = (dst if acc else 0) + lhs [m, k] · rhs`: row-major with unit column strides and
/// the given row strides, so a matrix can be every `T`-th row of a batch-major buffer.
pub(crate) fn gemm(
    m: usize,
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    lhs_rs: usize,
    rhs: &Packed,
    acc: bool,
) {
    assert!(lhs_rs >= rhs.k(), "gemm: lhs rows overlap");
    gemm_strided(m, dst, dst_rs, lhs, (lhs_rs, 1), rhs, acc, false);
}

/// `dst [m, n] = x [m, k₁] · rhs₁ + h [m, k₂] · rhs₂`, each operand `(lhs, row stride, rhs)`
/// as in [`gemm`]: a recurrent step's `x_t W_ihᵀ + h_{t−1} W_hhᵀ`. With AVX-512 both sums run
/// into the same registers, so `dst` is written once (not written, read back and written again),
/// and a first layer's `k₁ = F` (a handful of input features) costs its FMAs only, not a pass
/// over `dst` of its own.
pub(crate) fn gemm_pair(
    m: usize,
    dst: &mut [f32],
    dst_rs: usize,
    (x, x_rs, w_x): (&[f32], usize, &Packed),
    (h, h_rs, w_h): (&[f32], usize, &Packed),
) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(px), Some(ph)) = (w_x.panel_ptr(), w_h.panel_ptr()) {
        let n = w_x.n;
        assert_eq!(w_h.n, n, "gemm_pair: widths");
        if m == 0 || n == 0 {
            return;
        }
        for (lhs, rs, k) in [(x, x_rs, w_x.k), (h, h_rs, w_h.k)] {
            assert!(rs >= k, "gemm_pair: lhs rows overlap");
            check_bounds((m, n, k), dst, dst_rs, lhs, (rs, 1));
        }
        // SAFETY: as in `gemm_strided`, for both operands.
        unsafe {
            avx512::gemm_with::<true>(
                (m, n, w_x.k),
                dst.as_mut_ptr(),
                dst_rs,
                x.as_ptr(),
                (x_rs, 1),
                (px, NR),
                (false, false),
                Some((w_h.k, h.as_ptr(), (h_rs, 1), ph)),
            )
        };
        return;
    }
    gemm(m, dst, dst_rs, x, x_rs, w_x, false);
    gemm(m, dst, dst_rs, h, h_rs, w_h, true);
}

/// [`gemm`] with `lhs [m, k]`'s element `(i, l)` at `lhs[i * rs + l * cs]`, e.g. a transposed
/// matrix (`rs = 1`). `tall`: `lhs` is large (megabytes, a whole-sequence product), so the
/// AVX-512 kernel runs its row blocks outside the panels (see `avx512::gemm_with`).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_strided(
    m: usize,
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &Packed,
    acc: bool,
    tall: bool,
) {
    let (k, n) = (rhs.k, rhs.n);
    if m == 0 || n == 0 {
        return;
    }
    check_bounds((m, n, k), dst, dst_rs, lhs, (lhs_rs, lhs_cs));
    #[cfg(target_arch = "x86_64")]
    if let Some(panels) = rhs.panel_ptr() {
        // SAFETY: `panels` is only built where AVX-512F was detected; the asserts above keep
        // every access inside `dst` and `lhs`, and the panels hold `⌈n/32⌉·k·32` values.
        unsafe {
            avx512::gemm_with::<true>(
                (m, n, k),
                dst.as_mut_ptr(),
                dst_rs,
                lhs.as_ptr(),
                (lhs_rs, lhs_cs),
                (panels, NR),
                (acc, tall),
                None,
            )
        };
        return;
    }
    // SAFETY: as above; `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            acc,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.plain.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            ::gemm::Parallelism::None,
        );
    }
}

/// [`gemm_strided`] with `rhs [k, n]` read as it lies, row-major (no packing): where the
/// AVX-512 kernel runs and `n` is a multiple of its 32-column panels, whose rows are then rows
/// of `rhs` `n` apart. Returns `false` (nothing done) elsewhere, for the caller to pack.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_rhs_in_place(
    m: usize,
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    (rhs, k, n): (&[f32], usize, usize),
    acc: bool,
    tall: bool,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if cpu::avx512() && n.is_multiple_of(NR) {
        if m == 0 || n == 0 {
            return true;
        }
        check_bounds((m, n, k), dst, dst_rs, lhs, (lhs_rs, lhs_cs));
        assert!(rhs.len() >= k * n, "gemm: rhs");
        // SAFETY: AVX-512F was detected; the asserts keep every access inside `dst`, `lhs` and
        // `rhs` (whole 32-column panels, as `n` is a multiple of 32).
        unsafe {
            avx512::gemm_with::<false>(
                (m, n, k),
                dst.as_mut_ptr(),
                dst_rs,
                lhs.as_ptr(),
                (lhs_rs, lhs_cs),
                (rhs.as_ptr(), n),
                (acc, tall),
                None,
            )
        };
        return true;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (m, dst, dst_rs, lhs, lhs_rs, lhs_cs, rhs, k, n, acc, tall);
    false
}

/// The bounds the raw-pointer products rely on: `dst [m, n]` with row stride `dst_rs`, and
/// `lhs [m, k]`'s element `(i, l)` at `lhs[i * rs + l * cs]` (`m, n ≥ 1`).
fn check_bounds(
    (m, n, k): (usize, usize, usize),
    dst: &[f32],
    dst_rs: usize,
    lhs: &[f32],
    (rs, cs): (usize, usize),
) {
    assert!(
        dst_rs >= n && dst.len() >= (m - 1) * dst_rs + n,
        "gemm: dst"
    );
    if k > 0 {
        assert!(lhs.len() > (m - 1) * rs + (k - 1) * cs, "gemm: lhs");
    }
}
