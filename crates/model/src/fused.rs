//! Whole sequences as one autodiff node per layer and direction on the CPU backends (flex,
//! ndarray).
//!
//! The step-by-step loop in [`crate::recurrence`] records ~15 autodiff nodes per step and layer.
//! Here one custom operation ([`Backward`]) takes the layer input `x [B·T, F]`, `weight_ih`, the
//! folded bias, `weight_hh` and the initial state, runs the recurrence on plain `f32` buffers
//! (each step: `x_t W_ihᵀ + h_{t-1} W_hhᵀ` straight into the gate rows, then one vectorisable pass
//! of gate math), saves what BPTT needs, and runs BPTT as a plain loop; the weight and input
//! gradients are big products after it.
//!
//! Batch rows never interact inside a recurrence, so both loops split the batch into one block of
//! rows per thread and run every block from `t = 0` to `T - 1` (or back) without synchronising;
//! the products are single-threaded GEMMs ([`crate::kernel`], weights packed once per sequence)
//! written in place into preallocated buffers. All buffers are batch-major, `[B, T, ·]`, so a
//! block is one contiguous slice of each.
//!
//! The op's node outputs `hs [B·T, H]`; what the caller sees (`hs [B, T, H]`, `h_T`, `c_T`) are
//! [`Part`] nodes on it whose gradients reach BPTT as they are, not through Burn narrows.
//!
//! Used for every stack on a flex or ndarray device (autodiff or not): uni- and bidirectional,
//! with and without `lengths`. The kernels only see slices: a backend lends its tensors' values
//! through [`HostBackend`] (no copies on either). `GATECAST_FUSED=0` turns it off.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, DispatchKindConversion, DispatchTensor, TensorMetadata};
use burn::tensor::{DType, Int, Shape, Tensor, TensorData};
use rayon::prelude::*;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use crate::kernel::pool::{self, Pooled};
use crate::kernel::{self, gemm, gemm_pair, Packed};
use crate::recurrence::{initial_state, CellKind, Stack, StackOutput};
use crate::weights::DirectionWeights;

/// A CPU backend whose `f32` tensors the fused op reads and writes in place: flex and ndarray.
/// Everything the kernels touch is a plain row-major slice, so a backend only has to lend one.
pub(crate) trait HostBackend: Backend {
    /// The same values, contiguous and row-major (copied only if `p` was a strided view).
    fn dense(p: FloatTensor<Self>) -> FloatTensor<Self>;
    /// The row-major values of a [`HostBackend::dense`] `f32` tensor, without copying.
    fn view(p: &FloatTensor<Self>) -> &[f32];
    /// A tensor owning `v`, of the given shape.
    fn from_vec(v: Vec<f32>, shape: &[usize]) -> FloatTensor<Self>;
}

#[cfg(feature = "flex")]
impl HostBackend for burn::backend::Flex {
    fn dense(p: FloatTensor<Self>) -> FloatTensor<Self> {
        if p.is_contiguous() && p.as_slice::<f32>().is_some() {
            p
        } else {
            p.to_contiguous()
        }
    }
    fn view(p: &FloatTensor<Self>) -> &[f32] {
        p.as_slice::<f32>()
            .expect("a contiguous f32 tensor inside the fused op")
    }
    fn from_vec(v: Vec<f32>, shape: &[usize]) -> FloatTensor<Self> {
        FloatTensor::<Self>::from_data(TensorData::new(v, shape.to_vec()))
    }
}

/// burn-ndarray is deprecated in Burn 0.22 in favour of flex, but it is still a backend
/// gatecast supports (`--features ndarray`), so it gets the same kernels.
#[cfg(feature = "ndarray")]
#[allow(deprecated)]
impl HostBackend for burn::backend::NdArray {
    fn dense(p: FloatTensor<Self>) -> FloatTensor<Self> {
        use burn::backend::ndarray::NdArrayTensor;
        match &p {
            NdArrayTensor::F32(s) if s.view().is_standard_layout() => p,
            NdArrayTensor::F32(s) => {
                let values: Vec<f32> = s.view().iter().copied().collect();
                Self::from_vec(values, s.shape())
            }
            other => panic!("the fused op reads f32 tensors, not {:?}", other.dtype()),
        }
    }
    fn view(p: &FloatTensor<Self>) -> &[f32] {
        use burn::backend::ndarray::NdArrayTensor;
        match p {
            NdArrayTensor::F32(s) => s.view().to_slice(),
            _ => None,
        }
        .expect("a contiguous f32 tensor inside the fused op")
    }
    fn from_vec(v: Vec<f32>, shape: &[usize]) -> FloatTensor<Self> {
        burn::backend::ndarray::NdArrayTensor::from_data(TensorData::new(v, shape.to_vec()))
    }
}

fn dims2<B: Backend>(p: &FloatTensor<B>) -> [usize; 2] {
    p.shape().dims::<2>()
}

/// Rows per block: the batch split evenly over the rayon threads.
fn block_rows(batch: usize) -> usize {
    batch.div_ceil(rayon::current_num_threads().clamp(1, batch.max(1)))
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

/// `v = σ(v)`, element by element: 16 lanes at a time with AVX-512 (see [`avx512_act`]).
#[inline(always)]
fn sigmoid_in_place(v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if kernel::avx512() {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { avx512_act::map_in_place::<true>(v) };
    }
    for x in v {
        *x = fast_sigmoid(*x);
    }
}

/// `v = tanh(v)`, element by element: 16 lanes at a time with AVX-512 (see [`avx512_act`]).
#[inline(always)]
fn tanh_in_place(v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if kernel::avx512() {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { avx512_act::map_in_place::<false>(v) };
    }
    for x in v {
        *x = fast_tanh(*x);
    }
}

/// [`fast_tanh`] and [`fast_sigmoid`] on 16 lanes with FMAs, dividing by a reciprocal estimate
/// refined by one Newton step (relative error ~2⁻²⁷) instead of `vdivps`: portable Rust has
/// neither contraction into FMAs nor fast division, and the division was about a third of the
/// gate math (shape b GRU inference).
#[cfg(target_arch = "x86_64")]
mod avx512_act {
    use std::arch::x86_64::*;

    /// `tanh(x)` per lane; a NaN lane stays NaN.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn tanh16(x: __m512) -> __m512 {
        let c = _mm512_set1_ps;
        // `max(lo, x)` returns its second operand when either is NaN: NaN passes the clamp.
        let x = _mm512_min_ps(c(7.905_311), _mm512_max_ps(c(-7.905_311), x));
        let x2 = _mm512_mul_ps(x, x);
        let mut p = c(-2.760_768_5e-16);
        for a in [
            2.000_188e-13,
            -8.604_672e-11,
            5.122_297e-8,
            1.485_722_4e-5,
            6.372_619_3e-4,
            4.893_524_5e-3,
        ] {
            p = _mm512_fmadd_ps(p, x2, c(a));
        }
        let p = _mm512_mul_ps(p, x);
        let mut q = c(1.198_258_4e-6);
        for b in [1.185_347e-4, 2.268_434_6e-3, 4.893_525e-3] {
            q = _mm512_fmadd_ps(q, x2, c(b));
        }
        let r = _mm512_rcp14_ps(q);
        let r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(q, r, c(1.0)), r);
        _mm512_mul_ps(p, r)
    }

    /// `σ(x) = ½ + ½·tanh(x/2)` per lane.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn sigmoid16(x: __m512) -> __m512 {
        let half = _mm512_set1_ps(0.5);
        _mm512_fmadd_ps(half, tanh16(_mm512_mul_ps(half, x)), half)
    }

    /// `v = σ(v)` (`SIGMOID`) or `tanh(v)`, 16 lanes at a time, the tail masked.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn map_in_place<const SIGMOID: bool>(v: &mut [f32]) {
        let f = |x| if SIGMOID { sigmoid16(x) } else { tanh16(x) };
        let mut chunks = v.chunks_exact_mut(16);
        for c in &mut chunks {
            // SAFETY: `c` holds 16 values.
            unsafe { _mm512_storeu_ps(c.as_mut_ptr(), f(_mm512_loadu_ps(c.as_ptr()))) };
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let m = ((1u32 << tail.len()) - 1) as __mmask16;
            // SAFETY: the mask covers only the tail's `len < 16` values.
            unsafe {
                let x = _mm512_maskz_loadu_ps(m, tail.as_ptr());
                _mm512_mask_storeu_ps(tail.as_mut_ptr(), m, f(x));
            }
        }
    }
}

/// `dst += src`, element by element.
#[inline(always)]
fn add_into(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += *s;
    }
}

// The element-wise loops of each cell, one function each: slices passed as arguments carry
// no-alias information into the caller when inlined, so the loops vectorise (as locals they would
// need more runtime overlap checks than LLVM emits). Every operand is re-sliced to one length.

/// `c = f ⊙ c_prev + i ⊙ g`, `tc = tanh(c)`, `h = o ⊙ tc`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_cell(
    i: &[f32],
    f: &[f32],
    g: &[f32],
    o: &[f32],
    c_prev: &[f32],
    c: &mut [f32],
    tc: &mut [f32],
    h: &mut [f32],
) {
    let n = c.len();
    let (i, f, g, o, c_prev, tc, h) = (
        &i[..n],
        &f[..n],
        &g[..n],
        &o[..n],
        &c_prev[..n],
        &mut tc[..n],
        &mut h[..n],
    );
    for j in 0..n {
        c[j] = f[j] * c_prev[j] + i[j] * g[j];
    }
    tc.copy_from_slice(c);
    tanh_in_place(tc);
    for j in 0..n {
        h[j] = o[j] * tc[j];
    }
}

