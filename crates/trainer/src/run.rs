//! Training, evaluation and their artifacts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::Device;
use burn::train::metric::store::{Aggregate, Direction, Split};
use burn::train::metric::LossMetric;
use burn::train::{
    ExecutionStrategy, Interrupter, Learner, MetricEarlyStoppingStrategy, MultiDeviceOptim,
    StoppingCondition, SupervisedTraining,
};
use gatecast_data::{
    add_calendar, load_csv, metrics, Baseline, CsvOptions, ForecastBatcher, Scaler, Series,
    TimeSplit, WindowConfig, WindowDataset,
};
use gatecast_model::{ForecasterConfig, SegNorm, SegRnnConfig};

use crate::artifacts::{write_atomic, write_csv};
use crate::checkpoint::AtomicCheckpointer;
use crate::config::{calendar_feature, Experiment};
use crate::lr::PlannedLr;
use crate::metrics::{MaeMetric, RmseMetric};
use crate::model::{Clip, ForecastModel, Net};
use crate::monitor;
use crate::renderer::{write_epochs, EpochRenderer, EpochRow};
use crate::schedule::ReduceOnPlateau;

/// The cleaned, split and scaled data of an experiment.
pub struct Prepared {
    /// The series in original units, calendar columns appended.
    pub raw: Series,
    /// The same, scaled by `scaler`.
    pub scaled: Arc<Series>,
    /// Fitted on the training rows only.
    pub scaler: Scaler,
    /// Row ranges.
    pub split: TimeSplit,
    /// Window columns.
    pub window: WindowConfig,
    /// Column index of each target.
    pub targets: Vec<usize>,
}

/// The value columns (targets, then covariates) and the loader options of `[data]`.
fn csv_options(d: &crate::config::DataConfig) -> (Vec<String>, CsvOptions) {
    let mut columns = d.targets.clone();
    for c in &d.covariates {
        if !columns.contains(c) {
            columns.push(c.clone());
        }
    }
    let options = CsvOptions {
        time_column: d.time_column.clone(),
        time_format: (!d.time_format.is_empty()).then(|| d.time_format.clone()),
        columns: Some(columns.clone()),
        id_column: None,
        delimiter: d.delimiter_byte().unwrap_or(b','),
        missing: d.missing,
        duplicates: d.duplicates,
        gaps: d.gaps,
        frequency: None,
    };
    (columns, options)
}

/// `load_csv`, with an unknown column blamed on the option that named it.
fn load(
    path: impl AsRef<Path>,
    options: &CsvOptions,
    d: &crate::config::DataConfig,
) -> Result<Series> {
    load_csv(path, options).map_err(|e| match e {
        gatecast_data::DataError::UnknownColumn {
            path,
            column,
            option,
            available,
        } => anyhow::Error::new(gatecast_data::DataError::UnknownColumn {
            option: if option == "time column" {
                "data.time_column".into()
            } else if d.targets.contains(&column) {
                "data.targets".into()
            } else {
                "data.covariates".into()
            },
            path,
            column,
            available,
        }),
        e => e.into(),
    })
}

/// Loads, validates, adds calendar covariates, splits and scales the experiment's data.
pub fn prepare(exp: &Experiment) -> Result<Prepared> {
    let d = &exp.data;
    let (columns, options) = csv_options(d);
    let mut raw = load(&d.path, &options, d)?;
    if !d.resample.is_empty() {
        let every = gatecast_data::parse_frequency(&d.resample)?;
        raw = gatecast_data::resample(&raw, every, d.aggregate)?;
    }
    let calendar: Vec<_> = d
        .calendar
        .iter()
        .filter_map(|c| calendar_feature(c))
        .collect();
    let future = add_calendar(&mut raw, &calendar);
    let lookback = exp.window.lookback;
    let split = TimeSplit::by_ratios(raw.rows(), (d.split[0], d.split[1], d.split[2]), lookback)
        .with_context(|| {
            format!(
                "{}: {} rows, data.split = {:?} with window.lookback = {lookback}",
                d.path,
                raw.rows(),
                d.split
            )
        })?;
    let scaler = Scaler::fit(d.scaler, &raw, split.train.clone());
    let scaled = Arc::new(scaler.transform(&raw));
    let mut inputs = columns;
    inputs.extend(future.iter().cloned());
    let mut window = WindowConfig::new(lookback, exp.window.horizon, inputs, d.targets.clone());
    window.future = future;
    let targets = raw.column_indices(&d.targets, "data.targets")?;
    Ok(Prepared {
        raw,
        scaled,
        scaler,
        split,
        window,
        targets,
    })
}

