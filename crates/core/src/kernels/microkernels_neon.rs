//! The NEON `f32` micro-kernel, 8 × 8, in both A layouts of
//! [`super::microkernels`].
//!
//! aarch64 has 32 vector registers of four `f32`. The tile keeps sixteen
//! accumulators (8 rows × 2 vectors), enough independent FMA chains to cover
//! a four-cycle FMA latency on four pipes (Apple M-series; Neoverse has two),
//! and leaves room for the in-place form's eight A vectors: there A's rows are
//! contiguous in k, so four k steps of a row load as one vector and each FMA
//! takes its A value by lane (`FMLA v.4s, v.4s, v.s[q]`) instead of a
//! broadcast per element. The packed form loads a k step's eight A values as
//! two vectors and takes them by lane the same way. A wider 8 × 12 tile would need 24 accumulators + 8
//! A vectors + B and spill in that form.

use std::arch::aarch64::*;

use super::microkernels::{MicroKernel, MAX_MR, MAX_NR};

const NEON_MR: usize = 8;
const NEON_NR: usize = 8;
const _: () = assert!(NEON_MR <= MAX_MR && NEON_NR <= MAX_NR);

pub(crate) static NEON_F32: MicroKernel<f32> = MicroKernel {
    mr: NEON_MR,
    nr: NEON_NR,
    packed: neon_f32_8x8_packed,
    in_place: neon_f32_8x8_in_place,
};

/// Sixteen accumulators: row r, columns `4·h .. 4·h + 4` in `acc[r][h]`.
type Accumulators = [[float32x4_t; 2]; NEON_MR];

/// `acc[r] += A[r, p]·B[p]` for the eight rows, A's values in lanes of `a_lo` (rows 0–3)
/// and `a_hi` (rows 4–7) as the packed layout holds them.
macro_rules! fma_rows {
    ($acc:ident, $b:ident, $a_lo:expr, $a_hi:expr) => {{
        let (b0, b1) = $b;
        let (lo, hi) = ($a_lo, $a_hi);
        $acc[0][0] = vfmaq_laneq_f32::<0>($acc[0][0], b0, lo);
        $acc[0][1] = vfmaq_laneq_f32::<0>($acc[0][1], b1, lo);
        $acc[1][0] = vfmaq_laneq_f32::<1>($acc[1][0], b0, lo);
        $acc[1][1] = vfmaq_laneq_f32::<1>($acc[1][1], b1, lo);
        $acc[2][0] = vfmaq_laneq_f32::<2>($acc[2][0], b0, lo);
        $acc[2][1] = vfmaq_laneq_f32::<2>($acc[2][1], b1, lo);
        $acc[3][0] = vfmaq_laneq_f32::<3>($acc[3][0], b0, lo);
        $acc[3][1] = vfmaq_laneq_f32::<3>($acc[3][1], b1, lo);
        $acc[4][0] = vfmaq_laneq_f32::<0>($acc[4][0], b0, hi);
        $acc[4][1] = vfmaq_laneq_f32::<0>($acc[4][1], b1, hi);
        $acc[5][0] = vfmaq_laneq_f32::<1>($acc[5][0], b0, hi);
        $acc[5][1] = vfmaq_laneq_f32::<1>($acc[5][1], b1, hi);
        $acc[6][0] = vfmaq_laneq_f32::<2>($acc[6][0], b0, hi);
        $acc[6][1] = vfmaq_laneq_f32::<2>($acc[6][1], b1, hi);
        $acc[7][0] = vfmaq_laneq_f32::<3>($acc[7][0], b0, hi);
        $acc[7][1] = vfmaq_laneq_f32::<3>($acc[7][1], b1, hi);
    }};
}

/// Row p of the packed B panel (`NR` values).
///
/// # Safety
/// `b` must be readable at `p·NR .. (p + 1)·NR`.
#[inline(always)]
unsafe fn b_row(b: *const f32, p: usize) -> (float32x4_t, float32x4_t) {
    // SAFETY: per the caller.
    unsafe {
        (
            vld1q_f32(b.add(p * NEON_NR)),
            vld1q_f32(b.add(p * NEON_NR + 4)),
        )
    }
}

