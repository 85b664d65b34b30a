//! Packing GEMM operands into the panel layouts the micro-kernels stream
//! through: contiguous, cache-line aligned, zero-padded to whole panels.
//!
//! - A (left operand) in panels of `MR` rows: element (r, p) of panel `i`
//!   at `i·MR·kc + p·MR + r`.
//! - B (right operand) in panels of `NR` columns, blocked along k by `kc`:
//!   block `kb` (rows `kb·kc ..`) holds every panel, panel `j` at
//!   `j·len·NR`, element (p, c) at `p·NR + c`, `len` being the block's rows.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::ops::Range;

use ndarray::ArrayView2;

use crate::Scalar;

/// A read-only strided matrix: element (r, c) at `ptr + r·rs + c·cs`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef<'a, F> {
    ptr: *const F,
    pub rows: usize,
    pub cols: usize,
    pub rs: isize,
    pub cs: isize,
    _borrow: PhantomData<&'a F>,
}

// SAFETY: a MatRef is a shared borrow of `F`s (like `&'a [F]`), so it may cross threads when F: Sync.
unsafe impl<F: Sync> Send for MatRef<'_, F> {}
// SAFETY: as above; it never writes.
unsafe impl<F: Sync> Sync for MatRef<'_, F> {}

impl<'a, F: Scalar> MatRef<'a, F> {
    pub fn from_view(view: ArrayView2<'a, F>) -> Self {
        let (rows, cols) = view.dim();
        let [rs, cs] = [view.strides()[0], view.strides()[1]];
        MatRef {
            ptr: view.as_ptr(),
            rows,
            cols,
            rs,
            cs,
            _borrow: PhantomData,
        }
    }

    /// A matrix of `rows × cols` elements at `ptr + r·rs + c·cs`.
    ///
    /// # Safety
    /// Every such element must be readable, and not written by anyone, for `'a`.
    pub unsafe fn from_raw_parts(
        ptr: *const F,
        rows: usize,
        cols: usize,
        rs: isize,
        cs: isize,
    ) -> Self {
        MatRef {
            ptr,
            rows,
            cols,
            rs,
            cs,
            _borrow: PhantomData,
        }
    }

    /// The sub-matrix `rows × cols`.
    pub fn block(&self, rows: Range<usize>, cols: Range<usize>) -> Self {
        assert!(
            rows.end <= self.rows && cols.end <= self.cols,
            "block inside the matrix"
        );
        MatRef {
            // SAFETY: (rows.start, cols.start) is inside the matrix (asserted), or one past an empty range.
            ptr: self
                .ptr
                .wrapping_offset(rows.start as isize * self.rs + cols.start as isize * self.cs),
            rows: rows.len(),
            cols: cols.len(),
            ..*self
        }
    }

    /// The transpose (a view, nothing moves).
    pub fn t(self) -> Self {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Pointer to element (0, 0); only dereferenced by callers that stay inside `rows × cols`.
    pub fn as_ptr(&self) -> *const F {
        self.ptr
    }

    /// Element (r, c), which must be inside the matrix.
    #[inline(always)]
    fn at(&self, r: usize, c: usize) -> F {
        debug_assert!(r < self.rows && c < self.cols);
        // SAFETY: (r, c) is inside the borrowed matrix, whose strides came from a valid view.
        unsafe { *self.ptr.offset(r as isize * self.rs + c as isize * self.cs) }
    }
}

/// A heap buffer whose first element sits on a 64-byte boundary, so that
/// packed panels never straddle cache lines more than they must.
#[derive(Debug, Clone)]
pub(crate) struct AlignedBuf<F> {
    storage: Vec<F>,
    offset: usize,
    len: usize,
}

const ALIGN_BYTES: usize = 64;

impl<F: Scalar> AlignedBuf<F> {
    pub fn zeros(len: usize) -> Self {
        let slack = ALIGN_BYTES / std::mem::size_of::<F>();
        let storage = vec![F::zero(); len + slack];
        let misalignment = storage.as_ptr() as usize % ALIGN_BYTES;
        let offset = if misalignment == 0 {
            0
        } else {
            (ALIGN_BYTES - misalignment) / std::mem::size_of::<F>()
        };
        AlignedBuf {
            storage,
            offset,
            len,
        }
    }

