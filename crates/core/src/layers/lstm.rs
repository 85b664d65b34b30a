//! The LSTM of Greff et al. (SPEC §1): peepholes and the paper's eight variants,
//! forward over a padded batch and exact backpropagation through time.
//!
//! Internally every per-step quantity lives in a time-major buffer
//! (`[time * batch, width]`, see the `time_major` module) so that the input projection,
//! δW, δR and δx are single GEMMs over all steps and only `R y(t−1)` runs
//! step by step (the `recurrence` module). The four gates' columns are
//! interleaved per block of units inside a pass (the `layout` module).
//! Scratch is allocated once per pass, never per step.

mod cell;
mod layout;
mod recurrence;
mod step;
mod time_major;

use ndarray::{
    s, Array1, Array2, Array3, ArrayView, ArrayView2, ArrayView3, ArrayViewD, ArrayViewMutD,
    CowArray, Dimension,
};
use rand::distributions::Uniform;
use rand::Rng;

pub use self::step::StepBuffers;

use self::cell::Peepholes;
use self::layout::{Gate, GateLayout};
use self::recurrence::OutputGrads;
use self::time_major::TimeMajor;
use super::recurrent::layer_parameter_count;
use super::sequence::{BackwardOptions, SequenceBatch, SequenceOutput};
use crate::kernels::dot::gemm_nt;
use crate::kernels::gemm::gemm_shared_b;
use crate::kernels::pack::MatRef;
use crate::kernels::{gemm, Isa};
use crate::{Error, ParamSet, Result, Scalar};

/// Passes of at most this many rows (batch × time), e.g. one streaming step,
/// keep PyTorch's gate order and multiply the weights in place: converting
/// and packing them would cost more than the pass.
const STREAMING_ROWS: usize = 4;

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

impl LstmVariant {
    /// The vanilla LSTM and the eight variants, in the SPEC table's order.
    pub const ALL: [LstmVariant; 9] = [
        LstmVariant::Vanilla,
        LstmVariant::Nig,
        LstmVariant::Nfg,
        LstmVariant::Nog,
        LstmVariant::Niaf,
        LstmVariant::Noaf,
        LstmVariant::Np,
        LstmVariant::Cifg,
        LstmVariant::Fgr,
    ];
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

impl LstmConfig {
    /// The vanilla LSTM with peepholes.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        LstmConfig {
            input_size,
            hidden_size,
            variant: LstmVariant::Vanilla,
            peepholes: true,
        }
    }

    pub fn with_variant(self, variant: LstmVariant) -> Self {
        LstmConfig { variant, ..self }
    }

    pub fn with_peepholes(self, peepholes: bool) -> Self {
        LstmConfig { peepholes, ..self }
    }

    /// Whether the layer really has peepholes (`peepholes` and not NP).
    pub fn uses_peepholes(&self) -> bool {
        self.peepholes && self.variant != LstmVariant::Np
    }

    /// Sizes must be at least 1.
    pub fn validate(&self) -> Result<()> {
        for (name, size) in [
            ("inputSize", self.input_size),
            ("hiddenSize", self.hidden_size),
        ] {
            if size == 0 {
                return Err(Error::invalid(name, "must be at least 1"));
            }
        }
        layer_parameter_count(4, self.input_size, self.hidden_size)?;
        Ok(())
    }

    /// Shapes of the parameter tensors in [`LstmParams::PARAM_NAMES`] order
    /// (zero-sized for tensors this configuration does not use).
    fn param_shapes(&self) -> [Vec<usize>; 8] {
        let (x, h) = (self.input_size, self.hidden_size);
        let p = if self.uses_peepholes() { h } else { 0 };
        let g = if self.variant == LstmVariant::Fgr {
            3 * h
        } else {
            0
        };
        [
            vec![4 * h, x],
            vec![4 * h, h],
            vec![4 * h],
            vec![4 * h],
            vec![p],
            vec![p],
            vec![p],
            vec![g, g],
        ]
    }
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

