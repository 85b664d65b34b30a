//! GEMM micro-kernels: one `MR × NR` tile of C from an `MR × k` sliver of A
//! and a packed `k × NR` panel of B, accumulated in registers.
//!
//! Every kernel comes in two forms that differ only in how A is read:
//! packed (`MR` values per k step, contiguous) for the large blocked
//! products, and in place (`MR` rows `lda` apart, k contiguous) for the
//! recurrent step, which multiplies a fresh `[batch, hidden]` state every
//! step and would gain nothing from packing it. Knowing the layout at
//! compile time keeps the address arithmetic off the critical path.

#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
use std::any::Any;

use super::Isa;
use crate::Scalar;

/// `C[0..MR, 0..NR] = (accumulate ? C : 0) + A·B`, A packed or in place (see the module doc).
///
/// # Safety
/// `a` must hold `k` steps of A in the kernel's layout (`MR` rows, `lda` apart,
/// for the in-place form; `lda` is ignored by the packed form); `b` must be
/// readable at `0 .. k·NR`; `c` readable and writable at `r·rs_c + j` for
/// `r < MR`, `j < NR`; and the CPU must support the kernel's instruction set.
pub(crate) type MicroKernelFn<F> = unsafe fn(
    k: usize,
    a: *const F,
    lda: isize,
    b: *const F,
    c: *mut F,
    rs_c: isize,
    accumulate: bool,
);

/// `out[q·NR + j] = (a·B_q)[j]` for one row `a` (`k` values, contiguous) and `panels` ≤
/// [`ROW_PANELS`] consecutive packed panels `B_q` of `k × NR` values: every value summed as
/// the kernel's tile sums it (from zero, one fused multiply-add per k step, in order), so it
/// is bit for bit that row of a tile. For the few rows that do not fill a tile, which the tile
/// kernel would compute padded to `MR` rows.
///
/// # Safety
/// `a` readable at `0..k`, `b` at `0..panels·k·NR`, `out` writable at `0..panels·NR`; the CPU
/// must support the kernel's instruction set.
pub(crate) type RowKernelFn<F> =
    unsafe fn(k: usize, a: *const F, b: *const F, panels: usize, out: *mut F);

/// Panels a [`RowKernelFn`] takes at once (its independent accumulator chains).
pub(crate) const ROW_PANELS: usize = 4;

/// A micro-kernel in both A layouts, and its tile shape.
#[derive(Clone, Copy)]
pub(crate) struct MicroKernel<F: 'static> {
    pub mr: usize,
    pub nr: usize,
    /// A packed: element (r, p) at `p·MR + r`.
    pub packed: MicroKernelFn<F>,
    /// A in place: element (r, p) at `r·lda + p`.
    pub in_place: MicroKernelFn<F>,
    /// One row against whole panels, where the instruction set has one.
    pub row: Option<RowKernelFn<F>>,
    /// Kernels for tiles of `1 ..= short.len()` rows (index `rows − 1`), where the instruction
    /// set has them: a tile of fewer than `MR` rows then multiplies only its own rows, where
    /// the `MR`-row kernel would compute padding rows. Packed A keeps its `MR`-row layout.
    pub short: &'static [ShortTile<F>],
}

/// A kernel for tiles of fewer rows than its [`MicroKernel`]'s `MR`, in both A layouts. Each
/// element is summed as the `MR`-row kernel sums it, so a short tile's rows are bit for bit
/// those of a full tile.
#[derive(Clone, Copy)]
pub(crate) struct ShortTile<F> {
    pub packed: MicroKernelFn<F>,
    pub in_place: MicroKernelFn<F>,
}

impl<F> MicroKernel<F> {
    /// The kernel that computes a tile of exactly `rows` rows (`1..=MR`) with A `packed` or in
    /// place, if there is one.
    pub fn for_rows(&self, rows: usize, packed: bool) -> Option<MicroKernelFn<F>> {
        let (packed_fn, in_place_fn) = if rows == self.mr {
            (self.packed, self.in_place)
        } else {
            let tile = self.short.get(rows.checked_sub(1)?)?;
            (tile.packed, tile.in_place)
        };
        Some(if packed { packed_fn } else { in_place_fn })
    }
}

/// Upper bounds of `mr` and `nr` over all kernels (sizes of edge-tile buffers).
pub(crate) const MAX_MR: usize = 8;
pub(crate) const MAX_NR: usize = 32;

