//! Learning-rate schedules, as closed forms of the optimizer step count.
//!
//! `step` is the number of updates already applied: `learning_rate(base, 0)`
//! is the rate of the first update. The decays match PyTorch's schedulers
//! (`StepLR`, `ExponentialLR`, `CosineAnnealingLR`) when those are stepped
//! once per update.

use serde::{Deserialize, Serialize};

use super::check_range;
use crate::{Error, Result};

/// The decay after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Schedule {
    /// lr = base
    #[default]
    Constant,
    /// lr = base · gamma^⌊t / step_size⌋
    #[serde(rename_all = "camelCase")]
    Step { step_size: u64, gamma: f64 },
    /// lr = base · gamma^t
    Exponential { gamma: f64 },
    /// lr = eta_min + (base − eta_min) · (1 + cos(π · t / t_max)) / 2 for t ≤ t_max, then eta_min.
    /// (PyTorch's closed form would climb back up after t_max; restarts are not this schedule's job.)
    #[serde(rename_all = "camelCase")]
    Cosine { t_max: u64, eta_min: f64 },
}

/// A decay schedule with an optional linear warmup in front of it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LrSchedule {
    pub schedule: Schedule,
    /// During the first `warmup_steps` updates the rate rises linearly,
    /// lr = base · (step + 1) / (warmup_steps + 1), reaching base at step
    /// `warmup_steps`, where the decay starts at its own t = 0.
    pub warmup_steps: u64,
}

impl LrSchedule {
    pub fn validate(&self) -> Result<()> {
        match self.schedule {
            Schedule::Constant => Ok(()),
            Schedule::Step { step_size, gamma } => {
                if step_size == 0 {
                    return Err(Error::invalid("stepSize", "must be >= 1, got 0"));
                }
                check_range("gamma", gamma, 0.0, f64::INFINITY, false)
            }
            Schedule::Exponential { gamma } => {
                check_range("gamma", gamma, 0.0, f64::INFINITY, false)
            }
            Schedule::Cosine { t_max, eta_min } => {
                if t_max == 0 {
                    return Err(Error::invalid("tMax", "must be >= 1, got 0"));
                }
                check_range("etaMin", eta_min, 0.0, f64::INFINITY, false)
            }
        }
    }

    /// The learning rate of the update that follows `step` earlier ones.
    pub fn learning_rate(&self, base: f64, step: u64) -> f64 {
        if step < self.warmup_steps {
            return base * (step + 1) as f64 / (self.warmup_steps + 1) as f64;
        }
        let t = step - self.warmup_steps;
        // `validate` rejects a zero step_size / t_max; `max(1)` only keeps an unvalidated one from dividing by 0.
        match self.schedule {
            Schedule::Constant => base,
            Schedule::Step { step_size, gamma } => base * gamma.powf((t / step_size.max(1)) as f64),
            Schedule::Exponential { gamma } => base * gamma.powf(t as f64),
            Schedule::Cosine { t_max, eta_min } => {
                let t_max = t_max.max(1);
                let progress = t.min(t_max) as f64 / t_max as f64;
                eta_min + (base - eta_min) * (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0
            }
        }
    }
}
