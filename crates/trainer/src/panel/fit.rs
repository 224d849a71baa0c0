//! Training a global model: windows shuffled across series and time, passed over until an
//! epoch has its batches (`train.epoch_batches`), the likelihood's loss, the optimizer and rate
//! of `[train]` (Adam at a constant rate unless set; gradients clipped per tensor), early
//! stopping on the validation rows with the best epoch's weights kept; a checkpoint after every
//! epoch that `--resume` continues from (`checkpoint.rs`).

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use gatecast_model::forecast::{GlobalForecaster, GlobalForecasterConfig, Likelihood, Rng};

use super::checkpoint::{self, FitState};
use super::data::{Origin, Panel};
use crate::artifacts::write_csv;
use crate::config::{ClipMode, Decoder, Experiment};
use crate::run::budget::{self, Estimate};
use crate::run::saved::save_model;
use crate::schedule::ReduceOnPlateau;

/// A trained panel model and its history.
pub struct Fitted {
    /// The best epoch's weights, for inference.
    pub model: GlobalForecaster,
    /// Per epoch: (train loss, validation loss, seconds).
    pub epochs: Vec<(f64, f64, f64)>,
    /// The epoch whose weights are kept (1-based).
    pub best_epoch: usize,
}

/// The mean loss of `origins` under `model`: the negative log-likelihood per value, or for a
/// quantile head the pinball loss over the series' scale (so large series do not dominate).
fn loss(
    model: &GlobalForecaster,
    panel: &Panel,
    origins: &[Origin],
    device: &Device,
) -> Result<Tensor<1>> {
    let b = panel.batch(origins, device);
    let predicted = model.forward(
        b.inputs,
        b.series,
        b.future,
        b.scale.clone(),
        Some(b.target.clone()),
    )?;
    let per_value = predicted.loss(b.target);
    let per_value = match model.likelihood() {
        Likelihood::Quantiles(_) => per_value / b.scale,
        _ => per_value,
    };
    Ok(per_value.mean())
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f64>()
}

/// How [`fit`] reports, checkpoints and starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct FitOptions {
    /// No per-epoch lines.
    pub quiet: bool,
    /// Write `checkpoint/panel-N/` after every epoch (a backtest's folds do not).
    pub checkpoints: bool,
    /// Continue from the newest intact checkpoint in the run directory: the same weights,
    /// optimizer moments, weight average, schedule position, early-stopping and plateau state
    /// and batch order as the uninterrupted run. Dropout draws other masks after a resume (the
    /// backend's generator is not saved), so only a run without dropout repeats the
    /// uninterrupted one exactly.
    pub resume: bool,
}

