//! An exponential moving average of the weights (`train.ema_decay`), as PyTorch's
//! `torch.optim.swa_utils.AveragedModel` with an EMA `multi_avg_fn`, timm's `ModelEmaV2` or
//! Keras' `use_ema`: training updates the weights as usual; validation, early stopping, the kept
//! model and the test are on the average.
//!
//! The average is bias-corrected as Adam corrects its moments: after `t` updates it is
//! `Σ_i decay^(t-i) w_i / Σ_i decay^(t-i)` over the weights `w_1 … w_t` after each step, so it
//! starts at the first step's weights and is never pulled towards zero or towards the random
//! initialisation. (A plain EMA started at the initial weights, at decay 0.99 and 60 steps an
//! epoch, would still hold half of them after the first epoch; TensorFlow's
//! `num_updates` warm-up avoids that by keeping the decay far below the configured one for the
//! first thousand steps, which in a run of a few hundred steps means barely averaging at all.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

/// The average of every float parameter, flattened, without autodiff, keyed by parameter id (ids
/// survive `valid()`, optimizer steps and record loading, so one average serves the training
/// model and its validation copies).
#[derive(Debug, Clone)]
pub struct Ema {
    decay: f64,
    updates: u64,
    shadow: HashMap<ParamId, Tensor<1>>,
}

/// An [`Ema`] shared between the training model and the copies Burn's Learner validates.
pub type SharedEma = Arc<Mutex<Ema>>;

impl Ema {
    /// An empty average with `decay` in `(0, 1)`.
    pub fn new(decay: f64) -> Self {
        assert!(
            decay > 0.0 && decay < 1.0,
            "EMA decay {decay} outside (0, 1)"
        );
        Self {
            decay,
            updates: 0,
            shadow: HashMap::new(),
        }
    }

    /// An average that starts at `module`'s weights (a resumed run's saved average), as if it
    /// had seen `updates` updates already (so its next update weighs them as the uninterrupted
    /// run would have).
    pub fn starting_at<M: Module>(decay: f64, module: &M, updates: u64) -> Self {
        let mut ema = Self::new(decay);
        let mut visit = Visit {
            shadow: &mut ema.shadow,
            keep: 0.0,
        };
        module.visit(&mut visit);
        ema.updates = updates;
        ema
    }

    /// The weight the average keeps at the next (`t`-th) update: `(d - d^t) / (1 - d^t)`, which
    /// is 0 at the first and tends to the decay `d`.
    fn next_keep(&self) -> f64 {
        let dt = self.decay.powf((self.updates + 1) as f64);
        (self.decay - dt) / (1.0 - dt)
    }

    /// Moves the average towards `module`'s current weights (call after each optimizer step).
    pub fn update<M: Module>(&mut self, module: &M) {
        let keep = self.next_keep();
        let mut visit = Visit {
            shadow: &mut self.shadow,
            keep,
        };
        module.visit(&mut visit);
        self.updates += 1;
    }

    /// Updates so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// `module` with every averaged parameter replaced by its average (same ids, same
    /// gradient requirement, same device kind); parameters never averaged are left as they are.
    pub fn apply<M: Module>(&self, module: M) -> M {
        module.map(&mut Apply {
            shadow: &self.shadow,
        })
    }
}

struct Visit<'a> {
    shadow: &'a mut HashMap<ParamId, Tensor<1>>,
    /// Weight of the old average; 0 replaces it.
    keep: f64,
}

impl ModuleVisitor for Visit<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let now = param.val().without_autodiff().flatten::<1>(0, D - 1);
        let next = match self.shadow.remove(&param.id) {
            Some(old) if self.keep > 0.0 => old * self.keep + now * (1.0 - self.keep),
            _ => now,
        };
        self.shadow.insert(param.id, next);
    }
}

struct Apply<'a> {
    shadow: &'a HashMap<ParamId, Tensor<1>>,
}

impl ModuleMapper for Apply<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(avg) = self.shadow.get(&param.id) else {
            return param;
        };
        let avg = avg.clone();
        param.map(|t| {
            let v = avg.reshape(t.shape()).to_device(&t.device().inner());
            match (t.is_autodiff(), t.is_require_grad()) {
                (true, true) => v.autodiff().require_grad(),
                (true, false) => v.autodiff(),
                _ => v,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, TensorData};

    fn weights(l: &Linear) -> Vec<f32> {
        l.weight.val().into_data().try_to_vec::<f32>().unwrap()
    }

    fn set(l: Linear, v: f32) -> Linear {
        let mut l = l;
        l.weight = l.weight.map(|w| w.ones_like() * v);
        l
    }

    /// The average is the decay-weighted mean of every step's weights (the documented bias
    /// correction), and `apply` writes it back without touching the ids.
    #[test]
    fn average_is_the_bias_corrected_weighted_mean() {
        let device = Device::flex();
        let l = LinearConfig::new(3, 2).init(&device);
        let mut ema = Ema::new(0.9);
        let seen = [
            2.0f32, 4.0, -1.0, 7.0, 3.0, 5.0, 0.5, 9.0, 1.0, 2.0, 6.0, 8.0, 4.0, 3.0,
        ];
        for &v in &seen {
            ema.update(&set(l.clone(), v));
        }
        assert_eq!(ema.updates(), 14);
        let n = seen.len();
        let weight = |i: usize| 0.9f64.powi((n - 1 - i) as i32);
        let expect = (0..n).map(|i| weight(i) * seen[i] as f64).sum::<f64>()
            / (0..n).map(weight).sum::<f64>();
        let averaged = ema.apply(set(l.clone(), 100.0));
        assert_eq!(averaged.weight.id, l.weight.id);
        for w in weights(&averaged) {
            assert!((w as f64 - expect).abs() < 1e-5, "{w} against {expect}");
        }
    }

    /// A parameter the average has never seen is left as it is.
    #[test]
    fn apply_leaves_unknown_parameters_alone() {
        let device = Device::flex();
        let seen = LinearConfig::new(2, 2).init(&device);
        let other = LinearConfig::new(2, 2).init(&device);
        let mut ema = Ema::new(0.5);
        ema.update(&set(seen, 3.0));
        assert_eq!(weights(&ema.apply(other.clone())), weights(&other));
    }

    /// Averaging an autodiff model keeps it trainable: the averaged weights still require
    /// gradients and receive them.
    #[test]
    fn apply_keeps_autodiff_parameters_trainable() {
        let device = Device::flex().autodiff();
        let l = LinearConfig::new(2, 1).init(&device);
        let mut ema = Ema::new(0.5);
        ema.update(&l);
        let l = ema.apply(l);
        assert!(l.weight.val().is_require_grad());
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0], [1, 2]), &device);
        let grads = l.forward(x).sum().backward();
        let g = l
            .weight
            .grad(&grads)
            .expect("gradient of the averaged weight");
        assert_eq!(g.into_data().try_to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
    }

    /// A resumed average starts at the saved weights and weighs them as the uninterrupted run
    /// would: after 3 updates of 1.0 and one of 3.0 at decay 0.5, (0.5³+0.5²+0.5)·1 + 3 over
    /// (0.5³+0.5²+0.5+1).
    #[test]
    fn starting_at_resumes_the_average() {
        let device = Device::flex();
        let l = LinearConfig::new(2, 2).init(&device);
        let mut ema = Ema::starting_at(0.5, &set(l.clone(), 1.0), 3);
        ema.update(&set(l.clone(), 3.0));
        let expect = (0.875 + 3.0) / 1.875;
        for w in weights(&ema.apply(l)) {
            assert!((w as f64 - expect).abs() < 1e-5);
        }
    }
}
