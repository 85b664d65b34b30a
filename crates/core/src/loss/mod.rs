//! Loss functions: each returns the loss and its gradient with respect to the prediction.
//!
//! Shapes: predictions are `[rows, columns]`; a sequence output
//! `[batch, time, features]` is reshaped to `[batch·time, features]` by the
//! caller, with `row_weights` (`[rows]`, finite and ≥ 0) saying how much each
//! row counts: 0 for padded steps, and the user's example or step weights.
//!
//! Reduction: every loss is a **weighted mean**, Σ_r w_r·ℓ_r / Σ_r w_r, over
//! the rows' elements (MSE, binary cross-entropy: the denominator is
//! Σ_r w_r · columns) or over the rows (softmax cross-entropy, one term per
//! row, whose class weight multiplies w_r as in PyTorch's `weight=`). Without
//! weights every row counts 1, PyTorch's `reduction="mean"`. Rows of weight 0
//! contribute nothing, not even to the denominator, and their gradient is
//! zero; their targets are not looked at, so padding may hold any value. When
//! the weights sum to 0 the loss is 0 and the gradient zero. The loss is
//! accumulated and returned in `f64`; the gradient has the prediction's type.

pub mod binary_cross_entropy;
pub mod cross_entropy;
pub mod mse;

pub use binary_cross_entropy::binary_cross_entropy_with_logits;
pub use cross_entropy::softmax_cross_entropy;
pub use mse::mse;

use ndarray::{ArrayView2, Axis};

use crate::{Error, Result, Scalar};

/// How much each row counts: the given weights (checked against the number
/// of rows), or 1 for every row.
#[derive(Clone, Copy)]
struct RowWeights<'a>(Option<&'a [f64]>);

impl<'a> RowWeights<'a> {
    fn new(row_weights: Option<&'a [f64]>, rows: usize) -> Result<Self> {
        match row_weights {
            Some(w) if w.len() != rows => {
                // Named as TypeScript knows them (`Dataset.weights`), expanded to one per row.
                Err(Error::shape(
                    "weights",
                    format!("[{rows}] (one per row)"),
                    &[w.len()],
                ))
            }
            _ => Ok(RowWeights(row_weights)),
        }
    }

    fn get(self, row: usize) -> f64 {
        self.0.map_or(1.0, |w| w[row])
    }

    /// Rows that count at all (weight > 0).
    fn counts(self, row: usize) -> bool {
        self.get(row) > 0.0
    }

    fn sum(self, rows: usize) -> f64 {
        self.0.map_or(rows as f64, |w| w.iter().sum())
    }
}

/// `numerator / denominator`, or 0 when nothing counts (denominator 0).
fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

/// Rejects NaN / ±∞ in the rows of `a` that count; the error names the flat index.
fn check_finite<F: Scalar>(
    name: &str,
    a: ArrayView2<'_, F>,
    weights: RowWeights<'_>,
) -> Result<()> {
    let columns = a.ncols();
    for (r, row) in a.axis_iter(Axis(0)).enumerate() {
        // All finite, checked without a branch per element (the compiler vectorises it);
        // the index is searched for only in a row that fails.
        let finite = match row.as_slice() {
            Some(values) => values.iter().fold(true, |ok, v| ok & v.is_finite()),
            None => row.iter().all(|v| v.is_finite()),
        };
        if finite || !weights.counts(r) {
            continue;
        }
        if let Some((c, &value)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                name: name.to_owned(),
                index: r * columns + c,
                value: value.to_f64_lossy(),
            });
        }
    }
    Ok(())
}

/// Checks that the targets (called `name`) have the prediction's shape.
fn check_same_shape<F>(
    prediction: ArrayView2<'_, F>,
    target: ArrayView2<'_, F>,
    name: &str,
) -> Result<()> {
    if prediction.dim() != target.dim() {
        return Err(Error::shape(
            name,
            format!("{:?} (the prediction's shape)", prediction.shape()),
            target.shape(),
        ));
    }
    Ok(())
}