/// One LSTM step backwards for one row: `gates` are the activated (i, f, g, o) `[4H]`, `gh` the
/// output gradient, `dh`, `dc` the gradients flowing back from step `t + 1` (`dc` becomes the
/// one for step `t - 1`); writes the pre-activation gradients `dgates [4H]`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_cell_grad(
    gates: &[f32],
    tc: &[f32],
    c_prev: &[f32],
    gh: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    dgates: &mut [f32],
) {
    let n = dc.len();
    let (i, rest) = gates.split_at(n);
    let (f, rest) = rest.split_at(n);
    let (g, o) = rest.split_at(n);
    let (di, rest) = dgates.split_at_mut(n);
    let (df, rest) = rest.split_at_mut(n);
    let (dg, d_o) = rest.split_at_mut(n);
    let (i, f, g, o, tc, c_prev, gh, dh) = (
        &i[..n],
        &f[..n],
        &g[..n],
        &o[..n],
        &tc[..n],
        &c_prev[..n],
        &gh[..n],
        &dh[..n],
    );
    let (df, dg, d_o) = (&mut df[..n], &mut dg[..n], &mut d_o[..n]);
    for j in 0..n {
        let dhj = gh[j] + dh[j];
        let dcj = dc[j] + dhj * o[j] * (1.0 - tc[j] * tc[j]);
        di[j] = dcj * g[j] * i[j] * (1.0 - i[j]);
        df[j] = dcj * c_prev[j] * f[j] * (1.0 - f[j]);
        dg[j] = dcj * i[j] * (1.0 - g[j] * g[j]);
        d_o[j] = dhj * tc[j] * o[j] * (1.0 - o[j]);
        dc[j] = dcj * f[j];
    }
}

/// `dst = a + b`.
#[inline(always)]
fn sum_into(dst: &mut [f32], a: &[f32], b: &[f32]) {
    let n = dst.len();
    let (a, b) = (&a[..n], &b[..n]);
    for j in 0..n {
        dst[j] = a[j] + b[j];
    }
}

/// GRU: `n = tanh(x_n + r ⊙ rec_n)`, then `h = n + z ⊙ (h_prev - n)`.
#[inline(always)]
fn gru_cell(
    r: &[f32],
    z: &[f32],
    x_n: &[f32],
    rec_n: &[f32],
    h_prev: &[f32],
    n: &mut [f32],
    h: &mut [f32],
) {
    let len = n.len();
    let (r, z, x_n, rec_n, h_prev, h) = (
        &r[..len],
        &z[..len],
        &x_n[..len],
        &rec_n[..len],
        &h_prev[..len],
        &mut h[..len],
    );
    for j in 0..len {
        n[j] = x_n[j] + r[j] * rec_n[j];
    }
    tanh_in_place(n);
    for j in 0..len {
        h[j] = n[j] + z[j] * (h_prev[j] - n[j]);
    }
}

/// Elman: the pre-activation gradient `dx` from `dh_out = g + dh` through tanh or relu.
#[inline(always)]
fn elman_cell_grad(relu: bool, h: &[f32], g: &[f32], dh: &[f32], dx: &mut [f32]) {
    let n = dx.len();
    let (h, g, dh) = (&h[..n], &g[..n], &dh[..n]);
    if relu {
        for j in 0..n {
            dx[j] = if h[j] > 0.0 { g[j] + dh[j] } else { 0.0 };
        }
    } else {
        for j in 0..n {
            dx[j] = (g[j] + dh[j]) * (1.0 - h[j] * h[j]);
        }
    }
}

/// One GRU step backwards for one row: `act` the activated (r, z, n) `[3H]`, `rec_n` the saved
/// `h W_hn + b_hn`, `g` the output gradient, `dh` the gradient from step `t + 1` (replaced by its
/// direct part `dh ⊙ z`); writes the input-side `dx [3H]` and recurrent-side `dr [3H]`
/// pre-activation gradients.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gru_cell_grad(
    act: &[f32],
    rec_n: &[f32],
    h_prev: &[f32],
    g: &[f32],
    dh: &mut [f32],
    dx: &mut [f32],
    dr: &mut [f32],
) {
    let n = dh.len();
    let (ar, rest) = act.split_at(n);
    let (az, an) = rest.split_at(n);
    let (dx_r, rest) = dx.split_at_mut(n);
    let (dx_z, dx_n) = rest.split_at_mut(n);
    let (dr_r, rest) = dr.split_at_mut(n);
    let (dr_z, dr_n) = rest.split_at_mut(n);
    let (ar, az, an, rn, hp, g) = (
        &ar[..n],
        &az[..n],
        &an[..n],
        &rec_n[..n],
        &h_prev[..n],
        &g[..n],
    );
    let (dx_r, dx_z, dx_n, dr_r, dr_z, dr_n) = (
        &mut dx_r[..n],
        &mut dx_z[..n],
        &mut dx_n[..n],
        &mut dr_r[..n],
        &mut dr_z[..n],
        &mut dr_n[..n],
    );
    for j in 0..n {
        let (r, z, nn) = (ar[j], az[j], an[j]);
        let dd = g[j] + dh[j];
        let dn_pre = dd * (1.0 - z) * (1.0 - nn * nn);
        let dz_pre = dd * (hp[j] - nn) * z * (1.0 - z);
        let dr_pre = dn_pre * rn[j] * r * (1.0 - r);
        dx_r[j] = dr_pre;
        dx_z[j] = dz_pre;
        dx_n[j] = dn_pre;
        dr_r[j] = dr_pre;
        dr_z[j] = dz_pre;
        dr_n[j] = dn_pre * r;
        dh[j] = dd * z;
    }
}

/// Defines `$name` to run `$body` compiled for AVX-512 where the CPU has it (the gate loops then
/// vectorise 16 lanes wide; the default x86-64 target has only SSE2) and as is elsewhere, with
/// denormals flushed to zero ([`crate::kernel::Ftz`]).
/// `$body` must be `#[inline(always)]` so it is compiled inside the AVX-512 function.
macro_rules! multiversion {
    ($name:ident => $body:ident ($($arg:ident: $ty:ty),*)) => {
        fn $name($($arg: $ty),*) {
            let _ftz = crate::kernel::Ftz::on();
            #[cfg(target_arch = "x86_64")]
            if crate::kernel::avx512() {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn fast($($arg: $ty),*) {
                    $body($($arg),*)
                }
                // SAFETY: the CPU has AVX-512F (and so AVX2 and FMA).
                return unsafe { fast($($arg),*) };
            }
            $body($($arg),*)
        }
    };
}

/// Sizes shared by the kernels: batch, time, hidden, gate blocks; `save` keeps every step's
/// buffers for BPTT (training) instead of one step's (inference).
#[derive(Clone, Copy, Debug)]
struct Dims {
    batch: usize,
    time: usize,
    hid: usize,
    gates: usize,
    save: bool,
}

impl Dims {
    fn gh(&self) -> usize {
        self.gates * self.hid
    }
    /// Steps kept per row in a saved buffer: all of them, or only the current one.
    fn kept(&self) -> usize {
        if self.save {
            self.time
        } else {
            1
        }
    }
    /// Where step `t` sits among the kept steps.
    fn slot(&self, t: usize) -> usize {
        if self.save {
            t
        } else {
            0
        }
    }
}

/// Copies the previous step's row of a batch-major `[b, T, H]` buffer into the row at `at`: a
/// state frozen past its row's length (lengths are at least 1, so there is a previous step).
#[inline(always)]
fn hold(buf: &mut [f32], at: usize, hid: usize) {
    buf.copy_within(at - hid..at, at);
}

/// A layer's weights as the forward kernels read them.
struct Weights<'a> {
    /// `weight_ihᵀ [F, G·H]` and `weight_hhᵀ [H, G·H]`, packed.
    w_ih: &'a Packed,
    w_hh: &'a Packed,
    /// `[G·H]`: `b_ih + b_hh` (LSTM, Elman) or `b_ih` (GRU); zeros without biases.
    bias: &'a [f32],
    /// `[G·H]`: the GRU's `b_hh`, which stays inside `r ⊙ (h W_hn + b_hn)`; unused otherwise.
    b_rec: &'a [f32],
}

impl Weights<'_> {
    /// Input features.
    fn f(&self) -> usize {
        self.w_ih.k()
    }
}

/// One block of rows of the LSTM forward: reads `x [b, T, F]`, `h0`, `c0 [b, H]`; writes
/// `hs`, `cs [b, T, H]`, the activated gates (i, f, g, o) `[b, kept, 4H]` and `tanh(c_t)`
/// `[b, kept, H]`.
struct LstmBlock<'a> {
    /// Each row's valid length: from step `lens[b]` on the row's state is frozen.
    lens: &'a [usize],
    x: &'a [f32],
    h0: &'a [f32],
    c0: &'a [f32],
    hs: &'a mut [f32],
    cs: &'a mut [f32],
    gates: &'a mut [f32],
    tanh_c: &'a mut [f32],
}

multiversion!(lstm_forward_block => lstm_forward_block_body(d: Dims, w: &Weights<'_>, blk: LstmBlock<'_>));

