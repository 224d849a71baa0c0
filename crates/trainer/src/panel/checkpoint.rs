//! A panel run's per-epoch checkpoints, for `gatecast train --resume`.
//!
//! After every epoch the training loop's whole state goes to `checkpoint/panel-N/`: the
//! training weights and the optimizer's moments (`model.bpk`, `optim.bpk`), the best epoch's
//! inference weights (`best.bpk`), the weight average when there is one (`ema.bpk`), and the
//! counters, early-stopping and plateau state and per-epoch losses (`state.toml`). The files
//! are written and synced in a temporary directory that is then renamed into place, so a
//! `panel-N` on disk is complete; a process killed mid-write leaves only a temporary directory,
//! which the next save or resume removes. The two newest epochs are kept.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use gatecast_model::forecast::GlobalForecaster;
use serde::{Deserialize, Serialize};

use crate::artifacts::write_atomic;
use crate::checkpoint::numbered;
use crate::ema::Ema;
use crate::schedule::ReduceOnPlateau;

const PREFIX: &str = "panel-";

/// Where the training loop stood after an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct FitState {
    /// Epochs finished (1-based: the checkpoint's epoch).
    pub epoch: usize,
    /// Optimizer steps taken (the schedule's position).
    pub step: usize,
    /// Shuffles of the training windows so far (a resumed run replays them to draw the same
    /// batches).
    pub shuffles: usize,
    /// The epoch whose weights are kept (0 before any epoch validated finite).
    pub best_epoch: usize,
    /// Its validation loss.
    pub best_loss: f64,
    /// Updates of the weight average (0 without one).
    pub ema_updates: u64,
    /// Per finished epoch: train loss, validation loss, seconds.
    pub epochs: Vec<(f64, f64, f64)>,
    /// Reduce-on-plateau's state, when set.
    pub plateau: Option<ReduceOnPlateau>,
}

impl FitState {
    /// Whether training ended at this epoch for want of a better validation loss.
    pub fn stopped_early(&self, patience: usize) -> bool {
        self.epoch - self.best_epoch >= patience
    }
}

/// A checkpoint read back into a model of the run's shape.
pub(super) struct Restored {
    /// Its `panel-N` directory.
    pub path: PathBuf,
    pub state: FitState,
    /// The training weights (on the autodiff device).
    pub model: GlobalForecaster,
    pub optim: ModuleOptimizer,
    /// The best epoch's inference weights.
    pub best: GlobalForecaster,
    pub ema: Option<Ema>,
}

fn checkpoint_dir(run: &Path) -> PathBuf {
    run.join("checkpoint")
}

/// `checkpoint/panel-N` directories of `run`, newest first.
pub(super) fn epochs(run: &Path) -> Vec<(usize, PathBuf)> {
    let mut found: Vec<(usize, PathBuf)> = numbered(&checkpoint_dir(run), PREFIX, "")
        .into_iter()
        .filter(|(_, p)| p.is_dir())
        .collect();
    found.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
    found
}

/// Refuses `--resume` for a run directory that holds no panel checkpoint at all, before its
/// other files are compared.
pub(super) fn require_any(run: &Path) -> Result<()> {
    if epochs(run).is_empty() {
        bail!(
            "--resume: no intact checkpoint under {} to resume from{NONE_SAVED}",
            checkpoint_dir(run).display()
        );
    }
    Ok(())
}

const NONE_SAVED: &str = " (the run saved none: it was trained by a gatecast without panel checkpoints, or stopped before its first epoch ended)";

/// Removes every panel checkpoint of `run` (a fresh run in an earlier run's directory), and
/// temporary directories a killed save left.
pub(super) fn clear(run: &Path) -> Result<()> {
    for (_, path) in epochs(run) {
        std::fs::remove_dir_all(&path)
            .with_context(|| format!("cannot remove {} of an earlier run", path.display()))?;
    }
    remove_temporaries(run)
}

fn remove_temporaries(run: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(checkpoint_dir(run)) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!(".{PREFIX}")) && name.contains(".tmp") {
            std::fs::remove_dir_all(e.path())
                .with_context(|| format!("cannot remove {}", e.path().display()))?;
        }
    }
    Ok(())
}

fn module_bytes(module: &GlobalForecaster) -> Result<Bytes> {
    module
        .clone()
        .into_record()
        .into_bytes()
        .context("cannot serialise the model")
}