/// Builds the model of an experiment for `prepared` data.
pub fn build_model(
    exp: &Experiment,
    window: &WindowConfig,
    device: &Device,
    monitor: Option<monitor::SharedMonitor>,
) -> Result<ForecastModel> {
    let m = &exp.model;
    let net = if m.is_segrnn() {
        let norm = if m.revin {
            SegNorm::RevIn
        } else if m.last_value_norm {
            SegNorm::LastValue
        } else {
            SegNorm::None
        };
        if !window.future.is_empty() {
            bail!("model.cell = segrnn takes no known-future covariates (data.calendar)");
        }
        Net::Segment(
            SegRnnConfig::new(window.lookback, exp.window.horizon, window.inputs.len())
                .with_segment(m.segment)
                .with_hidden_size(m.hidden_size)
                .with_dropout(m.dropout)
                .with_norm(norm)
                .try_init(device)?,
        )
    } else {
        let cell = m.cell_type().map_err(anyhow::Error::msg)?;
        Net::Recurrent(
            ForecasterConfig::new(
                cell,
                window.inputs.len(),
                m.hidden_size,
                exp.window.horizon,
                window.targets.len(),
            )
            .with_future_size(window.future.len())
            .with_num_layers(m.num_layers)
            .with_dropout(m.dropout)
            .with_bidirectional(m.bidirectional)
            .with_autoregressive(m.decoder == "autoregressive")
            .with_last_value_norm(m.last_value_norm)
            .try_init(device)?,
        )
    };
    let clip = match exp.train.clip.as_str() {
        "global_norm" => Clip::GlobalNorm(exp.train.clip_value),
        "norm" => Clip::PerTensorNorm(exp.train.clip_value),
        "value" => Clip::Value(exp.train.clip_value),
        _ => Clip::None,
    };
    Ok(ForecastModel::new(net, window.targets.len(), clip, monitor)
        .with_l1_loss(exp.train.loss == "mae"))
}

fn optimizer(exp: &Experiment) -> ModuleOptimizer {
    let t = &exp.train;
    let clipping = match t.clip.as_str() {
        "norm" => Some(GradientClippingConfig::Norm(t.clip_value as f32)),
        "value" => Some(GradientClippingConfig::Value(t.clip_value as f32)),
        _ => None,
    };
    let decay = (t.weight_decay > 0.0).then(|| WeightDecayConfig::new(t.weight_decay as f32));
    match t.optimizer.as_str() {
        "adamw" => AdamWConfig::new()
            .with_weight_decay(t.weight_decay as f32)
            .with_grad_clipping(clipping)
            .init(),
        "sgd" => SgdConfig::new()
            .with_weight_decay(decay)
            .with_momentum(Some(MomentumConfig::new().with_momentum(t.momentum)))
            .with_gradient_clipping(clipping)
            .init(),
        _ => AdamConfig::new()
            .with_weight_decay(decay)
            .with_grad_clipping(clipping)
            .init(),
    }
}

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
}

/// The latest epoch with a saved model checkpoint in `dir` (intact or not; see
/// [`crate::checkpoint::last_intact`]).
pub fn last_checkpoint(dir: &Path) -> Option<usize> {
    crate::checkpoint::checkpoint_epochs(dir).first().copied()
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
    let p = prepare(exp)?;
    train_prepared(exp, &p, dir, devices, resume, quiet)
}

