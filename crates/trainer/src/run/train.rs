//! Training a run: check the windows, find where a resumed run continues, train on Burn's
//! Learner, keep the best epoch, then test and write every artifact.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use burn::train::checkpoint::{
    ComposedCheckpointingStrategy, KeepLastNCheckpoints, MetricCheckpointingStrategy,
};
use burn::train::metric::store::{Aggregate, Direction, Split};
use burn::train::metric::LossMetric;
use burn::train::{
    ExecutionStrategy, Interrupter, Learner, MetricEarlyStoppingStrategy, MultiDeviceOptim,
    StoppingCondition, SupervisedTraining,
};
use gatecast_data::{ForecastBatcher, WindowDataset};

use super::budget::{self, Estimate};
use super::build::{build_model, optimizer};
use super::fingerprint::DataFingerprint;
use super::prepare::{prepare, Prepared};
use super::report::{write_report, TestTable};
use super::saved::{check_resumable, load_weights_file, save_model};
use crate::artifacts::write_atomic;
use crate::checkpoint::{checkpoint_epochs, numbered, AtomicCheckpointer, PARTS};
use crate::config::{Experiment, Monitor};
use crate::ema::Ema;
use crate::lr::PlannedLr;
use crate::metrics::{MaeMetric, RmseMetric};
use crate::model::{EmaRun, ForecastModel};
use crate::monitor;
use crate::renderer::{write_epochs, EpochRenderer, EpochRow, PendingLines};
use crate::schedule::ReduceOnPlateau;

/// What a finished run reports.
#[derive(Debug)]
pub struct RunReport {
    /// Per-epoch rows of the whole run (with `--resume`, the earlier epochs too).
    pub epochs: Vec<EpochRow>,
    /// The epoch whose weights were kept as `model.bpk`: the lowest validation loss.
    pub best_epoch: Option<usize>,
    /// The checkpoint this run resumed from.
    pub resumed_from: Option<usize>,
    /// Test metrics of the model and the baselines.
    pub test: TestTable,
    /// Why training stopped early, if it diverged.
    pub diverged: Option<String>,
    /// Wall seconds of the whole run.
    pub seconds: f64,
    /// The first look-back row of every test window, in order.
    pub test_starts: Vec<usize>,
    /// Forecasts of every test window, `[windows, horizon, targets]` row-major, original units.
    pub test_forecasts: Vec<f32>,
    /// The model's prediction intervals (`intervals.toml`), calibrated on the validation split;
    /// `None` when it held no window.
    pub intervals: Option<super::Intervals>,
    /// With `model.auto_norm`: every normalisation tried, the kept one marked (empty otherwise).
    pub norm_choice: Vec<super::NormCandidate>,
}

/// How a run trains, besides its experiment.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainOptions {
    /// Continue the run in its directory from its last intact checkpoint.
    pub resume: bool,
    /// Print no per-epoch lines.
    pub quiet: bool,
    /// With `resume`: go on (with a warning) when the data file differs from the run's record.
    pub allow_changed_data: bool,
}

/// Trains an experiment into `dir` and writes every artifact. With several devices, Burn's
/// multi-device strategy runs one batch per device per step (data parallel, gradients averaged,
/// optimizer on the first device).
pub fn train(
    exp: &Experiment,
    dir: &Path,
    devices: &[Device],
    resume: bool,
    quiet: bool,
) -> Result<RunReport> {
    let options = TrainOptions {
        resume,
        quiet,
        ..TrainOptions::default()
    };
    train_with(exp, dir, devices, options)
}

/// [`train`] with every option.
pub fn train_with(
    exp: &Experiment,
    dir: &Path,
    devices: &[Device],
    options: TrainOptions,
) -> Result<RunReport> {
    let p = prepare(exp)?;
    train_prepared(exp, &p, dir, devices, options)
}

/// [`train`] on data already prepared (the benchmark prepares ETT with the LTSF split itself).
pub fn train_prepared(
    exp: &Experiment,
    p: &Prepared,
    dir: &Path,
    devices: &[Device],
    options: TrainOptions,
) -> Result<RunReport> {
    if exp.model.auto_norm {
        super::choose::train_choosing_norm(exp, p, dir, devices, options)
    } else {
        if !options.resume {
            super::choose::clear_choice(dir)?;
        }
        train_one(exp, p, dir, devices, options)
    }
}

