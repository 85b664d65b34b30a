//! Softmax cross-entropy from logits with class-index targets.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1, Axis};

use super::{check_finite, ratio, RowWeights};
use crate::{Error, Result, Scalar};

/// L = Σ_r v_r [log Σ_k exp(z_rk) − z_r,y_r] / Σ_r v_r with v_r = w_r · c_y_r
/// (PyTorch's `CrossEntropyLoss(weight=c, reduction="mean")` when every row
/// weighs 1; rows of weight 0 play the part of `ignore_index`).
///
/// `logits`: `[rows, classes]`; `targets`: `[rows]` class indices; `row_weights`:
/// `[rows]`, finite, ≥ 0 (default 1; the targets of rows of weight 0 are ignored);
/// `class_weights`: `[classes]`, finite, ≥ 0 (default 1).
/// Returns (L, ∂L/∂z = v_r (softmax(z_r) − onehot(y_r)) / Σ v).
/// The log-sum-exp is shifted by each row's maximum, so large logits cannot overflow.
pub fn softmax_cross_entropy<F: Scalar>(
    logits: ArrayView2<'_, F>,
    targets: &[u32],
    row_weights: Option<&[f64]>,
    class_weights: Option<&[f64]>,
) -> Result<(f64, Array2<F>)> {
    let (rows, classes) = logits.dim();
    if classes == 0 {
        return Err(Error::shape(
            "logits",
            "[rows, classes >= 1]",
            logits.shape(),
        ));
    }
    if targets.len() != rows {
        return Err(Error::shape(
            "targets",
            format!("[{rows}]"),
            &[targets.len()],
        ));
    }
    if let Some(c) = class_weights.filter(|c| c.len() != classes) {
        return Err(Error::shape(
            "classWeights",
            format!("[{classes}] (one per class)"),
            &[c.len()],
        ));
    }
    let weights = RowWeights::new(row_weights, rows)?;
    check_targets(targets, classes, weights)?;
    check_finite("logits", logits, weights)?;

    let weight = |r: usize| weights.get(r) * class_weights.map_or(1.0, |c| c[targets[r] as usize]);
    let denominator: f64 = (0..rows).filter(|&r| weights.counts(r)).map(weight).sum();
    let mut grad = Array2::zeros(logits.raw_dim());
    let mut total = 0.0;
    for (r, (z, g)) in logits
        .axis_iter(Axis(0))
        .zip(grad.axis_iter_mut(Axis(0)))
        .enumerate()
    {
        if weights.counts(r) {
            let v = weight(r);
            let scale = F::from_f64_lossy(ratio(v, denominator));
            total += v * row_loss_and_grad(z, targets[r] as usize, scale, g);
        }
    }
    Ok((ratio(total, denominator), grad))
}

/// The target of every row that counts must name a class.
fn check_targets(targets: &[u32], classes: usize, weights: RowWeights<'_>) -> Result<()> {
    let out_of_range = targets
        .iter()
        .enumerate()
        .find(|&(r, &y)| weights.counts(r) && y as usize >= classes);
    match out_of_range {
        Some((r, &y)) => Err(Error::invalid(
            &format!("targets[{r}]"),
            format!("class index {y} is out of range for {classes} classes"),
        )),
        None => Ok(()),
    }
}

/// One row's loss log Σ exp(z) − z_y, writing (softmax(z) − onehot(y)) · scale into `grad`.
fn row_loss_and_grad<F: Scalar>(
    z: ArrayView1<'_, F>,
    y: usize,
    scale: F,
    mut grad: ArrayViewMut1<'_, F>,
) -> f64 {
    let max = z.iter().copied().fold(F::neg_infinity(), F::max);
    grad.zip_mut_with(&z, |g, &zk| *g = (zk - max).exp());
    let sum: F = grad.sum();
    let log_sum_exp = max + sum.ln();
    let inv_sum = scale / sum;
    grad.mapv_inplace(|e| e * inv_sum);
    grad[y] = grad[y] - scale;
    (log_sum_exp - z[y]).to_f64_lossy()
}
