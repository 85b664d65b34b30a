//! Adam (Kingma & Ba) and AdamW (Loshchilov & Hutter, decoupled weight
//! decay): PyTorch's `torch.optim.Adam` / `torch.optim.AdamW` without amsgrad.

use ndarray::{ArrayViewD, ArrayViewMutD, Zip};
use serde::{Deserialize, Serialize};

use super::state::{buffered_state_methods, ParamBuffers};
use super::{check_range, check_step_inputs, Optimizer, OptimizerConfig, OptimizerState};
use crate::{Result, Scalar};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AdamConfig {
    /// (β₁, β₂): decay rates of the first and second moment estimates.
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    /// `false`: Adam's L2 penalty, g ← g + weight_decay · θ.
    /// `true`: AdamW, θ ← θ · (1 − lr · weight_decay) before the Adam update.
    pub decoupled_weight_decay: bool,
}

impl Default for AdamConfig {
    /// `torch.optim.Adam`'s defaults.
    fn default() -> Self {
        AdamConfig {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
        }
    }
}

impl AdamConfig {
    /// `torch.optim.AdamW`'s defaults (weight decay 0.01).
    pub fn adamw() -> Self {
        AdamConfig {
            weight_decay: 1e-2,
            decoupled_weight_decay: true,
            ..AdamConfig::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        check_range("betas[0]", self.betas.0, 0.0, 1.0, false)?;
        check_range("betas[1]", self.betas.1, 0.0, 1.0, false)?;
        check_range("eps", self.eps, 0.0, f64::INFINITY, false)?;
        check_range("weightDecay", self.weight_decay, 0.0, f64::INFINITY, false)
    }
}

/// At step t (from 1), with g the gradient (plus weight_decay · θ for Adam):
///
/// ```text
/// m ← β₁·m + (1 − β₁)·g          v ← β₂·v + (1 − β₂)·g²
/// θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
#[derive(Debug, Clone)]
pub struct Adam<F> {
    config: AdamConfig,
    steps: u64,
    buffers: ParamBuffers<F>,
}

impl<F: Scalar> Adam<F> {
    pub fn new(config: AdamConfig) -> Result<Self> {
        config.validate()?;
        Ok(Adam {
            config,
            steps: 0,
            buffers: ParamBuffers::new(vec!["exp_avg", "exp_avg_sq"]),
        })
    }
}

impl<F: Scalar> Optimizer<F> for Adam<F> {
    fn step(
        &mut self,
        params: &mut [ArrayViewMutD<'_, F>],
        grads: &[ArrayViewD<'_, F>],
        lr: f64,
    ) -> Result<()> {
        check_step_inputs(params, grads, lr)?;
        self.buffers.ensure(params)?;
        self.steps += 1;
        let c = self.config;
        let t = self.steps as f64;
        let step_size = F::from_f64_lossy(lr / (1.0 - c.betas.0.powf(t)));
        let bias_correction2_sqrt = F::from_f64_lossy((1.0 - c.betas.1.powf(t)).sqrt());
        let (b1, b2) = (F::from_f64_lossy(c.betas.0), F::from_f64_lossy(c.betas.1));
        let (one_minus_b1, one_minus_b2) = (
            F::from_f64_lossy(1.0 - c.betas.0),
            F::from_f64_lossy(1.0 - c.betas.1),
        );
        let eps = F::from_f64_lossy(c.eps);
        let (l2, decay) = if c.decoupled_weight_decay {
            (F::zero(), F::from_f64_lossy(1.0 - lr * c.weight_decay))
        } else {
            (F::from_f64_lossy(c.weight_decay), F::one())
        };
        for ((p, g), slot) in params
            .iter_mut()
            .zip(grads)
            .zip(self.buffers.slots.iter_mut())
        {
            let [exp_avg, exp_avg_sq] = slot.as_mut_slice() else {
                unreachable!("Adam keeps exactly two buffers per parameter")
            };
            Zip::from(p)
                .and(g)
                .and(exp_avg)
                .and(exp_avg_sq)
                .for_each(|p, &g, m, v| {
                    let g = g + l2 * *p;
                    *p = *p * decay;
                    *m = b1 * *m + one_minus_b1 * g;
                    *v = b2 * *v + one_minus_b2 * g * g;
                    *p = *p - step_size * *m / (v.sqrt() / bias_correction2_sqrt + eps);
                });
        }
        Ok(())
    }

    buffered_state_methods!(Adam);
}
