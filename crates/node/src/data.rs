//! JS datasets → core datasets, in two stages. At call time, on the JS
//! thread, every typed array is copied into a Rust-owned buffer
//! ([`OwnedDataset::copy`]): a worker thread never reads memory that JS can
//! still write. Later, on whichever thread runs the work, the buffers become
//! ndarrays of the model's dtype without another copy ([`OwnedDataset::into_dataset`]).
//! A synchronous training call ([`LabelledBatch`]) reads the target where JS has it instead.

use std::sync::Arc;

use napi::bindgen_prelude::{Either, Float32Array, Float64Array, Uint32Array};
use napi_derive::napi;
use ndarray::{Array, ArrayView, Dimension, Ix2, Ix3, IxDyn};
use odyssey_core::model::{
    check_examples, Dataset, InputSpec, Labels, Target, TargetView, Value, Weights,
};
use odyssey_core::Error;

use crate::convert::{dims, Floats, JsFloat, JsFloats};
use crate::error::BindingError;

/// One model input for N examples, in the model's dtype.
#[napi(object, object_to_js = false)]
pub struct InputArgs {
    /// Sequence `[n, time, features]` or vector `[n, features]` inputs, flat.
    pub data: Option<Either<Float32Array, Float64Array>>,
    /// Token inputs: ids `[n, time]`, flat.
    pub ids: Option<Uint32Array>,
    /// `[n, time, features]`, `[n, time]` or `[n, features]`.
    pub shape: Vec<u32>,
    /// `[n]`, each in `1..=time`; default: every sequence fills the time axis.
    pub lengths: Option<Uint32Array>,
}

/// What the output is trained towards: `values` (MSE, binary cross-entropy)
/// shaped like the output, or class indices (cross-entropy), `[n]` for vector
/// outputs and `[n, time]` for sequence outputs.
#[napi(object, object_to_js = false)]
pub struct TargetArgs {
    pub values: Option<Either<Float32Array, Float64Array>>,
    pub classes: Option<Uint32Array>,
    pub shape: Vec<u32>,
}

/// How much each example (`shape` `[n]`) or each step of each example (`[n, time]`,
/// sequence outputs) counts in the loss; the core checks them (finite, >= 0, shape).
#[napi(object, object_to_js = false)]
pub struct WeightsArgs {
    pub data: Float64Array,
    pub shape: Vec<u32>,
}

/// The inputs (in the model spec's input order) and, for training and evaluation, the
/// target and its optional weights.
#[napi(object, object_to_js = false)]
pub struct DatasetArgs {
    pub inputs: Vec<InputArgs>,
    pub target: Option<TargetArgs>,
    pub weights: Option<WeightsArgs>,
}

/// The float types a model can have, with the owned buffers of each.
pub trait ModelFloat: JsFloat {
    /// The buffer's values if it has this type, else a dtype error naming `name`.
    fn take(floats: Floats, name: &str) -> Result<Vec<Self>, BindingError>;
}

impl ModelFloat for f32 {
    fn take(floats: Floats, name: &str) -> Result<Vec<Self>, BindingError> {
        match floats {
            Floats::F32(values) => Ok(values),
            Floats::F64(_) => Err(dtype_error::<Self>(name, f64::ARRAY_NAME)),
        }
    }
}

impl ModelFloat for f64 {
    fn take(floats: Floats, name: &str) -> Result<Vec<Self>, BindingError> {
        match floats {
            Floats::F64(values) => Ok(values),
            Floats::F32(_) => Err(dtype_error::<Self>(name, f32::ARRAY_NAME)),
        }
    }
}

/// The typed array's values where they are, if it has the model's type, else a dtype error.
fn borrow<'a, F: ModelFloat>(array: &'a JsFloats, name: &str) -> Result<&'a [F], BindingError> {
    F::elements(array, name).map_err(|_| {
        let actual = match array {
            Either::A(_) => f32::ARRAY_NAME,
            Either::B(_) => f64::ARRAY_NAME,
        };
        dtype_error::<F>(name, actual)
    })
}

fn dtype_error<F: JsFloat>(name: &str, actual: &'static str) -> BindingError {
    BindingError::Dtype {
        name: name.to_owned(),
        expected: F::ARRAY_NAME,
        actual,
        owner: "model",
    }
}

/// A copied [`InputArgs`].
pub struct OwnedInput {
    data: Option<Floats>,
    ids: Option<Vec<u32>>,
    shape: Vec<usize>,
    lengths: Option<Vec<usize>>,
}

enum OwnedTarget {
    Values { data: Floats, shape: Vec<usize> },
    Classes(Vec<u32>),
}

