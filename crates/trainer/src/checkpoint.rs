//! Checkpoints that are never half-written, and finding the last intact one to resume from.
//!
//! Burn's `FileCheckpointer` writes each record straight into its final file, so a process killed
//! mid-write leaves a truncated `model-N.bpk` that panics Burn's `Learner` on `--resume`. Here
//! each record goes to a temporary file first and is renamed into place, so every
//! `checkpoint/{model,optim,scheduler}-N.bpk` on disk is complete; and before resuming, every
//! candidate epoch is loaded and checked, newest first.

use std::path::{Path, PathBuf};

use burn::optim::lr_scheduler::LrSchedulerRecord;
use burn::optim::OptimizerRecord;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};

use crate::artifacts::write_atomic;
use crate::renderer::PendingLines;

/// The three records Burn's learner checkpoints each epoch, by file-name prefix.
pub const PARTS: [&str; 3] = ["model", "optim", "scheduler"];

/// A [`Checkpointer`] writing `<dir>/<name>-<epoch>.bpk` atomically (temporary file, fsync,
/// rename).
pub struct AtomicCheckpointer {
    dir: PathBuf,
    name: String,
    /// Told of every saved epoch, to print its line once all its records are saved.
    announce: Option<PendingLines>,
}

impl AtomicCheckpointer {
    /// Checkpoints named `<name>-<epoch>.bpk` under `dir` (created if missing).
    pub fn new(dir: &Path, name: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            announce: None,
        })
    }

    /// Report each saved epoch to `lines`, which prints an epoch's line once all [`PARTS`] of
    /// it are saved; give the same `lines` to the three checkpointers.
    pub fn announcing(mut self, lines: PendingLines) -> Self {
        self.announce = Some(lines);
        self
    }

    fn path(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("{}-{epoch}.bpk", self.name))
    }
}

impl<R: Checkpoint> Checkpointer<R> for AtomicCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        write_atomic(&self.path(epoch), &bytes)
            .map_err(|e| CheckpointerError::Unknown(format!("{e:#}")))?;
        if let Some(lines) = &self.announce {
            lines.saved(epoch, PARTS.len());
        }
        Ok(())
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        match std::fs::remove_file(self.path(epoch)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(CheckpointerError::IOError(e))
            }
            _ => Ok(()),
        }
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        let bytes = std::fs::read(self.path(epoch)).map_err(CheckpointerError::IOError)?;
        R::checkpoint_from_bytes(Bytes::from_bytes_vec(bytes)).map_err(CheckpointerError::Record)
    }
}

/// Epochs with a `model-N.bpk` under `dir/checkpoint`, newest first.
pub fn checkpoint_epochs(run_dir: &Path) -> Vec<usize> {
    let mut epochs: Vec<usize> = numbered(&run_dir.join("checkpoint"), "model-", ".bpk")
        .into_iter()
        .map(|(epoch, _)| epoch)
        .collect();
    epochs.sort_unstable_by(|a, b| b.cmp(a));
    epochs
}

/// The entries of `dir` named `<prefix><N><suffix>` (`model-3.bpk`, `epoch-3`), as `(N, path)`,
/// in no particular order; none when `dir` cannot be read.
pub(crate) fn numbered(dir: &Path, prefix: &str, suffix: &str) -> Vec<(usize, PathBuf)> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| {
                let e = e.ok()?;
                let name = e.file_name().into_string().ok()?;
                let n = name
                    .strip_prefix(prefix)?
                    .strip_suffix(suffix)?
                    .parse()
                    .ok()?;
                Some((n, e.path()))
            })
            .collect()
        })
        .unwrap_or_default()
}

/// Why epoch `epoch`'s checkpoint cannot be resumed from, or `None` when its three records
/// are present and load.
pub fn damage(run_dir: &Path, epoch: usize) -> Option<String> {
    let dir = run_dir.join("checkpoint");
    for part in PARTS {
        let path = dir.join(format!("{part}-{epoch}.bpk"));
        if !path.exists() {
            return Some(format!("{} is missing", path.display()));
        }
        let loaded = match part {
            "model" => ModuleRecord::load(&path).map(|_| ()),
            "optim" => OptimizerRecord::load(&path).map(|_| ()),
            _ => LrSchedulerRecord::load(&path).map(|_| ()),
        };
        if let Err(e) = loaded {
            return Some(format!("{} is damaged ({e})", path.display()));
        }
    }
    None
}

/// The newest epoch whose checkpoint is complete and loads, with what was wrong with each newer
/// one (skipped).
pub fn last_intact(run_dir: &Path) -> (Option<usize>, Vec<String>) {
    let mut skipped = Vec::new();
    for epoch in checkpoint_epochs(run_dir) {
        match damage(run_dir, epoch) {
            None => return (Some(epoch), skipped),
            Some(why) => skipped.push(why),
        }
    }
    (None, skipped)
}
