//! Typed arrays ⇄ ndarray. Inputs are borrowed for the duration of a
//! synchronous call; outputs are always fresh typed arrays (copies, see [`Floats`]).

use napi::bindgen_prelude::{
    Either, Float32Array, Float32ArraySlice, Float64Array, Float64ArraySlice, ToNapiValue,
    TypeName, ValueType,
};
use napi::{sys, Env};
use ndarray::{ArrayBase, ArrayView2, ArrayView3, Data, Dimension};
use odyssey_core::{Error, Scalar};

use crate::error::BindingError;

/// A JS `Float32Array` or `Float64Array`.
pub type JsFloats = Either<Float32Array, Float64Array>;

/// What an [`crate::output::OutputArray`] holds: the JS array itself natively, a Rust
/// buffer under emnapi.
#[cfg(not(target_family = "wasm"))]
pub type OutputValues = JsFloats;
#[cfg(target_family = "wasm")]
pub type OutputValues = Floats;

/// A JS `Float32Array` or `Float64Array` borrowed for one synchronous call: read (or written)
/// where it lives, without the reference an owned [`JsFloats`] creates.
pub type JsFloatSlice<'a> = Either<Float32ArraySlice<'a>, Float64ArraySlice<'a>>;

/// The element types of a layer, with their typed arrays.
pub trait JsFloat: Scalar {
    /// The typed array of this element type, by its JS name.
    const ARRAY_NAME: &'static str;

    /// The elements of `array`, or a dtype error naming the argument.
    fn elements<'a>(array: &'a JsFloats, name: &str) -> Result<&'a [Self], BindingError>;

    fn wrap(values: Vec<Self>) -> Floats;

    /// The elements of a borrowed array, or a dtype error naming the argument.
    fn slice<'a>(array: &'a JsFloatSlice<'_>, name: &str) -> Result<&'a [Self], BindingError>;

    /// The elements of a borrowed array, to write during a synchronous call.
    fn slice_mut<'a>(
        array: &'a mut JsFloatSlice<'_>,
        name: &str,
    ) -> Result<&'a mut [Self], BindingError>;

    /// The elements of an output array, which no JS code sees before its promise resolves.
    fn output_mut(values: &mut OutputValues) -> Result<&mut [Self], BindingError>;
}

/// The [`JsFloat`] of `$float`: its arrays are the `$side` of [`JsFloats`] and
/// [`JsFloatSlice`], its buffers the `$floats` variant of [`Floats`]; `$other` is the other float.
macro_rules! js_float {
    ($float:ty, $name:literal, $side:ident, $floats:ident, $other:ty) => {
        impl JsFloat for $float {
            const ARRAY_NAME: &'static str = $name;

            fn elements<'a>(array: &'a JsFloats, name: &str) -> Result<&'a [Self], BindingError> {
                match array {
                    Either::$side(values) => Ok(values),
                    _ => Err(dtype_error::<Self>(name, <$other>::ARRAY_NAME)),
                }
            }

            fn wrap(values: Vec<Self>) -> Floats {
                Floats::$floats(values)
            }

            fn slice<'a>(
                array: &'a JsFloatSlice<'_>,
                name: &str,
            ) -> Result<&'a [Self], BindingError> {
                match array {
                    Either::$side(values) => Ok(values),
                    _ => Err(dtype_error::<Self>(name, <$other>::ARRAY_NAME)),
                }
            }

            fn slice_mut<'a>(
                array: &'a mut JsFloatSlice<'_>,
                name: &str,
            ) -> Result<&'a mut [Self], BindingError> {
                match array {
                    // SAFETY: the JS thread is inside this synchronous call, so no JS code runs
                    // (and writes the array) while the slice lives.
                    Either::$side(values) => Ok(unsafe { values.as_mut() }),
                    _ => Err(dtype_error::<Self>(name, <$other>::ARRAY_NAME)),
                }
            }

            fn output_mut(values: &mut OutputValues) -> Result<&mut [Self], BindingError> {
                match values {
                    // SAFETY: the array is not handed to JS before the worker is done with it.
                    #[cfg(not(target_family = "wasm"))]
                    Either::$side(values) => Ok(unsafe { values.as_mut() }),
                    #[cfg(target_family = "wasm")]
                    Floats::$floats(values) => Ok(values),
                    _ => Err(dtype_error::<Self>("output", <$other>::ARRAY_NAME)),
                }
            }
        }
    };
}

js_float!(f32, "Float32Array", A, F32, f64);
js_float!(f64, "Float64Array", B, F64, f32);

fn dtype_error<F: JsFloat>(name: &str, actual: &'static str) -> BindingError {
    BindingError::Dtype {
        name: name.to_owned(),
        expected: F::ARRAY_NAME,
        actual,
        owner: "layer",
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

/// Float values in a Rust buffer: a copy of a JS array on its way in, or values on their way out.
///
/// On the way out they become a typed array over an `ArrayBuffer` that V8 allocates and owns,
/// and the Rust buffer is freed at once. An external `ArrayBuffer` over the Rust buffer (napi-rs's
/// `Float32Array::new`) would save that copy, but Node frees external memory only when the event
/// loop turns, whatever V8 is told: a synchronous loop of `forward` + `getWeights` (LSTM B 64,
/// T 20, X 64, H 256) grew the RSS by 1.4 GB in 500 calls that way, and as much when each array
/// also reported its size with `napi_adjust_external_memory`; with the copy, by less than 40 MB.
pub enum Floats {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Floats {
    pub fn copy(array: &JsFloats) -> Self {
        match array {
            Either::A(values) => Floats::F32(values.to_vec()),
            Either::B(values) => Floats::F64(values.to_vec()),
        }
    }
}

impl ToNapiValue for Floats {
    unsafe fn to_napi_value(env: sys::napi_env, floats: Self) -> napi::Result<sys::napi_value> {
        let js = Env::from_raw(env);
        match floats {
            Floats::F32(values) => {
                ToNapiValue::to_napi_value(env, Float32ArraySlice::copy_from(&js, values)?)
            }
            Floats::F64(values) => {
                ToNapiValue::to_napi_value(env, Float64ArraySlice::copy_from(&js, values)?)
            }
        }
    }
}

impl TypeName for Floats {
    fn type_name() -> &'static str {
        "Float32Array | Float64Array"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

/// The values of `array` in row-major order, for a fresh typed array.
pub fn to_js<F: JsFloat, S: Data<Elem = F>, D: Dimension>(array: &ArrayBase<S, D>) -> Floats {
    let values = match array.as_slice() {
        Some(contiguous) => contiguous.to_vec(),
        None => array.iter().copied().collect(),
    };
    F::wrap(values)
}

/// The shape of a tensor as JS numbers.
pub fn js_shape(shape: &[usize]) -> Vec<u32> {
    shape.iter().map(|&d| d as u32).collect()
}

/// JS shapes and sizes as `usize`.
pub fn dims(shape: &[u32]) -> Vec<usize> {
    shape.iter().map(|&d| d as usize).collect()
}