#[inline(always)]
fn lstm_forward_block_body(d: Dims, w: &Weights, blk: LstmBlock) {
    let LstmBlock {
        lens,
        x,
        h0,
        c0,
        hs,
        cs,
        gates,
        tanh_c,
    } = blk;
    let (time, hid, g4, kept, f) = (d.time, d.hid, d.gh(), d.kept(), w.f());
    let rows = h0.len() / hid;
    for t in 0..time {
        let s = d.slot(t);
        let (lhs, lhs_rs) = if t == 0 {
            (h0, hid)
        } else {
            (&hs[(t - 1) * hid..], time * hid)
        };
        // x_t W_ihᵀ + h_{t-1} W_hhᵀ, straight into this step's gate rows.
        let (xt, x_rs) = (&x[t * f..], time * f);
        let dst = &mut gates[s * g4..];
        gemm_pair(
            rows,
            dst,
            kept * g4,
            (xt, x_rs, w.w_ih),
            (lhs, lhs_rs, w.w_hh),
        );
        for b in 0..rows {
            let at = (b * time + t) * hid;
            if t >= lens[b] {
                // Past this row's end: the state stays (PyTorch's packed sequences).
                hold(hs, at, hid);
                hold(cs, at, hid);
                continue;
            }
            let row = &mut gates[(b * kept + s) * g4..][..g4];
            add_into(row, w.bias);
            let (ifg, o) = row.split_at_mut(3 * hid);
            let (if_, g) = ifg.split_at_mut(2 * hid);
            sigmoid_in_place(if_);
            tanh_in_place(g);
            sigmoid_in_place(o);
            let (i, rest) = row.split_at(hid);
            let (f, rest) = rest.split_at(hid);
            let (g, o) = rest.split_at(hid);
            let (before, now) = cs.split_at_mut(at);
            let c_prev = if t == 0 {
                &c0[b * hid..][..hid]
            } else {
                &before[at - hid..]
            };
            let c = &mut now[..hid];
            let tc = &mut tanh_c[(b * kept + s) * hid..][..hid];
            let h = &mut hs[at..][..hid];
            lstm_cell(i, f, g, o, c_prev, c, tc, h);
        }
    }
}

/// A layer's input side, kept for its gradients: `x [B·T, F]` and `weight_ih [G·H, F]`.
#[derive(Clone, Debug)]
struct InputSide<B: Backend> {
    x: FloatTensor<B>,
    w_ih: FloatTensor<B>,
}

/// The gradients of `x`, `weight_ih` and the folded bias from the pre-activation gradient of
/// the input side, `dxw [B·T, G·H]`: `dxw · weight_ih`, `dxwᵀ · x`, and the column sums, with
/// the packed kernel on every thread.
fn input_grads<B: HostBackend>(
    grads: &mut Gradients,
    nodes: [Option<NodeId>; 3],
    dxw: &[f32],
    input: InputSide<B>,
    d: Dims,
) {
    let [n_x, n_w, n_b] = nodes;
    let (rows, gh) = (d.batch * d.time, d.gh());
    let w_ih = B::dense(input.w_ih);
    let [_, f] = dims2::<B>(&w_ih);
    if let Some(id) = n_x {
        let w = Packed::new(B::view(&w_ih), (gh, f), f, 1);
        grads.register::<B>(id, B::from_vec(kernel::matmul(rows, dxw, &w), &[rows, f]));
    }
    if let Some(id) = n_w {
        let x = B::dense(input.x);
        let dw = kernel::matmul_tn(rows, dxw, gh, B::view(&x), f);
        grads.register::<B>(id, B::from_vec(dw, &[gh, f]));
    }
    if let Some(id) = n_b {
        grads.register::<B>(id, column_sums::<B>(dxw, gh));
    }
}

/// `[1, n]`: the sums over the rows of `m [rows, n]`, one share of the rows per thread.
fn column_sums<B: HostBackend>(m: &[f32], n: usize) -> FloatTensor<B> {
    let rows = m.len() / n.max(1);
    let share = rows.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let sum_rows = |part: &[f32]| {
        let mut sums = vec![0.0f32; n];
        for row in part.chunks_exact(n) {
            add_into(&mut sums, row);
        }
        sums
    };
    let mut sums = vec![0.0f32; n];
    if n > 0 {
        // Partial sums added in a fixed order: the same bits on every run (for a thread count).
        let parts: Vec<Vec<f32>> = m.par_chunks(share * n).map(sum_rows).collect();
        for p in &parts {
            add_into(&mut sums, p);
        }
    }
    B::from_vec(sums, &[1, n])
}

/// BPTT's pre-activation gradient buffer: every valid step's values are written, so only
/// batches with padding (whose frozen steps must read as 0) need zeros.
fn scratch(len: usize, lens: &[usize], time: usize) -> Vec<f32> {
    if lens.iter().all(|&l| l == time) {
        pool::take(len)
    } else {
        pool::zeros(len)
    }
}

/// Sizes and packed weights from a node's inputs: `x [B·T, F]`, `weight_ih [G·H, F]`,
/// `weight_hh [G·H, H]`, and `h0 [B, H]` for the batch.
fn layer_dims<B: Backend>(
    x: &FloatTensor<B>,
    w_hh: &FloatTensor<B>,
    h0: &FloatTensor<B>,
    gates: usize,
    save: bool,
) -> Dims {
    let [rows, _] = dims2::<B>(x);
    let [batch, hid] = dims2::<B>(h0);
    debug_assert_eq!(dims2::<B>(w_hh), [gates * hid, hid]);
    Dims {
        batch,
        time: rows / batch,
        hid,
        gates,
        save,
    }
}

/// `weight_ihᵀ [F, G·H]` and `weight_hhᵀ [H, G·H]`, packed for the per-step products.
fn pack_forward<B: HostBackend>(
    w_ih: &FloatTensor<B>,
    w_hh: &FloatTensor<B>,
    d: Dims,
) -> (Packed, Packed) {
    let [gh, f] = dims2::<B>(w_ih);
    (
        Packed::new(B::view(w_ih), (f, gh), 1, f),
        Packed::new(B::view(w_hh), (d.hid, gh), 1, d.hid),
    )
}

/// What the LSTM's BPTT needs.
#[derive(Clone, Debug)]
struct LstmSaved<B: Backend> {
    input: InputSide<B>,
    /// `weight_hh [4H, H]`, `h0`, `c0 [B, H]`.
    w_hh: FloatTensor<B>,
    h0: FloatTensor<B>,
    c0: FloatTensor<B>,
    /// The output, `[B·T, H]`: every `h_t` (batch-major).
    out: FloatTensor<B>,
    /// Where the outputs' gradients arrive.
    slot: Slot<B>,
    /// Every `c_t`, `[B, T, H]`.
    cs: Pooled,
    /// Activated gates (i, f, g, o) of every step, `[B, T, 4H]`.
    gates: Pooled,
    /// `tanh(c_t)` of every step, `[B, T, H]`.
    tanh_c: Pooled,
    /// Each row's valid length.
    lens: Vec<usize>,
    d: Dims,
}

/// LSTM forward: `x [B·T, F]` (batch-major), `weight_ih [4H, F]`, `bias [1, 4H]`
/// (`b_ih + b_hh`), `weight_hh [4H, H]`, `h0`, `c0 [B, H]` → the hidden state of every step,
/// `[B·T, H]` (batch-major), and, as values, the last hidden and cell states `h_T`, `c_T [B, H]`.
/// The cell states of the other steps stay inside the op (only BPTT reads them).
fn lstm_forward<B: HostBackend>(
    inputs: [FloatTensor<B>; 6],
    lens: &[usize],
    save: bool,
    slot: &Slot<B>,
) -> (FloatTensor<B>, LstmSaved<B>, Tails) {
    let [x, w_ih, bias, w_hh, h0, c0] = inputs.map(B::dense);
    let d = layer_dims::<B>(&x, &w_hh, &h0, 4, save);
    let (batch, time, hid, g4) = (d.batch, d.time, d.hid, d.gh());
    let (w_ih_t, w_hh_t) = pack_forward::<B>(&w_ih, &w_hh, d);
    let w = Weights {
        w_ih: &w_ih_t,
        w_hh: &w_hh_t,
        bias: B::view(&bias),
        b_rec: &[],
    };
    let bth = batch * time * hid;
    let mut hs = pool::fresh(bth);
    let mut cs = pool::take(bth);
    let mut gates = pool::take(batch * d.kept() * g4);
    let mut tanh_c = pool::take(batch * d.kept() * hid);
    let r = block_rows(batch);
    hs.par_chunks_mut(r * time * hid)
        .zip(cs.par_chunks_mut(r * time * hid))
        .zip(gates.par_chunks_mut(r * d.kept() * g4))
        .zip(tanh_c.par_chunks_mut(r * d.kept() * hid))
        .zip(B::view(&x).par_chunks(r * time * w.f()))
        .zip(B::view(&h0).par_chunks(r * hid))
        .zip(B::view(&c0).par_chunks(r * hid))
        .zip(lens.par_chunks(r))
        .for_each(|(((((((hs, cs), gates), tanh_c), x), h0), c0), lens)| {
            let blk = LstmBlock {
                lens,
                x,
                h0,
                c0,
                hs,
                cs,
                gates,
                tanh_c,
            };
            lstm_forward_block(d, &w, blk);
        });
    // A frozen row's state stays, so its last step holds the state at its length.
    let tails = (last_steps(&hs, d), Some(last_steps(&cs, d)));
    let out = B::from_vec(hs, &[batch * time, hid]);
    let cs = if save {
        cs
    } else {
        pool::give(cs);
        Vec::new()
    };
    let saved = LstmSaved {
        input: InputSide { x, w_ih },
        w_hh,
        h0,
        c0,
        out: out.clone(),
        slot: slot.clone(),
        cs: Pooled(cs),
        gates: Pooled(gates),
        tanh_c: Pooled(tanh_c),
        lens: lens.to_vec(),
        d,
    };
    (out, saved, tails)
}

