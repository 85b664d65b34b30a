//! Stochastic gradient descent with momentum, dampening, Nesterov momentum
//! and L2 weight decay: PyTorch's `torch.optim.SGD`.

use ndarray::{ArrayViewD, ArrayViewMutD, Zip};
use serde::{Deserialize, Serialize};

use super::state::{buffered_state_methods, ParamBuffers};
use super::{check_range, check_step_inputs, Optimizer, OptimizerConfig, OptimizerState};
use crate::{Error, Result, Scalar};

/// PyTorch's defaults: plain SGD.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SgdConfig {
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    /// L2 penalty added to the gradient: g ← g + weight_decay · θ.
    pub weight_decay: f64,
}

impl SgdConfig {
    pub fn validate(&self) -> Result<()> {
        check_range("momentum", self.momentum, 0.0, f64::INFINITY, false)?;
        check_range("dampening", self.dampening, 0.0, 1.0, true)?;
        check_range("weightDecay", self.weight_decay, 0.0, f64::INFINITY, false)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::invalid(
                "nesterov",
                format!(
                    "requires momentum > 0 and dampening = 0, got momentum {} and dampening {}",
                    self.momentum, self.dampening
                ),
            ));
        }
        Ok(())
    }
}

/// With momentum μ, dampening τ and g the (weight-decayed) gradient:
///
/// ```text
/// b ← g                      at the first step
/// b ← μ·b + (1 − τ)·g        afterwards
/// d = g + μ·b  (Nesterov)    or  d = b
/// θ ← θ − lr·d
/// ```
#[derive(Debug, Clone)]
pub struct Sgd<F> {
    config: SgdConfig,
    steps: u64,
    buffers: ParamBuffers<F>,
}

impl<F: Scalar> Sgd<F> {
    pub fn new(config: SgdConfig) -> Result<Self> {
        config.validate()?;
        // Plain SGD keeps no state at all.
        let names = if config.momentum > 0.0 {
            vec!["momentum_buffer"]
        } else {
            vec![]
        };
        Ok(Sgd {
            config,
            steps: 0,
            buffers: ParamBuffers::new(names),
        })
    }

    fn step_plain(&self, params: &mut [ArrayViewMutD<'_, F>], grads: &[ArrayViewD<'_, F>], lr: F) {
        let wd = F::from_f64_lossy(self.config.weight_decay);
        for (p, g) in params.iter_mut().zip(grads) {
            Zip::from(p)
                .and(g)
                .for_each(|p, &g| *p = *p - lr * (g + wd * *p));
        }
    }

    /// `first`: the buffers were just created, so (as in PyTorch) they start as the gradient.
    fn step_momentum(
        &mut self,
        params: &mut [ArrayViewMutD<'_, F>],
        grads: &[ArrayViewD<'_, F>],
        lr: F,
        first: bool,
    ) {
        let c = self.config;
        let (wd, mu) = (
            F::from_f64_lossy(c.weight_decay),
            F::from_f64_lossy(c.momentum),
        );
        let damp = F::from_f64_lossy(1.0 - c.dampening);
        for ((p, g), slot) in params
            .iter_mut()
            .zip(grads)
            .zip(self.buffers.slots.iter_mut())
        {
            Zip::from(p).and(g).and(&mut slot[0]).for_each(|p, &g, b| {
                let g = g + wd * *p;
                *b = if first { g } else { mu * *b + damp * g };
                let d = if c.nesterov { g + mu * *b } else { *b };
                *p = *p - lr * d;
            });
        }
    }
}

impl<F: Scalar> Optimizer<F> for Sgd<F> {
    fn step(
        &mut self,
        params: &mut [ArrayViewMutD<'_, F>],
        grads: &[ArrayViewD<'_, F>],
        lr: f64,
    ) -> Result<()> {
        check_step_inputs(params, grads, lr)?;
        let fresh_buffers = self.buffers.ensure(params)?;
        let lr = F::from_f64_lossy(lr);
        if self.config.momentum > 0.0 {
            self.step_momentum(params, grads, lr, fresh_buffers);
        } else {
            self.step_plain(params, grads, lr);
        }
        self.steps += 1;
        Ok(())
    }

    buffered_state_methods!(Sgd);
}
