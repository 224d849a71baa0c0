//! The fused op as Burn autodiff nodes (this file and `fanout.rs` are the only ones that reach into
//! Burn's autodiff internals).
//!
//! One node per layer and direction takes the [`INPUTS`] and outputs every step's hidden state
//! `[B·T, H]`; its backward ([`SeqBackward`]) runs BPTT. What the caller sees — `hs [B, T, H]`,
//! `h_T`, `c_T` — are part nodes on it ([`PartBackward`]) whose gradients reach BPTT as they are,
//! not through Burn narrows.

use std::cell::RefCell;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, DispatchKindConversion, DispatchTensor};
use burn::tensor::{DType, Device, Shape, Tensor};

use super::backward::backward;
use super::cell::{ElmanRows, GruRows, LstmRows, RowCell};
use super::forward::forward;
use super::host::HostBackend;
use super::layout::{new_slot, take_grads, Saved, Slot, INPUTS};
use crate::fused_stack::{DirectionInput, DirectionOp, DirectionOutput};
use crate::stack::CellKind;

type Ad<B> = Autodiff<B, NoCheckpointing>;

/// The fused op on the CPU backends: flex and ndarray, plain or autodiff, `f32`.
pub(crate) struct CpuOp;

impl DirectionOp for CpuOp {
    fn applies(&self, input: &Tensor<3>) -> bool {
        on_host(input.dtype(), &input.device())
    }

    fn run(&self, input: DirectionInput) -> DirectionOutput {
        let device = input.x.device();
        #[cfg(feature = "flex")]
        if on::<burn::backend::Flex>(&device) {
            return direction::<burn::backend::Flex>(input);
        }
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        if on::<burn::backend::NdArray>(&device) {
            return direction::<burn::backend::NdArray>(input);
        }
        unreachable!("run only where the op applies")
    }
}

/// Whether a tensor of `dtype` on `device` is one the CPU ops read: `f32` on flex or ndarray,
/// plain or autodiff.
pub(super) fn on_host(dtype: DType, device: &Device) -> bool {
    if dtype != DType::F32 {
        return false;
    }
    #[cfg(feature = "flex")]
    if on::<burn::backend::Flex>(device) {
        return true;
    }
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    if on::<burn::backend::NdArray>(device) {
        return true;
    }
    false
}

/// Whether tensors on `device` are plain or autodiff tensors of `B`.
pub(super) fn on<B: Backend>(device: &Device) -> bool
where
    DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Ad<B>>,
{
    let probe = Tensor::<1>::zeros([1], device);
    probe.clone().try_into_primitive::<B>().is_ok() || probe.try_into_primitive::<Ad<B>>().is_ok()
}

/// One layer and direction on a host backend `B`.
fn direction<B: HostBackend>(input: DirectionInput) -> DirectionOutput
where
    DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Ad<B>>,
{
    let DirectionInput {
        kind,
        weights: w,
        x,
        bias,
        b_rec,
        h0,
        c0,
        lens,
    } = input;
    let [batch, time, features] = x.dims();
    let hid = w.weight_hh.dims()[1];
    let x2 = x.reshape([batch * time, features]);
    let (w_ih, w_hh) = (w.weight_ih.val(), w.weight_hh.val());
    let inputs = [&x2, &w_ih, &bias, &w_hh, &b_rec, &h0, &c0];
    let slot = new_slot::<B>();
    let (main, (h_last, c_last)) = match kind {
        CellKind::Lstm => node::<B, _>(LstmRows, inputs, lens, &slot),
        CellKind::Gru => node::<B, _>(GruRows, inputs, lens, &slot),
        CellKind::ElmanTanh => node::<B, _>(ElmanRows { relu: false }, inputs, lens, &slot),
        CellKind::ElmanRelu => node::<B, _>(ElmanRows { relu: true }, inputs, lens, &slot),
    };
    let hs = part::<B, 3>(&main, Part::Hs, &slot, |p| {
        B::float_reshape(p, Shape::new([batch, time, hid]))
    });
    let h_last = part::<B, 2>(&main, Part::HLast, &slot, |_| {
        B::from_vec(h_last, &[batch, hid])
    });
    let c_last =
        c_last.map(|c| part::<B, 2>(&main, Part::CLast, &slot, |_| B::from_vec(c, &[batch, hid])));
    DirectionOutput { hs, h_last, c_last }
}

/// The op's node for `cell` (autodiff `B`), or just its forward (plain `B`, inference: nothing
/// saved): `[B·T, H]`, and as values the last hidden and (LSTM) cell states.
fn node<B: HostBackend, C: RowCell>(
    cell: C,
    inputs: [&Tensor<2>; INPUTS],
    lens: &[usize],
    slot: &Slot<B>,
) -> (Tensor<2>, super::layout::Tails)
where
    DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Ad<B>>,
{
    let tails = RefCell::new(None);
    let main = fused_node::<B, C>(cell, inputs, |all, save| {
        let (out, saved, last) = forward::<B, C>(cell, all, lens, save, slot);
        *tails.borrow_mut() = Some(last);
        (out, saved)
    });
    (main, tails.into_inner().expect("the forward ran"))
}

/// The backward of the op's node: BPTT for the cell.
#[derive(Debug)]
struct SeqBackward<C>(C);

impl<B: HostBackend, C: RowCell> Backward<B, INPUTS> for SeqBackward<C> {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Saved<B>, INPUTS>, grads: &mut Gradients, _: &mut Checkpointer) {
        // The `[1, 1]` zeros of the part nodes; the gradients themselves are in the slot.
        drop(grads.consume::<B>(&ops.node));
        let out = take_grads(&ops.state.slot);
        let nodes = ops.parents.map(|n| n.map(|n| n.id));
        let needed = nodes.map(|n| n.is_some());
        let computed = backward::<B, C>(self.0, ops.state, out, needed);
        for (node, grad) in nodes.into_iter().zip(computed) {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<B>(node, grad);
            }
        }
    }
}

/// Which output of a fused op a part node hands out.
#[derive(Clone, Copy, Debug)]
enum Part {
    Hs,
    HLast,
    CLast,
}

/// The backward of one output of a fused op: its gradient goes into the op's [`Slot`] as it is,
/// and the op's node gets a `[1, 1]` zero so that its backward runs. Every consumer of the op's
/// node is a part, so those zeros are all Burn ever adds up there. Taking the outputs apart with
/// Burn's `narrow` instead would make each backward allocate a zero-filled gradient of the whole
/// output and copy the part's gradient into it.
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
    DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Ad<B>>,
{
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

/// Runs `forward` as one autodiff node differentiated by BPTT of `cell` (autodiff `B`), or just
/// runs it (plain `B`, inference: `save` is then false), on the [`INPUTS`] matrices.
fn fused_node<B: HostBackend, C: RowCell>(
    cell: C,
    inputs: [&Tensor<2>; INPUTS],
    forward: impl Fn([FloatTensor<B>; INPUTS], bool) -> (FloatTensor<B>, Saved<B>),
) -> Tensor<2>
where
    DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Ad<B>>,
{
    let ad = inputs.map(|t| t.clone().try_into_primitive::<Ad<B>>().ok());
    if ad.iter().any(Option::is_none) {
        let plain = inputs.map(|t| t.clone().try_into_primitive::<B>().ok());
        let plain = plain.map(|p| p.expect("every input of the op on B or Autodiff<B>"));
        let (out, _) = forward(plain, false);
        return Tensor::from_primitive::<B>(out);
    }
    let all = ad.map(|p| p.expect("checked above"));
    let out = match SeqBackward(cell)
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
    Tensor::from_primitive::<Ad<B>>(out)
}
