//! The LSTM of Greff et al. (SPEC §1): peepholes and the paper's eight variants,
//! forward over a padded batch and exact backpropagation through time.

use ndarray::{Array1, Array2, Array3, ArrayView2, ArrayView3};
use rand::Rng;

use super::sequence::{BackwardOptions, SequenceBatch, SequenceOutput};
use crate::{Result, Scalar};

/// The vanilla LSTM and the eight variants of Greff et al. (SPEC §1 table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LstmVariant {
    #[default]
    Vanilla,
    /// No input gate: i(t) = 1.
    Nig,
    /// No forget gate: f(t) = 1.
    Nfg,
    /// No output gate: o(t) = 1.
    Nog,
    /// No input activation function: z(t) = z̄(t).
    Niaf,
    /// No output activation function: y(t) = o(t) ⊙ c(t).
    Noaf,
    /// No peepholes.
    Np,
    /// Coupled input and forget gate: f(t) = 1 − i(t).
    Cifg,
    /// Full gate recurrence: gates i, f, o also see i, f, o of t−1 (`weight_gg`).
    Fgr,
}

/// Plain-data description of an LSTM layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LstmConfig {
    pub input_size: usize,
    pub hidden_size: usize,
    pub variant: LstmVariant,
    /// Peephole connections p_i, p_f, p_o. Forced off by [`LstmVariant::Np`].
    pub peepholes: bool,
}

/// Parameters (and, with the same type, their gradients) in PyTorch's layout:
/// gate blocks stacked in the order i, f, g(=z), o.
///
/// Blocks a variant does not use (e.g. the input gate of NIG) stay in the
/// layout so that PyTorch weights drop in; their gradient is always zero.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmParams<F> {
    /// `weight_ih_l0`: `[4H, X]`
    pub weight_ih: Array2<F>,
    /// `weight_hh_l0`: `[4H, H]`
    pub weight_hh: Array2<F>,
    /// `bias_ih_l0`: `[4H]`
    pub bias_ih: Array1<F>,
    /// `bias_hh_l0`: `[4H]` (PyTorch keeps two biases; their gradients are equal)
    pub bias_hh: Array1<F>,
    /// `peephole_i_l0`, `peephole_f_l0`, `peephole_o_l0`: `[H]` each; `[0]` without peepholes.
    pub peephole_i: Array1<F>,
    pub peephole_f: Array1<F>,
    pub peephole_o: Array1<F>,
    /// `weight_gg_l0`: `[3H, 3H]` for FGR (rows: ī, f̄, ō; columns: i, f, o of t−1); `[0, 0]` otherwise.
    pub weight_gg: Array2<F>,
}

/// Everything the forward pass stores for the backward pass.
#[derive(Debug, Clone)]
pub struct LstmCache<F> {
    _marker: std::marker::PhantomData<F>,
}

/// Gradients of one backward pass.
#[derive(Debug, Clone)]
pub struct LstmGrads<F> {
    /// ∂J/∂x: `[batch, time, input_size]`
    pub dx: Array3<F>,
    /// ∂J/∂y(0): `[batch, hidden_size]`
    pub dh0: Array2<F>,
    /// ∂J/∂c(0): `[batch, hidden_size]`
    pub dc0: Array2<F>,
    /// Parameter gradients, same names and shapes as the parameters.
    pub params: LstmParams<F>,
    /// ‖∂J/∂c(k)‖₂ over the batch for every step k: `[time]` (gradient-flow diagnostics).
    pub cell_grad_norms: Array1<F>,
}

/// An LSTM layer that owns its parameters.
#[derive(Debug, Clone)]
pub struct Lstm<F> {
    pub config: LstmConfig,
    pub params: LstmParams<F>,
}

impl<F: Scalar> Lstm<F> {
    /// PyTorch's initialisation: every parameter U(−1/√H, 1/√H); `forget_bias`
    /// is added to the forget block of `bias_ih` (Jozefowicz et al. suggest 1).
    pub fn new<R: Rng>(config: LstmConfig, forget_bias: F, rng: &mut R) -> Result<Self> {
        let _ = (config, forget_bias, rng);
        todo!()
    }

    /// Forward through time. Returns the outputs and the cache backward needs.
    pub fn forward(&self, batch: &SequenceBatch<'_, F>) -> Result<(SequenceOutput<F>, LstmCache<F>)> {
        let _ = batch;
        todo!()
    }

    /// Backward through time.
    /// `dy`: ∂J/∂y(t) `[batch, time, hidden]` (padded steps ignored);
    /// `dh_n`, `dc_n`: ∂J/∂(final state) `[batch, hidden]`, zeros when `None`.
    pub fn backward(
        &self,
        cache: &LstmCache<F>,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        dc_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
    ) -> Result<LstmGrads<F>> {
        let _ = (cache, dy, dh_n, dc_n, options);
        todo!()
    }
}
