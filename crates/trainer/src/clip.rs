//! Gradient clipping by the global norm over all parameters (PyTorch's `clip_grad_norm_`).
//!
//! Burn's `GradientClippingConfig::Norm` clips each parameter tensor by its own norm; the global
//! version rescales every gradient by the same factor so the direction of the whole update is
//! kept.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// Sums the squared gradient entries of every float parameter of a module.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let sq = g.powi_scalar(2).sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + sq,
                None => sq,
            });
        }
    }
}

/// Multiplies every gradient by one factor.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g * self.factor);
        }
    }
}

/// Multiplies every gradient of `module` by `factor` (e.g. `1/n` to average gradients summed over
/// `n` devices).
pub fn scale_grads<M: Module>(module: &M, grads: &mut GradientsParams, factor: f64) {
    module.visit(&mut Scale { grads, factor });
}

/// `sqrt(Σ_p ‖∂L/∂p‖²)` over every parameter of `module` that has a gradient (one device sync).
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut v = SquaredNorm { grads, total: None };
    module.visit(&mut v);
    v.total
        .map(|t| t.into_scalar::<f64>().sqrt())
        .unwrap_or(0.0)
}

/// Rescales all gradients by `max_norm / (norm + 1e-6)` when their global norm exceeds
/// `max_norm`, exactly as `torch.nn.utils.clip_grad_norm_`. Returns the pre-clip norm.
pub fn clip_global_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let norm = global_norm(module, grads);
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        module.visit(&mut Scale { grads, factor });
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, TensorData};

    fn setup() -> (Linear, GradientsParams) {
        let device = Device::flex();
        let linear: Linear = LinearConfig::new(2, 1).init(&device);
        let mut grads = GradientsParams::new();
        // weight [2, 1] gradient (3, 4), bias [1] gradient (12): global norm 13.
        grads.register(
            linear.weight.id,
            Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 4.0], [2, 1]), &device),
        );
        let bias = linear.bias.as_ref().unwrap();
        grads.register(
            bias.id,
            Tensor::<1>::from_data(TensorData::new(vec![12.0f32], [1]), &device),
        );
        (linear, grads)
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn matches_a_hand_computation() {
        let (linear, mut grads) = setup();
        assert!((global_norm(&linear, &grads) - 13.0).abs() < 1e-9);
        let before = clip_global_norm(&linear, &mut grads, 6.5);
        assert!((before - 13.0).abs() < 1e-9);
        let f = 6.5 / (13.0 + 1e-6);
        let w = values(grads.get::<2>(linear.weight.id).unwrap());
        let b = values(grads.get::<1>(linear.bias.as_ref().unwrap().id).unwrap());
        for (got, want) in w.iter().chain(&b).zip([3.0 * f, 4.0 * f, 12.0 * f]) {
            assert!((*got as f64 - want).abs() < 1e-5, "{got} vs {want}");
        }
        // Every tensor scaled by the same factor: unlike per-tensor clipping, the bias (norm 12)
        // and the weight (norm 5) keep their ratio.
        assert!((global_norm(&linear, &grads) - 6.5).abs() < 1e-4);
    }

    #[test]
    fn below_the_threshold_nothing_changes() {
        let (linear, mut grads) = setup();
        clip_global_norm(&linear, &mut grads, 100.0);
        assert_eq!(
            values(grads.get::<2>(linear.weight.id).unwrap()),
            vec![3.0, 4.0]
        );
    }
}