    pub fn as_slice(&self) -> &[F] {
        &self.storage[self.offset..self.offset + self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [F] {
        &mut self.storage[self.offset..self.offset + self.len]
    }
}

thread_local! {
    /// Packing buffers kept per thread between products, so that a training
    /// step does not allocate (and page-fault) fresh packing memory per GEMM.
    static SCRATCH: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on a cache-line aligned scratch slice of `len` elements (contents
/// unspecified), reusing this thread's buffers. Nested calls get distinct buffers.
pub(crate) fn with_scratch<F: Scalar, R>(len: usize, f: impl FnOnce(&mut [F]) -> R) -> R {
    let mut buffer = take_scratch::<F>(len);
    let result = f(&mut buffer.as_mut_slice()[..len]);
    SCRATCH.with(|pool| pool.borrow_mut().push(Box::new(buffer)));
    result
}

/// The smallest pooled buffer of `F` holding `len` elements, else a new one
/// replacing the largest (so that buffers of different sizes do not trade places).
fn take_scratch<F: Scalar>(len: usize) -> AlignedBuf<F> {
    SCRATCH.with(|pool| {
        let mut pool = pool.borrow_mut();
        let capacity = |b: &Box<dyn Any>| b.downcast_ref::<AlignedBuf<F>>().map(|b| b.len);
        let fitting = (0..pool.len())
            .filter(|&i| capacity(&pool[i]).is_some_and(|c| c >= len))
            .min_by_key(|&i| capacity(&pool[i]));
        let largest = || {
            (0..pool.len())
                .filter(|&i| capacity(&pool[i]).is_some())
                .max_by_key(|&i| capacity(&pool[i]))
        };
        match fitting {
            Some(i) => *pool.swap_remove(i).downcast().expect("filtered by type"),
            None => {
                if let Some(i) = largest() {
                    pool.swap_remove(i);
                }
                AlignedBuf::zeros(len)
            }
        }
    })
}

/// Packs `a` (`m × kc`) into `dst` as panels of `mr` rows, zero-padding the last panel.
/// `dst` needs `ceil(m / mr)·mr·kc` elements.
pub(crate) fn pack_a<F: Scalar>(a: MatRef<'_, F>, mr: usize, dst: &mut [F]) {
    // A's row panels are the column panels of Aᵀ.
    pack_panels(a.t(), mr, dst);
}

/// Packs `b` (`k × n`) as panels of `nr` columns, blocked along k by `kc` (see the module doc)
/// into `dst`, which needs `k · ceil(n / nr)·nr` elements.
pub(crate) fn pack_b<F: Scalar>(b: MatRef<'_, F>, nr: usize, kc: usize, dst: &mut [F]) {
    let (k, n) = (b.rows, b.cols);
    let padded_n = n.div_ceil(nr) * nr;
    for k0 in (0..k).step_by(kc) {
        let len = kc.min(k - k0);
        pack_panels(
            b.block(k0..k0 + len, 0..n),
            nr,
            &mut dst[k0 * padded_n..(k0 + len) * padded_n],
        );
    }
}

/// `src` (`k × n`) as panels of `width` columns: element (p, c) of panel `j`
/// at `j·k·width + p·width + c`, the last panel zero-padded. Reads along
/// whichever direction of `src` is contiguous.
fn pack_panels<F: Scalar>(src: MatRef<'_, F>, width: usize, dst: &mut [F]) {
    let (k, n) = (src.rows, src.cols);
    for (panel, out) in dst
        .chunks_exact_mut(k * width)
        .take(n.div_ceil(width))
        .enumerate()
    {
        let c0 = panel * width;
        let cols = width.min(n - c0);
        if cols < width {
            out.fill(F::zero());
        }
        if src.cs == 1 {
            for (p, row) in out.chunks_exact_mut(width).enumerate() {
                // SAFETY: row p, columns c0 .. c0 + cols are inside `src` and contiguous (cs = 1).
                let values = unsafe {
                    std::slice::from_raw_parts(src.ptr.offset(p as isize * src.rs).add(c0), cols)
                };
                copy_short(&mut row[..cols], values);
            }
        } else {
            for c in 0..cols {
                for (p, row) in out.chunks_exact_mut(width).enumerate() {
                    row[c] = src.at(p, c0 + c);
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for the few elements of a panel row: known
/// panel widths are copied inline instead of through a `memcpy` call each.
#[inline(always)]
fn copy_short<F: Scalar>(dst: &mut [F], src: &[F]) {
    fn fixed<F: Scalar, const N: usize>(dst: &mut [F], src: &[F]) {
        let (dst, src): (&mut [F; N], &[F; N]) =
            (dst.try_into().expect("N"), src.try_into().expect("N"));
        *dst = *src;
    }
    match src.len() {
        4 => fixed::<F, 4>(dst, src),
        6 => fixed::<F, 6>(dst, src),
        8 => fixed::<F, 8>(dst, src),
        16 => fixed::<F, 16>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

/// A right operand packed once and multiplied many times (e.g. a recurrent
/// weight matrix, once per pass, for every time step).
#[derive(Debug, Clone)]
pub(crate) struct PackedB<F> {
    data: AlignedBuf<F>,
    k: usize,
    n: usize,
    nr: usize,
    kc: usize,
}

impl<F: Scalar> PackedB<F> {
    /// Packs `b` (`k × n`) for micro-kernels `nr` columns wide, blocked along k by `kc`.
    pub fn pack(b: MatRef<'_, F>, nr: usize, kc: usize) -> Self {
        let mut data = AlignedBuf::zeros(b.rows * b.cols.div_ceil(nr) * nr);
        pack_b(b, nr, kc, data.as_mut_slice());
        PackedB {
            data,
            k: b.rows,
            n: b.cols,
            nr,
            kc,
        }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n(&self) -> usize {
        self.n
    }

    pub fn nr(&self) -> usize {
        self.nr
    }

    pub fn kc(&self) -> usize {
        self.kc
    }

    /// The panels of k-block `k0 .. k0 + kc` from column `col` (a multiple of `nr`) on:
    /// `ceil((n − col) / nr)` panels of `len × nr`, contiguous.
    pub fn panels(&self, k0: usize, col: usize) -> &[F] {
        debug_assert!(k0.is_multiple_of(self.kc) && col.is_multiple_of(self.nr));
        let padded_n = self.n.div_ceil(self.nr) * self.nr;
        let len = self.kc.min(self.k - k0);
        &self.data.as_slice()[k0 * padded_n + col * len..(k0 + len) * padded_n]
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    fn matrix(rows: usize, cols: usize) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(r, c)| (r * 100 + c) as f64)
    }

    #[test]
    fn a_panels_hold_mr_rows_k_major_with_zero_padding() {
        let a = matrix(5, 3);
        let mut dst = vec![-1.0; 2 * 4 * 3];
        pack_a(MatRef::from_view(a.view()), 4, &mut dst);
        assert_eq!(&dst[..4], &[0.0, 100.0, 200.0, 300.0]);
        assert_eq!(&dst[4..8], &[1.0, 101.0, 201.0, 301.0]);
        assert_eq!(&dst[12..16], &[400.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn b_panels_are_blocked_along_k_and_padded_to_nr() {
        let b = matrix(5, 3);
        let packed = PackedB::pack(MatRef::from_view(b.view()), 2, 4);
        // First k-block (rows 0..4): panel 0 = columns 0, 1; panel 1 = column 2 and padding.
        let first = packed.panels(0, 0);
        assert_eq!(&first[..4], &[0.0, 1.0, 100.0, 101.0]);
        assert_eq!(&first[8..12], &[2.0, 0.0, 102.0, 0.0]);
        // Second k-block (row 4 alone), from panel 1 on.
        assert_eq!(packed.panels(4, 2), &[402.0, 0.0]);
    }

    #[test]
    fn transposed_views_pack_like_their_copies() {
        let b = matrix(3, 7);
        let direct = PackedB::pack(MatRef::from_view(b.t()), 4, 2);
        let copy = b.t().to_owned();
        let packed_copy = PackedB::pack(MatRef::from_view(copy.view()), 4, 2);
        assert_eq!(direct.data.as_slice(), packed_copy.data.as_slice());
    }
}
