//! The sLSTM cell of xLSTM (Beck et al., 2024), as P-sLSTM (Kong et al., 2025) and xLSTMTime
//! run it over patches of a time series: an LSTM whose input gate is exponential, with a
//! normaliser state so that the output stays a weighted mean of the cell inputs, and a
//! stabiliser state so that the exponentials cannot overflow.
//!
//! For gate pre-activations `ĩ, f̃, z̃, õ` (input weights times `x`, recurrent weights times
//! `h`, plus bias):
//!
//! ```text
//! c_t = f_t c_{t-1} + i_t tanh(z̃)      i_t = exp(ĩ)
//! n_t = f_t n_{t-1} + i_t              f_t = sigmoid(f̃)
//! h_t = sigmoid(õ) · c_t / n_t
//! ```
//!
//! computed with every `c` and `n` scaled by `exp(-m_t)`, where
//! `m_t = max(log f_t + m_{t-1}, ĩ)` (and `m_1 = ĩ`): the ratio `c_t / n_t`, so the output, does
//! not change, `exp` never sees a positive argument, and `n_t ≥ 1`. Because the output does
//! not depend on `m`, the stabiliser carries no gradient.
//!
//! Only the cell: xLSTM's block around it (causal convolution, group norm, feed-forward) is
//! not here, and the recurrent weights are one full matrix rather than one block per head.
//! Its products are Burn matmuls; on the CPU backends each step's element-wise update is one
//! fused autodiff node (`fused_cpu::try_slstm_step`).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::RecurrentError;

/// Configuration of an [`SLstm`] cell.
#[derive(Config, Debug)]
pub struct SLstmConfig {
    /// Input features per step.
    pub input_size: usize,
    /// State size `d`.
    pub hidden_size: usize,
}

/// One sLSTM cell (see the module's documentation for its equations).
#[derive(Module, Debug)]
pub struct SLstm {
    /// Input weights and the gates' biases, `[input] → [4·d]`, gates in the order input,
    /// forget, cell input, output. The forget biases start spread from 5 down to -7 over the
    /// units (xLSTM's "power-law" start), so that some units keep their state for many steps
    /// and others for few; the other biases start at 0.
    pub input: Linear,
    /// Recurrent weights `[d, 4·d]` (same gate order), zero at the start as in xLSTM.
    pub recurrent: Param<Tensor<2>>,
    hidden: usize,
}

/// An sLSTM state: each of `h` (the output), `c` (the cell), `n` (the normaliser) and `m` (the
/// stabiliser, without gradient) is `[rows, d]`.
#[derive(Clone, Debug)]
pub struct SLstmState {
    /// Output `[rows, d]`.
    pub h: Tensor<2>,
    /// Cell, scaled by `exp(-m)`, `[rows, d]`.
    pub c: Tensor<2>,
    /// Normaliser, scaled by `exp(-m)`, `[rows, d]`.
    pub n: Tensor<2>,
    /// Stabiliser `[rows, d]`.
    pub m: Tensor<2>,
}

impl SLstmConfig {
    /// Builds the cell; panics where [`SLstmConfig::try_init`] would return an error.
    pub fn init(&self, device: &Device) -> SLstm {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds the cell, or says which size is zero.
    pub fn try_init(&self, device: &Device) -> Result<SLstm, RecurrentError> {
        for (option, v) in [
            ("input_size", self.input_size),
            ("hidden_size", self.hidden_size),
        ] {
            if v == 0 {
                return Err(RecurrentError::InvalidConfig {
                    option,
                    value: "0".into(),
                    expected: "must be at least 1",
                });
            }
        }
        let d = self.hidden_size;
        let mut input = LinearConfig::new(self.input_size, 4 * d).init(device);
        input.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(initial_biases(d), [4 * d]),
            device,
        )));
        Ok(SLstm {
            input,
            recurrent: Param::from_tensor(Tensor::zeros([d, 4 * d], device)),
            hidden: d,
        })
    }
}

/// The starting biases `[4·d]`: zero, except the forget gate's `5 − 12 (k / (d − 1))^0.3` for
/// unit `k`.
fn initial_biases(d: usize) -> Vec<f32> {
    let mut bias = vec![0.0f32; 4 * d];
    for k in 0..d {
        let ratio = if d > 1 {
            k as f64 / (d - 1) as f64
        } else {
            0.0
        };
        bias[d + k] = (5.0 - 12.0 * ratio.powf(0.3)) as f32;
    }
    bias
}

