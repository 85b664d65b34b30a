//! AVX-512 version of the streaming step's product `C (+)= A·Wᵀ` (see [`super::dot`]):
//! W in place (PyTorch's `[outputs, inputs]`), every output one dot product.
//!
//! Sixteen dot products run together, one accumulator (a vector of sixteen lanes)
//! each: sixteen rows of W against one row of A, eight against two, or four
//! against up to four, so that each vector of W loaded feeds every row of A
//! (a step of four sequences reads the weights once, not four times). Lane `l`
//! of an accumulator sums the products at `p ≡ l (mod 16)` in order; one
//! transposing tree then adds the sixteen accumulators' lanes at once
//! (l + l+8, then l + l+4, l + l+2, l + l+1), leaving the sixteen sums in one
//! vector. That is the AVX2 kernel's order (two eight-lane accumulators, then
//! the same halvings), so when `k` is a multiple of 16 both give the same bits.

use std::arch::x86_64::*;

use super::pack::MatRef;

/// Lanes of a vector, and dot products finished together.
const LANES: usize = 16;

/// `C[r, j] (+)= A[r]·W[j]` for every row r of `a` (`[m, k]`, unit column stride) and the
/// `n` rows of W from `w` (`ldw` apart, `k` long).
///
/// # Safety
/// As [`super::dot::gemm_nt`]: A readable, those rows of W readable; `c` writable for
/// `m` rows (`rs_c` apart) × `n` columns and not accessed by anyone else during the call.
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn gemm_nt(
    a: MatRef<'_, f32>,
    w: *const f32,
    ldw: isize,
    n: usize,
    c: *mut f32,
    rs_c: isize,
    accumulate: bool,
) {
    let mut first = 0;
    while first < a.rows {
        let rows = (a.rows - first).min(4);
        let block = Block {
            a: a.as_ptr().wrapping_offset(first as isize * a.rs),
            rs_a: a.rs,
            rows,
            k: a.cols,
            c: c.wrapping_offset(first as isize * rs_c),
            rs_c,
        };
        // SAFETY: rows `first..first + rows` of A and of C, per the caller; AVX-512F per the caller.
        unsafe {
            match rows {
                1 => products::<1>(&block, w, ldw, n, accumulate),
                2 => products::<2>(&block, w, ldw, n, accumulate),
                _ => products::<4>(&block, w, ldw, n, accumulate),
            }
        }
        first += rows;
    }
}

/// Up to four rows of A and the rows of C they produce.
struct Block {
    a: *const f32,
    rs_a: isize,
    /// Rows of A in the block (≤ the kernel's `BT`; the missing ones repeat the last).
    rows: usize,
    k: usize,
    c: *mut f32,
    rs_c: isize,
}

/// The row of A (`b` < `BT`) and of W (`j` < 16 / `BT`) whose dot product the accumulator
/// at position `q` holds: positions are ordered so that [`reduce`] leaves that product in
/// lane `b·(16 / BT) + j`.
const fn item<const BT: usize>(q: usize) -> (usize, usize) {
    let lane = 4 * (q % 4) + q / 4;
    (lane / (LANES / BT), lane % (LANES / BT))
}

/// [`gemm_nt`] for one block of `BT` (1, 2 or 4) rows of A against every row of W, 16 / `BT` at a time.
///
/// # Safety
/// As [`gemm_nt`], for the block's rows.
#[target_feature(enable = "avx512f")]
unsafe fn products<const BT: usize>(
    block: &Block,
    w: *const f32,
    ldw: isize,
    n: usize,
    accumulate: bool,
) {
    let per_block = LANES / BT;
    let k = block.k;
    let full = k / LANES * LANES;
    let tail = ((1u32 << (k - full)) - 1) as __mmask16;
    let mut a_rows = [block.a; BT];
    for (b, row) in a_rows.iter_mut().enumerate() {
        *row = block
            .a
            .wrapping_offset(b.min(block.rows - 1) as isize * block.rs_a);
    }
    let mut j0 = 0;
    while j0 < n {
        let valid = (n - j0).min(per_block);
        // The block's rows of W; rows past the end repeat the last one.
        let mut w_rows = [w; LANES];
        for (j, row) in w_rows.iter_mut().take(per_block).enumerate() {
            *row = w.wrapping_offset((j0 + j.min(valid - 1)) as isize * ldw);
        }
        // SAFETY (whole block): every pointer is a readable row of A or W of k elements;
        // full loads stay below `full` ≤ k, the masked one reads only lanes below k.
        let sums = unsafe {
            let mut acc = [_mm512_setzero_ps(); LANES];
            let mut p = 0;
            while p < full {
                for (q, acc) in acc.iter_mut().enumerate() {
                    let (b, j) = item::<BT>(q);
                    let (x, y) = (a_rows[b].add(p), w_rows[j].add(p));
                    *acc = _mm512_fmadd_ps(_mm512_loadu_ps(x), _mm512_loadu_ps(y), *acc);
                }
                p += LANES;
            }
            if tail != 0 {
                for (q, acc) in acc.iter_mut().enumerate() {
                    let (b, j) = item::<BT>(q);
                    let (x, y) = (a_rows[b].add(p), w_rows[j].add(p));
                    let (x, y) = (
                        _mm512_maskz_loadu_ps(tail, x),
                        _mm512_maskz_loadu_ps(tail, y),
                    );
                    *acc = _mm512_fmadd_ps(x, y, *acc);
                }
            }
            reduce(acc)
        };
        for b in 0..block.rows {
            let lanes = ((1u32 << valid) - 1) << (b * per_block);
            let mask = lanes as __mmask16;
            // Lane b·per_block + j goes to column j0 + j of row b: the pointer is where lane 0
            // would go; masked-off lanes are never accessed.
            let row = block
                .c
                .wrapping_offset(b as isize * block.rs_c)
                .wrapping_add(j0)
                .wrapping_sub(b * per_block);
            // SAFETY: the unmasked lanes are columns j0..j0 + valid of row b of C (caller).
            unsafe {
                let result = if accumulate {
                    _mm512_add_ps(_mm512_maskz_loadu_ps(mask, row), sums)
                } else {
                    sums
                };
                _mm512_mask_storeu_ps(row, mask, result);
            }
        }
        j0 += per_block;
    }
}

