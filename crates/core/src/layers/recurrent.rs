//! The small interface a model needs of one recurrent layer in one
//! direction, implemented by the LSTM, the simple RNN and the GRU alike, so
//! that stacking, bidirectionality and truncated BPTT are written once.

use ndarray::{Array1, Array2, Array3, ArrayD, ArrayView2, ArrayView3};

use super::lstm::Lstm;
use super::rnn::SimpleRnn;
use super::sequence::{BackwardOptions, SequenceBatch, SequenceOutput};
use crate::{ParamSet, Result, Scalar};

/// Gradients of one recurrent layer, with parameter gradients in the order
/// of the layer's [`ParamSet::tensors`].
#[derive(Debug, Clone)]
pub struct RecurrentGrads<F> {
    /// `[batch, time, input_size]`
    pub dx: Array3<F>,
    /// `[batch, hidden_size]`
    pub dh0: Array2<F>,
    /// `[batch, hidden_size]`, `None` without a cell state.
    pub dc0: Option<Array2<F>>,
    pub params: Vec<ArrayD<F>>,
    /// `[time]`: ‖∂J/∂c(k)‖ (LSTM) or ‖∂J/∂h(k)‖ (simple RNN, GRU).
    pub step_grad_norms: Array1<F>,
}

/// One recurrent layer in one direction over batch-first sequences.
/// Shapes: `batch` sequences of `time` steps, `input_size` features in,
/// `hidden_size` out.
pub trait Recurrent<F: Scalar>: Send + Sync {
    /// What `forward_sequence` keeps for `backward_sequence`.
    type Cache: Send + Sync;

    fn input_size(&self) -> usize;
    fn hidden_size(&self) -> usize;
    /// Whether the layer carries a cell state c beside its output y.
    fn has_cell(&self) -> bool;
    /// The layer's tensors, in the order of `RecurrentGrads::params`.
    fn parameters(&self) -> &dyn ParamSet<F>;
    fn parameters_mut(&mut self) -> &mut dyn ParamSet<F>;
    /// The outputs for `batch.x` `[batch, time, input_size]` from the initial
    /// state `batch.h0` (and `batch.c0`), `[batch, hidden_size]`, zeros when
    /// absent: y `[batch, time, hidden_size]` (zero at padded steps) and the
    /// final state of each sequence at its own length, `[batch, hidden_size]`.
    fn forward_sequence(
        &self,
        batch: &SequenceBatch<'_, F>,
    ) -> Result<(SequenceOutput<F>, Self::Cache)>;
    /// The outputs of `forward_sequence` without its cache, for passes no backward
    /// pass follows (predict, evaluate, streaming, decoding). A layer overrides it
    /// when it has a cheaper path that keeps nothing.
    fn infer_sequence(&self, batch: &SequenceBatch<'_, F>) -> Result<SequenceOutput<F>> {
        self.forward_sequence(batch).map(|(output, _)| output)
    }
    /// Backpropagation through time of the pass that made `cache`: `dy` is
    /// ∂J/∂y `[batch, time, hidden_size]` (padded steps are ignored), `dh_n`
    /// and `dc_n` are ∂J/∂ of the final states `[batch, hidden_size]` (zeros
    /// when `None`; `dc_n` is ignored without a cell). Returns ∂J/∂x, ∂J/∂ of
    /// the initial states, the parameter gradients and the per-step norms.
    fn backward_sequence(
        &self,
        cache: &Self::Cache,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        dc_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
    ) -> Result<RecurrentGrads<F>>;
    /// `backward_sequence` for a cache nobody needs afterwards (a model's training step): a
    /// layer overrides it when it can reuse the cache's buffers for the gradients, or skip
    /// ∂J/∂x when `input_gradient` is false (nobody reads it: the first layer over a model
    /// input); `dx` is then `[batch, time, 0]`, and the caller must not read it.
    fn backward_sequence_consuming(
        &self,
        cache: Self::Cache,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        dc_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
        input_gradient: bool,
    ) -> Result<RecurrentGrads<F>> {
        let _ = input_gradient;
        self.backward_sequence(&cache, dy, dh_n, dc_n, options)
    }
}

/// The parameter gradients as owned tensors in `set`'s order.
pub(super) fn owned_tensors<F: Scalar>(set: &dyn ParamSet<F>) -> Vec<ArrayD<F>> {
    set.tensors()
        .into_iter()
        .map(|(_, t)| t.to_owned())
        .collect()
}