/// [`train`] on data already prepared (the benchmark prepares ETT with the LTSF split itself).
pub fn train_prepared(
    exp: &Experiment,
    p: &Prepared,
    dir: &Path,
    devices: &[Device],
    resume: bool,
    quiet: bool,
) -> Result<RunReport> {
    let start = Instant::now();
    let device = devices.first().context("no device to train on")?;
    let t = &exp.train;
    let mut train_window = p.window.clone();
    train_window.stride = exp.window.stride;
    let train_ds = WindowDataset::new(p.scaled.clone(), p.split.train.clone(), train_window)?;
    let valid_ds = WindowDataset::new(p.scaled.clone(), p.split.valid.clone(), p.window.clone())?;
    // Checked before training, so no time is spent on a run that cannot be tested.
    let test_windows =
        WindowDataset::new(p.scaled.clone(), p.split.test.clone(), p.window.clone())?.len();
    if train_ds.len() == 0 || valid_ds.len() == 0 || test_windows == 0 {
        let (name, rows) = if train_ds.len() == 0 {
            ("training", p.split.train.len())
        } else if valid_ds.len() == 0 {
            ("validation", p.split.valid.len())
        } else {
            ("test", p.split.test.len())
        };
        bail!(
            "{}: no complete window fits in the {name} split ({rows} rows of {}, data.split = {:?}): window.lookback {} + window.horizon {} needs {} rows; shorten the window or change data.split",
            exp.data.path,
            p.raw.rows(),
            exp.data.split,
            exp.window.lookback,
            exp.window.horizon,
            exp.window.lookback + exp.window.horizon
        );
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create run directory {}", dir.display()))?;
    let resume_from = if resume {
        let (epoch, skipped) = crate::checkpoint::last_intact(dir);
        for why in &skipped {
            eprintln!("warning: {why}; trying an earlier checkpoint");
        }
        Some(epoch.with_context(|| {
            format!(
                "--resume: no intact checkpoint under {}/checkpoint to resume from{}",
                dir.display(),
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", skipped.join("; "))
                }
            )
        })?)
    } else {
        None
    };
    if resume {
        check_resumable(exp, dir)?;
    }
    // Epochs already done (metrics.csv is rewritten after every epoch), up to the checkpoint.
    let previous: Vec<EpochRow> = match resume_from {
        Some(epoch) => crate::renderer::read_epochs(&dir.join("metrics.csv"))
            .into_iter()
            .filter(|r| r.epoch <= epoch)
            .collect(),
        None => Vec::new(),
    };
    write_atomic(&dir.join("config.toml"), exp.to_toml().as_bytes())?;
    write_atomic(
        &dir.join("scaler.toml"),
        toml::to_string_pretty(&p.scaler)?.as_bytes(),
    )?;

    let per_epoch = train_ds.len().div_ceil(t.batch_size);
    let batcher = ForecastBatcher::new(&p.window);
    device.seed(t.seed);
    let train_loader = DataLoaderBuilder::new(batcher.clone())
        .batch_size(t.batch_size)
        .shuffle(t.seed)
        .set_device(device.clone().autodiff())
        .build(train_ds);
    let valid_loader = DataLoaderBuilder::new(batcher.clone())
        .batch_size(256)
        .set_device(device.clone())
        .build(valid_ds);

    let interrupter = Interrupter::new();
    let mon = monitor::shared(interrupter.clone());
    let model = build_model(
        exp,
        &p.window,
        &device.clone().autodiff(),
        Some(mon.clone()),
    )?
    .with_devices(devices.len());
    let rows = Arc::new(Mutex::new(Vec::new()));
    let plateau = (t.plateau_patience > 0)
        .then(|| ReduceOnPlateau::new(t.plateau_factor, t.plateau_patience, 1e-4, 0.0));
    let mut renderer = EpochRenderer::new(rows.clone(), mon.clone(), plateau, t.lr, quiet)
        .with_journal(dir.join("metrics.csv"), previous.clone());
    if !quiet && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        // Burn's TUI owns the terminal; our renderer still records every epoch.
        renderer = renderer.with_inner(burn::train::renderer::default_renderer(
            interrupter.clone(),
            resume_from,
        ));
    }
    let scheduler = PlannedLr::new(
        t.schedule.clone(),
        t.lr,
        t.epochs * per_epoch,
        per_epoch,
        mon.clone(),
    );

    let ck = dir.join("checkpoint");
    let mut training = SupervisedTraining::new(dir, train_loader, valid_loader)
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_train_numeric(MaeMetric::new())
        .metric_valid_numeric(MaeMetric::new())
        .metric_valid_numeric(RmseMetric::new())
        .with_custom_checkpointers(
            AtomicCheckpointer::new(&ck, "model")?,
            AtomicCheckpointer::new(&ck, "optim")?,
            AtomicCheckpointer::new(&ck, "scheduler")?,
        )
        .early_stopping(MetricEarlyStoppingStrategy::new(
            &LossMetric::new(),
            Aggregate::Mean,
            Direction::Lowest,
            Split::Valid,
            StoppingCondition::NoImprovementSince {
                n_epochs: t.patience,
            },
        ))
        .renderer(Box::new(renderer))
        .with_interrupter(interrupter)
        .with_application_logger(None)
        .num_epochs(t.epochs);
    if let Some(epoch) = resume_from {
        training = training.checkpoint(epoch);
    }
    if devices.len() > 1 {
        let all = devices.iter().map(|d| d.clone().autodiff()).collect();
        training = training.with_training_strategy(
            ExecutionStrategy::multi(all, MultiDeviceOptim::OptimMainDevice).into(),
        );
    }
    let result = training.launch(Learner::new(model, optimizer(exp), scheduler));
    if let Some(err) = &result.error {
        bail!("training failed: {err:?}");
    }
    let diverged = mon.lock().expect("monitor").diverged.clone();
    let epochs: Vec<EpochRow> = previous
        .into_iter()
        .chain(rows.lock().expect("rows").iter().cloned())
        .collect();

    // Keep the epoch with the lowest validation loss (Burn's checkpointing strategy keeps its
    // checkpoint), like Keras' `restore_best_weights`: after early stopping or divergence that
    // is not the last epoch.
    let mut model = result.model;
    let best = epochs
        .iter()
        .filter(|r| r.valid_loss.is_finite())
        .min_by(|a, b| a.valid_loss.total_cmp(&b.valid_loss))
        .map(|r| r.epoch);
    // Always from the checkpoint: a run stopped mid-epoch (divergence) has moved on from the
    // last finished epoch.
    if let Some(b) = best {
        let path = ck.join(format!("model-{b}.bpk"));
        if let Ok(record) = burn::store::ModuleRecord::load(&path) {
            model = model
                .try_load_record(record)
                .map_err(|e| anyhow::anyhow!("{}: {e:?}", path.display()))?;
        }
    }
    save_model(&model, &dir.join("model.bpk"))?;
    write_epochs(&dir.join("metrics.csv"), &epochs)?;
    // One inference pass over the test split feeds the table, forecast.csv and the plot.
    let (test_starts, test_forecasts) = test_forecasts(&model, p, &device.clone().inner())?;
    let test = test_table(p, exp, &test_starts, &test_forecasts);
    test.write(dir)?;
    let (actual, forecast) = write_forecasts(
        &dir.join("forecast.csv"),
        p,
        exp,
        &test_starts,
        &test_forecasts,
    )?;
    crate::plots::loss_curves(&dir.join("loss.png"), &epochs)?;
    let keep = (10 * exp.window.horizon).min(actual.len());
    crate::plots::forecast_vs_actual(
        &dir.join("forecast.png"),
        &format!(
            "{}: forecast vs actual, end of the test split",
            exp.data.targets[0]
        ),
        &actual[actual.len() - keep..],
        &forecast[forecast.len() - keep..],
        exp.window.horizon,
    )?;
    Ok(RunReport {
        epochs,
        best_epoch: best,
        resumed_from: resume_from,
        test,
        diverged,
        seconds: start.elapsed().as_secs_f64(),
        test_starts,
        test_forecasts,
    })
}

