//! "A few floats side by side": elementwise math is written once against
//! [`Lanes`] and runs either one scalar at a time (any float type, any CPU)
//! or eight `f32` at a time in AVX2 registers (`F32x8`), sixteen in AVX-512
//! ones (`F32x16`), or four in NEON registers on aarch64 or simd128 ones on
//! wasm32 (`F32x4`).

use std::ops::{Add, Mul, Sub};

use num_traits::Float;

use super::activations;
use crate::Scalar;

/// `WIDTH` values of `Elem` processed together.
pub(crate) trait Lanes:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self>
{
    type Elem: Scalar;
    const WIDTH: usize;

    /// # Safety
    /// `p` must be readable for `WIDTH` elements, and the CPU must support the lanes' instructions.
    unsafe fn load(p: *const Self::Elem) -> Self;

    /// # Safety
    /// The CPU must support the lanes' instructions.
    unsafe fn splat(value: Self::Elem) -> Self;

    /// # Safety
    /// `p` must be writable for `WIDTH` elements.
    unsafe fn store(self, p: *mut Self::Elem);

    fn max(self, other: Self) -> Self;
    fn min(self, other: Self) -> Self;
    fn sigmoid(self) -> Self;
    fn tanh(self) -> Self;
    /// The sum of the lanes.
    fn sum(self) -> Self::Elem;
}

impl<F: Scalar> Lanes for F {
    type Elem = F;
    const WIDTH: usize = 1;

    #[inline(always)]
    unsafe fn load(p: *const F) -> F {
        // SAFETY: per the caller.
        unsafe { *p }
    }

    #[inline(always)]
    unsafe fn splat(value: F) -> F {
        value
    }

    #[inline(always)]
    unsafe fn store(self, p: *mut F) {
        // SAFETY: per the caller.
        unsafe { *p = self }
    }

    #[inline(always)]
    fn max(self, other: F) -> F {
        Float::max(self, other)
    }

    #[inline(always)]
    fn min(self, other: F) -> F {
        Float::min(self, other)
    }

    #[inline(always)]
    fn sigmoid(self) -> F {
        activations::sigmoid(self)
    }

    #[inline(always)]
    fn tanh(self) -> F {
        Float::tanh(self)
    }

    #[inline(always)]
    fn sum(self) -> F {
        self
    }
}

/// Lanes `at..` of `values`.
///
/// # Safety
/// `values` must hold `at + V::WIDTH` elements, and the CPU must support `V`.
#[inline(always)]
pub(crate) unsafe fn load<V: Lanes>(values: &[V::Elem], at: usize) -> V {
    debug_assert!(at + V::WIDTH <= values.len());
    // SAFETY: per the caller.
    unsafe { V::load(values.as_ptr().add(at)) }
}

/// Stores `value` at lanes `at..` of `values`.
///
/// # Safety
/// `values` must hold `at + V::WIDTH` elements.
#[inline(always)]
pub(crate) unsafe fn store<V: Lanes>(value: V, values: &mut [V::Elem], at: usize) {
    debug_assert!(at + V::WIDTH <= values.len());
    // SAFETY: per the caller.
    unsafe { value.store(values.as_mut_ptr().add(at)) }
}