/// A copied [`DatasetArgs`].
pub struct OwnedDataset {
    inputs: Vec<OwnedInput>,
    target: Option<OwnedTarget>,
    /// Values and shape.
    weights: Option<(Vec<f64>, Vec<usize>)>,
}

impl OwnedDataset {
    pub fn copy(args: &DatasetArgs) -> Result<Self, BindingError> {
        Ok(OwnedDataset {
            inputs: copy_inputs(&args.inputs),
            target: args.target.as_ref().map(copy_target).transpose()?,
            weights: args
                .weights
                .as_ref()
                .map(|w| (w.data.to_vec(), dims(&w.shape))),
        })
    }

    /// Every input's shape, if each holds as many values as its shape says (the dataset's
    /// checks reject the others before anything reads them).
    pub fn input_shapes(&self) -> Option<Vec<&[usize]>> {
        self.inputs
            .iter()
            .map(|input| {
                let len = match (&input.data, &input.ids) {
                    (Some(Floats::F32(values)), None) => values.len(),
                    (Some(Floats::F64(values)), None) => values.len(),
                    (None, Some(ids)) => ids.len(),
                    _ => return None,
                };
                (len == input.shape.iter().product::<usize>()).then_some(&input.shape[..])
            })
            .collect()
    }

    /// The dataset in the model's dtype, checked (counts, lengths, finite values, weights) by the core.
    pub fn into_dataset<F: ModelFloat>(
        self,
        spec: &[InputSpec],
    ) -> Result<Dataset<F>, BindingError> {
        let inputs = into_values(self.inputs, spec)?;
        let target = self.target.map(into_target).transpose()?;
        let dataset = Dataset::new(inputs, target)?;
        match self.weights {
            None => Ok(dataset),
            Some((values, shape)) => {
                let weights = shaped("weights", IxDyn(&shape), values)?;
                Ok(dataset.with_weights(weights)?)
            }
        }
    }
}

/// A batch for a synchronous training call (`trainStep`, `gradientFlow`): the inputs copied
/// (the model's forward pass takes them by value), the target read in place for the call's
/// duration (no JS code runs meanwhile), checked as a [`Dataset`] checks its data.
pub struct LabelledBatch<'a, F> {
    pub inputs: Vec<Value<F>>,
    target: TargetView<'a, F>,
    weights: Option<Weights>,
}

impl<'a, F: ModelFloat> LabelledBatch<'a, F> {
    /// `purpose` names the call in the error of a batch without a target.
    pub fn new(
        args: &'a DatasetArgs,
        spec: &[InputSpec],
        purpose: &str,
    ) -> Result<Self, BindingError> {
        let inputs = into_values(copy_inputs(&args.inputs), spec)?;
        let target = args.target.as_ref().map(borrow_target).transpose()?;
        let len = check_examples(&inputs, target.clone())?;
        let target =
            target.ok_or_else(|| Error::invalid("batch", format!("{purpose} needs a target")))?;
        let weights = match &args.weights {
            None => None,
            Some(w) => {
                let values = shaped("weights", IxDyn(&dims(&w.shape)), w.data.to_vec())?;
                Some(Weights::new(values, target.clone(), len)?)
            }
        };
        Ok(LabelledBatch {
            inputs,
            target,
            weights,
        })
    }

    pub fn labels(&self) -> Labels<'_, F> {
        Labels {
            target: self.target.reborrow(),
            weights: self.weights.as_ref(),
        }
    }
}

pub fn copy_inputs(inputs: &[InputArgs]) -> Vec<OwnedInput> {
    inputs
        .iter()
        .map(|input| OwnedInput {
            data: input.data.as_ref().map(Floats::copy),
            ids: input.ids.as_ref().map(|ids| ids.to_vec()),
            shape: dims(&input.shape),
            lengths: input
                .lengths
                .as_ref()
                .map(|l| l.iter().map(|&v| v as usize).collect()),
        })
        .collect()
}

fn copy_target(target: &TargetArgs) -> Result<OwnedTarget, BindingError> {
    match one_target(target)? {
        TargetArray::Values(values) => Ok(OwnedTarget::Values {
            data: Floats::copy(values),
            shape: dims(&target.shape),
        }),
        TargetArray::Classes(classes) => Ok(OwnedTarget::Classes(classes.to_vec())),
    }
}