/// The last step's `h_T` and, for the LSTM, `c_T`, `[B, H]` each, as values.
type Tails = (Vec<f32>, Option<Vec<f32>>);

/// Row `T - 1` of each batch row of `v [B, T, H]`: `[B, H]`.
fn last_steps(v: &[f32], d: Dims) -> Vec<f32> {
    let (time, hid) = (d.time, d.hid);
    let mut out = Vec::with_capacity(d.batch * hid);
    for b in 0..d.batch {
        out.extend_from_slice(&v[(b * time + time - 1) * hid..][..hid]);
    }
    out
}

/// The gradients of a fused op's outputs as BPTT reads them: `gh [B·T, H]` (zeros when only
/// the last states were used) and `dh`, `dc [B, H]` to start from (`h_T`'s and `c_T`'s).
struct OutputGrads<B: Backend> {
    hs: Result<FloatTensor<B>, Vec<f32>>,
    dh: Vec<f32>,
    dc: Vec<f32>,
}

impl<B: HostBackend> OutputGrads<B> {
    fn take(slot: &Slot<B>, d: Dims) -> Self {
        let g = take_grads(slot);
        let state = |t: Option<FloatTensor<B>>| match t.map(B::dense) {
            Some(t) => B::view(&t).to_vec(),
            None => vec![0.0f32; d.batch * d.hid],
        };
        Self {
            hs: g
                .hs
                .map(B::dense)
                .ok_or_else(|| pool::zeros(d.batch * d.time * d.hid)),
            dh: state(g.h_last),
            dc: state(g.c_last),
        }
    }

    fn gh(&self) -> &[f32] {
        match &self.hs {
            Ok(t) => B::view(t),
            Err(v) => v,
        }
    }
}

impl<B: Backend> Drop for OutputGrads<B> {
    fn drop(&mut self) {
        if let Err(v) = &mut self.hs {
            pool::give(std::mem::take(v));
        }
    }
}

/// One block of rows of the LSTM's BPTT: reads the output gradient `gh [b, T, H]` and the
/// forward's `gates [b, T, 4H]`, `tanh_c`, `cs [b, T, H]`, `c0 [b, H]`; writes the
/// pre-activation gradients `dgates [b, T, 4H]` and leaves the initial states' gradients in
/// `dh`, `dc [b, H]` (on entry: zeros, and the gradient of `c_T`).
struct LstmGradBlock<'a> {
    lens: &'a [usize],
    gh: &'a [f32],
    gates: &'a [f32],
    tanh_c: &'a [f32],
    cs: &'a [f32],
    c0: &'a [f32],
    dgates: &'a mut [f32],
    dh: &'a mut [f32],
    dc: &'a mut [f32],
}

multiversion!(lstm_backward_block => lstm_backward_block_body(d: Dims, w_hh: &Packed, blk: LstmGradBlock<'_>));

#[inline(always)]
fn lstm_backward_block_body(d: Dims, w_hh: &Packed, blk: LstmGradBlock) {
    let LstmGradBlock {
        lens,
        gh,
        gates,
        tanh_c,
        cs,
        c0,
        dgates,
        dh,
        dc,
    } = blk;
    let (time, hid, g4) = (d.time, d.hid, d.gh());
    let rows = dh.len() / hid;
    for t in (0..time).rev() {
        for b in 0..rows {
            let at = (b * time + t) * hid;
            let (dh, dc) = (&mut dh[b * hid..][..hid], &mut dc[b * hid..][..hid]);
            if t >= lens[b] {
                // A frozen step passes its state's gradients straight back (its dgates stay 0).
                add_into(dh, &gh[at..][..hid]);
                continue;
            }
            let c_prev = if t == 0 {
                &c0[b * hid..][..hid]
            } else {
                &cs[at - hid..at]
            };
            lstm_cell_grad(
                &gates[(b * time + t) * g4..][..g4],
                &tanh_c[at..][..hid],
                c_prev,
                &gh[at..][..hid],
                dh,
                dc,
                &mut dgates[(b * time + t) * g4..][..g4],
            );
            dh.fill(0.0);
        }
        // dh_{t-1} = dgates_t · weight_hh (+ what frozen rows carry).
        gemm(rows, dh, hid, &dgates[t * g4..], time * g4, w_hh, true);
    }
}

/// `h_{t-1}` of every step, `[B·T, H]`: each row's `h0`, then its `hs` shifted by one step.
fn shifted(hs: &[f32], h0: &[f32], d: Dims) -> Vec<f32> {
    let (time, hid) = (d.time, d.hid);
    let mut hp = pool::take(d.batch * time * hid);
    for b in 0..d.batch {
        let row = &mut hp[b * time * hid..(b + 1) * time * hid];
        row[..hid].copy_from_slice(&h0[b * hid..(b + 1) * hid]);
        row[hid..].copy_from_slice(&hs[b * time * hid..(b + 1) * time * hid - hid]);
    }
    hp
}

/// `weight_hh`'s gradient, `dpreᵀ · H_prev`: `dpre [B·T, G·H]`, `h_prev [B·T, H]` → `[G·H, H]`,
/// with the packed kernel on every thread.
fn weight_grad<B: HostBackend>(dpre: &[f32], h_prev: &[f32], d: Dims) -> FloatTensor<B> {
    let (rows, gh) = (d.batch * d.time, d.gh());
    B::from_vec(
        kernel::matmul_tn(rows, dpre, gh, h_prev, d.hid),
        &[gh, d.hid],
    )
}

/// What BPTT leaves for the gradients every cell shares: the input side's and the recurrent
/// side's pre-activation gradients `[B·T, G·H]` (the same buffer except for the GRU), the forward's
/// hidden states `hs [B, T, H]` and `h0`, and `h0`'s gradient `[B, H]`.
struct LayerGrads<'a, B: Backend> {
    d_in: &'a [f32],
    d_rec: &'a [f32],
    hs: &'a [f32],
    h0: &'a FloatTensor<B>,
    dh0: Vec<f32>,
    d: Dims,
}

impl<B: HostBackend> LayerGrads<'_, B> {
    /// Registers the gradients of `x`, `weight_ih`, the folded bias, `weight_hh` and `h0` for the
    /// nodes that need them.
    fn register(self, grads: &mut Gradients, nodes: [Option<NodeId>; 5], input: InputSide<B>) {
        let [n_x, n_wih, n_bias, n_w, n_h0] = nodes;
        if let Some(node) = n_w {
            let hp = shifted(self.hs, B::view(self.h0), self.d);
            grads.register::<B>(node, weight_grad::<B>(self.d_rec, &hp, self.d));
            pool::give(hp);
        }
        input_grads(grads, [n_x, n_wih, n_bias], self.d_in, input, self.d);
        if let Some(node) = n_h0 {
            grads.register::<B>(node, B::from_vec(self.dh0, &[self.d.batch, self.d.hid]));
        }
    }
}

#[derive(Debug)]
struct LstmSeqBackward;

impl<B: HostBackend> Backward<B, 6> for LstmSeqBackward {
    type State = LstmSaved<B>;

    fn backward(self, ops: Ops<LstmSaved<B>, 6>, grads: &mut Gradients, _: &mut Checkpointer) {
        // The `[1, 1]` zeros of the `Part` nodes; the gradients themselves are in the slot.
        drop(grads.consume::<B>(&ops.node));
        let mut s = ops.state;
        let d = s.d;
        let (batch, time, hid, g4) = (d.batch, d.time, d.hid, d.gh());
        let hs = B::view(&s.out);
        let mut og = OutputGrads::<B>::take(&s.slot, d);
        // BPTT starts from `h_T`'s and `c_T`'s gradients.
        let (mut dh, mut dc) = (std::mem::take(&mut og.dh), std::mem::take(&mut og.dc));
        let gh = og.gh();
        let mut dgates = scratch(batch * time * g4, &s.lens, time);
        let r = block_rows(batch);
        let w_hh = &Packed::new(B::view(&s.w_hh), (g4, hid), hid, 1);
        gh.par_chunks(r * time * hid)
            .zip(s.gates.par_chunks(r * time * g4))
            .zip(s.tanh_c.par_chunks(r * time * hid))
            .zip(s.cs.par_chunks(r * time * hid))
            .zip(B::view(&s.c0).par_chunks(r * hid))
            .zip(dgates.par_chunks_mut(r * time * g4))
            .zip(dh.par_chunks_mut(r * hid))
            .zip(dc.par_chunks_mut(r * hid))
            .zip(s.lens.par_chunks(r))
            .for_each(
                |((((((((gh, gates), tanh_c), cs), c0), dgates), dh), dc), lens)| {
                    let blk = LstmGradBlock {
                        lens,
                        gh,
                        gates,
                        tanh_c,
                        cs,
                        c0,
                        dgates,
                        dh,
                        dc,
                    };
                    lstm_backward_block(d, w_hh, blk);
                },
            );
        drop(std::mem::take(&mut s.gates));
        drop(std::mem::take(&mut s.tanh_c));
        drop(std::mem::take(&mut s.cs));
        let [n_x, n_wih, n_b, n_w, n_h0, n_c0] = ops.parents.map(|n| n.map(|n| n.id));
        let layer = LayerGrads {
            d_in: &dgates,
            d_rec: &dgates,
            hs,
            h0: &s.h0,
            dh0: dh,
            d,
        };
        layer.register(grads, [n_x, n_wih, n_b, n_w, n_h0], s.input);
        pool::give(dgates);
        if let Some(node) = n_c0 {
            grads.register::<B>(node, B::from_vec(dc, &[batch, hid]));
        }
    }
}

