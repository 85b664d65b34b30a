//! The gate-interleaved order of the `4H` gate columns used inside a pass.
//!
//! PyTorch stacks whole gate blocks (`[i(0..H), f(0..H), z(0..H), o(0..H)]`).
//! Inside a pass the columns are regrouped per block of [`GATE_LANES`] hidden
//! units: `[i(block), f(block), z(block), o(block)]` for each block in turn
//! (the last block may be narrower). One SIMD vector of each gate then covers
//! the same units, and any range of whole blocks of units owns a contiguous
//! range of columns, so a thread can compute its units' four gates and finish
//! their cell update without touching anyone else's columns.
//!
//! Parameters and their gradients stay in PyTorch's order; they are
//! converted once per pass. A pass too small to be worth converting (a
//! streaming step) keeps PyTorch's order, which is the same scheme with a
//! single block of `H` units ([`GateLayout::pytorch`]).

use std::ops::Range;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::Scalar;

/// The four gate blocks of a `[4H]` row, in PyTorch order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    Input = 0,
    Forget = 1,
    /// The block input z (PyTorch's "g").
    Cell = 2,
    Output = 3,
}

impl Gate {
    /// Every gate in PyTorch's row order.
    pub(super) const ALL: [Gate; 4] = [Gate::Input, Gate::Forget, Gate::Cell, Gate::Output];

    /// Columns of this gate in a `[.., 4H]` matrix.
    pub(super) fn block(self, hidden: usize) -> Range<usize> {
        let k = self as usize;
        k * hidden..(k + 1) * hidden
    }
}

/// Hidden units per interleaved block: one AVX-512 vector of `f32` (two AVX2 ones),
/// so that the cell epilogue takes each gate of a block in whole vectors. With the
/// AVX-512 micro-kernel's 32 columns, a tile's row holds two of a block's four gates.
pub(super) const GATE_LANES: usize = 16;

/// `width` consecutive hidden units from `start`; their gates occupy the
/// interleaved columns `4·start .. 4·(start + width)`, gate `g` at `4·start + g·width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UnitBlock {
    pub start: usize,
    pub width: usize,
}

/// The blocks of `block` units covering `units`, whose start must be a multiple of `block`.
pub(super) fn unit_blocks(units: Range<usize>, block: usize) -> impl Iterator<Item = UnitBlock> {
    debug_assert!(units.start.is_multiple_of(block));
    let end = units.end;
    units.step_by(block).map(move |start| UnitBlock {
        start,
        width: block.min(end - start),
    })
}

/// The interleaved columns of the gates of `units` (a range of whole blocks).
pub(super) fn gate_columns(units: &Range<usize>) -> Range<usize> {
    4 * units.start..4 * units.end
}

/// Converts between PyTorch's gate-block order and the order of a pass for `hidden` units.
#[derive(Debug, Clone)]
pub(super) struct GateLayout {
    /// Units per block.
    block: usize,
    /// For every column of the pass, the PyTorch column (`gate·H + unit`) it holds.
    pytorch_index: Vec<usize>,
}

impl GateLayout {
    /// Blocks of [`GATE_LANES`] units.
    pub(super) fn interleaved(hidden: usize) -> Self {
        Self::with_block(hidden, GATE_LANES)
    }

    /// One block of all units: PyTorch's own order.
    pub(super) fn pytorch(hidden: usize) -> Self {
        Self::with_block(hidden, hidden)
    }

    fn with_block(hidden: usize, block: usize) -> Self {
        let mut pytorch_index = Vec::with_capacity(4 * hidden);
        for unit_block in unit_blocks(0..hidden, block) {
            for gate in Gate::ALL {
                let first = gate.block(hidden).start + unit_block.start;
                pytorch_index.extend(first..first + unit_block.width);
            }
        }
        GateLayout {
            block,
            pytorch_index,
        }
    }

    /// Units per block.
    pub(super) fn block(&self) -> usize {
        self.block
    }

    /// Whether this is PyTorch's order (nothing to convert).
    pub(super) fn is_pytorch(&self) -> bool {
        self.block >= self.pytorch_index.len() / 4
    }

    /// `[4H, k]` in PyTorch's row order → interleaved row order.
    pub(super) fn interleave_rows<F: Scalar>(&self, pytorch: ArrayView2<'_, F>) -> Array2<F> {
        let mut out = Array2::zeros(pytorch.raw_dim());
        for (mut row, &source) in out.rows_mut().into_iter().zip(&self.pytorch_index) {
            row.assign(&pytorch.row(source));
        }
        out
    }

    /// `[4H, k]` in interleaved row order → PyTorch's row order.
    pub(super) fn deinterleave_rows<F: Scalar>(&self, interleaved: ArrayView2<'_, F>) -> Array2<F> {
        let mut out = Array2::zeros(interleaved.raw_dim());
        for (row, &target) in interleaved.rows().into_iter().zip(&self.pytorch_index) {
            out.row_mut(target).assign(&row);
        }
        out
    }

    /// `[4H]` in PyTorch's order → interleaved order.
    pub(super) fn interleave<F: Scalar>(&self, pytorch: ArrayView1<'_, F>) -> Vec<F> {
        self.pytorch_index
            .iter()
            .map(|&source| pytorch[source])
            .collect()
    }

    /// `[4H]` in interleaved order → PyTorch's order.
    pub(super) fn deinterleave<F: Scalar>(&self, interleaved: &[F]) -> Array1<F> {
        let mut out = Array1::zeros(interleaved.len());
        for (&value, &target) in interleaved.iter().zip(&self.pytorch_index) {
            out[target] = value;
        }
        out
    }

    /// The interleaved column of `gate` for `unit`.
    pub(super) fn column(&self, gate: Gate, unit: usize) -> usize {
        let block_start = unit / self.block * self.block;
        let width = self.block.min(self.pytorch_index.len() / 4 - block_start);
        4 * block_start + gate as usize * width + (unit - block_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_groups_each_blocks_four_gates_and_round_trips() {
        let hidden = 19; // one full block of 16 and one of 3
        let layout = GateLayout::interleaved(hidden);
        let pytorch = Array2::from_shape_fn((4 * hidden, 2), |(r, c)| (r * 10 + c) as f64);
        let interleaved = layout.interleave_rows(pytorch.view());
        // Block 0: i(0..16), f(0..16), ...; block 1 (units 16..19) starts at column 64.
        assert_eq!(interleaved[[16, 0]], pytorch[[hidden, 0]]);
        assert_eq!(interleaved[[64 + 3, 1]], pytorch[[hidden + 16, 1]]);
        assert_eq!(layout.deinterleave_rows(interleaved.view()), pytorch);
        for gate in Gate::ALL {
            for unit in 0..hidden {
                let column = layout.column(gate, unit);
                assert_eq!(
                    layout.pytorch_index[column],
                    gate.block(hidden).start + unit
                );
            }
        }
        let blocks: Vec<_> = unit_blocks(0..hidden, GATE_LANES).collect();
        assert_eq!(
            blocks,
            vec![
                UnitBlock {
                    start: 0,
                    width: 16
                },
                UnitBlock {
                    start: 16,
                    width: 3
                }
            ]
        );
        let pytorch = GateLayout::pytorch(hidden);
        assert!(
            pytorch.is_pytorch()
                && pytorch
                    .pytorch_index
                    .iter()
                    .enumerate()
                    .all(|(i, &p)| i == p)
        );
    }
}