fn borrow_target<'a, F: ModelFloat>(
    target: &'a TargetArgs,
) -> Result<TargetView<'a, F>, BindingError> {
    match one_target(target)? {
        TargetArray::Values(values) => {
            let name = "target.values";
            let dim = IxDyn(&dims(&target.shape));
            let values = borrow::<F>(values, name)?;
            check_count(name, &dim, values.len())?;
            let view = ArrayView::from_shape(dim, values).expect("the element count matches");
            Ok(TargetView::Values(view))
        }
        TargetArray::Classes(classes) => Ok(TargetView::Classes(classes)),
    }
}

enum TargetArray<'a> {
    Values(&'a JsFloats),
    Classes(&'a Uint32Array),
}

/// The target's `values` or its `classes`, whichever it has (it must have exactly one).
fn one_target(target: &TargetArgs) -> Result<TargetArray<'_>, BindingError> {
    match (&target.values, &target.classes) {
        (Some(values), None) => Ok(TargetArray::Values(values)),
        (None, Some(classes)) => Ok(TargetArray::Classes(classes)),
        _ => Err(Error::invalid(
            "target",
            "give exactly one of `values` (float targets) and `classes` (class indices)",
        )
        .into()),
    }
}

/// The model inputs, one per entry of `spec`, in its order.
pub fn into_values<F: ModelFloat>(
    inputs: Vec<OwnedInput>,
    spec: &[InputSpec],
) -> Result<Vec<Value<F>>, BindingError> {
    if inputs.len() != spec.len() {
        let names: Vec<&str> = spec.iter().map(InputSpec::name).collect();
        let expected = format!("{} inputs ({})", spec.len(), names.join(", "));
        return Err(Error::shape("inputs", expected, &[inputs.len()]).into());
    }
    spec.iter()
        .zip(inputs)
        .map(|(s, input)| into_value(s, input))
        .collect()
}

fn into_value<F: ModelFloat>(
    spec: &InputSpec,
    input: OwnedInput,
) -> Result<Value<F>, BindingError> {
    let name = spec.name();
    let shape_error = |expected: &str| Error::shape(name, expected, &input.shape);
    match spec {
        InputSpec::Sequence { .. } => {
            let &[n, time, features] = &input.shape[..] else {
                return Err(shape_error("[n, time, features]").into());
            };
            let values = F::take(required(input.data, name, "data")?, name)?;
            let data = shaped(name, Ix3(n, time, features), values)?;
            Ok(Value::Sequence {
                data,
                lengths: full_lengths(input.lengths, n, time),
            })
        }
        InputSpec::Tokens { .. } => {
            let &[n, time] = &input.shape[..] else {
                return Err(shape_error("[n, time]").into());
            };
            let ids = shaped(name, Ix2(n, time), required(input.ids, name, "ids")?)?;
            Ok(Value::Tokens {
                ids,
                lengths: full_lengths(input.lengths, n, time),
            })
        }
        InputSpec::Vector { .. } => {
            let &[n, features] = &input.shape[..] else {
                return Err(shape_error("[n, features]").into());
            };
            let values = F::take(required(input.data, name, "data")?, name)?;
            let data = shaped(name, Ix2(n, features), values)?;
            Ok(Value::Vector(data))
        }
    }
}

fn into_target<F: ModelFloat>(target: OwnedTarget) -> Result<Target<F>, BindingError> {
    match target {
        OwnedTarget::Classes(classes) => Ok(Target::Classes(classes)),
        OwnedTarget::Values { data, shape } => {
            let values = F::take(data, "target.values")?;
            Ok(Target::Values(shaped(
                "target.values",
                IxDyn(&shape),
                values,
            )?))
        }
    }
}

fn required<T>(field: Option<T>, input: &str, field_name: &str) -> Result<T, BindingError> {
    field.ok_or_else(|| Error::invalid(input, format!("this input needs `{field_name}`")).into())
}

fn full_lengths(lengths: Option<Vec<usize>>, n: usize, time: usize) -> Arc<[usize]> {
    lengths.unwrap_or_else(|| vec![time; n]).into()
}

/// `values` as an array of shape `dim`; the error gives both element counts.
fn shaped<T, D: Dimension>(
    name: &str,
    dim: D,
    values: Vec<T>,
) -> Result<Array<T, D>, BindingError> {
    check_count(name, &dim, values.len())?;
    Ok(Array::from_shape_vec(dim, values).expect("the element count matches the shape"))
}

/// `count` elements fill shape `dim`; the error gives both element counts.
fn check_count<D: Dimension>(name: &str, dim: &D, count: usize) -> Result<(), BindingError> {
    let expected = dim.size();
    if count != expected {
        let shape = format!("{:?} ({expected} elements)", dim.slice());
        return Err(Error::shape(name, shape, &[count]).into());
    }
    Ok(())
}
