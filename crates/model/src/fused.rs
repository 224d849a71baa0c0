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

use crate::recurrence::{CellKind, StackOutput};
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

/// Runs `forward` as one autodiff node differentiated by `backward` (autodiff flex), or just runs
/// it (plain flex, inference). The four inputs are `xw [T, B, G·H]` and three matrices (the
/// transposed recurrent weight, then a bias row or initial states, as `forward` expects); `None`
/// when they are not on flex.
fn fused_node<Bw: Backward<Flex, 4>>(
    backward: Bw,
    xw: &Tensor<3>,
    inputs: [&Tensor<2>; 3],
    forward: impl Fn([Prim; 4]) -> (Prim, Bw::State),
) -> Option<Tensor<3>> {
    let Ok(xw_ad) = xw.clone().try_into_primitive::<Ad>() else {
        let [a, b, c] = inputs.map(|t| t.clone().try_into_primitive::<Flex>().ok());
        let (out, _) = forward([xw.clone().try_into_primitive::<Flex>().ok()?, a?, b?, c?]);
        return Some(to_flex(out));
    };
    let [a, b, c] = inputs.map(|t| t.clone().try_into_primitive::<Ad>().ok());
    let all = [xw_ad, a?, b?, c?];
    let out = match backward
        .prepare::<NoCheckpointing>(all.each_ref().map(|t| t.node()))
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (out, saved) = forward(all.each_ref().map(|t| t.primitive().clone()));
            prep.finish(saved, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(all.map(|t| t.into_primitive())).0),
    };
    Some(Tensor::from_primitive::<Ad>(out))
}

/// What BPTT of an Elman RNN or GRU needs.
#[derive(Clone, Debug)]
struct RecSaved {
    kind: CellKind,
    /// `[H, G·H]`.
    w: Prim,
    /// Elman: `h_t`, `[T, B, H]`; GRU: activated (r, z, n), `[T, B, 3H]`.
    act: Vec<f32>,
    /// GRU: `h W_hn + b_hn` of every step, `[T, B, H]` (empty for Elman).
    rec_n: Vec<f32>,
    /// `h_{t-1}` of every step, `[T, B, H]`.
    h_prev: Vec<f32>,
    /// `[T, B, H]`.
    dims: [usize; 3],
}

/// Forward of an Elman RNN or GRU on flex: `xw [T, B, G·H]`, `w [H, G·H]`, `b_rec [1, G·H]` (the
/// GRU's `b_hh`; zeros for Elman, whose biases are in `xw`), `h0 [B, H]` → `h_t [T, B, H]`.
fn rec_forward(kind: CellKind, xw: Prim, w: Prim, b_rec: Prim, h0: Prim) -> (Prim, RecSaved) {
    let [time, batch, gh] = xw.layout().shape().dims::<3>();
    let gates = if kind == CellKind::Gru { 3 } else { 1 };
    let hid = gh / gates;
    let xw = values(xw);
    let b_rec = values(b_rec);
    let w_t: Tensor<2> = to_flex(w.clone());
    let (bh, bg) = (batch * hid, batch * gh);
    let mut h = values(h0);
    let mut hs = vec![0.0f32; time * bh];
    let mut act = vec![0.0f32; if kind == CellKind::Gru { time * bg } else { 0 }];
    let mut rec_n = vec![0.0f32; if kind == CellKind::Gru { time * bh } else { 0 }];
    let mut h_prev = vec![0.0f32; time * bh];
    for t in 0..time {
        h_prev[t * bh..(t + 1) * bh].copy_from_slice(&h);
        let mut rec = matmul(h.clone(), batch, &w_t); // [B, G·H]
        for row in rec.chunks_exact_mut(gh) {
            for (r, b) in row.iter_mut().zip(&b_rec) {
                *r += *b;
            }
        }
        let x = &xw[t * bg..(t + 1) * bg];
        match kind {
            CellKind::Lstm => unreachable!("the LSTM has its own fused op"),
            CellKind::ElmanTanh | CellKind::ElmanRelu => {
                for (r, x) in rec.iter_mut().zip(x) {
                    *r += *x;
                }
                if kind == CellKind::ElmanTanh {
                    tanh_in_place(&mut rec);
                } else {
                    for r in rec.iter_mut() {
                        *r = r.max(0.0);
                    }
                }
                h.copy_from_slice(&rec);
            }
            CellKind::Gru => {
                let a = &mut act[t * bg..(t + 1) * bg];
                let rn = &mut rec_n[t * bh..(t + 1) * bh];
                for b in 0..batch {
                    let (xr, rr) = (&x[b * gh..(b + 1) * gh], &rec[b * gh..(b + 1) * gh]);
                    let ab = &mut a[b * gh..(b + 1) * gh];
                    for j in 0..2 * hid {
                        ab[j] = xr[j] + rr[j];
                    }
                    sigmoid_in_place(&mut ab[..2 * hid]);
                    for j in 0..hid {
                        ab[2 * hid + j] = xr[2 * hid + j] + ab[j] * rr[2 * hid + j];
                    }
                    tanh_in_place(&mut ab[2 * hid..]);
                    rn[b * hid..(b + 1) * hid].copy_from_slice(&rr[2 * hid..]);
                    let hb = &mut h[b * hid..(b + 1) * hid];
                    for j in 0..hid {
                        let (z, n) = (ab[hid + j], ab[2 * hid + j]);
                        hb[j] = n + z * (hb[j] - n);
                    }
                }
            }
        }
        hs[t * bh..(t + 1) * bh].copy_from_slice(&h);
    }
    let act = if kind == CellKind::Gru {
        act
    } else {
        hs.clone()
    };
    let saved = RecSaved {
        kind,
        w,
        act,
        rec_n,
        h_prev,
        dims: [time, batch, hid],
    };
    (prim(tensor(hs, [time, batch, hid])), saved)
}