/// Writes epoch `state.epoch`'s checkpoint and removes those older than the one before it;
/// `average` is the weight average's model, when the run keeps one.
pub(super) fn save(
    run: &Path,
    state: &FitState,
    model: &GlobalForecaster,
    optim: &ModuleOptimizer,
    best: &GlobalForecaster,
    average: Option<&GlobalForecaster>,
) -> Result<()> {
    let dir = checkpoint_dir(run);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = format!("{PREFIX}{}", state.epoch);
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("cannot clear {}", tmp.display()))?;
    }
    std::fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    // Each file synced (`write_atomic`) before the directory is renamed into place.
    write_atomic(&tmp.join("model.bpk"), &module_bytes(model)?)?;
    let optim_bytes = optim
        .to_record()
        .into_bytes()
        .context("cannot serialise the optimizer's state")?;
    write_atomic(&tmp.join("optim.bpk"), &optim_bytes)?;
    write_atomic(&tmp.join("best.bpk"), &module_bytes(best)?)?;
    if let Some(a) = average {
        write_atomic(&tmp.join("ema.bpk"), &module_bytes(a)?)?;
    }
    let text = toml::to_string(state).context("cannot write the training state")?;
    write_atomic(&tmp.join("state.toml"), text.as_bytes())?;
    let target = dir.join(&name);
    if target.exists() {
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("cannot replace {}", target.display()))?;
    }
    std::fs::rename(&tmp, &target)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), target.display()))?;
    for (epoch, path) in epochs(run) {
        if epoch + 1 < state.epoch {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// Reads `path` (a `panel-N` directory) into models made by `fresh` on the training device
/// and on `device`, or says what is missing or damaged.
fn read(
    path: &Path,
    fresh: &dyn Fn(&Device) -> Result<GlobalForecaster>,
    train_device: &Device,
    device: &Device,
    optim: ModuleOptimizer,
    ema_decay: f64,
) -> Result<Restored> {
    let file = |name: &str| path.join(name);
    let text = std::fs::read_to_string(file("state.toml"))
        .with_context(|| format!("cannot read {}", file("state.toml").display()))?;
    let state: FitState = toml::from_str(&text)
        .with_context(|| format!("{} is damaged", file("state.toml").display()))?;
    let load = |name: &str, on: &Device| -> Result<GlobalForecaster> {
        let p = file(name);
        let record =
            ModuleRecord::load(&p).with_context(|| format!("{} is damaged", p.display()))?;
        fresh(on)?
            .try_load_record(record)
            .with_context(|| format!("{} does not fit the run's model", p.display()))
    };
    let model = load("model.bpk", train_device)?;
    let best = load("best.bpk", device)?;
    let p = file("optim.bpk");
    let record =
        OptimizerRecord::load(&p).with_context(|| format!("{} is damaged", p.display()))?;
    let optim = optim.load_record(record);
    let ema = if ema_decay > 0.0 {
        no_average(path, ema_decay)?;
        let average = load("ema.bpk", device)?;
        Some(Ema::starting_at(ema_decay, &average, state.ema_updates))
    } else {
        None
    };
    if state.epochs.len() != state.epoch {
        bail!(
            "{}: {} epochs of losses for epoch {}",
            file("state.toml").display(),
            state.epochs.len(),
            state.epoch
        );
    }
    Ok(Restored {
        path: path.to_path_buf(),
        state,
        model,
        optim,
        best,
        ema,
    })
}

/// Refuses a weight average (`train.ema_decay` > 0) that the run in `path` never kept: a
/// setting that does not fit, not damage, so no earlier checkpoint is tried.
fn no_average(path: &Path, ema_decay: f64) -> Result<()> {
    if ema_decay > 0.0 && !path.join("ema.bpk").exists() {
        bail!(
            "--resume: {} holds no weight average (ema.bpk), and train.ema_decay = {ema_decay}: the run trained without one; resume with its own train.ema_decay",
            path.display()
        );
    }
    Ok(())
}

/// The newest checkpoint of `run` that reads back whole; newer damaged ones are named in a
/// warning and skipped, and removed once an intact one is found (the resumed run writes
/// those epochs again).
pub(super) fn restore(
    run: &Path,
    fresh: &dyn Fn(&Device) -> Result<GlobalForecaster>,
    train_device: &Device,
    device: &Device,
    optim: &dyn Fn() -> ModuleOptimizer,
    ema_decay: f64,
) -> Result<Restored> {
    remove_temporaries(run)?;
    if let Some((_, newest)) = epochs(run).first() {
        no_average(newest, ema_decay)?;
    }
    let mut skipped = Vec::new();
    for (_, path) in epochs(run) {
        match read(&path, fresh, train_device, device, optim(), ema_decay) {
            Ok(r) => {
                for (epoch, newer) in epochs(run) {
                    if epoch > r.state.epoch {
                        std::fs::remove_dir_all(&newer)
                            .with_context(|| format!("cannot remove {}", newer.display()))?;
                    }
                }
                return Ok(r);
            }
            Err(e) => {
                crate::tell!("warning: {e:#}; trying an earlier checkpoint");
                skipped.push(format!("{e:#}"));
            }
        }
    }
    bail!(
        "--resume: no intact checkpoint under {} to resume from{}",
        checkpoint_dir(run).display(),
        if skipped.is_empty() {
            NONE_SAVED.to_string()
        } else {
            format!(" ({})", skipped.join("; "))
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state reads back as written, the plateau detector's counters and an infinite
    /// loss included.
    #[test]
    fn the_state_reads_back_whole() {
        let mut plateau = ReduceOnPlateau::new(0.5, 1, 1e-4, 0.0);
        for loss in [2.0, 2.5, 2.6] {
            plateau.observe(loss, 1e-3);
        }
        let state = FitState {
            epoch: 3,
            step: 90,
            shuffles: 9,
            best_epoch: 1,
            best_loss: 2.0,
            ema_updates: 90,
            epochs: vec![(2.1, 2.0, 0.5), (2.0, 2.5, 0.4), (1.9, f64::INFINITY, 0.4)],
            plateau: Some(plateau),
        };
        let text = toml::to_string(&state).unwrap();
        let back: FitState = toml::from_str(&text).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.plateau.as_ref().unwrap().scale(), 0.5);
        assert!(back.stopped_early(2) && !back.stopped_early(3));
    }
}
