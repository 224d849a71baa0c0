//! How the fused op lays out its buffers: sizes, blocks of batch rows, what the forward saves
//! for BPTT, and where the outputs' gradients arrive.
//!
//! Every buffer is batch-major, `[B, T, ·]`, so the rows of one block are one contiguous slice
//! of each and a block runs from `t = 0` to `T - 1` (or back) without touching another's.

use std::sync::{Arc, Mutex};

use burn::backend::tensor::FloatTensor;
use burn::backend::Backend;

use super::host::{dims2, HostBackend};
use crate::kernel::Packed;
use crate::pool::{self, Pooled};

/// Sizes shared by the kernels: batch, time, hidden, gate blocks; `save` keeps every step's
/// buffers for BPTT (training) instead of one step's (inference).
#[derive(Clone, Copy, Debug)]
pub(super) struct Dims {
    pub(super) batch: usize,
    pub(super) time: usize,
    pub(super) hid: usize,
    pub(super) gates: usize,
    pub(super) save: bool,
}

impl Dims {
    /// Sizes from a node's inputs: `x [B·T, F]`, `weight_hh [G·H, H]`, `h0 [B, H]`.
    pub(super) fn of<B: Backend>(
        x: &FloatTensor<B>,
        w_hh: &FloatTensor<B>,
        h0: &FloatTensor<B>,
        save: bool,
    ) -> Self {
        let [rows, _] = dims2::<B>(x);
        let [batch, hid] = dims2::<B>(h0);
        let [gh, _] = dims2::<B>(w_hh);
        Dims {
            batch,
            time: rows / batch,
            hid,
            gates: gh / hid,
            save,
        }
    }

    /// Gate rows `G·H`.
    pub(super) fn gh(&self) -> usize {
        self.gates * self.hid
    }

    /// Steps kept per row in a saved buffer: all of them, or only the current one.
    pub(super) fn kept(&self) -> usize {
        if self.save {
            self.time
        } else {
            1
        }
    }

    /// Where step `t` sits among the kept steps.
    pub(super) fn slot(&self, t: usize) -> usize {
        if self.save {
            t
        } else {
            0
        }
    }
}

/// Rows per block: the batch split evenly over the rayon threads.
pub(super) fn block_rows(batch: usize) -> usize {
    batch.div_ceil(rayon::current_num_threads().clamp(1, batch.max(1)))
}

/// `buf` as one slice per block of `rows` batch rows, `per_row` values each (empty slices when a
/// cell has no such buffer).
pub(super) fn blocks(buf: &[f32], rows: usize, per_row: usize, count: usize) -> Vec<&[f32]> {
    if per_row == 0 {
        return vec![&[][..]; count];
    }
    buf.chunks(rows * per_row).collect()
}

/// [`blocks`], mutable.
pub(super) fn blocks_mut(
    buf: &mut [f32],
    rows: usize,
    per_row: usize,
    count: usize,
) -> Vec<&mut [f32]> {
    if per_row == 0 {
        return (0..count).map(|_| <&mut [f32]>::default()).collect();
    }
    buf.chunks_mut(rows * per_row).collect()
}

/// Copies the previous step's row of a batch-major `[b, T, H]` buffer into the row at `at`: a
/// state frozen past its row's length (lengths are at least 1, so there is a previous step).
#[inline(always)]
pub(super) fn hold(buf: &mut [f32], at: usize, hid: usize) {
    buf.copy_within(at - hid..at, at);
}

/// A layer's weights as the forward kernels read them.
pub(super) struct Weights<'a> {
    /// `weight_ihᵀ [F, G·H]` and `weight_hhᵀ [H, G·H]`, packed.
    pub(super) w_ih: &'a Packed,
    pub(super) w_hh: &'a Packed,
    /// `[G·H]`: `b_ih + b_hh` (LSTM, Elman) or `b_ih` (GRU); zeros without biases.
    pub(super) bias: &'a [f32],
    /// `[G·H]`: the GRU's `b_hh`, which stays inside `r ⊙ (h W_hn + b_hn)`; zeros otherwise.
    pub(super) b_rec: &'a [f32],
}

impl Weights<'_> {
    /// Input features.
    pub(super) fn f(&self) -> usize {
        self.w_ih.k()
    }
}

/// `weight_ihᵀ [F, G·H]` and `weight_hhᵀ [H, G·H]`, packed for the per-step products.
pub(super) fn pack_forward<B: HostBackend>(
    w_ih: &FloatTensor<B>,
    w_hh: &FloatTensor<B>,
) -> (Packed, Packed) {
    let [gh, f] = dims2::<B>(w_ih);
    let [_, hid] = dims2::<B>(w_hh);
    (
        Packed::new(B::view(w_ih), (f, gh), 1, f),
        Packed::new(B::view(w_hh), (hid, gh), 1, hid),
    )
}

