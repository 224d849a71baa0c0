//! State shared between the training step, the LR scheduler and the renderer: gradient norms,
//! the reduce-on-plateau multiplier, the current rate, and the divergence guard.

use std::sync::{Arc, Mutex};

use burn::train::Interrupter;

/// What the pieces of one run tell each other.
pub struct Monitor {
    /// Pre-clip global gradient norms of the current epoch.
    pub grad_norms: Vec<f64>,
    /// Multiplier from reduce-on-plateau (1 without it).
    pub lr_scale: f64,
    /// The rate of the latest optimizer step.
    pub last_lr: f64,
    /// Why training stopped early, when the loss or gradients stopped being finite.
    pub diverged: Option<String>,
    /// Stops the Learner.
    pub interrupter: Interrupter,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("lr_scale", &self.lr_scale)
            .field("last_lr", &self.last_lr)
            .field("diverged", &self.diverged)
            .finish()
    }
}

/// A monitor shared by clones of the model, the scheduler and the renderer.
pub type SharedMonitor = Arc<Mutex<Monitor>>;

/// A fresh monitor around the Learner's interrupter.
pub fn shared(interrupter: Interrupter) -> SharedMonitor {
    Arc::new(Mutex::new(Monitor {
        grad_norms: Vec::new(),
        lr_scale: 1.0,
        last_lr: 0.0,
        diverged: None,
        interrupter,
    }))
}
