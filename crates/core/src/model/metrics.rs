//! Scoring of one evaluation batch: its weighted loss over the rows that count,
//! and accuracy for the classification losses.

use ndarray::Axis;

use super::objective::{loss_and_grad, output_row_weights, Labels, TargetView};
use super::spec::LossSpec;
use super::value::Value;
use crate::{Result, Scalar};

/// One batch's share of an evaluation.
pub(super) struct BatchScore {
    pub(super) loss: f64,
    /// The total weight the loss averaged over (its valid rows without weights).
    pub(super) weight: f64,
    /// (correct, counted) for classification losses.
    pub(super) hits: Option<(usize, usize)>,
}

/// Scores one batch: its weighted loss (class weights shape training only)
/// and its hits over the rows that count.
pub(super) fn score_batch<F: Scalar>(
    output: &Value<F>,
    labels: Option<Labels<'_, F>>,
    loss: LossSpec,
) -> Result<BatchScore> {
    let labels = labels.expect("evaluate checked that the dataset has targets");
    let (value, _) = loss_and_grad(loss, None, output, labels.clone(), 0)?;
    let weights = output_row_weights(output, labels.weights)?;
    let valid: Vec<bool> = weights.iter().map(|&w| w > 0.0).collect();
    Ok(BatchScore {
        loss: value,
        weight: weights.iter().sum(),
        hits: hits(loss, output, labels.target, &valid)?,
    })
}

/// (correct, counted) predictions over the rows that count (weight > 0, valid steps), for classification losses.
fn hits<F: Scalar>(
    loss: LossSpec,
    output: &Value<F>,
    target: TargetView<'_, F>,
    valid: &[bool],
) -> Result<Option<(usize, usize)>> {
    let data = output.float_data("output")?;
    let features = *data.shape().last().expect("rank >= 2");
    let rows = data
        .into_shape_with_order((valid.len(), features))
        .expect("rows · features elements");
    let valid_rows = rows
        .axis_iter(Axis(0))
        .enumerate()
        .filter(|(r, _)| valid[*r]);
    Ok(match (loss, target) {
        (LossSpec::CrossEntropy, TargetView::Classes(classes)) => {
            let correct = valid_rows
                .filter(|(r, row)| argmax(row.iter()) == classes[*r] as usize)
                .count();
            Some((correct, valid.iter().filter(|&&v| v).count()))
        }
        (LossSpec::BinaryCrossEntropy, TargetView::Values(values)) => {
            let flat = values.as_standard_layout();
            let flat = flat.as_slice().expect("standard layout");
            let (mut correct, mut counted) = (0, 0);
            for (r, row) in valid_rows {
                for (c, &logit) in row.iter().enumerate() {
                    let truth = flat[r * features + c].to_f64_lossy() > 0.5;
                    correct += usize::from((logit.to_f64_lossy() > 0.0) == truth);
                    counted += 1;
                }
            }
            Some((correct, counted))
        }
        _ => None,
    })
}

fn argmax<'a, F: Scalar>(values: impl Iterator<Item = &'a F>) -> usize {
    values
        .enumerate()
        .fold((0, F::neg_infinity()), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}
