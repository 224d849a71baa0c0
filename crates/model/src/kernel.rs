//! The fused op's per-step matrix products: `dst [m, n] (+)= lhs [m, k] · rhs [k, n]` with the
//! same `rhs` (a recurrent weight) at every step.
//!
//! The weight is packed once per sequence into column panels, so no step re-packs it. On CPUs
//! with AVX-512 a register-blocked kernel (8 rows × 32 columns of accumulators, one broadcast
//! and two FMAs per row and `k`) runs on the panels; elsewhere the `gemm` crate (what flex
//! uses, AVX2 at best on stable Rust) multiplies a plain row-major copy. Everything is
//! single-threaded: the fused op already runs one block of batch rows per thread.

/// Large `f32` buffers kept between calls (packed weights, saved gates, gradient scratch), so a
/// training step does not map, and fault in, fresh pages for each: glibc hands large freed blocks
/// back to the kernel, and at shape c a step maps over a gigabyte.
///
/// The pool keeps at most the larger of [`pool::MIN_KEEP`] and the most it has ever had handed
/// out at once (its callers' peak working set), so a training loop's steady state maps nothing
/// new and the memory held never exceeds what one step needed anyway. [`pool::release`]
/// (public as `gatecast_model::release_cached_buffers`) frees it all.
pub(crate) mod pool {
    use std::collections::VecDeque;
    use std::sync::{Mutex, MutexGuard};

    struct Pool {
        /// Returned buffers, oldest first.
        free: VecDeque<Vec<f32>>,
        /// Bytes in `free`.
        held: usize,
        /// Bytes handed out by [`take`] and not yet returned.
        out: usize,
        /// The largest `out` seen: the cap on `held` (with [`MIN_KEEP`]).
        peak: usize,
    }

    static POOL: Mutex<Pool> = Mutex::new(Pool::new());
    /// What the pool may hold even before it has seen a peak.
    pub(crate) const MIN_KEEP: usize = 256 << 20;

