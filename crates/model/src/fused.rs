//! The LSTM's whole sequence as one autodiff node on the flex backend.
//!
//! The step-by-step loop in [`crate::recurrence`] records ~15 autodiff nodes per step and
//! layer. Here one custom operation ([`Backward`]) takes the input projections of every step
//! `xw [T, B, 4H]` (one big matmul outside, so its weight gradient is one big matmul too), the
//! transposed recurrent weight `[H, 4H]` and the initial state, runs the recurrence on the inner
//! (non-autodiff) backend, saves the activated gates, and runs BPTT as a plain loop, with the
//! recurrent-weight gradient as one matmul after it. Used for unidirectional LSTMs without
//! `lengths` on an autodiff flex device; everything else takes the loop.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::Flex;
use burn::nn::Dropout;
use burn::tensor::Tensor;

use crate::recurrence::StackOutput;
use crate::weights::RecurrentLayer;

type Ad = Autodiff<Flex, NoCheckpointing>;
type Prim = burn::backend::tensor::FloatTensor<Flex>;

fn to_flex<const D: usize>(p: Prim) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(p)
}

fn prim<const D: usize>(t: Tensor<D>) -> Prim {
    t.try_into_primitive::<Flex>()
        .expect("a flex tensor inside the fused op")
}

/// What BPTT needs from the forward pass: the recurrent weight and flat row-major buffers.
#[derive(Clone, Debug)]
struct Saved {
    /// `[H, 4H]`.
    w: Prim,
    /// Activated gates (i, f, g, o) of every step, `[T, B, 4H]`.
    gates: Vec<f32>,
    /// `h_{t-1}` of every step, `[T, B, H]`.
    h_prev: Vec<f32>,
    /// `c_{t-1}` of every step, `[T, B, H]`.
    c_prev: Vec<f32>,
    /// `tanh(c_t)` of every step, `[T, B, H]`.
    tanh_c: Vec<f32>,
    dims: [usize; 3],
}

fn values(p: Prim) -> Vec<f32> {
    p.into_data().try_into_vec::<f32>().expect("f32 values")
}

fn tensor<const D: usize>(v: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    to_flex(Prim::from_data(burn::tensor::TensorData::new(v, shape)))
}

/// `a [m, k] @ w [k, n]` on flex, as a flat vector.
fn matmul(a: Vec<f32>, m: usize, w: &Tensor<2>) -> Vec<f32> {
    let k = w.dims()[0];
    tensor(a, [m, k])
        .matmul(w.clone())
        .into_data()
        .try_into_vec::<f32>()
        .expect("f32 values")
}

/// tanh as a clamped 13/6 rational polynomial (Eigen's `generic_fast_tanh_float`): within a few
/// ulp of `f32::tanh`, branch-free, so the gate loops vectorise.
#[inline(always)]
fn fast_tanh(x: f32) -> f32 {
    const A1: f32 = 4.893_524_5e-3;
    const A3: f32 = 6.372_619_3e-4;
    const A5: f32 = 1.485_722_4e-5;
    const A7: f32 = 5.122_297e-8;
    const A9: f32 = -8.604_672e-11;
    const A11: f32 = 2.000_188e-13;
    const A13: f32 = -2.760_768_5e-16;
    const B0: f32 = 4.893_525e-3;
    const B2: f32 = 2.268_434_6e-3;
    const B4: f32 = 1.185_347e-4;
    const B6: f32 = 1.198_258_4e-6;
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let p = ((((((A13 * x2 + A11) * x2 + A9) * x2 + A7) * x2 + A5) * x2 + A3) * x2 + A1) * x;
    let q = ((B6 * x2 + B4) * x2 + B2) * x2 + B0;
    p / q
}

#[inline(always)]
fn fast_sigmoid(x: f32) -> f32 {
    0.5 + 0.5 * fast_tanh(0.5 * x)
}

fn sigmoid_in_place(v: &mut [f32]) {
    for x in v {
        *x = fast_sigmoid(*x);
    }
}

fn tanh_in_place(v: &mut [f32]) {
    for x in v {
        *x = fast_tanh(*x);
    }
}

