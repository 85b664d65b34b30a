//! Mean squared error.

use ndarray::{Array2, ArrayView2, Axis, Zip};

use super::{check_finite, check_same_shape, count_valid_rows, is_valid_row};
use crate::{Result, Scalar};

/// L = Σ (p − t)² / N over the valid rows' elements, N = valid rows · columns
/// (PyTorch's `MSELoss(reduction="mean")` when every row is valid).
///
/// `prediction`, `target`: `[rows, columns]`; `row_mask`: `[rows]`, `true` = valid.
/// Returns (L, ∂L/∂prediction = 2 (p − t) / N, zero on masked rows).
pub fn mse<F: Scalar>(
    prediction: ArrayView2<'_, F>,
    target: ArrayView2<'_, F>,
    row_mask: Option<&[bool]>,
) -> Result<(f64, Array2<F>)> {
    check_same_shape(prediction, target, "target")?;
    let valid_rows = count_valid_rows(row_mask, prediction.nrows())?;
    check_finite("prediction", prediction, row_mask)?;
    check_finite("target", target, row_mask)?;

    let count = (valid_rows * prediction.ncols()).max(1);
    let grad_scale = F::from_f64_lossy(2.0 / count as f64);
    let mut grad = Array2::zeros(prediction.raw_dim());
    let mut sum_of_squares = 0.0;
    let rows = prediction.axis_iter(Axis(0)).zip(target.axis_iter(Axis(0)));
    for (r, ((p, t), g)) in rows.zip(grad.axis_iter_mut(Axis(0))).enumerate() {
        if !is_valid_row(row_mask, r) {
            continue;
        }
        Zip::from(g).and(p).and(t).for_each(|g, &p, &t| {
            let diff = p - t;
            sum_of_squares += (diff * diff).to_f64_lossy();
            *g = grad_scale * diff;
        });
    }
    Ok((sum_of_squares / count as f64, grad))
}
