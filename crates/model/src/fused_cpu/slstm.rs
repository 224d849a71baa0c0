//! One sLSTM step's element-wise update as one autodiff node (the segment model's sLSTM cell,
//! `forecast::SLstm`): from the gate pre-activations `raw [R, 4H]` (input, forget, cell input,
//! output) and the previous cell, normaliser and stabiliser `c, n, m [R, H]`,
//!
//! ```text
//! m' = max(ĩ, log σ(f̃) + m)   i = exp(ĩ − m')   f = exp(log σ(f̃) + m − m')
//! c' = f c + i tanh(z̃)        n' = f n + i       h' = σ(õ) c' / n'
//! ```
//!
//! into `[R, 4H]` = `h' ‖ c' ‖ n' ‖ m'`. Written with Burn's element-wise ops the step is about
//! twenty autodiff nodes, each a pass over memory and an allocation; here it is one pass each
//! way. The stabiliser carries no gradient (the output does not depend on it), so `m` is read
//! as a constant and `m'`'s gradient is ignored. A zero state is `c = n = 0` and `m = −∞`,
//! which gives `m' = ĩ`. The backward recomputes the gates from the inputs.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, DispatchKindConversion, DispatchTensor};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::host::HostBackend;
use super::layout::block_rows;
use super::node::{on, on_host};

type Ad<B> = Autodiff<B, NoCheckpointing>;

/// Whether [`try_slstm_step`] runs for `t`'s dtype and device (`f32` on flex or ndarray,
/// plain or autodiff).
pub(crate) fn slstm_applies(t: &Tensor<2>) -> bool {
    on_host(t.dtype(), &t.device())
}

/// `h' ‖ c' ‖ n' ‖ m'` `[R, 4H]` of one sLSTM step from `raw [R, 4H]` and `c, n, m [R, H]`;
/// `None` where the op does not apply. `m` carries no gradient.
pub(crate) fn try_slstm_step(
    raw: &Tensor<2>,
    c: &Tensor<2>,
    n: &Tensor<2>,
    m: &Tensor<2>,
) -> Option<Tensor<2>> {
    if [raw, c, n, m]
        .iter()
        .any(|t| !on_host(t.dtype(), &t.device()))
    {
        return None;
    }
    let [rows, hid] = c.dims();
    assert!(
        raw.dims() == [rows, 4 * hid] && n.dims() == [rows, hid] && m.dims() == [rows, hid],
        "sLSTM step: raw {:?}, c {:?}, n {:?}, m {:?}",
        raw.dims(),
        c.dims(),
        n.dims(),
        m.dims()
    );
    let device = raw.device();
    #[cfg(feature = "flex")]
    if on::<burn::backend::Flex>(&device) {
        return Some(step::<burn::backend::Flex>([raw, c, n], m, hid));
    }
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    if on::<burn::backend::NdArray>(&device) {
        return Some(step::<burn::backend::NdArray>([raw, c, n], m, hid));
    }
    None
}

/// The values of `t` on `B` (plain or through its autodiff wrapper), contiguous.
fn plain<B: HostBackend>(t: &Tensor<2>) -> FloatTensor<B>
where
    DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Ad<B>>,
{
    match t.clone().try_into_primitive::<Ad<B>>() {
        Ok(p) => B::dense(p.primitive().clone()),
        Err(_) => B::dense(
            t.clone()
                .try_into_primitive::<B>()
                .unwrap_or_else(|_| panic!("an sLSTM step's tensor on B or Autodiff<B>")),
        ),
    }
}

/// The op on `B` (plain: just the forward) or `Autodiff<B>` (one node, [`StepBackward`]).
fn step<B: HostBackend>(inputs: [&Tensor<2>; 3], m: &Tensor<2>, hid: usize) -> Tensor<2>
where
    DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Ad<B>>,
{
    let rows = inputs[1].dims()[0];
    let shape = [rows, 4 * hid];
    let m = plain::<B>(m);
    let ad = inputs.map(|t| t.clone().try_into_primitive::<Ad<B>>().ok());
    if ad.iter().any(Option::is_none) {
        let values = inputs.map(plain::<B>);
        let out = forward(
            B::view(&values[0]),
            B::view(&values[1]),
            B::view(&values[2]),
            B::view(&m),
            hid,
        );
        return Tensor::from_primitive::<B>(B::from_vec(out, &shape));
    }
    let all = ad.map(|p| p.expect("checked above"));
    let values = all.each_ref().map(|t| B::dense(t.primitive().clone()));
    let out = B::from_vec(
        forward(
            B::view(&values[0]),
            B::view(&values[1]),
            B::view(&values[2]),
            B::view(&m),
            hid,
        ),
        &shape,
    );
    let out = match StepBackward
        .prepare::<NoCheckpointing>(all.each_ref().map(|t| t.node()))
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(
            Saved {
                values,
                m,
                rows,
                hid,
            },
            out,
        ),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive::<Ad<B>>(out)
}

/// What the backward needs: the inputs (the gates are recomputed) and the sizes.
#[derive(Debug, Clone)]
struct Saved<B: Backend> {
    values: [FloatTensor<B>; 3],
    m: FloatTensor<B>,
    rows: usize,
    hid: usize,
}

#[derive(Debug)]
struct StepBackward;