/// Forward on flex: returns `[T, B, 2H]` (h_t ‖ c_t per step) and what backward needs. The
/// element-wise gate math of a step is one pass over `[B, H]`.
fn forward(xw: Prim, w: Prim, h0: Prim, c0: Prim) -> (Prim, Saved) {
    let dims = xw.layout().shape().dims::<3>();
    let [time, batch, g4] = dims;
    let hid = g4 / 4;
    let xw = values(xw);
    let w_t: Tensor<2> = to_flex(w.clone());
    let (bh, bg) = (batch * hid, batch * g4);
    let mut h = values(h0);
    let mut c = values(c0);
    let mut out = vec![0.0f32; time * batch * 2 * hid];
    let mut gates = vec![0.0f32; time * bg];
    let mut h_prev = vec![0.0f32; time * bh];
    let mut c_prev = vec![0.0f32; time * bh];
    let mut tanh_c = vec![0.0f32; time * bh];
    for t in 0..time {
        h_prev[t * bh..(t + 1) * bh].copy_from_slice(&h);
        c_prev[t * bh..(t + 1) * bh].copy_from_slice(&c);
        // Pre-activations, then the activations block by block (contiguous, vectorised).
        let mut pre = matmul(h.clone(), batch, &w_t); // [B, 4H]
        for (p, x) in pre.iter_mut().zip(&xw[t * bg..(t + 1) * bg]) {
            *p += *x;
        }
        for row in pre.chunks_exact_mut(g4) {
            let (ifg, o) = row.split_at_mut(3 * hid);
            let (if_, g) = ifg.split_at_mut(2 * hid);
            sigmoid_in_place(if_);
            tanh_in_place(g);
            sigmoid_in_place(o);
        }
        gates[t * bg..(t + 1) * bg].copy_from_slice(&pre);
        let tc_t = &mut tanh_c[t * bh..(t + 1) * bh];
        let out_t = &mut out[t * batch * 2 * hid..(t + 1) * batch * 2 * hid];
        for b in 0..batch {
            let row = &pre[b * g4..(b + 1) * g4];
            let (i, rest) = row.split_at(hid);
            let (f, rest) = rest.split_at(hid);
            let (g, o) = rest.split_at(hid);
            let c_b = &mut c[b * hid..(b + 1) * hid];
            let tc_b = &mut tc_t[b * hid..(b + 1) * hid];
            for j in 0..hid {
                c_b[j] = f[j] * c_b[j] + i[j] * g[j];
                tc_b[j] = fast_tanh(c_b[j]);
            }
            let h_b = &mut h[b * hid..(b + 1) * hid];
            for j in 0..hid {
                h_b[j] = o[j] * tc_b[j];
            }
            let o_b = &mut out_t[b * 2 * hid..(b + 1) * 2 * hid];
            o_b[..hid].copy_from_slice(h_b);
            o_b[hid..].copy_from_slice(c_b);
        }
    }
    let saved = Saved {
        w,
        gates,
        h_prev,
        c_prev,
        tanh_c,
        dims,
    };
    (prim(tensor(out, [time, batch, 2 * hid])), saved)
}

#[derive(Debug)]
struct LstmSeqBackward;

