//! Gradient clipping (SPEC §3): by value (Keras `clipvalue`), by each
//! tensor's L2 norm (Keras `clipnorm`) and by the global L2 norm over all
//! tensors (PyTorch `clip_grad_norm_`, Keras `global_clipnorm`).
//!
//! When several are configured they are applied in the order
//! value → per tensor → global, from the most local to the most global:
//! - value first, so that a few exploding entries are cut down before they
//!   dominate a norm; clipping a norm first would shrink every other entry of
//!   the tensor to make room for the outlier, and the value clip afterwards
//!   would only trim the outlier, leaving the rest of the gradient crushed;
//! - per tensor before global for the same reason one level up: one
//!   exploding tensor is bounded on its own before it can shrink all the
//!   others through the global scale;
//! - every operation only shrinks magnitudes, so the bounds established by
//!   the earlier ones still hold at the end: afterwards |g| ≤ value
//!   everywhere, ‖g_k‖ ≤ per_tensor_norm for each tensor and ‖g‖ ≤ global_norm.
//!
//! Clipping the error inside BPTT at every time step is a different knob:
//! `BackwardOptions::recurrent_clip` of the recurrent layers.

use ndarray::{ArrayBase, ArrayViewMutD, Data, Dimension};
use serde::{Deserialize, Serialize};

use crate::kernels::sums::{sum_in_lanes, LANES};
use crate::{Error, Result, Scalar};

/// Added to the norm by PyTorch's `clip_grad_norm_` so the clipped norm lands just below the threshold.
const GLOBAL_NORM_EPS: f64 = 1e-6;

/// Which clipping to apply; any combination, `None` disables one.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClipConfig {
    /// Scale all gradients by threshold / (‖g‖ + 1e-6) when their joint L2 norm ‖g‖ exceeds it.
    pub global_norm: Option<f64>,
    /// Scale each tensor g_k by threshold / ‖g_k‖ when its own L2 norm exceeds it.
    pub per_tensor_norm: Option<f64>,
    /// Clamp every element to [−value, value].
    pub value: Option<f64>,
}

impl ClipConfig {
    pub fn validate(&self) -> Result<()> {
        let thresholds = [
            ("globalNorm", self.global_norm),
            ("perTensorNorm", self.per_tensor_norm),
            ("value", self.value),
        ];
        for (name, threshold) in thresholds {
            if let Some(t) = threshold {
                if !(t.is_finite() && t > 0.0) {
                    return Err(Error::invalid(
                        name,
                        format!("clip threshold must be finite and > 0, got {t}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What [`clip_gradients`] saw and did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipReport {
    /// Global L2 norm of all gradients before any clipping (NaN or ∞ if they hold such values).
    pub pre_clip_norm: f64,
    /// Whether any gradient was changed.
    pub clipped: bool,
}

impl ClipReport {
    /// `false` when the gradients hold NaN or ∞: the caller should skip the update.
    pub fn is_finite(&self) -> bool {
        self.pre_clip_norm.is_finite()
    }
}

/// Clips `grads` in place as `cfg` says and reports the norm before clipping.
///
/// If that norm is not finite the gradients are left untouched (scaling ∞ or
/// NaN can only spread NaN) and the report says so; deciding to skip the
/// update is the caller's job. Finite gradients never turn into NaN: norms
/// are computed in `f64` without overflow.
pub fn clip_gradients<F: Scalar>(
    grads: &mut [ArrayViewMutD<'_, F>],
    cfg: &ClipConfig,
) -> Result<ClipReport> {
    cfg.validate()?;
    let pre_clip_norm = global_l2_norm(grads.iter());
    if !pre_clip_norm.is_finite() {
        return Ok(ClipReport {
            pre_clip_norm,
            clipped: false,
        });
    }
    let mut clipped = false;
    if let Some(value) = cfg.value {
        for g in grads.iter_mut() {
            clipped |= clamp_elements(g, F::from_f64_lossy(value));
        }
    }
    if let Some(threshold) = cfg.per_tensor_norm {
        for g in grads.iter_mut() {
            let norm = l2_norm(g);
            if norm > threshold {
                scale(g, threshold / norm);
                clipped = true;
            }
        }
    }
    if let Some(threshold) = cfg.global_norm {
        let norm = if clipped {
            global_l2_norm(grads.iter())
        } else {
            pre_clip_norm
        };
        if norm > threshold {
            let factor = threshold / (norm + GLOBAL_NORM_EPS);
            grads.iter_mut().for_each(|g| scale(g, factor));
            clipped = true;
        }
    }
    Ok(ClipReport {
        pre_clip_norm,
        clipped,
    })
}

/// L2 norm of one tensor, in `f64`. Squares of finite values above ~1e154
/// overflow `f64`; only then is the sum redone scaled by the largest magnitude.
/// NaN anywhere gives NaN, ±∞ (and no NaN) gives ∞.
pub fn l2_norm<F: Scalar, S: Data<Elem = F>, D: Dimension>(a: &ArrayBase<S, D>) -> f64 {
    let sum_of_squares = match a.as_slice_memory_order() {
        Some(values) => sum_of_squares(values),
        None => a.iter().map(|&x| x.to_f64_lossy().powi(2)).sum(),
    };
    if !sum_of_squares.is_infinite() {
        return sum_of_squares.sqrt();
    }
    let max_abs = a
        .iter()
        .fold(0.0_f64, |m, &x| m.max(x.to_f64_lossy().abs()));
    if max_abs.is_infinite() {
        return f64::INFINITY;
    }
    let scaled: f64 = a
        .iter()
        .map(|&x| (x.to_f64_lossy() / max_abs).powi(2))
        .sum();
    max_abs * scaled.sqrt()
}

/// Σ x² in `f64` over eight running sums (see [`crate::kernels::sums`]).
fn sum_of_squares<F: Scalar>(values: &[F]) -> f64 {
    let square = |x: F| x.to_f64_lossy().powi(2);
    let (groups, rest) = values.as_chunks::<LANES>();
    sum_in_lanes(
        groups.iter().map(|group| group.map(square)),
        rest.iter().map(|&x| square(x)),
    )
}

/// Joint L2 norm of several tensors: √(Σ_k ‖t_k‖²), combined with `hypot` so it cannot overflow early.
pub fn global_l2_norm<'a, F, S, D, I>(tensors: I) -> f64
where
    F: Scalar,
    S: Data<Elem = F> + 'a,
    D: Dimension + 'a,
    I: IntoIterator<Item = &'a ArrayBase<S, D>>,
{
    tensors.into_iter().map(l2_norm).fold(0.0, f64::hypot)
}

/// Clamps every element to [−value, value]; returns whether any was outside.
fn clamp_elements<F: Scalar>(g: &mut ArrayViewMutD<'_, F>, value: F) -> bool {
    let mut changed = false;
    g.iter_mut().filter(|x| x.abs() > value).for_each(|x| {
        *x = value.copysign(*x);
        changed = true;
    });
    changed
}

/// Multiplies in `f64`: a factor too small for `F` (huge norms in `f32`) must not round to 0 before use.
fn scale<F: Scalar>(g: &mut ArrayViewMutD<'_, F>, factor: f64) {
    g.mapv_inplace(|x| F::from_f64_lossy(x.to_f64_lossy() * factor));
}
