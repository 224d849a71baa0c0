//! The two CubeCL kernels of the fused GPU op: one layer and direction over the whole sequence,
//! forward and BPTT, each in ONE launch.
//!
//! Sequence-persistent: a cube (workgroup) owns a block of `rows` batch rows and runs every step
//! of them from `t = 0` to `T - 1` (or back). Batch rows never interact inside a recurrence, so
//! cubes need no grid-wide barrier; within a cube, one `sync_cube` per step (two in BPTT) orders
//! the hidden state (or the gate gradients) of the block's rows, which sit in shared memory.
//! Thread `j` of the cube owns hidden unit `j` (and `j + CUBE_DIM`, …) of every row of its block:
//! it reads each recurrent weight once per step and applies it to all `rows` rows, so the
//! weights stream from L2 once per cube and step.
//!
//! Launched unchecked (no bounds test on each access): every read of a row past the batch is
//! clamped to the last row and every write past it skipped, as the tests at odd sizes check.
//! Every buffer is a flat, contiguous, row-major `f32` array; shapes are given in the comments as
//! `[B, T, G·H]` etc. `G` is the cell's gate count, `H` the hidden size (`hid`).
//!
//! Cells (`cell`): [`LSTM`] (gates i, f, g, o), [`GRU`] (r, z, n; PyTorch's `b_hn` inside
//! `r ⊙ ·`), [`TANH`] and [`RELU`] (Elman). Past a row's length the state is frozen: the step
//! outputs the previous state, and its gradient passes straight through.

use cubecl::prelude::*;

/// The LSTM cell.
pub(crate) const LSTM: u32 = 0;
/// The GRU cell.
pub(crate) const GRU: u32 = 1;
/// The Elman cell with `tanh`.
pub(crate) const TANH: u32 = 2;
/// The Elman cell with `relu`.
pub(crate) const RELU: u32 = 3;

/// Gates per hidden unit of `cell`.
pub(crate) fn gate_count(cell: u32) -> usize {
    match cell {
        LSTM => 4,
        GRU => 3,
        _ => 1,
    }
}

/// Steps of the recurrent product's inner loop taken at once: each step of the recurrence is
/// otherwise bound by the latency of one weight load after another from L2.
const UNROLL: usize = 8;

