//! # gatecast-trainer
//!
//! The library behind the `gatecast` command: it wires `gatecast-data` and `gatecast-model`
//! together on Burn's Learner. Backends are cargo features: `flex` (default), `ndarray`, `wgpu`.
#![warn(missing_docs)]

/// `print!` to standard output that survives its reader going away (`gatecast train | head`):
/// `print!` would panic on the broken pipe and lose the run, so what cannot be written is
/// dropped and the run goes on to write its files.
#[doc(hidden)]
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` to standard error that survives its reader going away (`gatecast train 2>&1 |
/// head`): notes, warnings and errors are dropped rather than panicking the run.
#[doc(hidden)]
#[macro_export]
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// [`say!`] with a newline, for `println!`.
#[doc(hidden)]
#[macro_export]
macro_rules! sayln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod artifacts;
pub mod benchmark;
pub mod checkpoint;
pub mod choice;
pub mod clip;
pub mod config;
pub mod diagnose;
pub mod ema;
pub mod lr;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod panel;
pub mod plots;
pub mod renderer;
pub mod run;
pub mod schedule;
