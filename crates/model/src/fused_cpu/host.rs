//! How the fused op reaches a backend's values: a CPU backend lends its `f32` tensors as plain
//! row-major slices, and takes plain vectors back as tensors. No copies either way.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata};
use burn::tensor::TensorData;

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

pub(super) fn dims2<B: Backend>(p: &FloatTensor<B>) -> [usize; 2] {
    p.shape().dims::<2>()
}