impl<F: Scalar> LstmParams<F> {
    /// Every tensor name in field order; [`ParamSet`] lists the non-empty ones in this order.
    pub const PARAM_NAMES: [&'static str; 8] = [
        "weight_ih",
        "weight_hh",
        "bias_ih",
        "bias_hh",
        "peephole_i",
        "peephole_f",
        "peephole_o",
        "weight_gg",
    ];

    /// All-zero parameters of the shapes `config` needs.
    pub fn zeros(config: &LstmConfig) -> Self {
        let [wih, whh, bih, bhh, pi, pf, po, wgg] = config.param_shapes();
        LstmParams {
            weight_ih: Array2::zeros((wih[0], wih[1])),
            weight_hh: Array2::zeros((whh[0], whh[1])),
            bias_ih: Array1::zeros(bih[0]),
            bias_hh: Array1::zeros(bhh[0]),
            peephole_i: Array1::zeros(pi[0]),
            peephole_f: Array1::zeros(pf[0]),
            peephole_o: Array1::zeros(po[0]),
            weight_gg: Array2::zeros((wgg[0], wgg[1])),
        }
    }

    /// All-zero tensors of this set's shapes (e.g. an optimizer's moment buffers).
    pub fn zeros_like(&self) -> Self {
        self.map(|_| F::zero())
    }

    /// Applies `f` to every element, e.g. `params.map(|v| v as f32)` to change precision.
    pub fn map<G>(&self, f: impl Fn(F) -> G) -> LstmParams<G> {
        LstmParams {
            weight_ih: self.weight_ih.mapv(&f),
            weight_hh: self.weight_hh.mapv(&f),
            bias_ih: self.bias_ih.mapv(&f),
            bias_hh: self.bias_hh.mapv(&f),
            peephole_i: self.peephole_i.mapv(&f),
            peephole_f: self.peephole_f.mapv(&f),
            peephole_o: self.peephole_o.mapv(&f),
            weight_gg: self.weight_gg.mapv(&f),
        }
    }

    /// `Error::Shape` naming the first tensor whose shape does not fit `config`.
    pub fn check_shapes(&self, config: &LstmConfig) -> Result<()> {
        let actual = self.all_tensors();
        for ((name, tensor), expected) in actual.iter().zip(config.param_shapes()) {
            if tensor.shape() != expected.as_slice() {
                return Err(Error::shape(name, format!("{expected:?}"), tensor.shape()));
            }
        }
        Ok(())
    }

    /// Every tensor, used or not, in [`Self::PARAM_NAMES`] order.
    fn all_tensors(&self) -> Vec<(&'static str, ArrayViewD<'_, F>)> {
        let views = [
            self.weight_ih.view().into_dyn(),
            self.weight_hh.view().into_dyn(),
            self.bias_ih.view().into_dyn(),
            self.bias_hh.view().into_dyn(),
            self.peephole_i.view().into_dyn(),
            self.peephole_f.view().into_dyn(),
            self.peephole_o.view().into_dyn(),
            self.weight_gg.view().into_dyn(),
        ];
        Self::PARAM_NAMES.into_iter().zip(views).collect()
    }

    fn all_tensors_mut(&mut self) -> Vec<(&'static str, ArrayViewMutD<'_, F>)> {
        let views = [
            self.weight_ih.view_mut().into_dyn(),
            self.weight_hh.view_mut().into_dyn(),
            self.bias_ih.view_mut().into_dyn(),
            self.bias_hh.view_mut().into_dyn(),
            self.peephole_i.view_mut().into_dyn(),
            self.peephole_f.view_mut().into_dyn(),
            self.peephole_o.view_mut().into_dyn(),
            self.weight_gg.view_mut().into_dyn(),
        ];
        Self::PARAM_NAMES.into_iter().zip(views).collect()
    }
}

impl<F: Scalar> ParamSet<F> for LstmParams<F> {
    fn tensors(&self) -> Vec<(&'static str, ArrayViewD<'_, F>)> {
        self.all_tensors()
            .into_iter()
            .filter(|(_, t)| !t.is_empty())
            .collect()
    }

    fn tensors_mut(&mut self) -> Vec<(&'static str, ArrayViewMutD<'_, F>)> {
        self.all_tensors_mut()
            .into_iter()
            .filter(|(_, t)| !t.is_empty())
            .collect()
    }
}

