//! One GRU step from each of `R` states to `M` inputs at once, as one autodiff node: SegRNN's
//! parallel decoding, where every output segment `m` of every state row starts from the same
//! state and differs only in its input (a position ‖ channel embedding).
//!
//! Run as a plain GRU step over the `R·M` expanded rows, both gate products `x W_ihᵀ` and
//! `h W_hhᵀ` are computed `M` times over. Here the caller computes each once — the input gates
//! `gi [C·M, 3H]` for the `C·M` distinct inputs and the hidden gates `gh [R, 3H]` for the `R`
//! states, with Burn's matmul, which differentiates them — and this op does the gate math of
//! every `(row, m)` pair in one pass, without materialising `[R·M, 3H]`:
//!
//! ```text
//! r = σ(gi_r + gh_r)   z = σ(gi_z + gh_z)   n = tanh(gi_n + r ⊙ gh_n)   h' = (1 − z) ⊙ n + z ⊙ h
//! ```
//!
//! with `gh` holding `b_hh` (so `b_hn` sits inside `r ⊙ ·`, as PyTorch's GRU has it). State row
//! `row` belongs to channel `row % C`. Its backward recomputes the gates (nothing but the inputs
//! is saved) and reduces the input-gate gradient over the rows, the hidden-gate and state
//! gradients over the `M` inputs. Written with Burn's element-wise ops instead, the broadcast
//! gate tensors and their reductions cost more than the products saved (docs/benchmarks.md).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, DispatchKindConversion, DispatchTensor};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::activation::{sigmoid_in_place, tanh_in_place};
use super::host::HostBackend;
use super::node::{on, on_host};

type Ad<B> = Autodiff<B, NoCheckpointing>;

/// The sizes of one fan-out step.
#[derive(Debug, Clone, Copy)]
struct Dims {
    /// State rows `R`.
    rows: usize,
    /// Channels `C`: row `r` reads the input gates of channel `r % C`.
    channels: usize,
    /// Inputs per channel `M`.
    inputs: usize,
    /// Hidden size `H`.
    hid: usize,
}

/// Whether [`try_gru_fanout`] runs for a state `h` (`f32` on flex or ndarray, plain or
/// autodiff), so a caller can skip computing its inputs where it would not.
pub(crate) fn fanout_applies(h: &Tensor<2>) -> bool {
    on_host(h.dtype(), &h.device())
}

/// `h' [R·M, H]` (row `r·M + m`) of one GRU step from `h [R, H]` with hidden gates
/// `gh [R, 3H]` (`h W_hhᵀ + b_hh`) to the input gates `gi [C·M, 3H]` (`x W_ihᵀ + b_ih`, row
/// `c·M + m`); `None` where the op does not apply (not `f32` on flex or ndarray, plain or
/// autodiff).
pub(crate) fn try_gru_fanout(
    gi: &Tensor<2>,
    gh: &Tensor<2>,
    h: &Tensor<2>,
    channels: usize,
) -> Option<Tensor<2>> {
    if [gi, gh, h].iter().any(|t| !on_host(t.dtype(), &t.device())) {
        return None;
    }
    let [ci, g3] = gi.dims();
    let [rows, hid] = h.dims();
    assert!(
        channels > 0
            && ci % channels == 0
            && g3 == 3 * hid
            && gh.dims() == [rows, 3 * hid]
            && rows % channels == 0,
        "GRU fan-out: gi {:?}, gh {:?}, h {:?}, {channels} channels",
        gi.dims(),
        gh.dims(),
        h.dims()
    );
    let d = Dims {
        rows,
        channels,
        inputs: ci / channels,
        hid,
    };
    let device = h.device();
    #[cfg(feature = "flex")]
    if on::<burn::backend::Flex>(&device) {
        return Some(fanout::<burn::backend::Flex>([gi, gh, h], d));
    }
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    if on::<burn::backend::NdArray>(&device) {
        return Some(fanout::<burn::backend::NdArray>([gi, gh, h], d));
    }
    None
}

impl Dims {
    /// State row `row`'s hidden gates `[3H]` and state `[H]`, and the `gi` row of its channel's
    /// first input.
    fn state<'a>(&self, gh: &'a [f32], h: &'a [f32], row: usize) -> (&'a [f32], &'a [f32], usize) {
        let hid = self.hid;
        (
            &gh[row * 3 * hid..][..3 * hid],
            &h[row * hid..][..hid],
            (row % self.channels) * self.inputs,
        )
    }
}

/// The op on `B` (plain: just the forward) or `Autodiff<B>` (one node, [`FanoutBackward`]).
fn fanout<B: HostBackend>(inputs: [&Tensor<2>; 3], d: Dims) -> Tensor<2>
where
    DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Ad<B>>,
{
    let shape = [d.rows * d.inputs, d.hid];
    let ad = inputs.map(|t| t.clone().try_into_primitive::<Ad<B>>().ok());
    if ad.iter().any(Option::is_none) {
        let plain = inputs.map(|t| {
            let p = t.clone().try_into_primitive::<B>().ok();
            B::dense(p.expect("every input of the fan-out on B or Autodiff<B>"))
        });
        let out = forward(
            B::view(&plain[0]),
            B::view(&plain[1]),
            B::view(&plain[2]),
            d,
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
            d,
        ),
        &shape,
    );
    let out = match FanoutBackward
        .prepare::<NoCheckpointing>(all.each_ref().map(|t| t.node()))
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(Saved { values, d }, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive::<Ad<B>>(out)
}

/// What the backward needs: the three inputs (the gates are recomputed) and the sizes.
#[derive(Debug, Clone)]
struct Saved<B: Backend> {
    values: [FloatTensor<B>; 3],
    d: Dims,
}

#[derive(Debug)]
struct FanoutBackward;

impl<B: HostBackend> Backward<B, 3> for FanoutBackward {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Saved<B>, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = B::dense(grads.consume::<B>(&ops.node));
        let Saved { values, d } = ops.state;
        let [gi, gh, h] = values.each_ref().map(|v| B::view(v));
        let (dgi, dgh, dh) = backward(gi, gh, h, B::view(&g), d);
        let shapes = [
            [d.channels * d.inputs, 3 * d.hid],
            [d.rows, 3 * d.hid],
            [d.rows, d.hid],
        ];
        for ((parent, grad), shape) in ops.parents.iter().zip([dgi, dgh, dh]).zip(shapes) {
            if let Some(parent) = parent {
                grads.register::<B>(parent.id, B::from_vec(grad, &shape));
            }
        }
    }
}