/// Trains the experiment's global model on `panel` (on `device`, with autodiff), writing
/// `metrics.csv` after every epoch and the best weights to `model.bpk`.
pub fn fit(
    exp: &Experiment,
    panel: &Panel,
    device: &Device,
    dir: &Path,
    options: FitOptions,
) -> Result<Fitted> {
    let quiet = options.quiet;
    let m = &exp.model;
    let t = &exp.train;
    if matches!(m.panel_likelihood(), Likelihood::NegativeBinomial) && !panel.is_counts() {
        // Its log-likelihood reads other values through lgamma, a continuous extension, which
        // trains but is no longer a distribution of counts.
        crate::tell!(
            "note: model.likelihood = negative_binomial models counts, and the training values are not all whole numbers of at least 0 (interpolated gaps or missing values can make halves); student_t or gaussian model other values"
        );
    }
    let mut origins = panel.train_origins(exp.window.stride);
    // What the run needs, before anything is allocated.
    let batch = budget::batch_size(exp, origins.len());
    let sizes = [
        panel.input_size() + m.embedding_size,
        m.panel_likelihood().raw_size(),
        panel.calendar.len(),
    ];
    budget::check(
        exp,
        Estimate::of_sizes(exp, sizes, batch),
        budget::limit(exp),
    )?;
    let train_device = device.clone().autodiff();
    let config = model_config(exp, panel, panel.series.len())?;
    let mut model = seeded(device, t.seed, || config.try_init(&train_device))?;
    let clip = match t.clip {
        ClipMode::None => None,
        ClipMode::Value => Some(GradientClippingConfig::Value(t.clip_value as f32)),
        _ => Some(GradientClippingConfig::Norm(t.clip_value as f32)),
    };
    // `train.optimizer` and `weight_decay`; the rate each step from `train.schedule` and
    // reduce-on-plateau, as a single-series run sets it.
    let new_optim = || crate::run::build::optimizer_clipped(exp, clip.clone());
    let mut optim = new_optim();
    let mut plateau = (t.plateau_patience > 0)
        .then(|| ReduceOnPlateau::new(t.plateau_factor, t.plateau_patience, 1e-4, 0.0));
    let valid = panel.valid_origins();
    let passes = passes_per_epoch(origins.len(), batch, t.epoch_batches);
    if !quiet {
        crate::sayln!(
            "model: {} parameters, {} ({}); {} training windows over {} series, batches of {}{}",
            model.num_params(),
            exp.model.cell,
            m.panel_likelihood().name(),
            origins.len(),
            panel.series.len(),
            batch,
            if passes > 1 {
                format!(", {passes} passes an epoch (train.epoch_batches)")
            } else {
                String::new()
            }
        );
    }
    let mut rng = Rng::new(t.seed);
    let mut epochs: Vec<(f64, f64, f64)> = Vec::new();
    let (mut best, mut best_epoch) = (model.valid(), 0usize);
    // `train.ema_decay`: validate and keep the weight average instead of the weights.
    let mut ema = (t.ema_decay > 0.0).then(|| crate::ema::Ema::new(t.ema_decay));
    let mut best_loss = f64::INFINITY;
    let schedule = exp.schedule();
    let per_epoch = passes * origins.len().div_ceil(batch.max(1));
    let total = t.epochs * per_epoch;
    let mut step = 0usize;
    let mut shuffles = 0usize;
    let mut first = 1;
    if options.resume {
        let fresh = |on: &Device| Ok(config.try_init(on)?);
        let r = checkpoint::restore(dir, &fresh, &train_device, device, &new_optim, t.ema_decay)?;
        let s = r.state;
        (model, optim, best, ema) = (r.model, r.optim, r.best, r.ema);
        (best_epoch, best_loss, step) = (s.best_epoch, s.best_loss, s.step);
        epochs.clone_from(&s.epochs);
        if let (Some(p), Some(saved)) = (plateau.as_mut(), &s.plateau) {
            p.clone_from(saved);
        }
        // The batches the uninterrupted run would draw next: the same generator after the
        // same shuffles of the same windows.
        for _ in 0..s.shuffles {
            shuffle(&mut origins, &mut rng);
        }
        shuffles = s.shuffles;
        // Dropout's masks cannot continue the saved run's; a seed of its own keeps a resumed
        // run repeatable.
        seeded(device, t.seed.wrapping_add(s.epoch as u64), || ());
        first = s.epoch + 1;
        crate::sayln!(
            "resuming after epoch {} from {} (best epoch {}, validation loss {:.5})",
            s.epoch,
            r.path.display(),
            s.best_epoch,
            s.best_loss
        );
        if s.stopped_early(t.patience) {
            crate::sayln!(
                "the run had stopped early: no better validation loss in the {} epochs after epoch {} (train.patience = {}); to train on, raise train.patience in a copy of {} and give it with --config",
                s.epoch - s.best_epoch,
                s.best_epoch,
                t.patience,
                dir.join("config.toml").display()
            );
            first = usize::MAX;
        } else if first > t.epochs {
            crate::sayln!(
                "the run had trained its {} epochs (train.epochs); raise train.epochs to train on",
                s.epoch
            );
        }
        write_epochs(dir, &epochs)?;
    } else if options.checkpoints {
        checkpoint::clear(dir)?;
    }
    if !quiet && first <= t.epochs {
        crate::sayln!(
            "{:>5} {:>11} {:>11} {:>7}",
            "epoch",
            "train_loss",
            "valid_loss",
            "sec"
        );
    }
    for epoch in first..=t.epochs {
        let started = Instant::now();
        let (mut sum, mut batches) = (0.0, 0usize);
        for _ in 0..passes {
            shuffle(&mut origins, &mut rng);
            shuffles += 1;
            for chunk in origins.chunks(batch) {
                let l = loss(&model, panel, chunk, &train_device)?;
                let v = scalar(l.clone());
                if !v.is_finite() {
                    bail!("training stopped at epoch {epoch}: the loss became {v}; lower train.lr or set train.clip");
                }
                sum += v;
                batches += 1;
                let grads = GradientsParams::from_grads(l.backward(), &model);
                let scale = plateau.as_ref().map_or(1.0, ReduceOnPlateau::scale);
                let lr = schedule.lr(t.lr, step, total, per_epoch) * scale;
                step += 1;
                model = optim.step(lr, model, grads);
                if let Some(e) = &mut ema {
                    e.update(&model);
                }
            }
        }
        let inference = match &ema {
            Some(e) => e.apply(model.valid()),
            None => model.valid(),
        };
        let valid_loss = valid
            .chunks(256)
            .map(|c| loss(&inference, panel, c, device).map(|l| scalar(l) * c.len() as f64))
            .sum::<Result<f64>>()?
            / valid.len() as f64;
        let seconds = started.elapsed().as_secs_f64();
        epochs.push((sum / batches.max(1) as f64, valid_loss, seconds));
        if !quiet {
            crate::sayln!(
                "{epoch:>5} {:>11.5} {valid_loss:>11.5} {seconds:>7.1}",
                sum / batches as f64
            );
        }
        write_epochs(dir, &epochs)?;
        if let Some(p) = plateau.as_mut() {
            p.observe(valid_loss, t.lr);
        }
        // The weight average's model for the checkpoint, before `inference` may become `best`.
        let average = (options.checkpoints && ema.is_some()).then(|| inference.clone());
        let improved = valid_loss < best_loss;
        if improved {
            (best_loss, best, best_epoch) = (valid_loss, inference, epoch);
        }
        if options.checkpoints {
            let state = FitState {
                epoch,
                step,
                shuffles,
                best_epoch,
                best_loss,
                ema_updates: ema.as_ref().map_or(0, crate::ema::Ema::updates),
                epochs: epochs.clone(),
                plateau: plateau.clone(),
            };
            checkpoint::save(dir, &state, &model, &optim, &best, average.as_ref())?;
        }
        if !improved && epoch - best_epoch >= t.patience {
            break;
        }
    }
    save_model(&best, &dir.join("model.bpk"))?;
    Ok(Fitted {
        model: best,
        epochs,
        best_epoch,
    })
}