/// The sixteen accumulators' lane sums, in lane order of [`item`]: position q's sum in
/// lane 4·(q mod 4) + q / 4. Each sum adds lanes l + l+8, then l + l+4, l + l+2, l + l+1.
#[target_feature(enable = "avx512f")]
#[inline]
fn reduce(acc: [__m512; LANES]) -> __m512 {
    // Two accumulators per vector, eight partial sums each (128-bit quads: x, x, y, y).
    let mut halves = [_mm512_setzero_ps(); 8];
    for (i, half) in halves.iter_mut().enumerate() {
        let (x, y) = (acc[2 * i], acc[2 * i + 1]);
        *half = _mm512_add_ps(
            _mm512_shuffle_f32x4::<0b01_00_01_00>(x, y),
            _mm512_shuffle_f32x4::<0b11_10_11_10>(x, y),
        );
    }
    // Four per vector, four partial sums each (one quad per accumulator).
    let mut quarters = [_mm512_setzero_ps(); 4];
    for (i, quarter) in quarters.iter_mut().enumerate() {
        let (x, y) = (halves[2 * i], halves[2 * i + 1]);
        *quarter = _mm512_add_ps(
            _mm512_shuffle_f32x4::<0b10_00_10_00>(x, y),
            _mm512_shuffle_f32x4::<0b11_01_11_01>(x, y),
        );
    }
    // Eight per vector, two partial sums each (per quad: two of x's, two of y's).
    let mut eighths = [_mm512_setzero_ps(); 2];
    for (i, eighth) in eighths.iter_mut().enumerate() {
        let (x, y) = (quarters[2 * i], quarters[2 * i + 1]);
        *eighth = _mm512_add_ps(
            _mm512_shuffle_ps::<0b01_00_01_00>(x, y),
            _mm512_shuffle_ps::<0b11_10_11_10>(x, y),
        );
    }
    let (x, y) = (eighths[0], eighths[1]);
    _mm512_add_ps(
        _mm512_shuffle_ps::<0b10_00_10_00>(x, y),
        _mm512_shuffle_ps::<0b11_01_11_01>(x, y),
    )
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use crate::kernels::dot::tests::product;
    use crate::kernels::Isa;

    fn matrix(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(r, p)| {
            ((r * 31 + p * 7 + seed) % 23) as f32 * 0.07 - 0.8
        })
    }

    #[test]
    fn every_row_count_block_and_tail_matches_the_naive_product() {
        if Isa::current() != Isa::Avx512 {
            return;
        }
        // Rows of A across the 1-, 2- and 4-row kernels (and 5 = 4 + 1); outputs that fill
        // blocks and leave partial ones; k with and without a masked tail.
        for m in 1..=5 {
            for (n, k) in [(2 + 16, 32), (2 + 21, 37), (2 + 3, 5), (2 + 40, 128)] {
                let (a, w) = (matrix(m, k, m), matrix(n, k, n));
                let expected = a.dot(&w.t());
                for accumulate in [true, false] {
                    let c = product(Isa::Avx512, &a, &w, accumulate);
                    for ((r, j), &value) in c.indexed_iter() {
                        let want = match (j < 2, accumulate) {
                            (true, _) => 1.0,
                            (false, true) => 1.0 + expected[[r, j]],
                            (false, false) => expected[[r, j]],
                        };
                        assert!(
                            (value - want).abs() < 1e-4,
                            "m {m} n {n} k {k}: {value} vs {want} at ({r}, {j})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_same_bits_as_the_avx2_kernel_when_k_is_whole_vectors() {
        if Isa::current() != Isa::Avx512 {
            return;
        }
        for m in 1..=4 {
            let (a, w) = (matrix(m, 256, 3), matrix(2 + 37, 256, 5));
            let bits = |c: Array2<f32>| c.mapv(f32::to_bits);
            assert_eq!(
                bits(product(Isa::Avx512, &a, &w, true)),
                bits(product(Isa::Avx2Fma, &a, &w, true)),
                "m {m}"
            );
        }
    }
}