/// One block of rows of the GRU or Elman forward: reads `x [b, T, F]`, `h0 [b, H]`; writes
/// `hs [b, T, H]` and, for the GRU, the activated (r, z, n) `[b, kept, 3H]` and `h W_hn + b_hn`
/// `[b, kept, H]`. `xp`, `rec [b, G·H]` are scratch (this step's input and recurrent products).
struct RecBlock<'a> {
    lens: &'a [usize],
    x: &'a [f32],
    xp: &'a mut [f32],
    h0: &'a [f32],
    hs: &'a mut [f32],
    act: &'a mut [f32],
    rec_n: &'a mut [f32],
    rec: &'a mut [f32],
}

multiversion!(rec_forward_block => rec_forward_block_body(kind: CellKind, d: Dims, w: &Weights<'_>, blk: RecBlock<'_>));

#[inline(always)]
fn rec_forward_block_body(kind: CellKind, d: Dims, w: &Weights, blk: RecBlock) {
    let RecBlock {
        lens,
        x,
        xp,
        h0,
        hs,
        act,
        rec_n,
        rec,
    } = blk;
    let (time, hid, gh, kept, f) = (d.time, d.hid, d.gh(), d.kept(), w.f());
    let rows = h0.len() / hid;
    for t in 0..time {
        let s = d.slot(t);
        let (lhs, lhs_rs) = if t == 0 {
            (h0, hid)
        } else {
            (&hs[(t - 1) * hid..], time * hid)
        };
        let (xt, x_rs) = (&x[t * f..], time * f);
        if kind == CellKind::Gru {
            // The GRU keeps the input and recurrent products apart (`r` gates only the latter).
            gemm(rows, xp, gh, xt, x_rs, w.w_ih, false);
            gemm(rows, rec, gh, lhs, lhs_rs, w.w_hh, false);
        } else {
            gemm_pair(rows, rec, gh, (xt, x_rs, w.w_ih), (lhs, lhs_rs, w.w_hh));
        }
        for b in 0..rows {
            let at = (b * time + t) * hid;
            if t >= lens[b] {
                hold(hs, at, hid);
                continue;
            }
            let rr = &mut rec[b * gh..][..gh];
            let (before, now) = hs.split_at_mut(at);
            let h_prev = if t == 0 {
                &h0[b * hid..][..hid]
            } else {
                &before[at - hid..]
            };
            let h = &mut now[..hid];
            match kind {
                CellKind::Lstm => unreachable!("the LSTM has its own kernels"),
                CellKind::ElmanTanh | CellKind::ElmanRelu => {
                    add_into(rr, w.bias);
                    if kind == CellKind::ElmanTanh {
                        tanh_in_place(rr);
                    } else {
                        rr.iter_mut().for_each(|v| *v = v.max(0.0));
                    }
                    h.copy_from_slice(rr);
                }
                CellKind::Gru => {
                    let x = &mut xp[b * gh..][..gh];
                    add_into(x, w.bias);
                    let x = &*x;
                    add_into(rr, w.b_rec);
                    let a = &mut act[(b * kept + s) * gh..][..gh];
                    let (rz, n) = a.split_at_mut(2 * hid);
                    let (x_rz, x_n) = x.split_at(2 * hid);
                    let (rr_rz, rr_n) = rr.split_at(2 * hid);
                    sum_into(rz, x_rz, rr_rz);
                    sigmoid_in_place(rz);
                    let (r, z) = rz.split_at(hid);
                    gru_cell(r, z, x_n, rr_n, h_prev, n, h);
                    rec_n[(b * kept + s) * hid..][..hid].copy_from_slice(&rr_n[..hid]);
                }
            }
        }
    }
}

/// What BPTT of an Elman RNN or GRU needs.
#[derive(Clone, Debug)]
struct RecSaved<B: Backend> {
    kind: CellKind,
    input: InputSide<B>,
    /// `weight_hh [G·H, H]`, `h0 [B, H]`.
    w_hh: FloatTensor<B>,
    h0: FloatTensor<B>,
    /// The output `hs [B·T, H]`.
    out: FloatTensor<B>,
    /// Where the outputs' gradients arrive.
    slot: Slot<B>,
    /// GRU: activated (r, z, n) of every step, `[B, T, 3H]`; empty for Elman.
    act: Pooled,
    /// GRU: `h W_hn + b_hn` of every step, `[B, T, H]`; empty for Elman.
    rec_n: Pooled,
    /// Each row's valid length.
    lens: Vec<usize>,
    d: Dims,
}

/// Forward of an Elman RNN or GRU: `x [B·T, F]` (batch-major), `weight_ih [G·H, F]`, `bias
/// [1, G·H]` (Elman: `b_ih + b_hh`; GRU: `b_ih`), `weight_hh [G·H, H]`, `b_rec [1, G·H]` (the
/// GRU's `b_hh`; zeros for Elman), `h0 [B, H]` → `hs [B·T, H]` (batch-major) and, as values,
/// the last hidden state `h_T [B, H]`.
fn rec_forward<B: HostBackend>(
    kind: CellKind,
    inputs: [FloatTensor<B>; 6],
    lens: &[usize],
    save: bool,
    slot: &Slot<B>,
) -> (FloatTensor<B>, RecSaved<B>, Tails) {
    let [x, w_ih, bias, w_hh, b_rec, h0] = inputs.map(B::dense);
    let d = layer_dims::<B>(&x, &w_hh, &h0, kind.gates(), save);
    let (batch, time, hid, gh) = (d.batch, d.time, d.hid, d.gh());
    let (w_ih_t, w_hh_t) = pack_forward::<B>(&w_ih, &w_hh, d);
    let w = Weights {
        w_ih: &w_ih_t,
        w_hh: &w_hh_t,
        bias: B::view(&bias),
        b_rec: B::view(&b_rec),
    };
    let gru = kind == CellKind::Gru;
    // Elman saves nothing beyond its output; one element keeps the chunked zip below even.
    let per_row = |n: usize| if gru { d.kept() * n } else { 1 };
    let mut hs = pool::fresh(batch * time * hid);
    let mut act = pool::take(batch * per_row(gh));
    let mut rec_n = pool::take(batch * per_row(hid));
    let mut rec = vec![0.0f32; batch * gh];
    let mut xp = vec![0.0f32; batch * gh];
    let r = block_rows(batch);
    hs.par_chunks_mut(r * time * hid)
        .zip(act.par_chunks_mut(r * per_row(gh)))
        .zip(rec_n.par_chunks_mut(r * per_row(hid)))
        .zip(rec.par_chunks_mut(r * gh))
        .zip(xp.par_chunks_mut(r * gh))
        .zip(B::view(&x).par_chunks(r * time * w.f()))
        .zip(B::view(&h0).par_chunks(r * hid))
        .zip(lens.par_chunks(r))
        .for_each(|(((((((hs, act), rec_n), rec), xp), x), h0), lens)| {
            let blk = RecBlock {
                lens,
                x,
                xp,
                h0,
                hs,
                act,
                rec_n,
                rec,
            };
            rec_forward_block(kind, d, &w, blk);
        });
    let tails = (last_steps(&hs, d), None);
    let out = B::from_vec(hs, &[batch * time, hid]);
    let (act, rec_n) = if gru && save {
        (act, rec_n)
    } else {
        pool::give(act);
        pool::give(rec_n);
        (Vec::new(), Vec::new())
    };
    let saved = RecSaved {
        kind,
        input: InputSide { x, w_ih },
        w_hh,
        h0,
        out: out.clone(),
        slot: slot.clone(),
        act: Pooled(act),
        rec_n: Pooled(rec_n),
        lens: lens.to_vec(),
        d,
    };
    (out, saved, tails)
}

/// One block of rows of Elman or GRU BPTT: reads the output gradient `g [b, T, H]`, the
/// forward's `hs [b, T, H]`, `h0 [b, H]` and (GRU) `act`, `rec_n`; writes the gradients of the
/// input projection `dxw [b, T, G·H]` and (GRU) of the recurrent projection `drec [b, T, 3H]`
/// (for Elman they are equal: `drec` is unused), and leaves `h0`'s gradient in `dh [b, H]`.
struct RecGradBlock<'a> {
    lens: &'a [usize],
    g: &'a [f32],
    hs: &'a [f32],
    h0: &'a [f32],
    act: &'a [f32],
    rec_n: &'a [f32],
    dxw: &'a mut [f32],
    drec: &'a mut [f32],
    dh: &'a mut [f32],
}

