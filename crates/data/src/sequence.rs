//! Variable-length sequences: a dataset of [`SequenceSample`]s and a batcher that pads them and
//! reports `lengths` for the recurrent layers' `try_forward(.., Some(&lengths))`.

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::tensor::{Device, Tensor, TensorData};

use crate::synthetic::SequenceSample;

/// A dataset of sequences of possibly different lengths.
pub type SequenceDataset = InMemDataset<SequenceSample>;

/// A padded batch.
#[derive(Debug, Clone)]
pub struct SequenceBatch {
    /// `[batch, max_time, features]`, zero after each sequence's end.
    pub inputs: Tensor<3>,
    /// `[batch]`: each sequence's true length.
    pub lengths: Vec<usize>,
    /// `[batch, target_len]`.
    pub targets: Tensor<2>,
}

/// Pads sequences to the longest in the batch.
#[derive(Debug, Clone, Default)]
pub struct PaddingBatcher;

impl Batcher<SequenceSample, SequenceBatch> for PaddingBatcher {
    fn batch(&self, items: Vec<SequenceSample>, device: &Device) -> SequenceBatch {
        let b = items.len();
        let time = items.iter().map(|s| s.time).max().unwrap_or(0);
        let features = items.first().map(|s| s.features).unwrap_or(0);
        let target_len = items.first().map(|s| s.target.len()).unwrap_or(0);
        let mut inputs = vec![0.0f32; b * time * features];
        let mut targets = Vec::with_capacity(b * target_len);
        for (i, s) in items.iter().enumerate() {
            assert_eq!(s.features, features, "every sequence has the same features");
            assert_eq!(
                s.target.len(),
                target_len,
                "every target has the same length"
            );
            let offset = i * time * features;
            inputs[offset..offset + s.inputs.len()].copy_from_slice(&s.inputs);
            targets.extend_from_slice(&s.target);
        }
        SequenceBatch {
            inputs: Tensor::from_data(TensorData::new(inputs, [b, time, features]), device),
            lengths: items.iter().map(|s| s.time).collect(),
            targets: Tensor::from_data(TensorData::new(targets, [b, target_len]), device),
        }
    }
}

/// A [`SequenceDataset`] over `samples`.
pub fn sequence_dataset(samples: Vec<SequenceSample>) -> SequenceDataset {
    InMemDataset::new(samples)
}
