//! Time-axis helpers for padded batches `[batch, time, features]`.

use ndarray::{s, Array3, ArrayView3, Axis};

use crate::Scalar;

/// Reverses each sequence within its own length; padded steps stay zero.
/// Applying it twice restores the valid steps.
pub fn reverse_within_lengths<F: Scalar>(x: ArrayView3<'_, F>, lengths: &[usize]) -> Array3<F> {
    let mut out = Array3::zeros(x.raw_dim());
    for (b, &len) in lengths.iter().enumerate() {
        for t in 0..len {
            out.slice_mut(s![b, len - 1 - t, ..])
                .assign(&x.slice(s![b, t, ..]));
        }
    }
    out
}

/// Concatenates along the last axis.
pub fn concat_features<F: Scalar>(parts: &[ArrayView3<'_, F>]) -> Array3<F> {
    ndarray::concatenate(Axis(2), parts).expect("parts share batch and time")
}