impl SLstm {
    /// State size `d`.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// Runs over `x [rows, steps, input]` from a zero state and returns the final state.
    pub fn forward_final(&self, x: Tensor<3>) -> SLstmState {
        let [rows, steps, input] = x.dims();
        self.run(steps, |t| x.clone().narrow(1, t, 1).reshape([rows, input]))
    }

    /// Runs over `steps` steps from a zero state, step `t`'s input `[rows, input]` given by
    /// `input_at(t)`, and returns the final state (`steps ≥ 1`).
    ///
    /// A caller that derives every step's input from one tensor should slice that tensor
    /// before the parts that carry gradients, where it can: the gradient of a slice is a
    /// zero-filled tensor of the whole sliced tensor's shape, one per step.
    pub fn run(&self, steps: usize, input_at: impl Fn(usize) -> Tensor<2>) -> SLstmState {
        let mut state: Option<SLstmState> = None;
        for t in 0..steps {
            let gx = self.input.forward(input_at(t));
            state = Some(self.update(gx, state.as_ref()));
        }
        state.expect("at least one step")
    }

    /// The recurrent part of the gates for a state, `h [rows, d]` → `[rows, 4·d]`.
    pub fn recurrent_gates(&self, h: Tensor<2>) -> Tensor<2> {
        h.matmul(self.recurrent.val())
    }

    /// One step given the input part of the gates `gx [rows, 4·d]` (bias included): adds the
    /// recurrent part from `prev` (none from a zero state) and updates the state.
    pub fn update(&self, gx: Tensor<2>, prev: Option<&SLstmState>) -> SLstmState {
        let raw = match prev {
            Some(s) => gx + self.recurrent_gates(s.h.clone()),
            None => gx,
        };
        self.pointwise(raw, prev)
    }

    /// The element-wise update from the full gate pre-activations `raw [rows, 4·d]` and the
    /// previous cell, normaliser and stabiliser (`prev.h` is not read; none from a zero state).
    ///
    /// On the CPU backends (`f32` on flex or ndarray) and with the fused ops on
    /// ([`crate::set_fused`]) this is one autodiff node (`fused_cpu::try_slstm_step`);
    /// elsewhere Burn's element-wise ops. Both compute the same function.
    pub fn pointwise(&self, raw: Tensor<2>, prev: Option<&SLstmState>) -> SLstmState {
        self.pointwise_with(raw, prev, crate::fused_enabled())
    }

    /// [`SLstm::pointwise`], with the fused node only where `fused`.
    pub(crate) fn pointwise_with(
        &self,
        raw: Tensor<2>,
        prev: Option<&SLstmState>,
        fused: bool,
    ) -> SLstmState {
        let d = self.hidden;
        #[cfg(any(feature = "flex", feature = "ndarray"))]
        if fused && crate::fused_cpu::slstm_applies(&raw) {
            let [rows, _] = raw.dims();
            let device = raw.device();
            let (c, n, m) = match prev {
                Some(s) => (s.c.clone(), s.n.clone(), s.m.clone()),
                // A zero state: no cell, no normaliser, and a stabiliser below every ĩ.
                None => (
                    Tensor::zeros([rows, d], &device),
                    Tensor::zeros([rows, d], &device),
                    Tensor::full([rows, d], f32::NEG_INFINITY, &device),
                ),
            };
            if let Some(out) = crate::fused_cpu::try_slstm_step(&raw, &c, &n, &m) {
                let part = |k: usize| out.clone().narrow(1, k * d, d);
                return SLstmState {
                    h: part(0),
                    c: part(1),
                    n: part(2),
                    m: part(3).detach(),
                };
            }
        }
        let _ = fused;
        let gate = |k: usize| raw.clone().narrow(1, k * d, d);
        let (i, f, z, o) = (gate(0), gate(1), gate(2), gate(3));
        let cell_in = z.tanh();
        let out_gate = sigmoid(o);
        let (c, n, m) = match prev {
            None => {
                // From a zero state the previous cell and normaliser contribute nothing, and
                // m = ĩ makes the input gate exp(0) = 1.
                let m = i.clone().detach();
                let ig = (i - m.clone()).exp();
                (ig.clone() * cell_in, ig, m)
            }
            Some(s) => {
                let log_f = log_sigmoid(f) + s.m.clone();
                let m = i.clone().detach().max_pair(log_f.clone().detach());
                let ig = (i - m.clone()).exp();
                let fg = (log_f - m.clone()).exp();
                (
                    fg.clone() * s.c.clone() + ig.clone() * cell_in,
                    fg * s.n.clone() + ig,
                    m,
                )
            }
        };
        SLstmState {
            h: out_gate * c.clone() / n.clone(),
            c,
            n,
            m,
        }
    }
}

