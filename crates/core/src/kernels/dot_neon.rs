//! NEON version of the streaming step's dot products (see [`super::dot`]).

use std::arch::aarch64::*;

/// Rows of W per pass: A's vectors are loaded once for all of them.
const ROWS: usize = 4;
/// k values per iteration: four vectors, so each row has four independent FMA chains
/// (sixteen in all, enough to cover the FMA latency on four pipes).
const STEP: usize = 16;

/// `out[j] (+)= a · W[j]` for the `out.len()` rows of W from `w` (`ldw` apart, `a.len()` long).
///
/// # Safety
/// Those rows of W must be readable.
pub(crate) unsafe fn dot_rows(
    a: &[f32],
    w: *const f32,
    ldw: isize,
    out: &mut [f32],
    accumulate: bool,
) {
    let k = a.len();
    let vector_end = k / STEP * STEP;
    for (group, out) in out.chunks_mut(ROWS).enumerate() {
        let first = group * ROWS;
        let rows: [*const f32; ROWS] = std::array::from_fn(|q| {
            w.wrapping_offset((first + q.min(out.len() - 1)) as isize * ldw)
        });
        // SAFETY: NEON is present (aarch64 baseline).
        let mut acc = [[unsafe { vdupq_n_f32(0.0) }; STEP / 4]; ROWS];
        for p in (0..vector_end).step_by(STEP) {
            // SAFETY: p + STEP ≤ k, and every row pointer is a readable row of W of k
            // elements (rows past the end repeat the last one).
            unsafe {
                let a_p: [float32x4_t; STEP / 4] =
                    std::array::from_fn(|v| vld1q_f32(a.as_ptr().add(p + 4 * v)));
                for (row, acc) in rows.iter().zip(acc.iter_mut()) {
                    for (v, acc) in acc.iter_mut().enumerate() {
                        *acc = vfmaq_f32(*acc, a_p[v], vld1q_f32(row.add(p + 4 * v)));
                    }
                }
            }
        }
        for ((row, acc), out) in rows.iter().zip(&acc).zip(out.iter_mut()) {
            // SAFETY: NEON is present (aarch64 baseline).
            let mut dot = unsafe {
                vaddvq_f32(vaddq_f32(
                    vaddq_f32(acc[0], acc[1]),
                    vaddq_f32(acc[2], acc[3]),
                ))
            };
            for (q, &x) in a.iter().enumerate().skip(vector_end) {
                // SAFETY: q < k, inside the row (see above).
                dot += x * unsafe { *row.add(q) };
            }
            *out = if accumulate { *out + dot } else { dot };
        }
    }
}
