//! odyssey-core: the LSTM of Greff et al. ("LSTM: A Search Space Odyssey")
//! with peepholes and its eight variants, and the simple (Elman) RNN, with
//! exact backpropagation through time. Pure Rust: no Node.js here.
//!
//! Layout conventions used everywhere:
//! - sequences are batch-first `[batch, time, features]`;
//! - recurrent weights follow PyTorch's layout and gate order (i, f, g, o),
//!   so PyTorch state dicts drop in unchanged.

pub mod alloc;
pub mod error;
pub mod kernels;
pub mod layers;
pub mod loss;
pub mod model;
pub mod optim;
pub mod params;
pub mod scalar;
pub mod tensor_file;

pub use error::{Error, Result};
pub use params::ParamSet;
pub use scalar::Scalar;