/// Writes (or adds) the accumulators to the C tile.
///
/// # Safety
/// `c` must be writable at `r·rs_c + j` for `r < MR`, `j < NR`.
#[inline(always)]
unsafe fn store_tile(acc: &Accumulators, c: *mut f32, rs_c: isize, accumulate: bool) {
    for (r, acc_row) in acc.iter().enumerate() {
        // SAFETY: row r of the tile is writable for NR floats (caller).
        unsafe {
            let c_row = c.offset(r as isize * rs_c);
            let (mut lo, mut hi) = (acc_row[0], acc_row[1]);
            if accumulate {
                lo = vaddq_f32(lo, vld1q_f32(c_row));
                hi = vaddq_f32(hi, vld1q_f32(c_row.add(4)));
            }
            vst1q_f32(c_row, lo);
            vst1q_f32(c_row.add(4), hi);
        }
    }
}

/// A packed (`MR` values per k step): two A loads, two B loads, sixteen FMAs per step.
///
/// # Safety
/// See [`super::microkernels::MicroKernelFn`].
unsafe fn neon_f32_8x8_packed(
    k: usize,
    a: *const f32,
    _lda: isize,
    b: *const f32,
    c: *mut f32,
    rs_c: isize,
    accumulate: bool,
) {
    // SAFETY: NEON is present (aarch64 baseline).
    let mut acc: Accumulators = [[unsafe { vdupq_n_f32(0.0) }; 2]; NEON_MR];
    for p in 0..k {
        // SAFETY: step p of the packed sliver (MR floats) and row p of B are in bounds (caller).
        unsafe {
            let b = b_row(b, p);
            let a_p = a.add(p * NEON_MR);
            fma_rows!(acc, b, vld1q_f32(a_p), vld1q_f32(a_p.add(4)));
        }
    }
    // SAFETY: the C tile per the caller.
    unsafe { store_tile(&acc, c, rs_c, accumulate) };
}