/// Everything the forward pass stores for the backward pass, time-major
/// (row `t * batch + b` is step t of sequence b).
#[derive(Debug, Clone)]
pub struct LstmCache<F> {
    /// Length of every sequence: `[batch]`.
    lengths: Vec<usize>,
    /// The inputs with padded steps zeroed: `[time * batch, X]`.
    x: TimeMajor<F>,
    /// Gate activations i, f, z, o, interleaved per block of units (the `layout`
    /// module): `[time * batch, 4H]`; zero at padded steps.
    gates: TimeMajor<F>,
    /// y after k steps for k = 0..=time (k = 0 is y(0)): `[(time + 1) * batch, H]`.
    /// Rows of padded steps stay zero; h_n is read at each sequence's own length.
    h: TimeMajor<F>,
    /// c after k steps, laid out like `h`. (tanh(c(t)) is recomputed from it in backward.)
    c: TimeMajor<F>,
    /// The gate order of `gates` (and of the backward pass's δ pre-activations).
    layout: GateLayout,
}

impl<F: Scalar> LstmCache<F> {
    /// `(batch, time)` of the forward pass that made this cache.
    pub fn dims(&self) -> (usize, usize) {
        (self.lengths.len(), self.x.steps())
    }

    fn output(&self) -> SequenceOutput<F> {
        let (batch, time) = self.dims();
        let mut y = Array3::zeros((batch, time, self.h.width()));
        for (b, &len) in self.lengths.iter().enumerate() {
            y.slice_mut(s![b, ..len, ..])
                .assign(&self.h.sequence(b, 1..len + 1));
        }
        SequenceOutput {
            y,
            h_n: self.final_state(&self.h),
            c_n: Some(self.final_state(&self.c)),
        }
    }

    /// Each sequence's row of `state` at its own length: `[batch, H]`.
    fn final_state(&self, state: &TimeMajor<F>) -> Array2<F> {
        let mut out = Array2::zeros((self.lengths.len(), state.width()));
        for (b, &len) in self.lengths.iter().enumerate() {
            out.row_mut(b)
                .assign(&state.sequence(b, len..len + 1).row(0));
        }
        out
    }
}

/// Gradients of one backward pass.
#[derive(Debug, Clone)]
pub struct LstmGrads<F> {
    /// ∂J/∂x: `[batch, time, input_size]` (`[batch, time, 0]` when not asked for)
    pub dx: Array3<F>,
    /// ∂J/∂y(0): `[batch, hidden_size]`
    pub dh0: Array2<F>,
    /// ∂J/∂c(0): `[batch, hidden_size]`
    pub dc0: Array2<F>,
    /// Parameter gradients, same names and shapes as the parameters.
    pub params: LstmParams<F>,
    /// ‖∂J/∂c(k)‖₂ over the batch for every step k: `[time]` (gradient-flow diagnostics).
    /// This is the total δc(k) of SPEC §1 as the backward pass used it, i.e. after
    /// `recurrent_clip` if one was given. Padded steps contribute nothing.
    pub step_grad_norms: Array1<F>,
}

/// An LSTM layer that owns its parameters.
#[derive(Debug, Clone)]
pub struct Lstm<F> {
    pub config: LstmConfig,
    pub params: LstmParams<F>,
}

/// The padded inputs `[batch, time, X]` copied time-major, padded steps zeroed so
/// that whatever the caller put there cannot reach a gradient.
fn time_major_inputs<F: Scalar>(x: ArrayView3<'_, F>, lengths: &[usize]) -> TimeMajor<F> {
    let (batch, time, features) = x.dim();
    let mut out = TimeMajor::zeros(time, batch, features);
    for (b, &len) in lengths.iter().enumerate() {
        out.sequence_mut(b, 0..len)
            .assign(&x.slice(s![b, ..len, ..]));
    }
    out
}

/// `[(time + 1) * batch, H]` with step 0 set to `initial` (zeros when `None`).
fn state_buffer<F: Scalar>(
    initial: Option<ArrayView2<'_, F>>,
    time: usize,
    batch: usize,
    hidden: usize,
) -> TimeMajor<F> {
    let mut state = TimeMajor::zeros(time + 1, batch, hidden);
    if let Some(initial) = initial {
        state.step_mut(0).assign(&initial);
    }
    state
}

