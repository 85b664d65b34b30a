//! General matrix product `C = (accumulate ? C : 0) + A·B (+ bias)`, blocked
//! for the caches in the BLIS manner: B is packed `KC × NC` at a time (L3),
//! A `MC × KC` at a time (L2), and the micro-kernel streams one `KC × NR`
//! panel of B from L1 against `MR`-row slivers of A.
//!
//! Two entry points:
//! - [`gemm`]: one large product, split over rayon's threads by rows or columns
//!   of C (each part runs the serial blocked loop; nothing nests).
//! - [`gemm_prepacked`]: a small product on the calling thread with B packed
//!   beforehand ([`PackedB`]) and A read in place: the per-time-step recurrent
//!   product, called many times with the same weights.

use std::ops::Range;

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use super::microkernels::{MicroKernel, RowKernelFn, MAX_MR, MAX_NR, ROW_PANELS};
use super::pack::{pack_a, pack_b, with_scratch, MatRef, PackedB};
use super::Isa;
use crate::Scalar;

/// Depth of a k-block: a 16-wide `f32` panel of B of KC rows (16 KiB) stays in L1.
pub(crate) const KC: usize = 256;
/// Rows of A per packed block: `MC × KC` (144 KiB in `f32`) stays in L2.
const MC: usize = 144;
/// Columns of B per packed block: `KC × NC` (3 MiB in `f32`) stays in L3.
const NC: usize = 3072;
/// Products smaller than this (in flops) run on the calling thread alone.
const PARALLEL_FLOPS: usize = 4_000_000;

/// How the macro-kernel finds A's `MR`-row tiles: packed by [`pack_a`] (within a tile of `kc`
/// steps, element (r, p) at `p·MR + r`) or read in place (element (r, p) at `r·lda + p`). Every
/// tile must be readable for all `MR` rows, but a last tile of fewer rows that the kernel has a
/// short tile for (`MicroKernel::for_rows`).
#[derive(Clone, Copy)]
struct ATiles<F> {
    ptr: *const F,
    lda: isize,
    packed: bool,
}

impl<F> ATiles<F> {
    /// A panel packed by [`pack_a`].
    fn packed(ptr: *const F) -> Self {
        ATiles {
            ptr,
            lda: 0,
            packed: true,
        }
    }

    /// Rows read where they are, `lda` elements apart.
    fn in_place(ptr: *const F, lda: isize) -> Self {
        ATiles {
            ptr,
            lda,
            packed: false,
        }
    }

    /// The tile that starts at row `i0` (a multiple of `MR`), for `kc` steps: a packed tile of
    /// `MR` rows holds `MR·kc` elements, so it starts `i0·kc` elements in.
    ///
    /// # Safety
    /// Row `i0` must lie inside the operand.
    unsafe fn tile(&self, i0: usize, kc: usize) -> *const F {
        let row_step = if self.packed { kc as isize } else { self.lda };
        // SAFETY: per the caller.
        unsafe { self.ptr.offset(i0 as isize * row_step) }
    }
}

/// `C = (accumulate ? C : 0) + A·B (+ bias[j] on column j)` for `A: [m, k]`,
/// `B: [k, n]`, `C: [m, n]` with unit column stride; `bias: [n]`.
/// Uses the fastest kernel of this CPU and every thread of rayon's pool.
pub fn gemm<F: Scalar>(
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    c: ArrayViewMut2<'_, F>,
    accumulate: bool,
    bias: Option<&[F]>,
) {
    gemm_on(Isa::current(), a, b, c, accumulate, bias);
}

/// [`gemm`] with the kernels of `isa`.
pub fn gemm_on<F: Scalar>(
    isa: Isa,
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    c: ArrayViewMut2<'_, F>,
    accumulate: bool,
    bias: Option<&[F]>,
) {
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    assert!(
        b.nrows() == k && c.dim() == (m, n),
        "gemm shapes: A {:?} · B {:?} into C {:?}",
        a.shape(),
        b.shape(),
        c.shape()
    );
    assert!(
        bias.is_none_or(|bias| bias.len() == n),
        "bias has one value per column"
    );
    let parts = if 2 * m * n * k >= PARALLEL_FLOPS {
        rayon::current_num_threads()
    } else {
        1
    };
    let kernel = MicroKernel::select(isa);
    let operands = Operands {
        a: MatRef::from_view(a),
        b: MatRef::from_view(b),
        bias,
    };
    gemm_parts(&kernel, operands, c, accumulate, parts);
}