/// The last step's `h_T` and, for the LSTM, `c_T`, `[B, H]` each, as values.
pub(super) type Tails = (Vec<f32>, Option<Vec<f32>>);

/// Row `T - 1` of each batch row of `v [B, T, H]`: `[B, H]`.
pub(super) fn last_steps(v: &[f32], d: Dims) -> Vec<f32> {
    let (time, hid) = (d.time, d.hid);
    let mut out = Vec::with_capacity(d.batch * hid);
    for b in 0..d.batch {
        out.extend_from_slice(&v[(b * time + time - 1) * hid..][..hid]);
    }
    out
}

/// `h_{t-1}` of every step, `[B·T, H]`: each row's `h0`, then its `hs` shifted by one step.
pub(super) fn shifted(hs: &[f32], h0: &[f32], d: Dims) -> Vec<f32> {
    let (time, hid) = (d.time, d.hid);
    let mut hp = pool::take(d.batch * time * hid);
    for b in 0..d.batch {
        let row = &mut hp[b * time * hid..(b + 1) * time * hid];
        row[..hid].copy_from_slice(&h0[b * hid..(b + 1) * hid]);
        row[hid..].copy_from_slice(&hs[b * time * hid..(b + 1) * time * hid - hid]);
    }
    hp
}

/// BPTT's pre-activation gradient buffer: every valid step's values are written, so only
/// batches with padding (whose frozen steps must read as 0) need zeros.
pub(super) fn grad_scratch(len: usize, lens: &[usize], time: usize) -> Vec<f32> {
    if lens.iter().all(|&l| l == time) {
        pool::take(len)
    } else {
        pool::zeros(len)
    }
}

/// The node's inputs, in this order: `x [B·T, F]` (batch-major), `weight_ih [G·H, F]`, `bias
/// [1, G·H]` (see [`Weights::bias`]), `weight_hh [G·H, H]`, `b_rec [1, G·H]` (see
/// [`Weights::b_rec`]), `h0 [B, H]`, `c0 [B, H]` (zeros but for the LSTM).
pub(super) const INPUTS: usize = 7;

/// What BPTT needs from the forward of one layer and direction.
#[derive(Clone, Debug)]
pub(super) struct Saved<B: Backend> {
    /// `x [B·T, F]`, `weight_ih [G·H, F]`, `weight_hh [G·H, H]`, `h0`, `c0 [B, H]`.
    pub(super) x: FloatTensor<B>,
    pub(super) w_ih: FloatTensor<B>,
    pub(super) w_hh: FloatTensor<B>,
    pub(super) h0: FloatTensor<B>,
    pub(super) c0: FloatTensor<B>,
    /// The output, `[B·T, H]`: every `h_t` (batch-major).
    pub(super) out: FloatTensor<B>,
    /// Where the outputs' gradients arrive.
    pub(super) slot: Slot<B>,
    /// LSTM: every `c_t`, `[B, T, H]`; empty otherwise.
    pub(super) cs: Pooled,
    /// The cell's per-step buffers, `[B, T, w]` each (see `RowCell::saved_widths`).
    pub(super) saved: [Pooled; 2],
    /// Each row's valid length.
    pub(super) lens: Vec<usize>,
    pub(super) d: Dims,
}

/// The gradients of a fused op's outputs, left by its part nodes for the op's own backward
/// (which runs after theirs: the op is their parent).
#[derive(Debug)]
pub(super) struct OutGrads<B: Backend> {
    /// `[B, T, H]`.
    pub(super) hs: Option<FloatTensor<B>>,
    /// `[B, H]` each.
    pub(super) h_last: Option<FloatTensor<B>>,
    pub(super) c_last: Option<FloatTensor<B>>,
}

impl<B: Backend> OutGrads<B> {
    pub(super) fn none() -> Self {
        Self {
            hs: None,
            h_last: None,
            c_last: None,
        }
    }
}

/// Shared between an op's node and its part nodes.
pub(super) type Slot<B> = Arc<Mutex<OutGrads<B>>>;

pub(super) fn new_slot<B: Backend>() -> Slot<B> {
    Arc::new(Mutex::new(OutGrads::none()))
}

/// Empties the slot.
pub(super) fn take_grads<B: Backend>(slot: &Slot<B>) -> OutGrads<B> {
    let mut g = slot.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::replace(&mut *g, OutGrads::none())
}
