//! The run's [`Schedule`] as a Burn `LrScheduler` (stepped per optimizer step), scaled by the
//! reduce-on-plateau multiplier the renderer updates once per epoch.

use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::optim::LearningRate;

use crate::monitor::SharedMonitor;
use crate::schedule::Schedule;

/// A [`Schedule`] over `total` steps of `per_epoch` steps each.
#[derive(Clone)]
pub struct PlannedLr {
    schedule: Schedule,
    base: f64,
    step: usize,
    total: usize,
    per_epoch: usize,
    monitor: SharedMonitor,
}

impl PlannedLr {
    /// The scheduler for a run.
    pub fn new(
        schedule: Schedule,
        base: f64,
        total: usize,
        per_epoch: usize,
        monitor: SharedMonitor,
    ) -> Self {
        Self {
            schedule,
            base,
            step: 0,
            total,
            per_epoch,
            monitor,
        }
    }
}

impl LrScheduler for PlannedLr {
    fn step(&mut self) -> LearningRate {
        let mut m = self.monitor.lock().expect("monitor lock");
        let lr = self
            .schedule
            .lr(self.base, self.step, self.total, self.per_epoch)
            * m.lr_scale;
        m.last_lr = lr;
        self.step += 1;
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        let scale = self.monitor.lock().expect("monitor lock").lr_scale;
        LrSchedulerRecord::new()
            .with_scalar("step", self.step as u64)
            .with_scalar("lr_scale", scale)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(step) = record.scalar::<u64>("step") {
            self.step = step as usize;
        }
        if let Some(scale) = record.scalar::<f64>("lr_scale") {
            self.monitor.lock().expect("monitor lock").lr_scale = scale;
        }
    }
}