/// The read-only operands of one (part of a) product.
#[derive(Clone, Copy)]
struct Operands<'a, F> {
    a: MatRef<'a, F>,
    b: MatRef<'a, F>,
    bias: Option<&'a [F]>,
}

impl<'a, F: Scalar> Operands<'a, F> {
    fn rows(self, rows: Range<usize>) -> Self {
        Operands {
            a: self.a.block(rows, 0..self.a.cols),
            ..self
        }
    }

    fn cols(self, cols: Range<usize>) -> Self {
        Operands {
            b: self.b.block(0..self.b.rows, cols.clone()),
            bias: self.bias.map(|bias| &bias[cols]),
            ..self
        }
    }
}

/// Splits C in `parts` along its longer side (at tile boundaries) and runs the parts in parallel.
fn gemm_parts<F: Scalar>(
    kernel: &MicroKernel<F>,
    operands: Operands<'_, F>,
    c: ArrayViewMut2<'_, F>,
    accumulate: bool,
    parts: usize,
) {
    let (m, n) = c.dim();
    let by_rows = m >= n;
    let (len, tile) = if by_rows {
        (m, kernel.mr)
    } else {
        (n, kernel.nr)
    };
    let first_parts = parts / 2;
    let mid = (len * first_parts / parts.max(1)).div_ceil(tile) * tile;
    if parts < 2 || mid == 0 || mid >= len {
        gemm_serial(kernel, operands, c, accumulate);
        return;
    }
    let axis = if by_rows { Axis(0) } else { Axis(1) };
    let (c_first, c_second) = c.split_at(axis, mid);
    let (first, second) = if by_rows {
        (operands.rows(0..mid), operands.rows(mid..len))
    } else {
        (operands.cols(0..mid), operands.cols(mid..len))
    };
    rayon::join(
        || gemm_parts(kernel, first, c_first, accumulate, first_parts),
        || gemm_parts(kernel, second, c_second, accumulate, parts - first_parts),
    );
}

