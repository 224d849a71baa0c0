//! The `gatecast` command line: train, evaluate and forecast recurrent models on time series.

// Training allocates and frees tensors of tens of megabytes every step; mimalloc keeps that
// memory mapped between steps where glibc's malloc returns it and page-faults it back.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option: its index in `mi_option_e` (mimalloc.h, the same in the v2
/// and v3 sources libmimalloc-sys builds).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps memory freed by the process mapped instead of purging it back to the system after
/// mimalloc 3's default second (`purge_delay = -1`), unless the user set `MIMALLOC_PURGE_DELAY`.
/// Training frees and re-allocates the same large tensors every step; purged pages come back
/// as page faults that the kernel zeroes again. The peak memory is what it was.
fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: called once at the start of main, before any other thread exists (mimalloc's
        // option setters are not thread safe).
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use clap::{Parser, Subcommand};
use gatecast_trainer::{panel, run};

mod flags;
use flags::experiment;

/// Recurrent neural networks for time series (Elman RNN, GRU, LSTM) on Burn.
#[derive(Parser)]
#[command(name = "gatecast", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model. With no arguments: an LSTM forecasting the bundled hourly traffic volume
    /// 24 hours ahead (about 10 seconds of training on 2 CPU cores).
    Train(Box<TrainArgs>),
    /// Recompute the test table of a finished run from its artifacts.
    Evaluate {
        /// The run directory written by `gatecast train`.
        run_dir: PathBuf,
        /// Backend: flex, ndarray or wgpu (those compiled in).
        #[arg(long)]
        device: Option<String>,
        /// Evaluate even if the data file changed since training (with a warning naming what).
        #[arg(long)]
        allow_changed_data: bool,
        /// Panel runs: the table of this series alone (default: every series).
        #[arg(long)]
        series: Option<String>,
    },
    /// Gradient flow through time of fresh RNN, GRU and LSTM layers on adding-problem sequences:
    /// ||dL/dh_t|| per step (CSV and a log-scale PNG) and the recurrent weights' spectral norms.
    Diagnose {
        /// Sequence length T.
        #[arg(long, default_value_t = 100)]
        steps: usize,
        /// Hidden size.
        #[arg(long, default_value_t = 32)]
        hidden: usize,
        /// Sequences in the batch.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output directory.
        #[arg(long, default_value = "runs/diagnose")]
        out: PathBuf,
        /// Backend: flex, ndarray or wgpu (those compiled in).
        #[arg(long)]
        device: Option<String>,
    },
    /// The LTSF protocol on ETTh1 (fixed splits, train-only z-score, every test window), beside
    /// published results. The model and training settings come from --config and the flags.
    Benchmark {
        /// Which benchmark: `ett`. `--data` is the ETTh1.csv file (default datasets/ETTh1.csv;
        /// see datasets/README.md for where to download it), `--out` the output directory
        /// (default runs/benchmark).
        which: String,
        /// S (OT → OT), M (7 → 7) or MS (7 → OT).
        #[arg(long, default_value = "S")]
        mode: String,
        /// Comma-separated horizons.
        #[arg(long, value_delimiter = ',', default_value = "24,48,168")]
        horizons: Vec<usize>,
        /// `ett` (ETTh's fixed 12/4/4 months) or `ratios` (data.split of any file shaped like
        /// ETTh1: a `date` column, value columns, target `OT` or the last column).
        #[arg(long, default_value = "ett")]
        split: String,
        /// Score every validation window instead of the test split, to choose a
        /// configuration without reading the test split (run directories end in `-valid`).
        #[arg(long)]
        validate: bool,
        /// Another experiment file whose model is trained beside --config's, on its own (its own
        /// early stopping and kept epoch); the scored forecast is then the mean of all the
        /// models' forecasts, shown beside each model's own. Repeat for more; the flags apply
        /// to every model.
        #[arg(long = "member", value_name = "FILE")]
        members: Vec<PathBuf>,
        #[command(flatten)]
        model: Box<TrainArgs>,
    },
    /// Rolling-origin backtest: K folds of one horizon each at the end of the data, scored beside
    /// the baselines; the model trains before the first origin (or before each with --refit).
    /// Panel experiments (data.id_column) and single series alike. Takes the same options as
    /// `train`.
    Backtest {
        /// Number of folds.
        #[arg(long, default_value_t = 3)]
        folds: usize,
        /// Steps between two folds' origins (default: the horizon).
        #[arg(long)]
        stride: Option<usize>,
        /// Retrain before every fold on the rows before its origin.
        #[arg(long)]
        refit: bool,
        /// Another toolkit's mean row over the same folds, shown beside gatecast's (CSV from
        /// `scripts/bench/gluonts_deepar.py --row FILE`).
        #[arg(long)]
        peer: Option<PathBuf>,
        #[command(flatten)]
        model: Box<TrainArgs>,
    },
    /// Forecast the next `horizon` steps after the end of a CSV file, in original units.
    Forecast {
        /// The run directory written by `gatecast train`.
        run_dir: PathBuf,
        /// CSV with the same columns as the training data; its last `lookback` rows are used
        /// (each series' last `lookback` rows, for a panel run), and a single-series run's
        /// intervals are calibrated on its latest `intervals.calibration` complete windows
        /// after the rows the model trained on. Default: the file the run trained on
        /// (`data.path` in its config.toml).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Panel runs: forecast this series alone (default: every series in --input).
        #[arg(long)]
        series: Option<String>,
        /// A run with known-future covariates (`data.future_covariates`): a CSV with the time
        /// column and those columns, a row for each step forecast.
        #[arg(long)]
        future: Option<PathBuf>,
        /// Where to write the forecast CSV (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Single-series runs: steps to forecast (default: the run's window.horizon); past the
        /// horizon the forecast is rolled out from its own forecasts, without intervals.
        #[arg(long)]
        steps: Option<usize>,
        /// Also draw the input's last values, the forecast and its intervals into this PNG (a
        /// single-series run: its first interval level; a panel run: the 80% and 95% intervals
        /// of up to four series, or of --series).
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Backend: flex, ndarray or wgpu (those compiled in).
        #[arg(long)]
        device: Option<String>,
    },
}