    fn pool() -> MutexGuard<'static, Pool> {
        POOL.lock().unwrap_or_else(|e| e.into_inner())
    }

    impl Pool {
        const fn new() -> Self {
            Self {
                free: VecDeque::new(),
                held: 0,
                out: 0,
                peak: 0,
            }
        }

        /// The smallest kept buffer of at least `len` values and at most a quarter more (or
        /// 1 MiB), counted as handed out either way. With "at most twice", a buffer left by
        /// one model (shape a's LSTM gates, 6 MiB) served a smaller request of the next (shape
        /// b's Elman pre-activation gradient, 3 MiB), and that model's training step ran ~30%
        /// slower for as long as the process lived (page faults and mmap calls were the same;
        /// the cause is not pinned down).
        fn take(&mut self, len: usize) -> Option<Vec<f32>> {
            let fits =
                |v: &Vec<f32>| v.capacity() >= len && v.capacity() <= (len + len / 4).max(1 << 18);
            let best = (0..self.free.len())
                .filter(|&i| fits(&self.free[i]))
                .min_by_key(|&i| self.free[i].capacity());
            let found = best.and_then(|i| self.free.remove(i));
            if let Some(v) = &found {
                self.held -= v.capacity() * 4;
            }
            self.out += found.as_ref().map_or(len, |v| v.capacity()) * 4;
            self.peak = self.peak.max(self.out);
            found
        }

        /// Keeps `v`, dropping the oldest kept buffers while more than the cap would be held.
        fn give(&mut self, v: Vec<f32>) {
            let bytes = v.capacity() * 4;
            if bytes == 0 {
                return;
            }
            self.out = self.out.saturating_sub(bytes);
            let cap = self.peak.max(MIN_KEEP);
            if bytes > cap {
                return;
            }
            while self.held + bytes > cap {
                let Some(old) = self.free.pop_front() else {
                    break;
                };
                self.held -= old.capacity() * 4;
            }
            self.held += bytes;
            self.free.push_back(v);
        }

        /// Drops every kept buffer and lowers the peak to what is handed out now.
        fn release(&mut self) -> VecDeque<Vec<f32>> {
            self.held = 0;
            self.peak = self.out;
            std::mem::take(&mut self.free)
        }
    }

    /// `len` values, contents unspecified: callers write every value they later read.
    pub(crate) fn take(len: usize) -> Vec<f32> {
        let found = pool().take(len);
        match found {
            Some(mut v) => {
                v.truncate(len);
                v.resize(len, 0.0);
                v
            }
            None => fresh(len),
        }
    }

    /// Buffers at least this large are mapped with transparent huge pages where the kernel
    /// allows it (`madvise` mode).
    const HUGE_BYTES: usize = 8 << 20;

    /// `len` zeros from the allocator. Above [`HUGE_BYTES`] the allocation (usually a fresh
    /// `mmap`: untouched zero pages) is advised `MADV_HUGEPAGE` before its first write, so first
    /// touch faults in 2 MiB at a time instead of 4 KiB: shape c's saved gates are hundreds of
    /// megabytes per layer, i.e. hundreds of thousands of 4 KiB faults. (Where glibc serves the
    /// request from its heap instead, the advice covers pages it may already have touched:
    /// harmless.)
    pub(crate) fn fresh(len: usize) -> Vec<f32> {
        let v = vec![0.0f32; len];
        #[cfg(target_os = "linux")]
        if len * 4 >= HUGE_BYTES {
            const HUGE: usize = 2 << 20;
            let start = (v.as_ptr() as usize).next_multiple_of(HUGE);
            let end = (v.as_ptr() as usize + len * 4) / HUGE * HUGE;
            if end > start {
                // SAFETY: advice on whole pages inside this live allocation; it changes how
                // they are backed, never their contents (all zero, as `vec!` made them).
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE)
                };
            }
        }
        v
    }

    /// `len` zeros.
    pub(crate) fn zeros(len: usize) -> Vec<f32> {
        let mut v = take(len);
        v.fill(0.0);
        v
    }

    /// Returns `v` (from [`take`]) to the pool.
    pub(crate) fn give(v: Vec<f32>) {
        pool().give(v);
    }

    /// Frees every kept buffer and forgets the peak.
    pub(crate) fn release() {
        let dropped = pool().release();
        drop(dropped);
    }

    /// A [`take`]n buffer that goes back to the pool when dropped (e.g. the gates an autodiff
    /// graph saved but never ran backward on).
    #[derive(Debug, Default)]
    pub(crate) struct Pooled(pub(crate) Vec<f32>);

    impl Drop for Pooled {
        fn drop(&mut self) {
            give(std::mem::take(&mut self.0));
        }
    }

    impl Clone for Pooled {
        fn clone(&self) -> Self {
            let mut v = take(self.0.len());
            v.copy_from_slice(&self.0);
            Self(v)
        }
    }

    impl std::ops::Deref for Pooled {
        type Target = Vec<f32>;
        fn deref(&self) -> &Vec<f32> {
            &self.0
        }
    }

    impl std::ops::DerefMut for Pooled {
        fn deref_mut(&mut self) -> &mut Vec<f32> {
            &mut self.0
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const MIB: usize = 1 << 18; // f32 values per MiB

        /// The pool holds up to its callers' peak (at least `MIN_KEEP`), reuses a kept buffer
        /// only for a request of at least 4/5 of its size, drops the oldest first, and frees
        /// everything on `release`.
        #[test]
        fn keeps_up_to_the_peak_working_set() {
            let mut p = Pool::new();
            // MIN_KEEP's worth of values.
            let min = MIN_KEEP / 4;
            // Three buffers out at once: 1.5 × MIN_KEEP in all.
            let bufs: Vec<Vec<f32>> = (0..3)
                .map(|_| p.take(min / 2).unwrap_or_else(|| vec![0.0; min / 2]))
                .collect();
            assert_eq!(p.peak, 3 * MIN_KEEP / 2);
            for v in bufs {
                p.give(v);
            }
            assert_eq!((p.held, p.out), (3 * MIN_KEEP / 2, 0), "all three kept");
            // Not reused for a much smaller request.
            let small = p.take(min / 8);
            assert!(
                small.is_none(),
                "a 4x larger buffer must not serve a small request"
            );
            // Kept in place of the oldest: 1.5 × MIN_KEEP is the cap.
            p.give(vec![0.0; min / 8]);
            assert_eq!(p.held, MIN_KEEP + MIN_KEEP / 8);
            assert!(p.take(min / 3).is_none(), "1.5x larger: not reused");
            p.give(vec![0.0; min / 3]);
            let held = MIN_KEEP + MIN_KEEP / 8 + (min / 3) * 4;
            assert_eq!(p.held, held, "under the cap: nothing dropped");
            // At most a quarter larger: reused.
            let v = p.take(min / 2 - 1024).expect("a kept buffer fits");
            assert_eq!(v.capacity(), min / 2);
            assert_eq!(p.held, held - MIN_KEEP / 2);
            p.give(v);
            // Over the cap the oldest go first: one buffer of the peak's size displaces all.
            p.give(vec![0.0; 3 * min / 2]);
            assert_eq!(p.held, 3 * MIN_KEEP / 2);
            assert_eq!(p.free.len(), 1);
            // Larger than the cap: not kept.
            p.give(vec![0.0; 2 * min]);
            assert_eq!(p.held, 3 * MIN_KEEP / 2);
            let freed = p.release();
            assert_eq!((freed.len(), p.held, p.peak), (1, 0, 0));
            // Without a peak, MIN_KEEP is the cap.
            p.give(vec![0.0; min / 2 + MIB]);
            p.give(vec![0.0; min / 2 + MIB]);
            assert_eq!(p.free.len(), 1, "two would exceed MIN_KEEP");
        }
    }
}