/// One row of the test table: a forecaster and its errors in original units.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRow {
    /// `model (lstm)`, `naive`, `seasonal_naive(24)`.
    pub name: String,
    /// Mean squared error.
    pub mse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Symmetric MAPE, percent.
    pub smape: f64,
    /// Mean absolute scaled error against the in-sample seasonal naive of the training split.
    pub mase: f64,
}

/// The test table.
#[derive(Debug, Clone, PartialEq)]
pub struct TestTable {
    /// Number of test windows.
    pub windows: usize,
    /// Model first, then baselines.
    pub rows: Vec<TestRow>,
}

impl TestTable {
    /// The table as markdown.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "test split: {} windows, errors in original units\n\n| forecaster | MSE | MAE | RMSE | sMAPE % | MASE |\n|---|---|---|---|---|---|\n",
            self.windows
        );
        for r in &self.rows {
            let mase = if r.mase.is_finite() {
                format!("{:.4}", r.mase)
            } else {
                "n/a".into()
            };
            s += &format!(
                "| {} | {:.4} | {:.4} | {:.4} | {:.2} | {mase} |\n",
                r.name, r.mse, r.mae, r.rmse, r.smape
            );
        }
        s
    }

    fn write(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join("test_metrics.md"), self.markdown().as_bytes())?;
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.mse.to_string(),
                    r.mae.to_string(),
                    r.rmse.to_string(),
                    r.smape.to_string(),
                    r.mase.to_string(),
                ]
            })
            .collect();
        write_csv(
            &dir.join("test_metrics.csv"),
            &["forecaster", "mse", "mae", "rmse", "smape", "mase"],
            &rows,
        )
    }
}