#[derive(clap::Args, Clone)]
#[command(allow_negative_numbers = true)]
struct TrainArgs {
    /// Experiment file (TOML); flags below override it. See `gatecast train --print-config`.
    /// With --resume and no --config, the run's own config.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the resolved experiment as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Run directory for checkpoints, metrics, forecasts (default: `runs/<cell>-<time>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long, requires = "out")]
    resume: bool,
    /// With --resume: continue even if the data file changed since the run began (with a
    /// warning naming what changed).
    #[arg(long, requires = "resume")]
    allow_changed_data: bool,
    /// CSV file to train on.
    #[arg(long)]
    data: Option<String>,
    /// The CSV's timestamp column.
    #[arg(long)]
    time_column: Option<String>,
    /// The timestamps' chrono format, e.g. '%d/%m/%Y %H:%M', or '%s' for seconds since
    /// 1970-01-01 (`data.time_format`; default: ISO dates and times, detected).
    #[arg(long)]
    time_format: Option<String>,
    /// The CSV's field delimiter: one character such as ';' or '|', or '\t' for tabs
    /// (`data.delimiter`; default ',').
    #[arg(long)]
    delimiter: Option<String>,
    /// The numbers' decimal mark: '.' (default) or ',' (`12,5`; needs another --delimiter)
    /// (`data.decimal`).
    #[arg(long)]
    decimal: Option<String>,
    /// The column to forecast, or several comma-separated (one model forecasts them all);
    /// covariates are then cleared unless a --config names them. Without it, an own file's one
    /// column of numbers besides the time column.
    #[arg(long, value_delimiter = ',')]
    target: Option<Vec<String>>,
    /// Long format: the column naming each row's series; trains one model over all of them.
    #[arg(long)]
    id_column: Option<String>,
    /// The seasonal naive's and MASE's period in steps (`data.season`; 0 infers it from the
    /// sampling step: 24 for hourly data, 7 for daily; a user's own --data without --config
    /// infers it).
    #[arg(long)]
    season: Option<usize>,
    /// Past covariates: columns read over the look-back beside the targets, comma-separated;
    /// `none` for none (`data.covariates`).
    #[arg(long, value_delimiter = ',')]
    covariates: Option<Vec<String>>,
    /// Columns whose values are known ahead (a planned promotion, a holiday flag),
    /// comma-separated: read over the horizon too (`data.future_covariates`; `gatecast forecast`
    /// then takes their next values with --future).
    #[arg(long, value_delimiter = ',')]
    future_covariates: Option<Vec<String>>,
    /// Known-future calendar features, comma-separated: hour_of_day, day_of_week,
    /// month_of_year; `none` for none (segrnn takes none).
    #[arg(long, value_delimiter = ',')]
    calendar: Option<Vec<String>>,
    /// Missing values: error, interpolate or forward_fill (`data.missing`).
    #[arg(long)]
    missing: Option<String>,
    /// Repeated timestamps: error, first, mean or sum (`data.duplicates`).
    #[arg(long)]
    duplicates: Option<String>,
    /// Missing rows: error, interpolate (fill them) or keep (no window crosses one)
    /// (`data.gaps`).
    #[arg(long)]
    gaps: Option<String>,
    /// Aggregate the file to a coarser step after loading: 1d, 1w, MS (calendar months),
    /// QS (quarters), ME (months labelled by their last day) (`data.resample`).
    #[arg(long)]
    resample: Option<String>,
    /// How --resample combines the rows of a period: sum (empty periods are 0) or mean (empty
    /// periods are gaps) (`data.aggregate`).
    #[arg(long)]
    aggregate: Option<String>,
    /// A distribution head: gaussian, student_t, negative_binomial or quantile (a panel run;
    /// without --id-column, a panel whose series are the file's target columns, DeepAR-style).
    #[arg(long)]
    likelihood: Option<String>,
    /// Panel runs: columns holding one category per series (comma-separated).
    #[arg(long, value_delimiter = ',')]
    static_categorical: Vec<String>,
    /// Panel runs: columns holding one number per series (comma-separated).
    #[arg(long, value_delimiter = ',')]
    static_real: Vec<String>,
    /// standard, min_max, mean_abs or none, fitted on the training rows (each series' own in
    /// a panel run; default standard for one series, mean_abs for a panel).
    #[arg(long)]
    scaler: Option<String>,
    /// Panel runs: draws per step from which Student-t and negative-binomial quantiles are read.
    #[arg(long)]
    samples: Option<usize>,
    /// Recurrent cell: rnn, gru or lstm.
    #[arg(long)]
    cell: Option<String>,
    /// Hidden size.
    #[arg(long)]
    hidden: Option<usize>,
    /// Stacked layers.
    #[arg(long)]
    layers: Option<usize>,
    /// Dropout between layers, in [0, 1).
    #[arg(long)]
    dropout: Option<f64>,
    /// `direct` (all horizon steps at once) or `autoregressive` (step by step).
    #[arg(long)]
    decoder: Option<String>,
    /// Subtract each window's last value per channel, add it back to the forecast.
    #[arg(long)]
    last_value_norm: bool,
    /// `--cell segrnn`: segment length (must divide the look-back).
    #[arg(long)]
    segment: Option<usize>,
    /// Reversible instance normalisation (RevIN): each window standardised by its own mean
    /// and deviation, the forecast scaled back (instead of --last-value-norm).
    #[arg(long)]
    revin: bool,
    /// The window normalisation: `none`, `last-value` (as --last-value-norm), `revin` (as
    /// --revin) or `auto` (train with each, keep the one with the lowest validation loss:
    /// three trainings).
    #[arg(long)]
    norm: Option<String>,
    /// `--cell segrnn`: a learned per-channel cycle of this many steps (e.g. 24 for a daily
    /// cycle in hourly data), its phase read from the timestamps; 0 for none.
    #[arg(long)]
    cycle: Option<usize>,
    /// `--cell segrnn`: mix the channels' final states before decoding (`model.channel_mix`).
    #[arg(long)]
    channel_mix: bool,
    /// `--cell segrnn`: the recurrent cell over the segments, `gru` (SegRNN's) or `slstm`
    /// (xLSTM's sLSTM, as in P-sLSTM) (`model.segment_cell`).
    #[arg(long)]
    segment_cell: Option<String>,
    /// `--cell segrnn`: a second, reversed view of the look-back, the GRU's newest-first pass
    /// added through a learned map (`model.reverse_view`).
    #[arg(long)]
    reverse_view: bool,
    /// Look-back steps.
    #[arg(long)]
    lookback: Option<usize>,
    /// Rows between training windows (`window.stride`; a user's own file of daily or longer
    /// steps uses every window, 1, unless this says otherwise).
    #[arg(long)]
    stride: Option<usize>,
    /// Steps to forecast (a user's own file of days, weeks, months, quarters or years: the
    /// M4 competition's 14, 13, 18, 8 or 6 by default, with a look-back three times as long).
    #[arg(long)]
    horizon: Option<usize>,
    /// Maximum epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Peak learning rate (> 0).
    #[arg(long)]
    lr: Option<f64>,
    /// Gradient clipping: global_norm, norm, value or none (a panel run clips each tensor's
    /// norm under global_norm).
    #[arg(long)]
    clip: Option<String>,
    /// Training loss: mse, mae or huber.
    #[arg(long)]
    loss: Option<String>,
    /// With `--loss huber`: the error (in scaled units) where the loss turns from squared to
    /// linear (PyTorch's `delta`; default 1).
    #[arg(long)]
    huber_delta: Option<f64>,
    /// Weight in [0, 1] of FreDF's frequency-domain term mixed into the training loss
    /// (`train.freq_loss`; 0 = off).
    #[arg(long)]
    freq_loss: Option<f64>,
    /// What early stopping and the kept epoch read on the validation split: loss (default),
    /// mse or mae.
    #[arg(long)]
    monitor: Option<String>,
    /// Seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Single-series runs: the prediction intervals' central levels, comma-separated
    /// (`intervals.levels`; default 0.8,0.95).
    #[arg(long, value_delimiter = ',')]
    levels: Option<Vec<f64>>,
    /// Single-series runs: how many of the latest windows known at a forecast's origin
    /// calibrate its intervals (`intervals.calibration`; default 1000).
    #[arg(long)]
    calibration: Option<usize>,
    /// Single-series runs: adaptive conformal inference's step size (`intervals.adapt`; e.g.
    /// 0.005): each level's miscoverage rate moves after every window whose values become
    /// known, so intervals widen where errors grow; 0 for none.
    #[arg(long)]
    adapt: Option<f64>,
    /// Panel runs: scale each central interval about the median by a factor fitted on the
    /// validation horizons, so it covers its level there (`intervals.panel_conformal`).
    #[arg(long)]
    panel_conformal: bool,
    /// Panel runs: the fewest validation windows early stopping (and `--panel-conformal`)
    /// reads across the panel (`train.valid_windows`; default 1, one horizon per series).
    #[arg(long)]
    valid_windows: Option<usize>,
    /// Fractions of the rows for training, validation and test, comma-separated, in time
    /// order (`data.split`; default 0.7,0.1,0.2).
    #[arg(long, value_delimiter = ',')]
    split_fractions: Option<Vec<f64>>,
    /// Validate, keep and test an exponential moving average of the weights with this decay
    /// (e.g. 0.99; 0: off).
    #[arg(long)]
    ema_decay: Option<f64>,
    /// Backend: flex, ndarray or wgpu (those compiled in).
    #[arg(long)]
    device: Option<String>,
    /// Train data-parallel on several devices, comma-separated (e.g. `wgpu,wgpu` on a machine
    /// with two GPUs): Burn's multi-device strategy, one batch per device per step.
    #[arg(long, value_delimiter = ',', conflicts_with = "device")]
    devices: Vec<String>,
    /// Print no per-epoch lines.
    #[arg(long)]
    quiet: bool,
}