/// One run of `exp` as it is.
pub(super) fn train_one(
    exp: &Experiment,
    p: &Prepared,
    dir: &Path,
    devices: &[Device],
    options: TrainOptions,
) -> Result<RunReport> {
    let start = Instant::now();
    let device = devices.first().context("no device to train on")?;
    if exp.model.cycle > 0 && p.scaled.frequency.is_none() {
        bail!(
            "model.cycle = {}: {}: the cycle's phase is read from the timestamps, and the file has no regular sampling step",
            exp.model.cycle,
            exp.data.path
        );
    }
    let (train_ds, valid_ds) = datasets(exp, p)?;
    // What the run needs, before anything is allocated; config.toml records the batch used.
    let mut exp = exp.clone();
    exp.train.batch_size = budget::batch_size(&exp, train_ds.len());
    let exp = &exp;
    let estimate = Estimate::of(exp, &p.window, exp.train.batch_size);
    budget::check(exp, estimate, budget::limit(exp))?;
    if !options.quiet {
        crate::sayln!(
            "model: {} parameters; about {} to train ({} training windows, batches of {})",
            estimate.params,
            budget::human(estimate.bytes),
            train_ds.len(),
            exp.train.batch_size
        );
    }
    let mut data = DataFingerprint::of(&exp.data.path, &p.raw)?;
    if let Some(t) = p
        .split
        .train
        .end
        .checked_sub(1)
        .map(|r| p.raw.timestamps[r])
    {
        data.trained_until = t.to_string();
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create run directory {}", dir.display()))?;
    let resumed_from = if options.resume {
        let epoch = resume_point(exp, dir)?;
        DataFingerprint::check(dir, &data, options.allow_changed_data, "--resume")?;
        Some(epoch)
    } else {
        None
    };
    if resumed_from.is_none() {
        clear_earlier_training(dir)?;
    }
    let previous = earlier_epochs(dir, resumed_from);
    write_atomic(&dir.join("config.toml"), exp.to_toml().as_bytes())?;
    write_atomic(
        &dir.join("scaler.toml"),
        toml::to_string_pretty(&p.scaler)?.as_bytes(),
    )?;
    data.save(dir)?;
    let session = Session {
        exp,
        p,
        dir,
        devices,
        resumed_from,
        previous,
        quiet: options.quiet,
    };
    let trained = session.learn(train_ds, valid_ds)?;
    let averaged = exp.train.ema_decay > 0.0;
    let (model, best_epoch) = restore_best(
        trained.model,
        &trained.epochs,
        dir,
        exp.train.monitor,
        averaged,
    )?;
    if averaged {
        prune_averages(dir);
    }
    save_model(&model, &dir.join("model.bpk"))?;
    write_epochs(&dir.join("metrics.csv"), &trained.epochs)?;
    let tested = write_report(
        &model,
        p,
        exp,
        dir,
        &trained.epochs,
        &device.clone().inner(),
    )?;
    Ok(RunReport {
        epochs: trained.epochs,
        best_epoch,
        resumed_from,
        test: tested.table,
        diverged: trained.diverged,
        seconds: start.elapsed().as_secs_f64(),
        test_starts: tested.starts,
        test_forecasts: tested.forecasts,
        intervals: tested.intervals,
        norm_choice: Vec::new(),
    })
}

/// The training (strided) and validation windows; an error, before any training, when a split
/// holds no complete window (a run that cannot be validated or tested).
fn datasets(exp: &Experiment, p: &Prepared) -> Result<(WindowDataset, WindowDataset)> {
    let mut train_window = p.window.clone();
    train_window.stride = exp.window.stride;
    let train_ds = WindowDataset::new(p.scaled.clone(), p.split.train.clone(), train_window)?;
    let valid_ds = WindowDataset::new(p.scaled.clone(), p.split.valid.clone(), p.window.clone())?;
    let test_windows =
        WindowDataset::new(p.scaled.clone(), p.split.test.clone(), p.window.clone())?.len();
    let (name, range) = if train_ds.len() == 0 {
        ("training", &p.split.train)
    } else if valid_ds.len() == 0 {
        ("validation", &p.split.valid)
    } else if test_windows == 0 {
        ("test", &p.split.test)
    } else {
        return Ok((train_ds, valid_ds));
    };
    let (option, value) = match exp.data.split_rows {
        Some(r) => ("data.split_rows", format!("{r:?}")),
        None => ("data.split", format!("{:?}", exp.data.split)),
    };
    let need = exp.window.lookback + exp.window.horizon;
    // Kept gaps split the rows into stretches, and no window crosses one: say so where the
    // stretches, not the rows, are too short.
    let longest = p
        .raw
        .segments
        .iter()
        .map(|s| {
            s.end
                .min(range.end)
                .saturating_sub(s.start.max(range.start))
        })
        .max()
        .unwrap_or(0);
    let gaps = if p.raw.segments.len() > 1 && longest < need && longest < range.len() {
        format!(
            "; the longest stretch without a gap in it has {longest} rows (gaps are kept: data.gaps = \"keep\"; --gaps interpolate fills them, and --resample with --aggregate sum counts them as 0)"
        )
    } else {
        String::new()
    };
    bail!(
        "{}: no complete window fits in the {name} split ({} rows of {}, {option} = {value}): window.lookback {} + window.horizon {} needs {need} rows{gaps}; shorten the window or change {option}",
        exp.data.path,
        range.len(),
        p.raw.rows(),
        exp.window.lookback,
        exp.window.horizon,
    )
}

/// `--resume`: the latest intact checkpoint in `dir` (damaged ones are skipped with a warning),
/// once the experiment is known to fit the run's own.
fn resume_point(exp: &Experiment, dir: &Path) -> Result<usize> {
    let (epoch, skipped) = crate::checkpoint::last_intact(dir);
    for why in &skipped {
        crate::tell!("warning: {why}; trying an earlier checkpoint");
    }
    let epoch = epoch.with_context(|| {
        format!(
            "--resume: no intact checkpoint under {}/checkpoint to resume from{}",
            dir.display(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!(" ({})", skipped.join("; "))
            }
        )
    })?;
    check_resumable(exp, dir)?;
    Ok(epoch)
}

/// A fresh run in the directory of an earlier one: removes that run's checkpoints and Burn's
/// per-epoch metric logs. Left in place, Burn's checkpointing would read the earlier run's
/// logged validation losses for epochs this run has not reached, keep the wrong epoch as the
/// best and delete this run's best checkpoint. Only files of those names are removed.
fn clear_earlier_training(dir: &Path) -> Result<()> {
    let ck = dir.join("checkpoint");
    let files = PARTS
        .iter()
        .chain(&["ema"])
        .flat_map(|part| numbered(&ck, &format!("{part}-"), ".bpk"));
    let logs = ["train", "valid"]
        .iter()
        .flat_map(|split| numbered(&dir.join(split), "epoch-", ""));
    for (_, path) in files.chain(logs) {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("cannot remove {} of an earlier run", path.display()))?;
    }
    Ok(())
}

