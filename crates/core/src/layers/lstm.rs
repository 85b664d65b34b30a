//! The LSTM of Greff et al. (SPEC §1): peepholes and the paper's eight variants,
//! forward over a padded batch and exact backpropagation through time.
//!
//! Internally every per-step quantity lives in a time-major buffer
//! (`[time * batch, width]`, see the `time_major` module) so that the input projection,
//! δW, δR and δx are single GEMMs over all steps and only `R y(t−1)` runs
//! step by step. Scratch is allocated once per pass, never per step.

mod cell;
mod time_major;

use std::ops::Range;

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, Array3, ArrayView2, ArrayView3, ArrayViewD, ArrayViewMutD, Axis};
use rand::distributions::Uniform;
use rand::Rng;

use self::cell::{
    backward_row, forward_row, BackwardRow, ForwardRow, Gate, GateRules, Peepholes, RECURRENT_GATES,
};
use self::time_major::{row, row_mut, TimeMajor};
use super::sequence::{BackwardOptions, SequenceBatch, SequenceOutput};
use crate::kernels::gemm;
use crate::{Error, ParamSet, Result, Scalar};

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
            ("input_size", self.input_size),
            ("hidden_size", self.hidden_size),
        ] {
            if size == 0 {
                return Err(Error::invalid(name, "must be at least 1"));
            }
        }
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
    /// Gate activations i, f, z, o: `[time * batch, 4H]`; zero at padded steps.
    gates: TimeMajor<F>,
    /// y after k steps for k = 0..=time (k = 0 is y(0)): `[(time + 1) * batch, H]`.
    /// Rows of padded steps stay zero; h_n is read at each sequence's own length.
    h: TimeMajor<F>,
    /// c after k steps, laid out like `h`.
    c: TimeMajor<F>,
    /// tanh(c(t)) (c(t) for NOAF): `[time * batch, H]`.
    cell_out: TimeMajor<F>,
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
    /// ∂J/∂x: `[batch, time, input_size]`
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
    pub cell_grad_norms: Array1<F>,
}

/// An LSTM layer that owns its parameters.
#[derive(Debug, Clone)]
pub struct Lstm<F> {
    pub config: LstmConfig,
    pub params: LstmParams<F>,
}

/// The errors flowing back through time, allocated once per backward pass.
struct BackwardErrors<F> {
    /// δī, δf̄, δz̄, δō of every step: `[time * batch, 4H]`.
    d_pre: TimeMajor<F>,
    /// δy of the step being processed: `[batch, H]`. Holds the recurrent term
    /// `Rᵀ δ(t+1)` until the step adds Δ(t); after step 0 it is δy(0) = dh0.
    dy: Array2<F>,
    /// δc(t+1) ⊙ f(t+1) + p_i ⊙ δī(t+1) + p_f ⊙ δf̄(t+1): `[batch, H]`; after step 0 it is dc0.
    dc_carry: Array2<F>,
    /// FGR: ∂J/∂(gate activations i, f, ·, o of the step) through `weight_gg`: `[batch, 4H]`; zeros otherwise.
    d_gates: Array2<F>,
}

/// One `[H, H]` block of FGR's `weight_gg`: it carries the activation of gate
/// `source` at t−1 into the pre-activation of gate `target` at t.
struct RecurrentBlock {
    /// Columns of the target gate in `[.., 4H]`.
    target: Range<usize>,
    /// Columns of the source gate in `[.., 4H]`.
    source: Range<usize>,
    /// Rows and columns of the block in `weight_gg`.
    rows: Range<usize>,
    cols: Range<usize>,
}

/// The nine blocks of `weight_gg` (rows ī, f̄, ō; columns i, f, o of t−1).
fn recurrent_blocks(hidden: usize) -> impl Iterator<Item = RecurrentBlock> {
    let blocks = RECURRENT_GATES.into_iter().enumerate();
    blocks.clone().flat_map(move |(r, target)| {
        blocks.clone().map(move |(k, source)| RecurrentBlock {
            target: target.block(hidden),
            source: source.block(hidden),
            rows: r * hidden..(r + 1) * hidden,
            cols: k * hidden..(k + 1) * hidden,
        })
    })
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

/// Σ over rows of `a ⊙ b`: `[rows, H] × [rows, H] → [H]`.
fn sum_of_products<F: Scalar>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>) -> Array1<F> {
    (&a * &b).sum_axis(Axis(0))
}

