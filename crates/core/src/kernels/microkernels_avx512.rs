//! The AVX-512 `f32` micro-kernel, 8 × 32, in both A layouts of
//! [`super::microkernels`].
//!
//! x86-64 with AVX-512 has 32 zmm registers of sixteen `f32`. The tile keeps
//! sixteen accumulators (8 rows × 2 vectors): enough independent FMA chains
//! for a four-cycle latency on two 512-bit FMA ports, with each B vector
//! reused by eight rows and each A value broadcast straight from memory into
//! its FMA. Measured on this project's Sapphire-Rapids-class machine (single
//! thread, 512³, fastest of 15; see BENCHMARKS.md "AVX-512 micro-kernel"),
//! 8 × 32 beat 12 × 32, 14 × 32, 16 × 16 and 24 × 16 (taller tiles spend
//! their extra rows on broadcast loads, and 12 rows do not divide a batch
//! of 64); 8 × 48 was as fast but its 48-column panels would not divide the
//! recurrent step's per-thread column ranges.

use std::arch::x86_64::*;

use super::microkernels::{a_strides, MicroKernel, MAX_MR, MAX_NR, ROW_PANELS};

const AVX512_MR: usize = 8;
/// Vectors of sixteen `f32` per tile row.
const VECTORS: usize = 2;
const AVX512_NR: usize = 16 * VECTORS;
const _: () = assert!(AVX512_MR <= MAX_MR && AVX512_NR <= MAX_NR);

pub(crate) static AVX512_F32: MicroKernel<f32> = MicroKernel {
    mr: AVX512_MR,
    nr: AVX512_NR,
    packed: avx512_f32_8x32::<true>,
    in_place: avx512_f32_8x32::<false>,
    row: Some(avx512_f32_row),
    short: &[],
};

/// The [`super::microkernels::RowKernelFn`] of [`AVX512_F32`]: a row against up to
/// [`ROW_PANELS`] panels of 32 columns, eight accumulator chains when all four are there.
///
/// # Safety
/// See [`super::microkernels::RowKernelFn`]; the CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn avx512_f32_row(k: usize, a: *const f32, b: *const f32, panels: usize, out: *mut f32) {
    // SAFETY (whole body): the caller guarantees k values of a, the panels and out, and AVX-512F.
    unsafe {
        if panels == ROW_PANELS {
            row_panels::<ROW_PANELS>(k, a, b, out);
        } else {
            for q in 0..panels {
                row_panels::<1>(k, a, b.add(q * k * AVX512_NR), out.add(q * AVX512_NR));
            }
        }
    }
}

/// [`avx512_f32_row`] for exactly `P` panels.
///
/// # Safety
/// As [`avx512_f32_row`] with `panels` = `P`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn row_panels<const P: usize>(k: usize, a: *const f32, b: *const f32, out: *mut f32) {
    // SAFETY (whole body): per the caller.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); VECTORS]; P];
        for p in 0..k {
            // As the tile kernel: acc = a(p)·b(p, j) + acc, one step at a time.
            let a_p = _mm512_set1_ps(*a.add(p));
            for (q, acc_q) in acc.iter_mut().enumerate() {
                let b_row = b.add(q * k * AVX512_NR + p * AVX512_NR);
                for (v, acc) in acc_q.iter_mut().enumerate() {
                    *acc = _mm512_fmadd_ps(a_p, _mm512_loadu_ps(b_row.add(16 * v)), *acc);
                }
            }
        }
        for (q, acc_q) in acc.iter().enumerate() {
            for (v, &sum) in acc_q.iter().enumerate() {
                _mm512_storeu_ps(out.add(q * AVX512_NR + 16 * v), sum);
            }
        }
    }
}

/// The AVX-512 `f32` kernel, 8 × 32, unrolled by four k steps.
///
/// # Safety
/// See [`super::microkernels::MicroKernelFn`]; the CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn avx512_f32_8x32<const PACKED: bool>(
    k: usize,
    a: *const f32,
    lda: isize,
    b: *const f32,
    c: *mut f32,
    rs_c: isize,
    accumulate: bool,
) {
    let (rs_a, cs_a) = a_strides::<PACKED>(AVX512_MR, lda);
    let rows: [*const f32; AVX512_MR] =
        std::array::from_fn(|r| a.wrapping_offset(r as isize * rs_a));
    // SAFETY (whole body): the caller guarantees k steps of A and B, a writable
    // 8 × 32 tile of C, and AVX-512F.
    unsafe {
        // As in the AVX2 kernel: fetch the C tile now, its miss hides behind the products.
        for r in 0..AVX512_MR {
            let c_row = c.offset(r as isize * rs_c);
            for v in 0..VECTORS {
                _mm_prefetch::<_MM_HINT_T0>(c_row.add(16 * v).cast());
            }
        }
        let mut acc = [[_mm512_setzero_ps(); VECTORS]; AVX512_MR];
        // A macro, not a closure: the body must be compiled with the function's target features.
        macro_rules! step {
            ($p:expr) => {{
                let p: usize = $p;
                let b_row: [__m512; VECTORS] =
                    std::array::from_fn(|v| _mm512_loadu_ps(b.add(p * AVX512_NR + 16 * v)));
                for (row, acc_row) in rows.iter().zip(acc.iter_mut()) {
                    let a_rp = _mm512_set1_ps(*row.offset(p as isize * cs_a));
                    for (acc, &b_v) in acc_row.iter_mut().zip(&b_row) {
                        *acc = _mm512_fmadd_ps(a_rp, b_v, *acc);
                    }
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
            for (v, &sum) in acc_row.iter().enumerate() {
                let out = c_row.add(16 * v);
                let value = if accumulate {
                    _mm512_add_ps(sum, _mm512_loadu_ps(out))
                } else {
                    sum
                };
                _mm512_storeu_ps(out, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::microkernels::tests::{check_gemm, check_row_kernel, check_tile};
    use crate::kernels::Isa;

    fn has_avx512() -> bool {
        is_x86_feature_detected!("avx512f")
    }

    #[test]
    fn both_forms_match_a_scalar_reference_for_every_k_tail() {
        if has_avx512() {
            check_tile(&AVX512_F32);
        }
    }

    /// Each row of a tile, bit for bit, from the row kernel: one to four panels, k tails.
    #[test]
    fn the_row_kernel_gives_a_tiles_rows_bit_for_bit() {
        if has_avx512() {
            check_row_kernel(&AVX512_F32);
        }
    }

    /// Edge tiles in both directions and a k-block tail.
    #[test]
    fn gemm_matches_the_portable_kernel_in_both_a_layouts() {
        if has_avx512() {
            check_gemm(Isa::Avx512, &[(19, 261, 45), (64, 300, 1024), (3, 5, 7)]);
        }
    }
}