/// Epochs a resumed run already did (metrics.csv is rewritten after every epoch), up to its
/// checkpoint.
fn earlier_epochs(dir: &Path, resumed_from: Option<usize>) -> Vec<EpochRow> {
    match resumed_from {
        Some(epoch) => crate::renderer::read_epochs(&dir.join("metrics.csv"))
            .into_iter()
            .filter(|r| r.epoch <= epoch)
            .collect(),
        None => Vec::new(),
    }
}

/// What one training session on Burn's Learner needs.
struct Session<'a> {
    exp: &'a Experiment,
    p: &'a Prepared,
    dir: &'a Path,
    devices: &'a [Device],
    resumed_from: Option<usize>,
    previous: Vec<EpochRow>,
    quiet: bool,
}

/// What a training session leaves: the model after its last step, every epoch's row, and why it
/// stopped early if it diverged.
struct Trained {
    model: ForecastModel,
    epochs: Vec<EpochRow>,
    diverged: Option<String>,
}

impl Session<'_> {
    /// Trains on Burn's Learner: loaders, the model with its divergence monitor, the renderer,
    /// the schedule, checkpoints and early stopping; data parallel over several devices.
    fn learn(self, train_ds: WindowDataset, valid_ds: WindowDataset) -> Result<Trained> {
        let (exp, t) = (self.exp, &self.exp.train);
        let device = &self.devices[0];
        let per_epoch = train_ds.len().div_ceil(t.batch_size);
        let batcher = ForecastBatcher::new(&self.p.window);
        device.seed(t.seed);
        let train_loader = DataLoaderBuilder::new(batcher.clone())
            .batch_size(t.batch_size)
            .shuffle(t.seed)
            .set_device(device.clone().autodiff())
            .build(train_ds);
        let valid_loader = DataLoaderBuilder::new(batcher)
            .batch_size(256)
            .set_device(device.clone())
            .build(valid_ds);
        let interrupter = Interrupter::new();
        let mon = monitor::shared(interrupter.clone());
        let model = build_model(
            exp,
            &self.p.window,
            &device.clone().autodiff(),
            Some(mon.clone()),
        )?;
        let ema = self.ema_run(&model, per_epoch)?;
        let model = model.with_devices(self.devices.len()).with_ema(ema);
        let rows = Arc::new(Mutex::new(Vec::new()));
        let lines = PendingLines::default();
        let renderer = self
            .renderer(rows.clone(), mon.clone(), &interrupter)
            .with_pending(lines.clone());
        let scheduler = PlannedLr::new(
            exp.schedule(),
            t.lr,
            t.epochs * per_epoch,
            per_epoch,
            mon.clone(),
        );
        let training = SupervisedTraining::new(self.dir, train_loader, valid_loader);
        let training = self
            .configure(training, lines)?
            .renderer(Box::new(renderer))
            .with_interrupter(interrupter);
        let result = training.launch(Learner::new(model, optimizer(exp), scheduler));
        if let Some(err) = &result.error {
            bail!("training failed: {err:?}");
        }
        let diverged = mon.lock().expect("monitor").diverged.clone();
        let epochs = self
            .previous
            .into_iter()
            .chain(rows.lock().expect("rows").iter().cloned())
            .collect();
        Ok(Trained {
            model: result.model,
            epochs,
            diverged,
        })
    }

    /// The weight average of `train.ema_decay` (none at 0); a resumed run continues the average
    /// saved with its checkpoint.
    fn ema_run(&self, model: &ForecastModel, per_epoch: usize) -> Result<Option<EmaRun>> {
        let decay = self.exp.train.ema_decay;
        if decay == 0.0 {
            return Ok(None);
        }
        if self.devices.len() > 1 {
            bail!("train.ema_decay = {decay}: the weight average is not available when training on several devices yet; train on one device or set train.ema_decay = 0");
        }
        let dir = self.dir.join("checkpoint");
        let ema = match self.resumed_from {
            None => Ema::new(decay),
            Some(k) => {
                let path = EmaRun::path(&dir, k);
                let saved = load_weights_file(&path, model.clone()).with_context(|| {
                    format!(
                        "--resume with train.ema_decay = {decay}: the weight average of epoch {k}"
                    )
                })?;
                Ema::starting_at(decay, &saved, (k * per_epoch) as u64)
            }
        };
        Ok(Some(EmaRun {
            ema: Arc::new(Mutex::new(ema)),
            per_epoch,
            dir,
        }))
    }

    /// One line per epoch (and `metrics.csv`), with reduce-on-plateau; Burn's TUI in front of it
    /// when standard output is a terminal.
    fn renderer(
        &self,
        rows: Arc<Mutex<Vec<EpochRow>>>,
        mon: monitor::SharedMonitor,
        interrupter: &Interrupter,
    ) -> EpochRenderer {
        let t = &self.exp.train;
        let plateau = (t.plateau_patience > 0)
            .then(|| ReduceOnPlateau::new(t.plateau_factor, t.plateau_patience, 1e-4, 0.0));
        let renderer = EpochRenderer::new(rows, mon, plateau, t.lr, self.quiet)
            .watching(t.monitor)
            .with_journal(self.dir.join("metrics.csv"), self.previous.clone());
        if !self.quiet && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            // Burn's TUI owns the terminal; our renderer still records every epoch.
            return renderer.with_inner(burn::train::renderer::default_renderer(
                interrupter.clone(),
                self.resumed_from,
            ));
        }
        renderer
    }

    /// Metrics, atomic checkpoints, early stopping on the validation loss, the epoch budget,
    /// where a resumed run continues, and the multi-device strategy.
    fn configure(
        &self,
        training: SupervisedTraining<ForecastModel>,
        lines: PendingLines,
    ) -> Result<SupervisedTraining<ForecastModel>> {
        let t = &self.exp.train;
        let ck = self.dir.join("checkpoint");
        let mut training = training
            .metric_train_numeric(LossMetric::new())
            .metric_valid_numeric(LossMetric::new())
            .metric_train_numeric(MaeMetric::new())
            .metric_valid_numeric(MaeMetric::new())
            .metric_valid_numeric(RmseMetric::new())
            .with_custom_checkpointers(
                AtomicCheckpointer::new(&ck, "model")?.announcing(lines.clone()),
                AtomicCheckpointer::new(&ck, "optim")?.announcing(lines.clone()),
                AtomicCheckpointer::new(&ck, "scheduler")?.announcing(lines),
            )
            .with_application_logger(None)
            .num_epochs(t.epochs);
        // Early stopping and the checkpoint kept as the best both follow `train.monitor`.
        training = match t.monitor {
            Monitor::Loss => watch(training, &LossMetric::new(), t.patience),
            Monitor::Mse => watch(training, &RmseMetric::new(), t.patience),
            Monitor::Mae => watch(training, &MaeMetric::new(), t.patience),
        };
        if let Some(epoch) = self.resumed_from {
            training = training.checkpoint(epoch);
        }
        if self.devices.len() > 1 {
            let all = self.devices.iter().map(|d| d.clone().autodiff()).collect();
            training = training.with_training_strategy(
                ExecutionStrategy::multi(all, MultiDeviceOptim::OptimMainDevice).into(),
            );
        }
        Ok(training)
    }
}

