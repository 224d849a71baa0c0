//! The gate activations, element by element over a row: portable Rust, and 16 lanes at a time
//! with AVX-512 where the CPU has it ([`crate::kernel::cpu::avx512`]).

/// tanh as a clamped 13/6 rational polynomial (Eigen's `generic_fast_tanh_float`): within a few
/// ulp of `f32::tanh`, branch-free, so the gate loops vectorise.
#[inline(always)]
pub(super) fn fast_tanh(x: f32) -> f32 {
    const A1: f32 = 4.893_524_5e-3;
    const A3: f32 = 6.372_619_3e-4;
    const A5: f32 = 1.485_722_4e-5;
    const A7: f32 = 5.122_297e-8;
    const A9: f32 = -8.604_672e-11;
    const A11: f32 = 2.000_188e-13;
    const A13: f32 = -2.760_768_5e-16;
    const B0: f32 = 4.893_525e-3;
    const B2: f32 = 2.268_434_6e-3;
    const B4: f32 = 1.185_347e-4;
    const B6: f32 = 1.198_258_4e-6;
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let p = ((((((A13 * x2 + A11) * x2 + A9) * x2 + A7) * x2 + A5) * x2 + A3) * x2 + A1) * x;
    let q = ((B6 * x2 + B4) * x2 + B2) * x2 + B0;
    p / q
}

#[inline(always)]
pub(super) fn fast_sigmoid(x: f32) -> f32 {
    0.5 + 0.5 * fast_tanh(0.5 * x)
}

/// `v = σ(v)`, element by element.
#[inline(always)]
pub(super) fn sigmoid_in_place(v: &mut [f32]) {
    map_in_place::<true>(v)
}

/// `v = tanh(v)`, element by element.
#[inline(always)]
pub(super) fn tanh_in_place(v: &mut [f32]) {
    map_in_place::<false>(v)
}

/// `v = σ(v)` (`SIGMOID`) or `tanh(v)`: 16 lanes at a time with AVX-512 (see [`avx512_act`]).
#[inline(always)]
fn map_in_place<const SIGMOID: bool>(v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernel::cpu::avx512() {
        // SAFETY: `avx512()` detected AVX-512F (and the rest of its features).
        return unsafe { avx512_act::map_in_place::<SIGMOID>(v) };
    }
    for x in v {
        *x = if SIGMOID {
            fast_sigmoid(*x)
        } else {
            fast_tanh(*x)
        };
    }
}

/// [`fast_tanh`] and [`fast_sigmoid`] on 16 lanes with FMAs, dividing by a reciprocal estimate
/// refined by one Newton step (relative error ~2⁻²⁷) instead of `vdivps`: portable Rust has
/// neither contraction into FMAs nor fast division, and `vdivps`'s latency dominates the gate
/// math of small hidden sizes.
#[cfg(target_arch = "x86_64")]
mod avx512_act {
    use std::arch::x86_64::*;

    /// `tanh(x)` per lane; a NaN lane stays NaN.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn tanh16(x: __m512) -> __m512 {
        let c = _mm512_set1_ps;
        // `max(lo, x)` returns its second operand when either is NaN: NaN passes the clamp.
        let x = _mm512_min_ps(c(7.905_311), _mm512_max_ps(c(-7.905_311), x));
        let x2 = _mm512_mul_ps(x, x);
        let mut p = c(-2.760_768_5e-16);
        for a in [
            2.000_188e-13,
            -8.604_672e-11,
            5.122_297e-8,
            1.485_722_4e-5,
            6.372_619_3e-4,
            4.893_524_5e-3,
        ] {
            p = _mm512_fmadd_ps(p, x2, c(a));
        }
        let p = _mm512_mul_ps(p, x);
        let mut q = c(1.198_258_4e-6);
        for b in [1.185_347e-4, 2.268_434_6e-3, 4.893_525e-3] {
            q = _mm512_fmadd_ps(q, x2, c(b));
        }
        let r = _mm512_rcp14_ps(q);
        let r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(q, r, c(1.0)), r);
        _mm512_mul_ps(p, r)
    }

    /// `σ(x) = ½ + ½·tanh(x/2)` per lane.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn sigmoid16(x: __m512) -> __m512 {
        let half = _mm512_set1_ps(0.5);
        _mm512_fmadd_ps(half, tanh16(_mm512_mul_ps(half, x)), half)
    }

    /// `v = σ(v)` (`SIGMOID`) or `tanh(v)`, 16 lanes at a time, the tail masked.
    ///
    /// # Safety
    /// The CPU has AVX-512F (a `target_feature` function: calling it is unsafe).
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn map_in_place<const SIGMOID: bool>(v: &mut [f32]) {
        let f = |x| if SIGMOID { sigmoid16(x) } else { tanh16(x) };
        let mut chunks = v.chunks_exact_mut(16);
        for c in &mut chunks {
            // SAFETY: `c` holds 16 values.
            unsafe { _mm512_storeu_ps(c.as_mut_ptr(), f(_mm512_loadu_ps(c.as_ptr()))) };
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let m = ((1u32 << tail.len()) - 1) as __mmask16;
            // SAFETY: the mask covers only the tail's `len < 16` values.
            unsafe {
                let x = _mm512_maskz_loadu_ps(m, tail.as_ptr());
                _mm512_mask_storeu_ps(tail.as_mut_ptr(), m, f(x));
            }
        }
    }
}
