//! Helpers shared by the integration tests: each test file that needs them
//! declares `mod common;`.
// Every test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::borrow::Borrow;
use std::fs;
use std::path::Path;

use ndarray::ArrayD;
use odyssey_core::model::Trainer;
use odyssey_core::Scalar;

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

/// Asserts as many values as `expected`, each within `tolerance · (1 + |expected|)`.
pub fn assert_close(
    what: &str,
    actual: impl IntoIterator<Item = impl Borrow<f64>>,
    expected: &[f64],
    tolerance: f64,
) {
    let actual: Vec<f64> = actual.into_iter().map(|a| *a.borrow()).collect();
    assert_eq!(actual.len(), expected.len(), "{what}: element count");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tolerance * (1.0 + e.abs()),
            "{what}[{i}]: {a}, expected {e}"
        );
    }
}
