//! What the CPU offers the fused op: the instruction sets its fast paths are compiled for, and
//! flush-to-zero while they run.

/// The instruction sets the AVX-512 paths are compiled with (`#[target_feature(enable = ...)]`
/// on the kernel, the activations and the fused op's block drivers). All of them must be
/// present: a CPU may have AVX-512F without VL (Knights Landing), and code compiled for VL there
/// would fault.
pub(crate) const AVX512_FEATURES: [&str; 4] = ["avx512f", "avx512vl", "avx2", "fma"];

/// Whether every feature in [`AVX512_FEATURES`] is present, asking `has` about each.
fn all_present(has: impl Fn(&str) -> bool) -> bool {
    AVX512_FEATURES.iter().all(|f| has(f))
}

/// Whether this CPU has every feature the AVX-512 paths are compiled for (detected once).
#[cfg(target_arch = "x86_64")]
fn detected() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        all_present(|f| match f {
            "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
            "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
            "avx2" => std::arch::is_x86_feature_detected!("avx2"),
            "fma" => std::arch::is_x86_feature_detected!("fma"),
            _ => false,
        })
    })
}

/// Whether the AVX-512 paths run: the CPU has every feature they are compiled for and
/// [`crate::set_avx512`] (or `GATECAST_AVX512`) allows them.
pub(crate) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        detected() && crate::switches::avx512_allowed()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU has AVX2 and FMA (detected once). The block drivers are also compiled for
/// these two, so that where the AVX-512 paths do not run their gate loops still vectorise 8
/// lanes wide instead of SSE2's 4.
pub(crate) fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Flush-to-zero and denormals-are-zero on the current thread while alive (x86-64; a no-op
/// elsewhere). Gradients that fade through time reach denormal range in long sequences, and every
/// FMA touching a denormal takes a microcode assist that makes long-sequence training several
/// times slower. Values below 1.2e-38 become 0.
pub(crate) struct Ftz {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl Ftz {
    /// Turns flushing on for this thread until the guard is dropped.
    pub(crate) fn on() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: reading and writing MXCSR only changes this thread's rounding/flush
            // flags (FTZ bit 15, DAZ bit 6); the guard restores the saved value.
            #[allow(deprecated)]
            let saved = unsafe { std::arch::x86_64::_mm_getcsr() };
            #[allow(deprecated)]
            // SAFETY: as above.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every feature the code is compiled for must be present; a CPU with AVX-512F alone (or
    /// AVX2 and FMA alone) takes the portable path.
    #[test]
    fn every_compiled_feature_is_required() {
        assert!(all_present(|_| true));
        for missing in AVX512_FEATURES {
            assert!(
                !all_present(|f| f != missing),
                "a CPU without {missing} must not run the AVX-512 paths"
            );
        }
        assert!(!all_present(|f| f == "avx512f"));
    }

    /// The guard sets FTZ and DAZ while alive and restores MXCSR after.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn ftz_guard_restores_the_control_register() {
        #[allow(deprecated)]
        // SAFETY: reads this thread's MXCSR.
        let before = unsafe { std::arch::x86_64::_mm_getcsr() };
        {
            let _g = Ftz::on();
            #[allow(deprecated)]
            // SAFETY: as above.
            let during = unsafe { std::arch::x86_64::_mm_getcsr() };
            assert_eq!(during & 0x8040, 0x8040);
            let tiny = std::hint::black_box(1e-39f32);
            assert_eq!(
                std::hint::black_box(tiny * 1.0),
                0.0,
                "denormals flush to zero"
            );
        }
        #[allow(deprecated)]
        // SAFETY: as above.
        let after = unsafe { std::arch::x86_64::_mm_getcsr() };
        assert_eq!(after, before);
    }
}
