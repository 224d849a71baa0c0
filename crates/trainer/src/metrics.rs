//! MAE and RMSE as Burn training metrics (Burn ships only the loss for regression).

use std::sync::Arc;

use burn::tensor::{Tensor, TensorReadError};
use burn::train::metric::state::{FormatOptions, NumericMetricState};
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
#[derive(Clone)]
pub struct MaeMetric {
    name: MetricName,
    state: NumericMetricState,
}

impl MaeMetric {
    /// The metric, named `MAE`.
    pub fn new() -> Self {
        Self {
            name: Arc::new("MAE".into()),
            state: NumericMetricState::default(),
        }
    }
}

impl Default for MaeMetric {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for MaeMetric {
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
        let mae = (item.output.clone() - item.targets.clone())
            .abs()
            .mean()
            .try_into_scalar::<f64>()?;
        self.state.update(mae, b * n);
        Ok(self
            .state
            .compute_update(FormatOptions::new(self.name()).precision(4)))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self
            .state
            .compute_final(FormatOptions::new(self.name()).precision(4)))
    }

    fn clear(&mut self) {
        self.state.reset()
    }

    fn attributes(&self) -> MetricAttributes {
        lower_is_better()
    }
}

impl Numeric for MaeMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(self.state.current_value())
    }
    fn running_value(&self) -> Option<NumericEntry> {
        Some(self.state.running_value())
    }
    fn final_value(&self) -> NumericEntry {
        self.state.final_value()
    }
}

/// Root mean squared error over every forecast value of the epoch: the square root of the pooled
/// MSE (not the mean of per-batch RMSEs).
#[derive(Clone)]
pub struct RmseMetric {
    name: MetricName,
    sum_sq: f64,
    count: usize,
    last: f64,
}

impl RmseMetric {
    /// The metric, named `RMSE`.
    pub fn new() -> Self {
        Self {
            name: Arc::new("RMSE".into()),
            sum_sq: 0.0,
            count: 0,
            last: f64::NAN,
        }
    }

    fn pooled(&self) -> f64 {
        (self.sum_sq / self.count.max(1) as f64).sqrt()
    }
}

impl Default for RmseMetric {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for RmseMetric {
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
        let mse = (item.output.clone() - item.targets.clone())
            .powi_scalar(2)
            .mean()
            .try_into_scalar::<f64>()?;
        self.sum_sq += mse * (b * n) as f64;
        self.count += b * n;
        self.last = mse.sqrt();
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

impl Numeric for RmseMetric {
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