/// The `Recurrent` methods every layer implements alike: its `config`,
/// `params`, `forward` and `backward`, and its gradients' `dx`, `dh0`,
/// `params` and `step_grad_norms`, have the same names. `cell`: the layer's
/// `backward` takes `dc_n` and its gradients have `dc0`; `no_cell`: neither, and the
/// layer's `backward_with` takes `input_gradient` (see `backward_sequence_consuming`).
macro_rules! recurrent_methods {
    (cell) => {
        $crate::layers::recurrent::recurrent_methods!(@accessors cell, true);
    };
    (no_cell) => {
        $crate::layers::recurrent::recurrent_methods!(@accessors no_cell, false);
        // Nothing of the cache is reused; `input_gradient` false skips the δx GEMM.
        fn backward_sequence_consuming(
            &self,
            cache: Self::Cache,
            dy: ArrayView3<'_, F>,
            dh_n: Option<ArrayView2<'_, F>>,
            dc_n: Option<ArrayView2<'_, F>>,
            options: &BackwardOptions<F>,
            input_gradient: bool,
        ) -> Result<RecurrentGrads<F>> {
            let cache = &cache;
            $crate::layers::recurrent::recurrent_methods!(@backward no_cell, self, cache, dy, dh_n, dc_n, options, input_gradient)
        }
    };
    (@backward cell, $layer:ident, $cache:ident, $dy:ident, $dh_n:ident, $dc_n:ident, $options:ident) => {{
        let grads = $layer.backward($cache, $dy, $dh_n, $dc_n, $options)?;
        Ok($crate::layers::recurrent::recurrent_grads!(grads, Some(grads.dc0)))
    }};
    (@backward no_cell, $layer:ident, $cache:ident, $dy:ident, $dh_n:ident, $dc_n:ident, $options:ident) => {
        $crate::layers::recurrent::recurrent_methods!(@backward no_cell, $layer, $cache, $dy, $dh_n, $dc_n, $options, true)
    };
    (@backward no_cell, $layer:ident, $cache:ident, $dy:ident, $dh_n:ident, $dc_n:ident, $options:ident, $input_gradient:expr) => {{
        // No cell state, so nothing to take ∂J/∂c(T) into.
        let _ = $dc_n;
        let grads = $layer.backward_with($cache, $dy, $dh_n, $options, $input_gradient)?;
        Ok($crate::layers::recurrent::recurrent_grads!(grads, None))
    }};
    (@accessors $kind:tt, $has_cell:expr) => {
        fn input_size(&self) -> usize {
            self.config.input_size
        }
        fn hidden_size(&self) -> usize {
            self.config.hidden_size
        }
        fn has_cell(&self) -> bool {
            $has_cell
        }
        fn parameters(&self) -> &dyn ParamSet<F> {
            &self.params
        }
        fn parameters_mut(&mut self) -> &mut dyn ParamSet<F> {
            &mut self.params
        }
        fn forward_sequence(
            &self,
            batch: &SequenceBatch<'_, F>,
        ) -> Result<(SequenceOutput<F>, Self::Cache)> {
            self.forward(batch)
        }
        fn backward_sequence(
            &self,
            cache: &Self::Cache,
            dy: ArrayView3<'_, F>,
            dh_n: Option<ArrayView2<'_, F>>,
            dc_n: Option<ArrayView2<'_, F>>,
            options: &BackwardOptions<F>,
        ) -> Result<RecurrentGrads<F>> {
            $crate::layers::recurrent::recurrent_methods!(@backward $kind, self, cache, dy, dh_n, dc_n, options)
        }
    };
}
pub(super) use recurrent_methods;

/// A layer's own gradients `$grads` as `RecurrentGrads`, with `$dc0`.
macro_rules! recurrent_grads {
    ($grads:ident, $dc0:expr) => {
        RecurrentGrads {
            params: $crate::layers::recurrent::owned_tensors(&$grads.params),
            dc0: $dc0,
            dx: $grads.dx,
            dh0: $grads.dh0,
            step_grad_norms: $grads.step_grad_norms,
        }
    };
}
pub(super) use recurrent_grads;

impl<F: Scalar> Recurrent<F> for Lstm<F> {
    type Cache = super::lstm::LstmCache<F>;

    recurrent_methods!(cell);

    fn infer_sequence(&self, batch: &SequenceBatch<'_, F>) -> Result<SequenceOutput<F>> {
        self.infer(batch)
    }

    fn backward_sequence_consuming(
        &self,
        cache: Self::Cache,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        dc_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
        input_gradient: bool,
    ) -> Result<RecurrentGrads<F>> {
        let grads = self.backward_consuming(cache, dy, dh_n, dc_n, options, input_gradient)?;
        Ok(recurrent_grads!(grads, Some(grads.dc0)))
    }
}

impl<F: Scalar> Recurrent<F> for SimpleRnn<F> {
    type Cache = super::rnn::RnnCache<F>;

    recurrent_methods!(no_cell);
}

/// Refuses sizes whose `gates·H·(X + H + 2)` weights (both matrices and biases)
/// exceed [`crate::params::MAX_PARAMETERS`], before anything is allocated.
pub(crate) fn layer_parameter_count(gates: usize, input: usize, hidden: usize) -> Result<usize> {
    let count = input
        .checked_add(hidden)
        .and_then(|w| w.checked_add(2))
        .and_then(|w| w.checked_mul(hidden))
        .and_then(|w| w.checked_mul(gates));
    crate::params::check_parameter_count(
        "inputSize/hiddenSize",
        &format!("inputSize {input} and hiddenSize {hidden}"),
        count,
    )
}
