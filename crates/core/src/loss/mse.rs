//! Mean squared error.

use ndarray::{Array2, ArrayView2};

use super::{check_finite, check_same_shape, ratio, RowWeights};
use crate::kernels::sums::{sum_in_lanes, LANES};
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

/// Σ (p − t)² over one row, in `f64` (eight running sums), and `g` = `grad_scale`·(p − t).
fn squared_errors<F: Scalar>(p: &[F], t: &[F], g: &mut [F], grad_scale: F) -> f64 {
    let term = |p: F, t: F, g: &mut F| {
        let diff = p - t;
        *g = grad_scale * diff;
        (diff * diff).to_f64_lossy()
    };
    let (p_groups, p_rest) = p.as_chunks::<LANES>();
    let (t_groups, t_rest) = t.as_chunks::<LANES>();
    let (g_groups, g_rest) = g.as_chunks_mut::<LANES>();
    let groups = p_groups
        .iter()
        .zip(t_groups)
        .zip(g_groups)
        .map(|((p, t), g)| std::array::from_fn(|l| term(p[l], t[l], &mut g[l])));
    let rest = p_rest
        .iter()
        .zip(t_rest)
        .zip(g_rest)
        .map(|((&p, &t), g)| term(p, t, g));
    sum_in_lanes(groups, rest)
}