fn device(name: Option<&str>) -> Result<Device> {
    let compiled: Vec<&str> = [
        cfg!(feature = "flex").then_some("flex"),
        cfg!(feature = "ndarray").then_some("ndarray"),
        cfg!(feature = "wgpu").then_some("wgpu"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let name = match name {
        Some(n) => n,
        None => compiled
            .first()
            .copied()
            .context("no backend compiled in: build with --features flex")?,
    };
    match name {
        #[cfg(feature = "flex")]
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        other => bail!("--device {other}: this build has {}", compiled.join(", ")),
    }
}

fn train(args: TrainArgs) -> Result<()> {
    let exp = experiment(&args, false)?;
    if args.print_config {
        gatecast_trainer::say!("{}", exp.to_toml());
        return Ok(());
    }
    let devs: Vec<Device> = if args.devices.is_empty() {
        vec![device(args.device.as_deref())?]
    } else {
        args.devices
            .iter()
            .map(|d| device(Some(d)))
            .collect::<Result<_>>()?
    };
    let dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!(
            "{}-{}",
            exp.model.cell,
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ))
    });
    gatecast_trainer::sayln!(
        "gatecast train: {} (hidden {}, {} layer(s)) on {}, lookback {}, horizon {}, up to {} epochs -> {}",
        exp.model.cell,
        exp.model.hidden_size,
        exp.model.num_layers,
        exp.data.path,
        exp.window.lookback,
        exp.window.horizon,
        exp.train.epochs,
        dir.display()
    );
    if exp.model.auto_norm {
        gatecast_trainer::sayln!(
            "model.auto_norm: training with each window normalisation (none, last-value, revin) and keeping the one best on the validation split; --norm chooses one"
        );
    }
    if exp.is_panel() {
        if devs.len() > 1 {
            bail!("--devices: panel runs train on one device");
        }
        let options = run::TrainOptions {
            resume: args.resume,
            quiet: args.quiet,
            allow_changed_data: args.allow_changed_data,
        };
        let report = panel::train_panel_with(&exp, &dir, &devs[0], options)?;
        gatecast_trainer::sayln!("\n{}", report.markdown());
        gatecast_trainer::sayln!(
            "{} epochs (best {}), {:.1} s per epoch; run directory: {} ({:.0} s): config.toml, data.toml, series.csv, {}{}model.bpk, checkpoint/, metrics.csv, {}forecast.csv (quantile columns), per_series.csv, test_metrics.md, forecast.png",
            report.epochs,
            report.best_epoch,
            report.epoch_seconds,
            dir.display(),
            report.seconds,
            if exp.data.has_statics() {
                "statics.toml, "
            } else {
                ""
            },
            if dir.join("known_future.toml").exists() {
                "known_future.toml, "
            } else {
                ""
            },
            if report.calibration.is_some() {
                "calibration.toml, "
            } else {
                ""
            }
        );
        return Ok(());
    }
    let options = run::TrainOptions {
        resume: args.resume,
        quiet: args.quiet,
        allow_changed_data: args.allow_changed_data,
    };
    let report = run::train_with(&exp, &dir, &devs, options)?;
    if let Some(why) = &report.diverged {
        gatecast_trainer::tell!("{why}");
    }
    if !report.norm_choice.is_empty() {
        gatecast_trainer::sayln!(
            "\n{}",
            run::describe_norm_choice(&report.norm_choice, exp.train.monitor)
        );
    }
    gatecast_trainer::sayln!("\n{}", report.test.markdown());
    gatecast_trainer::sayln!(
        "run directory: {} ({:.0} s): config.toml, scaler.toml, data.toml, model.bpk, metrics.csv, test_metrics.csv, forecast.csv, {}loss.png, forecast.png{}",
        dir.display(),
        report.seconds,
        if report.test.intervals.is_empty() { "" } else { "intervals.toml, " },
        if report.norm_choice.is_empty() {
            ""
        } else {
            ", norm_choice.csv, and the runs not kept in norm/"
        }
    );
    if report.diverged.is_some() {
        bail!("training diverged");
    }
    Ok(())
}

