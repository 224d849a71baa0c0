//! The model and the optimizer an experiment describes.

use anyhow::{bail, Result};
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::Device;
use gatecast_data::WindowConfig;
use gatecast_model::forecast::{ForecasterConfig, SegNorm, SegRnnConfig};

use crate::config::{ClipMode, Decoder, Experiment, Loss, Optimizer};
use crate::model::{Clip, ForecastModel, Net};
use crate::monitor;

/// Builds the model of an experiment for data with `window`'s columns.
pub fn build_model(
    exp: &Experiment,
    window: &WindowConfig,
    device: &Device,
    monitor: Option<monitor::SharedMonitor>,
) -> Result<ForecastModel> {
    let net = match exp.model.cell_type() {
        None => segment_net(exp, window, device)?,
        Some(cell) => {
            let m = &exp.model;
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
                .with_autoregressive(m.decoder == Decoder::Autoregressive)
                .with_last_value_norm(m.last_value_norm)
                .try_init(device)?,
            )
        }
    };
    let t = &exp.train;
    let clip = match t.clip {
        ClipMode::GlobalNorm => Clip::GlobalNorm(t.clip_value),
        ClipMode::Norm => Clip::PerTensorNorm(t.clip_value),
        ClipMode::Value => Clip::Value(t.clip_value),
        ClipMode::None => Clip::None,
    };
    Ok(ForecastModel::new(net, window.targets.len(), clip, monitor)
        .with_l1_loss(t.loss == Loss::Mae))
}

/// The segment-recurrent network (`model.cell = segrnn`).
fn segment_net(exp: &Experiment, window: &WindowConfig, device: &Device) -> Result<Net> {
    let m = &exp.model;
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
    Ok(Net::Segment(
        SegRnnConfig::new(window.lookback, exp.window.horizon, window.inputs.len())
            .with_segment(m.segment)
            .with_hidden_size(m.hidden_size)
            .with_dropout(m.dropout)
            .with_norm(norm)
            .try_init(device)?,
    ))
}

/// The optimizer of `[train]`, with Burn's per-tensor clipping where `train.clip` asks for it
/// (the global norm is clipped in the model's step instead, see [`Clip`]).
pub(super) fn optimizer(exp: &Experiment) -> ModuleOptimizer {
    let t = &exp.train;
    let clipping = match t.clip {
        ClipMode::Norm => Some(GradientClippingConfig::Norm(t.clip_value as f32)),
        ClipMode::Value => Some(GradientClippingConfig::Value(t.clip_value as f32)),
        ClipMode::GlobalNorm | ClipMode::None => None,
    };
    let decay = (t.weight_decay > 0.0).then(|| WeightDecayConfig::new(t.weight_decay as f32));
    match t.optimizer {
        Optimizer::Adamw => AdamWConfig::new()
            .with_weight_decay(t.weight_decay as f32)
            .with_grad_clipping(clipping)
            .init(),
        Optimizer::Sgd => SgdConfig::new()
            .with_weight_decay(decay)
            .with_momentum(Some(MomentumConfig::new().with_momentum(t.momentum)))
            .with_gradient_clipping(clipping)
            .init(),
        Optimizer::Adam => AdamConfig::new()
            .with_weight_decay(decay)
            .with_grad_clipping(clipping)
            .init(),
    }
}
