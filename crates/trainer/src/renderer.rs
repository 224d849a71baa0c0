//! One clean line per epoch: epoch, train loss, valid loss, valid MAE, learning rate, gradient
//! norm, seconds, ETA. Also keeps the rows for `metrics.csv` and drives reduce-on-plateau.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use burn::train::LearnerSummary;

use crate::artifacts::write_csv;
use crate::config::Monitor;
use crate::monitor::SharedMonitor;
use crate::schedule::ReduceOnPlateau;

/// One epoch's figures (scaled units).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpochRow {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss (`train.loss`: MSE by default).
    pub train_loss: f64,
    /// Validation loss (the same loss).
    pub valid_loss: f64,
    /// Training MAE.
    pub train_mae: f64,
    /// Validation MAE.
    pub valid_mae: f64,
    /// Validation RMSE.
    pub valid_rmse: f64,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Mean pre-clip global gradient norm over the epoch.
    pub grad_norm: f64,
    /// Largest pre-clip global gradient norm of the epoch.
    pub grad_norm_max: f64,
    /// Wall seconds of the epoch.
    pub seconds: f64,
}

impl EpochRow {
    /// The validation figure `monitor` reads (the MSE as the RMSE squared).
    pub fn monitored(&self, monitor: Monitor) -> f64 {
        match monitor {
            Monitor::Loss => self.valid_loss,
            Monitor::Mse => self.valid_rmse.powi(2),
            Monitor::Mae => self.valid_mae,
        }
    }
}

/// Rows collected by the renderer, shared with the caller.
pub type SharedRows = Arc<Mutex<Vec<EpochRow>>>;

/// Epoch lines waiting for their checkpoint. Burn renders an epoch before it checkpoints it (and
/// writes the three records on three threads), so a line printed at once could announce an epoch
/// that a kill a moment later loses; held here and released once every record of the epoch is
/// on disk, a printed line means the epoch survives. Lines never checkpointed (a diverged epoch)
/// are released when training ends.
#[derive(Clone, Default)]
pub struct PendingLines(Arc<Mutex<Pending>>);

#[derive(Default)]
struct Pending {
    lines: Vec<(usize, String)>,
    /// Records saved so far per epoch.
    saved: HashMap<usize, usize>,
}

impl PendingLines {
    fn push(&self, epoch: usize, line: String) {
        self.0
            .lock()
            .expect("pending lines")
            .lines
            .push((epoch, line));
    }

    /// One of the `of` records of `epoch` is on disk; once all are, the lines of epochs up to
    /// `epoch` are printed, in order.
    pub fn saved(&self, epoch: usize, of: usize) {
        for line in self.take_saved(epoch, of) {
            crate::sayln!("{line}");
        }
    }

    fn take_saved(&self, epoch: usize, of: usize) -> Vec<String> {
        let mut p = self.0.lock().expect("pending lines");
        let n = p.saved.entry(epoch).or_insert(0);
        *n += 1;
        if *n < of {
            return Vec::new();
        }
        p.saved.retain(|&e, _| e > epoch);
        let due = p.lines.partition_point(|(e, _)| *e <= epoch);
        p.lines.drain(..due).map(|(_, l)| l).collect()
    }

    /// Prints every line still held.
    pub fn release_all(&self) {
        let lines = std::mem::take(&mut self.0.lock().expect("pending lines").lines);
        for (_, line) in lines {
            crate::sayln!("{line}");
        }
    }
}

/// The per-epoch renderer.
pub struct EpochRenderer {
    names: HashMap<MetricId, String>,
    current: EpochRow,
    total_epochs: usize,
    epoch: usize,
    started: Instant,
    epoch_started: Instant,
    rows: SharedRows,
    monitor: SharedMonitor,
    plateau: Option<ReduceOnPlateau>,
    /// What the plateau reads (`train.monitor`).
    watched: Monitor,
    base_lr: f64,
    quiet: bool,
    /// Burn's own renderer (the TUI when stdout is a terminal), fed every event too.
    inner: Option<Box<dyn MetricsRenderer>>,
    /// `metrics.csv`, rewritten after every epoch with the earlier rows first.
    journal: Option<(PathBuf, Vec<EpochRow>)>,
    /// Epoch lines held until their checkpoint is written.
    pending: PendingLines,
    held: bool,
}

impl EpochRenderer {
    /// A renderer writing into `rows`; `plateau` reduces the rate when the validation loss (or
    /// [`EpochRenderer::watching`]'s figure) stalls.
    pub fn new(
        rows: SharedRows,
        monitor: SharedMonitor,
        plateau: Option<ReduceOnPlateau>,
        base_lr: f64,
        quiet: bool,
    ) -> Self {
        Self {
            names: HashMap::new(),
            current: EpochRow::default(),
            total_epochs: 0,
            epoch: 1,
            started: Instant::now(),
            epoch_started: Instant::now(),
            rows,
            monitor,
            plateau,
            watched: Monitor::Loss,
            base_lr,
            quiet,
            inner: None,
            journal: None,
            pending: PendingLines::default(),
            held: false,
        }
    }

