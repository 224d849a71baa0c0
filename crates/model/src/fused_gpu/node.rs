//! The fused GPU op as a Burn autodiff node on the cubecl backend — the only file of the GPU op
//! reaching into Burn's autodiff internals.
//!
//! One node per layer and direction takes `x [B·T, F]`, `weight_ih [G·H, F]`, the folded
//! `bias [1, G·H]`, `weight_hh [G·H, H]`, `b_rec [1, G·H]`, `h0` and `c0 [B, H]`, and outputs
//! `[B, T + 1, H]`: every step's hidden state, then the LSTM's last cell state. Its forward is
//! the input projection of every step as one matmul, then the forward kernel; its backward the
//! BPTT kernel, then the input's and the weights' gradients as large matmuls. The weights'
//! gradients sum over all `B·T` rows: one matmul with that inner dimension would leave most of
//! a GPU idle (its output has only `G·H × F` tiles), so it is split into a batch of
//! matmuls over slices of the rows, summed after ([`weight_grad`]).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::ops::FloatTensorOps;
use burn::backend::wgpu::CubeTensor;
use burn::backend::{Backend, Cube};
use burn::tensor::{FloatDType, Shape, Tensor, TensorData};
use burn_cubecl::kernel::into_contiguous;
use cubecl::prelude::{CubeCount, CubeDim};

use super::kernels::{gate_count, seq_backward, seq_forward};

type Ad = Autodiff<Cube, NoCheckpointing>;

/// The node's inputs: `x`, `weight_ih`, `bias`, `weight_hh`, `b_rec`, `h0`, `c0`.
const INPUTS: usize = 7;

/// Sizes and launch shape of one layer and direction.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    pub(super) cell: u32,
    pub(super) batch: usize,
    pub(super) time: usize,
    pub(super) hid: usize,
    /// Batch rows per cube.
    pub(super) rows: usize,
    /// Threads per cube.
    pub(super) threads: u32,
}

impl Plan {
    fn gh(&self) -> usize {
        gate_count(self.cell) * self.hid
    }

    fn cube_count(&self) -> CubeCount {
        CubeCount::Static(self.batch.div_ceil(self.rows) as u32, 1, 1)
    }

    fn cube_dim(&self) -> CubeDim {
        CubeDim::new_1d(self.threads)
    }
}

/// What BPTT needs from the forward.
#[derive(Clone, Debug)]
struct Saved {
    plan: Plan,
    x: CubeTensor,
    w_ih: CubeTensor,
    w_hh: CubeTensor,
    out: CubeTensor,
    gates: CubeTensor,
    extra: CubeTensor,
    hprev: CubeTensor,
    c0: CubeTensor,
    lens: CubeTensor,
}

fn empty(like: &CubeTensor, dims: &[usize]) -> CubeTensor {
    Cube::float_empty(Shape::from(dims.to_vec()), &like.device, FloatDType::F32)
}

fn zeros(like: &CubeTensor, dims: &[usize]) -> CubeTensor {
    Cube::float_zeros(Shape::from(dims.to_vec()), &like.device, FloatDType::F32)
}