/// A in place (rows `lda` apart, k contiguous): four k steps of each row per load.
///
/// # Safety
/// See [`super::microkernels::MicroKernelFn`].
unsafe fn neon_f32_8x8_in_place(
    k: usize,
    a: *const f32,
    lda: isize,
    b: *const f32,
    c: *mut f32,
    rs_c: isize,
    accumulate: bool,
) {
    let rows: [*const f32; NEON_MR] = std::array::from_fn(|r| a.wrapping_offset(r as isize * lda));
    // SAFETY: NEON is present (aarch64 baseline).
    let mut acc: Accumulators = [[unsafe { vdupq_n_f32(0.0) }; 2]; NEON_MR];
    let mut p = 0;
    while p + 4 <= k {
        // SAFETY: elements p .. p + 4 of each of the MR rows of A, and rows p .. p + 4 of B,
        // are in bounds (caller: k steps of each).
        unsafe {
            // a_p[r] lane q = A[r, p + q]: no transpose, the FMA picks the lane.
            let a_p: [float32x4_t; NEON_MR] = std::array::from_fn(|r| vld1q_f32(rows[r].add(p)));
            macro_rules! step {
                ($q:literal) => {{
                    let (b0, b1) = b_row(b, p + $q);
                    for (acc_row, &a_r) in acc.iter_mut().zip(&a_p) {
                        acc_row[0] = vfmaq_laneq_f32::<$q>(acc_row[0], b0, a_r);
                        acc_row[1] = vfmaq_laneq_f32::<$q>(acc_row[1], b1, a_r);
                    }
                }};
            }
            step!(0);
            step!(1);
            step!(2);
            step!(3);
        }
        p += 4;
    }
    while p < k {
        // SAFETY: element p of each row of A and row p of B are in bounds (caller).
        unsafe {
            let (b0, b1) = b_row(b, p);
            for (acc_row, row) in acc.iter_mut().zip(&rows) {
                let a_rp = *row.add(p);
                acc_row[0] = vfmaq_n_f32(acc_row[0], b0, a_rp);
                acc_row[1] = vfmaq_n_f32(acc_row[1], b1, a_rp);
            }
        }
        p += 1;
    }
    // SAFETY: the C tile per the caller.
    unsafe { store_tile(&acc, c, rs_c, accumulate) };
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::kernels::{gemm_on, Isa};

    fn value(i: usize, seed: usize) -> f32 {
        ((i * 7919 + seed * 104_729) % 1013) as f32 / 1013.0 - 0.5
    }

    /// Both forms against a scalar reference on one tile: every k tail of the
    /// in-place form's four-step loop (k = 0..=9), accumulation on and off,
    /// and a C row stride wider than the tile (the columns beyond it untouched).
    #[test]
    fn both_forms_match_a_scalar_reference_for_every_k_tail() {
        const LDA: usize = 13;
        const RS_C: usize = NEON_NR + 3;
        for k in 0..=9 {
            let a_rows: Vec<f32> = (0..NEON_MR * LDA).map(|i| value(i, k)).collect();
            let a_packed: Vec<f32> = (0..k * NEON_MR)
                .map(|i| a_rows[(i % NEON_MR) * LDA + i / NEON_MR])
                .collect();
            let b: Vec<f32> = (0..k * NEON_NR).map(|i| value(i, k + 50)).collect();
            let start: Vec<f32> = (0..NEON_MR * RS_C).map(|i| value(i, k + 99)).collect();
            for accumulate in [false, true] {
                let expected: Vec<f32> = (0..NEON_MR * RS_C)
                    .map(|i| {
                        let (r, j) = (i / RS_C, i % RS_C);
                        if j >= NEON_NR {
                            return start[i];
                        }
                        let base = if accumulate { start[i] } else { 0.0 };
                        base + (0..k)
                            .map(|p| a_rows[r * LDA + p] * b[p * NEON_NR + j])
                            .sum::<f32>()
                    })
                    .collect();
                for (form, a) in [("packed", &a_packed), ("in place", &a_rows)] {
                    let run = if form == "packed" {
                        NEON_F32.packed
                    } else {
                        NEON_F32.in_place
                    };
                    let mut c = start.clone();
                    // SAFETY: A holds k steps of MR rows in the form's layout, B k rows
                    // of NR, and C MR rows of RS_C ≥ NR.
                    unsafe {
                        run(
                            k,
                            a.as_ptr(),
                            LDA as isize,
                            b.as_ptr(),
                            c.as_mut_ptr(),
                            RS_C as isize,
                            accumulate,
                        )
                    };
                    for (i, (got, want)) in c.iter().zip(&expected).enumerate() {
                        assert!(
                            (got - want).abs() <= 1e-5,
                            "{form}, k {k}, accumulate {accumulate}, C[{}, {}]: {got} vs {want}",
                            i / RS_C,
                            i % RS_C
                        );
                    }
                }
            }
        }
    }

    /// The packed form on whole tiles: a transposed A (columns contiguous) is packed, unlike
    /// the row-major A of the GEMM tests, which the in-place form reads.
    #[test]
    fn gemm_with_a_transposed_a_matches_the_portable_kernel() {
        let (m, k, n) = (19, 261, 21);
        let a_t = Array2::from_shape_fn((k, m), |(p, r)| value(p * m + r, 1));
        let b = Array2::from_shape_fn((k, n), |(p, j)| value(p * n + j, 2));
        let bias: Vec<f32> = (0..n).map(|j| value(j, 3)).collect();
        let mut neon = Array2::<f32>::from_elem((m, n), 1.0);
        let mut portable = neon.clone();
        gemm_on(
            Isa::Neon,
            a_t.t(),
            b.view(),
            neon.view_mut(),
            true,
            Some(&bias),
        );
        gemm_on(
            Isa::Generic,
            a_t.t(),
            b.view(),
            portable.view_mut(),
            true,
            Some(&bias),
        );
        for ((index, x), y) in neon.indexed_iter().zip(&portable) {
            assert!((x - y).abs() <= 1e-4, "{index:?}: {x} vs {y}");
        }
    }
}
