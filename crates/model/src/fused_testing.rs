//! Shared by the fused ops' tests (CPU and GPU): a fused op against the step-by-step loop,
//! forward and backward, on the same device.

use burn::tensor::{Device, Distribution, Tensor};

use crate::stack::{CellKind, Stack, StackInput, StackOutput};
use crate::step_loop::loop_stack;
use crate::RecurrentLayer;

/// Every CPU device the fused CPU ops run on in this build (without autodiff).
#[allow(deprecated, clippy::vec_init_then_push, dead_code)]
pub(crate) fn host_devices() -> Vec<Device> {
    let mut all = Vec::new();
    #[cfg(feature = "flex")]
    all.push(Device::flex());
    #[cfg(feature = "ndarray")]
    all.push(Device::ndarray());
    all
}

/// The largest `|a − b| / (1 + |b|)` over two equally long slices.
pub(crate) fn worst_relative_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0.0f32, f32::max)
}

pub(crate) fn flat<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// The sizes of a comparison: hidden `h`, batch `b`, steps `t`, and each row's length.
#[derive(Clone, Copy)]
pub(crate) struct Case<'a> {
    pub(crate) h: usize,
    pub(crate) b: usize,
    pub(crate) t: usize,
    pub(crate) lengths: Option<&'a [usize]>,
}

/// A fused op's whole stack (it must apply).
pub(crate) type Fused<'f> = &'f dyn Fn(Stack, &StackInput) -> StackOutput;

/// `fused` against the step-by-step loop on `layers`: outputs, final states and the gradients
/// of every weight, the input and the initial states, for losses on every output and on each
/// final state alone.
pub(crate) fn compare_fused(
    kind: CellKind,
    layers: &[RecurrentLayer],
    device: &Device,
    case: Case,
    fused_stack: Fused,
) {
    let Case { h, b, t, lengths } = case;
    let i = layers[0].forward.weight_ih.dims()[1];
    let dirs = if layers[0].reverse.is_some() { 2 } else { 1 };
    let rows = layers.len() * dirs;
    let x = Tensor::<3>::random([b, t, i], Distribution::Normal(0.0, 1.0), device).require_grad();
    let h0 =
        Tensor::<3>::random([rows, b, h], Distribution::Normal(0.0, 0.5), device).require_grad();
    let c0 =
        Tensor::<3>::random([rows, b, h], Distribution::Normal(0.0, 0.5), device).require_grad();
    let lstm = kind == CellKind::Lstm;
    let dropout = burn::nn::DropoutConfig::new(0.0).init();
    // Which outputs the loss reads: all of them, then (each output's gradient reaches the
    // op on its own) only the final hidden state, only the final cell state.
    let run = |fused: bool, uses: [bool; 3]| {
        let c_init = lstm.then(|| c0.clone());
        let stack = Stack::new(kind, layers, &dropout, h);
        let args = StackInput {
            input: x.clone(),
            hidden0: Some(h0.clone()),
            cell0: c_init,
            lengths,
        };
        let out = if !fused {
            loop_stack(stack, args)
        } else {
            fused_stack(stack, &args)
        };
        let loss = loss_on(&out, uses, device);
        let grads = loss.backward();
        let mut all = vec![flat(out.output.inner()), flat(out.hidden.inner())];
        let c0 = lstm.then_some(&c0);
        all.extend(gradients(&grads, [&x, &h0].into_iter().chain(c0), layers));
        all
    };
    let mut losses = vec![[true; 3], [false, true, false]];
    if lstm {
        losses.push([false, false, true]);
    }
    for uses in losses {
        let (fused, looped) = (run(true, uses), run(false, uses));
        assert_eq!(fused.len(), looped.len());
        for (k, (a, b)) in fused.iter().zip(&looped).enumerate() {
            let worst = worst_relative_difference(a, b);
            assert!(
                worst < 2e-5,
                "{kind:?} loss on {uses:?}, tensor {k}: worst relative difference {worst}"
            );
        }
    }
}

/// The loss on the outputs `uses` names (every step's output, the final hidden state, the final
/// cell state), weighted unevenly over time so a direction mix-up or a missing flip shows.
fn loss_on(out: &StackOutput, uses: [bool; 3], device: &Device) -> Tensor<1> {
    let [b, t, features] = out.output.dims();
    let ramp = Tensor::<1, burn::tensor::Int>::arange(0..t as i64, device).float() * 0.1 + 0.3;
    let weights = ramp.reshape([1, t, 1]).expand([b, t, features]);
    let mut terms = vec![];
    if uses[0] {
        terms.push((out.output.clone() * weights).sum());
    }
    if uses[1] {
        terms.push(out.hidden.clone().powi_scalar(2).sum());
    }
    if let (true, Some(c)) = (uses[2], &out.cell) {
        terms.push((c.clone() * 0.7).sum());
    }
    terms.into_iter().reduce(|a, b| a + b).expect("a loss")
}

/// The gradients of `leaves` (input, initial states), then of every weight and bias.
fn gradients<'a>(
    grads: &burn::tensor::Gradients,
    leaves: impl Iterator<Item = &'a Tensor<3>>,
    layers: &[RecurrentLayer],
) -> Vec<Vec<f32>> {
    let mut all: Vec<Vec<f32>> = leaves.map(|t| flat(t.grad(grads).unwrap())).collect();
    for layer in layers {
        for w in std::iter::once(&layer.forward).chain(&layer.reverse) {
            for p in [&w.weight_ih, &w.weight_hh] {
                all.push(flat(p.val().grad(grads).unwrap()));
            }
            for p in [&w.bias_ih, &w.bias_hh].into_iter().flatten() {
                all.push(flat(p.val().grad(grads).unwrap()));
            }
        }
    }
    all
}
