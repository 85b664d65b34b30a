//! σ and tanh on four `f32` in a NEON register: the formulas, constants and
//! accuracy (≤ 2 ulp) of the AVX2 version in [`super::activations`], so a
//! model computes the same values on arm64 as on x86-64 up to rounding.
//!
//! NEON is part of every aarch64 CPU, so these are safe functions: the
//! intrinsics' `unsafe` only stands for "the CPU must have NEON", which the
//! target guarantees.

use std::arch::aarch64::*;

use super::activations::constants::*;

/// e^x for x ≤ 0 (≤ 1 ulp); arguments below −87.3 give the smallest normal float.
#[inline(always)]
fn exp_non_positive(x: float32x4_t) -> float32x4_t {
    // SAFETY: register-only NEON arithmetic; aarch64 always has NEON.
    unsafe {
        let x = vmaxq_f32(x, vdupq_n_f32(EXP_MIN_ARG));
        // n = round(x / ln 2), ties to even like the AVX2 version's rounding mode.
        let n = vrndnq_f32(vmulq_n_f32(x, std::f32::consts::LOG2_E));
        // vfmsq_f32(a, b, c) = a − b·c.
        let r = vfmsq_f32(x, n, vdupq_n_f32(LN2_HI));
        let r = vfmsq_f32(r, n, vdupq_n_f32(LN2_LO));
        let mut poly = vdupq_n_f32(EXP_POLY[0]);
        for &coefficient in &EXP_POLY[1..] {
            poly = vfmaq_f32(vdupq_n_f32(coefficient), poly, r);
        }
        let r2 = vmulq_f32(r, r);
        let e_r = vaddq_f32(vfmaq_f32(r, poly, r2), vdupq_n_f32(1.0));
        // 2^n from its exponent bits; n ≥ −126 keeps it normal.
        let biased = vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127));
        let two_n = vreinterpretq_f32_s32(vshlq_n_s32::<23>(biased));
        vmulq_f32(e_r, two_n)
    }
}

/// σ(x) per lane (≤ 2 ulp).
#[inline(always)]
pub(crate) fn sigmoid(x: float32x4_t) -> float32x4_t {
    // SAFETY: register-only NEON arithmetic; aarch64 always has NEON.
    unsafe {
        let one = vdupq_n_f32(1.0);
        let e = exp_non_positive(vnegq_f32(vabsq_f32(x)));
        let negative = vcltzq_f32(x);
        let numerator = vbslq_f32(negative, e, one);
        vdivq_f32(numerator, vaddq_f32(one, e))
    }
}

/// tanh(x) per lane (≤ 2 ulp).
#[inline(always)]
pub(crate) fn tanh(x: float32x4_t) -> float32x4_t {
    // SAFETY: register-only NEON arithmetic; aarch64 always has NEON.
    unsafe {
        let magnitude = vabsq_f32(x);
        let sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x8000_0000));

        let one = vdupq_n_f32(1.0);
        let e = exp_non_positive(vmulq_n_f32(magnitude, -2.0));
        let large = vdivq_f32(vsubq_f32(one, e), vaddq_f32(one, e));

        let x2 = vmulq_f32(x, x);
        let mut poly = vdupq_n_f32(TANH_POLY[0]);
        for &coefficient in &TANH_POLY[1..] {
            poly = vfmaq_f32(vdupq_n_f32(coefficient), poly, x2);
        }
        let small = vfmaq_f32(magnitude, vmulq_f32(poly, x2), magnitude);

        let use_small = vcltq_f32(magnitude, vdupq_n_f32(TANH_POLY_LIMIT));
        let unsigned = vbslq_f32(use_small, small, large);
        vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(unsigned), sign))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::activations::tests::{check_saturation, check_sigmoid, check_tanh};

    /// `f` on four lanes.
    fn lanes(f: fn(float32x4_t) -> float32x4_t) -> impl Fn([f32; 4]) -> [f32; 4] {
        move |xs| {
            let mut out = [0.0f32; 4];
            // SAFETY: both arrays hold four floats.
            unsafe { vst1q_f32(out.as_mut_ptr(), f(vld1q_f32(xs.as_ptr()))) };
            out
        }
    }

    #[test]
    fn neon_sigmoid_is_within_two_ulp() {
        check_sigmoid(lanes(sigmoid));
    }

    #[test]
    fn neon_tanh_is_within_two_ulp() {
        check_tanh(lanes(tanh));
    }

    #[test]
    fn neon_activations_saturate_without_nan() {
        check_saturation(lanes(sigmoid), lanes(tanh));
    }
}
