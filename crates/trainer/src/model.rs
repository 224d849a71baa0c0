//! The forecaster as a Burn Learner model: MSE loss, clipping and the divergence guard in the
//! optimizer step.

use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use burn::train::{InferenceStep, RegressionOutput, TrainOutput, TrainStep};
use gatecast_data::ForecastBatch;
use gatecast_model::forecast::{Forecaster, SegRnn};

use crate::clip::{clip_global_norm, global_norm, scale_grads};
use crate::ema::SharedEma;
use crate::monitor::SharedMonitor;

/// A run's weight average ([`crate::ema`]): updated after every optimizer step, used by every
/// validation step, and saved as `<dir>/ema-<epoch>.bpk` at the end of each epoch (the epoch's
/// checkpoint of what was validated).
#[derive(Debug, Clone)]
pub struct EmaRun {
    /// The average, shared with the copies the Learner validates.
    pub ema: SharedEma,
    /// Optimizer steps per epoch.
    pub per_epoch: usize,
    /// Where the per-epoch averages go.
    pub dir: std::path::PathBuf,
}

impl EmaRun {
    /// The file holding the average at the end of `epoch`.
    pub fn path(dir: &std::path::Path, epoch: usize) -> std::path::PathBuf {
        dir.join(format!("ema-{epoch}.bpk"))
    }
}

/// How gradients are clipped before each update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clip {
    /// No clipping.
    None,
    /// PyTorch's `clip_grad_norm_`: every gradient scaled by one factor so the global norm is at
    /// most the threshold.
    GlobalNorm(f64),
    /// Burn's per-tensor norm clipping (configured on the optimizer).
    PerTensorNorm(f64),
    /// Burn's value clipping (configured on the optimizer).
    Value(f64),
}

/// The network of a run.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Net {
    /// A recurrent encoder with a direct or autoregressive head.
    Recurrent(Forecaster),
    /// The segment-recurrent model; forecasts every input channel, the targets are the first.
    Segment(SegRnn),
}

impl Net {
    /// `inputs [batch, lookback, inputs]` (+ future covariates `[batch, horizon, future]`, +
    /// each window's absolute step number `[batch]` for a learned cycle) → `[batch, horizon,
    /// targets]`.
    pub fn forward(
        &self,
        inputs: Tensor<3>,
        future: Option<Tensor<3>>,
        steps: Option<&[i64]>,
        targets: usize,
    ) -> Tensor<3> {
        match self {
            Net::Recurrent(f) => f.forward(inputs, future),
            Net::Segment(s) => {
                let phases = steps.map(|v| SegRnn::phases(v, s.cycle_len()));
                s.forward_at(inputs, phases.as_deref())
                    .narrow(2, 0, targets)
            }
        }
    }
}

/// The training loss of a point forecast: what one value's error `e` costs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PointLoss {
    /// `e²` (PyTorch's `MSELoss`).
    Mse,
    /// `|e|` (PyTorch's `L1Loss`).
    Mae,
    /// Huber's loss with this `delta` (PyTorch's `HuberLoss`): `0.5 e²` where `|e| ≤ delta`,
    /// `delta (|e| - delta / 2)` beyond; the gradient is `e` inside and `±delta` outside.
    Huber(f64),
}

impl std::fmt::Display for PointLoss {
    /// `MSE`, `MAE` or `Huber, delta 0.5` (the loss plot's title).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PointLoss::Mse => write!(f, "MSE"),
            PointLoss::Mae => write!(f, "MAE"),
            PointLoss::Huber(delta) => write!(f, "Huber, delta {delta}"),
        }
    }
}

impl PointLoss {
    /// Each value's cost, the shape of `diff` (forecast minus target).
    pub fn elementwise<const D: usize>(self, diff: Tensor<D>) -> Tensor<D> {
        match self {
            PointLoss::Mse => diff.powi_scalar(2),
            PointLoss::Mae => diff.abs(),
            PointLoss::Huber(delta) => {
                // `inside` is `|e|` up to delta and delta beyond it, so one expression covers
                // both branches: 0.5 e² inside, 0.5 delta² + delta (|e| - delta) outside.
                let abs = diff.abs();
                let inside = abs.clone().clamp_max(delta);
                inside.clone().powi_scalar(2).mul_scalar(0.5) + (abs - inside).mul_scalar(delta)
            }
        }
    }
}

