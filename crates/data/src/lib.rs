//! # gatecast-data
//!
//! Time-series loading, validation, splits, scalers, sliding windows, Burn datasets and batchers,
//! metrics and naive baselines. Depends on no model code.
//!
//! This crate is being built (issue "The data crate"); it has no public API yet.
