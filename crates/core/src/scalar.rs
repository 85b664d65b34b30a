//! The floating-point element type of every layer: `f32` for speed, `f64`
//! for gradient checking and for users who want it.

use std::fmt::{Debug, Display};
use std::iter::Sum;

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::{Float, FromPrimitive};
use rand::distributions::uniform::SampleUniform;

pub trait Scalar:
    Float
    + FromPrimitive
    + LinalgScalar
    + ScalarOperand
    + SampleUniform
    + Sum
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + 'static
{
    /// Lossless-enough conversion used for norms and reports.
    fn to_f64_lossy(self) -> f64;
    fn from_f64_lossy(v: f64) -> Self;
}

impl Scalar for f32 {
    fn to_f64_lossy(self) -> f64 {
        self as f64
    }
    fn from_f64_lossy(v: f64) -> Self {
        v as f32
    }
}

impl Scalar for f64 {
    fn to_f64_lossy(self) -> f64 {
        self
    }
    fn from_f64_lossy(v: f64) -> Self {
        v
    }
}
