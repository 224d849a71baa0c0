//! MAE and RMSE as Burn training metrics (Burn ships only the loss for regression).

use std::sync::Arc;

use burn::tensor::{Tensor, TensorReadError};
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};
use burn::train::RegressionOutput;

/// Forecasts and targets of one batch, `[batch, horizon * targets]` each (scaled units).
pub struct ErrorInput {
    output: Tensor<2>,
    targets: Tensor<2>,
}

impl Adaptor<ErrorInput> for RegressionOutput {
    fn adapt(&self) -> ErrorInput {
        ErrorInput {
            output: self.output.clone(),
            targets: self.targets.clone(),
        }
    }
}

fn lower_is_better() -> MetricAttributes {
    NumericAttributes {
        unit: None,
        higher_is_better: false,
    }
    .into()
}

/// Mean absolute error over every forecast value of the epoch.
pub type MaeMetric = PooledError<false>;

/// Root mean squared error over every forecast value of the epoch: the square root of the pooled
/// MSE (not the mean of per-batch RMSEs).
pub type RmseMetric = PooledError<true>;

/// An error pooled over every forecast value of the epoch: the mean absolute error, or
/// (`SQUARED`) the root of the mean squared error. Each batch counts by its number of values.
#[derive(Clone)]
pub struct PooledError<const SQUARED: bool> {
    name: MetricName,
    /// Σ |e| (or Σ e²) and the number of values so far.
    sum: f64,
    count: usize,
    /// The last batch's own error.
    last: f64,
}

impl<const SQUARED: bool> PooledError<SQUARED> {
    /// The metric, named `MAE` (or `RMSE`).
    pub fn new() -> Self {
        Self {
            name: Arc::new(if SQUARED { "RMSE" } else { "MAE" }.into()),
            sum: 0.0,
            count: 0,
            last: f64::NAN,
        }
    }

    /// The error of a mean `m` of |e| (or e²).
    fn finish(m: f64) -> f64 {
        if SQUARED {
            m.sqrt()
        } else {
            m
        }
    }

    fn pooled(&self) -> f64 {
        Self::finish(self.sum / self.count.max(1) as f64)
    }
}

impl<const SQUARED: bool> Default for PooledError<SQUARED> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const SQUARED: bool> Metric for PooledError<SQUARED> {
    type Input = ErrorInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn update(
        &mut self,
        item: &ErrorInput,
        _: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let [b, n] = item.output.dims();
        let e = item.output.clone() - item.targets.clone();
        let e = if SQUARED { e.powi_scalar(2) } else { e.abs() };
        let mean = e.mean().try_into_scalar::<f64>()?;
        self.sum += mean * (b * n) as f64;
        self.count += b * n;
        self.last = Self::finish(mean);
        let pooled = self.pooled();
        Ok(SerializedEntry::new(
            format!("epoch {pooled:.4} - batch {:.4}", self.last),
            format!("{},{}", self.last, b * n),
        ))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        let v = self.pooled();
        Ok(SerializedEntry::new(
            format!("{v:.4}"),
            format!("{v},final"),
        ))
    }

    fn clear(&mut self) {
        *self = Self::new();
    }

    fn attributes(&self) -> MetricAttributes {
        lower_is_better()
    }
}

impl<const SQUARED: bool> Numeric for PooledError<SQUARED> {
    fn value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(self.last))
    }
    fn running_value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Aggregated {
            aggregated_value: self.pooled(),
            count: self.count,
        })
    }
    fn final_value(&self) -> NumericEntry {
        NumericEntry::Final(self.pooled())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn batch(output: Vec<f32>, targets: Vec<f32>) -> ErrorInput {
        let device = Device::default();
        let shape = [1, output.len()];
        ErrorInput {
            output: Tensor::from_data(TensorData::new(output, shape), &device),
            targets: Tensor::from_data(TensorData::new(targets, shape), &device),
        }
    }

    /// Batches count by their number of values: MAE and RMSE over the epoch are those of all
    /// its values at once, not means of per-batch errors.
    #[test]
    fn errors_pool_over_every_value() {
        let meta = MetricMetadata {
            progress: burn::data::dataloader::Progress {
                items_processed: 1,
                items_total: 1,
                unit: None,
            },
            iteration: Some(0),
            lr: None,
        };
        let a = batch(vec![1.0, 2.0], vec![0.0, 0.0]);
        let b = batch(vec![0.0, 0.0, 0.0, 4.0], vec![0.0, 0.0, 0.0, 0.0]);
        let mut mae = MaeMetric::new();
        let mut rmse = RmseMetric::new();
        for x in [&a, &b] {
            mae.update(x, &meta).unwrap();
            rmse.update(x, &meta).unwrap();
        }
        let final_of = |e: NumericEntry| match e {
            NumericEntry::Final(v) => v,
            other => panic!("{other:?}"),
        };
        assert!((final_of(mae.final_value()) - 7.0 / 6.0).abs() < 1e-9);
        assert!((final_of(rmse.final_value()) - (21.0f64 / 6.0).sqrt()).abs() < 1e-9);
        let last = |e: Option<NumericEntry>| match e {
            Some(NumericEntry::Value(v)) => v,
            other => panic!("{other:?}"),
        };
        assert!(
            (last(mae.value()) - 1.0).abs() < 1e-9,
            "the last batch's own MAE"
        );
        assert!(
            (last(rmse.value()) - 2.0).abs() < 1e-9,
            "the last batch's own RMSE"
        );
    }
}