/// The network + what the training loop needs.
#[derive(Module, Debug)]
pub struct ForecastModel {
    /// The network.
    pub net: Net,
    /// Targets per step (the first input channels).
    targets: usize,
    /// What each forecast value's error costs in training.
    #[module(skip)]
    loss: PointLoss,
    #[module(skip)]
    clip: Clip,
    #[module(skip)]
    monitor: Option<SharedMonitor>,
    /// Gradients arrive summed over this many devices; they are averaged before clipping.
    #[module(skip)]
    devices: usize,
    /// The weight average validation uses instead of the weights (`train.ema_decay`).
    #[module(skip)]
    ema: Option<EmaRun>,
}

impl ForecastModel {
    /// Wraps a forecaster; `monitor` receives gradient norms and stops a diverging run.
    pub fn new(net: Net, targets: usize, clip: Clip, monitor: Option<SharedMonitor>) -> Self {
        Self {
            net,
            targets,
            loss: PointLoss::Mse,
            clip,
            monitor,
            devices: 1,
            ema: None,
        }
    }

    /// Validates on (and saves each epoch) the weight average of `ema` instead of the weights.
    pub fn with_ema(mut self, ema: Option<EmaRun>) -> Self {
        self.ema = ema;
        self
    }

    /// The same model with another gradient clipping.
    pub fn with_clip(mut self, clip: Clip) -> Self {
        self.clip = clip;
        self
    }

    /// Trains on `loss` instead of the mean squared error.
    pub fn with_loss(mut self, loss: PointLoss) -> Self {
        self.loss = loss;
        self
    }

    /// Trains on `n` devices at once: Burn sums their gradients, this averages them (as PyTorch's
    /// DistributedDataParallel does), so the learning rate means the same as on one device.
    pub fn with_devices(mut self, n: usize) -> Self {
        self.devices = n.max(1);
        self
    }

    /// Forecast and loss (MSE, or another with [`Self::with_loss`]) of a batch; outputs flattened
    /// to `[batch, horizon * targets]`, the loss per window `[batch]` (see [`Self::step_with`]).
    pub fn forward_step(&self, batch: ForecastBatch) -> RegressionOutput {
        self.step_with(&self.net, batch).1
    }

    /// The batch's loss as a scalar `[1]` to differentiate, and the output the metrics read.
    ///
    /// The output's loss is each window's own loss, `[batch]`, detached: Burn's loss metric
    /// weighs a batch by the length of that tensor, so the epoch's loss is the mean over every
    /// window. A scalar would count the last, smaller batch of an epoch as much as a full one,
    /// and early stopping on `train.monitor = "loss"` would read that skewed mean.
    fn step_with(&self, net: &Net, batch: ForecastBatch) -> (Tensor<1>, RegressionOutput) {
        let pred = net.forward(
            batch.inputs,
            batch.future,
            batch.steps.as_deref(),
            self.targets,
        );
        let [b, h, t] = pred.dims();
        let error = self.loss.elementwise(pred.clone() - batch.targets.clone());
        let per_window = error
            .clone()
            .detach()
            .reshape([b, h * t])
            .mean_dim(1)
            .reshape([b]);
        let out = RegressionOutput::new(
            per_window,
            pred.reshape([b, h * t]),
            batch.targets.reshape([b, h * t]),
        );
        (error.mean(), out)
    }

    /// Forecasts `[batch, horizon, targets]` of `inputs [batch, lookback, inputs]`, with the
    /// known-future covariates and, for a learned cycle, each window's absolute step number
    /// (`gatecast_data::Window::step`).
    pub fn predict(
        &self,
        inputs: Tensor<3>,
        future: Option<Tensor<3>>,
        steps: Option<&[i64]>,
    ) -> Tensor<3> {
        self.net.forward(inputs, future, steps, self.targets)
    }
}

impl TrainStep for ForecastModel {
    type Input = ForecastBatch;
    type Output = RegressionOutput;

