//! # gatecast-trainer
//!
//! The library behind the `gatecast` command: it wires `gatecast-data` and `gatecast-model`
//! together on Burn's Learner. Backends are cargo features: `flex` (default), `ndarray`, `wgpu`.
#![warn(missing_docs)]

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
