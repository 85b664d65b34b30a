//! Typed arrays ⇄ ndarray. Inputs are borrowed for the duration of a
//! synchronous call; outputs are always fresh typed arrays (copies).

use napi::bindgen_prelude::{Either, Float32Array, Float64Array};
use ndarray::{ArrayBase, ArrayView2, ArrayView3, Data, Dimension};
use odyssey_core::{Error, Scalar};

use crate::error::BindingError;

/// A JS `Float32Array` or `Float64Array`.
pub type JsFloats = Either<Float32Array, Float64Array>;

/// The element types of a layer, with their typed arrays.
pub trait JsFloat: Scalar {
    /// The typed array of this element type, by its JS name.
    const ARRAY_NAME: &'static str;

    /// The elements of `array`, or a dtype error naming the argument.
    fn elements<'a>(array: &'a JsFloats, name: &str) -> Result<&'a [Self], BindingError>;

    fn new_array(values: Vec<Self>) -> JsFloats;
}

impl JsFloat for f32 {
    const ARRAY_NAME: &'static str = "Float32Array";

    fn elements<'a>(array: &'a JsFloats, name: &str) -> Result<&'a [Self], BindingError> {
        match array {
            Either::A(values) => Ok(values),
            Either::B(_) => Err(dtype_error::<Self>(name, f64::ARRAY_NAME)),
        }
    }

    fn new_array(values: Vec<Self>) -> JsFloats {
        Either::A(Float32Array::new(values))
    }
}

impl JsFloat for f64 {
    const ARRAY_NAME: &'static str = "Float64Array";

    fn elements<'a>(array: &'a JsFloats, name: &str) -> Result<&'a [Self], BindingError> {
        match array {
            Either::B(values) => Ok(values),
            Either::A(_) => Err(dtype_error::<Self>(name, f32::ARRAY_NAME)),
        }
    }

    fn new_array(values: Vec<Self>) -> JsFloats {
        Either::B(Float64Array::new(values))
    }
}

fn dtype_error<F: JsFloat>(name: &str, actual: &'static str) -> BindingError {
    BindingError::Dtype {
        name: name.to_owned(),
        expected: F::ARRAY_NAME,
        actual,
    }
}

/// `[batch, time, features]` view of a flat array.
pub fn view3<'a, F: JsFloat>(
    array: &'a JsFloats,
    name: &str,
    dims: (usize, usize, usize),
) -> Result<ArrayView3<'a, F>, BindingError> {
    let elements = F::elements(array, name)?;
    ArrayView3::from_shape(dims, elements)
        .map_err(|_| shape_error(name, &[dims.0, dims.1, dims.2], elements.len()))
}

/// `[rows, columns]` view of a flat array.
pub fn view2<'a, F: JsFloat>(
    array: &'a JsFloats,
    name: &str,
    dims: (usize, usize),
) -> Result<ArrayView2<'a, F>, BindingError> {
    let elements = F::elements(array, name)?;
    ArrayView2::from_shape(dims, elements)
        .map_err(|_| shape_error(name, &[dims.0, dims.1], elements.len()))
}

/// A flat array whose element count does not fit the shape it must have.
fn shape_error(name: &str, expected: &[usize], elements: usize) -> BindingError {
    let count: usize = expected.iter().product();
    Error::shape(
        name,
        format!("{expected:?} ({count} elements)"),
        &[elements],
    )
    .into()
}

/// A fresh typed array holding `array` in row-major order.
pub fn to_js<F: JsFloat, S: Data<Elem = F>, D: Dimension>(array: &ArrayBase<S, D>) -> JsFloats {
    let values = match array.as_slice() {
        Some(contiguous) => contiguous.to_vec(),
        None => array.iter().copied().collect(),
    };
    F::new_array(values)
}

/// The shape of a tensor as JS numbers.
pub fn js_shape(shape: &[usize]) -> Vec<u32> {
    shape.iter().map(|&d| d as u32).collect()
}

/// JS shapes and sizes as `usize`.
pub fn dims(shape: &[u32]) -> Vec<usize> {
    shape.iter().map(|&d| d as usize).collect()
}
