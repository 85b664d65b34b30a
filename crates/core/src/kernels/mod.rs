//! CPU kernels behind the recurrent layers: a packed, blocked GEMM with SIMD
//! micro-kernels, vectorised activations, and the lock-step scheduler that
//! runs a recurrence's time steps on several threads.
//!
//! Instruction sets are chosen at run time ([`Isa::current`]): AVX2 + FMA
//! kernels on x86-64 CPUs that have them, portable Rust everywhere else (and
//! for `f64`). The binary is never compiled for a newer CPU than the target's
//! baseline, so it runs everywhere and never executes an illegal instruction.
//! Setting the environment variable `ODYSSEY_KERNELS=generic` forces the
//! portable kernels (to test them, or to compare).

pub(crate) mod activations;
mod gemm;
pub(crate) mod lanes;
pub(crate) mod lockstep;
mod microkernels;
pub(crate) mod pack;

pub use gemm::{gemm, gemm_on};

use std::any::TypeId;
use std::sync::OnceLock;

use crate::Scalar;

/// The instruction set a kernel is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable Rust (auto-vectorised for the target's baseline only).
    Generic,
    /// x86-64 with AVX2 and FMA (Haswell, Zen and later).
    Avx2Fma,
}

impl Isa {
    /// The best instruction set this CPU supports, detected once per process;
    /// `ODYSSEY_KERNELS=generic` forces [`Isa::Generic`].
    pub fn current() -> Isa {
        static CURRENT: OnceLock<Isa> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            let forced_generic = std::env::var("ODYSSEY_KERNELS").is_ok_and(|v| v == "generic");
            if forced_generic {
                Isa::Generic
            } else {
                Isa::detect()
            }
        })
    }

    fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2Fma;
            }
        }
        Isa::Generic
    }
}

/// `Some` exactly when `F` is `f32`: lets generic code hand its data to the
/// `f32`-only SIMD kernels without adding bounds to the public `Scalar` API.
pub(crate) fn as_f32_slice<F: Scalar>(values: &[F]) -> Option<&[f32]> {
    (TypeId::of::<F>() == TypeId::of::<f32>()).then(|| {
        // SAFETY: F is f32 (same TypeId), so the pointer, length and lifetime are those of a `&[f32]`.
        unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<f32>(), values.len()) }
    })
}

/// `Some` exactly when `F` is `f32`; the pointer is the same.
pub(crate) fn as_f32_ptr<F: Scalar>(p: *const F) -> Option<*const f32> {
    (TypeId::of::<F>() == TypeId::of::<f32>()).then_some(p.cast())
}

/// `Some` exactly when `F` is `f32`; the pointer is the same.
pub(crate) fn as_f32_mut_ptr<F: Scalar>(p: *mut F) -> Option<*mut f32> {
    (TypeId::of::<F>() == TypeId::of::<f32>()).then_some(p.cast())
}
