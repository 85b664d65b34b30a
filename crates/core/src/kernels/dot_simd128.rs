//! WebAssembly simd128 version of the streaming step's dot products (see [`super::dot`]).

use std::arch::wasm32::*;

use super::microkernels_simd128::madd;

/// Rows of W per pass: A's vectors are loaded once for all of them.
const ROWS: usize = 4;
/// k values per iteration: two vectors, so each row has two independent add chains (eight
/// accumulators in all, which with A's two vectors and W's fit x86-64 hosts' 16 registers).
const STEP: usize = 8;

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
        let mut acc = [[f32x4_splat(0.0); STEP / 4]; ROWS];
        for p in (0..vector_end).step_by(STEP) {
            // SAFETY: p + STEP ≤ k, and every row pointer is a readable row of W of k
            // elements (rows past the end repeat the last one).
            unsafe {
                let a_p: [v128; STEP / 4] =
                    std::array::from_fn(|v| v128_load(a.as_ptr().add(p + 4 * v).cast()));
                for (row, acc) in rows.iter().zip(acc.iter_mut()) {
                    for (v, acc) in acc.iter_mut().enumerate() {
                        let w_p = v128_load(row.add(p + 4 * v).cast());
                        *acc = madd(a_p[v], w_p, *acc);
                    }
                }
            }
        }
        for ((row, acc), out) in rows.iter().zip(&acc).zip(out.iter_mut()) {
            let sum = f32x4_add(acc[0], acc[1]);
            let mut dot = (f32x4_extract_lane::<0>(sum) + f32x4_extract_lane::<1>(sum))
                + (f32x4_extract_lane::<2>(sum) + f32x4_extract_lane::<3>(sum));
            for (q, &x) in a.iter().enumerate().skip(vector_end) {
                // SAFETY: q < k, inside the row (see above).
                dot += x * unsafe { *row.add(q) };
            }
            *out = if accumulate { *out + dot } else { dot };
        }
    }
}