    fn step(&self, batch: ForecastBatch) -> TrainOutput<RegressionOutput> {
        let (loss, out) = self.step_with(&self.net, batch);
        TrainOutput::new(self, loss.backward(), out)
    }

    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        mut grads: GradientsParams,
    ) -> Self {
        if self.devices > 1 {
            scale_grads(&self, &mut grads, 1.0 / self.devices as f64);
        }
        let norm = match self.clip {
            Clip::GlobalNorm(max) => clip_global_norm(&self, &mut grads, max),
            // Per-tensor norm and value clipping happen in the optimizer (see `Clip`).
            Clip::PerTensorNorm(_) | Clip::Value(_) | Clip::None => global_norm(&self, &grads),
        };
        if let Some(monitor) = self.monitor.clone() {
            let mut m = monitor.lock().expect("monitor lock");
            m.grad_norms.push(norm);
            if !norm.is_finite() {
                let reason = format!(
                    "training stopped: the gradient norm became {norm} (loss diverged); lower train.lr or enable clipping. The last good checkpoint is kept."
                );
                m.diverged.get_or_insert(reason.clone());
                m.interrupter.stop(Some(&reason));
                return self; // no update with non-finite gradients
            }
        }
        let model = optim.step(lr, self, grads);
        if let Some(run) = &model.ema {
            let mut ema = run.ema.lock().expect("ema lock");
            ema.update(&model);
            let steps = ema.updates() as usize;
            if steps.is_multiple_of(run.per_epoch.max(1)) {
                let epoch = steps / run.per_epoch.max(1);
                let path = EmaRun::path(&run.dir, epoch);
                // A failed save is reported here; the run then fails naming the missing file
                // when it restores the best epoch, rather than keep the wrong weights.
                if let Err(e) = crate::run::saved::save_model(&ema.apply(model.valid()), &path) {
                    eprintln!("warning: {e:#}");
                }
            }
        }
        model
    }
}

impl InferenceStep for ForecastModel {
    type Input = ForecastBatch;
    type Output = RegressionOutput;

    fn step(&self, batch: ForecastBatch) -> RegressionOutput {
        match &self.ema {
            Some(run) => {
                let net = run.ema.lock().expect("ema lock").apply(self.net.clone());
                self.step_with(&net, batch).1
            }
            None => self.forward_step(batch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// PyTorch's `HuberLoss(reduction="none")` as its documentation defines it, in f64.
    fn huber(e: f64, delta: f64) -> f64 {
        if e.abs() <= delta {
            0.5 * e * e
        } else {
            delta * (e.abs() - 0.5 * delta)
        }
    }

    /// Errors on both sides of each delta, at it, at zero and far out.
    const ERRORS: [f64; 10] = [-4.0, -1.3, -0.5, -0.2, 0.0, 0.1, 0.49, 0.8, 1.7, 6.0];

    #[test]
    fn each_point_loss_is_its_formula() {
        let device = Device::flex();
        let e = Tensor::<1>::from_data(TensorData::new(ERRORS.to_vec(), [ERRORS.len()]), &device);
        type Reference = fn(f64) -> f64;
        let cases: [(PointLoss, Reference); 4] = [
            (PointLoss::Mse, |e| e * e),
            (PointLoss::Mae, |e| e.abs()),
            (PointLoss::Huber(1.0), |e| huber(e, 1.0)),
            (PointLoss::Huber(0.5), |e| huber(e, 0.5)),
        ];
        for (loss, reference) in cases {
            let got = loss
                .elementwise(e.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            for (&x, &g) in ERRORS.iter().zip(&got) {
                let want = reference(x);
                assert!(
                    (g as f64 - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{loss:?} at {x}: {g} against {want}"
                );
            }
        }
    }

    /// The Huber gradient through autodiff against central finite differences of the formula:
    /// `e` inside delta, `±delta` outside, so a wrong branch or a clamp without a gradient shows.
    #[test]
    fn the_huber_gradient_matches_finite_differences() {
        let ad = Device::flex().autodiff();
        for delta in [1.0, 0.5] {
            let e = Tensor::<1>::from_data(TensorData::new(ERRORS.to_vec(), [ERRORS.len()]), &ad)
                .require_grad();
            let grads = PointLoss::Huber(delta)
                .elementwise(e.clone())
                .sum()
                .backward();
            let got = e
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            for (&x, &g) in ERRORS.iter().zip(&got) {
                if (x.abs() - delta).abs() < 1e-9 {
                    continue; // the kink: either one-sided derivative is right
                }
                let h = 1e-6;
                let want = (huber(x + h, delta) - huber(x - h, delta)) / (2.0 * h);
                assert!(
                    (g as f64 - want).abs() <= 1e-5,
                    "delta {delta} at {x}: gradient {g} against {want}"
                );
            }
        }
    }
}
