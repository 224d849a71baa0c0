//! The per-row math of each cell, forward and backward, on plain slices: what one batch row does
//! at one time step once the step's matrix products are in.

use super::activation::{sigmoid_in_place, tanh_in_place};
use super::layout::Weights;
use crate::kernel::{gemm, gemm_pair};

/// `dst += src`, element by element.
#[inline(always)]
pub(super) fn add_into(dst: &mut [f32], src: &[f32]) {
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
pub(super) fn lstm_cell(
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
pub(super) fn lstm_cell_grad(
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
pub(super) fn sum_into(dst: &mut [f32], a: &[f32], b: &[f32]) {
    let n = dst.len();
    let (a, b) = (&a[..n], &b[..n]);
    for j in 0..n {
        dst[j] = a[j] + b[j];
    }
}

/// GRU: `n = tanh(x_n + r ⊙ rec_n)`, then `h = n + z ⊙ (h_prev - n)`.
#[inline(always)]
pub(super) fn gru_cell(
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
pub(super) fn elman_cell_grad(relu: bool, h: &[f32], g: &[f32], dh: &[f32], dx: &mut [f32]) {
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
pub(super) fn gru_cell_grad(
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

/// One row's buffers at one step of the forward pass, as a [`RowCell`] reads and writes them.
pub(super) struct ForwardRow<'a> {
    /// `h_{t-1}` `[H]` and `h_t` `[H]` (written).
    pub(super) h_prev: &'a [f32],
    pub(super) h: &'a mut [f32],
    /// LSTM: `c_{t-1}` and `c_t` (written), `[H]`; empty otherwise.
    pub(super) c_prev: &'a [f32],
    pub(super) c: &'a mut [f32],
    /// This step's slots of the cell's saved buffers (see [`RowCell::saved_widths`]).
    pub(super) saved: [&'a mut [f32]; 2],
    /// This row's scratch of the step's products (see [`RowCell::scratch_widths`]).
    pub(super) scratch: [&'a mut [f32]; 2],
}

/// One row's buffers at one step of BPTT.
pub(super) struct BackwardRow<'a> {
    /// The gradient of the step's output `h_t`, `[H]`.
    pub(super) g: &'a [f32],
    /// `h_t` and `h_{t-1}`, `[H]`.
    pub(super) h: &'a [f32],
    pub(super) h_prev: &'a [f32],
    /// LSTM: `c_{t-1}`, `[H]`; empty otherwise.
    pub(super) c_prev: &'a [f32],
    /// The step's slots of the cell's saved buffers.
    pub(super) saved: [&'a [f32]; 2],
    /// The gradient reaching `h_t` from step `t + 1` (on return: what the recurrent product
    /// does not carry back to `h_{t-1}`, usually 0), `[H]`; LSTM: the same for `c`.
    pub(super) dh: &'a mut [f32],
    pub(super) dc: &'a mut [f32],
    /// The pre-activation gradients of the input side `[G·H]` and, where they differ (GRU), of
    /// the recurrent side.
    pub(super) d_in: &'a mut [f32],
    pub(super) d_rec: &'a mut [f32],
}

/// A cell as the fused op's generic drivers run it: which buffers it keeps, its step's matrix
/// products, and its per-row math forward and backward. Everything else — blocks of rows,
/// frozen steps past a row's length, the recurrent product of BPTT, the gradients of the
/// weights — is the same for every cell.
pub(super) trait RowCell: Copy + Send + Sync + std::fmt::Debug + 'static {
    /// Whether the state carries a cell `c` beside `h` (then `cs [B, T, H]` is kept).
    const HAS_CELL: bool;
    /// Whether the recurrent side's pre-activation gradient differs from the input side's
    /// (the GRU's reset gate multiplies only the former).
    const SEPARATE_REC_GRAD: bool;

    /// Widths per row and step of the (up to two) buffers the forward keeps for BPTT.
    fn saved_widths(self, hid: usize) -> [usize; 2];

    /// Widths per row of the scratch the step's products go to (outside the saved buffers).
    fn scratch_widths(self, hid: usize) -> [usize; 2];

    /// The step's products for a block of `rows` rows: `x_t W_ihᵀ` and `h_{t-1} W_hhᵀ`, each
    /// operand `(lhs, row stride)`, into the cell's saved slot `s` or its scratch.
    #[allow(clippy::too_many_arguments)]
    fn products(
        self,
        rows: usize,
        x: (&[f32], usize),
        h: (&[f32], usize),
        w: &Weights,
        saved0: (&mut [f32], usize),
        scratch: &mut [&mut [f32]; 2],
    );

    /// One row's gate math once the products are in: writes `h` (and `c`) and the saved slots.
    fn forward_row(self, w: &Weights, row: ForwardRow);

    /// One row's step of BPTT: the pre-activation gradients from `g + dh` (and `dc`).
    fn backward_row(self, row: BackwardRow);
}

/// The LSTM: saves the activated gates (i, f, g, o) `[4H]` and `tanh(c_t)` `[H]` per step; its
/// products go straight into the gates' slot.
#[derive(Debug, Clone, Copy)]
pub(super) struct LstmRows;

impl RowCell for LstmRows {
    const HAS_CELL: bool = true;
    const SEPARATE_REC_GRAD: bool = false;

    fn saved_widths(self, hid: usize) -> [usize; 2] {
        [4 * hid, hid]
    }

    fn scratch_widths(self, _: usize) -> [usize; 2] {
        [0, 0]
    }

    #[inline(always)]
    fn products(
        self,
        rows: usize,
        x: (&[f32], usize),
        h: (&[f32], usize),
        w: &Weights,
        (gates, gates_rs): (&mut [f32], usize),
        _: &mut [&mut [f32]; 2],
    ) {
        gemm_pair(
            rows,
            gates,
            gates_rs,
            (x.0, x.1, w.w_ih),
            (h.0, h.1, w.w_hh),
        );
    }

    #[inline(always)]
    fn forward_row(self, w: &Weights, row: ForwardRow) {
        let ForwardRow {
            h_prev: _,
            h,
            c_prev,
            c,
            saved: [gates, tc],
            scratch: _,
        } = row;
        let hid = h.len();
        add_into(gates, w.bias);
        let (ifg, o) = gates.split_at_mut(3 * hid);
        let (if_, g) = ifg.split_at_mut(2 * hid);
        sigmoid_in_place(if_);
        tanh_in_place(g);
        sigmoid_in_place(o);
        let (i, rest) = gates.split_at(hid);
        let (f, rest) = rest.split_at(hid);
        let (g, o) = rest.split_at(hid);
        lstm_cell(i, f, g, o, c_prev, c, tc, h);
    }

    #[inline(always)]
    fn backward_row(self, row: BackwardRow) {
        let [gates, tc] = row.saved;
        lstm_cell_grad(gates, tc, row.c_prev, row.g, row.dh, row.dc, row.d_in);
        row.dh.fill(0.0);
    }
}

/// The GRU: saves the activated (r, z, n) `[3H]` and `h W_hn + b_hn` `[H]` per step; keeps the
/// input and recurrent products apart (the reset gate multiplies only the latter).
#[derive(Debug, Clone, Copy)]
pub(super) struct GruRows;

impl RowCell for GruRows {
    const HAS_CELL: bool = false;
    const SEPARATE_REC_GRAD: bool = true;

    fn saved_widths(self, hid: usize) -> [usize; 2] {
        [3 * hid, hid]
    }

    fn scratch_widths(self, hid: usize) -> [usize; 2] {
        [3 * hid, 3 * hid]
    }

    #[inline(always)]
    fn products(
        self,
        rows: usize,
        x: (&[f32], usize),
        h: (&[f32], usize),
        w: &Weights,
        _: (&mut [f32], usize),
        [xp, rec]: &mut [&mut [f32]; 2],
    ) {
        let gh = xp.len() / rows.max(1);
        gemm(rows, xp, gh, x.0, x.1, w.w_ih, false);
        gemm(rows, rec, gh, h.0, h.1, w.w_hh, false);
    }

    #[inline(always)]
    fn forward_row(self, w: &Weights, row: ForwardRow) {
        let ForwardRow {
            h_prev,
            h,
            saved: [act, rec_n],
            scratch: [x, rr],
            ..
        } = row;
        let hid = h.len();
        add_into(x, w.bias);
        add_into(rr, w.b_rec);
        let (rz, n) = act.split_at_mut(2 * hid);
        let (x_rz, x_n) = x.split_at(2 * hid);
        let (rr_rz, rr_n) = rr.split_at(2 * hid);
        sum_into(rz, x_rz, rr_rz);
        sigmoid_in_place(rz);
        let (r, z) = rz.split_at(hid);
        gru_cell(r, z, x_n, rr_n, h_prev, n, h);
        rec_n.copy_from_slice(&rr_n[..hid]);
    }

    #[inline(always)]
    fn backward_row(self, row: BackwardRow) {
        let [act, rec_n] = row.saved;
        gru_cell_grad(act, rec_n, row.h_prev, row.g, row.dh, row.d_in, row.d_rec);
    }
}

/// The Elman RNN (tanh or relu): saves nothing but its outputs.
#[derive(Debug, Clone, Copy)]
pub(super) struct ElmanRows {
    pub(super) relu: bool,
}

impl RowCell for ElmanRows {
    const HAS_CELL: bool = false;
    const SEPARATE_REC_GRAD: bool = false;

    fn saved_widths(self, _: usize) -> [usize; 2] {
        [0, 0]
    }

    fn scratch_widths(self, hid: usize) -> [usize; 2] {
        [hid, 0]
    }

    #[inline(always)]
    fn products(
        self,
        rows: usize,
        x: (&[f32], usize),
        h: (&[f32], usize),
        w: &Weights,
        _: (&mut [f32], usize),
        [pre, _]: &mut [&mut [f32]; 2],
    ) {
        let gh = pre.len() / rows.max(1);
        gemm_pair(rows, pre, gh, (x.0, x.1, w.w_ih), (h.0, h.1, w.w_hh));
    }

    #[inline(always)]
    fn forward_row(self, w: &Weights, row: ForwardRow) {
        let ForwardRow {
            h,
            scratch: [pre, _],
            ..
        } = row;
        add_into(pre, w.bias);
        if self.relu {
            pre.iter_mut().for_each(|v| *v = v.max(0.0));
        } else {
            tanh_in_place(pre);
        }
        h.copy_from_slice(pre);
    }

    #[inline(always)]
    fn backward_row(self, row: BackwardRow) {
        elman_cell_grad(self.relu, row.h, row.g, row.dh, row.d_in);
        row.dh.fill(0.0);
    }
}
