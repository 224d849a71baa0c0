//! Moving weights between PyTorch and gatecast through safetensors files.
//!
//! PyTorch names a recurrent layer's tensors `weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`,
//! `bias_hh_l{k}`, with a `_reverse` suffix for the backward direction, possibly under a prefix
//! (`encoder.lstm.weight_ih_l0`). gatecast stores the same tensors, with the same shapes, at
//! `layers.{k}.forward.weight_ih` / `layers.{k}.reverse.weight_ih` under the same prefix. The
//! stores below translate the names both ways, so
//!
//! ```python
//! from safetensors.torch import save_file
//! save_file(model.state_dict(), "model.safetensors")
//! ```
//!
//! loads into a Burn module with the same structure (the `lstm` field of a Burn module for the
//! `lstm` attribute of the PyTorch one), and [`save_pytorch_safetensors`] writes a file that
//! `model.load_state_dict(safetensors.torch.load_file(...))` accepts.

use std::path::Path;

use burn::store::{ApplyResult, ModuleSnapshot, SafetensorsStore};
use thiserror::Error;

/// A PyTorch weight file could not be read, or did not fit the module.
#[derive(Debug, Error)]
pub enum ImportError {
    /// The file could not be read or written, or a tensor was missing or of the wrong shape.
    #[error("{path}: {message}")]
    Store {
        /// The safetensors file.
        path: String,
        /// What went wrong, from the store.
        message: String,
    },
}

/// A safetensors store that reads PyTorch recurrent-layer names into gatecast's module paths.
pub fn pytorch_load_store(path: impl AsRef<Path>) -> SafetensorsStore {
    SafetensorsStore::from_file(path.as_ref())
        .with_key_remapping(
            r"^(.*?)(weight|bias)_(ih|hh)_l(\d+)_reverse$",
            "${1}layers.${4}.reverse.${2}_${3}",
        )
        .with_key_remapping(
            r"^(.*?)(weight|bias)_(ih|hh)_l(\d+)$",
            "${1}layers.${4}.forward.${2}_${3}",
        )
}

/// A safetensors store that writes gatecast's module paths under PyTorch's names.
pub fn pytorch_save_store(path: impl AsRef<Path>) -> SafetensorsStore {
    SafetensorsStore::from_file(path.as_ref())
        .with_key_remapping(
            r"^(.*?)layers\.(\d+)\.reverse\.(weight|bias)_(ih|hh)$",
            "${1}${3}_${4}_l${2}_reverse",
        )
        .with_key_remapping(
            r"^(.*?)layers\.(\d+)\.forward\.(weight|bias)_(ih|hh)$",
            "${1}${3}_${4}_l${2}",
        )
}

/// Loads a PyTorch state_dict saved as safetensors into `module`.
///
/// Every parameter of `module` must be found in the file with the same shape; tensors in the file
/// that the module does not have (other layers of a bigger PyTorch model) are ignored and listed
/// in the returned [`ApplyResult::unused`].
pub fn load_pytorch_safetensors<M: ModuleSnapshot>(
    module: &mut M,
    path: impl AsRef<Path>,
) -> Result<ApplyResult, ImportError> {
    let path = path.as_ref();
    let fail = |message: String| ImportError::Store {
        path: path.display().to_string(),
        message,
    };
    let mut store = pytorch_load_store(path);
    let result = module
        .load_from(&mut store)
        .map_err(|e| fail(e.to_string()))?;
    if !result.errors.is_empty() {
        return Err(fail(format!("{:?}", result.errors)));
    }
    Ok(result)
}

/// Saves `module`'s parameters as a safetensors file with PyTorch's recurrent-layer names.
pub fn save_pytorch_safetensors<M: ModuleSnapshot>(
    module: &M,
    path: impl AsRef<Path>,
) -> Result<(), ImportError> {
    let path = path.as_ref();
    let mut store = pytorch_save_store(path).overwrite(true);
    module
        .save_into(&mut store)
        .map_err(|e| ImportError::Store {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}