    /// Reduce-on-plateau reads `monitor`'s figure (`train.monitor`), as early stopping does.
    pub fn watching(mut self, monitor: Monitor) -> Self {
        self.watched = monitor;
        self
    }

    /// Hold each epoch's line in `pending` until a checkpointer releases it (see
    /// [`PendingLines`]); without this the line is printed as soon as the epoch is rendered.
    pub fn with_pending(mut self, pending: PendingLines) -> Self {
        self.pending = pending;
        self.held = true;
        self
    }

    /// Rewrite `path` (atomically) after every epoch: `previous` rows, then this run's, so an
    /// interrupted run keeps its history for `--resume`.
    pub fn with_journal(mut self, path: PathBuf, previous: Vec<EpochRow>) -> Self {
        self.journal = Some((path, previous));
        self
    }

    /// Also drive `inner` (e.g. Burn's TUI from `burn::train::renderer::default_renderer`); the
    /// per-epoch lines are then not printed, as the TUI owns the terminal.
    pub fn with_inner(mut self, inner: Box<dyn MetricsRenderer>) -> Self {
        self.inner = Some(inner);
        self.quiet = true;
        self
    }

    fn record(&mut self, state: MetricState, valid: bool) {
        if let MetricState::Numeric(entry, Some(NumericEntry::Final(v))) = state {
            let name = self
                .names
                .get(&entry.metric_id)
                .cloned()
                .unwrap_or_default();
            let r = &mut self.current;
            match (name.as_str(), valid) {
                ("Loss", false) => r.train_loss = v,
                ("Loss", true) => r.valid_loss = v,
                ("MAE", false) => r.train_mae = v,
                ("MAE", true) => r.valid_mae = v,
                ("RMSE", true) => r.valid_rmse = v,
                _ => {}
            }
        }
    }
}

/// `MetricState` is not `Clone`; both renderers need it.
fn copy(state: &MetricState) -> MetricState {
    match state {
        MetricState::Generic(e) => MetricState::Generic(e.clone()),
        MetricState::Numeric(e, v) => MetricState::Numeric(e.clone(), v.clone()),
    }
}

impl MetricsRendererTraining for EpochRenderer {
    fn update_train(&mut self, state: MetricState) {
        if let Some(i) = self.inner.as_mut() {
            i.update_train(copy(&state));
        }
        self.record(state, false);
    }

    fn update_valid(&mut self, state: MetricState) {
        if let Some(i) = self.inner.as_mut() {
            i.update_valid(copy(&state));
        }
        self.record(state, true);
    }

    fn on_train_end(
        &mut self,
        summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        self.pending.release_all();
        match self.inner.as_mut() {
            Some(i) => i.on_train_end(summary),
            None => Ok(()),
        }
    }
}