#[derive(Debug)]
struct RecSeqBackward;

impl Backward<Flex, 4> for RecSeqBackward {
    type State = RecSaved;

    fn backward(self, ops: Ops<RecSaved, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = values(grads.consume::<Flex>(&ops.node)); // [T, B, H]
        let s = ops.state;
        let [time, batch, hid] = s.dims;
        let gru = s.kind == CellKind::Gru;
        let gh = if gru { 3 * hid } else { hid };
        let (bh, bg) = (batch * hid, batch * gh);
        let w_t = to_flex::<2>(s.w).transpose(); // [G·H, H]
        let mut dh_next = vec![0.0f32; bh];
        // Gradients of the input projection and of the recurrent projection `h W + b_rec`
        // (equal for Elman; for the GRU they differ in the n block).
        let mut dxw = vec![0.0f32; time * bg];
        let mut drec = vec![0.0f32; if gru { time * bg } else { 0 }];
        for t in (0..time).rev() {
            let g = &grad[t * bh..(t + 1) * bh];
            let hp = &s.h_prev[t * bh..(t + 1) * bh];
            let mut dh: Vec<f32> = g.iter().zip(&dh_next).map(|(a, b)| a + b).collect();
            match s.kind {
                CellKind::Lstm => unreachable!("the LSTM has its own fused op"),
                CellKind::ElmanTanh | CellKind::ElmanRelu => {
                    let h = &s.act[t * bh..(t + 1) * bh];
                    let d = &mut dxw[t * bg..(t + 1) * bg];
                    for k in 0..bh {
                        d[k] = if s.kind == CellKind::ElmanTanh {
                            dh[k] * (1.0 - h[k] * h[k])
                        } else if h[k] > 0.0 {
                            dh[k]
                        } else {
                            0.0
                        };
                    }
                    dh_next = matmul(d.to_vec(), batch, &w_t);
                }
                CellKind::Gru => {
                    let a = &s.act[t * bg..(t + 1) * bg];
                    let rn = &s.rec_n[t * bh..(t + 1) * bh];
                    let dx = &mut dxw[t * bg..(t + 1) * bg];
                    let dr = &mut drec[t * bg..(t + 1) * bg];
                    for b in 0..batch {
                        for j in 0..hid {
                            let k = b * hid + j;
                            let (r, z, n) =
                                (a[b * gh + j], a[b * gh + hid + j], a[b * gh + 2 * hid + j]);
                            let d = dh[k];
                            let dn_pre = d * (1.0 - z) * (1.0 - n * n);
                            let dz_pre = d * (hp[k] - n) * z * (1.0 - z);
                            let dr_pre = dn_pre * rn[k] * r * (1.0 - r);
                            dx[b * gh + j] = dr_pre;
                            dx[b * gh + hid + j] = dz_pre;
                            dx[b * gh + 2 * hid + j] = dn_pre;
                            dr[b * gh + j] = dr_pre;
                            dr[b * gh + hid + j] = dz_pre;
                            dr[b * gh + 2 * hid + j] = dn_pre * r;
                            dh[k] = d * z;
                        }
                    }
                    let back = matmul(dr.to_vec(), batch, &w_t);
                    dh_next = dh.iter().zip(&back).map(|(a, b)| a + b).collect();
                }
            }
        }
        let drec = if gru { drec } else { dxw.clone() };
        let [n_xw, n_w, n_b, n_h0] = ops.parents;
        if let Some(node) = n_w {
            let hp = tensor(s.h_prev, [time * batch, hid]);
            let dw = hp
                .transpose()
                .matmul(tensor(drec.clone(), [time * batch, gh]));
            grads.register::<Flex>(node.id, prim(dw));
        }
        if let Some(node) = n_b {
            let db = tensor(drec, [time * batch, gh]).sum_dim(0); // [1, G·H]
            grads.register::<Flex>(node.id, prim(db));
        }
        if let Some(node) = n_xw {
            grads.register::<Flex>(node.id, prim(tensor(dxw, [time, batch, gh])));
        }
        if let Some(node) = n_h0 {
            grads.register::<Flex>(node.id, prim(tensor(dh_next, [batch, hid])));
        }
    }
}

