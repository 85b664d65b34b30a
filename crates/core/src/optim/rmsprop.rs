//! RMSProp (Hinton's lecture 6e; centered form of Graves 2013): PyTorch's
//! `torch.optim.RMSprop`.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Zip};
use serde::{Deserialize, Serialize};

use super::state::{buffered_state_methods, ParamBuffers};
use super::{check_range, check_step_inputs, Optimizer, OptimizerConfig, OptimizerState};
use crate::{Result, Scalar};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RmsPropConfig {
    /// Decay rate of the running averages.
    pub alpha: f64,
    pub eps: f64,
    pub momentum: f64,
    /// Normalise by the estimated variance instead of the raw second moment.
    pub centered: bool,
    /// L2 penalty added to the gradient: g ← g + weight_decay · θ.
    pub weight_decay: f64,
}

impl Default for RmsPropConfig {
    /// `torch.optim.RMSprop`'s defaults.
    fn default() -> Self {
        RmsPropConfig {
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            centered: false,
            weight_decay: 0.0,
        }
    }
}

impl RmsPropConfig {
    pub fn validate(&self) -> Result<()> {
        check_range("alpha", self.alpha, 0.0, 1.0, true)?;
        check_range("eps", self.eps, 0.0, f64::INFINITY, false)?;
        check_range("momentum", self.momentum, 0.0, f64::INFINITY, false)?;
        check_range("weightDecay", self.weight_decay, 0.0, f64::INFINITY, false)
    }
}

/// With g the (weight-decayed) gradient:
///
/// ```text
/// v ← α·v + (1 − α)·g²
/// centered: ḡ ← α·ḡ + (1 − α)·g,   a = √(v − ḡ²) + ε      else a = √v + ε
/// momentum μ > 0: b ← μ·b + g / a,  θ ← θ − lr·b           else θ ← θ − lr·g / a
/// ```
///
/// v − ḡ² is an average variance and never negative in exact arithmetic; it
/// is clamped at 0 so that rounding cannot produce a NaN (PyTorch would).
#[derive(Debug, Clone)]
pub struct RmsProp<F> {
    config: RmsPropConfig,
    steps: u64,
    buffers: ParamBuffers<F>,
}

/// The scalars of one update, converted to `F` once per step.
#[derive(Clone, Copy)]
struct Coefficients<F> {
    lr: F,
    alpha: F,
    one_minus_alpha: F,
    eps: F,
    momentum: F,
    weight_decay: F,
}

impl<F: Scalar> Coefficients<F> {
    /// Updates one element; `grad_avg` is present when centered, `buf` with momentum.
    #[inline(always)]
    fn update(
        &self,
        p: &mut F,
        g: F,
        square_avg: &mut F,
        grad_avg: Option<&mut F>,
        buf: Option<&mut F>,
    ) {
        let g = g + self.weight_decay * *p;
        *square_avg = self.alpha * *square_avg + self.one_minus_alpha * g * g;
        let variance = match grad_avg {
            Some(ga) => {
                *ga = self.alpha * *ga + self.one_minus_alpha * g;
                (*square_avg - *ga * *ga).max(F::zero())
            }
            None => *square_avg,
        };
        let scaled = g / (variance.sqrt() + self.eps);
        match buf {
            Some(b) => {
                *b = self.momentum * *b + scaled;
                *p = *p - self.lr * *b;
            }
            None => *p = *p - self.lr * scaled,
        }
    }
}

impl<F: Scalar> RmsProp<F> {
    pub fn new(config: RmsPropConfig) -> Result<Self> {
        config.validate()?;
        let mut names = vec!["square_avg"];
        if config.centered {
            names.push("grad_avg");
        }
        if config.momentum > 0.0 {
            names.push("momentum_buffer");
        }
        Ok(RmsProp {
            config,
            steps: 0,
            buffers: ParamBuffers::new(names),
        })
    }

    fn coefficients(&self, lr: f64) -> Coefficients<F> {
        let c = self.config;
        Coefficients {
            lr: F::from_f64_lossy(lr),
            alpha: F::from_f64_lossy(c.alpha),
            one_minus_alpha: F::from_f64_lossy(1.0 - c.alpha),
            eps: F::from_f64_lossy(c.eps),
            momentum: F::from_f64_lossy(c.momentum),
            weight_decay: F::from_f64_lossy(c.weight_decay),
        }
    }
}

/// Splits a parameter's buffers into (square_avg, grad_avg if centered, momentum buffer if any),
/// in the order [`RmsProp::new`] named them.
fn split_slot<F>(
    slot: &mut [ArrayD<F>],
    centered: bool,
    momentum: bool,
) -> (
    &mut ArrayD<F>,
    Option<&mut ArrayD<F>>,
    Option<&mut ArrayD<F>>,
) {
    let (square_avg, rest) = slot
        .split_first_mut()
        .expect("RMSProp always keeps square_avg");
    let mut rest = rest.iter_mut();
    let grad_avg = if centered { rest.next() } else { None };
    let buf = if momentum { rest.next() } else { None };
    (square_avg, grad_avg, buf)
}

impl<F: Scalar> Optimizer<F> for RmsProp<F> {
    fn step(
        &mut self,
        params: &mut [ArrayViewMutD<'_, F>],
        grads: &[ArrayViewD<'_, F>],
        lr: f64,
    ) -> Result<()> {
        check_step_inputs(params, grads, lr)?;
        self.buffers.ensure(params)?;
        let k = self.coefficients(lr);
        let (centered, momentum) = (self.config.centered, self.config.momentum > 0.0);
        for ((p, g), slot) in params
            .iter_mut()
            .zip(grads)
            .zip(self.buffers.slots.iter_mut())
        {
            let zip = Zip::from(p).and(g);
            match split_slot(slot, centered, momentum) {
                (sq, Some(ga), Some(b)) => zip
                    .and(sq)
                    .and(ga)
                    .and(b)
                    .for_each(|p, &g, sq, ga, b| k.update(p, g, sq, Some(ga), Some(b))),
                (sq, Some(ga), None) => zip
                    .and(sq)
                    .and(ga)
                    .for_each(|p, &g, sq, ga| k.update(p, g, sq, Some(ga), None)),
                (sq, None, Some(b)) => zip
                    .and(sq)
                    .and(b)
                    .for_each(|p, &g, sq, b| k.update(p, g, sq, None, Some(b))),
                (sq, None, None) => zip
                    .and(sq)
                    .for_each(|p, &g, sq| k.update(p, g, sq, None, None)),
            }
        }
        self.steps += 1;
        Ok(())
    }

    buffered_state_methods!(RmsProp);
}
