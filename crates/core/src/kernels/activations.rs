//! The logistic sigmoid and tanh, as the LSTM cell uses them: a portable
//! version for any float, an AVX2/FMA `f32 × 8` version and its AVX-512
//! `f32 × 16` twin (the NEON and WebAssembly simd128 `f32 × 4` ones, in
//! `activations_neon` and `activations_simd128`, share its constants).
//!
//! Both are evaluated in forms without cancellation, so the vector versions
//! stay within 2 ulp of the exact values over the whole range (tested below):
//! with e = exp(−|x|) ∈ (0, 1],
//!
//! ```text
//! σ(x)    = 1 / (1 + e)  for x ≥ 0,   e / (1 + e)  for x < 0
//! tanh(x) = sign(x) · (1 − e²) / (1 + e²)   for |x| ≥ 0.625 (a polynomial below)
//! ```

use crate::Scalar;

/// σ(x) for any float, in the cancellation-free form of the module doc.
#[inline(always)]
pub(crate) fn sigmoid<F: Scalar>(x: F) -> F {
    let e = (-x.abs()).exp();
    let numerator = if x < F::zero() { e } else { F::one() };
    numerator / (F::one() + e)
}

/// The constants of the vector versions: every instruction set evaluates the same formulas.
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
pub(crate) mod constants {
    /// ln 2 split in a part exact in f32 and the rest (Cody–Waite reduction).
    pub(crate) const LN2_HI: f32 = 0.693_359_4;
    pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
    /// The smallest argument whose exponential is still a normal float.
    pub(crate) const EXP_MIN_ARG: f32 = -87.336_55;
    /// Minimax coefficients of (e^r − 1 − r) / r² on |r| ≤ ln2 / 2 (Cephes `expf`).
    pub(crate) const EXP_POLY: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        5e-1,
    ];
    /// Below this |x|, tanh uses its odd polynomial (Cephes `tanhf`).
    pub(crate) const TANH_POLY_LIMIT: f32 = 0.625;
    pub(crate) const TANH_POLY: [f32; 5] = [
        -5.704_988_7e-3,
        2.063_909e-2,
        -5.373_971_6e-2,
        1.333_144_2e-1,
        -3.333_328e-1,
    ];
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::constants::*;

    /// e^x for x ≤ 0 (≤ 1 ulp); arguments below −87.3 give the smallest normal float.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn exp_non_positive(x: __m256) -> __m256 {
        let x = _mm256_max_ps(x, _mm256_set1_ps(EXP_MIN_ARG));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
        let mut poly = _mm256_set1_ps(EXP_POLY[0]);
        for &coefficient in &EXP_POLY[1..] {
            poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(coefficient));
        }
        let r2 = _mm256_mul_ps(r, r);
        let e_r = _mm256_add_ps(_mm256_fmadd_ps(poly, r2, r), _mm256_set1_ps(1.0));
        // 2^n from its exponent bits; n ≥ −126 keeps it normal.
        let two_n = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        )));
        _mm256_mul_ps(e_r, two_n)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn abs(x: __m256) -> __m256 {
        _mm256_andnot_ps(_mm256_set1_ps(-0.0), x)
    }

    /// σ(x) per lane (≤ 2 ulp).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn sigmoid(x: __m256) -> __m256 {
        let e = exp_non_positive(_mm256_sub_ps(_mm256_setzero_ps(), abs(x)));
        let negative = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_setzero_ps());
        let numerator = _mm256_blendv_ps(_mm256_set1_ps(1.0), e, negative);
        _mm256_div_ps(numerator, _mm256_add_ps(_mm256_set1_ps(1.0), e))
    }

    /// tanh(x) per lane (≤ 2 ulp).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn tanh(x: __m256) -> __m256 {
        let magnitude = abs(x);
        let sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0));

        let e = exp_non_positive(_mm256_mul_ps(magnitude, _mm256_set1_ps(-2.0)));
        let one = _mm256_set1_ps(1.0);
        let large = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));

        let x2 = _mm256_mul_ps(x, x);
        let mut poly = _mm256_set1_ps(TANH_POLY[0]);
        for &coefficient in &TANH_POLY[1..] {
            poly = _mm256_fmadd_ps(poly, x2, _mm256_set1_ps(coefficient));
        }
        let small = _mm256_fmadd_ps(_mm256_mul_ps(poly, x2), magnitude, magnitude);

        let use_small = _mm256_cmp_ps::<_CMP_LT_OQ>(magnitude, _mm256_set1_ps(TANH_POLY_LIMIT));
        _mm256_or_ps(_mm256_blendv_ps(large, small, use_small), sign)
    }
}