/// Seeds `device`'s generator and runs `draw` (a model's initialisation) while no other fit in
/// this process can seed it: the generator is the backend's, shared by every thread, so two
/// fits started side by side (a test binary's threads) would otherwise interleave their
/// draws and neither would get its seed's weights.
fn seeded<T>(device: &Device, seed: u64, draw: impl FnOnce() -> T) -> T {
    static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = GENERATOR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    device.seed(seed);
    draw()
}

/// The experiment's global model for `panel`, with an embedding for `series` ids.
pub(super) fn model_config(
    exp: &Experiment,
    panel: &Panel,
    series: usize,
) -> Result<GlobalForecasterConfig> {
    let m = &exp.model;
    let cell = m.cell_type().context("panel runs need rnn, gru or lstm")?;
    Ok(GlobalForecasterConfig::new(
        cell,
        panel.input_size(),
        m.hidden_size,
        panel.horizon,
        series,
        m.panel_likelihood(),
    )
    .with_embedding_size(m.embedding_size)
    .with_future_size(panel.calendar.len())
    .with_num_layers(m.num_layers)
    .with_dropout(m.dropout)
    .with_autoregressive(m.decoder == Decoder::Autoregressive))
}

/// Passes over `windows` training windows in batches of `batch` that an epoch of at least
/// `epoch_batches` batches takes (`train.epoch_batches`; 0 is one pass).
fn passes_per_epoch(windows: usize, batch: usize, epoch_batches: usize) -> usize {
    let per_pass = windows.div_ceil(batch.max(1)).max(1);
    epoch_batches.div_ceil(per_pass).max(1)
}

/// Fisher–Yates with the run's generator: the same seed, the same order.
fn shuffle(v: &mut [Origin], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.uniform() * (i + 1) as f64) as usize;
        v.swap(i, j.min(i));
    }
}

fn write_epochs(dir: &Path, epochs: &[(f64, f64, f64)]) -> Result<()> {
    let rows: Vec<Vec<String>> = epochs
        .iter()
        .enumerate()
        .map(|(i, (tr, va, s))| {
            vec![
                (i + 1).to_string(),
                tr.to_string(),
                va.to_string(),
                format!("{s:.3}"),
            ]
        })
        .collect();
    write_csv(
        &dir.join("metrics.csv"),
        &["epoch", "train_loss", "valid_loss", "seconds"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::passes_per_epoch;

    #[test]
    fn an_epoch_passes_until_it_has_its_batches() {
        // 642 windows in batches of 64: 11 a pass, so 50 batches take 5 passes (55 batches).
        assert_eq!(passes_per_epoch(642, 64, 50), 5);
        assert_eq!(passes_per_epoch(642, 64, 0), 1);
        assert_eq!(passes_per_epoch(54_400, 64, 50), 1);
        assert_eq!(passes_per_epoch(640, 64, 50), 5);
        assert_eq!(passes_per_epoch(3, 64, 50), 50);
    }
}
