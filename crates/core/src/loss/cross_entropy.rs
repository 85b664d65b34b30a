//! Softmax cross-entropy from logits with class-index targets.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1, Axis};

use super::{check_finite, count_valid_rows, is_valid_row};
use crate::{Error, Result, Scalar};

/// L = (1 / R) Σ_r [log Σ_k exp(z_rk) − z_r,y_r] over the R valid rows
/// (PyTorch's `CrossEntropyLoss(reduction="mean")`, with masked rows playing
/// the part of `ignore_index`).
///
/// `logits`: `[rows, classes]`; `targets`: `[rows]` class indices; `row_mask`:
/// `[rows]`, `true` = valid (masked rows' targets are ignored).
/// Returns (L, ∂L/∂z = (softmax(z_r) − onehot(y_r)) / R, zero on masked rows).
/// The log-sum-exp is shifted by each row's maximum, so large logits cannot overflow.
pub fn softmax_cross_entropy<F: Scalar>(
    logits: ArrayView2<'_, F>,
    targets: &[u32],
    row_mask: Option<&[bool]>,
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
    let valid_rows = count_valid_rows(row_mask, rows)?;
    check_targets(targets, classes, row_mask)?;
    check_finite("logits", logits, row_mask)?;

    let inv_rows = F::from_f64_lossy(1.0 / valid_rows.max(1) as f64);
    let mut grad = Array2::zeros(logits.raw_dim());
    let mut total = 0.0;
    for (r, (z, g)) in logits
        .axis_iter(Axis(0))
        .zip(grad.axis_iter_mut(Axis(0)))
        .enumerate()
    {
        if is_valid_row(row_mask, r) {
            total += row_loss_and_grad(z, targets[r] as usize, inv_rows, g);
        }
    }
    Ok((total / valid_rows.max(1) as f64, grad))
}

/// Every valid row's target must name a class.
fn check_targets(targets: &[u32], classes: usize, row_mask: Option<&[bool]>) -> Result<()> {
    let out_of_range = targets
        .iter()
        .enumerate()
        .find(|&(r, &y)| is_valid_row(row_mask, r) && y as usize >= classes);
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
