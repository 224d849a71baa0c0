//! Training a global model: windows shuffled across series and time, passed over until an
//! epoch has its batches (`train.epoch_batches`), the likelihood's loss, the optimizer and rate
//! of `[train]` (Adam at a constant rate unless set; gradients clipped per tensor), early
//! stopping on the validation rows with the best epoch's weights kept.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use gatecast_model::forecast::{GlobalForecaster, GlobalForecasterConfig, Likelihood, Rng};

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

/// Trains the experiment's global model on `panel` (on `device`, with autodiff), writing
/// `metrics.csv` after every epoch and the best weights to `model.bpk`.
pub fn fit(
    exp: &Experiment,
    panel: &Panel,
    device: &Device,
    dir: &Path,
    quiet: bool,
) -> Result<Fitted> {
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
    device.seed(t.seed);
    let train_device = device.clone().autodiff();
    let mut model = model_config(exp, panel, panel.series.len())?.try_init(&train_device)?;
    let clip = match t.clip {
        ClipMode::None => None,
        ClipMode::Value => Some(GradientClippingConfig::Value(t.clip_value as f32)),
        _ => Some(GradientClippingConfig::Norm(t.clip_value as f32)),
    };
    // `train.optimizer` and `weight_decay`; the rate each step from `train.schedule` and
    // reduce-on-plateau, as a single-series run sets it.
    let mut optim = crate::run::build::optimizer_clipped(exp, clip);
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
        crate::sayln!(
            "{:>5} {:>11} {:>11} {:>7}",
            "epoch",
            "train_loss",
            "valid_loss",
            "sec"
        );
    }
    let mut rng = Rng::new(t.seed);
    let mut epochs = Vec::new();
    let (mut best, mut best_epoch) = (model.valid(), 0usize);
    // `train.ema_decay`: validate and keep the weight average instead of the weights.
    let mut ema = (t.ema_decay > 0.0).then(|| crate::ema::Ema::new(t.ema_decay));
    let mut best_loss = f64::INFINITY;
    let schedule = exp.schedule();
    let per_epoch = passes * origins.len().div_ceil(batch.max(1));
    let total = t.epochs * per_epoch;
    let mut step = 0usize;
    for epoch in 1..=t.epochs {
        let started = Instant::now();
        let (mut sum, mut batches) = (0.0, 0usize);
        for _ in 0..passes {
            shuffle(&mut origins, &mut rng);
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
        if valid_loss < best_loss {
            (best_loss, best, best_epoch) = (valid_loss, inference, epoch);
        } else if epoch - best_epoch >= t.patience {
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
