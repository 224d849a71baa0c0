//! `model.auto_norm`: one run per window normalisation, the one with the lowest validation
//! figure kept as the run.

use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;

use super::prepare::Prepared;
use super::train::{train_one, RunReport, TrainOptions};
use crate::artifacts::write_atomic;
use crate::config::{Choice, Experiment, Monitor};

/// A window normalisation `model.auto_norm` tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// The scaled series as it is.
    None,
    /// `model.last_value_norm`.
    LastValue,
    /// `model.revin`.
    Revin,
}

impl Norm {
    /// Every normalisation, in the order they are trained (and preferred on a tie).
    pub const ALL: [Norm; 3] = [Norm::None, Norm::LastValue, Norm::Revin];

    /// Its name on the command line (`--norm`).
    pub fn name(self) -> &'static str {
        match self {
            Norm::None => "none",
            Norm::LastValue => "last-value",
            Norm::Revin => "revin",
        }
    }

    /// `exp` with this normalisation fixed (and `auto_norm` off).
    pub fn apply(self, exp: &Experiment) -> Experiment {
        let mut e = exp.clone();
        e.model.auto_norm = false;
        e.model.last_value_norm = self == Norm::LastValue;
        e.model.revin = self == Norm::Revin;
        e
    }
}

/// One normalisation's run, as `model.auto_norm` compared them.
#[derive(Debug, Clone)]
pub struct NormCandidate {
    /// The normalisation.
    pub norm: Norm,
    /// The kept epoch's validation figure (`train.monitor`); infinite when no epoch had a
    /// finite one.
    pub valid: f64,
    /// The kept epoch.
    pub best_epoch: Option<usize>,
    /// Wall seconds of its training.
    pub seconds: f64,
    /// Whether it became the run.
    pub kept: bool,
}

/// Trains `exp` once per [`Norm`] into `dir/norm/<name>/`, keeps the one whose best epoch has
/// the lowest validation figure (the first on a tie), and moves its artifacts into `dir`, so
/// `dir` is that normalisation's run (its `config.toml` says which). The others stay under
/// `dir/norm/` to be looked at; `dir/norm_choice.csv` lists all of them.
pub(super) fn train_choosing_norm(
    exp: &Experiment,
    p: &Prepared,
    dir: &Path,
    devices: &[Device],
    options: TrainOptions,
) -> Result<RunReport> {
    if options.resume {
        bail!("--resume: model.auto_norm trains three runs and keeps one; resume the kept run, whose config.toml names its normalisation (run without --config, or give --norm)");
    }
    let mut runs = Vec::new();
    for norm in Norm::ALL {
        if !options.quiet {
            crate::sayln!(
                "model.auto_norm: training with normalisation {}",
                norm.name()
            );
        }
        let sub = dir.join("norm").join(norm.name());
        let report = train_one(&norm.apply(exp), p, &sub, devices, options)?;
        let valid = report
            .best_epoch
            .and_then(|b| report.epochs.iter().find(|r| r.epoch == b))
            .map(|r| r.monitored(exp.train.monitor))
            .filter(|v| v.is_finite())
            .unwrap_or(f64::INFINITY);
        runs.push((norm, valid, report));
    }
    let best = (0..runs.len())
        .min_by(|&a, &b| runs[a].1.total_cmp(&runs[b].1))
        .expect("three runs");
    let table: Vec<NormCandidate> = runs
        .iter()
        .enumerate()
        .map(|(i, (norm, valid, r))| NormCandidate {
            norm: *norm,
            valid: *valid,
            best_epoch: r.best_epoch,
            seconds: r.seconds,
            kept: i == best,
        })
        .collect();
    let (norm, _, mut report) = runs.swap_remove(best);
    promote(&dir.join("norm").join(norm.name()), dir)?;
    write_choice(dir, exp, &table)?;
    report.seconds = table.iter().map(|c| c.seconds).sum();
    report.norm_choice = table;
    Ok(report)
}

/// Removes an earlier `model.auto_norm` run's `norm_choice.csv` and `norm/` from `dir`, so a
/// run of one normalisation there is not listed beside runs it did not compare.
pub(super) fn clear_choice(dir: &Path) -> Result<()> {
    let list = dir.join("norm_choice.csv");
    if list.exists() {
        std::fs::remove_file(&list)
            .with_context(|| format!("cannot remove {} of an earlier run", list.display()))?;
    }
    let runs = dir.join("norm");
    if runs.is_dir() {
        std::fs::remove_dir_all(&runs)
            .with_context(|| format!("cannot remove {} of an earlier run", runs.display()))?;
    }
    Ok(())
}

/// Moves every entry of `from` into `to` (replacing what is there) and removes `from`; the
/// weights go last, so a run stopped half-way has no `model.bpk` beside another run's files.
fn promote(from: &Path, to: &Path) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .with_context(|| format!("cannot read {}", from.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name() == "model.bpk");
    for entry in entries {
        let target = to.join(entry.file_name());
        if target.is_dir() {
            std::fs::remove_dir_all(&target)
                .with_context(|| format!("cannot replace {}", target.display()))?;
        }
        std::fs::rename(entry.path(), &target).with_context(|| {
            format!(
                "cannot move {} to {}",
                entry.path().display(),
                target.display()
            )
        })?;
    }
    std::fs::remove_dir(from).with_context(|| format!("cannot remove {}", from.display()))
}

/// `norm_choice.csv`: normalisation, the validation figure compared, the kept epoch, seconds,
/// and which was kept.
fn write_choice(dir: &Path, exp: &Experiment, table: &[NormCandidate]) -> Result<()> {
    let mut text = format!(
        "norm,valid_{},best_epoch,seconds,kept\n",
        exp.train.monitor.name()
    );
    for c in table {
        text.push_str(&format!(
            "{},{},{},{:.1},{}\n",
            c.norm.name(),
            c.valid,
            c.best_epoch.map(|e| e.to_string()).unwrap_or_default(),
            c.seconds,
            c.kept
        ));
    }
    write_atomic(&dir.join("norm_choice.csv"), text.as_bytes())
}

/// One line saying which normalisation was kept and what each scored on validation.
pub fn describe(table: &[NormCandidate], monitor: Monitor) -> String {
    let kept = table.iter().find(|c| c.kept).map(|c| c.norm.name());
    let scores: Vec<String> = table
        .iter()
        .map(|c| format!("{} {:.5}", c.norm.name(), c.valid))
        .collect();
    format!(
        "normalisation chosen on the validation split: {} (validation {}: {})",
        kept.unwrap_or("none"),
        monitor.name(),
        scores.join(", ")
    )
}
