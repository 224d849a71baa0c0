//! # gatecast-trainer
//!
//! The library behind the `gatecast` command: it wires `gatecast-data` and `gatecast-model`
//! together on Burn's Learner. Backends are cargo features: `flex` (default), `ndarray`, `wgpu`.
//!
//! This crate is being built (issue "The gatecast trainer"); it has no public API yet.