/// The same formulas in sixteen lanes: every operation is the AVX2 version's (same
/// constants, same order, same rounding), so a lane's result is bit for bit the one
/// [`avx2`] gives, whichever width a cell epilogue runs at.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    use super::constants::*;

    /// e^x for x ≤ 0, as [`super::avx2`]'s.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn exp_non_positive(x: __m512) -> __m512 {
        let x = _mm512_max_ps(x, _mm512_set1_ps(EXP_MIN_ARG));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
        let mut poly = _mm512_set1_ps(EXP_POLY[0]);
        for &coefficient in &EXP_POLY[1..] {
            poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(coefficient));
        }
        let r2 = _mm512_mul_ps(r, r);
        let e_r = _mm512_add_ps(_mm512_fmadd_ps(poly, r2, r), _mm512_set1_ps(1.0));
        let two_n = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
            _mm512_cvtps_epi32(n),
            _mm512_set1_epi32(127),
        )));
        _mm512_mul_ps(e_r, two_n)
    }

    /// σ(x) per lane, as [`super::avx2::sigmoid`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn sigmoid(x: __m512) -> __m512 {
        let e = exp_non_positive(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)));
        let negative = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_setzero_ps());
        let numerator = _mm512_mask_blend_ps(negative, _mm512_set1_ps(1.0), e);
        _mm512_div_ps(numerator, _mm512_add_ps(_mm512_set1_ps(1.0), e))
    }

    /// tanh(x) per lane, as [`super::avx2::tanh`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn tanh(x: __m512) -> __m512 {
        let magnitude = _mm512_abs_ps(x);
        let sign_bit = _mm512_set1_epi32(i32::MIN);
        let sign = _mm512_and_si512(_mm512_castps_si512(x), sign_bit);

        let e = exp_non_positive(_mm512_mul_ps(magnitude, _mm512_set1_ps(-2.0)));
        let one = _mm512_set1_ps(1.0);
        let large = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));

        let x2 = _mm512_mul_ps(x, x);
        let mut poly = _mm512_set1_ps(TANH_POLY[0]);
        for &coefficient in &TANH_POLY[1..] {
            poly = _mm512_fmadd_ps(poly, x2, _mm512_set1_ps(coefficient));
        }
        let small = _mm512_fmadd_ps(_mm512_mul_ps(poly, x2), magnitude, magnitude);

        let use_small =
            _mm512_cmp_ps_mask::<_CMP_LT_OQ>(magnitude, _mm512_set1_ps(TANH_POLY_LIMIT));
        let unsigned = _mm512_mask_blend_ps(use_small, large, small);
        _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(unsigned), sign))
    }
}

/// The checks every vector version passes, written once: each instruction set's module runs
/// them on the target that compiles it (x86-64 natively, aarch64 under QEMU, wasm32 under the
/// WASI runner; see `.ci/run`). `f` maps `L` lanes at once.
#[cfg(all(
    test,
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        all(target_arch = "wasm32", target_feature = "simd128")
    )
))]
pub(crate) mod tests {
    /// Distance in units in the last place between two finite floats of the same sign.
    fn ulps(a: f32, b: f32) -> u32 {
        if a == b {
            return 0;
        }
        assert_eq!(a.is_sign_negative(), b.is_sign_negative(), "{a} vs {b}");
        a.to_bits().abs_diff(b.to_bits())
    }

    /// Largest error over a dense sweep of [−limit, limit], exact values from f64.
    fn max_ulps<const L: usize>(
        f: impl Fn([f32; L]) -> [f32; L],
        exact: fn(f64) -> f64,
        limit: f32,
    ) -> u32 {
        let steps = 200_000;
        let mut worst = 0;
        for i in (0..=steps).step_by(L) {
            let xs: [f32; L] =
                std::array::from_fn(|l| -limit + 2.0 * limit * (i + l) as f32 / steps as f32);
            for (&x, &y) in xs.iter().zip(&f(xs)) {
                worst = worst.max(ulps(y, exact(f64::from(x)) as f32));
            }
        }
        worst
    }

    /// `f` applied to `xs`, `L` at a time (the last chunk padded with zeros, whose results are dropped).
    fn apply<const L: usize>(f: impl Fn([f32; L]) -> [f32; L], xs: &[f32]) -> Vec<f32> {
        let mut padded = xs.to_vec();
        padded.resize(xs.len().div_ceil(L) * L, 0.0);
        let mut out: Vec<f32> = padded
            .chunks_exact(L)
            .flat_map(|chunk| f(chunk.try_into().expect("L lanes")))
            .collect();
        out.truncate(xs.len());
        out
    }

    pub(crate) fn check_sigmoid<const L: usize>(sigmoid: impl Fn([f32; L]) -> [f32; L]) {
        let exact = |x: f64| 1.0 / (1.0 + (-x).exp());
        assert!(max_ulps(&sigmoid, exact, 30.0) <= 2);
        assert!(max_ulps(&sigmoid, exact, 1.0) <= 2);
    }