/// The blocked product on the calling thread.
fn gemm_serial<F: Scalar>(
    kernel: &MicroKernel<F>,
    operands: Operands<'_, F>,
    c: ArrayViewMut2<'_, F>,
    accumulate: bool,
) {
    let Operands { a, b, bias } = operands;
    let (m, n) = (a.rows, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    if a.cols == 0 {
        let mut c = c;
        for mut row in c.rows_mut() {
            for (j, value) in row.iter_mut().enumerate() {
                let base = if accumulate { *value } else { F::zero() };
                *value = base + bias.map_or(F::zero(), |bias| bias[j]);
            }
        }
        return;
    }
    gemm_serial_shared(kernel, &[a], b, bias, &mut [c], accumulate);
}

/// `C_i = (accumulate ? C_i : 0) + A_i·B (+ bias)` for every pair, blocked on the calling
/// thread; each block of B is packed once for all the left operands (`k ≥ 1`, `n ≥ 1`).
fn gemm_serial_shared<F: Scalar>(
    kernel: &MicroKernel<F>,
    a_list: &[MatRef<'_, F>],
    b: MatRef<'_, F>,
    bias: Option<&[F]>,
    c_list: &mut [ArrayViewMut2<'_, F>],
    accumulate: bool,
) {
    let (k, n) = (b.rows, b.cols);
    let (mr, nr) = (kernel.mr, kernel.nr);
    let max_m = a_list.iter().map(|a| a.rows).max().unwrap_or(0);
    let a_len = MC.min(max_m).div_ceil(mr) * mr * KC.min(k);
    let b_len = KC.min(k) * NC.min(n).div_ceil(nr) * nr;
    with_scratch(a_len, |a_buf: &mut [F]| {
        with_scratch(b_len, |b_buf: &mut [F]| {
            for j0 in (0..n).step_by(NC) {
                let nc = NC.min(n - j0);
                for k0 in (0..k).step_by(KC) {
                    let kc = KC.min(k - k0);
                    pack_b(b.block(k0..k0 + kc, j0..j0 + nc), nr, KC, b_buf);
                    let block_bias = bias.filter(|_| k0 == 0).map(|bias| &bias[j0..j0 + nc]);
                    for (&a, c) in a_list.iter().zip(c_list.iter_mut()) {
                        let m = a.rows;
                        assert!(
                            a.cols == k && c.dim() == (m, n) && c.strides()[1] == 1,
                            "gemm operands fit and C has unit column stride"
                        );
                        let rs_c = c.strides()[0];
                        let c_ptr = c.as_mut_ptr();
                        for i0 in (0..m).step_by(MC) {
                            let mc = MC.min(m - i0);
                            let a_block = a.block(i0..i0 + mc, k0..k0 + kc);
                            let accumulate = accumulate || k0 > 0;
                            // SAFETY: C's block (i0.., j0..) of mc × nc lies inside the exclusively
                            // borrowed `c` (row stride rs_c); B's panels hold kc × nc (padded to NR).
                            let c_block = unsafe { c_ptr.offset(i0 as isize * rs_c + j0 as isize) };
                            if a.cs == 1 {
                                // Rows already contiguous: the micro-kernel reads them where they are.
                                // SAFETY: as above.
                                unsafe {
                                    multiply_in_place(
                                        kernel,
                                        a_block,
                                        b_buf.as_ptr(),
                                        nc,
                                        c_block,
                                        rs_c,
                                        accumulate,
                                        block_bias,
                                    )
                                };
                                continue;
                            }
                            pack_a(a_block, mr, a_buf);
                            let tiles = ATiles::packed(a_buf.as_ptr());
                            // SAFETY: as above; the packed tiles are zero-padded to whole MR panels.
                            unsafe {
                                let block = Block { m: mc, n: nc, kc };
                                macro_kernel(
                                    kernel,
                                    block,
                                    tiles,
                                    b_buf.as_ptr(),
                                    c_block,
                                    rs_c,
                                    accumulate,
                                    block_bias,
                                );
                            }
                        }
                    }
                }
            }
        })
    });
}

/// `C_i = A_i·B` for several left operands against one right operand `B: [k, n]`
/// (`A_i: [m_i, k]`, `C_i: [m_i, n]`, overwritten), e.g. δW_ih and δW_hh against the δ
/// pre-activations of every step: each block of B is packed once for all of them
/// instead of once per product (packing the `[time·batch, 4H]` δ twice was a tenth of
/// an S2 training step). Split over rayon's threads by columns of B.
pub(crate) fn gemm_shared_b<F: Scalar>(
    a_list: &[ArrayView2<'_, F>],
    b: ArrayView2<'_, F>,
    c_list: Vec<ArrayViewMut2<'_, F>>,
) {
    let (k, n) = b.dim();
    assert_eq!(a_list.len(), c_list.len(), "one C per A");
    let flops: usize = a_list.iter().map(|a| 2 * a.nrows() * k * n).sum();
    if n == 0 || a_list.iter().all(|a| a.nrows() == 0) {
        return;
    }
    if k == 0 {
        for mut c in c_list {
            c.fill(F::zero());
        }
        return;
    }
    let parts = if flops >= PARALLEL_FLOPS {
        rayon::current_num_threads()
    } else {
        1
    };
    let kernel = MicroKernel::select(Isa::current());
    let a_refs: Vec<MatRef<'_, F>> = a_list.iter().map(|a| MatRef::from_view(*a)).collect();
    shared_b_parts(&kernel, &a_refs, MatRef::from_view(b), c_list, parts);
}

/// Splits the columns of B and of every C in `parts` (at panel boundaries) and runs them in parallel.
fn shared_b_parts<F: Scalar>(
    kernel: &MicroKernel<F>,
    a_list: &[MatRef<'_, F>],
    b: MatRef<'_, F>,
    mut c_list: Vec<ArrayViewMut2<'_, F>>,
    parts: usize,
) {
    let n = b.cols;
    let first_parts = parts / 2;
    let mid = (n * first_parts / parts.max(1)).div_ceil(kernel.nr) * kernel.nr;
    if parts < 2 || mid == 0 || mid >= n {
        gemm_serial_shared(kernel, a_list, b, None, &mut c_list, false);
        return;
    }
    let (first, second): (Vec<_>, Vec<_>) =
        c_list.into_iter().map(|c| c.split_at(Axis(1), mid)).unzip();
    let (b_first, b_second) = (b.block(0..b.rows, 0..mid), b.block(0..b.rows, mid..n));
    rayon::join(
        || shared_b_parts(kernel, a_list, b_first, first, first_parts),
        || shared_b_parts(kernel, a_list, b_second, second, parts - first_parts),
    );
}

/// `C[0..m, cols] = (accumulate ? C : 0) + A·B[.., cols]` on the calling thread,
/// with B packed beforehand for `kernel` and A (`[m, B.k]`, rows contiguous) read in place.
///
/// # Safety
/// `c` must point at element (0, `cols.start`) of a matrix with row stride
/// `rs_c` whose rows `0..m`, columns `cols` are writable and not accessed by
/// anyone else during the call.
pub(crate) unsafe fn gemm_prepacked<F: Scalar>(
    kernel: &MicroKernel<F>,
    a: MatRef<'_, F>,
    b: &PackedB<F>,
    cols: Range<usize>,
    c: *mut F,
    rs_c: isize,
    accumulate: bool,
) {
    let nr = kernel.nr;
    assert!(
        a.cols == b.k()
            && a.cs == 1
            && b.nr() == nr
            && b.kc() <= KC
            && cols.start.is_multiple_of(nr)
            && cols.end <= b.n(),
        "prepacked operand does not fit"
    );
    let m = a.rows;
    for k0 in (0..b.k()).step_by(b.kc()) {
        let kc = b.kc().min(b.k() - k0);
        let panels = b.panels(k0, cols.start).as_ptr();
        let accumulate = accumulate || k0 > 0;
        let a_block = a.block(0..m, k0..k0 + kc);
        // SAFETY: A's rows are contiguous (asserted); B's panels cover `cols`; C per the caller.
        unsafe {
            multiply_in_place(
                kernel,
                a_block,
                panels,
                cols.len(),
                c,
                rs_c,
                accumulate,
                None,
            )
        };
    }
}

/// `C = (accumulate ? C : 0) + A·B (+ bias)` for one k-block, A (`m × kc`,
/// contiguous rows) read in place; rows that do not fill a whole tile are read in place too
/// by the kernel's short tile for them, else go through its row kernel, else are copied into
/// a zero-padded panel first.
///
/// # Safety
/// `b` must hold the packed panels of `n` columns for this k-block; `c` (row
/// stride `rs_c`) must be writable for `m × n` and touched by no one else.
#[allow(clippy::too_many_arguments)]
unsafe fn multiply_in_place<F: Scalar>(
    kernel: &MicroKernel<F>,
    a: MatRef<'_, F>,
    b: *const F,
    n: usize,
    c: *mut F,
    rs_c: isize,
    accumulate: bool,
    bias: Option<&[F]>,
) {
    debug_assert!(a.cs == 1 && a.cols <= KC);
    let (mr, kc) = (kernel.mr, a.cols);
    let full_rows = a.rows / mr * mr;
    let rest = a.rows - full_rows;
    let row_kernel = match kernel.row {
        Some(row) if kernel.short.is_empty() && (1..=ROW_KERNEL_ROWS).contains(&rest) => Some(row),
        // A short tile of two or more rows, or merged with the tile before (`row_tiles`), meets
        // each B panel while it is in L1; a lone row needs the row kernel's accumulator chains.
        Some(row) if a.rows == 1 => Some(row),
        _ => None,
    };
    // With a short tile for the rest, the last tile is read in place like the others and
    // meets each B panel while it is in L1.
    let short_rest = row_kernel.is_none() && rest > 0 && kernel.for_rows(rest, false).is_some();
    let in_place_rows = if short_rest { a.rows } else { full_rows };
    if in_place_rows > 0 {
        let tiles = ATiles::in_place(a.as_ptr(), a.rs);
        let block = Block {
            m: in_place_rows,
            n,
            kc,
        };
        // SAFETY: the tiles cover rows 0..in_place_rows of A, all inside A (a last tile of
        // fewer than MR rows only with its short kernel); B and C per the caller.
        unsafe { macro_kernel(kernel, block, tiles, b, c, rs_c, accumulate, bias) };
    }
    if short_rest {
        return;
    }
    if let Some(row) = row_kernel {
        for r in full_rows..a.rows {
            // SAFETY: row r of A holds kc values; C's row r per the caller.
            unsafe {
                let c_row = c.offset(r as isize * rs_c);
                let a_row = a.as_ptr().offset(r as isize * a.rs);
                multiply_row(row, kernel.nr, a_row, kc, b, n, c_row, accumulate, bias)
            };
        }
    } else if rest > 0 {
        let mut panel = [F::zero(); MAX_MR * KC];
        pack_a(a.block(full_rows..a.rows, 0..kc), mr, &mut panel[..mr * kc]);
        let tiles = ATiles::packed(panel.as_ptr());
        let block = Block {
            m: a.rows - full_rows,
            n,
            kc,
        };
        // SAFETY: the panel holds a full padded tile; rows full_rows.. of C per the caller.
        unsafe {
            let c_rows = c.offset(full_rows as isize * rs_c);
            macro_kernel(kernel, block, tiles, b, c_rows, rs_c, accumulate, bias);
        }
    }
}

/// Rows left over below a whole tile that go through the row kernel one by one rather than
/// as one tile padded to `MR` rows: each costs `1/MR` of the padded tile's multiply-adds and
/// reads the panels again, so up to three (of eight) do where the kernel has no short tiles
/// (with them, only a lone row). A batch of one sequence is the case
/// it is for: its recurrent step was a tile of eight rows for one (B 1 `predict` S2's 100 steps
/// took 3.1 ms, 100 streaming steps 1.4 ms).
const ROW_KERNEL_ROWS: usize = 3;

/// Row `a` (`kc` values) times the `n` columns of the k-block's panels at `b`, into the
/// row of C at `c` as [`edge_tile`] stores a tile's rows (`C = (accumulate ? C : 0) + a·B
/// (+ bias)`), [`ROW_PANELS`] panels per row-kernel call.
///
/// # Safety
/// As [`multiply_in_place`], for one row of A and C; `row` must run on this CPU.
#[allow(clippy::too_many_arguments)]
unsafe fn multiply_row<F: Scalar>(
    row: RowKernelFn<F>,
    nr: usize,
    a: *const F,
    kc: usize,
    b: *const F,
    n: usize,
    c: *mut F,
    accumulate: bool,
    bias: Option<&[F]>,
) {
    let mut computed = [F::zero(); ROW_PANELS * MAX_NR];
    for j0 in (0..n).step_by(ROW_PANELS * nr) {
        let cols = (ROW_PANELS * nr).min(n - j0);
        // SAFETY: the panels of columns j0.. lie at b + j0·kc (packed panels, zero-padded to
        // whole panels); `computed` holds ROW_PANELS panels; C's columns j0..j0 + cols per the caller.
        let out = unsafe {
            row(
                kc,
                a,
                b.add(j0 * kc),
                cols.div_ceil(nr),
                computed.as_mut_ptr(),
            );
            std::slice::from_raw_parts_mut(c.add(j0), cols)
        };
        for (j, (out, &value)) in out.iter_mut().zip(&computed).enumerate() {
            let base = if accumulate { *out } else { F::zero() };
            *out = base + value + bias.map_or(F::zero(), |bias| bias[j0 + j]);
        }
    }
}

/// The extent of one macro-kernel call: C is `m × n`, the k-block `kc` deep.
#[derive(Clone, Copy)]
struct Block {
    m: usize,
    n: usize,
    kc: usize,
}

/// Every `MR × NR` tile of an `m × n` block of C from one k-block; the B panels
/// (`kc × NR` each) are contiguous at `b`. `bias` (`[n]`) is added when given.
///
/// # Safety
/// The tiles must cover `ceil(m / MR)` readable tiles of `kc` steps, `b` must hold
/// `ceil(n / NR)` panels, and `c` (row stride `rs_c`) must be writable for `m × n`.
#[allow(clippy::too_many_arguments)]
unsafe fn macro_kernel<F: Scalar>(
    kernel: &MicroKernel<F>,
    block: Block,
    a: ATiles<F>,
    b: *const F,
    c: *mut F,
    rs_c: isize,
    accumulate: bool,
    bias: Option<&[F]>,
) {
    let (mr, nr) = (kernel.mr, kernel.nr);
    let balance = !a.packed && !kernel.short.is_empty();
    for j0 in (0..block.n).step_by(nr) {
        let cols = nr.min(block.n - j0);
        let tile_bias = bias.map(|bias| &bias[j0..j0 + cols]);
        // SAFETY (whole loop): tile offsets stay inside the operands described by the caller.
        unsafe {
            let b_panel = b.add(j0 * block.kc);
            for (i0, rows) in row_tiles(block.m, mr, balance) {
                let a_tile = a.tile(i0, block.kc);
                let c_tile = c.offset(i0 as isize * rs_c + j0 as isize);
                let run = kernel.for_rows(rows, a.packed).filter(|_| cols == nr);
                if let Some(run) = run {
                    run(block.kc, a_tile, a.lda, b_panel, c_tile, rs_c, accumulate);
                    if let Some(bias) = tile_bias {
                        add_bias(c_tile, rs_c, rows, bias);
                    }
                } else {
                    let tile = Tile {
                        kc: block.kc,
                        rows,
                        cols,
                    };
                    edge_tile(
                        kernel, tile, a_tile, a, b_panel, c_tile, rs_c, accumulate, tile_bias,
                    );
                }
            }
        }
    }
}

/// `(first row, rows)` of the row tiles of an `m`-row block: whole tiles of `mr` rows, then
/// the rest. With `balance` (A in place, with short tiles), a rest of at most half a tile is
/// merged with the tile before it and split in two near-equal tiles: one to three rows have
/// too few accumulator chains to hide the multiply-add latency (32 rows run as 6, 6, 6, 6, 4, 4
/// rather than 6, 6, 6, 6, 6, 2).
fn row_tiles(m: usize, mr: usize, balance: bool) -> impl Iterator<Item = (usize, usize)> {
    let rest = m % mr;
    let merged = if balance && m > mr && rest > 0 && rest <= mr / 2 {
        mr + rest
    } else {
        0
    };
    let before = m - merged;
    let halves = [
        (before, merged.div_ceil(2)),
        (before + merged.div_ceil(2), merged / 2),
    ];
    (0..before)
        .step_by(mr)
        .map(move |i0| (i0, mr.min(before - i0)))
        .chain(halves.into_iter().filter(|&(_, rows)| rows > 0))
}

/// The valid part of a tile at the block's edge.
#[derive(Clone, Copy)]
struct Tile {
    kc: usize,
    rows: usize,
    cols: usize,
}

/// A tile cut by the edge of C: computed whole into a scratch tile, then the valid part stored.
///
/// # Safety
/// As [`macro_kernel`], for one tile.
#[allow(clippy::too_many_arguments)]
unsafe fn edge_tile<F: Scalar>(
    kernel: &MicroKernel<F>,
    tile: Tile,
    a_tile: *const F,
    a: ATiles<F>,
    b_panel: *const F,
    c: *mut F,
    rs_c: isize,
    accumulate: bool,
    bias: Option<&[F]>,
) {
    let mut scratch = [F::zero(); MAX_MR * MAX_NR];
    let nr = kernel.nr;
    let run = kernel
        .for_rows(tile.rows, a.packed)
        .or(kernel.for_rows(kernel.mr, a.packed))
        .expect("a kernel for whole tiles");
    // SAFETY: the scratch tile holds MR × NR with row stride NR; A and B per the caller.
    unsafe {
        run(
            tile.kc,
            a_tile,
            a.lda,
            b_panel,
            scratch.as_mut_ptr(),
            nr as isize,
            false,
        )
    };
    for (r, computed) in scratch.chunks_exact(nr).take(tile.rows).enumerate() {
        // SAFETY: row r < rows of the tile lies inside C, `cols` elements wide.
        let c_row =
            unsafe { std::slice::from_raw_parts_mut(c.offset(r as isize * rs_c), tile.cols) };
        for (j, (out, &value)) in c_row.iter_mut().zip(computed).enumerate() {
            let base = if accumulate { *out } else { F::zero() };
            *out = base + value + bias.map_or(F::zero(), |bias| bias[j]);
        }
    }
}

/// Adds `bias` (`[cols]`) to each of `rows` rows at `c`.
///
/// # Safety
/// `c` must be writable for `rows × bias.len()` with row stride `rs_c`.
unsafe fn add_bias<F: Scalar>(c: *mut F, rs_c: isize, rows: usize, bias: &[F]) {
    for r in 0..rows {
        // SAFETY: per the caller.
        let c_row =
            unsafe { std::slice::from_raw_parts_mut(c.offset(r as isize * rs_c), bias.len()) };
        for (out, &b) in c_row.iter_mut().zip(bias) {
            *out = *out + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{s, Array2};

    use super::*;

    fn pseudo_random(rows: usize, cols: usize, seed: usize) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(r, c)| {
            let x = (r * 7919 + c * 104_729 + seed * 31) % 1013;
            x as f64 / 1013.0 - 0.5
        })
    }

    fn naive(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|p| a[[i, p]] * b[[p, j]]).sum()
        })
    }

    /// Every kernel this CPU runs: on an AVX-512 CPU the AVX2 kernel as well.
    fn isas() -> Vec<Isa> {
        let mut isas = vec![Isa::Generic, Isa::current()];
        if Isa::current() == Isa::Avx512 {
            isas.push(Isa::Avx2Fma);
        }
        isas
    }

    fn assert_close<F: Scalar>(actual: &Array2<F>, expected: &Array2<f64>, tolerance: f64) {
        for (x, y) in actual.iter().zip(expected) {
            assert!(
                (x.to_f64_lossy() - y).abs() <= tolerance,
                "{} vs {y}",
                x.to_f64_lossy()
            );
        }
    }

    #[test]
    fn matches_the_naive_product_for_edge_shapes_strides_bias_and_accumulation() {
        // Sizes straddle MR, NR, KC and MC, and are large enough to split over threads.
        for (m, k, n) in [
            (1, 1, 1),
            (7, 3, 17),
            (13, 300, 33),
            (150, 260, 40),
            (40, 70, 300),
        ] {
            let a = pseudo_random(m, k, 1);
            let b_t = pseudo_random(n, k, 2);
            let start = pseudo_random(m, n, 3);
            let bias: Vec<f64> = (0..n).map(|j| j as f64 * 0.25).collect();
            let mut expected = naive(&a, &b_t.t().to_owned()) + &start;
            expected += &ndarray::aview1(&bias);
            for isa in isas() {
                let mut c = start.clone();
                gemm_on(isa, a.view(), b_t.t(), c.view_mut(), true, Some(&bias));
                assert_close(&c, &expected, 1e-12);

                let (a32, b32) = (a.mapv(|v| v as f32), b_t.t().mapv(|v| v as f32));
                let mut c32 = Array2::<f32>::from_elem((m, n), f32::NAN);
                gemm_on(isa, a32.view(), b32.view(), c32.view_mut(), false, None);
                assert_close(&c32, &naive(&a, &b_t.t().to_owned()), 1e-4 * k as f64);
            }
        }
    }

    #[test]
    fn a_thin_last_row_tile_is_merged_with_the_one_before_and_split_evenly() {
        let tiles = |m, balance| row_tiles(m, 6, balance).collect::<Vec<_>>();
        let whole = [(0, 6), (6, 6), (12, 6), (18, 6)];
        assert_eq!(tiles(32, true), [&whole[..], &[(24, 4), (28, 4)]].concat());
        assert_eq!(tiles(32, false), [&whole[..], &[(24, 6), (30, 2)]].concat());
        assert_eq!(tiles(7, true), [(0, 4), (4, 3)]);
        assert_eq!(tiles(9, true), [(0, 5), (5, 4)]);
        assert_eq!(tiles(10, true), [(0, 6), (6, 4)]);
        assert_eq!(tiles(5, true), [(0, 5)]);
        assert_eq!(tiles(0, true), []);
    }

    #[test]
    fn prepacked_products_write_only_their_columns() {
        for isa in isas() {
            let kernel = MicroKernel::<f32>::select(isa);
            let (m, k, n) = (11, 300, 3 * kernel.nr + 5);
            let a = pseudo_random(m, k, 4).mapv(|v| v as f32);
            let b = pseudo_random(k, n, 5).mapv(|v| v as f32);
            let packed = PackedB::pack(MatRef::from_view(b.view()), kernel.nr, KC);
            let mut c = Array2::<f32>::from_elem((m, n), 1.0);
            let cols = kernel.nr..n;
            let rs_c = c.strides()[0];
            // SAFETY: c is owned here; the pointer is at (0, cols.start) with row stride rs_c.
            unsafe {
                let c_ptr = c.as_mut_ptr().add(cols.start);
                gemm_prepacked(
                    &kernel,
                    MatRef::from_view(a.view()),
                    &packed,
                    cols.clone(),
                    c_ptr,
                    rs_c,
                    true,
                );
            }
            let expected = naive(&a.mapv(f64::from), &b.mapv(f64::from)) + 1.0;
            assert_close(
                &c.slice(s![.., cols.clone()]).to_owned(),
                &expected.slice(s![.., cols]).to_owned(),
                1e-3,
            );
            assert!(c.slice(s![.., ..kernel.nr]).iter().all(|&v| v == 1.0));
        }
    }
}
