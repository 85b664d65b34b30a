//! A uniform view of a layer's parameters (and, with the same type, of its
//! gradients) so that optimizers, clipping and checkpoints can treat every
//! layer alike.

use ndarray::{ArrayViewD, ArrayViewMutD};

/// A set of named tensors. Names are PyTorch's without the layer suffix
/// (`weight_ih`, `bias_hh`, ...); the model appends `_l{k}` / `_reverse`.
///
/// The order of `tensors` and `tensors_mut` is fixed and identical, and a
/// gradient set lists the same names with the same shapes as its parameters.
/// Tensors a configuration does not use are left out (zero-sized arrays are
/// never listed).
pub trait ParamSet<F> {
    fn tensors(&self) -> Vec<(&'static str, ArrayViewD<'_, F>)>;
    fn tensors_mut(&mut self) -> Vec<(&'static str, ArrayViewMutD<'_, F>)>;
}