/// State rows per parallel task: one block per rayon thread, so the backward's per-block input
/// gate sums stay few.
fn block_rows(rows: usize) -> usize {
    rows.div_ceil(rayon::current_num_threads().clamp(1, rows.max(1)))
        .max(1)
}

/// `r`, `z` into `rz [2H]` and `n` into `n [H]` for one (state row, input) pair.
#[inline(always)]
fn gates(gi: &[f32], gh: &[f32], rz: &mut [f32], n: &mut [f32]) {
    let hid = n.len();
    for ((o, a), b) in rz.iter_mut().zip(&gi[..2 * hid]).zip(&gh[..2 * hid]) {
        *o = a + b;
    }
    sigmoid_in_place(rz);
    for (((o, a), b), r) in n
        .iter_mut()
        .zip(&gi[2 * hid..])
        .zip(&gh[2 * hid..])
        .zip(&rz[..hid])
    {
        *o = a + r * b;
    }
    tanh_in_place(n);
}

fn forward(gi: &[f32], gh: &[f32], h: &[f32], d: Dims) -> Vec<f32> {
    let Dims {
        rows,
        inputs: m,
        hid,
        ..
    } = d;
    let mut out = vec![0.0f32; rows * m * hid];
    if out.is_empty() {
        return out;
    }
    let per = block_rows(rows);
    out.par_chunks_mut(per * m * hid)
        .enumerate()
        .for_each(|(block, dst)| {
            let (mut rz, mut n) = (vec![0.0f32; 2 * hid], vec![0.0f32; hid]);
            for (i, dst) in dst.chunks_mut(m * hid).enumerate() {
                let row = block * per + i;
                let (ghr, hr, first) = d.state(gh, h, row);
                for (k, dst) in dst.chunks_mut(hid).enumerate() {
                    gates(
                        &gi[(first + k) * 3 * hid..][..3 * hid],
                        ghr,
                        &mut rz,
                        &mut n,
                    );
                    for (((o, n), z), h) in dst.iter_mut().zip(&n).zip(&rz[hid..]).zip(hr) {
                        *o = (1.0 - z) * n + z * h;
                    }
                }
            }
        });
    out
}

/// The gradients of `gi`, `gh` and `h` (the direct `z ⊙ h` path; the path through `gh` is the
/// caller's matmul) given the output's gradient `g [R·M, H]`.
fn backward(
    gi: &[f32],
    gh: &[f32],
    h: &[f32],
    g: &[f32],
    d: Dims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims {
        rows,
        channels,
        inputs: m,
        hid,
    } = d;
    let (mut dgh, mut dh) = (vec![0.0f32; rows * 3 * hid], vec![0.0f32; rows * hid]);
    let mut dgi = vec![0.0f32; channels * m * 3 * hid];
    if rows == 0 || hid == 0 {
        return (dgi, dgh, dh);
    }
    let per = block_rows(rows);
    let partial: Vec<Vec<f32>> = dgh
        .par_chunks_mut(per * 3 * hid)
        .zip(dh.par_chunks_mut(per * hid))
        .enumerate()
        .map(|(block, (dgh, dh))| {
            let mut dgi = vec![0.0f32; channels * m * 3 * hid];
            let (mut rz, mut n) = (vec![0.0f32; 2 * hid], vec![0.0f32; hid]);
            for (i, (dgh, dh)) in dgh.chunks_mut(3 * hid).zip(dh.chunks_mut(hid)).enumerate() {
                let row = block * per + i;
                let (ghr, hr, first) = d.state(gh, h, row);
                for k in 0..m {
                    let at = (first + k) * 3 * hid;
                    gates(&gi[at..][..3 * hid], ghr, &mut rz, &mut n);
                    let gy = &g[(row * m + k) * hid..][..hid];
                    let dgi = &mut dgi[at..][..3 * hid];
                    for j in 0..hid {
                        let (r, z, nj) = (rz[j], rz[hid + j], n[j]);
                        dh[j] += gy[j] * z;
                        let dpn = gy[j] * (1.0 - z) * (1.0 - nj * nj);
                        let dpz = gy[j] * (hr[j] - nj) * z * (1.0 - z);
                        let dpr = dpn * ghr[2 * hid + j] * r * (1.0 - r);
                        dgi[j] += dpr;
                        dgi[hid + j] += dpz;
                        dgi[2 * hid + j] += dpn;
                        dgh[j] += dpr;
                        dgh[hid + j] += dpz;
                        dgh[2 * hid + j] += dpn * r;
                    }
                }
            }
            dgi
        })
        .collect();
    for p in partial {
        for (a, b) in dgi.iter_mut().zip(&p) {
            *a += b;
        }
    }
    (dgi, dgh, dh)
}
