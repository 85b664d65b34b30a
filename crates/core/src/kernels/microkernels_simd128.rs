//! The WebAssembly simd128 `f32` micro-kernel, in both A layouts of
//! [`super::microkernels`].
//!
//! WebAssembly has no register file of its own: the engine maps `v128`
//! locals onto the host's vector registers, 16 on x86-64 (V8 keeps one as
//! scratch) and 32 on arm64. The tile must fit the smaller file, so it is the
//! AVX2 kernel's shape at half the width, 6 × 8: twelve accumulators, two B
//! vectors and one broadcast A value (15 registers), where the NEON kernel's
//! 8 × 8 (sixteen accumulators) would spill on x86-64 hosts. simd128 has no
//! fused multiply-add: in the plain module each step is a multiply and an add
//! (whose product needs a 16th register on x86-64); the module built with
//! relaxed SIMD too uses `f32x4.relaxed_madd` ([`madd`]), which fuses on hosts
//! with FMA, so its results differ from the plain module's by rounding. A's
//! value is broadcast by `v128.load32_splat`, one instruction on both hosts, in
//! either layout.

use std::arch::wasm32::*;

use super::microkernels::{MicroKernel, MAX_MR, MAX_NR};

/// `c + a·b` per lane: a multiply and an add, or with relaxed-simd enabled at compile time
/// (the second module `npm run build:wasm` builds, for engines that validate it) one
/// `f32x4.relaxed_madd`, which V8 fuses on x86-64 hosts with FMA and arm64 (twice the
/// multiply-add rate); an engine may also run it unfused, so its results agree to rounding.
#[inline(always)]
pub(crate) fn madd(a: v128, b: v128, c: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    return f32x4_relaxed_madd(a, b, c);
    #[cfg(not(target_feature = "relaxed-simd"))]
    f32x4_add(c, f32x4_mul(a, b))
}

const SIMD128_MR: usize = 6;
const SIMD128_NR: usize = 8;
const _: () = assert!(SIMD128_MR <= MAX_MR && SIMD128_NR <= MAX_NR);

pub(crate) static SIMD128_F32: MicroKernel<f32> = MicroKernel {
    mr: SIMD128_MR,
    nr: SIMD128_NR,
    packed: simd128_f32_6x8::<true>,
    in_place: simd128_f32_6x8::<false>,
    row: None,
    short: &[],
};

/// `C[0..MR, 0..NR] = (accumulate ? C : 0) + A·B` (see [`super::microkernels::MicroKernelFn`]).
///
/// # Safety
/// See [`super::microkernels::MicroKernelFn`]; simd128 is enabled at compile time.
unsafe fn simd128_f32_6x8<const PACKED: bool>(
    k: usize,
    a: *const f32,
    lda: isize,
    b: *const f32,
    c: *mut f32,
    rs_c: isize,
    accumulate: bool,
) {
    // (row stride, k stride) of A.
    let (rs_a, cs_a) = if PACKED {
        (1, SIMD128_MR as isize)
    } else {
        (lda, 1)
    };
    let rows: [*const f32; SIMD128_MR] =
        std::array::from_fn(|r| a.wrapping_offset(r as isize * rs_a));
    let mut acc = [[f32x4_splat(0.0); 2]; SIMD128_MR];
    // SAFETY (whole block): the caller guarantees k steps of A in the form's layout, k rows
    // of the packed B panel (NR floats each) and a writable MR × NR tile of C.
    unsafe {
        macro_rules! step {
            ($p:expr) => {{
                let p: usize = $p;
                let b0 = v128_load(b.add(p * SIMD128_NR).cast());
                let b1 = v128_load(b.add(p * SIMD128_NR + 4).cast());
                for (row, acc_row) in rows.iter().zip(acc.iter_mut()) {
                    let a_rp = v128_load32_splat(row.offset(p as isize * cs_a).cast());
                    acc_row[0] = madd(a_rp, b0, acc_row[0]);
                    acc_row[1] = madd(a_rp, b1, acc_row[1]);
                }
            }};
        }
        let mut p = 0;
        while p + 4 <= k {
            step!(p);
            step!(p + 1);
            step!(p + 2);
            step!(p + 3);
            p += 4;
        }
        while p < k {
            step!(p);
            p += 1;
        }
        for (r, acc_row) in acc.iter().enumerate() {
            let c_row = c.offset(r as isize * rs_c);
            let (mut lo, mut hi) = (acc_row[0], acc_row[1]);
            if accumulate {
                lo = f32x4_add(lo, v128_load(c_row.cast()));
                hi = f32x4_add(hi, v128_load(c_row.add(4).cast()));
            }
            v128_store(c_row.cast(), lo);
            v128_store(c_row.add(4).cast(), hi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::microkernels::tests::{check_gemm, check_tile};
    use crate::kernels::Isa;

    #[test]
    fn both_forms_match_a_scalar_reference_for_every_k_tail() {
        check_tile(&SIMD128_F32);
    }

    /// Edge tiles in both dimensions (19 = 3·6 + 1 rows, 21 = 2·8 + 5 columns).
    #[test]
    fn gemm_in_both_a_layouts_matches_the_portable_kernel() {
        check_gemm(Isa::Simd128, &[(19, 261, 21)]);
    }
}