/// Flush-to-zero and denormals-are-zero on the current thread while alive (x86-64; a no-op
/// elsewhere). Gradients that fade through time reach denormal range in long sequences, and every
/// FMA touching a denormal takes a microcode assist: without this, shape c168 (B256 T168 H256)
/// LSTM training ran at a quarter of its T=84 speed per step. Values below 1.2e-38 become 0.
pub(crate) struct Ftz {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl Ftz {
    pub(crate) fn on() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: reading and writing MXCSR only changes this thread's rounding/flush
            // flags (FTZ bit 15, DAZ bit 6); the guard restores the saved value.
            #[allow(deprecated)]
            let saved = unsafe { std::arch::x86_64::_mm_getcsr() };
            #[allow(deprecated)]
            unsafe {
                std::arch::x86_64::_mm_setcsr(saved | 0x8040)
            };
            Self { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {}
    }
}

impl Drop for Ftz {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: restores the value read in `on`.
        #[allow(deprecated)]
        unsafe {
            std::arch::x86_64::_mm_setcsr(self.saved)
        };
    }
}

/// Columns per packed panel: two AVX-512 registers.
const NR: usize = 32;
/// Rows per register block of the AVX-512 kernel.
const MR: usize = 8;

/// A `[k, n]` right-hand side: `⌈n/32⌉` zero-padded panels of `[k, 32]` where the AVX-512 kernel
/// runs, a row-major copy for the `gemm` crate elsewhere. Its storage returns to the [`pool`].
#[derive(Debug)]
pub(crate) struct Packed {
    k: usize,
    n: usize,
    plain: Vec<f32>,
    /// The panels' storage and where in it they start: at a 64-byte boundary, so that no
    /// 16-lane load of a panel row straddles two cache lines (a buffer from the allocator is
    /// only 16-byte aligned; split loads cost shape b's GRU inference ~8%).
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

    /// The first panel (64-byte aligned) where the AVX-512 kernel runs.
    fn panel_ptr(&self) -> Option<*const f32> {
        self.panels.as_ref().map(|(p, off)| p[*off..].as_ptr())
    }