multiversion!(rec_backward_block => rec_backward_block_body(kind: CellKind, d: Dims, w_hh: &Packed, blk: RecGradBlock<'_>));

#[inline(always)]
fn rec_backward_block_body(kind: CellKind, d: Dims, w_hh: &Packed, blk: RecGradBlock) {
    let RecGradBlock {
        lens,
        g,
        hs,
        h0,
        act,
        rec_n,
        dxw,
        drec,
        dh,
    } = blk;
    let (time, hid, gh) = (d.time, d.hid, d.gh());
    let rows = dh.len() / hid;
    for t in (0..time).rev() {
        for b in 0..rows {
            let at = (b * time + t) * hid;
            let (g, dh) = (&g[at..][..hid], &mut dh[b * hid..][..hid]);
            if t >= lens[b] {
                // A frozen step passes its state's gradient straight back.
                add_into(dh, g);
                continue;
            }
            let dx = &mut dxw[(b * time + t) * gh..][..gh];
            match kind {
                CellKind::Lstm => unreachable!("the LSTM has its own kernels"),
                CellKind::ElmanTanh | CellKind::ElmanRelu => {
                    let relu = kind == CellKind::ElmanRelu;
                    elman_cell_grad(relu, &hs[at..][..hid], g, dh, dx);
                    dh.fill(0.0);
                }
                CellKind::Gru => {
                    let a = &act[(b * time + t) * gh..][..gh];
                    let rn = &rec_n[at..][..hid];
                    let hp = if t == 0 {
                        &h0[b * hid..][..hid]
                    } else {
                        &hs[at - hid..at]
                    };
                    let dr = &mut drec[(b * time + t) * gh..][..gh];
                    gru_cell_grad(a, rn, hp, g, dh, dx, dr);
                }
            }
        }
        // dh_{t-1} = (GRU: dh_t ⊙ z +) drec_t · weight_hh (+ what frozen rows carry).
        let d_pre = if kind == CellKind::Gru {
            &drec[t * gh..]
        } else {
            &dxw[t * gh..]
        };
        gemm(rows, dh, hid, d_pre, time * gh, w_hh, true);
    }
}

#[derive(Debug)]
struct RecSeqBackward;

impl<B: HostBackend> Backward<B, 6> for RecSeqBackward {
    type State = RecSaved<B>;

    fn backward(self, ops: Ops<RecSaved<B>, 6>, grads: &mut Gradients, _: &mut Checkpointer) {
        // The `[1, 1]` zeros of the `Part` nodes; the gradients themselves are in the slot.
        drop(grads.consume::<B>(&ops.node));
        let mut s = ops.state;
        let d = s.d;
        let (batch, time, hid, gh) = (d.batch, d.time, d.hid, d.gh());
        let gru = s.kind == CellKind::Gru;
        let per_row = |n: usize| if gru { time * n } else { 1 };
        let mut dxw = scratch(batch * time * gh, &s.lens, time);
        let mut drec = scratch(batch * per_row(gh), &s.lens, time);
        let mut og = OutputGrads::<B>::take(&s.slot, d);
        // BPTT starts from `h_T`'s gradient.
        let mut dh = std::mem::take(&mut og.dh);
        // Elman saves no gate buffers; one element per row keeps the chunked zip even.
        let unused = vec![0.0f32; if gru { 0 } else { batch }];
        let (act, rec_n): (&[f32], &[f32]) = if gru {
            (&s.act, &s.rec_n)
        } else {
            (&unused, &unused)
        };
        let r = block_rows(batch);
        let hs = B::view(&s.out);
        let w_hh = &Packed::new(B::view(&s.w_hh), (gh, hid), hid, 1);
        og.gh()
            .par_chunks(r * time * hid)
            .zip(hs.par_chunks(r * time * hid))
            .zip(B::view(&s.h0).par_chunks(r * hid))
            .zip(act.par_chunks(r * per_row(gh)))
            .zip(rec_n.par_chunks(r * per_row(hid)))
            .zip(dxw.par_chunks_mut(r * time * gh))
            .zip(drec.par_chunks_mut(r * per_row(gh)))
            .zip(dh.par_chunks_mut(r * hid))
            .zip(s.lens.par_chunks(r))
            .for_each(
                |((((((((g, hs), h0), act), rec_n), dxw), drec), dh), lens)| {
                    let blk = RecGradBlock {
                        lens,
                        g,
                        hs,
                        h0,
                        act,
                        rec_n,
                        dxw,
                        drec,
                        dh,
                    };
                    rec_backward_block(s.kind, d, w_hh, blk);
                },
            );
        drop(std::mem::take(&mut s.act));
        drop(std::mem::take(&mut s.rec_n));
        let d_rec = if gru { &drec } else { &dxw };
        let [n_x, n_wih, n_bias, n_w, n_brec, n_h0] = ops.parents.map(|n| n.map(|n| n.id));
        if let Some(node) = n_brec {
            grads.register::<B>(node, column_sums::<B>(d_rec, gh));
        }
        let layer = LayerGrads {
            d_in: &dxw,
            d_rec,
            hs,
            h0: &s.h0,
            dh0: dh,
            d,
        };
        layer.register(grads, [n_x, n_wih, n_bias, n_w, n_h0], s.input);
        pool::give(dxw);
        pool::give(drec);
    }
}

/// The gradients of a fused op's outputs, left by its [`Part`] nodes for the op's own backward
/// (which runs after theirs: the op is their parent).
#[derive(Debug)]
struct OutGrads<B: Backend> {
    /// `[B, T, H]`.
    hs: Option<FloatTensor<B>>,
    /// `[B, H]` each.
    h_last: Option<FloatTensor<B>>,
    c_last: Option<FloatTensor<B>>,
}

type Slot<B> = Arc<Mutex<OutGrads<B>>>;

impl<B: Backend> OutGrads<B> {
    fn none() -> Self {
        Self {
            hs: None,
            h_last: None,
            c_last: None,
        }
    }
}

fn new_slot<B: Backend>() -> Slot<B> {
    Arc::new(Mutex::new(OutGrads::none()))
}

fn take_grads<B: Backend>(slot: &Slot<B>) -> OutGrads<B> {
    let mut g = slot.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::replace(&mut *g, OutGrads::none())
}

/// Which output of a fused op a [`Part`] node hands out.
#[derive(Clone, Copy, Debug)]
enum Part {
    Hs,
    HLast,
    CLast,
}

/// The backward of one output of a fused op: its gradient goes into the op's [`Slot`] as it is,
/// and the op's node gets a `[1, 1]` zero so that its backward runs. Every consumer of the op's
/// node is a `Part`, so those zeros are all Burn ever adds up there. Taking the outputs apart
/// with Burn's `narrow` instead made each backward allocate a zero-filled gradient of the whole
/// output (through a copy in burn-flex) and copy the part's gradient into it.
#[derive(Debug)]
struct PartBackward(Part);

impl<B: HostBackend> Backward<B, 1> for PartBackward {
    type State = Slot<B>;

    fn backward(self, ops: Ops<Slot<B>, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        {
            let mut slot = ops.state.lock().unwrap_or_else(|e| e.into_inner());
            let at = match self.0 {
                Part::Hs => &mut slot.hs,
                Part::HLast => &mut slot.h_last,
                Part::CLast => &mut slot.c_last,
            };
            *at = Some(g);
        }
        if let Some(parent) = &ops.parents[0] {
            grads.register::<B>(parent.id, B::from_vec(vec![0.0], &[1, 1]));
        }
    }
}

/// One output of the fused op behind `main` as a node of its own (see [`PartBackward`]):
/// `value` is its values on `B` (given `main`'s values), a tensor of rank `D`.
fn part<B: HostBackend, const D: usize>(
    main: &Tensor<2>,
    which: Part,
    slot: &Slot<B>,
    value: impl FnOnce(FloatTensor<B>) -> FloatTensor<B>,
) -> Tensor<D>
where
    DispatchTensor:
        DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B, NoCheckpointing>>,
{
    type Ad<B> = Autodiff<B, NoCheckpointing>;
    let Ok(ad) = main.clone().try_into_primitive::<Ad<B>>() else {
        let plain = main.clone().try_into_primitive::<B>().ok();
        let plain = plain.expect("the fused op's output is on B or Autodiff<B>");
        return Tensor::from_primitive::<B>(value(plain));
    };
    let v = value(ad.primitive().clone());
    let out = match PartBackward(which)
        .prepare::<NoCheckpointing>([ad.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(slot.clone(), v),
        OpsKind::UnTracked(prep) => prep.finish(v),
    };
    Tensor::from_primitive::<Ad<B>>(out)
}

/// Runs `forward` as one autodiff node differentiated by `backward` (autodiff `B`), or just runs
/// it (plain `B`, inference: `save` is then false), on `N` matrices into a rank-`D` output;
/// `None` when they are not on `B`.
fn fused_node<B: HostBackend, const N: usize, const D: usize, Bw: Backward<B, N>>(
    backward: Bw,
    inputs: [&Tensor<2>; N],
    forward: impl Fn([FloatTensor<B>; N], bool) -> (FloatTensor<B>, Bw::State),
) -> Option<Tensor<D>>
where
    DispatchTensor:
        DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B, NoCheckpointing>>,
{
    type Ad<B> = Autodiff<B, NoCheckpointing>;
    let ad = inputs.map(|t| t.clone().try_into_primitive::<Ad<B>>().ok());
    if ad.iter().any(Option::is_none) {
        let plain = inputs.map(|t| t.clone().try_into_primitive::<B>().ok());
        if plain.iter().any(Option::is_none) {
            return None;
        }
        let (out, _) = forward(plain.map(|p| p.expect("checked above")), false);
        return Some(Tensor::from_primitive::<B>(out));
    }
    let all = ad.map(|p| p.expect("checked above"));
    let out = match backward
        .prepare::<NoCheckpointing>(all.each_ref().map(|t| t.node()))
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (out, saved) = forward(all.each_ref().map(|t| t.primitive().clone()), true);
            prep.finish(saved, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(all.map(|t| t.into_primitive()), false).0),
    };
    Some(Tensor::from_primitive::<Ad<B>>(out))
}

/// One direction of one layer through the fused op: `x [B, T, F]` → every step's hidden state
/// `[B, T, H]`, the last hidden state and (LSTM) the last cell state, `[B, H]`.
fn run_direction<B: HostBackend>(
    kind: CellKind,
    w: &DirectionWeights,
    x: Tensor<3>,
    h0: Tensor<2>,
    c0: Tensor<2>,
    lens: &[usize],
) -> Option<(Tensor<3>, Tensor<2>, Option<Tensor<2>>)>
where
    DispatchTensor:
        DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B, NoCheckpointing>>,
{
    let [batch, time, features] = x.dims();
    let device = x.device();
    let gh = w.weight_hh.dims()[0];
    let hid = w.weight_hh.dims()[1];
    let x2 = x.reshape([batch * time, features]);
    // The GRU keeps b_hh on the recurrent side (inside r ⊙ ·); the others fold both biases into
    // one row added to the input side.
    let folded = if kind == CellKind::Gru {
        [&w.bias_ih, &None]
    } else {
        [&w.bias_ih, &w.bias_hh]
    };
    let bias = folded
        .into_iter()
        .flatten()
        .map(|b| b.val().unsqueeze_dim::<2>(0))
        .reduce(|a, b| a + b)
        .unwrap_or_else(|| Tensor::zeros([1, gh], &device));
    let (w_ih, w_hh) = (w.weight_ih.val(), w.weight_hh.val());
    let slot = new_slot::<B>();
    let tails = RefCell::new(None);
    let main = if kind == CellKind::Lstm {
        let inputs = [&x2, &w_ih, &bias, &w_hh, &h0, &c0];
        fused_node::<B, 6, 2, _>(LstmSeqBackward, inputs, |all, save| {
            let (out, saved, last) = lstm_forward::<B>(all, lens, save, &slot);
            *tails.borrow_mut() = Some(last);
            (out, saved)
        })?
    } else {
        let b_rec = match (&w.bias_hh, kind) {
            (Some(b), CellKind::Gru) => b.val().unsqueeze_dim::<2>(0),
            _ => Tensor::zeros([1, gh], &device),
        };
        let inputs = [&x2, &w_ih, &bias, &w_hh, &b_rec, &h0];
        fused_node::<B, 6, 2, _>(RecSeqBackward, inputs, |all, save| {
            let (out, saved, last) = rec_forward::<B>(kind, all, lens, save, &slot);
            *tails.borrow_mut() = Some(last);
            (out, saved)
        })?
    }; // [B·T, H]
    let (h_last, c_last) = tails.into_inner().expect("the forward ran");
    let hs = part::<B, 3>(&main, Part::Hs, &slot, |p| {
        B::float_reshape(p, Shape::new([batch, time, hid]))
    });
    let h_last = part::<B, 2>(&main, Part::HLast, &slot, |_| {
        B::from_vec(h_last, &[batch, hid])
    });
    let c_last =
        c_last.map(|c| part::<B, 2>(&main, Part::CLast, &slot, |_| B::from_vec(c, &[batch, hid])));
    Some((hs, h_last, c_last))
}

/// The whole stack through the fused op, or `None` where it does not apply: not on flex or
/// ndarray, not `f32`, or an empty batch or sequence. A reverse direction runs the same op on the time-reversed sequence
/// (its last step is PyTorch's `h_n` for that direction) and reverses its outputs back. With
/// `lengths` (PyTorch's packed sequences), each row's state is frozen past its length inside
/// the op, the outputs there are zeroed, and the reverse direction reverses each row within its
/// own length.
pub(crate) fn try_run_stack(
    stack: Stack,
    input: &Tensor<3>,
    hidden0: &Option<Tensor<3>>,
    cell0: &Option<Tensor<3>>,
    lengths: Option<&[usize]>,
) -> Option<StackOutput> {
    let [batch, time, _] = input.dims();
    if batch * time == 0 {
        return None;
    }
    if input.dtype() != DType::F32 {
        return None;
    }
    let probe = Tensor::<1>::zeros([1], &input.device());
    // Plain or autodiff tensors of `B`.
    fn on<B: Backend>(probe: &Tensor<1>) -> bool
    where
        DispatchTensor:
            DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B, NoCheckpointing>>,
    {
        probe.clone().try_into_primitive::<B>().is_ok()
            || probe
                .clone()
                .try_into_primitive::<Autodiff<B, NoCheckpointing>>()
                .is_ok()
    }
    let args = (stack, input, hidden0, cell0, lengths);
    #[cfg(feature = "flex")]
    if on::<burn::backend::Flex>(&probe) {
        return run_stack::<burn::backend::Flex>(args);
    }
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    if on::<burn::backend::NdArray>(&probe) {
        return run_stack::<burn::backend::NdArray>(args);
    }
    None
}

type StackArgs<'a> = (
    Stack<'a>,
    &'a Tensor<3>,
    &'a Option<Tensor<3>>,
    &'a Option<Tensor<3>>,
    Option<&'a [usize]>,
);

/// [`try_run_stack`] on a host backend `B`.
fn run_stack<B: HostBackend>(args: StackArgs) -> Option<StackOutput>
where
    DispatchTensor:
        DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B, NoCheckpointing>>,
{
    let (stack, input, hidden0, cell0, lengths) = args;
    let Stack {
        kind,
        layers,
        dropout,
        hidden_size,
    } = stack;
    let [batch, time, _] = input.dims();
    let device = input.device();
    let directions = if layers.first().is_some_and(|l| l.reverse.is_some()) {
        2
    } else {
        1
    };
    let initial =
        |all: &Option<Tensor<3>>, row| initial_state(all, row, batch, hidden_size, &device);
    let lens: Vec<usize> = match lengths {
        Some(l) if l.iter().any(|&l| l != time) => l.to_vec(),
        _ => vec![time; batch],
    };
    let padded = lens.iter().any(|&l| l != time);
    // `[B, T, 1]`: 1 on valid steps (the outputs past a row's length are zero).
    let mask = padded.then(|| {
        let m: Vec<f32> = lens
            .iter()
            .flat_map(|&l| (0..time).map(move |t| if t < l { 1.0 } else { 0.0 }))
            .collect();
        Tensor::<3>::from_data(TensorData::new(m, [batch, time, 1]), &device)
    });
    // `[B, T, 1]`: time reversed within each row's length (padding stays at the end), an
    // involution; uploaded once, expanded to each tensor's features.
    let reverse_index = padded.then(|| {
        let idx: Vec<i64> = lens
            .iter()
            .flat_map(|&l| (0..time).map(move |t| if t < l { l - 1 - t } else { t } as i64))
            .collect();
        Tensor::<3, Int>::from_data(TensorData::new(idx, [batch, time, 1]), &device)
    });
    let reversed = |t: Tensor<3>| -> Tensor<3> {
        match &reverse_index {
            Some(idx) => {
                let features = t.dims()[2];
                t.gather(1, idx.clone().expand([batch, time, features]))
            }
            None => t.flip([1]),
        }
    };
    let mut x = input.clone();
    let (mut final_h, mut final_c) = (Vec::new(), Vec::new());
    for (index, layer) in layers.iter().enumerate() {
        if index > 0 {
            x = dropout.forward(x);
        }
        let weights = std::iter::once((&layer.forward, false))
            .chain(layer.reverse.as_ref().map(|w| (w, true)));
        let mut outs = Vec::with_capacity(directions);
        for (d, (w, reverse)) in weights.enumerate() {
            let row = index * directions + d;
            let xin = if reverse {
                reversed(x.clone())
            } else {
                x.clone()
            };
            let (h0, c0) = (initial(hidden0, row), initial(cell0, row));
            let (hs, h_last, c_last) = run_direction::<B>(kind, w, xin, h0, c0, &lens)?;
            final_h.push(h_last);
            final_c.extend(c_last);
            let hs = match &mask {
                Some(m) => hs * m.clone(),
                None => hs,
            };
            outs.push(if reverse { reversed(hs) } else { hs });
        }
        x = if outs.len() == 1 {
            outs.pop().expect("one direction")
        } else {
            Tensor::cat(outs, 2)
        };
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
    use crate::{GruConfig, LstmConfig, Nonlinearity, RecurrentLayer, RnnConfig};
    use burn::tensor::{Device, Distribution};

    /// Every device the fused op runs on in this build (without autodiff).
    #[allow(deprecated, clippy::vec_init_then_push)]
    fn host_devices() -> Vec<Device> {
        let mut all = Vec::new();
        #[cfg(feature = "flex")]
        all.push(Device::flex());
        #[cfg(feature = "ndarray")]
        all.push(Device::ndarray());
        all
    }

    fn flat<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// The gate activations (16 lanes with AVX-512 where the CPU has it, else scalar) against
    /// `f32::tanh` and the exact sigmoid, over the clamp and past it, with tails of every length
    /// below 16; NaN stays NaN.
    #[test]
    fn activations_match_libm() {
        for len in [1, 5, 15, 16, 17, 40, 131] {
            let xs: Vec<f32> = (0..len * 61)
                .map(|i| (i as f32 / (len * 61) as f32 - 0.5) * 24.0)
                .collect();
            for chunk in xs.chunks(len) {
                let mut t = chunk.to_vec();
                tanh_in_place(&mut t);
                let mut s = chunk.to_vec();
                sigmoid_in_place(&mut s);
                for ((x, t), s) in chunk.iter().zip(&t).zip(&s) {
                    let (want_t, want_s) = (x.tanh(), 1.0 / (1.0 + (-x).exp()));
                    assert!(
                        (t - want_t).abs() <= 4e-7 * (1.0 + want_t.abs()),
                        "tanh({x}) {t}"
                    );
                    assert!((s - want_s).abs() <= 4e-7, "sigmoid({x}) {s}");
                }
            }
        }
        let mut v = vec![0.5, f32::NAN, -3.0];
        tanh_in_place(&mut v);
        assert!(v[1].is_nan() && !v[0].is_nan() && !v[2].is_nan());
        let mut v = vec![f32::NAN; 17];
        sigmoid_in_place(&mut v);
        assert!(v.iter().all(|x| x.is_nan()));
    }

    /// The fused op against the step-by-step loop on 2-layer stacks: outputs, final states and
    /// the gradients of every weight, the input and the initial states.
    fn compare(kind: CellKind, layers: &[RecurrentLayer], device: &Device, h: usize, b: usize) {
        compare_with(kind, layers, device, h, b, None);
    }

    fn compare_with(
        kind: CellKind,
        layers: &[RecurrentLayer],
        device: &Device,
        h: usize,
        b: usize,
        lengths: Option<&[usize]>,
    ) {
        let (t, i) = (17, 5);
        let dirs = if layers[0].reverse.is_some() { 2 } else { 1 };
        let rows = layers.len() * dirs;
        let x =
            Tensor::<3>::random([b, t, i], Distribution::Normal(0.0, 1.0), device).require_grad();
        let h0 = Tensor::<3>::random([rows, b, h], Distribution::Normal(0.0, 0.5), device)
            .require_grad();
        let c0 = Tensor::<3>::random([rows, b, h], Distribution::Normal(0.0, 0.5), device)
            .require_grad();
        let lstm = kind == CellKind::Lstm;
        let dropout = burn::nn::DropoutConfig::new(0.0).init();
        // Which outputs the loss reads: all of them, then (each output's gradient reaches the
        // op on its own) only the final hidden state, only the final cell state.
        let run = |fused: bool, uses: [bool; 3]| {
            let c_init = lstm.then(|| c0.clone());
            let stack = Stack::new(kind, layers, &dropout, h);
            let out = if !fused {
                run_stack_loop(stack, x.clone(), Some(h0.clone()), c_init.clone(), lengths)
            } else {
                try_run_stack(stack, &x, &Some(h0.clone()), &c_init, lengths)
                    .expect("the fused path applies")
            };
            // Uneven over time, so a direction mix-up or a missing flip shows.
            let ramp =
                Tensor::<1, burn::tensor::Int>::arange(0..t as i64, device).float() * 0.1 + 0.3;
            let weights = ramp.reshape([1, t, 1]).expand([b, t, h * dirs]);
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
            let loss = terms.into_iter().reduce(|a, b| a + b).expect("a loss");
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
                for w in std::iter::once(&layer.forward).chain(&layer.reverse) {
                    for p in [&w.weight_ih, &w.weight_hh] {
                        all.push(flat(p.val().grad(&grads).unwrap()));
                    }
                    for p in [&w.bias_ih, &w.bias_hh].into_iter().flatten() {
                        all.push(flat(p.val().grad(&grads).unwrap()));
                    }
                }
            }
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
                assert_eq!(a.len(), b.len());
                let worst = a
                    .iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
                    .fold(0.0f32, f32::max);
                assert!(
                    worst < 2e-5,
                    "{kind:?} loss on {uses:?}, tensor {k}: worst relative difference {worst}"
                );
            }
        }
    }

    /// Variable-length batches (PyTorch's packed sequences): states frozen past each row's
    /// length, zero outputs there, and the reverse direction reversed within each length.
    #[test]
    fn fused_lengths_match_the_loop() {
        for device in host_devices() {
            lengths_case(&device.autodiff());
        }
    }

    fn lengths_case(device: &Device) {
        let device = device.clone();
        device.seed(9);
        let (i, h) = (5, 6);
        let lengths: &[usize] = &[17, 4, 11, 1];
        let lstm = LstmConfig::new(i, h)
            .with_num_layers(2)
            .with_bidirectional(true)
            .init(&device);
        compare_with(CellKind::Lstm, &lstm.layers, &device, h, 4, Some(lengths));
        let gru = GruConfig::new(i, h)
            .with_num_layers(2)
            .with_bidirectional(true)
            .init(&device);
        compare_with(CellKind::Gru, &gru.layers, &device, h, 4, Some(lengths));
        let rnn = RnnConfig::new(i, h).with_num_layers(2).init(&device);
        compare_with(
            CellKind::ElmanTanh,
            &rnn.layers,
            &device,
            h,
            4,
            Some(lengths),
        );
    }

    /// Inference (no autodiff): the fused forward against the loop.
    #[test]
    fn fused_inference_matches_the_loop() {
        for device in host_devices() {
            inference_case(&device);
        }
    }

    fn inference_case(device: &Device) {
        let device = device.clone();
        device.seed(6);
        let (b, t, i, h) = (4, 13, 3, 6);
        let x = Tensor::<3>::random([b, t, i], Distribution::Normal(0.0, 1.0), &device);
        let dropout = burn::nn::DropoutConfig::new(0.0).init();
        let lstm = LstmConfig::new(i, h).with_num_layers(2).init(&device);
        let gru = GruConfig::new(i, h).with_num_layers(2).init(&device);
        let rnn = RnnConfig::new(i, h).with_num_layers(2).init(&device);
        let gru_bi = GruConfig::new(i, h)
            .with_num_layers(2)
            .with_bidirectional(true)
            .init(&device);
        let cases = [
            (CellKind::Lstm, &lstm.layers),
            (CellKind::Gru, &gru.layers),
            (CellKind::ElmanTanh, &rnn.layers),
            (CellKind::Gru, &gru_bi.layers),
        ];
        for (kind, layers) in cases {
            let stack = Stack::new(kind, layers, &dropout, h);
            let fused = try_run_stack(stack, &x, &None, &None, None)
                .expect("the fused path applies without autodiff");
            let looped = run_stack_loop(stack, x.clone(), None, None, None);
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

    /// Batch rows split into uneven blocks (3 rows over 4 threads, 7 over 3): every block's
    /// rows must land where the loop puts them, forward and backward.
    #[test]
    fn fused_blocks_of_rows_match_the_loop() {
        for (threads, batch, seed) in [(4, 3, 7), (3, 7, 8)] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                for device in host_devices() {
                    let device = device.autodiff();
                    device.seed(seed);
                    let lstm = LstmConfig::new(5, 6).with_num_layers(2).init(&device);
                    compare(CellKind::Lstm, &lstm.layers, &device, 6, batch);
                    let gru = GruConfig::new(5, 6).with_num_layers(2).init(&device);
                    compare(CellKind::Gru, &gru.layers, &device, 6, batch);
                }
            });
        }
    }

    #[test]
    fn fused_matches_the_loop_forward_and_backward() {
        for device in host_devices() {
            forward_backward_case(&device.autodiff());
        }
    }

    fn forward_backward_case(device: &Device) {
        let device = device.clone();
        device.seed(5);
        let (i, h) = (5, 8);
        let lstm = LstmConfig::new(i, h).with_num_layers(2).init(&device);
        compare(CellKind::Lstm, &lstm.layers, &device, h, 3);
        let gru = GruConfig::new(i, h).with_num_layers(2).init(&device);
        compare(CellKind::Gru, &gru.layers, &device, h, 3);
        let gru = GruConfig::new(i, h)
            .with_num_layers(2)
            .with_bias(false)
            .init(&device);
        compare(CellKind::Gru, &gru.layers, &device, h, 3);
        let rnn = RnnConfig::new(i, h).with_num_layers(2).init(&device);
        compare(CellKind::ElmanTanh, &rnn.layers, &device, h, 3);
        let rnn = RnnConfig::new(i, h)
            .with_num_layers(2)
            .with_nonlinearity(Nonlinearity::Relu)
            .init(&device);
        compare(CellKind::ElmanRelu, &rnn.layers, &device, h, 3);
        // Bidirectional stacks: the reverse directions run the op on the flipped sequence.
        let lstm = LstmConfig::new(i, h)
            .with_num_layers(2)
            .with_bidirectional(true)
            .init(&device);
        compare(CellKind::Lstm, &lstm.layers, &device, h, 3);
        let gru = GruConfig::new(i, h)
            .with_num_layers(2)
            .with_bidirectional(true)
            .init(&device);
        compare(CellKind::Gru, &gru.layers, &device, h, 3);
        let rnn = RnnConfig::new(i, h)
            .with_num_layers(2)
            .with_bidirectional(true)
            .init(&device);
        compare(CellKind::ElmanTanh, &rnn.layers, &device, h, 3);
    }
}
