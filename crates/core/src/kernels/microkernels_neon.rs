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
    row: None,
    short: &[],
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
    use super::*;
    use crate::kernels::microkernels::tests::{check_gemm, check_tile};
    use crate::kernels::Isa;

    #[test]
    fn both_forms_match_a_scalar_reference_for_every_k_tail() {
        check_tile(&NEON_F32);
    }

    /// Edge tiles in both dimensions (19 = 2·8 + 3 rows, 21 = 2·8 + 5 columns).
    #[test]
    fn gemm_in_both_a_layouts_matches_the_portable_kernel() {
        check_gemm(Isa::Neon, &[(19, 261, 21)]);
    }
}
