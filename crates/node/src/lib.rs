//! napi-rs binding of odyssey-rnn. It converts typed arrays to and from
//! ndarray and schedules work; all mathematics lives in `odyssey-core`.
#![deny(clippy::all)]

use napi_derive::napi;

/// Version of the native addon (the crate version).
#[napi]
pub fn native_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
