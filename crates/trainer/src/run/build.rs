//! The model and the optimizer an experiment describes.

use anyhow::{bail, Result};
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::Device;
use gatecast_data::WindowConfig;
use gatecast_model::forecast::{ForecasterConfig, SegNorm, SegRnnConfig};

use crate::config::{ClipMode, Decoder, Experiment, Optimizer, TrainSection};
use crate::model::{Clip, ForecastModel, FreqLoss, Net};
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
                .with_revin(m.revin)
                .try_init(device)?,
            )
        }
    };
    let clip = clip_of(&exp.train);
    Ok(ForecastModel::new(net, window.targets.len(), clip, monitor)
        .with_loss(exp.train.point_loss())
        .with_freq_loss(
            (exp.train.freq_loss > 0.0)
                .then(|| FreqLoss::new(exp.train.freq_loss, exp.window.horizon)),
        ))
}

/// `train.clip` and `train.clip_value` as the model's step applies them.
fn clip_of(t: &TrainSection) -> Clip {
    match t.clip {
        ClipMode::GlobalNorm => Clip::GlobalNorm(t.clip_value),
        ClipMode::Norm => Clip::PerTensorNorm(t.clip_value),
        ClipMode::Value => Clip::Value(t.clip_value),
        ClipMode::None => Clip::None,
    }
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
            .with_cycle(m.cycle)
            .with_channel_mix(m.channel_mix)
            .with_cell(m.segment_cell)
            .with_reverse_view(m.reverse_view)
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
    optimizer_clipped(exp, clipping)
}

/// The optimizer of `[train]` (`train.optimizer`, `weight_decay`, `momentum`) with Burn's
/// `clipping` of each gradient.
pub(crate) fn optimizer_clipped(
    exp: &Experiment,
    clipping: Option<GradientClippingConfig>,
) -> ModuleOptimizer {
    let t = &exp.train;
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Tensor, TensorData};
    use burn::train::TrainStep;
    use gatecast_data::ForecastBatch;

    use crate::model::Net;

    /// Every parameter's gradient, flattened, in visiting order.
    struct Collect<'a> {
        grads: &'a GradientsParams,
        all: Vec<Vec<f32>>,
    }

    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.all.push(g.into_data().try_to_vec::<f32>().unwrap());
            }
        }
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// The direct head's weight `[in, out]` and the gradient Burn computed for it.
    fn head(model: &ForecastModel) -> Param<Tensor<2>> {
        match &model.net {
            Net::Recurrent(f) => f.head.as_ref().unwrap().weight.clone(),
            Net::Segment(_) => unreachable!(),
        }
    }

    /// One optimizer step under each `train.clip` mode (SGD, lr 1, no momentum or decay) moves
    /// the head's weight by exactly its gradient clipped by hand: the whole gradient rescaled to
    /// the global norm, this tensor rescaled to its own norm, each value clamped, or nothing.
    #[test]
    fn each_clipping_mode_applies_the_clip_computed_by_hand() {
        let device = burn::tensor::Device::flex().autodiff();
        let window = WindowConfig::new(6, 2, vec!["y".into()], vec!["y".into()]);
        let batch = || {
            let x: Vec<f32> = (0..4 * 6).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
            let y: Vec<f32> = (0..4 * 2).map(|i| ((i * 5) % 7) as f32 * 3.0).collect();
            ForecastBatch {
                inputs: Tensor::from_data(TensorData::new(x, [4, 6, 1]), &device),
                targets: Tensor::from_data(TensorData::new(y, [4, 2, 1]), &device),
                future: None,
                steps: None,
            }
        };
        for clip in [
            ClipMode::GlobalNorm,
            ClipMode::Norm,
            ClipMode::Value,
            ClipMode::None,
        ] {
            let mut exp = Experiment::default();
            exp.model.hidden_size = 4;
            exp.window.lookback = 6;
            exp.window.horizon = 2;
            exp.train.optimizer = Optimizer::Sgd;
            exp.train.momentum = 0.0;
            exp.train.clip = clip;
            device.seed(1);
            let model = build_model(&exp, &window, &device, None).unwrap();
            let grads = TrainStep::step(&model, batch()).grads;
            let mut all = Collect {
                grads: &grads,
                all: Vec::new(),
            };
            model.visit(&mut all);
            let global = all.all.iter().flatten().map(|g| g * g).sum::<f32>().sqrt();
            let w = head(&model);
            let g = values(grads.get::<2>(w.id).unwrap());
            let own = g.iter().map(|v| v * v).sum::<f32>().sqrt();
            let largest = g.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            // Thresholds that bite: below every norm, and below the largest value.
            exp.train.clip_value = match clip {
                ClipMode::GlobalNorm => (global / 4.0) as f64,
                ClipMode::Norm => (own / 3.0) as f64,
                ClipMode::Value => (largest / 2.0) as f64,
                ClipMode::None => 1.0,
            };
            let c = exp.train.clip_value as f32;
            let model = model.with_clip(clip_of(&exp.train));
            let clipped: Vec<f32> = match clip {
                ClipMode::GlobalNorm => g.iter().map(|v| v * c / (global + 1e-6)).collect(),
                ClipMode::Norm => g.iter().map(|v| v * c / own).collect(),
                ClipMode::Value => g.iter().map(|v| v.clamp(-c, c)).collect(),
                ClipMode::None => g.clone(),
            };
            let before = values(w.val());
            let mut optim = optimizer(&exp);
            let after = model.optimize(&mut optim, ModuleLearningRate::from(1.0), grads);
            let after = values(head(&after).val());
            for ((b, a), d) in before.iter().zip(&after).zip(&clipped) {
                assert!(
                    (b - a - d).abs() <= 1e-5 * (1.0 + d.abs()),
                    "{clip:?}: step {} where the clipped gradient is {d}",
                    b - a
                );
            }
            if clip == ClipMode::Value {
                assert!(g.iter().any(|v| v.abs() < c), "some values unclipped");
            }
        }
    }
}
