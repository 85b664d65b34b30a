//! napi-rs binding of odyssey-rnn. It converts typed arrays to and from
//! ndarray and schedules work; all mathematics lives in `odyssey-core`.
//!
//! Every export runs its body inside `error::guard` (`catch_unwind`), so a
//! Rust panic becomes a JS exception with code `ODYSSEY_PANIC`.
#![deny(clippy::all)]

// `guard` relies on unwinding; with `panic = "abort"` a panic would kill Node. WebAssembly
// targets abort on panic (stable Rust cannot unwind there): a panic traps the instance and
// reaches JS as a `RuntimeError` instead of `ODYSSEY_PANIC`, and Node lives on.
#[cfg(all(panic = "abort", not(target_family = "wasm")))]
compile_error!("odyssey-node must be built with panic = \"unwind\"");

mod convert;
mod data;
mod decode;
mod dto;
mod error;
mod exit;
mod interop;
mod layer;
mod model;
mod output;
mod session;
mod stage;
mod tasks;

use napi_derive::napi;
use odyssey_core::alloc::RecyclingAllocator;

use crate::error::{guard, ErrorCode};

/// The addon's own allocations (Node's are not affected): large training buffers are reused
/// from step to step instead of being faulted in afresh (see `odyssey_core::alloc`).
#[global_allocator]
pub(crate) static ALLOCATOR: RecyclingAllocator = RecyclingAllocator::new();

/// Version of the native addon (the crate version).
#[napi]
pub fn native_version() -> napi::Result<String, ErrorCode> {
    guard(|| Ok(env!("CARGO_PKG_VERSION").to_owned()))
}

/// Stops this environment's native work, for the facade's `process.on('exit')` listener
/// (Node joins its worker threads after 'exit', before the process ends): a fit, `predict`
/// and `evaluate` stop before their next batch, and no worker waits for JS any more. A
/// `save` runs to its end: its checkpoint is complete or absent either way.
#[napi]
pub fn stop_work() -> napi::Result<(), ErrorCode> {
    guard(|| {
        exit::stop_jobs_of_this_thread();
        Ok(())
    })
}
