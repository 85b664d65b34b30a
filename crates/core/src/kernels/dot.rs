//! `C (+)= A·Wᵀ` for a few rows of A against a weight matrix W kept in its
//! row-major `[outputs, inputs]` layout (PyTorch's): every output is a dot
//! product of two contiguous rows.
//!
//! This is the product of a streaming step (one sequence, one time step),
//! where packing the weights would cost more than the product itself: W is
//! read straight from where it lives, once per row of A (once per four rows
//! in the AVX-512 kernel, `dot_avx512`).

use std::ops::Range;

use super::pack::MatRef;
use super::Isa;
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
use super::{is_f32, retype};
use crate::Scalar;

/// `C[r, j] = (accumulate ? C[r, j] : 0) + Σ_p A[r, p]·W[j, p]` for every row r of
/// `a` (`[m, k]`) and every `j` in `outputs` (rows of `w`, `[n, k]`); both with unit column stride.
///
/// # Safety
/// `c` must point at element (0, `outputs.start`) of a matrix with row stride
/// `rs_c`, writable for `m` rows × `outputs.len()` columns and not accessed by
/// anyone else during the call.
pub(crate) unsafe fn gemm_nt<F: Scalar>(
    isa: Isa,
    a: MatRef<'_, F>,
    w: MatRef<'_, F>,
    outputs: Range<usize>,
    c: *mut F,
    rs_c: isize,
    accumulate: bool,
) {
    assert!(
        a.cols == w.cols && a.cs == 1 && w.cs == 1 && outputs.end <= w.rows,
        "gemm_nt operands do not fit"
    );
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && is_f32::<F>() {
        // SAFETY: F is f32 (so the retyped operands are the same); AVX-512F was detected;
        // rows `outputs` of W are inside it (asserted); C per the caller.
        unsafe {
            let w_first = w.as_ptr().offset(outputs.start as isize * w.rs);
            super::dot_avx512::gemm_nt(
                retype(a),
                w_first.cast(),
                w.rs,
                outputs.len(),
                c.cast(),
                rs_c,
                accumulate,
            );
        }
        return;
    }
    for r in 0..a.rows {
        // SAFETY: row r of A and rows `outputs` of W are inside their matrices (asserted);
        // the row of C per the caller.
        unsafe {
            let a_row = std::slice::from_raw_parts(a.as_ptr().offset(r as isize * a.rs), a.cols);
            let w_first = w.as_ptr().offset(outputs.start as isize * w.rs);
            let c_row = std::slice::from_raw_parts_mut(c.offset(r as isize * rs_c), outputs.len());
            dot_rows(isa, a_row, w_first, w.rs, c_row, accumulate);
        }
    }
}

