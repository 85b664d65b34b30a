//! [`Lanes`] of four `f32` in a WebAssembly `v128`, the wasm32 counterpart of
//! `F32x8`: the cell epilogues (LSTM, GRU, simple RNN) run on these when the
//! module is built with simd128.

use std::arch::wasm32::*;
use std::ops::{Add, Mul, Sub};

use super::activations_simd128;
use super::lanes::Lanes;

/// Four `f32` in a `v128`. simd128 is enabled at compile time (the module
/// exists only then), so unlike `F32x8` no method has a CPU-feature precondition.
#[derive(Clone, Copy)]
pub(crate) struct F32x4(v128);

impl Add for F32x4 {
    type Output = F32x4;
    #[inline(always)]
    fn add(self, other: F32x4) -> F32x4 {
        F32x4(f32x4_add(self.0, other.0))
    }
}

impl Sub for F32x4 {
    type Output = F32x4;
    #[inline(always)]
    fn sub(self, other: F32x4) -> F32x4 {
        F32x4(f32x4_sub(self.0, other.0))
    }
}

impl Mul for F32x4 {
    type Output = F32x4;
    #[inline(always)]
    fn mul(self, other: F32x4) -> F32x4 {
        F32x4(f32x4_mul(self.0, other.0))
    }
}

impl Lanes for F32x4 {
    type Elem = f32;
    const WIDTH: usize = 4;

    #[inline(always)]
    unsafe fn load(p: *const f32) -> F32x4 {
        // SAFETY: per the caller (4 readable floats); v128.load has no alignment requirement.
        F32x4(unsafe { v128_load(p.cast()) })
    }

    #[inline(always)]
    unsafe fn splat(value: f32) -> F32x4 {
        F32x4(f32x4_splat(value))
    }

    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: per the caller (4 writable floats).
        unsafe { v128_store(p.cast(), self.0) }
    }

    /// `self` where `other < self`, else `other`: a NaN in `self` yields `other`, as
    /// `f32::max` and x86's `maxps` do (clipping and ReLU then treat NaN as elsewhere).
    /// The pseudo-maximum is one `maxps` on x86 hosts; `f32x4_max` would propagate the NaN.
    #[inline(always)]
    fn max(self, other: F32x4) -> F32x4 {
        F32x4(f32x4_pmax(other.0, self.0))
    }

    /// `self` where `self < other`, else `other` (NaN as in [`Self::max`]).
    #[inline(always)]
    fn min(self, other: F32x4) -> F32x4 {
        F32x4(f32x4_pmin(other.0, self.0))
    }

    #[inline(always)]
    fn sigmoid(self) -> F32x4 {
        F32x4(activations_simd128::sigmoid(self.0))
    }

    #[inline(always)]
    fn tanh(self) -> F32x4 {
        F32x4(activations_simd128::tanh(self.0))
    }

    #[inline(always)]
    fn sum(self) -> f32 {
        let v = self.0;
        (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v))
            + (f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(v: F32x4) -> [f32; 4] {
        let mut out = [0.0f32; 4];
        // SAFETY: the array holds four floats.
        unsafe { v.store(out.as_mut_ptr()) };
        out
    }

    /// max/min against `f32::max`/`f32::min` where the NaN is in `self` (a pre-activation or a
    /// gradient; `other` is a constant: 0 for ReLU, ±clip), and on ordinary values.
    #[test]
    fn max_and_min_treat_a_nan_in_self_as_f32_does() {
        let xs = [f32::NAN, -1.5, 0.25, 3.0];
        // SAFETY: four readable floats.
        let x = unsafe { F32x4::load(xs.as_ptr()) };
        // SAFETY: no precondition beyond simd128, enabled at compile time.
        let bound = unsafe { F32x4::splat(0.5) };
        let (max, min) = (lanes(x.max(bound)), lanes(x.min(bound)));
        for (l, &v) in xs.iter().enumerate() {
            assert_eq!(max[l], v.max(0.5), "max lane {l}");
            assert_eq!(min[l], v.min(0.5), "min lane {l}");
        }
        assert_eq!(x.min(bound).max(bound).sum(), 2.0);
    }
}
