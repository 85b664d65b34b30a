//! σ and tanh on four `f32` in a WebAssembly `v128`: the formulas and
//! constants of the AVX2 version in [`super::activations`], so a model
//! computes the same values in WebAssembly as natively up to rounding.
//!
//! simd128 has no fused multiply-add (relaxed-simd's may or may not fuse,
//! depending on the host CPU), so every product is rounded before its sum;
//! the reduction stays exact because `n·LN2_HI` is (`LN2_HI` has 9
//! significant bits, |n| ≤ 126), and the results stay within 2 ulp (tested
//! below). The module only exists when simd128 is enabled at compile time,
//! so the intrinsics need no run-time check and these are safe functions.

use std::arch::wasm32::*;

use super::activations::constants::*;

/// `a·b + c`, rounded twice (see the module doc).
#[inline(always)]
fn mul_add(a: v128, b: v128, c: v128) -> v128 {
    f32x4_add(f32x4_mul(a, b), c)
}

/// e^x for x ≤ 0; arguments below −87.3 give the smallest normal float.
#[inline(always)]
fn exp_non_positive(x: v128) -> v128 {
    let x = f32x4_pmax(f32x4_splat(EXP_MIN_ARG), x);
    // n = round(x / ln 2), ties to even like the AVX2 version's rounding mode.
    let n = f32x4_nearest(f32x4_mul(x, f32x4_splat(std::f32::consts::LOG2_E)));
    let r = f32x4_sub(x, f32x4_mul(n, f32x4_splat(LN2_HI)));
    let r = f32x4_sub(r, f32x4_mul(n, f32x4_splat(LN2_LO)));
    let mut poly = f32x4_splat(EXP_POLY[0]);
    for &coefficient in &EXP_POLY[1..] {
        poly = mul_add(poly, r, f32x4_splat(coefficient));
    }
    let r2 = f32x4_mul(r, r);
    let e_r = f32x4_add(mul_add(poly, r2, r), f32x4_splat(1.0));
    // 2^n from its exponent bits; n ≥ −126 keeps it normal (n is integral: the conversion is exact).
    let biased = i32x4_add(i32x4_trunc_sat_f32x4(n), i32x4_splat(127));
    f32x4_mul(e_r, i32x4_shl(biased, 23))
}

/// σ(x) per lane (≤ 2 ulp).
#[inline(always)]
pub(crate) fn sigmoid(x: v128) -> v128 {
    let one = f32x4_splat(1.0);
    let e = exp_non_positive(f32x4_neg(f32x4_abs(x)));
    let negative = f32x4_lt(x, f32x4_splat(0.0));
    let numerator = v128_bitselect(e, one, negative);
    f32x4_div(numerator, f32x4_add(one, e))
}

/// tanh(x) per lane (≤ 2 ulp).
#[inline(always)]
pub(crate) fn tanh(x: v128) -> v128 {
    let magnitude = f32x4_abs(x);
    let sign = v128_and(x, f32x4_splat(-0.0));

    let one = f32x4_splat(1.0);
    let e = exp_non_positive(f32x4_mul(magnitude, f32x4_splat(-2.0)));
    let large = f32x4_div(f32x4_sub(one, e), f32x4_add(one, e));

    let x2 = f32x4_mul(x, x);
    let mut poly = f32x4_splat(TANH_POLY[0]);
    for &coefficient in &TANH_POLY[1..] {
        poly = mul_add(poly, x2, f32x4_splat(coefficient));
    }
    let small = mul_add(f32x4_mul(poly, x2), magnitude, magnitude);

    let use_small = f32x4_lt(magnitude, f32x4_splat(TANH_POLY_LIMIT));
    v128_or(v128_bitselect(small, large, use_small), sign)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::activations::tests::{check_saturation, check_sigmoid, check_tanh};

    /// `f` on four lanes.
    fn lanes(f: fn(v128) -> v128) -> impl Fn([f32; 4]) -> [f32; 4] {
        move |xs| {
            let y = f(f32x4(xs[0], xs[1], xs[2], xs[3]));
            [
                f32x4_extract_lane::<0>(y),
                f32x4_extract_lane::<1>(y),
                f32x4_extract_lane::<2>(y),
                f32x4_extract_lane::<3>(y),
            ]
        }
    }

    #[test]
    fn simd128_sigmoid_is_within_two_ulp() {
        check_sigmoid(lanes(sigmoid));
    }

    #[test]
    fn simd128_tanh_is_within_two_ulp() {
        check_tanh(lanes(tanh));
    }

    #[test]
    fn simd128_activations_saturate_without_nan() {
        check_saturation(lanes(sigmoid), lanes(tanh));
    }
}