impl SLstmState {
    /// Each row repeated `times` times in place (row `r` becomes rows `r·times .. (r+1)·times`).
    pub fn repeat_rows(&self, times: usize) -> SLstmState {
        let each = |t: &Tensor<2>| {
            let [rows, d] = t.dims();
            t.clone()
                .reshape([rows, 1, d])
                .expand([rows, times, d])
                .reshape([rows * times, d])
        };
        SLstmState {
            h: each(&self.h),
            c: each(&self.c),
            n: each(&self.n),
            m: each(&self.m),
        }
    }
}

#[cfg(all(test, any(feature = "flex", feature = "ndarray")))]
mod tests {
    use super::*;
    use crate::fused_testing::{host_devices, worst_relative_difference};
    use burn::tensor::Distribution;

    /// The fused step (one autodiff node) against Burn's element-wise ops: the same state and
    /// the same gradients for the gate pre-activations and the previous cell and normaliser,
    /// from a zero state and from a given one (uneven row counts, large pre-activations), on
    /// every host backend, with and without autodiff.
    #[test]
    fn the_fused_step_is_the_tensor_ops_step() {
        for device in host_devices() {
            let ad = device.clone().autodiff();
            let (rows, d) = (7, 5);
            let cell = SLstmConfig::new(3, d).try_init(&ad).unwrap();
            let normal = |std: f64| Distribution::Normal(0.0, std);
            let raw = Tensor::<2>::random([rows, 4 * d], normal(3.0), &ad).require_grad();
            let c = Tensor::<2>::random([rows, d], normal(1.0), &ad).require_grad();
            let n = (Tensor::<2>::random([rows, d], normal(1.0), &ad).abs() + 1.0).require_grad();
            let m = Tensor::<2>::random([rows, d], normal(2.0), &ad);
            let weight = |k: i64| {
                Tensor::<1, burn::tensor::Int>::arange(k..k + (rows * d) as i64, &ad)
                    .float()
                    .reshape([rows, d])
                    .sin()
            };
            for first in [true, false] {
                let prev = SLstmState {
                    h: Tensor::zeros([rows, d], &ad),
                    c: c.clone(),
                    n: n.clone(),
                    m: m.clone(),
                };
                let run = |fused: bool| {
                    let s = cell.pointwise_with(raw.clone(), (!first).then_some(&prev), fused);
                    let loss = (s.h.clone() * weight(0)).sum()
                        + (s.c.clone() * weight(100)).sum()
                        + (s.n.clone() * weight(200)).sum();
                    let grads = loss.backward();
                    let mut all = vec![s.h, s.c, s.n, s.m, raw.grad(&grads).unwrap()];
                    if !first {
                        all.push(c.grad(&grads).unwrap());
                        all.push(n.grad(&grads).unwrap());
                    }
                    all.into_iter()
                        .map(|t| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap())
                        .collect::<Vec<_>>()
                };
                let (fused, ops) = (run(true), run(false));
                for (k, (a, e)) in fused.iter().zip(&ops).enumerate() {
                    let worst = worst_relative_difference(a, e);
                    assert!(worst < 1e-4, "first {first}, tensor {k}: {worst}");
                }
                // Without autodiff: the same state.
                let plain = cell.valid();
                let raw = Tensor::<2>::from_data(raw.clone().into_data(), &device);
                let prev = SLstmState {
                    h: Tensor::zeros([rows, d], &device),
                    c: Tensor::from_data(c.clone().into_data(), &device),
                    n: Tensor::from_data(n.clone().into_data(), &device),
                    m: Tensor::from_data(m.clone().into_data(), &device),
                };
                let a = plain.pointwise_with(raw.clone(), (!first).then_some(&prev), true);
                let e = plain.pointwise_with(raw, (!first).then_some(&prev), false);
                a.h.into_data().assert_approx_eq::<f32>(
                    &e.h.into_data(),
                    burn::tensor::Tolerance::absolute(1e-5),
                );
            }
        }
    }
}
