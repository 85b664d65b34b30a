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

    pub(super) fn batch(&self) -> usize {
        self.batch
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
    pub(super) fn step(&self, t: usize) -> ArrayView2<'_, F> {
        self.span(t..t + 1)
    }

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

    /// Step `t` as a flat slice `[batch * width]`.
    pub(super) fn step_slice(&self, t: usize) -> &[F] {
        let len = self.batch * self.width();
        &self.rows.as_slice().expect(CONTIGUOUS)[t * len..(t + 1) * len]
    }

    pub(super) fn step_slice_mut(&mut self, t: usize) -> &mut [F] {
        let len = self.batch * self.width();
        &mut self.rows.as_slice_mut().expect(CONTIGUOUS)[t * len..(t + 1) * len]
    }

    /// Steps `t` (to read) and `t + 1` (to write) as flat slices.
    pub(super) fn adjacent_step_slices_mut(&mut self, t: usize) -> (&[F], &mut [F]) {
        let len = self.batch * self.width();
        let (before, after) = self
            .rows
            .as_slice_mut()
            .expect(CONTIGUOUS)
            .split_at_mut((t + 1) * len);
        (&before[t * len..], &mut after[..len])
    }

    /// Steps `t` (to read) and `t + 1` (to write) as `[batch, width]` matrices.
    pub(super) fn adjacent_steps_mut(
        &mut self,
        t: usize,
    ) -> (ArrayViewMut2<'_, F>, ArrayViewMut2<'_, F>) {
        let b = self.batch;
        self.rows
            .multi_slice_mut((s![t * b..(t + 1) * b, ..], s![(t + 1) * b..(t + 2) * b, ..]))
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

/// Row `b` of a flat `[batch * width]` step slice.
pub(super) fn row<F>(step: &[F], b: usize, width: usize) -> &[F] {
    &step[b * width..(b + 1) * width]
}

pub(super) fn row_mut<F>(step: &mut [F], b: usize, width: usize) -> &mut [F] {
    &mut step[b * width..(b + 1) * width]
}
