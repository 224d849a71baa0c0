//! Each block driver compiled three times — for the default target, with AVX2 and FMA, and with
//! AVX-512 — and the widest one the CPU runs chosen at run time, with denormals flushed to zero
//! while it runs.
//!
//! The default x86-64 target has only SSE2, so the gate loops of the drivers would vectorise
//! 4 lanes wide; compiled inside a `target_feature` function they vectorise 8 (AVX2) or 16
//! (AVX-512) wide. A driver is a [`Task`] whose `run` is `#[inline(always)]`: inlined into
//! [`run`]'s feature functions it is compiled with their features.

/// A block driver's work for one block of rows.
pub(super) trait Task {
    /// Does it; implementations are `#[inline(always)]` so that they compile inside the
    /// AVX-512 function too.
    fn run(self);
}

/// Runs `task` with the AVX-512 build where the CPU has every feature it is compiled for (and
/// [`crate::set_avx512`] allows it), else the AVX2 + FMA build where the CPU has those, else the
/// default one; flush-to-zero set on this thread: fading gradients reach denormal range, where
/// every FMA takes a microcode assist.
pub(super) fn run<T: Task>(task: T) {
    let _ftz = crate::kernel::Ftz::on();
    #[cfg(target_arch = "x86_64")]
    if crate::kernel::cpu::avx512() {
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        fn fast<T: Task>(task: T) {
            task.run()
        }
        // SAFETY: `avx512()` detected every feature `fast` is compiled for.
        return unsafe { fast(task) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernel::cpu::avx2_fma() {
        #[target_feature(enable = "avx2,fma")]
        fn wide<T: Task>(task: T) {
            task.run()
        }
        // SAFETY: `avx2_fma()` detected both features `wide` is compiled for.
        return unsafe { wide(task) };
    }
    task.run()
}
