//! Loss functions: each returns the loss and its gradient with respect to the prediction.
//!
//! Shapes: predictions are `[rows, columns]`; a sequence output
//! `[batch, time, features]` is reshaped to `[batch·time, features]` by the
//! caller, with `row_mask` (`[rows]`, `true` = valid) marking padded steps.
//!
//! Reduction: every loss is a **mean** over the valid rows' elements (MSE,
//! binary cross-entropy) or over the valid rows (softmax cross-entropy, one
//! term per row). Masked rows contribute nothing, not even to the count, and
//! their gradient is zero; their targets are not looked at, so padding may
//! hold any value. With no valid row at all the loss is 0 and the gradient
//! zero. The loss is accumulated and returned in `f64`; the gradient has the
//! prediction's type.

pub mod binary_cross_entropy;
pub mod cross_entropy;
pub mod mse;

pub use binary_cross_entropy::binary_cross_entropy_with_logits;
pub use cross_entropy::softmax_cross_entropy;
pub use mse::mse;

use ndarray::{ArrayView2, Axis};

use crate::{Error, Result, Scalar};

/// Checks `row_mask` against the number of rows and counts the valid ones.
fn count_valid_rows(row_mask: Option<&[bool]>, rows: usize) -> Result<usize> {
    match row_mask {
        None => Ok(rows),
        Some(mask) if mask.len() != rows => {
            Err(Error::shape("row_mask", format!("[{rows}]"), &[mask.len()]))
        }
        Some(mask) => Ok(mask.iter().filter(|&&valid| valid).count()),
    }
}

fn is_valid_row(row_mask: Option<&[bool]>, row: usize) -> bool {
    row_mask.is_none_or(|mask| mask[row])
}

/// Rejects NaN / ±∞ in the valid rows of `a`; the error names the flat index.
fn check_finite<F: Scalar>(
    name: &str,
    a: ArrayView2<'_, F>,
    row_mask: Option<&[bool]>,
) -> Result<()> {
    let columns = a.ncols();
    for (r, row) in a.axis_iter(Axis(0)).enumerate() {
        if !is_valid_row(row_mask, r) {
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
