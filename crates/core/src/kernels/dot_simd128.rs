//! WebAssembly simd128 version of the streaming step's dot products (see [`super::dot`]).

use std::arch::wasm32::*;

use super::microkernels_simd128::madd;

/// Rows of W per pass, one accumulator each: a vector of A, loaded once, feeds seven
/// independent multiply-add chains. V8 gives WebAssembly 16 vector registers on x86-64 and
/// loads a pass's vectors of W ahead of their multiply-adds in one of the two copies LLVM
/// unrolls the loop into: seven accumulators, seven vectors of W and the one of A fit. Eight
/// rows spilled one accumulator to the stack, and the earlier 4 rows × 2 vectors of A two
/// (`perf annotate` of the JIT code), which put a store and a load into their add chains. The
/// rows per pass change no output: each is the same lanes summed in the same order.
const ROWS: usize = 7;
/// Lanes of a vector: k values per iteration.
const LANES: usize = 4;

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
    let vector_end = k / LANES * LANES;
    for (group, out) in out.chunks_mut(ROWS).enumerate() {
        let first = group * ROWS;
        let rows: [*const f32; ROWS] = std::array::from_fn(|q| {
            w.wrapping_offset((first + q.min(out.len() - 1)) as isize * ldw)
        });
        let mut acc = [f32x4_splat(0.0); ROWS];
        for p in (0..vector_end).step_by(LANES) {
            // SAFETY: p + LANES ≤ k, and every row pointer is a readable row of W of k
            // elements (rows past the end repeat the last one).
            unsafe {
                let a_p = v128_load(a.as_ptr().add(p).cast());
                for (row, acc) in rows.iter().zip(acc.iter_mut()) {
                    *acc = madd(a_p, v128_load(row.add(p).cast()), *acc);
                }
            }
        }
        for ((row, &sum), out) in rows.iter().zip(&acc).zip(out.iter_mut()) {
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
