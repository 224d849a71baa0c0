//! A run directory on disk: the model's weights, the experiment and scaler a later `evaluate`,
//! `forecast` or `--resume` reads back, and the checks that they still fit together.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use gatecast_data::{Scaler, WindowConfig};

use super::build::build_model;
use crate::config::Experiment;
use crate::model::ForecastModel;

/// The latest epoch with a saved model checkpoint in `dir` (intact or not; see
/// [`crate::checkpoint::last_intact`]).
pub fn last_checkpoint(dir: &Path) -> Option<usize> {
    crate::checkpoint::checkpoint_epochs(dir).first().copied()
}

/// `--resume` may change how long and how fast the run trains (epochs, learning rate, schedule,
/// clipping, patience), not what it trains: the model, the window, the columns or the optimizer
/// (whose saved state would not fit).
pub(crate) fn check_resumable(exp: &Experiment, dir: &Path) -> Result<()> {
    let path = dir.join("config.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let saved =
        Experiment::from_toml(&text, &path.display().to_string()).map_err(anyhow::Error::msg)?;
    let mut changed = Vec::new();
    if saved.model != exp.model {
        changed.push("[model]");
    }
    if (saved.window.lookback, saved.window.horizon) != (exp.window.lookback, exp.window.horizon) {
        changed.push("window.lookback/horizon");
    }
    let d = (
        &exp.data.targets,
        &exp.data.covariates,
        &exp.data.future_covariates,
        &exp.data.calendar,
    );
    if (
        &saved.data.targets,
        &saved.data.covariates,
        &saved.data.future_covariates,
        &saved.data.calendar,
    ) != d
    {
        changed.push("data.targets/covariates/future_covariates/calendar");
    }
    if saved.train.optimizer != exp.train.optimizer {
        changed.push("train.optimizer");
    }
    if !changed.is_empty() {
        bail!(
            "--resume: {} differ from the run's {}; resume with the run's own settings (no --config) or start a new run with another --out",
            changed.join(", "),
            path.display()
        );
    }
    Ok(())
}

/// Writes a model's weights to `path` atomically (a temporary file, then rename).
pub(crate) fn save_model<M: Module + Clone>(model: &M, path: &Path) -> Result<()> {
    let tmp = path.with_extension(format!("bpk.tmp{}", std::process::id()));
    model
        .clone()
        .save_file(&tmp)
        .with_context(|| format!("saving {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
}

/// The run's saved model.
pub fn load_model(
    dir: &Path,
    exp: &Experiment,
    window: &WindowConfig,
    device: &Device,
) -> Result<ForecastModel> {
    load_weights(dir, build_model(exp, window, device, None)?)
}

/// `model` with the weights of the run's `model.bpk`; an error names the first tensor that
/// does not fit.
pub(crate) fn load_weights<M: Module>(dir: &Path, model: M) -> Result<M> {
    let path: PathBuf = dir.join("model.bpk");
    let checkpointed =
        std::fs::read_dir(dir.join("checkpoint")).is_ok_and(|mut entries| entries.next().is_some());
    if !path.exists() && checkpointed {
        bail!(
            "{}: no model.bpk: the run stopped before it finished training (it has checkpoints); `gatecast train --out {} --resume` finishes it",
            dir.display(),
            dir.display()
        );
    }
    load_weights_file(&path, model)
}

/// `model` with the weights saved in `path` (`model.bpk`, a checkpoint, an epoch's average).
pub(crate) fn load_weights_file<M: Module>(path: &Path, model: M) -> Result<M> {
    let record = burn::store::ModuleRecord::load(path).map_err(|e| {
        // The message alone: Burn's Debug form quotes it inside `Io("...")`.
        let (burn::store::RecordError::Io(why) | burn::store::RecordError::Validation(why)) = e;
        anyhow::anyhow!("{}: cannot read the model: {why}", path.display())
    })?;
    model.try_load_record(record).map_err(|e| {
        // Burn lists every mismatching tensor (Debug-quoted); the first says enough.
        let detail = format!("{e:?}").replace("\\\"", "'");
        let first = detail
            .split("['")
            .nth(1)
            .and_then(|x| x.split('\'').next())
            .unwrap_or(&detail)
            .to_string();
        anyhow::anyhow!(
            "{}: the weights do not fit the model in config.toml (was it edited?): {first}",
            path.display()
        )
    })
}

/// The experiment of the run in `dir` (its `config.toml`).
pub fn read_config(dir: &Path) -> Result<Experiment> {
    let config_path = dir.join("config.toml");
    let text = std::fs::read_to_string(&config_path).with_context(|| {
        format!(
            "{} is not a gatecast run directory (no config.toml)",
            dir.display()
        )
    })?;
    Experiment::from_toml(&text, &config_path.display().to_string()).map_err(anyhow::Error::msg)
}

pub(super) fn read_run(dir: &Path) -> Result<(Experiment, Scaler)> {
    let exp = read_config(dir)?;
    if exp.is_panel() {
        bail!(
            "{} is a panel run (data.id_column): read it with gatecast_trainer::panel::evaluate_run and forecast_run",
            dir.display()
        );
    }
    let scaler_path = dir.join("scaler.toml");
    let scaler: Scaler = toml::from_str(
        &std::fs::read_to_string(&scaler_path)
            .with_context(|| format!("cannot read {}", scaler_path.display()))?,
    )
    .with_context(|| format!("{}: not a scaler", scaler_path.display()))?;
    Ok((exp, scaler))
}
