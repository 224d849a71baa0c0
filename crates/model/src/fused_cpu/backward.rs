//! BPTT of one layer and direction as a plain loop: one block of batch rows per rayon thread,
//! each from `t = T - 1` back to 0 — the cell's per-row gradient, then the recurrent product
//! `dh_{t-1} = dpre_t · W_hh` — and after it the weight and input gradients as whole-sequence
//! products on every thread.

use burn::backend::tensor::FloatTensor;
use burn::backend::Backend;
use rayon::prelude::*;

use super::cell::{add_into, BackwardRow, RowCell};
use super::host::{dims2, HostBackend};
use super::layout::{
    block_rows, blocks, blocks_mut, grad_scratch, shifted, Dims, OutGrads, Saved, INPUTS,
};
use super::multiversion::{self, Task};
use crate::kernel::{self, gemm, Packed};
use crate::pool;

/// One block of rows: reads the output gradient `g [b, T, H]`, the forward's `hs` (and `cs`)
/// `[b, T, H]`, `h0`, `c0 [b, H]` and the cell's saved buffers `[b, T, w]`; writes the
/// pre-activation gradients `d_in` (and, for the GRU, `d_rec`) `[b, T, G·H]` and leaves the
/// initial states' gradients in `dh`, `dc [b, H]` (on entry: those of `h_T`, `c_T`).
struct Block<'a> {
    lens: &'a [usize],
    g: &'a [f32],
    hs: &'a [f32],
    cs: &'a [f32],
    h0: &'a [f32],
    c0: &'a [f32],
    saved: [&'a [f32]; 2],
    d_in: &'a mut [f32],
    d_rec: &'a mut [f32],
    dh: &'a mut [f32],
    dc: &'a mut [f32],
}

/// One block's BPTT, for [`multiversion::run`].
struct Backward<'a, C> {
    cell: C,
    d: Dims,
    w_hh: &'a Packed,
    blk: Block<'a>,
}

impl<C: RowCell> Task for Backward<'_, C> {
    #[inline(always)]
    fn run(self) {
        block_body(self.cell, self.d, self.w_hh, self.blk)
    }
}

#[inline(always)]
fn block_body<C: RowCell>(cell: C, d: Dims, w_hh: &Packed, blk: Block) {
    let Block {
        lens,
        g,
        hs,
        cs,
        h0,
        c0,
        saved,
        d_in,
        d_rec,
        dh,
        dc,
    } = blk;
    let (time, hid, gh) = (d.time, d.hid, d.gh());
    let sw = cell.saved_widths(hid);
    let cell_w = if C::HAS_CELL { hid } else { 0 };
    let rows = lens.len();
    for t in (0..time).rev() {
        for b in 0..rows {
            let at = (b * time + t) * hid;
            let (g, dh) = (&g[at..][..hid], &mut dh[b * hid..][..hid]);
            if t >= lens[b] {
                // A frozen step passes its state's gradients straight back (its dpre stay 0).
                add_into(dh, g);
                continue;
            }
            let st = b * time + t;
            let row = BackwardRow {
                g,
                h: &hs[at..][..hid],
                h_prev: previous(hs, h0, (b, t, hid), at),
                c_prev: if C::HAS_CELL {
                    previous(cs, c0, (b, t, hid), at)
                } else {
                    &[]
                },
                saved: [
                    &saved[0][st * sw[0]..][..sw[0]],
                    &saved[1][st * sw[1]..][..sw[1]],
                ],
                dh,
                dc: &mut dc[b * cell_w..][..cell_w],
                d_in: &mut d_in[st * gh..][..gh],
                d_rec: if C::SEPARATE_REC_GRAD {
                    &mut d_rec[st * gh..][..gh]
                } else {
                    &mut []
                },
            };
            cell.backward_row(row);
        }
        // dh_{t-1} += dpre_t · weight_hh (onto what the cell and frozen rows left).
        let d_pre = if C::SEPARATE_REC_GRAD {
            &d_rec[t * gh..]
        } else {
            &d_in[t * gh..]
        };
        gemm(rows, dh, hid, d_pre, time * gh, w_hh, true);
    }
}

/// Row `b`'s state before step `t` (its row of `first [b, H]` at `t = 0`), out of `all [b, T, H]`
/// whose step `t` starts at `at`.
#[inline(always)]
fn previous<'a>(
    all: &'a [f32],
    first: &'a [f32],
    (b, t, hid): (usize, usize, usize),
    at: usize,
) -> &'a [f32] {
    if t == 0 {
        &first[b * hid..][..hid]
    } else {
        &all[at - hid..at]
    }
}

/// The output gradients as BPTT reads them: `[B·T, H]` for every step's output (zeros when only
/// the last states were used), and `dh`, `dc [B, H]` (those of `h_T` and `c_T`) to start from.
struct OutputGrads<B: Backend> {
    hs: Result<FloatTensor<B>, Vec<f32>>,
    dh: Vec<f32>,
    dc: Vec<f32>,
}

impl<B: HostBackend> OutputGrads<B> {
    fn new(g: OutGrads<B>, d: Dims, has_cell: bool) -> Self {
        let state = |t: Option<FloatTensor<B>>, len: usize| match t.map(B::dense) {
            Some(t) => B::view(&t).to_vec(),
            None => vec![0.0f32; len],
        };
        Self {
            hs: g
                .hs
                .map(B::dense)
                .ok_or_else(|| pool::zeros(d.batch * d.time * d.hid)),
            dh: state(g.h_last, d.batch * d.hid),
            dc: state(g.c_last, if has_cell { d.batch * d.hid } else { 0 }),
        }
    }

