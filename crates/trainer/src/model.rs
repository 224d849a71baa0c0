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

/// FreDF's frequency-domain training term (Wang et al., "FreDF: Learning to Forecast in the
/// Frequency Domain", ICLR 2025): each window's forecast error is transformed along the horizon
/// by the real discrete Fourier transform (unnormalised, as `torch.fft.rfft`), and the term is
/// the mean modulus of the transformed error over the `horizon / 2 + 1` bins and the targets.
/// The training loss is `(1 - weight) * point + weight * frequency`.
///
/// The transform is one matmul with a `[horizon, 2 * bins]` basis, so every backend runs it and
/// autodiff differentiates it.
#[derive(Debug, Clone)]
pub struct FreqLoss {
    weight: f64,
    horizon: usize,
    /// Row-major `[horizon, 2 * bins]`: `cos(2π k t / horizon)` in the first `bins` columns,
    /// `-sin(2π k t / horizon)` in the rest (the real and imaginary parts of bin `k`).
    basis: std::sync::Arc<Vec<f32>>,
}

impl FreqLoss {
    /// The term for forecasts of `horizon` steps, mixed in with `weight` in `(0, 1]`.
    pub fn new(weight: f64, horizon: usize) -> Self {
        let bins = horizon / 2 + 1;
        let mut basis = vec![0f32; horizon * 2 * bins];
        for t in 0..horizon {
            for k in 0..bins {
                // The product is reduced modulo the horizon first, so the angle keeps its
                // precision at long horizons.
                let angle =
                    2.0 * std::f64::consts::PI * ((k * t) % horizon) as f64 / horizon as f64;
                basis[t * 2 * bins + k] = angle.cos() as f32;
                basis[t * 2 * bins + bins + k] = -angle.sin() as f32;
            }
        }
        Self {
            weight,
            horizon,
            basis: std::sync::Arc::new(basis),
        }
    }