#[cube]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Forward of one layer and direction.
///
/// - `xproj [B, T, G·H]`: `x W_ihᵀ + bias` for every step, computed up front as one matmul;
/// - `w_hh_t [H, G·H]`: `W_hhᵀ` (so that threads of neighbouring units read neighbouring
///   weights); `b_rec [G·H]`: added to the recurrent product (the GRU's `b_hh`, else zeros);
/// - `h0`, `c0 [B, H]`; `lens [B]`: each row's valid length, as `f32`;
/// - writes `out [B, T + 1, H]` (every step's hidden state, then the last cell state for the
///   LSTM, zeros otherwise), `gates [B, T, G·H]` (gate activations; LSTM and GRU), `extra
///   [B, T, H]` (the LSTM's cell state, the GRU's `W_hn h + b_hn`) and `hprev [B, T, H]` (each
///   step's incoming hidden state, for the weight gradient).
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn seq_forward(
    xproj: &Tensor<f32>,
    w_hh_t: &Tensor<f32>,
    b_rec: &Tensor<f32>,
    h0: &Tensor<f32>,
    c0: &Tensor<f32>,
    lens: &Tensor<f32>,
    out: &mut Tensor<f32>,
    gates: &mut Tensor<f32>,
    extra: &mut Tensor<f32>,
    hprev: &mut Tensor<f32>,
    batch: u32,
    time: u32,
    #[comptime] hid: usize,
    #[comptime] cell: u32,
    #[comptime] rows: usize,
) {
    let g_n = comptime!(gate_count(cell));
    let gh = comptime!(hid * gate_count(cell));
    let batch = batch as usize;
    let time = time as usize;
    let row0 = CUBE_POS_X as usize * rows;
    let step = CUBE_DIM_X as usize;
    // Two copies of the block's hidden state (this step's input, its output) and its cell state.
    let mut h_sh = Shared::<[f32]>::new_slice(comptime!(2 * rows * hid));
    let mut c_sh = Shared::<[f32]>::new_slice(comptime!(rows * hid));

    let mut j = UNIT_POS_X as usize;
    while j < hid {
        #[unroll]
        for r in 0..rows {
            let b = min(row0 + r, batch - 1);
            h_sh[r * hid + j] = h0[b * hid + j];
            c_sh[r * hid + j] = c0[b * hid + j];
        }
        j += step;
    }
    sync_cube();

    for t in 0..time {
        let cur = (t % 2) * rows * hid;
        let nxt = ((t + 1) % 2) * rows * hid;
        let tf = f32::cast_from(t);
        let mut j = UNIT_POS_X as usize;
        while j < hid {
            let mut acc = Array::<f32>::new(comptime!(rows * gate_count(cell)));
            #[unroll]
            for g in 0..g_n {
                let b = b_rec[g * hid + j];
                #[unroll]
                for r in 0..rows {
                    acc[r * g_n + g] = b;
                }
            }
            // `UNROLL` steps of k at a time, so that their weight loads are in flight together.
            let mut k = 0;
            while k + UNROLL <= hid {
                #[unroll]
                for u in 0..UNROLL {
                    let at = (k + u) * gh + j;
                    #[unroll]
                    for g in 0..g_n {
                        let w = w_hh_t[at + g * hid];
                        #[unroll]
                        for r in 0..rows {
                            acc[r * g_n + g] += h_sh[cur + r * hid + k + u] * w;
                        }
                    }
                }
                k += UNROLL;
            }
            while k < hid {
                let at = k * gh + j;
                #[unroll]
                for g in 0..g_n {
                    let w = w_hh_t[at + g * hid];
                    #[unroll]
                    for r in 0..rows {
                        acc[r * g_n + g] += h_sh[cur + r * hid + k] * w;
                    }
                }
                k += 1;
            }
            #[unroll]
            for r in 0..rows {
                let b = row0 + r;
                let bb = min(b, batch - 1);
                let hp = h_sh[cur + r * hid + j];
                let mut h = hp;
                let xo = (bb * time + t) * gh + j;
                let so = (bb * time + t) * hid + j;
                if tf < lens[bb] {
                    if comptime!(cell == LSTM) {
                        let i = sigmoid(xproj[xo] + acc[r * g_n]);
                        let f = sigmoid(xproj[xo + hid] + acc[r * g_n + 1]);
                        let gg = (xproj[xo + 2 * hid] + acc[r * g_n + 2]).tanh();
                        let o = sigmoid(xproj[xo + 3 * hid] + acc[r * g_n + 3]);
                        let c = f * c_sh[r * hid + j] + i * gg;
                        c_sh[r * hid + j] = c;
                        h = o * c.tanh();
                        if b < batch {
                            gates[xo] = i;
                            gates[xo + hid] = f;
                            gates[xo + 2 * hid] = gg;
                            gates[xo + 3 * hid] = o;
                        }
                    } else if comptime!(cell == GRU) {
                        let rr = sigmoid(xproj[xo] + acc[r * g_n]);
                        let z = sigmoid(xproj[xo + hid] + acc[r * g_n + 1]);
                        let hn = acc[r * g_n + 2];
                        let n = (xproj[xo + 2 * hid] + rr * hn).tanh();
                        h = (1.0 - z) * n + z * hp;
                        if b < batch {
                            gates[xo] = rr;
                            gates[xo + hid] = z;
                            gates[xo + 2 * hid] = n;
                            extra[so] = hn;
                        }
                    } else if comptime!(cell == TANH) {
                        h = (xproj[xo] + acc[r * g_n]).tanh();
                    } else {
                        h = max(xproj[xo] + acc[r * g_n], 0.0);
                    }
                }
                h_sh[nxt + r * hid + j] = h;
                if b < batch {
                    out[(b * (time + 1) + t) * hid + j] = h;
                    hprev[so] = hp;
                    if comptime!(cell == LSTM) {
                        extra[so] = c_sh[r * hid + j];
                    }
                }
            }
            j += step;
        }
        sync_cube();
    }

    let mut j = UNIT_POS_X as usize;
    while j < hid {
        #[unroll]
        for r in 0..rows {
            let b = row0 + r;
            if b < batch {
                let mut c = 0.0;
                if comptime!(cell == LSTM) {
                    c = c_sh[r * hid + j];
                }
                out[(b * (time + 1) + time) * hid + j] = c;
            }
        }
        j += step;
    }
}