/// Forecasts of every test window in original units: (window start rows, `[windows, horizon,
/// targets]` forecasts).
fn test_forecasts(
    model: &ForecastModel,
    p: &Prepared,
    device: &Device,
) -> Result<(Vec<usize>, Vec<f32>)> {
    let ds = WindowDataset::new(p.scaled.clone(), p.split.test.clone(), p.window.clone())?;
    let batcher = ForecastBatcher::new(&p.window);
    let (h, nt) = (p.window.horizon, p.targets.len());
    let mut starts = Vec::with_capacity(ds.len());
    let mut out = Vec::with_capacity(ds.len() * h * nt);
    let model = model.valid();
    for first in (0..ds.len()).step_by(256) {
        let items: Vec<_> = (first..(first + 256).min(ds.len()))
            .map(|i| ds.get(i))
            .collect::<std::result::Result<_, _>>()?;
        starts.extend(items.iter().map(|w| w.start));
        let batch = batcher.batch(items, device);
        let pred = model.predict(batch.inputs, batch.future);
        let mut v = pred
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        // Back to original units, target by target.
        for (k, &col) in p.targets.iter().enumerate() {
            let mut column: Vec<f32> = v.iter().skip(k).step_by(nt).copied().collect();
            p.scaler.inverse(col, &mut column);
            for (i, x) in column.into_iter().enumerate() {
                v[i * nt + k] = x;
            }
        }
        out.extend(v);
    }
    Ok((starts, out))
}

/// Test metrics of the model beside the naive and seasonal-naive baselines, in original units.
pub fn evaluate_model(
    model: &ForecastModel,
    p: &Prepared,
    exp: &Experiment,
    device: &Device,
) -> Result<TestTable> {
    let (starts, forecasts) = test_forecasts(model, p, device)?;
    Ok(test_table(p, exp, &starts, &forecasts))
}