    /// Each window's frequency term `[batch]` of the error `diff [batch, horizon, targets]`
    /// (forecast minus target).
    pub fn per_window(&self, diff: Tensor<3>) -> Tensor<1> {
        let [b, h, t] = diff.dims();
        assert_eq!(
            h, self.horizon,
            "the frequency loss was built for horizon {}",
            self.horizon
        );
        let bins = h / 2 + 1;
        // Built from the host copy each step: at most `[720, 722]` values, small beside the
        // step's products, and it keeps the model free of per-device tensor caches.
        let basis = Tensor::<2>::from_data(
            burn::tensor::TensorData::new(self.basis.as_ref().clone(), [h, 2 * bins]),
            &diff.device(),
        );
        let spectrum = diff.swap_dims(1, 2).reshape([b * t, h]).matmul(basis);
        let re = spectrum.clone().narrow(1, 0, bins);
        let im = spectrum.narrow(1, bins, bins);
        // The small constant keeps the gradient finite where a bin's error is exactly zero
        // (PyTorch's `abs` of a complex zero has gradient zero; this has almost zero there).
        let modulus = (re.powi_scalar(2) + im.powi_scalar(2))
            .add_scalar(1e-12)
            .sqrt();
        modulus.reshape([b, t * bins]).mean_dim(1).reshape([b])
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
    /// The frequency-domain term mixed into the loss (`train.freq_loss`).
    #[module(skip)]
    freq: Option<FreqLoss>,
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
            freq: None,
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

    /// Mixes FreDF's frequency-domain term into the training loss ([`FreqLoss`]); `None` or a
    /// weight of 0 trains on the point loss alone.
    pub fn with_freq_loss(mut self, freq: Option<FreqLoss>) -> Self {
        self.freq = freq.filter(|f| f.weight > 0.0);
        self
    }

    /// Trains on `n` devices at once: Burn sums their gradients, this averages them (as PyTorch's
    /// DistributedDataParallel does), so the learning rate means the same as on one device.
    pub fn with_devices(mut self, n: usize) -> Self {
        self.devices = n.max(1);
        self
    }

    /// Forecast and loss (MSE, or another with [`Self::with_loss`]) of a batch; outputs flattened
    /// to `[batch, horizon * targets]`, the loss per window `[batch]`, so that Burn's loss
    /// metric weighs a short last batch by its windows.
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
        let diff = pred.clone() - batch.targets.clone();
        let error = self.loss.elementwise(diff.clone());
        let point = |e: Tensor<3>| e.reshape([b, h * t]).mean_dim(1).reshape([b]);
        let (loss, per_window) = match &self.freq {
            // Every window has the same number of values, so the mean of the per-window
            // losses is the mean over every value, as PyTorch's losses reduce.
            Some(f) => {
                let mixed = point(error).mul_scalar(1.0 - f.weight)
                    + f.per_window(diff).mul_scalar(f.weight);
                (mixed.clone().mean(), mixed.detach())
            }
            // The point loss alone keeps its reduction over every value, so runs without the
            // term are the same to the last bit as before it existed.
            None => (error.clone().mean(), point(error.detach())),
        };
        let out = RegressionOutput::new(
            per_window,
            pred.reshape([b, h * t]),
            batch.targets.reshape([b, h * t]),
        );
        (loss, out)
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
                    crate::tell!("warning: {e:#}");
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

    /// The frequency term of one window as FreDF computes it, in f64 by the DFT's definition:
    /// `mean over targets and k = 0..=h/2 of |sum_t e[t] exp(-2πi k t / h)|`. `e` is `[h, t]`.
    fn freq_reference(e: &[f64], h: usize, t: usize) -> f64 {
        let bins = h / 2 + 1;
        let mut sum = 0.0;
        for c in 0..t {
            for k in 0..bins {
                let (mut re, mut im) = (0.0, 0.0);
                for s in 0..h {
                    let a = 2.0 * std::f64::consts::PI * (k * s) as f64 / h as f64;
                    re += e[s * t + c] * a.cos();
                    im -= e[s * t + c] * a.sin();
                }
                sum += (re * re + im * im).sqrt();
            }
        }
        sum / (t * bins) as f64
    }

    /// Deterministic errors in [-1, 1] for `n` values.
    fn errors(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    /// Odd and even horizons (the Nyquist bin exists only for even ones), one and several
    /// targets, and a long horizon where the angles' precision matters.
    #[test]
    fn the_frequency_term_is_the_mean_modulus_of_the_real_dft() {
        let device = Device::flex();
        for (b, h, t) in [(3, 7, 1), (2, 8, 3), (2, 96, 7), (1, 720, 2)] {
            let e = errors(b * h * t, (h * 31 + t) as u64);
            let diff = Tensor::<3>::from_data(
                TensorData::new(e.iter().map(|&v| v as f32).collect(), [b, h, t]),
                &device,
            );
            let got = FreqLoss::new(1.0, h)
                .per_window(diff)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            for (w, &g) in got.iter().enumerate() {
                let want = freq_reference(&e[w * h * t..(w + 1) * h * t], h, t);
                assert!(
                    (g as f64 - want).abs() <= 1e-4 * want,
                    "[{b}, {h}, {t}] window {w}: {g} against {want}"
                );
            }
        }
    }

    /// The gradient of the summed term through autodiff against central finite differences of
    /// the f64 reference, for every value of two windows.
    #[test]
    fn the_frequency_term_gradient_matches_finite_differences() {
        let ad = Device::flex().autodiff();
        let (b, h, t) = (2, 10, 2);
        let e = errors(b * h * t, 5);
        let diff = Tensor::<3>::from_data(
            TensorData::new(e.iter().map(|&v| v as f32).collect(), [b, h, t]),
            &ad,
        )
        .require_grad();
        let grads = FreqLoss::new(1.0, h)
            .per_window(diff.clone())
            .sum()
            .backward();
        let got = diff
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for i in 0..e.len() {
            let w = i / (h * t);
            let window = |d: f64| {
                let mut v = e[w * h * t..(w + 1) * h * t].to_vec();
                v[i - w * h * t] += d;
                freq_reference(&v, h, t)
            };
            let step = 1e-6;
            let want = (window(step) - window(-step)) / (2.0 * step);
            assert!(
                (got[i] as f64 - want).abs() <= 1e-4,
                "value {i}: gradient {} against {want}",
                got[i]
            );
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