#[cfg(target_arch = "aarch64")]
pub(crate) use super::lanes_neon::F32x4;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) use super::lanes_simd128::F32x4;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{F32x16, F32x8};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::ops::{Add, Mul, Sub};

    use super::{activations, Lanes};

    /// Eight `f32` in an AVX register. A value only exists after [`Lanes::load`] or
    /// [`Lanes::splat`], whose contract requires AVX2 and FMA, so every method
    /// on an existing value may use those instructions.
    #[derive(Clone, Copy)]
    pub(crate) struct F32x8(__m256);

    impl Add for F32x8 {
        type Output = F32x8;
        #[inline(always)]
        fn add(self, other: F32x8) -> F32x8 {
            // SAFETY: AVX is present (see the type's doc).
            F32x8(unsafe { _mm256_add_ps(self.0, other.0) })
        }
    }

    impl Sub for F32x8 {
        type Output = F32x8;
        #[inline(always)]
        fn sub(self, other: F32x8) -> F32x8 {
            // SAFETY: AVX is present (see the type's doc).
            F32x8(unsafe { _mm256_sub_ps(self.0, other.0) })
        }
    }

    impl Mul for F32x8 {
        type Output = F32x8;
        #[inline(always)]
        fn mul(self, other: F32x8) -> F32x8 {
            // SAFETY: AVX is present (see the type's doc).
            F32x8(unsafe { _mm256_mul_ps(self.0, other.0) })
        }
    }

    impl Lanes for F32x8 {
        type Elem = f32;
        const WIDTH: usize = 8;

        #[inline(always)]
        unsafe fn load(p: *const f32) -> F32x8 {
            // SAFETY: per the caller (8 readable floats, AVX present).
            F32x8(unsafe { _mm256_loadu_ps(p) })
        }

        #[inline(always)]
        unsafe fn splat(value: f32) -> F32x8 {
            // SAFETY: per the caller (AVX present).
            F32x8(unsafe { _mm256_set1_ps(value) })
        }

        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: per the caller (8 writable floats); AVX per the type's doc.
            unsafe { _mm256_storeu_ps(p, self.0) }
        }

        #[inline(always)]
        fn max(self, other: F32x8) -> F32x8 {
            // SAFETY: AVX is present (see the type's doc).
            F32x8(unsafe { _mm256_max_ps(self.0, other.0) })
        }

        #[inline(always)]
        fn min(self, other: F32x8) -> F32x8 {
            // SAFETY: AVX is present (see the type's doc).
            F32x8(unsafe { _mm256_min_ps(self.0, other.0) })
        }

        #[inline(always)]
        fn sigmoid(self) -> F32x8 {
            // SAFETY: AVX2 and FMA are present (see the type's doc).
            F32x8(unsafe { activations::avx2::sigmoid(self.0) })
        }

        #[inline(always)]
        fn tanh(self) -> F32x8 {
            // SAFETY: AVX2 and FMA are present (see the type's doc).
            F32x8(unsafe { activations::avx2::tanh(self.0) })
        }

        #[inline(always)]
        fn sum(self) -> f32 {
            let mut lanes = [0.0f32; 8];
            // SAFETY: the array holds 8 floats; AVX per the type's doc.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), self.0) };
            lanes.iter().sum()
        }
    }

    /// Sixteen `f32` in an AVX-512 register. As [`F32x8`]: a value only exists after
    /// [`Lanes::load`] or [`Lanes::splat`], whose contract requires AVX-512F, so every
    /// method on an existing value may use it. Its σ and tanh equal `F32x8`'s bit for bit.
    #[derive(Clone, Copy)]
    pub(crate) struct F32x16(__m512);

    impl Add for F32x16 {
        type Output = F32x16;
        #[inline(always)]
        fn add(self, other: F32x16) -> F32x16 {
            // SAFETY: AVX-512F is present (see the type's doc).
            F32x16(unsafe { _mm512_add_ps(self.0, other.0) })
        }
    }

    impl Sub for F32x16 {
        type Output = F32x16;
        #[inline(always)]
        fn sub(self, other: F32x16) -> F32x16 {
            // SAFETY: AVX-512F is present (see the type's doc).
            F32x16(unsafe { _mm512_sub_ps(self.0, other.0) })
        }
    }

    impl Mul for F32x16 {
        type Output = F32x16;
        #[inline(always)]
        fn mul(self, other: F32x16) -> F32x16 {
            // SAFETY: AVX-512F is present (see the type's doc).
            F32x16(unsafe { _mm512_mul_ps(self.0, other.0) })
        }
    }

    impl Lanes for F32x16 {
        type Elem = f32;
        const WIDTH: usize = 16;

        #[inline(always)]
        unsafe fn load(p: *const f32) -> F32x16 {
            // SAFETY: per the caller (16 readable floats, AVX-512F present).
            F32x16(unsafe { _mm512_loadu_ps(p) })
        }

        #[inline(always)]
        unsafe fn splat(value: f32) -> F32x16 {
            // SAFETY: per the caller (AVX-512F present).
            F32x16(unsafe { _mm512_set1_ps(value) })
        }

        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: per the caller (16 writable floats); AVX-512F per the type's doc.
            unsafe { _mm512_storeu_ps(p, self.0) }
        }

        #[inline(always)]
        fn max(self, other: F32x16) -> F32x16 {
            // SAFETY: AVX-512F is present (see the type's doc).
            F32x16(unsafe { _mm512_max_ps(self.0, other.0) })
        }

        #[inline(always)]
        fn min(self, other: F32x16) -> F32x16 {
            // SAFETY: AVX-512F is present (see the type's doc).
            F32x16(unsafe { _mm512_min_ps(self.0, other.0) })
        }

        #[inline(always)]
        fn sigmoid(self) -> F32x16 {
            // SAFETY: AVX-512F is present (see the type's doc).
            F32x16(unsafe { activations::avx512::sigmoid(self.0) })
        }

        #[inline(always)]
        fn tanh(self) -> F32x16 {
            // SAFETY: AVX-512F is present (see the type's doc).
            F32x16(unsafe { activations::avx512::tanh(self.0) })
        }

        #[inline(always)]
        fn sum(self) -> f32 {
            let mut lanes = [0.0f32; 16];
            // SAFETY: the array holds 16 floats; AVX-512F per the type's doc.
            unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), self.0) };
            lanes.iter().sum()
        }
    }
}