/// The test table from forecasts of every test window (original units).
fn test_table(p: &Prepared, exp: &Experiment, starts: &[usize], forecasts: &[f32]) -> TestTable {
    let (l, h, nt) = (p.window.lookback, p.window.horizon, p.targets.len());
    let season = exp.data.season;
    // Repeat-last, then seasonal naive for every period the look-back covers.
    let mut baselines = vec![Baseline::RepeatLast];
    for m in std::iter::once(season).chain(exp.data.baseline_seasons.iter().copied()) {
        if l >= m && !baselines.contains(&Baseline::SeasonalNaive(m)) {
            baselines.push(Baseline::SeasonalNaive(m));
        }
    }
    let mut actual = Vec::with_capacity(forecasts.len());
    let mut baseline_forecasts = vec![Vec::with_capacity(forecasts.len()); baselines.len()];
    for &s in starts {
        for step in 0..h {
            for &col in &p.targets {
                actual.push(p.raw.row(s + l + step)[col]);
            }
        }
        for (b, out) in baselines.iter().zip(baseline_forecasts.iter_mut()) {
            let per_target: Vec<Vec<f32>> = p
                .targets
                .iter()
                .map(|&col| {
                    let history: Vec<f32> = (s..s + l).map(|r| p.raw.row(r)[col]).collect();
                    b.forecast(&history, h)
                })
                .collect();
            for step in 0..h {
                out.extend(per_target.iter().map(|f| f[step]));
            }
        }
    }
    let histories: Vec<Vec<f32>> = p
        .targets
        .iter()
        .map(|&col| p.split.train.clone().map(|r| p.raw.row(r)[col]).collect())
        .collect();
    let row = |name: String, f: &[f32]| -> TestRow {
        // MASE per target (its own scale), averaged over targets.
        // Undefined (NaN, shown as n/a) when any target's in-sample seasonal naive is exact.
        let mase = (0..nt)
            .map(|k| {
                let a: Vec<f32> = actual.iter().skip(k).step_by(nt).copied().collect();
                let g: Vec<f32> = f.iter().skip(k).step_by(nt).copied().collect();
                metrics::mase(&a, &g, &histories[k], season).unwrap_or(f64::NAN)
            })
            .sum::<f64>()
            / nt as f64;
        TestRow {
            name,
            mse: metrics::mse(&actual, f).unwrap_or(f64::NAN),
            mae: metrics::mae(&actual, f).unwrap_or(f64::NAN),
            rmse: metrics::rmse(&actual, f).unwrap_or(f64::NAN),
            smape: metrics::smape(&actual, f).unwrap_or(f64::NAN),
            mase,
        }
    };
    let mut rows = vec![row(format!("model ({})", exp.model.cell), forecasts)];
    for (b, f) in baselines.iter().zip(&baseline_forecasts) {
        rows.push(row(b.name(), f));
    }
    TestTable {
        windows: starts.len(),
        rows,
    }
}

/// `forecast.csv`: for non-overlapping test windows, every horizon step's forecast beside the
/// actual value, in original units. Returns the first target's (actual, forecast) sequences.
fn write_forecasts(
    path: &Path,
    p: &Prepared,
    exp: &Experiment,
    starts: &[usize],
    forecasts: &[f32],
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (l, h, nt) = (p.window.lookback, p.window.horizon, p.targets.len());
    let mut rows = Vec::new();
    let (mut first_actual, mut first_forecast) = (Vec::new(), Vec::new());
    for (w, &s) in starts.iter().enumerate().step_by(h) {
        for step in 0..h {
            let r = s + l + step;
            for (k, &col) in p.targets.iter().enumerate() {
                let (actual, forecast) = (p.raw.row(r)[col], forecasts[(w * h + step) * nt + k]);
                rows.push(vec![
                    p.raw.timestamps[s + l - 1].to_string(),
                    p.raw.timestamps[r].to_string(),
                    (step + 1).to_string(),
                    exp.data.targets[k].clone(),
                    actual.to_string(),
                    forecast.to_string(),
                ]);
                if k == 0 {
                    first_actual.push(actual as f64);
                    first_forecast.push(forecast as f64);
                }
            }
        }
    }
    write_csv(
        path,
        &["origin", "time", "step", "target", "actual", "forecast"],
        &rows,
    )?;
    Ok((first_actual, first_forecast))
}

/// Recomputes the test table of a finished run from its artifacts.
pub fn evaluate(dir: &Path, device: &Device) -> Result<TestTable> {
    // The scaler is refitted on the training rows; reading the saved one checks the run is whole.
    let (exp, _) = read_run(dir)?;
    let p = prepare(&exp)?;
    let model = load_model(dir, &exp, &p.window, device)?;
    evaluate_model(&model, &p, &exp, device)
}

