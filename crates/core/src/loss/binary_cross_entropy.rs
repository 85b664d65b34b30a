//! Binary cross-entropy from logits.

use ndarray::{Array2, ArrayView2, Axis, Zip};

use super::{check_finite, check_same_shape, ratio, RowWeights};
use crate::{Error, Result, Scalar};

/// L = Σ_r w_r Σ_c [max(z, 0) − z·t + log(1 + e^−|z|)] / (Σ_r w_r · columns):
/// −[t log σ(z) + (1 − t) log(1 − σ(z))] written so that no exp can overflow
/// (PyTorch's `BCEWithLogitsLoss(reduction="mean")` when every row weighs 1).
///
/// `logits`, `targets`: `[rows, columns]`, targets in [0, 1]; `row_weights`: `[rows]`, finite, ≥ 0 (default 1).
/// Returns (L, ∂L/∂z = w_r (σ(z) − t) / (Σ w · columns)).
pub fn binary_cross_entropy_with_logits<F: Scalar>(
    logits: ArrayView2<'_, F>,
    targets: ArrayView2<'_, F>,
    row_weights: Option<&[f64]>,
) -> Result<(f64, Array2<F>)> {
    check_same_shape(logits, targets, "targets")?;
    let weights = RowWeights::new(row_weights, logits.nrows())?;
    check_finite("logits", logits, weights)?;
    check_probabilities(targets, weights)?;

    let denominator = weights.sum(logits.nrows()) * logits.ncols() as f64;
    let mut grad = Array2::zeros(logits.raw_dim());
    let mut total = 0.0;
    let rows = logits.axis_iter(Axis(0)).zip(targets.axis_iter(Axis(0)));
    for (r, ((z, t), g)) in rows.zip(grad.axis_iter_mut(Axis(0))).enumerate() {
        if !weights.counts(r) {
            continue;
        }
        let w = weights.get(r);
        let scale = F::from_f64_lossy(ratio(w, denominator));
        Zip::from(g).and(z).and(t).for_each(|g, &z, &t| {
            let softplus_of_neg_abs = (-z.abs()).exp().ln_1p();
            total += w * (z.max(F::zero()) - z * t + softplus_of_neg_abs).to_f64_lossy();
            *g = (sigmoid(z) - t) * scale;
        });
    }
    Ok((ratio(total, denominator), grad))
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

/// The targets of rows that count must be probabilities.
fn check_probabilities<F: Scalar>(
    targets: ArrayView2<'_, F>,
    weights: RowWeights<'_>,
) -> Result<()> {
    let columns = targets.ncols();
    for (r, row) in targets.axis_iter(Axis(0)).enumerate() {
        if !weights.counts(r) {
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