impl Backward<Flex, 4> for LstmSeqBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = values(grads.consume::<Flex>(&ops.node)); // [T, B, 2H]
        let s = ops.state;
        let [time, batch, g4] = s.dims;
        let hid = g4 / 4;
        let (bh, bg) = (batch * hid, batch * g4);
        let w: Tensor<2> = to_flex(s.w);
        let w_t = w.transpose(); // [4H, H]
        let mut dh_next = vec![0.0f32; bh];
        let mut dc_next = vec![0.0f32; bh];
        let mut dgates = vec![0.0f32; time * bg];
        for t in (0..time).rev() {
            let gt = &s.gates[t * bg..(t + 1) * bg];
            let tc_t = &s.tanh_c[t * bh..(t + 1) * bh];
            let cp = &s.c_prev[t * bh..(t + 1) * bh];
            let gr = &grad[t * batch * 2 * hid..(t + 1) * batch * 2 * hid];
            let dg = &mut dgates[t * bg..(t + 1) * bg];
            for b in 0..batch {
                let row = b * g4;
                for j in 0..hid {
                    let k = b * hid + j;
                    let (i, f, g, o) = (
                        gt[row + j],
                        gt[row + hid + j],
                        gt[row + 2 * hid + j],
                        gt[row + 3 * hid + j],
                    );
                    let tc = tc_t[k];
                    let dh = gr[b * 2 * hid + j] + dh_next[k];
                    let dc = gr[b * 2 * hid + hid + j] + dc_next[k] + dh * o * (1.0 - tc * tc);
                    dg[row + j] = dc * g * i * (1.0 - i);
                    dg[row + hid + j] = dc * cp[k] * f * (1.0 - f);
                    dg[row + 2 * hid + j] = dc * i * (1.0 - g * g);
                    dg[row + 3 * hid + j] = dh * tc * o * (1.0 - o);
                    dc_next[k] = dc * f;
                }
            }
            dh_next = matmul(dg.to_vec(), batch, &w_t);
        }
        let [n_xw, n_w, n_h0, n_c0] = ops.parents;
        if let Some(node) = n_w {
            let hp = tensor(s.h_prev, [time * batch, hid]);
            let dw = hp
                .transpose()
                .matmul(tensor(dgates.clone(), [time * batch, g4]));
            grads.register::<Flex>(node.id, prim(dw));
        }
        if let Some(node) = n_xw {
            grads.register::<Flex>(node.id, prim(tensor(dgates, [time, batch, g4])));
        }
        if let Some(node) = n_h0 {
            grads.register::<Flex>(node.id, prim(tensor(dh_next, [batch, hid])));
        }
        if let Some(node) = n_c0 {
            grads.register::<Flex>(node.id, prim(tensor(dc_next, [batch, hid])));
        }
    }
}

