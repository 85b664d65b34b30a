//! Applies the model's loss to its output: sequences are scored per valid
//! step (padding masked out), vectors per row, each weighted as the data
//! and the training spec say (see [`crate::loss`] for the normalisation).

use ndarray::{s, Array2, ArrayD, ArrayViewD, Axis, CowArray, Ix2, IxDyn};

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

impl<F> Target<F> {
    pub fn view(&self) -> TargetView<'_, F> {
        match self {
            Target::Values(v) => TargetView::Values(v.view()),
            Target::Classes(c) => TargetView::Classes(c),
        }
    }
}

/// A target read where it is: a [`Target`]'s, or the caller's memory (a synchronous training
/// call reads the JavaScript arrays in place instead of copying them).
#[derive(Debug, Clone)]
pub enum TargetView<'a, F> {
    Values(ArrayViewD<'a, F>),
    Classes(&'a [u32]),
}

impl<'a, F> From<&'a Target<F>> for TargetView<'a, F> {
    fn from(target: &'a Target<F>) -> Self {
        target.view()
    }
}

impl<F: Scalar> TargetView<'_, F> {
    pub fn rows(&self, features: usize) -> usize {
        match self {
            TargetView::Values(v) => v.len() / features.max(1),
            TargetView::Classes(c) => c.len(),
        }
    }

    /// Steps per example the target covers: `time` for sequence outputs, 1 for vectors.
    fn steps(&self, examples: usize) -> usize {
        match self {
            TargetView::Values(v) if v.ndim() == 3 => v.shape()[1],
            TargetView::Values(_) => 1,
            TargetView::Classes(c) => c.len() / examples.max(1),
        }
    }

    /// The same view for a shorter lifetime (an ndarray view is invariant in its lifetime).
    pub fn reborrow(&self) -> TargetView<'_, F> {
        match self {
            TargetView::Values(v) => TargetView::Values(v.view()),
            TargetView::Classes(c) => TargetView::Classes(c),
        }
    }

    pub fn to_owned(&self) -> Target<F> {
        match self {
            TargetView::Values(v) => Target::Values(v.to_owned()),
            TargetView::Classes(c) => Target::Classes(c.to_vec()),
        }
    }
}

/// How much each example counts in the loss, `[n, 1]`, or each step of each
/// example, `[n, time]` (sequence outputs only): finite and ≥ 0; 0 leaves a
/// step out (padded steps stay out whatever their weight).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights(Array2<f64>);

impl Weights {
    /// `values`: `[n]` (one weight per example) or `[n, time]` (one per step), checked
    /// against the `n` examples and their `target`.
    pub fn new<'t, F: Scalar + 't>(
        values: ArrayD<f64>,
        target: impl Into<TargetView<'t, F>>,
        n: usize,
    ) -> Result<Self> {
        let steps = target.into().steps(n);
        let expected = || {
            if steps > 1 {
                format!("[{n}] (per example) or [{n}, {steps}] (per step)")
            } else {
                format!("[{n}] (one per example; per-step weights need a sequence output)")
            }
        };
        let shape = values.shape().to_vec();
        let columns = match shape[..] {
            [rows] if rows == n => 1,
            [rows, time] if rows == n && (time == steps || time == 1) => time,
            _ => return Err(Error::shape("weights", expected(), &shape)),
        };
        if let Some((index, &w)) = values
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
        {
            return Err(Error::invalid(
                &format!("weights[{index}]"),
                format!("must be finite and >= 0, got {w}"),
            ));
        }
        let values = values
            .into_shape_with_order((n, columns))
            .expect("n · columns elements");
        Ok(Weights(values))
    }

    /// The weights of examples `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Self {
        Weights(self.0.select(Axis(0), rows))
    }

    /// Per-step weights of steps `start..end` (per-example weights as they are).
    pub fn slice_time(&self, start: usize, end: usize) -> Self {
        if self.0.ncols() == 1 {
            return self.clone();
        }
        Weights(self.0.slice(s![.., start..end]).to_owned())
    }

    /// The weight of `step` of `example`.
    fn get(&self, example: usize, step: usize) -> f64 {
        if self.0.ncols() == 1 {
            self.0[[example, 0]]
        } else {
            self.0[[example, step]]
        }
    }

    fn check_steps(&self, time: usize) -> Result<()> {
        match self.0.ncols() {
            1 => Ok(()),
            c if c == time => Ok(()),
            _ => Err(Error::shape(
                "weights",
                format!("[{}, {time}] (the output's time axis)", self.0.nrows()),
                self.0.shape(),
            )),
        }
    }
}

