//! The small interface a model needs of one recurrent layer in one
//! direction, implemented by the LSTM and the simple RNN alike, so that
//! stacking, bidirectionality and truncated BPTT are written once.

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
    /// `[time]`: ‖∂J/∂c(k)‖ (LSTM) or ‖∂J/∂h(k)‖ (simple RNN).
    pub step_grad_norms: Array1<F>,
}

pub trait Recurrent<F: Scalar>: Send + Sync {
    type Cache: Send + Sync;

    fn input_size(&self) -> usize;
    fn hidden_size(&self) -> usize;
    /// Whether the layer carries a cell state c beside its output y.
    fn has_cell(&self) -> bool;
    fn parameters(&self) -> &dyn ParamSet<F>;
    fn parameters_mut(&mut self) -> &mut dyn ParamSet<F>;
    fn forward_sequence(
        &self,
        batch: &SequenceBatch<'_, F>,
    ) -> Result<(SequenceOutput<F>, Self::Cache)>;
    fn backward_sequence(
        &self,
        cache: &Self::Cache,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        dc_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
    ) -> Result<RecurrentGrads<F>>;
}

pub(super) fn owned_tensors<F: Scalar>(set: &dyn ParamSet<F>) -> Vec<ArrayD<F>> {
    set.tensors()
        .into_iter()
        .map(|(_, t)| t.to_owned())
        .collect()
}

/// The methods every layer implements alike: their `config`, `params` and `forward` have the same names.
macro_rules! layer_accessors {
    ($has_cell:expr) => {
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
    };
}
pub(super) use layer_accessors;

impl<F: Scalar> Recurrent<F> for Lstm<F> {
    type Cache = super::lstm::LstmCache<F>;

    layer_accessors!(true);
    fn backward_sequence(
        &self,
        cache: &Self::Cache,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        dc_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
    ) -> Result<RecurrentGrads<F>> {
        let grads = self.backward(cache, dy, dh_n, dc_n, options)?;
        Ok(RecurrentGrads {
            params: owned_tensors(&grads.params),
            dx: grads.dx,
            dh0: grads.dh0,
            dc0: Some(grads.dc0),
            step_grad_norms: grads.cell_grad_norms,
        })
    }
}

impl<F: Scalar> Recurrent<F> for SimpleRnn<F> {
    type Cache = super::rnn::RnnCache<F>;

    layer_accessors!(false);
    fn backward_sequence(
        &self,
        cache: &Self::Cache,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        _dc_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
    ) -> Result<RecurrentGrads<F>> {
        let grads = self.backward(cache, dy, dh_n, options)?;
        Ok(RecurrentGrads {
            params: owned_tensors(&grads.params),
            dx: grads.dx,
            dh0: grads.dh0,
            dc0: None,
            step_grad_norms: grads.hidden_grad_norms,
        })
    }
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
