//! Errors raised by the recurrent layers for input that comes from user data.

use thiserror::Error;

/// What was wrong with a call into a recurrent layer.
///
/// Shapes are written `[batch, time, features]`; every message says which argument was wrong and
/// what was expected, so the caller can fix the data rather than read Burn's internals.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RecurrentError {
    /// A configuration value is out of range.
    #[error("invalid {option} = {value}: {expected}")]
    InvalidConfig {
        /// The config field, e.g. `hidden_size`.
        option: &'static str,
        /// The value that was given, as text.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The input tensor's feature dimension differs from the layer's `input_size`.
    #[error("input has {found} features per step (shape [batch, time, features] = {shape:?}), but the layer was built with input_size = {expected}")]
    InputFeatures {
        /// The layer's `input_size`.
        expected: usize,
        /// The last dimension of the input.
        found: usize,
        /// The whole input shape.
        shape: [usize; 3],
    },
    /// The input has no time steps or no sequences.
    #[error("input shape {shape:?} is empty: a recurrent layer needs batch >= 1 and time >= 1")]
    EmptyInput {
        /// The input shape `[batch, time, features]`.
        shape: [usize; 3],
    },
    /// An initial state tensor has the wrong shape.
    #[error("initial {which} state has shape {found:?}, expected [num_layers * num_directions, batch, hidden_size] = {expected:?}")]
    StateShape {
        /// `"hidden"` or `"cell"`.
        which: &'static str,
        /// The expected shape.
        expected: [usize; 3],
        /// The shape that was passed.
        found: [usize; 3],
    },
    /// `lengths` does not have one entry per sequence in the batch.
    #[error("lengths has {found} entries but the batch has {expected} sequences: give one length per sequence")]
    LengthsCount {
        /// The batch size.
        expected: usize,
        /// The number of lengths passed.
        found: usize,
    },
    /// A sequence length is 0 or longer than the padded time dimension.
    #[error("lengths[{index}] = {length} is out of range: every length must be in 1..={max_len} (the input's time dimension)")]
    LengthOutOfRange {
        /// Which sequence in the batch.
        index: usize,
        /// The offending length.
        length: usize,
        /// The input's time dimension `T`.
        max_len: usize,
    },
    /// A model with a learned cycle was called without one valid phase per window.
    #[error("phases: {message}")]
    Phases {
        /// What was wrong: how many phases were given, or which was out of range.
        message: String,
    },
}