const GENERIC_MR: usize = 4;
const GENERIC_NR: usize = 8;

#[cfg(target_arch = "x86_64")]
static AVX2_F32: MicroKernel<f32> = MicroKernel {
    mr: AVX2_MR,
    nr: 16,
    packed: avx2_f32_x16::<AVX2_MR, true>,
    in_place: avx2_f32_x16::<AVX2_MR, false>,
    row: Some(avx2_f32_row),
    short: &AVX2_SHORT,
};

/// The [`RowKernelFn`] of the AVX2 kernel: a row against up to [`ROW_PANELS`] panels of 16
/// columns, eight accumulator chains when all four are there (a one-row tile has two).
///
/// # Safety
/// See [`RowKernelFn`]; the CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_f32_row(k: usize, a: *const f32, b: *const f32, panels: usize, out: *mut f32) {
    // SAFETY (whole body): the caller guarantees k values of a, the panels and out, and AVX2 + FMA.
    unsafe {
        if panels == ROW_PANELS {
            avx2_row_panels::<ROW_PANELS>(k, a, b, out);
        } else {
            for q in 0..panels {
                avx2_row_panels::<1>(k, a, b.add(q * k * 16), out.add(q * 16));
            }
        }
    }
}

/// [`avx2_f32_row`] for exactly `P` panels.
///
/// # Safety
/// As [`avx2_f32_row`] with `panels` = `P`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_row_panels<const P: usize>(k: usize, a: *const f32, b: *const f32, out: *mut f32) {
    use std::arch::x86_64::*;
    // SAFETY (whole body): per the caller.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 2]; P];
        for p in 0..k {
            // As the tile kernel: acc = a(p)·b(p, j) + acc, one step at a time.
            let a_p = _mm256_broadcast_ss(&*a.add(p));
            for (q, acc_q) in acc.iter_mut().enumerate() {
                let b_row = b.add(q * k * 16 + p * 16);
                for (v, acc) in acc_q.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(a_p, _mm256_loadu_ps(b_row.add(8 * v)), *acc);
                }
            }
        }
        for (q, acc_q) in acc.iter().enumerate() {
            for (v, &sum) in acc_q.iter().enumerate() {
                _mm256_storeu_ps(out.add(q * 16 + 8 * v), sum);
            }
        }
    }
}

/// The AVX2 kernel for one to five rows: a batch part of 32 sequences is five tiles of six and
/// one of two, which the six-row kernel would compute as a third of a tile wasted.
#[cfg(target_arch = "x86_64")]
static AVX2_SHORT: [ShortTile<f32>; AVX2_MR - 1] = [
    avx2_short::<1>(),
    avx2_short::<2>(),
    avx2_short::<3>(),
    avx2_short::<4>(),
    avx2_short::<5>(),
];

#[cfg(target_arch = "x86_64")]
const fn avx2_short<const ROWS: usize>() -> ShortTile<f32> {
    ShortTile {
        packed: avx2_f32_x16::<ROWS, true>,
        in_place: avx2_f32_x16::<ROWS, false>,
    }
}

