//! Mean squared error.

use ndarray::{Array2, ArrayView2};

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
    let columns = prediction.ncols();
    let mut grad = Array2::zeros(prediction.raw_dim());
    if columns == 0 {
        return Ok((0.0, grad));
    }
    // Rows as slices (a copy only for inputs in another layout).
    let (prediction, target) = (prediction.as_standard_layout(), target.as_standard_layout());
    let standard = "standard layout";
    let rows = prediction
        .as_slice()
        .expect(standard)
        .chunks_exact(columns)
        .zip(target.as_slice().expect(standard).chunks_exact(columns))
        .zip(
            grad.as_slice_mut()
                .expect(standard)
                .chunks_exact_mut(columns),
        );
    let mut total = 0.0;
    for (r, ((p, t), g)) in rows.enumerate() {
        if !weights.counts(r) {
            continue;
        }
        let w = weights.get(r);
        let grad_scale = F::from_f64_lossy(ratio(2.0 * w, denominator));
        total += w * squared_errors(p, t, g, grad_scale);
    }
    Ok((ratio(total, denominator), grad))
}

/// Σ (p − t)² over one row, in `f64`, and `g` = `grad_scale`·(p − t).
fn squared_errors<F: Scalar>(p: &[F], t: &[F], g: &mut [F], grad_scale: F) -> f64 {
    /// Independent partial sums, so the compiler can keep them in vector registers
    /// (one running sum is a chain of dependent additions, one add latency per element).
    const LANES: usize = 8;
    let mut sums = [0.0f64; LANES];
    let whole = p.len() / LANES * LANES;
    let chunks = p[..whole]
        .chunks_exact(LANES)
        .zip(t[..whole].chunks_exact(LANES))
        .zip(g[..whole].chunks_exact_mut(LANES));
    for ((p, t), g) in chunks {
        for lane in 0..LANES {
            let diff = p[lane] - t[lane];
            sums[lane] += (diff * diff).to_f64_lossy();
            g[lane] = grad_scale * diff;
        }
    }
    let mut total: f64 = sums.iter().sum();
    for ((&p, &t), g) in p[whole..].iter().zip(&t[whole..]).zip(&mut g[whole..]) {
        let diff = p - t;
        total += (diff * diff).to_f64_lossy();
        *g = grad_scale * diff;
    }
    total
}
