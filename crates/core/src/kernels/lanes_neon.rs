//! [`Lanes`] of four `f32` in a NEON register, the arm64 counterpart of
//! `F32x8`: the cell epilogues (LSTM, GRU, simple RNN) run on these.

use std::arch::aarch64::*;
use std::ops::{Add, Mul, Sub};

use super::activations_neon;
use super::lanes::Lanes;

/// Four `f32` in a NEON register (present on every aarch64 CPU, so unlike
/// `F32x8` no method has a CPU-feature precondition).
#[derive(Clone, Copy)]
pub(crate) struct F32x4(float32x4_t);

impl Add for F32x4 {
    type Output = F32x4;
    #[inline(always)]
    fn add(self, other: F32x4) -> F32x4 {
        // SAFETY: NEON is present (aarch64 baseline).
        F32x4(unsafe { vaddq_f32(self.0, other.0) })
    }
}

impl Sub for F32x4 {
    type Output = F32x4;
    #[inline(always)]
    fn sub(self, other: F32x4) -> F32x4 {
        // SAFETY: NEON is present (aarch64 baseline).
        F32x4(unsafe { vsubq_f32(self.0, other.0) })
    }
}

impl Mul for F32x4 {
    type Output = F32x4;
    #[inline(always)]
    fn mul(self, other: F32x4) -> F32x4 {
        // SAFETY: NEON is present (aarch64 baseline).
        F32x4(unsafe { vmulq_f32(self.0, other.0) })
    }
}

impl Lanes for F32x4 {
    type Elem = f32;
    const WIDTH: usize = 4;

    #[inline(always)]
    unsafe fn load(p: *const f32) -> F32x4 {
        // SAFETY: per the caller (4 readable floats).
        F32x4(unsafe { vld1q_f32(p) })
    }

    #[inline(always)]
    unsafe fn splat(value: f32) -> F32x4 {
        // SAFETY: NEON is present (aarch64 baseline).
        F32x4(unsafe { vdupq_n_f32(value) })
    }

    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: per the caller (4 writable floats).
        unsafe { vst1q_f32(p, self.0) }
    }

    /// IEEE maxNum, like `f32::max`: a NaN operand yields the other one (clipping and
    /// ReLU then treat NaN as the portable lanes do).
    #[inline(always)]
    fn max(self, other: F32x4) -> F32x4 {
        // SAFETY: NEON is present (aarch64 baseline).
        F32x4(unsafe { vmaxnmq_f32(self.0, other.0) })
    }

    /// IEEE minNum, like `f32::min`.
    #[inline(always)]
    fn min(self, other: F32x4) -> F32x4 {
        // SAFETY: NEON is present (aarch64 baseline).
        F32x4(unsafe { vminnmq_f32(self.0, other.0) })
    }

    #[inline(always)]
    fn sigmoid(self) -> F32x4 {
        F32x4(activations_neon::sigmoid(self.0))
    }

    #[inline(always)]
    fn tanh(self) -> F32x4 {
        F32x4(activations_neon::tanh(self.0))
    }

    #[inline(always)]
    fn sum(self) -> f32 {
        // SAFETY: NEON is present (aarch64 baseline).
        unsafe { vaddvq_f32(self.0) }
    }
}
