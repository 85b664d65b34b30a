//! Applies the model's loss to its output: sequences are scored per valid
//! step (padding masked out), vectors per row.

use ndarray::{Array2, ArrayD, IxDyn};

use super::spec::LossSpec;
use super::value::Value;
use crate::loss::{binary_cross_entropy_with_logits, mse, softmax_cross_entropy};
use crate::{Error, Result, Scalar};

/// What the output is trained towards.
#[derive(Debug, Clone)]
pub enum Target<F> {
    /// Same shape as the output (MSE, binary cross-entropy).
    Values(ArrayD<F>),
    /// One class index per row: `[batch]` for vector outputs, `[batch·time]` for sequences.
    Classes(Vec<u32>),
}

impl<F: Scalar> Target<F> {
    pub fn rows(&self, features: usize) -> usize {
        match self {
            Target::Values(v) => v.len() / features.max(1),
            Target::Classes(c) => c.len(),
        }
    }
}

/// Loss and ∂loss/∂output (shaped like the output). For sequences only steps
/// `first_step <= t < length` count (truncated BPTT scores each window's new steps).
pub fn loss_and_grad<F: Scalar>(
    spec: LossSpec,
    output: &Value<F>,
    target: &Target<F>,
    first_step: usize,
) -> Result<(f64, ArrayD<F>)> {
    let data = output.float_data("output")?;
    let shape = data.shape().to_vec();
    let features = *shape.last().expect("rank >= 2");
    let rows = data.len() / features.max(1);
    let mask = output.lengths().map(|lengths| {
        let time = shape[1];
        (0..rows)
            .map(|r| (first_step..lengths[r / time]).contains(&(r % time)))
            .collect::<Vec<bool>>()
    });
    let prediction = data
        .into_shape_with_order((rows, features))
        .expect("rows · features elements");
    if target.rows(features) != rows {
        let expected = match target {
            Target::Values(_) => format!("{shape:?} (the model output's shape)"),
            Target::Classes(_) => format!("[{rows}] class indices, one per output row"),
        };
        let actual = match target {
            Target::Values(v) => v.shape().to_vec(),
            Target::Classes(c) => vec![c.len()],
        };
        return Err(Error::shape("target", expected, &actual));
    }
    let (loss, grad) = match (spec, target) {
        (LossSpec::CrossEntropy, Target::Classes(classes)) => {
            softmax_cross_entropy(prediction.view(), classes, mask.as_deref())?
        }
        (LossSpec::Mse, Target::Values(v)) => mse(
            prediction.view(),
            as_rows(v, rows, features)?.view(),
            mask.as_deref(),
        )?,
        (LossSpec::BinaryCrossEntropy, Target::Values(v)) => binary_cross_entropy_with_logits(
            prediction.view(),
            as_rows(v, rows, features)?.view(),
            mask.as_deref(),
        )?,
        (spec, _) => {
            let wanted = if spec == LossSpec::CrossEntropy {
                "class indices"
            } else {
                "float values"
            };
            return Err(Error::invalid(
                "target",
                format!("the {spec:?} loss needs {wanted}"),
            ));
        }
    };
    Ok((
        loss,
        grad.into_shape_with_order(IxDyn(&shape))
            .expect("same elements"),
    ))
}

fn as_rows<F: Scalar>(v: &ArrayD<F>, rows: usize, features: usize) -> Result<Array2<F>> {
    v.clone()
        .into_shape_with_order((rows, features))
        .map_err(|_| Error::shape("target", format!("[{rows}·{features}] elements"), v.shape()))
}
