//! CPU kernels behind the recurrent layers: a packed, blocked GEMM with SIMD
//! micro-kernels, vectorised activations, and the lock-step scheduler that
//! runs a recurrence's time steps on several threads.
//!
//! Instruction sets are chosen at run time ([`Isa::current`]): on x86-64 an
//! AVX-512 GEMM micro-kernel (`microkernels_avx512`) where the CPU has
//! AVX-512F, AVX2 + FMA kernels for everything else there (and on CPUs
//! without AVX-512), NEON kernels on every aarch64 CPU (the `*_neon`
//! modules), portable Rust everywhere else (and for `f64`). The binary is
//! never compiled for a newer CPU than the target's baseline, so it runs
//! everywhere and never executes an illegal instruction. WebAssembly cannot
//! detect features at run time (a module using an unknown instruction fails
//! to load), so there the choice is made at compile time: the `*_simd128`
//! kernels when the module is built with `simd128` (as `npm run build:wasm`
//! does, see `.cargo/config.toml`), else the portable ones. The environment
//! variable `ODYSSEY_KERNELS=generic` forces the portable kernels, and
//! `ODYSSEY_KERNELS=avx2` the AVX2 ones on an AVX-512 CPU (to test them, or
//! to compare).

pub(crate) mod activations;
#[cfg(target_arch = "aarch64")]
pub(crate) mod activations_neon;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) mod activations_simd128;
pub(crate) mod dot;
#[cfg(target_arch = "x86_64")]
pub(crate) mod dot_avx512;
#[cfg(target_arch = "aarch64")]
pub(crate) mod dot_neon;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) mod dot_simd128;
pub(crate) mod gemm;
pub(crate) mod lanes;
#[cfg(target_arch = "aarch64")]
pub(crate) mod lanes_neon;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) mod lanes_simd128;
pub(crate) mod lockstep;
pub(crate) mod microkernels;
#[cfg(target_arch = "x86_64")]
pub(crate) mod microkernels_avx512;
#[cfg(target_arch = "aarch64")]
pub(crate) mod microkernels_neon;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) mod microkernels_simd128;
pub(crate) mod pack;
pub(crate) mod sums;

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
    /// x86-64 with AVX-512F as well (Skylake-SP, Ice Lake, Zen 4 and later).
    Avx512,
    /// aarch64's Advanced SIMD (NEON), present on every aarch64 CPU.
    Neon,
    /// WebAssembly's 128-bit SIMD, when the module is compiled with it.
    Simd128,
}

impl Isa {
    /// The best instruction set this CPU supports (on wasm32, the one the module was
    /// compiled for), detected once per process; `ODYSSEY_KERNELS=generic` forces
    /// [`Isa::Generic`], `ODYSSEY_KERNELS=avx2` [`Isa::Avx2Fma`] on a CPU that has AVX-512.
    pub fn current() -> Isa {
        static CURRENT: OnceLock<Isa> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            let detected = Isa::detect();
            match std::env::var("ODYSSEY_KERNELS").as_deref() {
                Ok("generic") => Isa::Generic,
                Ok("avx2") if detected == Isa::Avx512 => Isa::Avx2Fma,
                _ => detected,
            }
        })
    }

    /// Whether the AVX2 + FMA kernels may run: also on AVX-512 CPUs, for the
    /// kernels that have no AVX-512 form.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn has_avx2_fma(self) -> bool {
        matches!(self, Isa::Avx2Fma | Isa::Avx512)
    }

    fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                if is_x86_feature_detected!("avx512f") {
                    return Isa::Avx512;
                }
                return Isa::Avx2Fma;
            }
        }
        #[cfg(target_arch = "aarch64")]
        return Isa::Neon;
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return Isa::Simd128;
        #[cfg(not(any(
            target_arch = "aarch64",
            all(target_arch = "wasm32", target_feature = "simd128")
        )))]
        Isa::Generic
    }
}

/// Whether `F` is `f32`, whose data the `f32`-only SIMD kernels may take
/// (see [`retype`]); lets generic code dispatch without adding bounds to the
/// public `Scalar` API.
pub(crate) fn is_f32<F: Scalar>() -> bool {
    TypeId::of::<F>() == TypeId::of::<f32>()
}

/// Moves `value` into the type `U`.
///
/// # Safety
/// `T` and `U` must be the same type (e.g. `Row<'a, F>` and `Row<'a, f32>`
/// after [`is_f32::<F>`] returned true).
pub(crate) unsafe fn retype<T, U>(value: T) -> U {
    assert_eq!(
        std::mem::size_of::<T>(),
        std::mem::size_of::<U>(),
        "retype between different types"
    );
    let value = std::mem::ManuallyDrop::new(value);
    // SAFETY: T and U are the same type (caller's contract), so the bits are a valid U,
    // and the original is not dropped.
    unsafe { std::ptr::read((&*value as *const T).cast::<U>()) }
}
