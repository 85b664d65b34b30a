//! Binary cross-entropy from logits.

use ndarray::{Array2, ArrayView2, Axis, Zip};

use super::{check_finite, check_same_shape, count_valid_rows, is_valid_row};
use crate::{Error, Result, Scalar};

/// L = (1 / N) Σ [max(z, 0) − z·t + log(1 + e^−|z|)] over the valid rows'
/// elements, N = valid rows · columns: −[t log σ(z) + (1 − t) log(1 − σ(z))]
/// written so that no exp can overflow (PyTorch's `BCEWithLogitsLoss(reduction="mean")`).
///
/// `logits`, `targets`: `[rows, columns]`, targets in [0, 1]; `row_mask`: `[rows]`, `true` = valid.
/// Returns (L, ∂L/∂z = (σ(z) − t) / N, zero on masked rows).
pub fn binary_cross_entropy_with_logits<F: Scalar>(
    logits: ArrayView2<'_, F>,
    targets: ArrayView2<'_, F>,
    row_mask: Option<&[bool]>,
) -> Result<(f64, Array2<F>)> {
    check_same_shape(logits, targets, "targets")?;
    let valid_rows = count_valid_rows(row_mask, logits.nrows())?;
    check_finite("logits", logits, row_mask)?;
    check_probabilities(targets, row_mask)?;

    let count = (valid_rows * logits.ncols()).max(1);
    let inv_count = F::from_f64_lossy(1.0 / count as f64);
    let mut grad = Array2::zeros(logits.raw_dim());
    let mut total = 0.0;
    let rows = logits.axis_iter(Axis(0)).zip(targets.axis_iter(Axis(0)));
    for (r, ((z, t), g)) in rows.zip(grad.axis_iter_mut(Axis(0))).enumerate() {
        if !is_valid_row(row_mask, r) {
            continue;
        }
        Zip::from(g).and(z).and(t).for_each(|g, &z, &t| {
            let softplus_of_neg_abs = (-z.abs()).exp().ln_1p();
            total += (z.max(F::zero()) - z * t + softplus_of_neg_abs).to_f64_lossy();
            *g = (sigmoid(z) - t) * inv_count;
        });
    }
    Ok((total / count as f64, grad))
}

/// σ(z) without overflow: e^z is only evaluated for z < 0.
fn sigmoid<F: Scalar>(z: F) -> F {
    if z >= F::zero() {
        F::one() / (F::one() + (-z).exp())
    } else {
        let e = z.exp();
        e / (F::one() + e)
    }
}

/// Valid rows' targets must be probabilities.
fn check_probabilities<F: Scalar>(
    targets: ArrayView2<'_, F>,
    row_mask: Option<&[bool]>,
) -> Result<()> {
    let columns = targets.ncols();
    for (r, row) in targets.axis_iter(Axis(0)).enumerate() {
        if !is_valid_row(row_mask, r) {
            continue;
        }
        if let Some((c, &t)) = row
            .iter()
            .enumerate()
            .find(|(_, &t)| !(t >= F::zero() && t <= F::one()))
        {
            return Err(Error::invalid(
                &format!("targets[{}]", r * columns + c),
                format!("must be a probability in [0, 1], got {t}"),
            ));
        }
    }
    Ok(())
}