/// BPTT of one layer and direction, from `t = T - 1` down to 0.
///
/// - `w_hh [G·H, H]` (its natural layout: threads of neighbouring units read neighbouring
///   weights); `out`, `gates`, `extra`, `hprev` as the forward wrote them; `c0 [B, H]`,
///   `lens [B]`;
/// - `dout [B, T + 1, H]`: the gradient of `out` (every step's hidden state, the last cell
///   state);
/// - writes `dg_in [B, T, G·H]` (the gradient of `xproj`), `dg_rec [B, T, G·H]` (of the
///   recurrent product: differs from `dg_in` only in the GRU's n gate, where it is `r ⊙ ·`;
///   written for the GRU only), and `dh0`, `dc0 [B, H]`.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn seq_backward(
    w_hh: &Tensor<f32>,
    out: &Tensor<f32>,
    gates: &Tensor<f32>,
    extra: &Tensor<f32>,
    hprev: &Tensor<f32>,
    c0: &Tensor<f32>,
    lens: &Tensor<f32>,
    dout: &Tensor<f32>,
    dg_in: &mut Tensor<f32>,
    dg_rec: &mut Tensor<f32>,
    dh0: &mut Tensor<f32>,
    dc0: &mut Tensor<f32>,
    batch: u32,
    time: u32,
    #[comptime] hid: usize,
    #[comptime] cell: u32,
    #[comptime] rows: usize,
) {
    let g_n = comptime!(gate_count(cell));
    let gh = comptime!(hid * gate_count(cell));
    let batch = batch as usize;
    let time = time as usize;
    let row0 = CUBE_POS_X as usize * rows;
    let step = CUBE_DIM_X as usize;
    // The recurrent gate gradients of the step after this one (all units of the block's rows),
    // the hidden-state gradient of this step (first what passes straight through from the step
    // after, then the whole of it) and the LSTM's cell-state gradient.
    let mut dg_sh = Shared::<[f32]>::new_slice(comptime!(rows * hid * gate_count(cell)));
    let mut dh_sh = Shared::<[f32]>::new_slice(comptime!(rows * hid));
    let mut dc_sh = Shared::<[f32]>::new_slice(comptime!(rows * hid));

    let mut j = UNIT_POS_X as usize;
    while j < hid {
        #[unroll]
        for r in 0..rows {
            let b = min(row0 + r, batch - 1);
            dh_sh[r * hid + j] = 0.0;
            let mut dc = 0.0;
            if comptime!(cell == LSTM) {
                dc = dout[(b * (time + 1) + time) * hid + j];
            }
            dc_sh[r * hid + j] = dc;
            #[unroll]
            for g in 0..g_n {
                dg_sh[r * gh + g * hid + j] = 0.0;
            }
        }
        j += step;
    }
    sync_cube();

    for s in 0..time {
        let t = time - 1 - s;
        let tf = f32::cast_from(t);
        // This step's hidden-state gradient: its output's, what passes through, and the
        // recurrent product of the step after.
        let mut j = UNIT_POS_X as usize;
        while j < hid {
            let mut acc = Array::<f32>::new(rows);
            #[unroll]
            for r in 0..rows {
                let b = min(row0 + r, batch - 1);
                acc[r] = dh_sh[r * hid + j] + dout[(b * (time + 1) + t) * hid + j];
            }
            let mut m = 0;
            while m + UNROLL <= gh {
                #[unroll]
                for u in 0..UNROLL {
                    let w = w_hh[(m + u) * hid + j];
                    #[unroll]
                    for r in 0..rows {
                        acc[r] += dg_sh[r * gh + m + u] * w;
                    }
                }
                m += UNROLL;
            }
            while m < gh {
                let w = w_hh[m * hid + j];
                #[unroll]
                for r in 0..rows {
                    acc[r] += dg_sh[r * gh + m] * w;
                }
                m += 1;
            }
            #[unroll]
            for r in 0..rows {
                dh_sh[r * hid + j] = acc[r];
            }
            j += step;
        }
        sync_cube();
        // The gate gradients of this step, and what passes straight through to the step before.
        let mut j = UNIT_POS_X as usize;
        while j < hid {
            #[unroll]
            for r in 0..rows {
                let b = row0 + r;
                let bb = min(b, batch - 1);
                let dh = dh_sh[r * hid + j];
                let xo = (bb * time + t) * gh + j;
                let so = (bb * time + t) * hid + j;
                let mut carry = dh;
                let mut d0 = 0.0;
                let mut d1 = 0.0;
                let mut d2 = 0.0;
                let mut d3 = 0.0;
                let mut d2_rec = 0.0;
                if tf < lens[bb] {
                    carry = 0.0;
                    if comptime!(cell == LSTM) {
                        let i = gates[xo];
                        let f = gates[xo + hid];
                        let gg = gates[xo + 2 * hid];
                        let o = gates[xo + 3 * hid];
                        let c = extra[so];
                        let mut c_prev = c0[bb * hid + j];
                        if t > 0 {
                            c_prev = extra[so - hid];
                        }
                        let tc = c.tanh();
                        let dc = dc_sh[r * hid + j] + dh * o * (1.0 - tc * tc);
                        d0 = dc * gg * i * (1.0 - i);
                        d1 = dc * c_prev * f * (1.0 - f);
                        d2 = dc * i * (1.0 - gg * gg);
                        d3 = dh * tc * o * (1.0 - o);
                        d2_rec = d2;
                        dc_sh[r * hid + j] = dc * f;
                    } else if comptime!(cell == GRU) {
                        let rr = gates[xo];
                        let z = gates[xo + hid];
                        let n = gates[xo + 2 * hid];
                        let hn = extra[so];
                        let hp = hprev[so];
                        let dn = dh * (1.0 - z) * (1.0 - n * n);
                        d0 = dn * hn * rr * (1.0 - rr);
                        d1 = dh * (hp - n) * z * (1.0 - z);
                        d2 = dn;
                        d2_rec = dn * rr;
                        carry = dh * z;
                    } else if comptime!(cell == TANH) {
                        let h = out[(bb * (time + 1) + t) * hid + j];
                        d0 = dh * (1.0 - h * h);
                    } else {
                        let h = out[(bb * (time + 1) + t) * hid + j];
                        if h > 0.0 {
                            d0 = dh;
                        }
                    }
                }
                dh_sh[r * hid + j] = carry;
                dg_sh[r * gh + j] = d0;
                if comptime!(g_n > 1) {
                    dg_sh[r * gh + hid + j] = d1;
                    dg_sh[r * gh + 2 * hid + j] = d2_rec;
                }
                if comptime!(g_n > 3) {
                    dg_sh[r * gh + 3 * hid + j] = d3;
                }
                if b < batch {
                    dg_in[xo] = d0;
                    if comptime!(g_n > 1) {
                        dg_in[xo + hid] = d1;
                        dg_in[xo + 2 * hid] = d2;
                    }
                    if comptime!(g_n > 3) {
                        dg_in[xo + 3 * hid] = d3;
                    }
                    if comptime!(cell == GRU) {
                        dg_rec[xo] = d0;
                        dg_rec[xo + hid] = d1;
                        dg_rec[xo + 2 * hid] = d2_rec;
                    }
                }
            }
            j += step;
        }
        sync_cube();
    }

    // The initial state's gradient: what passes through plus the first step's recurrent product.
    let mut j = UNIT_POS_X as usize;
    while j < hid {
        let mut acc = Array::<f32>::new(rows);
        #[unroll]
        for r in 0..rows {
            acc[r] = dh_sh[r * hid + j];
        }
        let mut m = 0;
        while m + UNROLL <= gh {
            #[unroll]
            for u in 0..UNROLL {
                let w = w_hh[(m + u) * hid + j];
                #[unroll]
                for r in 0..rows {
                    acc[r] += dg_sh[r * gh + m + u] * w;
                }
            }
            m += UNROLL;
        }
        while m < gh {
            let w = w_hh[m * hid + j];
            #[unroll]
            for r in 0..rows {
                acc[r] += dg_sh[r * gh + m] * w;
            }
            m += 1;
        }
        #[unroll]
        for r in 0..rows {
            let b = row0 + r;
            if b < batch {
                dh0[b * hid + j] = acc[r];
                dc0[b * hid + j] = dc_sh[r * hid + j];
            }
        }
        j += step;
    }
}
