//! Process-wide switches of the recurrent layers' implementation, each with an environment
//! variable (read once, at the first forward pass that asks) and a function a program calls.
//!
//! | switch | environment | function | default |
//! |---|---|---|---|
//! | the fused whole-sequence op | `GATECAST_FUSED=0` turns it off | [`set_fused`] | on |
//! | the AVX-512 kernels of the fused CPU op | `GATECAST_AVX512=0` turns them off | [`set_avx512`] | on where the CPU has AVX-512F, VL, AVX2 and FMA |
//!
//! Both exist to compare implementations (the step-by-step loop of Burn tensor ops against the
//! fused op; the portable `gemm`-crate path against the AVX-512 kernel): every setting computes
//! the same function. Flipping one while another thread runs a forward pass is safe; that pass
//! may use either setting.

use std::sync::atomic::{AtomicU8, Ordering};

/// A boolean with three states: not yet decided (then the environment decides), off, on.
struct Switch {
    state: AtomicU8,
    env: &'static str,
}

const UNSET: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

impl Switch {
    const fn new(env: &'static str) -> Self {
        Self {
            state: AtomicU8::new(UNSET),
            env,
        }
    }

    /// The setting: the last [`Switch::set`], or else the environment (`0` is off, anything
    /// else or nothing is on), read the first time and kept.
    fn get(&self) -> bool {
        match self.state.load(Ordering::Relaxed) {
            UNSET => {
                let on = env_allows(std::env::var(self.env).ok().as_deref());
                // Another thread's `set` since the load wins over the environment.
                let _ = self.state.compare_exchange(
                    UNSET,
                    if on { ON } else { OFF },
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                self.state.load(Ordering::Relaxed) == ON
            }
            s => s == ON,
        }
    }

    fn set(&self, on: bool) {
        self.state
            .store(if on { ON } else { OFF }, Ordering::Relaxed);
    }
}

/// An environment switch's value: only `0` turns it off.
fn env_allows(value: Option<&str>) -> bool {
    value != Some("0")
}

static FUSED: Switch = Switch::new("GATECAST_FUSED");
static AVX512: Switch = Switch::new("GATECAST_AVX512");

/// Runs stacks through the fused whole-sequence op where one applies (`true`, the default) or
/// always through the step-by-step loop of Burn tensor ops (`false`, as `GATECAST_FUSED=0`).
pub fn set_fused(on: bool) {
    FUSED.set(on);
}

/// Whether stacks run through the fused op where one applies (see [`set_fused`]).
pub fn fused_enabled() -> bool {
    FUSED.get()
}

/// Lets the fused CPU op use its AVX-512 kernels where the CPU has them (`true`, the default) or
/// never (`false`, as `GATECAST_AVX512=0`: the portable path). Turning it on cannot enable
/// instructions the CPU lacks; [`crate::avx512_active`] says what runs.
pub fn set_avx512(on: bool) {
    AVX512.set(on);
}

/// Whether the AVX-512 kernels are allowed (see [`set_avx512`]); they run only where the CPU
/// also has the instructions.
pub(crate) fn avx512_allowed() -> bool {
    AVX512.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_zero_turns_a_switch_off() {
        assert!(env_allows(None));
        assert!(env_allows(Some("1")));
        assert!(env_allows(Some("")));
        assert!(!env_allows(Some("0")));
    }

    #[test]
    fn a_set_switch_ignores_the_environment() {
        // A switch of its own (the real ones are shared with tests running beside this one).
        let s = Switch::new("GATECAST_TEST_SWITCH_NEVER_SET");
        assert!(s.get(), "unset in the environment: on");
        s.set(false);
        assert!(!s.get());
        s.set(true);
        assert!(s.get());
    }
}
