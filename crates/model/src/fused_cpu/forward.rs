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

/// Runs [`block_body`] compiled for AVX-512 where the CPU has it (the gate loops then vectorise
/// 16 lanes wide; the default x86-64 target has only SSE2), with denormals flushed to zero.
fn block<C: RowCell>(cell: C, d: Dims, w: &Weights, blk: Block) {
    let _ftz = crate::kernel::Ftz::on();
    #[cfg(target_arch = "x86_64")]
    if crate::kernel::cpu::avx512() {
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        fn fast<C: RowCell>(cell: C, d: Dims, w: &Weights, blk: Block) {
            block_body(cell, d, w, blk)
        }
        // SAFETY: `avx512()` detected every feature `fast` is compiled for.
        return unsafe { fast(cell, d, w, blk) };
    }
    block_body(cell, d, w, blk)
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
    let sw = cell.saved_widths(hid);
    let xw = cell.scratch_widths(hid);
    let bth = batch * time * hid;
    let mut hs = pool::fresh(bth);
    let mut cs = if C::HAS_CELL {
        pool::take(bth)
    } else {
        Vec::new()
    };
    let mut saved = sw.map(|n| pool::take(batch * d.kept() * n));
    let mut scratch = xw.map(|n| vec![0.0f32; batch * n]);
    let r = block_rows(batch);
    let n = batch.div_ceil(r);
    let cell_w = if C::HAS_CELL { hid } else { 0 };
    let [s0, s1] = &mut saved;
    let [x0, x1] = &mut scratch;
    let all: Vec<Block> = (lens.chunks(r))
        .zip(blocks(B::view(&x), r, time * w.f(), n))
        .zip(blocks(B::view(&h0), r, hid, n))
        .zip(blocks(B::view(&c0), r, cell_w, n))
        .zip(blocks_mut(&mut hs, r, time * hid, n))
        .zip(blocks_mut(&mut cs, r, time * cell_w, n))
        .zip(blocks_mut(s0, r, d.kept() * sw[0], n))
        .zip(blocks_mut(s1, r, d.kept() * sw[1], n))
        .zip(blocks_mut(x0, r, xw[0], n))
        .zip(blocks_mut(x1, r, xw[1], n))
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
        .collect();
    all.into_par_iter().for_each(|blk| block(cell, d, &w, blk));
    // A frozen row's state stays, so its last step holds the state at its length.
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
    let [s0, s1] = saved;
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