#[cfg(test)]
thread_local! {
    static LAUNCHES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Forward launches of the op on this thread (tests: which implementation ran).
#[cfg(test)]
pub(super) fn launches() -> usize {
    LAUNCHES.with(|l| l.get())
}

/// `GATECAST_GPU_PHASES=1`: every phase of the op waits for the device and prints its time to
/// stderr, to see where a training step goes (the waits slow it down; off by default).
struct Phases {
    on: Option<(std::time::Instant, burn::backend::CubeDevice)>,
    line: String,
}

impl Phases {
    fn start(what: &str, like: &CubeTensor) -> Self {
        let on = std::env::var("GATECAST_GPU_PHASES").as_deref() == Ok("1");
        let on = on.then(|| {
            Self::wait(&like.device);
            (std::time::Instant::now(), like.device.clone())
        });
        Self {
            on,
            line: format!("gpu op {what}:"),
        }
    }

    fn wait(device: &burn::backend::CubeDevice) {
        Cube::sync(device).expect("the device runs");
    }

    /// The time since the last mark, as `name`.
    fn mark(&mut self, name: &str) {
        if let Some((last, device)) = &mut self.on {
            Self::wait(device);
            let ms = last.elapsed().as_secs_f64() * 1e3;
            self.line += &format!(" {name} {ms:.2} ms");
            *last = std::time::Instant::now();
        }
    }
}

impl Drop for Phases {
    fn drop(&mut self) {
        if self.on.is_some() {
            eprintln!("{}", self.line);
        }
    }
}

/// Runs the forward kernel on plain cube tensors: the output `[B, T + 1, H]` and what BPTT needs.
fn forward(plan: Plan, inputs: [CubeTensor; INPUTS], lens: &[usize]) -> (CubeTensor, Saved) {
    let [x, w_ih, bias, w_hh, b_rec, h0, c0] = inputs.map(into_contiguous);
    let Plan {
        batch, time, hid, ..
    } = plan;
    let gh = plan.gh();
    let mut phases = Phases::start(&format!("forward B{batch} T{time} H{hid}"), &x);
    let xproj = Cube::float_add(
        Cube::float_matmul(x.clone(), Cube::float_transpose(w_ih.clone())),
        bias,
    );
    let xproj = into_contiguous(xproj);
    phases.mark("projection");
    let w_hh_t = into_contiguous(Cube::float_transpose(w_hh.clone()));
    let lens_f: Vec<f32> = lens.iter().map(|&l| l as f32).collect();
    let lens = Cube::float_from_data(TensorData::new(lens_f, [batch]), &xproj.device);
    let out = empty(&xproj, &[batch, time + 1, hid]);
    let gates = empty(&xproj, &[batch, time, gh]);
    let extra = empty(&xproj, &[batch, time, hid]);
    let hprev = empty(&xproj, &[batch, time, hid]);
    let client = xproj.client.clone();
    #[cfg(test)]
    LAUNCHES.with(|l| l.set(l.get() + 1));
    // SAFETY: every buffer has the size the kernel indexes it with (`plan`'s sizes), and the
    // kernel clamps reads and skips writes past the batch.
    unsafe {
        seq_forward::launch_unchecked(
            &client,
            plan.cube_count(),
            plan.cube_dim(),
            xproj.into_tensor_arg(),
            w_hh_t.into_tensor_arg(),
            b_rec.into_tensor_arg(),
            h0.into_tensor_arg(),
            c0.clone().into_tensor_arg(),
            lens.clone().into_tensor_arg(),
            out.clone().into_tensor_arg(),
            gates.clone().into_tensor_arg(),
            extra.clone().into_tensor_arg(),
            hprev.clone().into_tensor_arg(),
            batch as u32,
            time as u32,
            hid,
            plan.cell,
            plan.rows,
        );
    }
    phases.mark("kernel");
    let saved = Saved {
        plan,
        x,
        w_ih,
        w_hh,
        out: out.clone(),
        gates,
        extra,
        hprev,
        c0,
        lens,
    };
    (out, saved)
}

/// BPTT: the gradients of the [`INPUTS`] from `dout [B, T + 1, H]`.
fn backward(s: Saved, dout: CubeTensor) -> [CubeTensor; INPUTS] {
    let Plan {
        batch,
        time,
        hid,
        cell,
        ..
    } = s.plan;
    let gh = s.plan.gh();
    let mut phases = Phases::start(&format!("backward B{batch} T{time} H{hid}"), &dout);
    let dout = into_contiguous(dout);
    let dg_in = empty(&dout, &[batch, time, gh]);
    let gru = cell == super::kernels::GRU;
    let dg_rec = if gru {
        empty(&dout, &[batch, time, gh])
    } else {
        zeros(&dout, &[1])
    };
    let dh0 = empty(&dout, &[batch, hid]);
    let dc0 = empty(&dout, &[batch, hid]);
    let client = dout.client.clone();
    // SAFETY: as for the forward kernel.
    unsafe {
        seq_backward::launch_unchecked(
            &client,
            s.plan.cube_count(),
            s.plan.cube_dim(),
            s.w_hh.into_tensor_arg(),
            s.out.into_tensor_arg(),
            s.gates.into_tensor_arg(),
            s.extra.into_tensor_arg(),
            s.hprev.clone().into_tensor_arg(),
            s.c0.into_tensor_arg(),
            s.lens.into_tensor_arg(),
            dout.into_tensor_arg(),
            dg_in.clone().into_tensor_arg(),
            dg_rec.clone().into_tensor_arg(),
            dh0.clone().into_tensor_arg(),
            dc0.clone().into_tensor_arg(),
            batch as u32,
            time as u32,
            hid,
            cell,
            s.plan.rows,
        );
    }
    let rows = Shape::new([batch * time, gh]);
    let dg_in = Cube::float_reshape(dg_in, rows.clone());
    let dg_rec = if gru {
        Cube::float_reshape(dg_rec, rows)
    } else {
        dg_in.clone()
    };
    let hprev = Cube::float_reshape(s.hprev, Shape::new([batch * time, hid]));
    phases.mark("kernel");
    let d_x = Cube::float_matmul(dg_in.clone(), s.w_ih);
    phases.mark("input grad");
    let d_w_ih = weight_grad(dg_in.clone(), s.x);
    let d_w_hh = weight_grad(dg_rec.clone(), hprev);
    phases.mark("weight grads");
    let d_bias = column_sums(dg_in);
    let d_b_rec = column_sums(dg_rec);
    phases.mark("bias sums");
    [d_x, d_w_ih, d_bias, d_w_hh, d_b_rec, dh0, dc0]
}

/// The column sums `[1, G]` of `m [N, G]`, in two stages: over slices of `N / S` rows, then over
/// the `S` slices (`S` the largest divisor of `N` up to 1024). One sum down all `N` rows runs one
/// thread per column through every row.
fn column_sums(m: CubeTensor) -> CubeTensor {
    let [n, g] = m.meta.shape().dims::<2>();
    let slices = (1..=1024.min(n)).rev().find(|s| n % s == 0).unwrap_or(1);
    let m = Cube::float_reshape(m, Shape::new([slices, n / slices, g]));
    let partial = Cube::float_sum_dim(m, 1);
    Cube::float_reshape(Cube::float_sum_dim(partial, 0), Shape::new([1, g]))
}

/// `dgᵀ x` for `dg [N, G]` and `x [N, K]`: `[G, K]`, as `S` matmuls over slices of `N / S`
/// rows summed after, `S` the largest divisor of `N` up to 32 that leaves slices of at least
/// 256 rows.
fn weight_grad(dg: CubeTensor, x: CubeTensor) -> CubeTensor {
    let [n, g] = dg.meta.shape().dims::<2>();
    let k = x.meta.shape().dims::<2>()[1];
    let slices = (1..=32)
        .rev()
        .find(|s| n % s == 0 && n / s >= 256)
        .unwrap_or(1);
    if slices == 1 {
        return Cube::float_matmul(Cube::float_transpose(dg), x);
    }
    let rows = n / slices;
    let dg = Cube::float_reshape(dg, Shape::new([slices, rows, g]));
    let x = Cube::float_reshape(x, Shape::new([slices, rows, k]));
    let parts = Cube::float_matmul(Cube::float_swap_dims(dg, 1, 2), x);
    Cube::float_reshape(Cube::float_sum_dim(parts, 0), Shape::new([g, k]))
}

/// The backward of the op's node.
#[derive(Debug)]
struct SeqBackward;

impl Backward<Cube, INPUTS> for SeqBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, INPUTS>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dout = grads.consume::<Cube>(&ops.node);
        let computed = backward(ops.state, dout);
        for (parent, grad) in ops.parents.into_iter().zip(computed) {
            if let Some(parent) = parent {
                grads.register::<Cube>(parent.id, grad);
            }
        }
    }
}

/// The op's node over `inputs` (see [`INPUTS`]), autodiff or plain (inference): `[B, T + 1, H]`.
pub(super) fn run(plan: Plan, inputs: [&Tensor<2>; INPUTS], lens: &[usize]) -> Tensor<3> {
    let ad = inputs.map(|t| t.clone().try_into_primitive::<Ad>().ok());
    if ad.iter().any(Option::is_none) {
        let plain = inputs.map(|t| t.clone().try_into_primitive::<Cube>().ok());
        let plain = plain.map(|p| p.expect("every input of the op on the cubecl backend"));
        let (out, _) = forward(plan, plain, lens);
        return Tensor::from_primitive::<Cube>(out);
    }
    let all = ad.map(|p| p.expect("checked above"));
    let out = match SeqBackward
        .prepare::<NoCheckpointing>(all.each_ref().map(|t| t.node()))
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (out, saved) = forward(plan, all.each_ref().map(|t| t.primitive().clone()), lens);
            prep.finish(saved, out)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward(plan, all.map(|t| t.into_primitive()), lens).0)
        }
    };
    Tensor::from_primitive::<Ad>(out)
}