/// `view` itself when its elements are in standard order, else a standard-layout copy.
fn standard_layout<F: Scalar, D: Dimension>(view: ArrayView<'_, F, D>) -> CowArray<'_, F, D> {
    if view.is_standard_layout() {
        CowArray::from(view)
    } else {
        // Not `to_owned`, which keeps a contiguous view's memory order (e.g. a transposed one).
        CowArray::from(view.as_standard_layout().into_owned())
    }
}

fn check_shape(name: &str, actual: &[usize], expected: &[usize]) -> Result<()> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::shape(name, format!("{expected:?}"), actual))
    }
}

impl<F: Scalar> Lstm<F> {
    /// PyTorch's initialisation: every parameter U(−1/√H, 1/√H); `forget_bias`
    /// is added to the forget block of `bias_ih` (Jozefowicz et al. suggest 1).
    pub fn new<R: Rng>(config: LstmConfig, forget_bias: F, rng: &mut R) -> Result<Self> {
        config.validate()?;
        if !forget_bias.is_finite() {
            return Err(Error::invalid(
                "forget_bias",
                format!("must be finite, got {forget_bias}"),
            ));
        }
        let bound = F::one()
            / F::from_usize(config.hidden_size)
                .expect("usize fits a float")
                .sqrt();
        let uniform = Uniform::new_inclusive(-bound, bound);
        let mut params = LstmParams::zeros(&config);
        for (_, mut tensor) in params.all_tensors_mut() {
            tensor.mapv_inplace(|_| rng.sample(&uniform));
        }
        let forget = Gate::Forget.block(config.hidden_size);
        params
            .bias_ih
            .slice_mut(s![forget])
            .mapv_inplace(|b| b + forget_bias);
        Ok(Lstm { config, params })
    }

    /// A layer from existing parameters (a checkpoint, PyTorch weights);
    /// `Error::Shape` names the first tensor that does not fit `config`.
    pub fn from_params(config: LstmConfig, params: LstmParams<F>) -> Result<Self> {
        let layer = Lstm { config, params };
        layer.check_layer()?;
        Ok(layer)
    }

    /// Forward through time. Returns the outputs and the cache backward needs.
    pub fn forward(
        &self,
        batch: &SequenceBatch<'_, F>,
    ) -> Result<(SequenceOutput<F>, LstmCache<F>)> {
        self.check_layer()?;
        let hidden = self.config.hidden_size;
        batch.validate(self.config.input_size, hidden)?;
        let (batch_size, time, _) = batch.dims();
        let lengths: Vec<usize> = (0..batch_size).map(|b| batch.length(b)).collect();
        let x = time_major_inputs(batch.x, &lengths);
        let layout = self.pass_layout(batch_size * time);
        let mut cache = LstmCache {
            gates: TimeMajor::from_rows(self.input_projection(&layout, x.all()), batch_size),
            h: state_buffer(batch.h0, time, batch_size, hidden),
            c: state_buffer(batch.c0, time, batch_size, hidden),
            x,
            lengths,
            layout,
        };
        let layout = cache.layout.clone();
        recurrence::forward(self, &layout, &mut cache);
        Ok((cache.output(), cache))
    }