/// `--resume` may change how long and how fast the run trains (epochs, learning rate, schedule,
/// clipping, patience), not what it trains: the model, the window, the columns or the optimizer
/// (whose saved state would not fit).
fn check_resumable(exp: &Experiment, dir: &Path) -> Result<()> {
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
    let d = (&exp.data.targets, &exp.data.covariates, &exp.data.calendar);
    if (
        &saved.data.targets,
        &saved.data.covariates,
        &saved.data.calendar,
    ) != d
    {
        changed.push("data.targets/covariates/calendar");
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

/// Writes the model's weights to `path` atomically (a temporary file, then rename).
fn save_model(model: &ForecastModel, path: &Path) -> Result<()> {
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
    let path: PathBuf = dir.join("model.bpk");
    let record = burn::store::ModuleRecord::load(&path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read the model: {e:?}", path.display()))?;
    let model = build_model(exp, window, device, None)?;
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

fn read_run(dir: &Path) -> Result<(Experiment, Scaler)> {
    let config_path = dir.join("config.toml");
    let text = std::fs::read_to_string(&config_path).with_context(|| {
        format!(
            "{} is not a gatecast run directory (no config.toml)",
            dir.display()
        )
    })?;
    let exp = Experiment::from_toml(&text, &config_path.display().to_string())
        .map_err(anyhow::Error::msg)?;
    let scaler_path = dir.join("scaler.toml");
    let scaler: Scaler = toml::from_str(
        &std::fs::read_to_string(&scaler_path)
            .with_context(|| format!("cannot read {}", scaler_path.display()))?,
    )
    .with_context(|| format!("{}: not a scaler", scaler_path.display()))?;
    Ok((exp, scaler))
}

/// Forecasts the `horizon` steps after the end of `input` (a CSV with the training columns) and
/// writes `time,target,forecast` rows in original units to `output` (or standard output).
pub fn forecast(dir: &Path, input: &Path, output: Option<&Path>, device: &Device) -> Result<()> {
    let (mut exp, scaler) = read_run(dir)?;
    exp.data.path = input.display().to_string();
    let d = &exp.data;
    let (columns, options) = csv_options(d);
    let mut series = load(input, &options, d)?;
    let calendar: Vec<_> = d
        .calendar
        .iter()
        .filter_map(|c| calendar_feature(c))
        .collect();
    let future_names = add_calendar(&mut series, &calendar);
    if series.columns != scaler.columns {
        bail!(
            "{}: columns {:?} differ from the run's {:?}",
            input.display(),
            series.columns,
            scaler.columns
        );
    }
    let (l, h) = (exp.window.lookback, exp.window.horizon);
    let last_segment = series.segments.last().cloned().unwrap_or(0..0);
    if last_segment.len() < l {
        bail!(
            "{}: the forecast needs the last {l} rows without a gap (window.lookback); the file ends with {}",
            input.display(),
            last_segment.len()
        );
    }
    let step = series.frequency.with_context(|| {
        format!(
            "{}: cannot tell the sampling step from fewer than two rows",
            input.display()
        )
    })?;
    let scaled = scaler.transform(&series);
    let mut inputs = columns;
    inputs.extend(future_names.iter().cloned());
    let mut window = WindowConfig::new(l, h, inputs.clone(), d.targets.clone());
    window.future = future_names.clone();
    let in_idx = scaled.column_indices(&inputs, "inputs")?;
    let start = series.rows() - l;
    let x: Vec<f32> = (start..series.rows())
        .flat_map(|r| in_idx.iter().map(move |&c| (r, c)))
        .map(|(r, c)| scaled.row(r)[c])
        .collect();
    let last = *series.timestamps.last().expect("rows");
    let times: Vec<_> = (1..=h as i32).map(|k| last + step * k).collect();
    let (_, mut fut) = gatecast_data::calendar_covariates(&times, &calendar);
    let first_future = series.width() - future_names.len();
    for (i, v) in fut.iter_mut().enumerate() {
        let col = first_future + i % future_names.len().max(1);
        *v = ((*v as f64 - scaler.offset[col]) / scaler.scale[col]) as f32;
    }
    let model = load_model(dir, &exp, &window, device)?.valid();
    let xt = burn::tensor::Tensor::<3>::from_data(
        burn::tensor::TensorData::new(x, [1, l, in_idx.len()]),
        device,
    );
    let ft = (!future_names.is_empty()).then(|| {
        burn::tensor::Tensor::<3>::from_data(
            burn::tensor::TensorData::new(fut, [1, h, future_names.len()]),
            device,
        )
    });
    let pred = model
        .predict(xt, ft)
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let target_idx = series.column_indices(&d.targets, "data.targets")?;
    let nt = target_idx.len();
    let mut text = String::from("time,target,forecast\n");
    for (step_i, t) in times.iter().enumerate() {
        for (k, &col) in target_idx.iter().enumerate() {
            let mut v = [pred[step_i * nt + k]];
            scaler.inverse(col, &mut v);
            text += &format!("{t},{},{}\n", d.targets[k], v[0]);
        }
    }
    match output {
        Some(path) => write_atomic(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(())
}
