//! The typed array a prediction is written into.
//!
//! Natively it is a JS array made on the JS thread when the call starts (see
//! [`OutputArray::unfilled`]) and filled in place by the worker: the promise
//! resolves with that very array. Copying a Rust buffer into a fresh typed array at resolve
//! took 4–6 ms on the JS thread for `predict` S2's 6.5 MB, mostly page faults of the new
//! memory; on the worker they are spread over the pool's threads. Under emnapi (WebAssembly)
//! a JS array lives outside the module's memory, so there the worker writes a Rust buffer
//! that becomes a typed array at resolve, as every other output does (see [`Floats`]).

#[cfg(not(target_family = "wasm"))]
use napi::bindgen_prelude::FromNapiValue;
use napi::bindgen_prelude::{ToNapiValue, TypeName, ValueType};
use napi::{sys, Env};
use odyssey_core::model::spec::Dtype;

#[cfg(target_family = "wasm")]
use crate::convert::Floats;
use crate::convert::{JsFloat, OutputValues};
use crate::error::BindingError;

/// Where a worker writes `len` values of the model's dtype that JS receives as a typed array.
pub struct OutputArray {
    values: OutputValues,
}

impl OutputArray {
    /// `len` values of `dtype` for the worker to fill; call on the JS thread. The memory is a
    /// Node `Buffer`'s, which Node allocates without filling it, where an `ArrayBuffer` is zeroed
    /// first (1 ms of `memset` on the JS thread at S2 whenever the allocator hands back used
    /// memory). The worker writes every element before JS sees the array, and an array whose
    /// prediction failed is dropped unseen.
    #[cfg(not(target_family = "wasm"))]
    pub fn unfilled(env: &Env, dtype: Dtype, len: usize) -> Result<Self, BindingError> {
        let (kind, width) = match dtype {
            Dtype::Float32 => (sys::TypedarrayType::float32_array, 4),
            Dtype::Float64 => (sys::TypedarrayType::float64_array, 8),
        };
        let unallocated = |reason: String| {
            odyssey_core::Error::invalid(
                "output",
                format!("cannot allocate {len} values: {reason}"),
            )
        };
        let bytes = len
            .checked_mul(width)
            .ok_or_else(|| unallocated("too many bytes".into()))?;
        let raw = env.raw();
        let mut array = std::ptr::null_mut();
        // SAFETY: plain N-API calls on the JS thread with out-pointers to locals; the typed
        // array keeps its buffer alive, and the owned handle below keeps the array alive (by a
        // reference) until the promise resolves with it.
        let values = unsafe {
            own_memory(raw, bytes)
                .and_then(|buffer| {
                    napi::check_status!(sys::napi_create_typedarray(
                        raw, kind, len, buffer, 0, &mut array
                    ))
                })
                .and_then(|()| OutputValues::from_napi_value(raw, array))
        }
        .map_err(|error| unallocated(error.reason))?;
        Ok(OutputArray { values })
    }

    /// `len` values of `dtype` (zeros), in Rust memory until resolve.
    #[cfg(target_family = "wasm")]
    pub fn unfilled(_: &Env, dtype: Dtype, len: usize) -> Result<Self, BindingError> {
        let values = match dtype {
            Dtype::Float32 => Floats::F32(vec![0.0; len]),
            Dtype::Float64 => Floats::F64(vec![0.0; len]),
        };
        Ok(OutputArray { values })
    }

    /// The values to write, on the worker; the model's dtype is the array's.
    pub fn values_mut<F: JsFloat>(&mut self) -> Result<&mut [F], BindingError> {
        F::output_mut(&mut self.values)
    }
}

/// An `ArrayBuffer` of `bytes` that nothing else views: a new `Buffer`'s (unfilled) when Node
/// gives it one of its own, else a zero-filled one. (Node pools only the small `Buffer`s that
/// JavaScript makes; a pool's `ArrayBuffer` would show the array's neighbours.)
///
/// # Safety
/// On the JS thread.
#[cfg(not(target_family = "wasm"))]
unsafe fn own_memory(raw: sys::napi_env, bytes: usize) -> napi::Result<sys::napi_value> {
    let mut data = std::ptr::null_mut();
    let (mut node_buffer, mut buffer) = (std::ptr::null_mut(), std::ptr::null_mut());
    let (mut kind, mut length, mut offset, mut buffer_bytes) = (0, 0, 0, 0);
    // SAFETY (whole body): N-API calls with out-pointers to locals, on the JS thread (caller).
    unsafe {
        napi::check_status!(sys::napi_create_buffer(
            raw,
            bytes,
            &mut data,
            &mut node_buffer
        ))?;
        napi::check_status!(sys::napi_get_typedarray_info(
            raw,
            node_buffer,
            &mut kind,
            &mut length,
            &mut data,
            &mut buffer,
            &mut offset
        ))?;
        napi::check_status!(sys::napi_get_arraybuffer_info(
            raw,
            buffer,
            &mut data,
            &mut buffer_bytes
        ))?;
        if offset == 0 && buffer_bytes == bytes {
            return Ok(buffer);
        }
        napi::check_status!(sys::napi_create_arraybuffer(
            raw,
            bytes,
            &mut data,
            &mut buffer
        ))?;
    }
    Ok(buffer)
}

impl ToNapiValue for OutputArray {
    unsafe fn to_napi_value(env: sys::napi_env, output: Self) -> napi::Result<sys::napi_value> {
        // SAFETY: per the trait, on the JS thread.
        unsafe { ToNapiValue::to_napi_value(env, output.values) }
    }
}

impl TypeName for OutputArray {
    fn type_name() -> &'static str {
        "Float32Array | Float64Array"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}