    pub(crate) fn check_tanh<const L: usize>(tanh: impl Fn([f32; L]) -> [f32; L]) {
        assert!(max_ulps(&tanh, f64::tanh, 10.0) <= 2);
        assert!(max_ulps(&tanh, f64::tanh, 0.7) <= 2);
    }

    /// Far outside the polynomial's range: 0 and 1 (σ), ±1 (tanh), never NaN; tanh keeps −0.
    pub(crate) fn check_saturation<const L: usize>(
        sigmoid: impl Fn([f32; L]) -> [f32; L],
        tanh: impl Fn([f32; L]) -> [f32; L],
    ) {
        let xs = [-1e30f32, -200.0, -88.0, -0.0, 0.0, 88.0, 200.0, 1e30];
        let s = apply(sigmoid, &xs);
        assert!(s.iter().all(|v| (0.0..=1.0).contains(v)) && s[0] < 1e-37 && s[7] == 1.0);
        let t = apply(tanh, &xs);
        assert_eq!(
            (t[0], t[7], t[3].to_bits(), t[4]),
            (-1.0, 1.0, (-0.0f32).to_bits(), 0.0)
        );
    }

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use std::arch::x86_64::*;

        use super::super::{avx2, avx512};
        use super::{apply, check_saturation, check_sigmoid, check_tanh};

        fn has_avx2_fma() -> bool {
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
        }

        fn has_avx512() -> bool {
            has_avx2_fma() && is_x86_feature_detected!("avx512f")
        }

        /// `f` on eight lanes; only called once `has_avx2_fma` said yes.
        fn lanes(f: unsafe fn(__m256) -> __m256) -> impl Fn([f32; 8]) -> [f32; 8] {
            move |xs| {
                let mut out = [0.0f32; 8];
                // SAFETY: the CPU has AVX2 and FMA (checked by every test before it calls this).
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), f(_mm256_loadu_ps(xs.as_ptr()))) };
                out
            }
        }

        /// `f` on sixteen lanes; only called once `has_avx512` said yes.
        fn lanes16(f: unsafe fn(__m512) -> __m512) -> impl Fn([f32; 16]) -> [f32; 16] {
            move |xs| {
                let mut out = [0.0f32; 16];
                // SAFETY: the CPU has AVX-512F (checked by every test before it calls this).
                unsafe { _mm512_storeu_ps(out.as_mut_ptr(), f(_mm512_loadu_ps(xs.as_ptr()))) };
                out
            }
        }

        #[test]
        fn vector_sigmoid_is_within_two_ulp() {
            if has_avx2_fma() {
                check_sigmoid(lanes(avx2::sigmoid));
            }
        }

        #[test]
        fn vector_tanh_is_within_two_ulp() {
            if has_avx2_fma() {
                check_tanh(lanes(avx2::tanh));
            }
        }

        #[test]
        fn vector_activations_saturate_without_nan() {
            if has_avx2_fma() {
                check_saturation(lanes(avx2::sigmoid), lanes(avx2::tanh));
            }
        }

        #[test]
        fn avx512_activations_pass_the_shared_checks() {
            if has_avx512() {
                check_sigmoid(lanes16(avx512::sigmoid));
                check_tanh(lanes16(avx512::tanh));
                check_saturation(lanes16(avx512::sigmoid), lanes16(avx512::tanh));
            }
        }

        /// The cell epilogues mix widths (16 lanes where a block allows, else 8), and the
        /// streaming step and the batched pass must agree bit for bit: so must the two versions.
        #[test]
        fn avx512_activations_equal_the_avx2_ones_bit_for_bit() {
            if !has_avx512() {
                return;
            }
            let mut xs: Vec<f32> = (0..100_000)
                .map(|i| -40.0 + 80.0 * i as f32 / 100_000.0)
                .collect();
            xs.extend([
                -1e30, -200.0, -88.0, -0.0, 0.0, 0.625, -0.625, 88.0, 200.0, 1e30,
            ]);
            xs.extend([
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                1e-30,
                -1e-30,
                0.1,
            ]);
            let pairs = [
                (lanes16(avx512::sigmoid), lanes(avx2::sigmoid)),
                (lanes16(avx512::tanh), lanes(avx2::tanh)),
            ];
            for (f, (wide, narrow)) in pairs.into_iter().enumerate() {
                let (wide, narrow) = (apply(wide, &xs), apply(narrow, &xs));
                for ((x, a), b) in xs.iter().zip(&wide).zip(&narrow) {
                    assert_eq!(a.to_bits(), b.to_bits(), "function {f} at {x}");
                }
            }
        }
    }
}
