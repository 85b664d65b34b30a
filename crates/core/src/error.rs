//! The one error type of the core. Every variant carries the offending name,
//! shape or value so that the binding can turn it into a precise JS error.

/// Result alias used across the core.
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An array argument has the wrong shape.
    #[error("{name}: expected shape {expected}, got {actual:?}")]
    Shape {
        name: String,
        expected: String,
        actual: Vec<usize>,
    },
    /// A sequence length is 0 or longer than the padded time axis.
    #[error("lengths[{index}] = {value}: every length must be in 1..={max}")]
    Length {
        index: usize,
        value: usize,
        max: usize,
    },
    /// A scalar or configuration argument is out of its domain.
    #[error("{name}: {reason}")]
    Invalid { name: String, reason: String },
    /// A tensor holds NaN or ±Infinity where finite numbers are required.
    #[error("{name}: non-finite value {value} at flat index {index}")]
    NonFinite {
        name: String,
        index: usize,
        value: f64,
    },
    /// Parts that do not fit together: a node's inputs, an initial state and
    /// the node it starts (both named, with both shapes, in `reason`).
    #[error("{name}: {reason}")]
    Mismatch { name: String, reason: String },
    /// A named tensor is missing or unknown (weights, checkpoints).
    #[error("{name}: {reason}")]
    Key { name: String, reason: String },
    /// Reading or writing a file failed at the operating-system level.
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    /// A checkpoint file is malformed; `tensor` names the offending tensor when one is to blame.
    #[error("{path}: {}{reason}", tensor.as_ref().map(|t| format!("tensor `{t}`: ")).unwrap_or_default())]
    Checkpoint {
        path: String,
        tensor: Option<String>,
        reason: String,
    },
}

impl Error {
    pub fn shape(name: &str, expected: impl Into<String>, actual: &[usize]) -> Self {
        Error::Shape {
            name: name.to_owned(),
            expected: expected.into(),
            actual: actual.to_vec(),
        }
    }

    pub fn invalid(name: &str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }

    pub fn mismatch(name: &str, reason: impl Into<String>) -> Self {
        Error::Mismatch {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}
