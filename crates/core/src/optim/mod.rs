//! Optimizers, learning-rate schedules and gradient clipping.
//!
//! Every optimizer applies exactly PyTorch's update rule (`torch.optim`, the
//! single-tensor code path) so that a run can be compared number for number
//! with PyTorch. Hyperparameters are plain `f64` data ([`OptimizerConfig`]);
//! the arithmetic on tensors happens in the model's scalar type `F`, the
//! per-step scalars (bias corrections, step sizes) in `f64` as PyTorch does.

pub mod adam;
pub mod clip;
pub mod rmsprop;
pub mod schedule;
pub mod sgd;
mod state;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD};
use serde::{Deserialize, Serialize};

pub use adam::{Adam, AdamConfig};
pub use clip::{clip_gradients, global_l2_norm, l2_norm, ClipConfig, ClipReport};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use schedule::{LrSchedule, Schedule};
pub use sgd::{Sgd, SgdConfig};

use crate::{Error, Result, Scalar};

/// A first-order optimizer that owns its per-parameter state.
///
/// `params` and `grads` are listed in the same fixed order at every step
/// (the order of [`crate::ParamSet::tensors_mut`] across the model); the state
/// is sized lazily from the first step and every later step checks that the
/// shapes still match.
pub trait Optimizer<F: Scalar>: Send {
    /// Applies one update with learning rate `lr`. Nothing is modified when an
    /// error is returned: `Error::Shape` if the tensors do not pair up (or do not
    /// match the state), `Error::Invalid` if `lr` is negative or not finite.
    fn step(
        &mut self,
        params: &mut [ArrayViewMutD<'_, F>],
        grads: &[ArrayViewD<'_, F>],
        lr: f64,
    ) -> Result<()>;

    /// A copy of the state, for checkpoints. Tensors are named `"{param index}.{buffer}"`
    /// with PyTorch's buffer names (`exp_avg`, `exp_avg_sq`, `momentum_buffer`,
    /// `square_avg`, `grad_avg`).
    fn state(&self) -> OptimizerState<F>;

    /// Replaces the state by one produced by [`Optimizer::state`] of an optimizer
    /// with the same configuration. Shapes are checked against the parameters at
    /// the next step.
    fn load_state(&mut self, state: OptimizerState<F>) -> Result<()>;

    fn config(&self) -> OptimizerConfig;
}

/// The resumable state of an optimizer.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerState<F> {
    /// Number of updates applied so far (Adam's bias correction depends on it).
    pub step: u64,
    pub tensors: Vec<(String, ArrayD<F>)>,
}

/// Which optimizer, with its hyperparameters (PyTorch's names and defaults).
///
/// JSON form: `{"type": "adam", "betas": [0.9, 0.999], "eps": 1e-8, ...}`;
/// omitted fields take PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum OptimizerConfig {
    Sgd(SgdConfig),
    /// Adam, and AdamW when `decoupled_weight_decay` is set.
    Adam(AdamConfig),
    RmsProp(RmsPropConfig),
}

impl OptimizerConfig {
    pub fn validate(&self) -> Result<()> {
        match self {
            OptimizerConfig::Sgd(c) => c.validate(),
            OptimizerConfig::Adam(c) => c.validate(),
            OptimizerConfig::RmsProp(c) => c.validate(),
        }
    }
}

/// Builds the optimizer a configuration describes, with empty state.
pub fn build<F: Scalar>(config: &OptimizerConfig) -> Result<Box<dyn Optimizer<F>>> {
    Ok(match *config {
        OptimizerConfig::Sgd(c) => Box::new(Sgd::new(c)?),
        OptimizerConfig::Adam(c) => Box::new(Adam::new(c)?),
        OptimizerConfig::RmsProp(c) => Box::new(RmsProp::new(c)?),
    })
}

/// Checks that `params` and `grads` pair up one to one with equal shapes and
/// that `lr` is usable, before any tensor is touched.
fn check_step_inputs<F>(
    params: &[ArrayViewMutD<'_, F>],
    grads: &[ArrayViewD<'_, F>],
    lr: f64,
) -> Result<()> {
    if !(lr.is_finite() && lr >= 0.0) {
        return Err(Error::invalid(
            "lr",
            format!("must be finite and >= 0, got {lr}"),
        ));
    }
    if params.len() != grads.len() {
        return Err(Error::shape(
            "grads",
            format!("{} tensors, one per parameter", params.len()),
            &[grads.len()],
        ));
    }
    for (i, (p, g)) in params.iter().zip(grads).enumerate() {
        if p.shape() != g.shape() {
            return Err(Error::shape(
                &format!("grads[{i}]"),
                format!("{:?}", p.shape()),
                g.shape(),
            ));
        }
    }
    Ok(())
}

/// Checks that a hyperparameter lies in `[low, high)` (or `[low, high]` when `inclusive_high`).
fn check_range(name: &str, value: f64, low: f64, high: f64, inclusive_high: bool) -> Result<()> {
    let below_high = if inclusive_high {
        value <= high
    } else {
        value < high
    };
    if value >= low && below_high {
        Ok(())
    } else {
        let close = if inclusive_high { ']' } else { ')' };
        Err(Error::invalid(
            name,
            format!("must be in [{low}, {high}{close}, got {value}"),
        ))
    }
}