fn check_shape(name: &str, actual: &[usize], expected: &[usize]) -> Result<()> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::shape(name, format!("{expected:?}"), actual))
    }
}

fn check_clip<F: Scalar>(clip: Option<F>) -> Result<()> {
    match clip {
        Some(v) if v.is_nan() || v <= F::zero() => Err(Error::invalid(
            "recurrent_clip",
            format!("must be positive, got {v}"),
        )),
        _ => Ok(()),
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
        let mut cache = LstmCache {
            gates: self.input_projection(&x),
            h: state_buffer(batch.h0, time, batch_size, hidden),
            c: state_buffer(batch.c0, time, batch_size, hidden),
            cell_out: TimeMajor::zeros(time, batch_size, hidden),
            x,
            lengths,
        };
        let rules = GateRules::new(&self.config);
        let peepholes = self.peepholes();
        for t in 0..time {
            self.add_recurrent_input(&rules, t, &mut cache);
            activate_cells(&rules, peepholes.as_ref(), t, &mut cache);
        }
        Ok((cache.output(), cache))
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
    pub fn backward(
        &self,
        cache: &LstmCache<F>,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        dc_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
    ) -> Result<LstmGrads<F>> {
        self.check_layer()?;
        self.check_cache(cache)?;
        let (batch, time) = cache.dims();
        let hidden = self.config.hidden_size;
        check_shape("dy", dy.shape(), &[batch, time, hidden])?;
        for (name, final_grad) in [
            ("dh_n", dh_n.as_ref().map(|g| g.shape())),
            ("dc_n", dc_n.as_ref().map(|g| g.shape())),
        ] {
            if let Some(shape) = final_grad {
                check_shape(name, shape, &[batch, hidden])?;
            }
        }
        check_clip(options.recurrent_clip)?;

        let rules = GateRules::new(&self.config);
        let peepholes = self.peepholes();
        let mut errors = BackwardErrors {
            d_pre: TimeMajor::zeros(time, batch, 4 * hidden),
            dy: Array2::zeros((batch, hidden)),
            dc_carry: Array2::zeros((batch, hidden)),
            d_gates: Array2::zeros((batch, 4 * hidden)),
        };
        let mut cell_grad_norms = Array1::zeros(time);
        for t in (0..time).rev() {
            add_output_errors(t, &cache.lengths, dy, dh_n, dc_n, &mut errors);
            let squared = backpropagate_cells(
                &rules,
                peepholes.as_ref(),
                options.recurrent_clip,
                t,
                cache,
                &mut errors,
            );
            cell_grad_norms[t] = squared.sqrt();
            self.backpropagate_recurrence(&rules, t, &mut errors);
        }
        Ok(LstmGrads {
            dx: self.input_gradient(cache, &errors.d_pre),
            params: self.parameter_gradients(&rules, cache, &errors.d_pre),
            dh0: errors.dy,
            dc0: errors.dc_carry,
            cell_grad_norms,
        })
    }

    /// Config and parameter shapes agree (both are public fields, so they are checked on every pass).
    fn check_layer(&self) -> Result<()> {
        self.config.validate()?;
        self.params.check_shapes(&self.config)
    }

    fn check_cache(&self, cache: &LstmCache<F>) -> Result<()> {
        let (batch, time) = cache.dims();
        let expected = [time * batch, 4 * self.config.hidden_size];
        check_shape("cache.gates", cache.gates.all().shape(), &expected)?;
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

    /// W x(t) + bias_ih + bias_hh for every step in one GEMM: `[time * batch, 4H]`.
    fn input_projection(&self, x: &TimeMajor<F>) -> TimeMajor<F> {
        let bias = (&self.params.bias_ih + &self.params.bias_hh).to_vec();
        let mut gates = Array2::zeros((x.all().nrows(), bias.len()));
        gemm(
            x.all(),
            self.params.weight_ih.t(),
            gates.view_mut(),
            false,
            Some(&bias),
        );
        TimeMajor::from_rows(gates, x.batch())
    }

    /// Adds R y(t−1) (and FGR's weight_gg terms) to step t's pre-activations.
    fn add_recurrent_input(&self, rules: &GateRules, t: usize, cache: &mut LstmCache<F>) {
        let one = F::one();
        general_mat_mul(
            one,
            &cache.h.step(t),
            &self.params.weight_hh.t(),
            one,
            &mut cache.gates.step_mut(t),
        );
        if rules.full_gate_recurrence && t > 0 {
            let (previous, mut current) = cache.gates.adjacent_steps_mut(t - 1);
            for block in recurrent_blocks(self.config.hidden_size) {
                let weight = self.params.weight_gg.slice(s![block.rows, block.cols]);
                let mut target = current.slice_mut(s![.., block.target]);
                let source = previous.slice(s![.., block.source]);
                general_mat_mul(one, &source, &weight.t(), one, &mut target);
            }
        }
    }

    /// Sends step t's δ pre-activations to step t−1: δy ← δ(t) R, and for FGR δ(gates) ← δ(t) weight_gg.
    fn backpropagate_recurrence(
        &self,
        rules: &GateRules,
        t: usize,
        errors: &mut BackwardErrors<F>,
    ) {
        let d_pre = errors.d_pre.step(t);
        general_mat_mul(
            F::one(),
            &d_pre,
            &self.params.weight_hh,
            F::zero(),
            &mut errors.dy,
        );
        if rules.full_gate_recurrence {
            errors.d_gates.fill(F::zero());
            for block in recurrent_blocks(self.config.hidden_size) {
                let weight = self.params.weight_gg.slice(s![block.rows, block.cols]);
                let mut source = errors.d_gates.slice_mut(s![.., block.source]);
                general_mat_mul(
                    F::one(),
                    &d_pre.slice(s![.., block.target]),
                    &weight,
                    F::one(),
                    &mut source,
                );
            }
        }
    }

    /// δx = δ(pre-activations) W for every step in one GEMM, back to `[batch, time, X]`.
    fn input_gradient(&self, cache: &LstmCache<F>, d_pre: &TimeMajor<F>) -> Array3<F> {
        let (batch, time) = cache.dims();
        let mut dx = Array2::zeros((d_pre.all().nrows(), self.config.input_size));
        gemm(
            d_pre.all(),
            self.params.weight_ih.view(),
            dx.view_mut(),
            false,
            None,
        );
        let dx = TimeMajor::from_rows(dx, batch);
        let mut out = Array3::zeros((batch, time, self.config.input_size));
        for b in 0..batch {
            out.slice_mut(s![b, .., ..])
                .assign(&dx.sequence(b, 0..time));
        }
        out
    }

    /// The sums over time of SPEC §1, each one GEMM or one reduction over all steps.
    fn parameter_gradients(
        &self,
        rules: &GateRules,
        cache: &LstmCache<F>,
        d_pre: &TimeMajor<F>,
    ) -> LstmParams<F> {
        let (hidden, time) = (self.config.hidden_size, d_pre.steps());
        let d = d_pre.all();
        let mut grads = LstmParams::zeros(&self.config);
        gemm(
            d.t(),
            cache.x.all(),
            grads.weight_ih.view_mut(),
            false,
            None,
        );
        gemm(
            d.t(),
            cache.h.span(0..time),
            grads.weight_hh.view_mut(),
            false,
            None,
        );
        grads.bias_ih = d.sum_axis(Axis(0));
        grads.bias_hh = grads.bias_ih.clone();
        if rules.peepholes {
            let gate = |g: Gate| d.slice_move(s![.., g.block(hidden)]);
            grads.peephole_i = sum_of_products(cache.c.span(0..time), gate(Gate::Input));
            grads.peephole_f = sum_of_products(cache.c.span(0..time), gate(Gate::Forget));
            grads.peephole_o = sum_of_products(cache.c.span(1..time + 1), gate(Gate::Output));
        }
        if rules.full_gate_recurrence {
            // δ at steps 1.. pairs with the gate activations at steps ..time−1 (those of step 0's predecessor are zero).
            let (d_later, earlier_gates) = (d_pre.span(1..time), cache.gates.span(0..time - 1));
            for block in recurrent_blocks(hidden) {
                let mut grad = grads.weight_gg.slice_mut(s![block.rows, block.cols]);
                let d_target = d_later.slice(s![.., block.target]);
                general_mat_mul(
                    F::one(),
                    &d_target.t(),
                    &earlier_gates.slice(s![.., block.source]),
                    F::zero(),
                    &mut grad,
                );
            }
        }
        grads
    }
}

/// Applies the gate nonlinearities of step t and writes c(t), y(t); padded rows get zero activations.
fn activate_cells<F: Scalar>(
    rules: &GateRules,
    peepholes: Option<&Peepholes<F>>,
    t: usize,
    cache: &mut LstmCache<F>,
) {
    let hidden = cache.h.width();
    let gates = cache.gates.step_slice_mut(t);
    let (c_prev, c) = cache.c.adjacent_step_slices_mut(t);
    let cell_out = cache.cell_out.step_slice_mut(t);
    let y = cache.h.step_slice_mut(t + 1);
    for (b, &len) in cache.lengths.iter().enumerate() {
        let gate_row = row_mut(gates, b, 4 * hidden);
        if t >= len {
            gate_row.fill(F::zero());
            continue;
        }
        let cells = ForwardRow {
            gates: gate_row,
            c_prev: row(c_prev, b, hidden),
            c: row_mut(c, b, hidden),
            cell_out: row_mut(cell_out, b, hidden),
            y: row_mut(y, b, hidden),
        };
        forward_row(rules, peepholes, cells);
    }
}

/// Adds Δ(t) to δy for the sequences still running at step t, and ∂J/∂h_n, ∂J/∂c_n
/// for those whose last step is t.
fn add_output_errors<F: Scalar>(
    t: usize,
    lengths: &[usize],
    dy: ArrayView3<'_, F>,
    dh_n: Option<ArrayView2<'_, F>>,
    dc_n: Option<ArrayView2<'_, F>>,
    errors: &mut BackwardErrors<F>,
) {
    for (b, &len) in lengths.iter().enumerate().filter(|&(_, &len)| t < len) {
        let one = F::one();
        let mut dy_row = errors.dy.row_mut(b);
        dy_row.scaled_add(one, &dy.slice(s![b, t, ..]));
        if t + 1 == len {
            if let Some(dh_n) = dh_n {
                dy_row.scaled_add(one, &dh_n.row(b));
            }
            if let Some(dc_n) = dc_n {
                errors.dc_carry.row_mut(b).scaled_add(one, &dc_n.row(b));
            }
        }
    }
}

/// The elementwise backward step t for every running sequence; returns Σ δc(t)² over the batch.
fn backpropagate_cells<F: Scalar>(
    rules: &GateRules,
    peepholes: Option<&Peepholes<F>>,
    clip: Option<F>,
    t: usize,
    cache: &LstmCache<F>,
    errors: &mut BackwardErrors<F>,
) -> F {
    let hidden = cache.h.width();
    let (gates, c_prev, cell_out) = (
        cache.gates.step_slice(t),
        cache.c.step_slice(t),
        cache.cell_out.step_slice(t),
    );
    let d_pre = errors.d_pre.step_slice_mut(t);
    let dy = errors.dy.as_slice().expect("owned standard layout");
    let d_gates = errors.d_gates.as_slice().expect("owned standard layout");
    let dc_carry = errors
        .dc_carry
        .as_slice_mut()
        .expect("owned standard layout");
    let mut squared_norm = F::zero();
    for (b, _) in cache
        .lengths
        .iter()
        .enumerate()
        .filter(|&(_, &len)| t < len)
    {
        let cells = BackwardRow {
            gates: row(gates, b, 4 * hidden),
            c_prev: row(c_prev, b, hidden),
            cell_out: row(cell_out, b, hidden),
            dy: row(dy, b, hidden),
            d_gates: row(d_gates, b, 4 * hidden),
            dc_carry: row_mut(dc_carry, b, hidden),
            d_pre: row_mut(d_pre, b, 4 * hidden),
        };
        squared_norm = squared_norm + backward_row(rules, peepholes, clip, cells);
    }
    squared_norm
}