impl MetricsRendererEvaluation for EpochRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
    fn on_test_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl TrainingProgressLogger for EpochRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        items: Option<usize>,
        label: Option<&str>,
    ) {
        if let Some(i) = self.inner.as_mut() {
            i.start(total_epochs, starting_epoch, items, label);
        }
        self.total_epochs = total_epochs;
        self.epoch = starting_epoch;
        self.started = Instant::now();
        self.epoch_started = Instant::now();
        if !self.quiet {
            crate::sayln!(
                "{:>5} {:>11} {:>11} {:>10} {:>9} {:>10} {:>7} {:>7}",
                "epoch",
                "train_loss",
                "valid_loss",
                "valid_mae",
                "lr",
                "grad_norm",
                "sec",
                "eta"
            );
        }
    }

    fn update_epoch(&mut self, epoch: usize) {
        if let Some(i) = self.inner.as_mut() {
            i.update_epoch(epoch);
        }
        let mut row = std::mem::take(&mut self.current);
        row.epoch = epoch;
        row.seconds = self.epoch_started.elapsed().as_secs_f64();
        {
            let mut m = self.monitor.lock().expect("monitor lock");
            let n = m.grad_norms.len().max(1) as f64;
            row.grad_norm = m.grad_norms.iter().sum::<f64>() / n;
            row.grad_norm_max = m.grad_norms.iter().cloned().fold(0.0, f64::max);
            m.grad_norms.clear();
            row.lr = m.last_lr;
            if let Some(p) = self.plateau.as_mut() {
                m.lr_scale = p.observe(row.monitored(self.watched), self.base_lr);
            }
        }
        let done = epoch.saturating_sub(self.epoch.saturating_sub(1)).max(1);
        let per_epoch = self.started.elapsed().as_secs_f64() / done as f64;
        let eta = per_epoch * self.total_epochs.saturating_sub(epoch) as f64;
        if !self.quiet {
            let line = format!(
                "{:>5} {:>11.5} {:>11.5} {:>10.5} {:>9.2e} {:>10.4} {:>7.1} {:>7.0}",
                epoch,
                row.train_loss,
                row.valid_loss,
                row.valid_mae,
                row.lr,
                row.grad_norm,
                row.seconds,
                eta
            );
            self.pending.push(epoch, line);
            if !self.held {
                self.pending.release_all();
            }
        }
        let mut rows = self.rows.lock().expect("rows lock");
        rows.push(row);
        if let Some((path, previous)) = &self.journal {
            let all: Vec<EpochRow> = previous.iter().chain(rows.iter()).cloned().collect();
            if let Err(e) = write_epochs(path, &all) {
                crate::tell!("warning: {e:#}");
            }
        }
        drop(rows);
        self.epoch_started = Instant::now();
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        if let Some(i) = self.inner.as_mut() {
            i.start_split(split, total_items);
        }
    }
    fn update_split(&mut self, items_processed: usize) {
        if let Some(i) = self.inner.as_mut() {
            i.update_split(items_processed);
        }
    }
    fn end_split(&mut self) {
        if let Some(i) = self.inner.as_mut() {
            i.end_split();
        }
    }
    fn end(&mut self) {
        if let Some(i) = self.inner.as_mut() {
            i.end();
        }
    }
    fn log_event_training(&mut self, event: String) {
        if let Some(i) = self.inner.as_mut() {
            i.log_event_training(event);
        }
    }
}

impl EvaluationProgressLogger for EpochRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}
    fn start_test(&mut self, _name: &str, _total_items: usize) {}
    fn update_test_progress(&mut self, _items_processed: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for EpochRenderer {
    fn manual_close(&mut self) {
        if let Some(i) = self.inner.as_mut() {
            i.manual_close();
        }
    }

    fn register_metric(&mut self, definition: MetricDefinition) {
        if let Some(i) = self.inner.as_mut() {
            i.register_metric(definition.clone());
        }
        self.names
            .insert(definition.metric_id.clone(), definition.name.to_string());
    }
}

/// Writes `rows` as `metrics.csv` (atomically).
pub fn write_epochs(path: &Path, rows: &[EpochRow]) -> anyhow::Result<()> {
    let header = [
        "epoch",
        "train_loss",
        "valid_loss",
        "train_mae",
        "valid_mae",
        "valid_rmse",
        "lr",
        "grad_norm_mean",
        "grad_norm_max",
        "seconds",
    ];
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.epoch.to_string(),
                r.train_loss.to_string(),
                r.valid_loss.to_string(),
                r.train_mae.to_string(),
                r.valid_mae.to_string(),
                r.valid_rmse.to_string(),
                r.lr.to_string(),
                r.grad_norm.to_string(),
                r.grad_norm_max.to_string(),
                format!("{:.3}", r.seconds),
            ]
        })
        .collect();
    write_csv(path, &header, &lines)
}

/// Reads the rows of a `metrics.csv` written by [`write_epochs`]; rows that do not parse are
/// skipped, a missing file gives none.
pub fn read_epochs(path: &Path) -> Vec<EpochRow> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<f64> = line
                .split(',')
                .map(|x| x.parse::<f64>())
                .collect::<Result<_, _>>()
                .ok()?;
            (f.len() == 10).then(|| EpochRow {
                epoch: f[0] as usize,
                train_loss: f[1],
                valid_loss: f[2],
                train_mae: f[3],
                valid_mae: f[4],
                valid_rmse: f[5],
                lr: f[6],
                grad_norm: f[7],
                grad_norm_max: f[8],
                seconds: f[9],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::PendingLines;

    #[test]
    fn an_epoch_line_waits_for_all_its_records() {
        let p = PendingLines::default();
        p.push(1, "one".into());
        p.push(2, "two".into());
        assert!(p.take_saved(1, 3).is_empty());
        assert!(p.take_saved(1, 3).is_empty());
        assert_eq!(p.take_saved(1, 3), ["one"]);
        // Records of epoch 2 may be saved in any order across the three writers.
        p.push(3, "three".into());
        assert!(p.take_saved(2, 3).is_empty());
        assert!(p.take_saved(3, 3).is_empty());
        assert!(p.take_saved(2, 3).is_empty());
        assert_eq!(p.take_saved(2, 3), ["two"]);
        assert!(p.take_saved(3, 3).is_empty());
        assert_eq!(p.take_saved(3, 3), ["three"]);
    }
}
