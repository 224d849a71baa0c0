//! The fused op's per-step matrix products: `dst [m, n] (+)= lhs [m, k] · rhs [k, n]` with the
//! same `rhs` (a recurrent weight) at every step.
//!
//! The weight is packed once per sequence into column panels, so no step re-packs it. On CPUs
//! with AVX-512 a register-blocked kernel (8 rows × 32 columns of accumulators, one broadcast
//! and two FMAs per row and `k`) runs on the panels; elsewhere the `gemm` crate (what flex
//! uses, AVX2 at best on stable Rust) multiplies the plain row-major copy. Everything is
//! single-threaded: the fused op already runs one block of batch rows per thread.

/// Columns per packed panel: two AVX-512 registers.
const NR: usize = 32;

/// A `[k, n]` right-hand side, kept row-major and (with AVX-512) as `⌈n/32⌉` panels of
/// `[k, 32]`, zero-padded.
#[derive(Debug)]
pub(crate) struct Packed {
    k: usize,
    n: usize,
    plain: Vec<f32>,
    panels: Option<Vec<f32>>,
}

/// Whether this CPU runs the AVX-512 kernel (`GATECAST_AVX512=0` turns it off, to compare).
pub(crate) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::env::var("GATECAST_AVX512").as_deref() != Ok("0")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl Packed {
    /// The `[k, n]` matrix whose element `(i, j)` is `src[i * rs + j * cs]`.
    pub(crate) fn new(src: &[f32], (k, n): (usize, usize), rs: usize, cs: usize) -> Self {
        Self::with(src, (k, n), rs, cs, avx512())
    }

    /// Rows of the matrix (the inner dimension of the product).
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    fn with(src: &[f32], (k, n): (usize, usize), rs: usize, cs: usize, panels: bool) -> Self {
        let mut plain = vec![0.0f32; k * n];
        for i in 0..k {
            for j in 0..n {
                plain[i * n + j] = src[i * rs + j * cs];
            }
        }
        let panels = panels.then(|| {
            let np = n.div_ceil(NR);
            let mut p = vec![0.0f32; np * k * NR];
            for panel in 0..np {
                for i in 0..k {
                    for c in 0..NR.min(n - panel * NR) {
                        p[(panel * k + i) * NR + c] = plain[i * n + panel * NR + c];
                    }
                }
            }
            p
        });
        Self {
            k,
            n,
            plain,
            panels,
        }
    }
}

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
    let (k, n) = (rhs.k, rhs.n);
    if m == 0 || n == 0 {
        return;
    }
    // The bounds the raw-pointer calls rely on.
    assert!(
        dst_rs >= n && dst.len() >= (m - 1) * dst_rs + n,
        "gemm: dst"
    );
    if k > 0 {
        assert!(
            lhs_rs >= k && lhs.len() >= (m - 1) * lhs_rs + k,
            "gemm: lhs"
        );
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(panels) = &rhs.panels {
        // SAFETY: `panels` is only built where AVX-512F was detected; the asserts above keep
        // every access inside `dst` and `lhs`, and the panels hold `⌈n/32⌉·k·32` values.
        unsafe {
            avx512::gemm(
                (m, n, k),
                dst.as_mut_ptr(),
                dst_rs,
                lhs.as_ptr(),
                lhs_rs,
                panels.as_ptr(),
                acc,
            )
        };
        return;
    }
    // SAFETY: as above; `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            acc,
            lhs.as_ptr(),
            1,
            lhs_rs as isize,
            rhs.plain.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::NR;
    use std::arch::x86_64::*;

    /// Rows per register block: 16 accumulators, two panel loads and a broadcast.
    const MR: usize = 8;

    /// Panel by panel (each stays in L1 across the row blocks), 8 rows at a time.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gemm(
        (m, n, k): (usize, usize, usize),
        dst: *mut f32,
        dst_rs: usize,
        lhs: *const f32,
        lhs_rs: usize,
        panels: *const f32,
        acc: bool,
    ) {
        for p in 0..n.div_ceil(NR) {
            let cols = (n - p * NR).min(NR);
            let mask = |c: usize| -> __mmask16 {
                if c >= 16 {
                    0xffff
                } else {
                    ((1u32 << c) - 1) as __mmask16
                }
            };
            let masks = (mask(cols), mask(cols.saturating_sub(16)));
            let b = panels.add(p * k * NR);
            let mut r = 0;
            while r < m {
                let rows = (m - r).min(MR);
                let a = lhs.add(r * lhs_rs);
                let c = dst.add(r * dst_rs + p * NR);
                let args = (k, b, a, lhs_rs, c, dst_rs, masks, acc);
                match rows {
                    8 => block::<8>(args),
                    7 => block::<7>(args),
                    6 => block::<6>(args),
                    5 => block::<5>(args),
                    4 => block::<4>(args),
                    3 => block::<3>(args),
                    2 => block::<2>(args),
                    _ => block::<1>(args),
                }
                r += rows;
            }
        }
    }

    type Args = (
        usize,
        *const f32,
        *const f32,
        usize,
        *mut f32,
        usize,
        (__mmask16, __mmask16),
        bool,
    );

    /// `R` rows × one 32-column panel, accumulated in registers over all of `k`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block<const R: usize>((k, b, a, a_rs, c, c_rs, (m0, m1), acc): Args) {
        let mut c0 = [_mm512_setzero_ps(); R];
        let mut c1 = [_mm512_setzero_ps(); R];
        if acc {
            for i in 0..R {
                c0[i] = _mm512_maskz_loadu_ps(m0, c.add(i * c_rs));
                c1[i] = _mm512_maskz_loadu_ps(m1, c.add(i * c_rs + 16));
            }
        }
        for kk in 0..k {
            let b0 = _mm512_loadu_ps(b.add(kk * NR));
            let b1 = _mm512_loadu_ps(b.add(kk * NR + 16));
            for i in 0..R {
                let av = _mm512_set1_ps(*a.add(i * a_rs + kk));
                c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
                c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
            }
        }
        for i in 0..R {
            _mm512_mask_storeu_ps(c.add(i * c_rs), m0, c0[i]);
            _mm512_mask_storeu_ps(c.add(i * c_rs + 16), m1, c1[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both paths (AVX-512 where the CPU has it, and the `gemm` crate) against a plain triple
    /// loop: row counts around the 8-row block, column counts around the 32-column panel and
    /// the 16-lane mask, strided rows, and accumulation.
    #[test]
    fn packed_gemm_matches_a_triple_loop() {
        let mut seed = 1u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let paths: &[bool] = if avx512() { &[true, false] } else { &[false] };
        for &panels in paths {
            for (m, n, k) in [
                (1, 1, 1),
                (3, 5, 7),
                (8, 32, 16),
                (9, 33, 5),
                (17, 48, 64),
                (32, 512, 128),
                (13, 17, 0),
            ] {
                for acc in [false, true] {
                    let (lhs_rs, dst_rs) = (k + 3, n + 2);
                    let lhs: Vec<f32> = (0..m * lhs_rs).map(|_| next()).collect();
                    // The rhs transposed in memory, as the forward reads `weight_hh`.
                    let src: Vec<f32> = (0..k * n).map(|_| next()).collect();
                    let rhs = Packed::with(&src, (k, n), 1, k, panels);
                    let mut dst: Vec<f32> = (0..m * dst_rs).map(|_| next()).collect();
                    let mut want = dst.clone();
                    for i in 0..m {
                        for j in 0..n {
                            let dot: f32 =
                                (0..k).map(|l| lhs[i * lhs_rs + l] * src[j * k + l]).sum();
                            let w = &mut want[i * dst_rs + j];
                            *w = if acc { *w + dot } else { dot };
                        }
                    }
                    gemm(m, &mut dst, dst_rs, &lhs, lhs_rs, &rhs, acc);
                    for (i, (a, b)) in dst.iter().zip(&want).enumerate() {
                        assert!(
                            (a - b).abs() < 1e-4,
                            "panels {panels} m{m} n{n} k{k} acc {acc} at {i}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}