/// The target of a batch and the weights of its examples or steps.
#[derive(Debug, Clone)]
pub struct Labels<'a, F> {
    pub target: TargetView<'a, F>,
    pub weights: Option<&'a Weights>,
}

impl<'a, F> From<&'a Target<F>> for Labels<'a, F> {
    fn from(target: &'a Target<F>) -> Self {
        Labels {
            target: target.view(),
            weights: None,
        }
    }
}

/// Loss and ∂loss/∂output (shaped like the output). For sequences only steps
/// `first_step <= t < length` count (truncated BPTT scores each window's new steps).
/// `class_weights`: the crossEntropy loss's weight of each class.
pub fn loss_and_grad<F: Scalar>(
    spec: LossSpec,
    class_weights: Option<&[f64]>,
    output: &Value<F>,
    labels: Labels<'_, F>,
    first_step: usize,
) -> Result<(f64, ArrayD<F>)> {
    let Labels { target, weights } = labels;
    // Read in place: a training step's output is `[batch, time, H]`, no copy of it is needed.
    let output_view = output.float_view("output")?;
    let data = output_view.as_standard_layout();
    let shape = data.shape().to_vec();
    let features = *shape.last().expect("rank >= 2");
    let rows = data.len() / features.max(1);
    let row_weights = row_weights(output, weights, first_step, rows)?;
    let prediction = data
        .view()
        .into_shape_with_order((rows, features))
        .expect("rows · features elements");
    if target.rows(features) != rows {
        let expected = match target {
            TargetView::Values(_) => format!("{shape:?} (the model output's shape)"),
            TargetView::Classes(_) => format!("[{rows}] class indices, one per output row"),
        };
        let actual = match target {
            TargetView::Values(v) => v.shape().to_vec(),
            TargetView::Classes(c) => vec![c.len()],
        };
        return Err(Error::shape("target", expected, &actual));
    }
    let row_weights = row_weights.as_deref();
    let (loss, grad) = match (spec, target) {
        (LossSpec::CrossEntropy, TargetView::Classes(classes)) => {
            softmax_cross_entropy(prediction.view(), classes, row_weights, class_weights)?
        }
        (LossSpec::Mse, TargetView::Values(v)) => mse(
            prediction.view(),
            as_rows(v, rows, features)?.view(),
            row_weights,
        )?,
        (LossSpec::BinaryCrossEntropy, TargetView::Values(v)) => binary_cross_entropy_with_logits(
            prediction.view(),
            as_rows(v, rows, features)?.view(),
            row_weights,
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

/// How much each row of the output (as `[rows, features]`) counts: 0 on
/// padded steps, else its example's or step's weight (1 without weights).
pub fn output_row_weights<F: Scalar>(
    output: &Value<F>,
    weights: Option<&Weights>,
) -> Result<Vec<f64>> {
    let rows = output.grad_shape().iter().rev().skip(1).product();
    Ok(row_weights(output, weights, 0, rows)?.unwrap_or_else(|| vec![1.0; rows]))
}

/// Each output row's weight: 0 outside `first_step..length` for sequences,
/// times the example's or step's weight. `None` when every row weighs 1.
fn row_weights<F: Scalar>(
    output: &Value<F>,
    weights: Option<&Weights>,
    first_step: usize,
    rows: usize,
) -> Result<Option<Vec<f64>>> {
    let Some(lengths) = output.lengths() else {
        return Ok(weights.map(|w| (0..rows).map(|r| w.get(r, 0)).collect()));
    };
    let time = rows / lengths.len().max(1);
    if let Some(w) = weights {
        w.check_steps(time)?;
    }
    let weight = |r: usize| {
        let (example, step) = (r / time, r % time);
        let valid = (first_step..lengths[example]).contains(&step);
        match (valid, weights) {
            (false, _) => 0.0,
            (true, None) => 1.0,
            (true, Some(w)) => w.get(example, step),
        }
    };
    Ok(Some((0..rows).map(weight).collect()))
}

/// The target as `[rows, features]`, in place unless its layout is not standard.
fn as_rows<'a, F: Scalar>(
    v: ArrayViewD<'a, F>,
    rows: usize,
    features: usize,
) -> Result<CowArray<'a, F, Ix2>> {
    let shape = v.shape().to_vec();
    let standard = if v.is_standard_layout() {
        CowArray::from(v)
    } else {
        CowArray::from(v.as_standard_layout().into_owned())
    };
    standard
        .into_shape_with_order((rows, features))
        .map_err(|_| Error::shape("target", format!("[{rows}·{features}] elements"), &shape))
}