/// `out[j] (+)= a · W[j]` for the `out.len()` rows of W from `w` (`ldw` apart, `a.len()` long).
///
/// # Safety
/// Those rows of W must be readable.
unsafe fn dot_rows<F: Scalar>(
    isa: Isa,
    a: &[F],
    w: *const F,
    ldw: isize,
    out: &mut [F],
    accumulate: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2_fma() && is_f32::<F>() {
        // SAFETY: F is f32 (so the retyped slices and pointers are the same); AVX2 + FMA
        // were detected; W's rows per the caller.
        unsafe { dot_rows_avx2(retype(a), w.cast(), ldw, retype(out), accumulate) };
        return;
    }
    #[cfg(target_arch = "aarch64")]
    if isa == Isa::Neon && is_f32::<F>() {
        // SAFETY: F is f32 (so the retyped slices and pointers are the same); W's rows per the caller.
        unsafe { super::dot_neon::dot_rows(retype(a), w.cast(), ldw, retype(out), accumulate) };
        return;
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if isa == Isa::Simd128 && is_f32::<F>() {
        // SAFETY: F is f32 (so the retyped slices and pointers are the same); simd128 was
        // enabled at compile time; W's rows per the caller.
        unsafe { super::dot_simd128::dot_rows(retype(a), w.cast(), ldw, retype(out), accumulate) };
        return;
    }
    let _ = isa;
    for (j, out) in out.iter_mut().enumerate() {
        // SAFETY: row j of W is readable for a.len() elements (caller).
        let w_row = unsafe { std::slice::from_raw_parts(w.offset(j as isize * ldw), a.len()) };
        let dot = a
            .iter()
            .zip(w_row)
            .fold(F::zero(), |sum, (&x, &y)| sum + x * y);
        *out = if accumulate { *out + dot } else { dot };
    }
}

/// AVX2/FMA version of [`dot_rows`]: eight rows of W at a time, one accumulator each (eight
/// independent FMA chains, one load of `a` per eight loads of W), the eight horizontal sums
/// done together by a tree of `hadd`s. A streaming step's rows are short (X or H values), so
/// one horizontal sum per output would cost as much as a third of its multiply-adds.
///
/// # Safety
/// As [`dot_rows`]; the CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_rows_avx2(a: &[f32], w: *const f32, ldw: isize, out: &mut [f32], accumulate: bool) {
    use std::arch::x86_64::*;

    const ROWS: usize = 8;
    let k = a.len();
    let vector_end = k / 8 * 8;
    for (group, out) in out.chunks_mut(ROWS).enumerate() {
        let first = group * ROWS;
        let rows: [*const f32; ROWS] = std::array::from_fn(|q| {
            w.wrapping_offset((first + q.min(out.len() - 1)) as isize * ldw)
        });
        // SAFETY (whole block): every row pointer is a readable row of W of k
        // elements (rows past the end repeat the last one); loads stay below k.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); ROWS];
            for p in (0..vector_end).step_by(8) {
                let a_p = _mm256_loadu_ps(a.as_ptr().add(p));
                for (row, acc) in rows.iter().zip(acc.iter_mut()) {
                    *acc = _mm256_fmadd_ps(a_p, _mm256_loadu_ps(row.add(p)), *acc);
                }
            }
            // Lane q of `dots` is row q's sum: pairs, then quads within each 128-bit half,
            // then the two halves.
            let pairs: [__m256; 4] =
                std::array::from_fn(|i| _mm256_hadd_ps(acc[2 * i], acc[2 * i + 1]));
            let quads = [
                _mm256_hadd_ps(pairs[0], pairs[1]),
                _mm256_hadd_ps(pairs[2], pairs[3]),
            ];
            let dots = _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(quads[0], quads[1]),
                _mm256_permute2f128_ps::<0x31>(quads[0], quads[1]),
            );
            let mut sums = [0.0f32; ROWS];
            _mm256_storeu_ps(sums.as_mut_ptr(), dots);
            for ((row, mut dot), out) in rows.iter().zip(sums).zip(out.iter_mut()) {
                for (q, &x) in a.iter().enumerate().skip(vector_end) {
                    dot += x * *row.add(q);
                }
                *out = if accumulate { *out + dot } else { dot };
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use ndarray::Array2;

    use super::*;

    /// `c` (`[m, n]`, ones) after `gemm_nt` of `a` against rows `2..n` of `w` (`[n, k]`) into
    /// columns `2..`: columns 0 and 1 show whether the kernel wrote outside its outputs.
    pub(crate) fn product(
        isa: Isa,
        a: &Array2<f32>,
        w: &Array2<f32>,
        accumulate: bool,
    ) -> Array2<f32> {
        let outputs = 2..w.nrows();
        let mut c = Array2::<f32>::from_elem((a.nrows(), w.nrows()), 1.0);
        let rs_c = c.strides()[0];
        // SAFETY: c is owned here; the pointer is its element (0, 2), row stride rs_c.
        unsafe {
            let c_ptr = c.as_mut_ptr().add(outputs.start);
            gemm_nt(
                isa,
                MatRef::from_view(a.view()),
                MatRef::from_view(w.view()),
                outputs,
                c_ptr,
                rs_c,
                accumulate,
            );
        }
        c
    }

    #[test]
    fn matches_the_naive_product_on_every_isa() {
        let (m, k, n) = (3, 37, 11);
        let a = Array2::from_shape_fn((m, k), |(r, p)| ((r * 31 + p * 7) % 13) as f32 * 0.1 - 0.6);
        let w = Array2::from_shape_fn((n, k), |(j, p)| ((j * 17 + p * 5) % 11) as f32 * 0.1 - 0.5);
        let expected = a.dot(&w.t());
        for isa in [Isa::Generic, Isa::current()] {
            let c = product(isa, &a, &w, true);
            for ((r, j), &value) in c.indexed_iter() {
                let want = if j < 2 { 1.0 } else { 1.0 + expected[[r, j]] };
                assert!(
                    (value - want).abs() < 1e-5,
                    "{value} vs {want} at ({r}, {j})"
                );
            }
        }
    }
}