/// The whole stack through the fused op, or `None` where it does not apply: not on flex,
/// bidirectional, with `lengths`, or GRU inference (there the fused forward measured no faster:
/// its per-step copies outweigh the gate-math gain at B64 H128).
#[allow(clippy::too_many_arguments)]
pub(crate) fn try_run_stack(
    kind: CellKind,
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
    let probe = Tensor::<1>::zeros([1], &device);
    let training = probe.clone().try_into_primitive::<Ad>().is_ok();
    if !training && (kind == CellKind::Gru || probe.try_into_primitive::<Flex>().is_err()) {
        return None;
    }
    let [batch, time, _] = input.dims();
    let hid = hidden_size;
    let gh = kind.gates() * hid;
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
        // The GRU keeps b_hh on the recurrent side (inside r ⊙ ·); the others fold both here.
        let folded = if kind == CellKind::Gru {
            [&w.bias_ih, &None]
        } else {
            [&w.bias_ih, &w.bias_hh]
        };
        for b in folded.into_iter().flatten() {
            xw = xw + b.val().unsqueeze_dim::<2>(0);
        }
        let xw = xw.reshape([time, batch, gh]);
        let w_hh_t = w.weight_hh.val().transpose();
        let h0 = initial(hidden0, index);
        let hs = if kind == CellKind::Lstm {
            let c0 = initial(cell0, index);
            let out = fused_node(LstmSeqBackward, &xw, [&w_hh_t, &h0, &c0], |[a, b, c, d]| {
                forward(a, b, c, d)
            })?;
            final_c.push(
                out.clone()
                    .narrow(0, time - 1, 1)
                    .narrow(2, hid, hid)
                    .reshape([batch, hid]),
            );
            out.narrow(2, 0, hid)
        } else {
            let b_rec = match (&w.bias_hh, kind) {
                (Some(b), CellKind::Gru) => b.val().unsqueeze_dim::<2>(0),
                _ => Tensor::zeros([1, gh], &device),
            };
            fused_node(
                RecSeqBackward,
                &xw,
                [&w_hh_t, &b_rec, &h0],
                |[a, b, c, d]| rec_forward(kind, a, b, c, d),
            )?
        }; // [T, B, H]
        final_h.push(hs.clone().narrow(0, time - 1, 1).reshape([batch, hid]));
        x = hs.swap_dims(0, 1); // [B, T, H]
    }
    Some(StackOutput {
        output: x,
        hidden: Tensor::stack(final_h, 0),
        cell: (kind == CellKind::Lstm).then(|| Tensor::stack(final_c, 0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recurrence::{run_stack_loop, CellKind};
    use crate::{GruConfig, LstmConfig, Nonlinearity, RnnConfig};
    use burn::tensor::{Device, Distribution};

    fn flat<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// The fused op against the step-by-step loop on 2-layer stacks: outputs, final states and
    /// the gradients of every weight, the input and the initial states.
    fn compare(kind: CellKind, layers: &[RecurrentLayer], device: &Device, h: usize) {
        let (b, t, i) = (3, 17, 5);
        let x =
            Tensor::<3>::random([b, t, i], Distribution::Normal(0.0, 1.0), device).require_grad();
        let h0 =
            Tensor::<3>::random([2, b, h], Distribution::Normal(0.0, 0.5), device).require_grad();
        let c0 =
            Tensor::<3>::random([2, b, h], Distribution::Normal(0.0, 0.5), device).require_grad();
        let lstm = kind == CellKind::Lstm;
        let dropout = burn::nn::DropoutConfig::new(0.0).init();
        let run = |fused: bool| {
            let c_init = lstm.then(|| c0.clone());
            let out = if !fused {
                run_stack_loop(
                    kind,
                    layers,
                    &dropout,
                    h,
                    x.clone(),
                    Some(h0.clone()),
                    c_init.clone(),
                    None,
                )
            } else {
                try_run_stack(
                    kind,
                    layers,
                    &dropout,
                    h,
                    &x,
                    &Some(h0.clone()),
                    &c_init,
                    None,
                )
                .expect("the fused path applies")
            };
            // A loss touching every output, so every gradient path is exercised.
            let weights = Tensor::<3>::ones([b, t, h], device) * 0.3;
            let mut loss =
                (out.output.clone() * weights).sum() + out.hidden.clone().powi_scalar(2).sum();
            if let Some(c) = &out.cell {
                loss = loss + (c.clone() * 0.7).sum();
            }
            let grads = loss.backward();
            let mut all = vec![
                flat(out.output.inner()),
                flat(out.hidden.inner()),
                flat(x.grad(&grads).unwrap()),
                flat(h0.grad(&grads).unwrap()),
            ];
            if lstm {
                all.push(flat(c0.grad(&grads).unwrap()));
            }
            for layer in layers {
                let w = &layer.forward;
                for p in [&w.weight_ih, &w.weight_hh] {
                    all.push(flat(p.val().grad(&grads).unwrap()));
                }
                for p in [&w.bias_ih, &w.bias_hh].into_iter().flatten() {
                    all.push(flat(p.val().grad(&grads).unwrap()));
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
            assert!(
                worst < 2e-5,
                "{kind:?} tensor {k}: worst difference {worst}"
            );
        }
    }

    /// Inference (no autodiff): the fused forward against the loop.
    #[test]
    fn fused_inference_matches_the_loop() {
        let device = Device::flex();
        device.seed(6);
        let (b, t, i, h) = (4, 13, 3, 6);
        let x = Tensor::<3>::random([b, t, i], Distribution::Normal(0.0, 1.0), &device);
        let dropout = burn::nn::DropoutConfig::new(0.0).init();
        let lstm = LstmConfig::new(i, h).with_num_layers(2).init(&device);
        let gru = GruConfig::new(i, h).with_num_layers(2).init(&device);
        let rnn = RnnConfig::new(i, h).with_num_layers(2).init(&device);
        // GRU inference stays on the loop.
        assert!(try_run_stack(
            CellKind::Gru,
            &gru.layers,
            &dropout,
            h,
            &x,
            &None,
            &None,
            None
        )
        .is_none());
        let cases = [
            (CellKind::Lstm, &lstm.layers),
            (CellKind::ElmanTanh, &rnn.layers),
        ];
        for (kind, layers) in cases {
            let fused = try_run_stack(kind, layers, &dropout, h, &x, &None, &None, None)
                .expect("the fused path applies without autodiff");
            let looped = run_stack_loop(kind, layers, &dropout, h, x.clone(), None, None, None);
            for (a, b) in [
                (fused.output, looped.output),
                (
                    fused.hidden.unsqueeze_dim::<4>(0).squeeze_dim::<3>(0),
                    looped.hidden,
                ),
            ] {
                let worst: f32 = (a - b).abs().max().into_scalar();
                assert!(worst < 1e-5, "{kind:?}: {worst}");
            }
        }
    }

    #[test]
    fn fused_matches_the_loop_forward_and_backward() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let (i, h) = (5, 8);
        let lstm = LstmConfig::new(i, h).with_num_layers(2).init(&device);
        compare(CellKind::Lstm, &lstm.layers, &device, h);
        let gru = GruConfig::new(i, h).with_num_layers(2).init(&device);
        compare(CellKind::Gru, &gru.layers, &device, h);
        let gru = GruConfig::new(i, h)
            .with_num_layers(2)
            .with_bias(false)
            .init(&device);
        compare(CellKind::Gru, &gru.layers, &device, h);
        let rnn = RnnConfig::new(i, h).with_num_layers(2).init(&device);
        compare(CellKind::ElmanTanh, &rnn.layers, &device, h);
        let rnn = RnnConfig::new(i, h)
            .with_num_layers(2)
            .with_nonlinearity(Nonlinearity::Relu)
            .init(&device);
        compare(CellKind::ElmanRelu, &rnn.layers, &device, h);
    }
}
