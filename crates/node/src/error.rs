//! Errors the binding throws. Every export runs its body through [`guard`],
//! so a core error becomes a JS error with a stable `code` and a Rust panic
//! becomes an `ODYSSEY_PANIC` exception instead of aborting Node.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use odyssey_core::model::FitError;

/// `error.code` of every exception the binding throws; `ts/errors.ts` maps
/// each code to an error class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Shape,
    Length,
    Invalid,
    NonFinite,
    Key,
    Io,
    Checkpoint,
    Dtype,
    State,
    Panic,
}

impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        match self {
            ErrorCode::Shape => "ODYSSEY_SHAPE",
            ErrorCode::Length => "ODYSSEY_LENGTH",
            ErrorCode::Invalid => "ODYSSEY_INVALID",
            ErrorCode::NonFinite => "ODYSSEY_NON_FINITE",
            ErrorCode::Key => "ODYSSEY_KEY",
            ErrorCode::Io => "ODYSSEY_IO",
            ErrorCode::Checkpoint => "ODYSSEY_CHECKPOINT",
            ErrorCode::Dtype => "ODYSSEY_DTYPE",
            ErrorCode::State => "ODYSSEY_STATE",
            ErrorCode::Panic => "ODYSSEY_PANIC",
        }
    }
}

/// What a binding body can fail with before it is thrown into JS.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    #[error(transparent)]
    Core(#[from] odyssey_core::Error),
    /// `fit` failed: a core error, or a non-finite update with `stopOnNonFinite`.
    #[error(transparent)]
    Fit(#[from] FitError),
    /// A typed array of the other float type than the dtype its layer or model was built with.
    #[error("{name}: expected a {expected} for this {owner}'s dtype, got a {actual}")]
    Dtype {
        name: String,
        expected: &'static str,
        actual: &'static str,
        /// `"layer"` or `"model"`.
        owner: &'static str,
    },
    /// A call that needs an earlier one first (backward before forward).
    #[error("{0}")]
    State(String),
}

impl BindingError {
    fn code(&self) -> ErrorCode {
        match self {
            BindingError::Core(error) => core_code(error),
            BindingError::Fit(FitError::Core(error)) => core_code(error),
            BindingError::Fit(FitError::NonFiniteStep { .. }) => ErrorCode::NonFinite,
            BindingError::Dtype { .. } => ErrorCode::Dtype,
            BindingError::State(_) => ErrorCode::State,
        }
    }
}

// Exhaustive on purpose: a new core variant must get a code here (and a class
// in ts/errors.ts) before the binding compiles.
fn core_code(error: &odyssey_core::Error) -> ErrorCode {
    use odyssey_core::Error;
    match error {
        Error::Shape { .. } => ErrorCode::Shape,
        Error::Length { .. } => ErrorCode::Length,
        Error::Invalid { .. } => ErrorCode::Invalid,
        Error::Mismatch { .. } => ErrorCode::Shape,
        Error::NonFinite { .. } => ErrorCode::NonFinite,
        Error::Key { .. } => ErrorCode::Key,
        Error::Io { .. } => ErrorCode::Io,
        Error::Checkpoint { .. } => ErrorCode::Checkpoint,
    }
}

/// Runs an export's body, turning its error or its panic into a JS exception.
pub fn guard<T>(body: impl FnOnce() -> Result<T, BindingError>) -> napi::Result<T, ErrorCode> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(napi::Error::new(error.code(), error.to_string())),
        Err(payload) => Err(napi::Error::new(
            ErrorCode::Panic,
            format!(
                "odyssey-rnn internal error (Rust panic): {}",
                panic_message(payload)
            ),
        )),
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    // A payload whose Drop panics again would abort; leaking it is the lesser harm.
    std::mem::forget(payload);
    message
}