    /// Rows of the matrix (the inner dimension of the product).
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    fn with(src: &[f32], (k, n): (usize, usize), rs: usize, cs: usize, panels: bool) -> Self {
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
    assert!(lhs_rs >= rhs.k, "gemm: lhs rows overlap");
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
fn gemm_strided(
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
        gemm::gemm(
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
            gemm::Parallelism::None,
        );
    }
}

/// [`gemm_strided`] with `rhs [k, n]` read as it lies, row-major (no packing): where the
/// AVX-512 kernel runs and `n` is a multiple of its 32-column panels, whose rows are then rows
/// of `rhs` `n` apart. Returns `false` (nothing done) elsewhere, for the caller to pack.
#[allow(clippy::too_many_arguments)]
fn gemm_rhs_in_place(
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
    if avx512() && n.is_multiple_of(NR) {
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

/// `lhs [m, k] · rhs` on all rayon threads (blocks of rows), `[m, n]` row-major.
pub(crate) fn matmul(m: usize, lhs: &[f32], rhs: &Packed) -> Vec<f32> {
    use rayon::prelude::*;
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
    use rayon::prelude::*;
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
        let end = (start + share).min(r);
        // Where `a`'s rows are a multiple of 4 KiB apart (m = 1024: the LSTM's 4H at H = 256),
        // the values read in place for one 8-row block all fall in one L1 set; there `aᵀ`'s
        // block, `[m, kc]`, is packed per 8-row block as `[kc, 8]`. Measured on 2 threads, r =
        // 21504, n = 256: m = 1024 198–200 GFLOP/s in place, 216–221 packed; m = 2048 and 768
        // the same either way; at shape b (m = 128, 512) packing cost a quarter.
        let pack = m.is_multiple_of(1024);
        let mut ap = if pack {
            pool::take(m.div_ceil(MR) * MR * KC)
        } else {
            Vec::new()
        };
        let mut k0 = start;
        while k0 < end {
            let kc = KC.min(end - k0);
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

#[cfg(target_arch = "x86_64")]
mod avx512 {
    /// Rows per register block: 16 accumulators, two panel loads and a broadcast.
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// A second product into the same `dst`: `(k₂, lhs₂, its strides, its panels)`.
    pub(super) type Second = (usize, *const f32, (usize, usize), *const f32);

    /// `dst (+)= lhs · panels`, plus `lhs₂ · panels₂` in the same registers when `second` is
    /// given; 8 rows × 32 columns at a time. `(acc, tall)`: add to `dst`; the order of the loops.
    /// Not tall (the per-step products: up to 128 rows of 256 + 256 at shape c), panel by panel:
    /// each panel stays in L1 while every row block passes over it, and `lhs` is re-read from L2
    /// once per panel. Tall (the whole-sequence products of BPTT, megabytes of `lhs`), row block
    /// by row block: the block's rows stay in L1 while every panel passes over them, so `lhs`
    /// streams in once instead of once per panel, and the panels (a weight) come from L2.
    ///
    /// `PACKED`: `panels` holds `⌈n/32⌉` panels of `[k, 32]`; otherwise it is a row-major `[k, n]`
    /// matrix with row stride `rhs_rs` (`n` a multiple of 32), read in place.
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
            let b = if PACKED {
                panels.add(p * k * NR)
            } else {
                panels.add(p * NR)
            };
            let a = lhs.add(r * lhs_rs);
            let c = dst.add(r * dst_rs + p * NR);
            let two = second.map(|(k2, a2, (rs2, cs2), p2)| {
                (k2, p2.add(p * k2 * NR), a2.add(r * rs2), (rs2, cs2))
            });
            let args = (k, b, a, (lhs_rs, lhs_cs), c, dst_rs, masks, acc, two);
            let b_rs = if PACKED { NR } else { rhs_rs };
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
                c0[i] = _mm512_maskz_loadu_ps(m0, c.add(i * c_rs));
                c1[i] = _mm512_maskz_loadu_ps(m1, c.add(i * c_rs + 16));
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
                std::arch::asm!("/* {0} */", inout(reg) o, options(pure, nomem, nostack));
                o
            });
            let (mut ap, mut bp) = (a, b);
            for _ in 0..k {
                let b0 = _mm512_loadu_ps(bp);
                let b1 = _mm512_loadu_ps(bp.add(16));
                for i in 0..R {
                    let av = _mm512_set1_ps(*ap.add(offs[i]));
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
            _mm512_mask_storeu_ps(c.add(i * c_rs), m0, c0[i]);
            _mm512_mask_storeu_ps(c.add(i * c_rs + 16), m1, c1[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Panels start on a 64-byte boundary whatever the allocator returns, and hold the matrix.
    #[test]
    fn panels_are_cache_line_aligned() {
        for (k, n) in [(1, 1), (7, 33), (128, 384), (3, 64)] {
            let src: Vec<f32> = (0..k * n).map(|i| i as f32).collect();
            let p = Packed::with(&src, (k, n), n, 1, true);
            let ptr = p.panel_ptr().expect("panels");
            assert_eq!(ptr as usize % 64, 0, "k{k} n{n}");
            // SAFETY: the panels hold ⌈n/32⌉·k·32 values from `ptr`.
            let panels = unsafe { std::slice::from_raw_parts(ptr, n.div_ceil(NR) * k * NR) };
            for i in 0..k {
                for j in 0..n {
                    assert_eq!(panels[((j / NR) * k + i) * NR + j % NR], src[i * n + j]);
                }
            }
        }
    }

    /// The parallel products against a triple loop, with row counts that split unevenly over
    /// threads and reductions longer than one block.
    #[test]
    fn parallel_products_match_a_triple_loop() {
        let val = |i: usize, s: usize| ((i * 7 + s * 13) % 17) as f32 * 0.1 - 0.8;
        for (r, m, n) in [
            (1, 1, 1),
            (5, 3, 2),
            (700, 9, 33),
            (1029, 40, 7),
            (300, 100, 40),
            (300, 70, 5),
            // Rows 4 KiB apart: `aᵀ` packed.
            (600, 1024, 40),
            // Whole 32-column panels: `b` read in place (with AVX-512), `aᵀ` in place / packed.
            (700, 24, 64),
            (600, 1024, 32),
        ] {
            let a: Vec<f32> = (0..r * m).map(|i| val(i, 1)).collect();
            let b: Vec<f32> = (0..r * n).map(|i| val(i, 2)).collect();
            let c = matmul_tn(r, &a, m, &b, n);
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = (0..r).map(|l| a[l * m + i] * b[l * n + j]).sum();
                    let got = c[i * n + j];
                    assert!(
                        (got - want).abs() < 1e-3 * (1.0 + want.abs()),
                        "tn r{r} m{m} n{n}: {got} vs {want}"
                    );
                }
            }
            // a [r, m] · bᵀ-shaped rhs [m, n] (b's first m rows reused as a matrix).
            let w: Vec<f32> = (0..m * n).map(|i| val(i, 3)).collect();
            let p = Packed::new(&w, (m, n), n, 1);
            let c = matmul(r, &a, &p);
            for i in 0..r {
                for j in 0..n {
                    let want: f32 = (0..m).map(|l| a[i * m + l] * w[l * n + j]).sum();
                    assert!((c[i * n + j] - want).abs() < 1e-4, "matmul r{r} m{m} n{n}");
                }
            }
        }
    }

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
                    let mut dst_t = dst.clone();
                    gemm(m, &mut dst, dst_rs, &lhs, lhs_rs, &rhs, acc);
                    // The same lhs stored transposed (`[k, m + 1]`), read with strides.
                    let mut lhs_t = vec![0.0f32; k * (m + 1)];
                    for i in 0..m {
                        for l in 0..k {
                            lhs_t[l * (m + 1) + i] = lhs[i * lhs_rs + l];
                        }
                    }
                    let lhs_t = if k == 0 { vec![0.0] } else { lhs_t };
                    // Both loop orders, on the transposed copy.
                    gemm_strided(m, &mut dst_t, dst_rs, &lhs_t, (1, m + 1), &rhs, acc, m > 8);
                    for (i, (a, b)) in dst_t.iter().zip(&want).enumerate() {
                        assert!(
                            (a - b).abs() < 1e-4,
                            "strided lhs, panels {panels} m{m} n{n} k{k} acc {acc} at {i}: {a} vs {b}"
                        );
                    }
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

    /// `gemm_pair` (one register pass over both products on AVX-512, two calls elsewhere)
    /// against a triple loop: a handful of input features beside a wide recurrent operand,
    /// strided rows, edges of the row block and of the panel, and a long second `k`.
    #[test]
    fn paired_gemm_matches_a_triple_loop() {
        let val = |i: usize, s: usize| ((i * 7 + s * 13) % 19) as f32 * 0.05 - 0.45;
        let paths: &[bool] = if avx512() { &[true, false] } else { &[false] };
        for &panels in paths {
            for (m, n, k1, k2) in [
                (1, 1, 1, 1),
                (9, 33, 7, 20),
                (32, 512, 7, 128),
                (300, 40, 5, 300),
            ] {
                let (x_rs, h_rs, dst_rs) = (k1 + 2, k2 + 5, n + 1);
                let x: Vec<f32> = (0..m * x_rs).map(|i| val(i, 1)).collect();
                let h: Vec<f32> = (0..m * h_rs).map(|i| val(i, 2)).collect();
                let w1: Vec<f32> = (0..k1 * n).map(|i| val(i, 3)).collect();
                let w2: Vec<f32> = (0..k2 * n).map(|i| val(i, 4)).collect();
                let p1 = Packed::with(&w1, (k1, n), n, 1, panels);
                let p2 = Packed::with(&w2, (k2, n), n, 1, panels);
                // Stale values in dst must not leak in: the pair overwrites.
                let mut dst = vec![9.0f32; m * dst_rs];
                gemm_pair(m, &mut dst, dst_rs, (&x, x_rs, &p1), (&h, h_rs, &p2));
                for i in 0..m {
                    for j in 0..n {
                        let a: f32 = (0..k1).map(|l| x[i * x_rs + l] * w1[l * n + j]).sum();
                        let b: f32 = (0..k2).map(|l| h[i * h_rs + l] * w2[l * n + j]).sum();
                        let got = dst[i * dst_rs + j];
                        assert!(
                            (got - (a + b)).abs() < 1e-3,
                            "panels {panels} m{m} n{n} k{k1}+{k2} ({i}, {j}): {got} vs {}",
                            a + b
                        );
                    }
                }
            }
        }
    }
}