/// The fused op on autodiff-flex tensors: `xw [T, B, 4H]`, `w [H, 4H]`, `h0`, `c0` `[B, H]` →
/// `[T, B, 2H]` (h_t ‖ c_t). `None` when the tensors are not on an autodiff flex device.
fn lstm_seq(xw: &Tensor<3>, w: &Tensor<2>, h0: &Tensor<2>, c0: &Tensor<2>) -> Option<Tensor<3>> {
    let xw = xw.clone().try_into_primitive::<Ad>().ok()?;
    let w = w.clone().try_into_primitive::<Ad>().ok()?;
    let h0 = h0.clone().try_into_primitive::<Ad>().ok()?;
    let c0 = c0.clone().try_into_primitive::<Ad>().ok()?;
    let out = match LstmSeqBackward
        .prepare::<NoCheckpointing>([xw.node(), w.node(), h0.node(), c0.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (out, saved) = forward(
                xw.primitive().clone(),
                w.primitive().clone(),
                h0.primitive().clone(),
                c0.primitive().clone(),
            );
            prep.finish(saved, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(
            forward(
                xw.into_primitive(),
                w.into_primitive(),
                h0.into_primitive(),
                c0.into_primitive(),
            )
            .0,
        ),
    };
    Some(Tensor::from_primitive::<Ad>(out))
}

/// The whole stack through the fused op, or `None` where it does not apply (not an LSTM on an
/// autodiff flex device, bidirectional, or with lengths).
#[allow(clippy::too_many_arguments)]
pub(crate) fn try_run_lstm_stack(
    layers: &[RecurrentLayer],
    dropout: &Dropout,
    hidden_size: usize,
    input: &Tensor<3>,
    hidden0: &Option<Tensor<3>>,
    cell0: &Option<Tensor<3>>,
    lengths: Option<&[usize]>,
) -> Option<StackOutput> {
    if lengths.is_some() || layers.iter().any(|l| l.reverse.is_some()) {
        return None;
    }
    let device = input.device();
    // Only where the fused op's backend conversion works: probe with a scalar.
    Tensor::<1>::zeros([1], &device)
        .try_into_primitive::<Ad>()
        .ok()?;
    let [batch, time, _] = input.dims();
    let hid = hidden_size;
    let initial = |all: &Option<Tensor<3>>, row: usize| -> Tensor<2> {
        match all {
            Some(s) => s.clone().narrow(0, row, 1).reshape([batch, hid]),
            None => Tensor::zeros([batch, hid], &device),
        }
    };
    let mut x = input.clone();
    let (mut final_h, mut final_c) = (Vec::new(), Vec::new());
    for (index, layer) in layers.iter().enumerate() {
        if index > 0 {
            x = dropout.forward(x);
        }
        let w = &layer.forward;
        let features = x.dims()[2];
        let mut xw = x
            .swap_dims(0, 1)
            .reshape([time * batch, features])
            .matmul(w.weight_ih.val().transpose());
        for b in [&w.bias_ih, &w.bias_hh].into_iter().flatten() {
            xw = xw + b.val().unsqueeze_dim::<2>(0);
        }
        let xw = xw.reshape([time, batch, 4 * hid]);
        let out = lstm_seq(
            &xw,
            &w.weight_hh.val().transpose(),
            &initial(hidden0, index),
            &initial(cell0, index),
        )?;
        let hs = out.clone().narrow(2, 0, hid); // [T, B, H]
        final_h.push(hs.clone().narrow(0, time - 1, 1).reshape([batch, hid]));
        final_c.push(
            out.narrow(0, time - 1, 1)
                .narrow(2, hid, hid)
                .reshape([batch, hid]),
        );
        x = hs.swap_dims(0, 1); // [B, T, H]
    }
    Some(StackOutput {
        output: x,
        hidden: Tensor::stack(final_h, 0),
        cell: Some(Tensor::stack(final_c, 0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recurrence::{run_stack_loop, CellKind};
    use crate::LstmConfig;
    use burn::tensor::{Device, Distribution};

    /// The fused op against the step-by-step loop: outputs, final states and the gradients of
    /// every weight, the input and the initial state, on a 2-layer LSTM with dropout off.
    #[test]
    fn fused_matches_the_loop_forward_and_backward() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let (b, t, i, h) = (3, 17, 5, 8);
        let lstm = LstmConfig::new(i, h).with_num_layers(2).init(&device);
        let x =
            Tensor::<3>::random([b, t, i], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let h0 =
            Tensor::<3>::random([2, b, h], Distribution::Normal(0.0, 0.5), &device).require_grad();
        let c0 =
            Tensor::<3>::random([2, b, h], Distribution::Normal(0.0, 0.5), &device).require_grad();
        let dropout = burn::nn::DropoutConfig::new(0.0).init();
        let run = |fused: bool| {
            let out = if fused {
                try_run_lstm_stack(
                    &lstm.layers,
                    &dropout,
                    h,
                    &x,
                    &Some(h0.clone()),
                    &Some(c0.clone()),
                    None,
                )
                .expect("the fused path applies")
            } else {
                run_stack_loop(
                    CellKind::Lstm,
                    &lstm.layers,
                    &dropout,
                    h,
                    x.clone(),
                    Some(h0.clone()),
                    Some(c0.clone()),
                    None,
                )
            };
            // A loss touching every output, so every gradient path is exercised.
            let weights = Tensor::<3>::ones([b, t, h], &device) * 0.3;
            let loss = (out.output.clone() * weights).sum()
                + out.hidden.clone().powi_scalar(2).sum()
                + (out.cell.clone().expect("cell") * 0.7).sum();
            let grads = loss.backward();
            let mut all = vec![
                out.output.inner().into_data().try_to_vec::<f32>().unwrap(),
                out.hidden.inner().into_data().try_to_vec::<f32>().unwrap(),
                x.grad(&grads)
                    .unwrap()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap(),
                h0.grad(&grads)
                    .unwrap()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap(),
                c0.grad(&grads)
                    .unwrap()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap(),
            ];
            for layer in &lstm.layers {
                let w = &layer.forward;
                for p in [&w.weight_ih, &w.weight_hh] {
                    all.push(
                        p.val()
                            .grad(&grads)
                            .unwrap()
                            .into_data()
                            .try_to_vec()
                            .unwrap(),
                    );
                }
                for p in [&w.bias_ih, &w.bias_hh].into_iter().flatten() {
                    all.push(
                        p.val()
                            .grad(&grads)
                            .unwrap()
                            .into_data()
                            .try_to_vec()
                            .unwrap(),
                    );
                }
            }
            all
        };
        let (fused, looped) = (run(true), run(false));
        assert_eq!(fused.len(), looped.len());
        for (k, (a, b)) in fused.iter().zip(&looped).enumerate() {
            assert_eq!(a.len(), b.len());
            let worst = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 2e-5, "tensor {k}: worst difference {worst}");
        }
    }
}