impl<B: HostBackend> Backward<B, 3> for StepBackward {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Saved<B>, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = B::dense(grads.consume::<B>(&ops.node));
        let Saved {
            values,
            m,
            rows,
            hid,
        } = ops.state;
        let [raw, c, n] = values.each_ref().map(|v| B::view(v));
        let (draw, dc, dn) = backward(raw, c, n, B::view(&m), B::view(&g), hid);
        let shapes = [[rows, 4 * hid], [rows, hid], [rows, hid]];
        for ((parent, grad), shape) in ops.parents.iter().zip([draw, dc, dn]).zip(shapes) {
            if let Some(parent) = parent {
                grads.register::<B>(parent.id, B::from_vec(grad, &shape));
            }
        }
    }
}

/// `log σ(x)`, without overflow either way.
#[inline(always)]
fn log_sigmoid(x: f32) -> f32 {
    -((-x).max(0.0) + (-x.abs()).exp().ln_1p())
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// One unit's gates: `(m', i, f, tanh z̃, σ(õ))`.
#[inline(always)]
fn gates(i: f32, f: f32, z: f32, o: f32, m: f32) -> (f32, f32, f32, f32, f32) {
    let log_f = log_sigmoid(f) + m;
    let m_new = i.max(log_f);
    (
        m_new,
        (i - m_new).exp(),
        (log_f - m_new).exp(),
        z.tanh(),
        sigmoid(o),
    )
}

fn forward(raw: &[f32], c: &[f32], n: &[f32], m: &[f32], hid: usize) -> Vec<f32> {
    let rows = c.len() / hid.max(1);
    let mut out = vec![0.0f32; rows * 4 * hid];
    if out.is_empty() {
        return out;
    }
    let per = block_rows(rows);
    out.par_chunks_mut(per * 4 * hid)
        .enumerate()
        .for_each(|(block, dst)| {
            for (i, dst) in dst.chunks_mut(4 * hid).enumerate() {
                let r = block * per + i;
                let g = &raw[r * 4 * hid..][..4 * hid];
                let (cp, np, mp) = (
                    &c[r * hid..][..hid],
                    &n[r * hid..][..hid],
                    &m[r * hid..][..hid],
                );
                let (h_out, rest) = dst.split_at_mut(hid);
                let (c_out, rest) = rest.split_at_mut(hid);
                let (n_out, m_out) = rest.split_at_mut(hid);
                for k in 0..hid {
                    let (m_new, ig, fg, zt, og) =
                        gates(g[k], g[hid + k], g[2 * hid + k], g[3 * hid + k], mp[k]);
                    let c_new = fg * cp[k] + ig * zt;
                    let n_new = fg * np[k] + ig;
                    h_out[k] = og * c_new / n_new;
                    c_out[k] = c_new;
                    n_out[k] = n_new;
                    m_out[k] = m_new;
                }
            }
        });
    out
}

/// The gradients of `raw`, `c` and `n` from the output's `g [R, 4H]` (its `m'` part ignored).
fn backward(
    raw: &[f32],
    c: &[f32],
    n: &[f32],
    m: &[f32],
    g: &[f32],
    hid: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let rows = c.len() / hid.max(1);
    let (mut draw, mut dc, mut dn) = (
        vec![0.0f32; rows * 4 * hid],
        vec![0.0f32; rows * hid],
        vec![0.0f32; rows * hid],
    );
    if rows == 0 || hid == 0 {
        return (draw, dc, dn);
    }
    let per = block_rows(rows);
    draw.par_chunks_mut(per * 4 * hid)
        .zip(dc.par_chunks_mut(per * hid))
        .zip(dn.par_chunks_mut(per * hid))
        .enumerate()
        .for_each(|(block, ((draw, dc), dn))| {
            for (i, ((draw, dc), dn)) in draw
                .chunks_mut(4 * hid)
                .zip(dc.chunks_mut(hid))
                .zip(dn.chunks_mut(hid))
                .enumerate()
            {
                let r = block * per + i;
                let x = &raw[r * 4 * hid..][..4 * hid];
                let gy = &g[r * 4 * hid..][..4 * hid];
                let (cp, np, mp) = (
                    &c[r * hid..][..hid],
                    &n[r * hid..][..hid],
                    &m[r * hid..][..hid],
                );
                for k in 0..hid {
                    let f = x[hid + k];
                    let (_, ig, fg, zt, og) = gates(x[k], f, x[2 * hid + k], x[3 * hid + k], mp[k]);
                    let c_new = fg * cp[k] + ig * zt;
                    let n_new = fg * np[k] + ig;
                    let gh = gy[k];
                    // What reaches c' and n' from the output h' = σ(õ) c' / n' and from after.
                    let gc = gy[hid + k] + gh * og / n_new;
                    let gn = gy[2 * hid + k] - gh * og * c_new / (n_new * n_new);
                    draw[3 * hid + k] = gh * c_new / n_new * og * (1.0 - og);
                    draw[2 * hid + k] = gc * ig * (1.0 - zt * zt);
                    draw[k] = (gc * zt + gn) * ig;
                    // d log σ(f̃) / d f̃ = σ(−f̃).
                    draw[hid + k] = (gc * cp[k] + gn * np[k]) * fg * sigmoid(-f);
                    dc[k] = gc * fg;
                    dn[k] = gn * fg;
                }
            }
        });
    (draw, dc, dn)
}
