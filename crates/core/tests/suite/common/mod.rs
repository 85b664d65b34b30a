//! Helpers shared by the integration tests (the modules of `main.rs`).

pub mod recurrent;

use std::borrow::Borrow;
use std::fs;
use std::path::Path;

use ndarray::{ArrayBase, ArrayD, Data, Dimension};
use odyssey_core::layers::BackwardOptions;
use odyssey_core::model::Trainer;
use odyssey_core::{Error, Scalar};

/// A fresh directory, removed with its contents when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("odyssey-test-")
        .tempdir()
        .expect("a temporary directory")
}

/// The names of the entries of `dir`, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A copy of every tensor of the trainer's model, in the model's order.
pub fn weights<F: Scalar>(trainer: &mut Trainer<F>) -> Vec<ArrayD<F>> {
    trainer
        .model
        .tensors_mut()
        .iter()
        .map(|t| t.to_owned())
        .collect()
}

/// How far an actual value may stand from the expected one.
#[derive(Debug, Clone, Copy)]
pub enum Tolerance {
    /// Within `t · (1 + |expected|)`: absolute near 0, relative for large values.
    /// A bare `f64` tolerance means this.
    OnePlusExpected(f64),
    /// Within `t · max(|actual|, |expected|, 1)`: symmetric, and up to twice as
    /// tight for values near 1 (two computations of one quantity).
    LargerOrOne(f64),
}

impl From<f64> for Tolerance {
    fn from(t: f64) -> Self {
        Tolerance::OnePlusExpected(t)
    }
}

impl Tolerance {
    fn holds(self, actual: f64, expected: f64) -> bool {
        let bound = match self {
            Tolerance::OnePlusExpected(t) => t * (1.0 + expected.abs()),
            Tolerance::LargerOrOne(t) => t * actual.abs().max(expected.abs()).max(1.0),
        };
        (actual - expected).abs() <= bound
    }
}

/// Asserts as many values as `expected`, each within `tolerance`.
pub fn assert_close(
    what: &str,
    actual: impl IntoIterator<Item = impl Borrow<f64>>,
    expected: &[f64],
    tolerance: impl Into<Tolerance>,
) {
    let tolerance = tolerance.into();
    let actual: Vec<f64> = actual.into_iter().map(|a| *a.borrow()).collect();
    assert_eq!(actual.len(), expected.len(), "{what}: element count");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(tolerance.holds(*a, *e), "{what}[{i}]: {a}, expected {e}");
    }
}

/// [`assert_close`] for two arrays, which must also have the same shape.
pub fn assert_arrays_close<D: Dimension>(
    what: &str,
    actual: &ArrayBase<impl Data<Elem = f64>, D>,
    expected: &ArrayBase<impl Data<Elem = f64>, D>,
    tolerance: impl Into<Tolerance>,
) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shapes differ");
    let expected: Vec<f64> = expected.iter().copied().collect();
    assert_close(what, actual.iter(), &expected, tolerance);
}

/// The name of the tensor a shape error is about; panics on any other error.
pub fn shape_error_name(err: Error) -> String {
    match err {
        Error::Shape { name, .. } => name,
        other => panic!("expected a shape error, got {other}"),
    }
}

/// `backward` with each recurrent clip that is not a positive finite number fails with
/// [`Error::Invalid`] naming `recurrentClip`.
pub fn assert_bad_recurrent_clips_rejected<T>(
    backward: impl Fn(&BackwardOptions<f64>) -> Result<T, Error>,
) {
    for clip in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let options = BackwardOptions {
            recurrent_clip: Some(clip),
        };
        match backward(&options) {
            Err(Error::Invalid { name, .. }) if name == "recurrentClip" => {}
            Err(err) => panic!("recurrent clip {clip}: {err}"),
            Ok(_) => panic!("recurrent clip {clip} was accepted"),
        }
    }
}
