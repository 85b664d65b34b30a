//! Mean squared error.

use ndarray::{Array2, ArrayView2, Axis, Zip};

use super::{check_finite, check_same_shape, ratio, RowWeights};
use crate::{Result, Scalar};

/// L = Σ_r w_r Σ_c (p_rc − t_rc)² / (Σ_r w_r · columns) (PyTorch's
/// `MSELoss(reduction="mean")` when every row weighs 1).
///
/// `prediction`, `target`: `[rows, columns]`; `row_weights`: `[rows]`, finite, ≥ 0 (default 1).
/// Returns (L, ∂L/∂prediction = 2 w_r (p − t) / (Σ w · columns)).
pub fn mse<F: Scalar>(
    prediction: ArrayView2<'_, F>,
    target: ArrayView2<'_, F>,
    row_weights: Option<&[f64]>,
) -> Result<(f64, Array2<F>)> {
    check_same_shape(prediction, target, "target")?;
    let weights = RowWeights::new(row_weights, prediction.nrows())?;
    check_finite("prediction", prediction, weights)?;
    check_finite("target", target, weights)?;

    let denominator = weights.sum(prediction.nrows()) * prediction.ncols() as f64;
    let mut grad = Array2::zeros(prediction.raw_dim());
    let mut total = 0.0;
    let rows = prediction.axis_iter(Axis(0)).zip(target.axis_iter(Axis(0)));
    for (r, ((p, t), g)) in rows.zip(grad.axis_iter_mut(Axis(0))).enumerate() {
        if !weights.counts(r) {
            continue;
        }
        let w = weights.get(r);
        let grad_scale = F::from_f64_lossy(ratio(2.0 * w, denominator));
        Zip::from(g).and(p).and(t).for_each(|g, &p, &t| {
            let diff = p - t;
            total += w * (diff * diff).to_f64_lossy();
            *g = grad_scale * diff;
        });
    }
    Ok((ratio(total, denominator), grad))
}