    /// Forward through time for inference (predict, evaluate, streaming, decoding): the
    /// outputs of [`Lstm::forward`], bit for bit, without its cache. Nothing a backward pass
    /// would need is kept: x is read where it is, the input projection is part of each step
    /// (see `recurrence::infer`), the gates are completed in one step's scratch and not
    /// stored as activations, y(t) is written straight into the output `[batch, time, H]`
    /// (and into a one-step copy the next step's recurrent product reads), and c lives in
    /// two `[batch, H]` rows instead of every step's.
    pub fn infer(&self, batch: &SequenceBatch<'_, F>) -> Result<SequenceOutput<F>> {
        if self.config.variant == LstmVariant::Fgr {
            // FGR's gates read the previous step's activations, which only the cached pass keeps.
            return self.forward(batch).map(|(out, _)| out);
        }
        self.check_layer()?;
        let hidden = self.config.hidden_size;
        batch.validate(self.config.input_size, hidden)?;
        let (batch_size, time, _) = batch.dims();
        let lengths: Vec<usize> = (0..batch_size).map(|b| batch.length(b)).collect();
        let layout = self.pass_layout(batch_size * time);
        let x = standard_layout(batch.x);
        let mut y = Array3::zeros((batch_size, time, hidden));
        let h0 = batch.h0.map(standard_layout);
        let mut c = Array2::zeros((2 * batch_size, hidden));
        if let Some(c0) = batch.c0 {
            c.slice_mut(s![..batch_size, ..]).assign(&c0);
        }
        let standard = "standard layout";
        recurrence::infer(
            self,
            &layout,
            recurrence::InferenceBuffers {
                lengths: &lengths,
                x: x.as_slice().expect(standard),
                h0: h0.as_ref().map(|h0| h0.as_slice().expect(standard)),
                y: y.as_slice_mut().expect(standard),
                c: c.as_slice_mut().expect(standard),
            },
        );
        let mut h_n = Array2::zeros((batch_size, hidden));
        for (b, &length) in lengths.iter().enumerate() {
            h_n.row_mut(b).assign(&y.slice(s![b, length - 1, ..]));
        }
        // After the last step, the half of `c` that step wrote holds every c(T_b) (see `infer`).
        let last = time % 2 * batch_size;
        let c_n = c.slice(s![last..last + batch_size, ..]).to_owned();
        Ok(SequenceOutput {
            y,
            h_n,
            c_n: Some(c_n),
        })
    }

    /// The gate order of a pass over `rows` = batch × time rows.
    fn pass_layout(&self, rows: usize) -> GateLayout {
        let hidden = self.config.hidden_size;
        if rows <= STREAMING_ROWS && self.config.variant != LstmVariant::Fgr {
            GateLayout::pytorch(hidden)
        } else {
            GateLayout::interleaved(hidden)
        }
    }

    /// Backward through time.
    /// `dy`: ∂J/∂y(t) `[batch, time, hidden]` (padded steps ignored);
    /// `dh_n`, `dc_n`: ∂J/∂(final state) `[batch, hidden]`, zeros when `None`.
    ///
    /// With `options.recurrent_clip = Some(v)`, at every step t (from T down to 1):
    /// δy(t) is clamped elementwise to [−v, v] once it is complete (Δ(t) + the
    /// recurrent term Rᵀδ(t+1) (+ `dh_n` at the sequence's last step)) and before
    /// δō(t) and δc(t) are computed from it; δc(t) is clamped once complete
    /// (including the p_o ⊙ δō(t) term and `dc_n`) and before δī(t), δf̄(t), δz̄(t)
    /// and the carry to t−1 are computed from it. `dh0`/`dc0` are not clamped.
    ///
    /// The cache stays as it was (the δ pre-activations go into a copy of its gate
    /// activations); [`Lstm::backward_consuming`] saves that copy when nothing needs the
    /// cache afterwards.
    pub fn backward(
        &self,
        cache: &LstmCache<F>,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        dc_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
    ) -> Result<LstmGrads<F>> {
        self.backward_over(cache, cache.gates.clone(), dy, (dh_n, dc_n), options, true)
    }

    /// [`Lstm::backward`] for a cache nobody needs afterwards (a model's training step):
    /// the δ pre-activations are written over the cache's own gate activations, one
    /// `[time * batch, 4H]` buffer less at the peak of a training step. FGR still copies
    /// them: its δW_gg pairs each step's δ with the previous step's activations.
    /// `input_gradient`: false when nobody reads ∂J/∂x (the first layer over a model input):
    /// its GEMM is skipped and `dx` is then `[batch, time, 0]`.
    pub fn backward_consuming(
        &self,
        mut cache: LstmCache<F>,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        dc_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
        input_gradient: bool,
    ) -> Result<LstmGrads<F>> {
        let gates = if self.config.variant == LstmVariant::Fgr {
            cache.gates.clone()
        } else {
            let (batch, _) = cache.dims();
            std::mem::replace(&mut cache.gates, TimeMajor::zeros(0, batch, 0))
        };
        self.backward_over(&cache, gates, dy, (dh_n, dc_n), options, input_gradient)
    }

