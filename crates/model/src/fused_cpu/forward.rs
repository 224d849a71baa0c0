//! The forward pass of one layer and direction over the whole sequence: one block of batch rows
//! per rayon thread, each from `t = 0` to `T - 1`, every step's products straight into the
//! cell's buffers, then its gate math row by row.

use rayon::prelude::*;

use super::cell::{ForwardRow, RowCell};
use super::host::HostBackend;
use super::layout::{
    block_rows, blocks, blocks_mut, hold, last_steps, pack_forward, Dims, Saved, Slot, Tails,
    Weights, INPUTS,
};
use super::multiversion::{self, Task};
use crate::pool::{self, Pooled};

/// One block of rows: reads `x [b, T, F]`, `h0`, `c0 [b, H]`; writes `hs` (and, with a cell,
/// `cs`) `[b, T, H]` and the cell's saved buffers `[b, kept, w]`, with `scratch [b, w]` for the
/// step's products.
struct Block<'a> {
    /// Each row's valid length: from step `lens[b]` on the row's state is frozen.
    lens: &'a [usize],
    x: &'a [f32],
    h0: &'a [f32],
    c0: &'a [f32],
    hs: &'a mut [f32],
    cs: &'a mut [f32],
    saved: [&'a mut [f32]; 2],
    scratch: [&'a mut [f32]; 2],
}

/// One block's forward, for [`multiversion::run`].
struct Forward<'a, 'w, C> {
    cell: C,
    d: Dims,
    w: &'a Weights<'w>,
    blk: Block<'a>,
}

impl<C: RowCell> Task for Forward<'_, '_, C> {
    #[inline(always)]
    fn run(self) {
        block_body(self.cell, self.d, self.w, self.blk)
    }
}

#[inline(always)]
fn block_body<C: RowCell>(cell: C, d: Dims, w: &Weights, blk: Block) {
    let Block {
        lens,
        x,
        h0,
        c0,
        hs,
        cs,
        mut saved,
        mut scratch,
    } = blk;
    let (time, hid, kept, f) = (d.time, d.hid, d.kept(), w.f());
    let sw = cell.saved_widths(hid);
    let xw = cell.scratch_widths(hid);
    let rows = lens.len();
    for t in 0..time {
        let s = d.slot(t);
        let h_in = if t == 0 {
            (h0, hid)
        } else {
            (&hs[(t - 1) * hid..], time * hid)
        };
        let x_in = (&x[t * f..], time * f);
        // The LSTM's products go straight into its gate slot `s` (rows `kept · 4H` apart).
        let at0 = (s * sw[0]).min(saved[0].len());
        let slot0 = (&mut saved[0][at0..], kept * sw[0]);
        cell.products(rows, x_in, h_in, w, slot0, &mut scratch);
        for b in 0..rows {
            let at = (b * time + t) * hid;
            if t >= lens[b] {
                // Past this row's end: the state stays (PyTorch's packed sequences).
                hold(hs, at, hid);
                if C::HAS_CELL {
                    hold(cs, at, hid);
                }
                continue;
            }
            let (before, now) = hs.split_at_mut(at);
            let h_prev = if t == 0 {
                &h0[b * hid..][..hid]
            } else {
                &before[at - hid..]
            };
            let (c_prev, c): (&[f32], &mut [f32]) = if C::HAS_CELL {
                let (before, now) = cs.split_at_mut(at);
                let c_prev = if t == 0 {
                    &c0[b * hid..][..hid]
                } else {
                    &before[at - hid..]
                };
                (c_prev, &mut now[..hid])
            } else {
                (&[], &mut [])
            };
            let [s0, s1] = &mut saved;
            let [x0, x1] = &mut scratch;
            let row = ForwardRow {
                h_prev,
                h: &mut now[..hid],
                c_prev,
                c,
                saved: [
                    &mut s0[(b * kept + s) * sw[0]..][..sw[0]],
                    &mut s1[(b * kept + s) * sw[1]..][..sw[1]],
                ],
                scratch: [&mut x0[b * xw[0]..][..xw[0]], &mut x1[b * xw[1]..][..xw[1]]],
            };
            cell.forward_row(w, row);
        }
    }
}

/// The forward of one layer and direction on the node's [`INPUTS`] → every step's hidden state
/// `[B·T, H]` (batch-major), what BPTT needs (`save`: every step's buffers, else one step's), and
/// as values the last hidden and (LSTM) cell states `h_T`, `c_T [B, H]`. The cell states of the
/// other steps stay inside the op (only BPTT reads them).
pub(super) fn forward<B: HostBackend, C: RowCell>(
    cell: C,
    inputs: [burn::backend::tensor::FloatTensor<B>; INPUTS],
    lens: &[usize],
    save: bool,
    slot: &Slot<B>,
) -> (burn::backend::tensor::FloatTensor<B>, Saved<B>, Tails) {
    let [x, w_ih, bias, w_hh, b_rec, h0, c0] = inputs.map(B::dense);
    let d = Dims::of::<B>(&x, &w_hh, &h0, save);
    let (batch, time, hid) = (d.batch, d.time, d.hid);
    let (w_ih_t, w_hh_t) = pack_forward::<B>(&w_ih, &w_hh);
    let w = Weights {
        w_ih: &w_ih_t,
        w_hh: &w_hh_t,
        bias: B::view(&bias),
        b_rec: B::view(&b_rec),
    };
    let mut bufs = Buffers::new(cell, d);
    let all = bufs.blocks(lens, [B::view(&x), B::view(&h0), B::view(&c0)], w.f(), d);
    all.into_par_iter().for_each(|blk| {
        multiversion::run(Forward {
            cell,
            d,
            w: &w,
            blk,
        })
    });
    // A frozen row's state stays, so its last step holds the state at its length.
    let Buffers {
        hs,
        cs,
        saved: [s0, s1],
        ..
    } = bufs;
    let tails = (last_steps(&hs, d), C::HAS_CELL.then(|| last_steps(&cs, d)));
    let out = B::from_vec(hs, &[batch * time, hid]);
    let keep = |v: Vec<f32>| {
        if save {
            Pooled(v)
        } else {
            pool::give(v);
            Pooled::default()
        }
    };
    let saved = Saved {
        x,
        w_ih,
        w_hh,
        h0,
        c0,
        out: out.clone(),
        slot: slot.clone(),
        cs: keep(cs),
        saved: [keep(s0), keep(s1)],
        lens: lens.to_vec(),
        d,
    };
    (out, saved, tails)
}

/// The forward's buffers: `hs` (and, with a cell, `cs`) `[B, T, H]`, the cell's saved buffers
/// `[B, kept, w]` and the scratch of its products `[B, w]`.
struct Buffers {
    hs: Vec<f32>,
    cs: Vec<f32>,
    saved: [Vec<f32>; 2],
    scratch: [Vec<f32>; 2],
    /// Values per row of each: `[hs, cs, saved 0, saved 1, scratch 0, scratch 1]`.
    per_row: [usize; 6],
}

impl Buffers {
    fn new<C: RowCell>(cell: C, d: Dims) -> Self {
        let (batch, time, hid, kept) = (d.batch, d.time, d.hid, d.kept());
        let cell_w = if C::HAS_CELL { hid } else { 0 };
        let [s0, s1] = cell.saved_widths(hid);
        let [x0, x1] = cell.scratch_widths(hid);
        let per_row = [time * hid, time * cell_w, kept * s0, kept * s1, x0, x1];
        Self {
            hs: pool::fresh(batch * per_row[0]),
            cs: pool::take(batch * per_row[1]),
            saved: [
                pool::take(batch * per_row[2]),
                pool::take(batch * per_row[3]),
            ],
            scratch: [vec![0.0f32; batch * x0], vec![0.0f32; batch * x1]],
            per_row,
        }
    }

    /// One [`Block`] per rayon thread: its rows of every buffer, of `lens`, and of the inputs
    /// `x [B, T, F]`, `h0` and `c0 [B, H]` (`c0` read only with a cell).
    fn blocks<'a>(
        &'a mut self,
        lens: &'a [usize],
        [x, h0, c0]: [&'a [f32]; 3],
        features: usize,
        d: Dims,
    ) -> Vec<Block<'a>> {
        let (time, hid) = (d.time, d.hid);
        let r = block_rows(d.batch);
        let n = d.batch.div_ceil(r);
        let p = self.per_row;
        let cell_w = p[1] / time.max(1);
        let [s0, s1] = &mut self.saved;
        let [x0, x1] = &mut self.scratch;
        lens.chunks(r)
            .zip(blocks(x, r, time * features, n))
            .zip(blocks(h0, r, hid, n))
            .zip(blocks(c0, r, cell_w, n))
            .zip(blocks_mut(&mut self.hs, r, p[0], n))
            .zip(blocks_mut(&mut self.cs, r, p[1], n))
            .zip(blocks_mut(s0, r, p[2], n))
            .zip(blocks_mut(s1, r, p[3], n))
            .zip(blocks_mut(x0, r, p[4], n))
            .zip(blocks_mut(x1, r, p[5], n))
            .map(
                |(((((((((lens, x), h0), c0), hs), cs), s0), s1), x0), x1)| Block {
                    lens,
                    x,
                    h0,
                    c0,
                    hs,
                    cs,
                    saved: [s0, s1],
                    scratch: [x0, x1],
                },
            )
            .collect()
    }
}
