//! Time-major scratch buffers: every step's rows of the whole batch are
//! contiguous, so a step is one `[batch, width]` matrix for the recurrent GEMM
//! and all steps together are one `[steps * batch, width]` matrix for the
//! GEMMs over time.

use std::ops::Range;

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};

use crate::Scalar;

const CONTIGUOUS: &str = "time-major buffers are owned standard-layout arrays";

/// `[steps * batch, width]`: row `t * batch + b` holds step `t` of sequence `b`.
#[derive(Debug, Clone)]
pub(super) struct TimeMajor<F> {
    rows: Array2<F>,
    batch: usize,
}

impl<F: Scalar> TimeMajor<F> {
    pub(super) fn zeros(steps: usize, batch: usize, width: usize) -> Self {
        TimeMajor {
            rows: Array2::zeros((steps * batch, width)),
            batch,
        }
    }

    /// Wraps a `[steps * batch, width]` matrix in standard layout (e.g. a GEMM result).
    pub(super) fn from_rows(rows: Array2<F>, batch: usize) -> Self {
        debug_assert!(rows.is_standard_layout() && rows.nrows().is_multiple_of(batch));
        TimeMajor { rows, batch }
    }

    pub(super) fn steps(&self) -> usize {
        self.rows.nrows() / self.batch
    }

    pub(super) fn width(&self) -> usize {
        self.rows.ncols()
    }

    /// Steps `steps` of the whole batch: `[steps.len() * batch, width]`.
    pub(super) fn span(&self, steps: Range<usize>) -> ArrayView2<'_, F> {
        self.rows
            .slice(s![steps.start * self.batch..steps.end * self.batch, ..])
    }

    /// Every step: `[steps * batch, width]`.
    pub(super) fn all(&self) -> ArrayView2<'_, F> {
        self.rows.view()
    }

    /// Step `t`: `[batch, width]`.
    pub(super) fn step_mut(&mut self, t: usize) -> ArrayViewMut2<'_, F> {
        self.rows
            .slice_mut(s![t * self.batch..(t + 1) * self.batch, ..])
    }

    /// Every step as one flat slice `[steps * batch * width]`.
    pub(super) fn as_slice(&self) -> &[F] {
        self.rows.as_slice().expect(CONTIGUOUS)
    }

    /// Every step as one flat slice, to write.
    pub(super) fn as_mut_slice(&mut self) -> &mut [F] {
        self.rows.as_slice_mut().expect(CONTIGUOUS)
    }

    /// Sequence `b` over the non-empty range `steps`: `[steps.len(), width]` (a strided view).
    pub(super) fn sequence(&self, b: usize, steps: Range<usize>) -> ArrayView2<'_, F> {
        self.rows
            .slice(s![steps.start * self.batch + b..steps.end * self.batch; self.batch, ..])
    }

    pub(super) fn sequence_mut(&mut self, b: usize, steps: Range<usize>) -> ArrayViewMut2<'_, F> {
        self.rows
            .slice_mut(s![steps.start * self.batch + b..steps.end * self.batch; self.batch, ..])
    }
}