    fn hs(&self) -> &[f32] {
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

/// BPTT of one layer and direction: from the outputs' gradients and what the forward saved, the
/// gradients of the node's inputs (see [`INPUTS`]) that `needed` asks for.
pub(super) fn backward<B: HostBackend, C: RowCell>(
    cell: C,
    mut s: Saved<B>,
    out: OutGrads<B>,
    needed: [bool; INPUTS],
) -> [Grad<B>; INPUTS] {
    let d = s.d;
    let (batch, time, hid, gh) = (d.batch, d.time, d.hid, d.gh());
    let mut og = OutputGrads::<B>::new(out, d, C::HAS_CELL);
    let (mut dh, mut dc) = (std::mem::take(&mut og.dh), std::mem::take(&mut og.dc));
    let mut d_in = grad_scratch(batch * time * gh, &s.lens, time);
    let mut d_rec = if C::SEPARATE_REC_GRAD {
        grad_scratch(batch * time * gh, &s.lens, time)
    } else {
        Vec::new()
    };
    let sw = cell.saved_widths(hid);
    let cell_w = if C::HAS_CELL { hid } else { 0 };
    let rec_w = if C::SEPARATE_REC_GRAD { gh } else { 0 };
    let hs = B::view(&s.out);
    let w_hh = Packed::new(B::view(&s.w_hh), (gh, hid), hid, 1);
    let r = block_rows(batch);
    let n = batch.div_ceil(r);
    let all: Vec<Block> = (s.lens.chunks(r))
        .zip(blocks(og.hs(), r, time * hid, n))
        .zip(blocks(hs, r, time * hid, n))
        .zip(blocks(&s.cs, r, time * cell_w, n))
        .zip(blocks(B::view(&s.h0), r, hid, n))
        .zip(blocks(B::view(&s.c0), r, cell_w, n))
        .zip(blocks(&s.saved[0], r, time * sw[0], n))
        .zip(blocks(&s.saved[1], r, time * sw[1], n))
        .zip(blocks_mut(&mut d_in, r, time * gh, n))
        .zip(blocks_mut(&mut d_rec, r, time * rec_w, n))
        .zip(blocks_mut(&mut dh, r, hid, n))
        .zip(blocks_mut(&mut dc, r, cell_w, n))
        .map(
            |(((((((((((lens, g), hs), cs), h0), c0), s0), s1), d_in), d_rec), dh), dc)| Block {
                lens,
                g,
                hs,
                cs,
                h0,
                c0,
                saved: [s0, s1],
                d_in,
                d_rec,
                dh,
                dc,
            },
        )
        .collect();
    all.into_par_iter().for_each(|blk| {
        multiversion::run(Backward {
            cell,
            d,
            w_hh: &w_hh,
            blk,
        })
    });
    drop(og);
    // The saved gates are the largest buffers: back to the pool before the products need more.
    drop(std::mem::take(&mut s.saved));
    drop(std::mem::take(&mut s.cs));
    let d_rec_or_in = if C::SEPARATE_REC_GRAD { &d_rec } else { &d_in };
    let [n_x, n_wih, n_bias, n_whh, n_brec, n_h0, n_c0] = needed;
    let w_hh_grad = n_whh.then(|| {
        let hp = shifted(hs, B::view(&s.h0), d);
        let g = weight_grad::<B>(d_rec_or_in, &hp, d);
        pool::give(hp);
        g
    });
    let b_rec_grad = n_brec.then(|| column_sums::<B>(d_rec_or_in, gh));
    let [x_grad, w_ih_grad, bias_grad] = input_grads::<B>([n_x, n_wih, n_bias], &d_in, &s, d);
    let h0_grad = n_h0.then(|| B::from_vec(dh, &[batch, hid]));
    let c0_grad = n_c0.then(|| B::from_vec(dc, &[batch, hid]));
    pool::give(d_in);
    pool::give(d_rec);
    [
        x_grad, w_ih_grad, bias_grad, w_hh_grad, b_rec_grad, h0_grad, c0_grad,
    ]
}

/// A gradient, where one was asked for.
type Grad<B> = Option<FloatTensor<B>>;

/// The gradients of `x`, `weight_ih` and the folded bias from the input side's pre-activation
/// gradient `dxw [B·T, G·H]`: `dxw · weight_ih`, `dxwᵀ · x`, and the column sums, with the packed
/// kernel on every thread.
fn input_grads<B: HostBackend>(
    [n_x, n_w, n_b]: [bool; 3],
    dxw: &[f32],
    s: &Saved<B>,
    d: Dims,
) -> [Grad<B>; 3] {
    let (rows, gh) = (d.batch * d.time, d.gh());
    let [_, f] = dims2::<B>(&s.w_ih);
    let x = n_x.then(|| {
        let w = Packed::new(B::view(&s.w_ih), (gh, f), f, 1);
        B::from_vec(kernel::matmul(rows, dxw, &w), &[rows, f])
    });
    let w = n_w.then(|| {
        let dw = kernel::matmul_tn(rows, dxw, gh, B::view(&s.x), f);
        B::from_vec(dw, &[gh, f])
    });
    let b = n_b.then(|| column_sums::<B>(dxw, gh));
    [x, w, b]
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

/// `weight_hh`'s gradient, `dpreᵀ · H_prev`: `dpre [B·T, G·H]`, `h_prev [B·T, H]` → `[G·H, H]`,
/// with the packed kernel on every thread.
fn weight_grad<B: HostBackend>(dpre: &[f32], h_prev: &[f32], d: Dims) -> FloatTensor<B> {
    let (rows, gh) = (d.batch * d.time, d.gh());
    B::from_vec(
        kernel::matmul_tn(rows, dpre, gh, h_prev, d.hid),
        &[gh, d.hid],
    )
}