impl<F: Scalar> MicroKernel<F> {
    /// The fastest kernel for `F` on `isa`.
    pub fn select(isa: Isa) -> Self {
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512 {
            if let Some(kernel) = (&super::microkernels_avx512::AVX512_F32 as &dyn Any)
                .downcast_ref::<MicroKernel<F>>()
            {
                return *kernel;
            }
        }
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx2Fma {
            if let Some(kernel) = (&AVX2_F32 as &dyn Any).downcast_ref::<MicroKernel<F>>() {
                return *kernel;
            }
        }
        #[cfg(target_arch = "aarch64")]
        if isa == Isa::Neon {
            if let Some(kernel) =
                (&super::microkernels_neon::NEON_F32 as &dyn Any).downcast_ref::<MicroKernel<F>>()
            {
                return *kernel;
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if isa == Isa::Simd128 {
            if let Some(kernel) = (&super::microkernels_simd128::SIMD128_F32 as &dyn Any)
                .downcast_ref::<MicroKernel<F>>()
            {
                return *kernel;
            }
        }
        let _ = isa;
        MicroKernel {
            mr: GENERIC_MR,
            nr: GENERIC_NR,
            packed: generic_kernel::<F, true>,
            in_place: generic_kernel::<F, false>,
            row: None,
            short: &[],
        }
    }
}

/// (row stride, k stride) of A in a kernel with `mr` rows.
#[inline(always)]
pub(crate) fn a_strides<const PACKED: bool>(mr: usize, lda: isize) -> (isize, isize) {
    if PACKED {
        (1, mr as isize)
    } else {
        (lda, 1)
    }
}

/// Portable kernel (`GENERIC_MR × GENERIC_NR`), left to the compiler to vectorise.
///
/// # Safety
/// See [`MicroKernelFn`].
unsafe fn generic_kernel<F: Scalar, const PACKED: bool>(
    k: usize,
    a: *const F,
    lda: isize,
    b: *const F,
    c: *mut F,
    rs_c: isize,
    accumulate: bool,
) {
    let (rs_a, cs_a) = a_strides::<PACKED>(GENERIC_MR, lda);
    let mut acc = [[F::zero(); GENERIC_NR]; GENERIC_MR];
    for p in 0..k {
        // SAFETY: panel row p of B is inside `0 .. k·NR` (caller's contract).
        let b_row = unsafe { std::slice::from_raw_parts(b.add(p * GENERIC_NR), GENERIC_NR) };
        for (r, acc_row) in acc.iter_mut().enumerate() {
            // SAFETY: r < MR and p < k (caller's contract on `a`).
            let a_rp = unsafe { *a.offset(r as isize * rs_a + p as isize * cs_a) };
            for (acc, &b_pj) in acc_row.iter_mut().zip(b_row) {
                *acc = *acc + a_rp * b_pj;
            }
        }
    }
    for (r, acc_row) in acc.iter().enumerate() {
        // SAFETY: row r of the C tile is writable for NR elements (caller's contract).
        let c_row =
            unsafe { std::slice::from_raw_parts_mut(c.offset(r as isize * rs_c), GENERIC_NR) };
        for (c, &acc) in c_row.iter_mut().zip(acc_row) {
            *c = if accumulate { *c + acc } else { acc };
        }
    }
}

#[cfg(target_arch = "x86_64")]
const AVX2_MR: usize = 6;

/// The AVX2/FMA `f32` kernel, `ROWS` × 16 (6 × 16 for whole tiles: twelve accumulators, two
/// B vectors and one broadcast live per k step, 15 of the 16 ymm registers), unrolled by four.
/// Packed A keeps the six-row layout whatever `ROWS` is.
///
/// # Safety
/// See [`MicroKernelFn`], for `ROWS` rows; the CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_f32_x16<const ROWS: usize, const PACKED: bool>(
    k: usize,
    a: *const f32,
    lda: isize,
    b: *const f32,
    c: *mut f32,
    rs_c: isize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;

    let (rs_a, cs_a) = a_strides::<PACKED>(AVX2_MR, lda);
    let rows: [*const f32; ROWS] = std::array::from_fn(|r| a.wrapping_offset(r as isize * rs_a));
    // SAFETY (whole body): the caller guarantees k steps of A and B and a writable
    // ROWS × 16 tile of C, and AVX2 + FMA.
    unsafe {
        // The C tile is read (or written) only after the k loop: fetching it now hides the
        // miss behind the products instead of stalling on it at the end of every tile.
        for r in 0..ROWS {
            let c_row = c.offset(r as isize * rs_c);
            _mm_prefetch::<_MM_HINT_T0>(c_row.cast());
            _mm_prefetch::<_MM_HINT_T0>(c_row.add(15).cast());
        }
        let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
        // A macro, not a closure: the body must be compiled with the function's target features.
        macro_rules! step {
            ($p:expr) => {{
                let p: usize = $p;
                let b0 = _mm256_loadu_ps(b.add(p * 16));
                let b1 = _mm256_loadu_ps(b.add(p * 16 + 8));
                for (row, acc_row) in rows.iter().zip(acc.iter_mut()) {
                    let a_rp = _mm256_broadcast_ss(&*row.offset(p as isize * cs_a));
                    acc_row[0] = _mm256_fmadd_ps(a_rp, b0, acc_row[0]);
                    acc_row[1] = _mm256_fmadd_ps(a_rp, b1, acc_row[1]);
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
                lo = _mm256_add_ps(lo, _mm256_loadu_ps(c_row));
                hi = _mm256_add_ps(hi, _mm256_loadu_ps(c_row.add(8)));
            }
            _mm256_storeu_ps(c_row, lo);
            _mm256_storeu_ps(c_row.add(8), hi);
        }
    }
}

/// The checks every micro-kernel passes, written once: each kernel's own test module runs
/// them on the target that compiles it (x86-64 natively, aarch64 under QEMU, wasm32 under
/// the WASI runner; see `.ci/run`).
#[cfg(test)]
pub(crate) mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::kernels::gemm_on;

    pub(crate) fn value(i: usize, seed: usize) -> f32 {
        ((i * 7919 + seed * 104_729) % 1013) as f32 / 1013.0 - 0.5
    }

    /// Both forms of `kernel` against a scalar reference on one tile: every k tail of a
    /// four-step unrolled loop (k = 0..=9), accumulation on and off, and a C row stride wider
    /// than the tile (the columns beyond it untouched).
    pub(crate) fn check_tile(kernel: &MicroKernel<f32>) {
        const LDA: usize = 13;
        let (mr, nr) = (kernel.mr, kernel.nr);
        let rs_c = nr + 3;
        for k in 0..=9 {
            let a_rows: Vec<f32> = (0..mr * LDA).map(|i| value(i, k)).collect();
            let a_packed: Vec<f32> = (0..k * mr)
                .map(|i| a_rows[(i % mr) * LDA + i / mr])
                .collect();
            let b: Vec<f32> = (0..k * nr).map(|i| value(i, k + 50)).collect();
            let start: Vec<f32> = (0..mr * rs_c).map(|i| value(i, k + 99)).collect();
            for accumulate in [false, true] {
                let expected: Vec<f32> = (0..mr * rs_c)
                    .map(|i| {
                        let (r, j) = (i / rs_c, i % rs_c);
                        if j >= nr {
                            return start[i];
                        }
                        let base = if accumulate { start[i] } else { 0.0 };
                        base + (0..k)
                            .map(|p| a_rows[r * LDA + p] * b[p * nr + j])
                            .sum::<f32>()
                    })
                    .collect();
                for (form, run, a) in [
                    ("packed", kernel.packed, &a_packed),
                    ("in place", kernel.in_place, &a_rows),
                ] {
                    let mut c = start.clone();
                    // SAFETY: A holds k steps of MR rows in the form's layout, B k rows of NR,
                    // C MR rows of rs_c ≥ NR; the caller checked that the CPU runs the kernel.
                    unsafe {
                        run(
                            k,
                            a.as_ptr(),
                            LDA as isize,
                            b.as_ptr(),
                            c.as_mut_ptr(),
                            rs_c as isize,
                            accumulate,
                        )
                    };
                    for (i, (got, want)) in c.iter().zip(&expected).enumerate() {
                        assert!(
                            (got - want).abs() <= 1e-5,
                            "{mr}×{nr} {form}, k {k}, accumulate {accumulate}, C[{}, {}]: {got} vs {want}",
                            i / rs_c,
                            i % rs_c
                        );
                    }
                }
            }
        }
    }

    /// Whole products `[m, k] · [k, n]` on `isa` against the portable kernel, with edge tiles
    /// where the shapes leave them, in both A layouts: row-major (read in place) and
    /// transposed (packed).
    pub(crate) fn check_gemm(isa: Isa, shapes: &[(usize, usize, usize)]) {
        for &(m, k, n) in shapes {
            let a = Array2::from_shape_fn((m, k), |(r, p)| value(r * k + p, 1));
            let a_t = a.t().to_owned();
            let b = Array2::from_shape_fn((k, n), |(p, j)| value(p * n + j, 2));
            let bias: Vec<f32> = (0..n).map(|j| value(j, 3)).collect();
            let mut portable = Array2::<f32>::from_elem((m, n), 1.0);
            let b = b.view();
            gemm_on(
                Isa::Generic,
                a.view(),
                b,
                portable.view_mut(),
                true,
                Some(&bias),
            );
            for (layout, a_view) in [("row-major", a.view()), ("transposed", a_t.t())] {
                let mut ours = Array2::<f32>::from_elem((m, n), 1.0);
                gemm_on(isa, a_view, b, ours.view_mut(), true, Some(&bias));
                for ((index, x), y) in ours.indexed_iter().zip(&portable) {
                    assert!(
                        (x - y).abs() <= 1e-4,
                        "{isa:?} {m}×{k}×{n}, A {layout}, {index:?}: {x} vs {y}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_portable_kernel_matches_a_scalar_reference_for_every_k_tail() {
        check_tile(&MicroKernel::<f32>::select(Isa::Generic));
    }

    /// Each short tile of `kernel`, in both A layouts and with accumulation on and off, gives
    /// bit for bit the first rows of a whole tile and leaves the rows below it untouched.
    #[cfg(target_arch = "x86_64")]
    fn check_short_tiles(kernel: &MicroKernel<f32>) {
        let (mr, nr) = (kernel.mr, kernel.nr);
        for k in [1, 7, 64, 257] {
            let a_rows: Vec<f32> = (0..mr * k).map(|i| value(i, k)).collect();
            let a_packed: Vec<f32> = (0..k * mr).map(|i| a_rows[(i % mr) * k + i / mr]).collect();
            let b: Vec<f32> = (0..k * nr).map(|i| value(i, k + 50)).collect();
            let start: Vec<f32> = (0..mr * nr).map(|i| value(i, k + 99)).collect();
            for (rows, packed, accumulate) in (1..=kernel.short.len())
                .flat_map(|rows| [(rows, false), (rows, true)])
                .flat_map(|(rows, packed)| [(rows, packed, false), (rows, packed, true)])
            {
                let a = if packed { &a_packed } else { &a_rows };
                let run = |rows: usize| {
                    let mut c = start.clone();
                    let kernel = kernel
                        .for_rows(rows, packed)
                        .expect("a kernel for these rows");
                    // SAFETY: A holds k steps of MR rows in the form's layout, B k rows of NR, C
                    // MR rows of NR; the caller checked that the CPU runs the kernel.
                    unsafe {
                        kernel(
                            k,
                            a.as_ptr(),
                            k as isize,
                            b.as_ptr(),
                            c.as_mut_ptr(),
                            nr as isize,
                            accumulate,
                        )
                    };
                    c
                };
                let (short, full) = (run(rows), run(mr));
                let bits = |c: &[f32]| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                let label = format!("{rows} rows, k {k}, packed {packed}, accumulate {accumulate}");
                assert_eq!(
                    bits(&short[..rows * nr]),
                    bits(&full[..rows * nr]),
                    "{label}"
                );
                assert_eq!(
                    bits(&short[rows * nr..]),
                    bits(&start[rows * nr..]),
                    "{label}"
                );
            }
        }
    }

    /// Each row of a whole tile of `kernel` (A in place), bit for bit, from its row kernel: one
    /// to [`ROW_PANELS`] panels, k tails.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn check_row_kernel(kernel: &MicroKernel<f32>) {
        let (mr, nr) = (kernel.mr, kernel.nr);
        let row_kernel = kernel.row.expect("a row kernel");
        for (k, panels) in [(1, 1), (5, 2), (64, 3), (257, ROW_PANELS)] {
            let a: Vec<f32> = (0..mr * k).map(|i| value(i, 1)).collect();
            let b: Vec<f32> = (0..panels * k * nr).map(|i| value(i, 2)).collect();
            for q in 0..panels {
                let mut tile = vec![0.0f32; mr * nr];
                // SAFETY: an MR × k A in place, one k × NR panel, an MR × NR C; the caller
                // checked that the CPU runs the kernel.
                unsafe {
                    (kernel.in_place)(
                        k,
                        a.as_ptr(),
                        k as isize,
                        b.as_ptr().add(q * k * nr),
                        tile.as_mut_ptr(),
                        nr as isize,
                        false,
                    )
                };
                for r in 0..mr {
                    let mut row = vec![0.0f32; panels * nr];
                    // SAFETY: k values of row r, `panels` panels, an output of that many panels.
                    unsafe {
                        row_kernel(k, a[r * k..].as_ptr(), b.as_ptr(), panels, row.as_mut_ptr())
                    };
                    let expected = &tile[r * nr..][..nr];
                    let got = &row[q * nr..][..nr];
                    assert!(
                        expected
                            .iter()
                            .zip(got)
                            .all(|(e, g)| e.to_bits() == g.to_bits()),
                        "k {k}, panel {q} of {panels}, row {r}"
                    );
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_row_kernel_gives_a_tiles_rows_bit_for_bit() {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            check_row_kernel(&AVX2_F32);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_kernel_matches_a_scalar_reference_for_every_k_tail() {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            check_tile(&AVX2_F32);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_short_tiles_give_a_whole_tiles_rows_bit_for_bit() {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            check_short_tiles(&AVX2_F32);
        }
    }
}