    /// The backward pass over `cache` with its gate activations in `gates` (overwritten with δ).
    fn backward_over(
        &self,
        cache: &LstmCache<F>,
        gates: TimeMajor<F>,
        dy: ArrayView3<'_, F>,
        (dh_n, dc_n): (Option<ArrayView2<'_, F>>, Option<ArrayView2<'_, F>>),
        options: &BackwardOptions<F>,
        input_gradient: bool,
    ) -> Result<LstmGrads<F>> {
        self.check_layer()?;
        self.check_cache(cache, &gates)?;
        let (batch, time) = cache.dims();
        let hidden = self.config.hidden_size;
        check_shape("dy", dy.shape(), &[batch, time, hidden])?;
        for (name, final_grad) in [
            ("dhN", dh_n.as_ref().map(|g| g.shape())),
            ("dcN", dc_n.as_ref().map(|g| g.shape())),
        ] {
            if let Some(shape) = final_grad {
                check_shape(name, shape, &[batch, hidden])?;
            }
        }
        options.checked_recurrent_clip()?;

        let layout = &cache.layout;
        let (dy, dh_n, dc_n) = (
            standard_layout(dy),
            dh_n.map(standard_layout),
            dc_n.map(standard_layout),
        );
        let standard = "standard layout";
        let outputs = OutputGrads {
            dy: dy.as_slice().expect(standard),
            dh_n: dh_n.as_ref().map(|g| g.as_slice().expect(standard)),
            dc_n: dc_n.as_ref().map(|g| g.as_slice().expect(standard)),
            time,
            hidden,
        };
        let recurrent =
            recurrence::backward(self, layout, cache, gates, outputs, options.recurrent_clip);
        let step_grad_norms = recurrent
            .squared_cell_grads
            .rows()
            .into_iter()
            .map(|row| row.sum().sqrt())
            .collect();
        Ok(LstmGrads {
            dx: if input_gradient {
                self.input_gradient(layout, cache, &recurrent.d_pre)
            } else {
                Array3::zeros((batch, time, 0))
            },
            params: self.parameter_gradients(layout, cache, &recurrent),
            dh0: recurrent.dh0,
            dc0: recurrent.dc0,
            step_grad_norms,
        })
    }

    /// Config and parameter shapes agree (both are public fields, so they are checked on every pass).
    fn check_layer(&self) -> Result<()> {
        self.config.validate()?;
        self.params.check_shapes(&self.config)
    }

    /// `gates`: the cache's gate activations, wherever they are now.
    fn check_cache(&self, cache: &LstmCache<F>, gates: &TimeMajor<F>) -> Result<()> {
        let (batch, time) = cache.dims();
        let expected = [time * batch, 4 * self.config.hidden_size];
        check_shape("cache.gates", gates.all().shape(), &expected)?;
        check_shape(
            "cache.x",
            cache.x.all().shape(),
            &[time * batch, self.config.input_size],
        )
    }

    fn peepholes(&self) -> Option<Peepholes<F>> {
        self.config.uses_peepholes().then(|| Peepholes {
            i: self.params.peephole_i.to_vec(),
            f: self.params.peephole_f.to_vec(),
            o: self.params.peephole_o.to_vec(),
        })
    }