/// Early stopping after `patience` epochs without a lower validation `metric`, and Burn's
/// checkpointing keeping the last two epochs and the one with the lowest `metric` (its default
/// keeps the lowest loss, which need not be the epoch [`restore_best`] picks).
fn watch<M: burn::train::metric::Metric + 'static>(
    training: SupervisedTraining<ForecastModel>,
    metric: &M,
    patience: usize,
) -> SupervisedTraining<ForecastModel> {
    training
        .early_stopping(MetricEarlyStoppingStrategy::new(
            metric,
            Aggregate::Mean,
            Direction::Lowest,
            Split::Valid,
            StoppingCondition::NoImprovementSince { n_epochs: patience },
        ))
        .with_checkpointing_strategy(
            ComposedCheckpointingStrategy::builder()
                .add(KeepLastNCheckpoints::new(2))
                .add(MetricCheckpointingStrategy::new(
                    metric,
                    Aggregate::Mean,
                    Direction::Lowest,
                    Split::Valid,
                ))
                .build(),
        )
}

/// The weights of the epoch with the lowest validation `monitor` (its checkpoint is kept by Burn's
/// checkpointing strategy), like Keras' `restore_best_weights`: after early stopping or
/// divergence that is not the last epoch. Always from the checkpoint: a run stopped mid-epoch
/// (divergence) has moved on from the last finished epoch. With `averaged` (`train.ema_decay`)
/// the epoch's weight average, which is what was validated. A missing file is an error: the
/// weights at hand would be another model than the one reported as kept.
fn restore_best(
    mut model: ForecastModel,
    epochs: &[EpochRow],
    dir: &Path,
    monitor: Monitor,
    averaged: bool,
) -> Result<(ForecastModel, Option<usize>)> {
    let read = |r: &EpochRow| r.monitored(monitor);
    let best = epochs
        .iter()
        .filter(|r| read(r).is_finite())
        .min_by(|a, b| read(a).total_cmp(&read(b)))
        .map(|r| r.epoch);
    model = model.with_ema(None);
    if let Some(b) = best {
        let ck = dir.join("checkpoint");
        let (path, what) = if averaged {
            (EmaRun::path(&ck, b), "weight average")
        } else {
            (ck.join(format!("model-{b}.bpk")), "checkpoint")
        };
        model = load_weights_file(&path, model)
            .with_context(|| format!("the {what} of the best epoch ({b})"))?;
    }
    Ok((model, best))
}

/// Removes the weight averages of epochs whose checkpoint Burn has deleted (a resume can only
/// start from a checkpointed epoch, and the best epoch keeps its checkpoint).
fn prune_averages(dir: &Path) {
    let kept = checkpoint_epochs(dir);
    for (epoch, path) in numbered(&dir.join("checkpoint"), "ema-", ".bpk") {
        if !kept.contains(&epoch) {
            let _ = std::fs::remove_file(path);
        }
    }
}