fn main() -> ExitCode {
    keep_freed_pages();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train(*args),
        Command::Evaluate {
            run_dir,
            device: d,
            allow_changed_data,
            series,
        } => device(d.as_deref())
            .and_then(|dev| evaluate(&run_dir, &dev, allow_changed_data, series.as_deref())),
        Command::Diagnose {
            steps,
            hidden,
            batch,
            seed,
            out,
            device: d,
        } => {
            device(d.as_deref()).and_then(|dev| diagnose(&out, [steps, hidden, batch], seed, &dev))
        }
        Command::Benchmark {
            which,
            mode,
            horizons,
            split,
            model,
            validate,
            members,
        } => benchmark(&which, &mode, &horizons, &split, validate, &members, &model),
        Command::Backtest {
            folds,
            stride,
            refit,
            peer,
            model,
        } => backtest(folds, stride, refit, peer.as_deref(), &model),
        Command::Forecast {
            run_dir,
            input,
            output,
            series,
            future,
            steps,
            plot,
            device: d,
        } => device(d.as_deref()).and_then(|dev| {
            let input = match input {
                Some(path) => path,
                None => trained_file(&run_dir)?,
            };
            if panel::panel_run(&run_dir)?.is_some() {
                if let Some(n) = steps {
                    bail!(
                        "--steps {n}: single-series runs only; a panel run forecasts its window.horizon"
                    );
                }
                panel::forecast_run_with(
                    &run_dir,
                    &input,
                    future.as_deref(),
                    output.as_deref(),
                    plot.as_deref(),
                    series.as_deref(),
                    &dev,
                )
            } else if series.is_some() {
                bail!(
                    "--series is for panel runs (data.id_column); {} is a single-series run",
                    run_dir.display()
                )
            } else {
                let options = run::ForecastOptions {
                    future: future.as_deref(),
                    steps,
                    plot: plot.as_deref(),
                };
                run::forecast_options(&run_dir, &input, &options, output.as_deref(), &dev                )
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            gatecast_trainer::tell!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `gatecast backtest`: the folds of an experiment, trained and scored into `--out`.
fn backtest(
    folds: usize,
    stride: Option<usize>,
    refit: bool,
    peer: Option<&std::path::Path>,
    args: &TrainArgs,
) -> Result<()> {
    let exp = experiment(args, false)?;
    // Read before training, so a bad file fails at once.
    let peer = peer.map(panel::PeerRow::read).transpose()?;
    if !exp.is_panel() && peer.is_some() {
        bail!("--peer: the peer row is for panel backtests (data.id_column, or --id-column)");
    }
    let folds = panel::Folds {
        count: folds,
        stride: stride.unwrap_or(exp.window.horizon),
        refit,
    };
    let dev = device(args.device.as_deref())?;
    let dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!(
            "backtest-{}",
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ))
    });
    gatecast_trainer::sayln!(
        "gatecast backtest: {} folds {} steps apart, {} on {}, lookback {}, horizon {} -> {}",
        folds.count,
        folds.stride,
        exp.model.cell,
        exp.data.path,
        exp.window.lookback,
        exp.window.horizon,
        dir.display()
    );
    if !exp.is_panel() {
        let report = run::backtest_series(&exp, folds, &dir, &dev, args.quiet)?;
        gatecast_trainer::sayln!("\n{}", report.markdown());
        gatecast_trainer::sayln!(
            "{:.0} s; {}: historical_forecasts.csv, backtest.md, backtest.png; {}",
            report.seconds,
            dir.display(),
            if refit {
                "each fold's run in fold<k>/"
            } else {
                "the run trained before fold 1 in fold1/"
            }
        );
        return Ok(());
    }
    let report = panel::backtest_panel(&exp, folds, &dir, &dev, args.quiet, peer)?;
    gatecast_trainer::sayln!("\n{}", report.markdown());
    gatecast_trainer::sayln!(
        "{:.0} s; {}: historical_forecasts.csv, backtest.md, backtest.png, metrics.csv and model.bpk{}",
        report.seconds,
        dir.display(),
        if refit { " per fold (fold<k>/)" } else { "" }
    );
    Ok(())
}

/// `gatecast forecast` without `--input`: the file the run in `dir` trained on, with a note.
fn trained_file(dir: &std::path::Path) -> Result<PathBuf> {
    let file = PathBuf::from(run::read_config(dir)?.data.path);
    if !file.exists() {
        bail!(
            "{}: the file the run trained on (data.path in {}) is not found from here; give the data to forecast from with --input",
            file.display(),
            dir.join("config.toml").display()
        );
    }
    gatecast_trainer::tell!(
        "note: forecasting after the end of {}, the file the run trained on (--input gives another)",
        file.display()
    );
    Ok(file)
}

/// `gatecast evaluate`: the run's test table again (a panel run's for one series with
/// `--series`).
fn evaluate(
    dir: &std::path::Path,
    dev: &Device,
    allow_changed: bool,
    series: Option<&str>,
) -> Result<()> {
    if panel::panel_run(dir)?.is_some() {
        let report = panel::evaluate_run(dir, dev, allow_changed, series)?;
        gatecast_trainer::say!("{}", report.markdown());
        return Ok(());
    }
    if series.is_some() {
        bail!(
            "--series is for panel runs (data.id_column); {} is a single-series run",
            dir.display()
        );
    }
    let table = run::evaluate_with(dir, dev, allow_changed)?;
    gatecast_trainer::say!("{}", table.markdown());
    // A run that chose its normalisation says which, as `train` did.
    let choice = dir.join("norm_choice.csv");
    if let Ok(text) = std::fs::read_to_string(&choice) {
        let kept = text
            .lines()
            .skip(1)
            .find(|l| l.ends_with(",true"))
            .and_then(|l| l.split(',').next());
        if let Some(norm) = kept {
            gatecast_trainer::sayln!(
                "\nnormalisation: {norm}, chosen on the validation split ({})",
                choice.display()
            );
        }
    }
    Ok(())
}

/// `gatecast diagnose`: gradient flow through time of fresh layers, as a table.
fn diagnose(
    out: &std::path::Path,
    [steps, hidden, batch]: [usize; 3],
    seed: u64,
    dev: &Device,
) -> Result<()> {
    if steps < 2 || hidden == 0 || batch == 0 {
        bail!("--steps must be at least 2, --hidden and --batch at least 1");
    }
    let flow = gatecast_trainer::diagnose::diagnose(out, steps, hidden, batch, seed, dev)?;
    gatecast_trainer::sayln!(
        "||dL/dh_t|| relative to t = T (L at the last step), T = {steps}, hidden {hidden}:"
    );
    gatecast_trainer::sayln!(
        "| cell | t = T-10 | t = T-50 | t = 1 | spectral norms of W_hh blocks |"
    );
    gatecast_trainer::sayln!("|---|---|---|---|---|");
    for (name, v, s) in &flow {
        let rel = |t: usize| v.get(t).map(|x| x / v[steps - 1]).unwrap_or(f64::NAN);
        let sn: Vec<String> = s.iter().map(|x| format!("{x:.3}")).collect();
        gatecast_trainer::sayln!(
            "| {name} | {:.2e} | {:.2e} | {:.2e} | {} |",
            rel(steps.saturating_sub(11)),
            rel(steps.saturating_sub(51)),
            rel(0),
            sn.join(" ")
        );
    }
    gatecast_trainer::sayln!(
        "wrote {}/gradient_flow.csv, gradient_flow.png, spectral_norms.csv",
        out.display()
    );
    Ok(())
}

/// `gatecast benchmark ett`.
fn benchmark(
    which: &str,
    mode: &str,
    horizons: &[usize],
    split: &str,
    validate: bool,
    members: &[PathBuf],
    model: &TrainArgs,
) -> Result<()> {
    let data = PathBuf::from(
        model
            .data
            .clone()
            .unwrap_or_else(|| "datasets/ETTh1.csv".into()),
    );
    let out = model
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/benchmark"));
    if which != "ett" {
        bail!("benchmark {which}: only `ett` exists");
    }
    let mut exps = vec![experiment(model, true)?];
    if !members.is_empty() && model.config.is_none() {
        bail!("--member: give the first model's experiment file with --config as well");
    }
    for path in members {
        let mut args = model.clone();
        args.config = Some(path.clone());
        exps.push(experiment(&args, true)?);
    }
    if model.print_config {
        for exp in &exps {
            gatecast_trainer::say!("{}", exp.to_toml());
        }
        return Ok(());
    }
    let dev = device(model.device.as_deref())?;
    let split = match split {
        "ett" => gatecast_trainer::benchmark::BenchSplit::EttHourly,
        "ratios" => gatecast_trainer::benchmark::BenchSplit::Ratios,
        other => bail!("--split {other}: expected ett or ratios"),
    };
    let scored = if validate {
        gatecast_trainer::benchmark::Scored::Validation
    } else {
        gatecast_trainer::benchmark::Scored::Test
    };
    gatecast_trainer::benchmark::run_members(
        &data, mode, horizons, split, scored, &exps, &out, &dev,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index names `purge_delay`: it holds that option's default in mimalloc 3 (1000 ms,
    /// `src/options.c`) until `keep_freed_pages` sets it to -1 (never purge).
    #[test]
    fn keep_freed_pages_sets_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the user's setting wins, as in the binary
        }
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(get(), 1000);
        keep_freed_pages();
        assert_eq!(get(), -1);
    }
}