    /// W x + bias_ih + bias_hh for every row of `x` (`[rows, X]`, one per step and sequence,
    /// in any order) in one GEMM: `[rows, 4H]` in the order of `layout`.
    ///
    /// The output starts as the bias in every row and the products are accumulated onto it:
    /// one pass over the buffer instead of zeroing it and adding the bias to every tile after
    /// the micro-kernel stored it (which stalled on the fresh wide stores: 7 % of an S2
    /// inference pass in `perf`). Each element is still `x·w + bias`, rounded as before.
    fn input_projection(&self, layout: &GateLayout, x: ArrayView2<'_, F>) -> Array2<F> {
        let bias = layout.interleave((&self.params.bias_ih + &self.params.bias_hh).view());
        let rows = x.nrows();
        let mut filled = Vec::with_capacity(rows * bias.len());
        for _ in 0..rows {
            filled.extend_from_slice(&bias);
        }
        let mut gates =
            Array2::from_shape_vec((rows, bias.len()), filled).expect("rows of the [4H] bias");
        if layout.is_pytorch() {
            // A streaming step: dot products against the weights where they are, no conversion.
            let rs = gates.strides()[0];
            let (x_rows, weight) = (
                MatRef::from_view(x),
                MatRef::from_view(self.params.weight_ih.view()),
            );
            // SAFETY: `gates` is owned here; the pointer is its element (0, 0), row stride rs.
            unsafe {
                gemm_nt(
                    Isa::current(),
                    x_rows,
                    weight,
                    0..bias.len(),
                    gates.as_mut_ptr(),
                    rs,
                    true,
                )
            };
            gates
        } else {
            let weight = layout.interleave_rows(self.params.weight_ih.view());
            gemm(x, weight.t(), gates.view_mut(), true, None);
            gates
        }
    }

    /// δx = δ(pre-activations) W for every step in one GEMM, back to `[batch, time, X]`.
    fn input_gradient(
        &self,
        layout: &GateLayout,
        cache: &LstmCache<F>,
        d_pre: &TimeMajor<F>,
    ) -> Array3<F> {
        let (batch, time) = cache.dims();
        let weight = layout.interleave_rows(self.params.weight_ih.view());
        let mut dx = Array2::zeros((d_pre.all().nrows(), self.config.input_size));
        gemm(d_pre.all(), weight.view(), dx.view_mut(), false, None);
        let dx = TimeMajor::from_rows(dx, batch);
        let mut out = Array3::zeros((batch, time, self.config.input_size));
        for b in 0..batch {
            out.slice_mut(s![b, .., ..])
                .assign(&dx.sequence(b, 0..time));
        }
        out
    }

    /// The sums over time of SPEC §1: δW and δR one GEMM each over all steps (the
    /// bias and peephole sums were taken during the recurrence), back in PyTorch's order.
    fn parameter_gradients(
        &self,
        layout: &GateLayout,
        cache: &LstmCache<F>,
        recurrent: &recurrence::RecurrenceGrads<F>,
    ) -> LstmParams<F> {
        let (hidden, time) = (self.config.hidden_size, cache.dims().1);
        let d = recurrent.d_pre.all();
        // Σ over rows of d ⊗ right, computed as rightᵀ·d: the operand packed row by row
        // is then the narrow `right`, and the wide d is streamed in contiguous rows,
        // packed once for both products.
        let (x, h) = (cache.x.all(), cache.h.span(0..time));
        let mut d_wx = Array2::zeros((x.ncols(), d.ncols()));
        let mut d_wh = Array2::zeros((h.ncols(), d.ncols()));
        gemm_shared_b(&[x.t(), h.t()], d, vec![d_wx.view_mut(), d_wh.view_mut()]);
        let mut grads = LstmParams::zeros(&self.config);
        grads.weight_ih = layout.deinterleave_rows(d_wx.t());
        grads.weight_hh = layout.deinterleave_rows(d_wh.t());
        grads.bias_ih = layout.deinterleave(&recurrent.bias);
        grads.bias_hh = grads.bias_ih.clone();
        if self.config.uses_peepholes() {
            grads.peephole_i = recurrent.peepholes.row(0).to_owned();
            grads.peephole_f = recurrent.peepholes.row(1).to_owned();
            grads.peephole_o = recurrent.peepholes.row(2).to_owned();
        }
        if !grads.weight_gg.is_empty() && time > 1 {
            // δ at steps 1.. pairs with the gate activations at steps ..time−1 (those of step 0's predecessor are zero).
            let (d_later, earlier_gates) =
                (recurrent.d_pre.span(1..time), cache.gates.span(0..time - 1));
            let mut full = Array2::zeros((4 * hidden, 4 * hidden));
            gemm(d_later.t(), earlier_gates, full.view_mut(), false, None);
            grads.weight_gg = recurrence::gate_blocks_of(full.view(), layout, hidden);
        }
        grads
    }
}
