//! The simple (Elman) RNN of SPEC §2: h(t) = g(W_ih x(t) + b_ih + W_hh h(t−1) + b_hh),
//! with exact backpropagation through time.

use ndarray::{Array1, Array2, Array3, ArrayView2, ArrayView3};
use rand::Rng;

use super::sequence::{BackwardOptions, SequenceBatch, SequenceOutput};
use crate::{Result, Scalar};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RnnActivation {
    #[default]
    Tanh,
    Relu,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RnnConfig {
    pub input_size: usize,
    pub hidden_size: usize,
    pub activation: RnnActivation,
}

/// Parameters (and gradients) with PyTorch `nn.RNN` names.
#[derive(Debug, Clone, PartialEq)]
pub struct RnnParams<F> {
    /// `weight_ih_l0`: `[H, X]`
    pub weight_ih: Array2<F>,
    /// `weight_hh_l0`: `[H, H]`
    pub weight_hh: Array2<F>,
    /// `bias_ih_l0`: `[H]`
    pub bias_ih: Array1<F>,
    /// `bias_hh_l0`: `[H]`
    pub bias_hh: Array1<F>,
}

/// Everything the forward pass stores for the backward pass.
#[derive(Debug, Clone)]
pub struct RnnCache<F> {
    _marker: std::marker::PhantomData<F>,
}

#[derive(Debug, Clone)]
pub struct RnnGrads<F> {
    /// ∂J/∂x: `[batch, time, input_size]`
    pub dx: Array3<F>,
    /// ∂J/∂h(0): `[batch, hidden_size]`
    pub dh0: Array2<F>,
    pub params: RnnParams<F>,
    /// ‖∂J/∂h(k)‖₂ over the batch for every step k: `[time]` (gradient-flow diagnostics).
    pub hidden_grad_norms: Array1<F>,
}

#[derive(Debug, Clone)]
pub struct SimpleRnn<F> {
    pub config: RnnConfig,
    pub params: RnnParams<F>,
}

impl<F: Scalar> SimpleRnn<F> {
    /// PyTorch's initialisation: every parameter U(−1/√H, 1/√H).
    pub fn new<R: Rng>(config: RnnConfig, rng: &mut R) -> Result<Self> {
        let _ = (config, rng);
        todo!()
    }

    pub fn forward(&self, batch: &SequenceBatch<'_, F>) -> Result<(SequenceOutput<F>, RnnCache<F>)> {
        let _ = batch;
        todo!()
    }

    /// `dy`: ∂J/∂h(t) `[batch, time, hidden]`; `dh_n`: ∂J/∂h(T_b) `[batch, hidden]`.
    pub fn backward(
        &self,
        cache: &RnnCache<F>,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
    ) -> Result<RnnGrads<F>> {
        let _ = (cache, dy, dh_n, options);
        todo!()
    }
}
