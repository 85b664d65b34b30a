//! The gated recurrent unit (Cho et al. 2014) in PyTorch's `nn.GRU` form,
//! with exact backpropagation through time.
//!
//! At every step t (σ the logistic function, ⊙ the elementwise product; the
//! weights' row blocks in the order r, z, n, so `W_ir` is rows `0..H` of
//! `weight_ih`):
//!
//! ```text
//! r(t) = σ(W_ir x(t) + b_ir + W_hr h(t−1) + b_hr)
//! z(t) = σ(W_iz x(t) + b_iz + W_hz h(t−1) + b_hz)
//! n(t) = tanh(W_in x(t) + b_in + r(t) ⊙ (W_hn h(t−1) + b_hn))
//! h(t) = (1 − z(t)) ⊙ n(t) + z(t) ⊙ h(t−1)
//! ```
//!
//! `b_hn` sits inside the reset product (PyTorch's and cuDNN's form, ONNX's
//! `linear_before_reset = 1`), so unlike the LSTM's the two biases are not
//! interchangeable and get different gradients.
//!
//! Backward, with δh(t) = ∂J/∂h(t) complete (the output's Δ(t), the error
//! coming back from step t+1, ∂J/∂h_n at the sequence's last step), n̄, z̄, r̄
//! the arguments of tanh and σ:
//!
//! ```text
//! δn̄ = δh ⊙ (1 − z) ⊙ (1 − n²)
//! δz̄ = δh ⊙ (h(t−1) − n) ⊙ z ⊙ (1 − z)
//! δr̄ = δn̄ ⊙ (W_hn h(t−1) + b_hn) ⊙ r ⊙ (1 − r)
//! input side:  δa_x = [δr̄, δz̄, δn̄]       δW_ih = Σ δa_xᵀ x(t), δb_ih = Σ δa_x, δx(t) = δa_x W_ih
//! hidden side: δa_h = [δr̄, δz̄, r ⊙ δn̄]   δW_hh = Σ δa_hᵀ h(t−1), δb_hh = Σ δa_h
//! δh(t−1) gets δh(t) ⊙ z(t) + δa_h W_hh
//! ```
//!
//! Cost layout as in the simple RNN: the input projection of all steps is one
//! GEMM before the recurrence, δW and δx single GEMMs after it; inside the
//! time loop only `[batch, H] × [H, 3H]` (forward) and `[batch, 3H] × [3H, H]`
//! (backward) remain, against weights packed once per pass. Sequences do not
//! interact, so a large batch is split into slices that run their whole
//! recurrence on separate threads, with no synchronisation between steps.

use std::ops::Range;

use ndarray::{
    s, Array1, Array2, Array3, ArrayView2, ArrayView3, ArrayViewD, ArrayViewMut2, ArrayViewMut3,
    ArrayViewMutD, Axis,
};
use rand::distributions::Uniform;
use rand::Rng;
use rayon::prelude::*;

use super::recurrent::{layer_parameter_count, Recurrent, RecurrentGrads};
use super::rnn::{
    check_shape, flatten_time, flatten_time_mut, previous_states, sequence_output, StepProduct,
};
use super::sequence::{BackwardOptions, SequenceBatch, SequenceOutput};
use crate::kernels::gemm;
#[cfg(any(
    target_arch = "aarch64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
use crate::kernels::lanes::F32x4;
#[cfg(target_arch = "x86_64")]
use crate::kernels::lanes::F32x8;
use crate::kernels::lanes::{load, store, Lanes};
use crate::kernels::Isa;
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
use crate::kernels::{is_f32, retype};
use crate::{Error, ParamSet, Result, Scalar};

/// Below this many flops per step and slice, another thread costs more than it saves.
const PARALLEL_STEP_FLOPS: usize = 250_000;

/// Sizes of a GRU layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GruConfig {
    pub input_size: usize,
    pub hidden_size: usize,
}

impl GruConfig {
    pub fn validate(&self) -> Result<()> {
        for (name, size) in [
            ("inputSize", self.input_size),
            ("hiddenSize", self.hidden_size),
        ] {
            if size == 0 {
                return Err(Error::invalid(name, "must be at least 1, got 0"));
            }
        }
        layer_parameter_count(3, self.input_size, self.hidden_size)?;
        Ok(())
    }

    /// `[3H, X]`, `[3H, H]`, `[3H]`, `[3H]` in [`GruParams::NAMES`] order.
    fn param_shapes(&self) -> [Vec<usize>; 4] {
        let (x, h) = (self.input_size, self.hidden_size);
        [vec![3 * h, x], vec![3 * h, h], vec![3 * h], vec![3 * h]]
    }
}

/// Parameters (and, with the same type, their gradients) in PyTorch's
/// `nn.GRU` layout: row blocks r, z, n.
#[derive(Debug, Clone, PartialEq)]
pub struct GruParams<F> {
    /// `weight_ih_l0`: `[3H, X]`
    pub weight_ih: Array2<F>,
    /// `weight_hh_l0`: `[3H, H]`
    pub weight_hh: Array2<F>,
    /// `bias_ih_l0`: `[3H]`
    pub bias_ih: Array1<F>,
    /// `bias_hh_l0`: `[3H]` (its n block, b_hn, is the one inside the reset product)
    pub bias_hh: Array1<F>,
}

impl<F: Scalar> GruParams<F> {
    pub const NAMES: [&'static str; 4] = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"];

    /// All-zero parameters of the shapes `config` needs.
    pub fn zeros(config: &GruConfig) -> Self {
        let [wih, whh, bih, bhh] = config.param_shapes();
        GruParams {
            weight_ih: Array2::zeros((wih[0], wih[1])),
            weight_hh: Array2::zeros((whh[0], whh[1])),
            bias_ih: Array1::zeros(bih[0]),
            bias_hh: Array1::zeros(bhh[0]),
        }
    }

    /// `Error::Shape` naming the first tensor whose shape does not fit `config`.
    pub fn check_shapes(&self, config: &GruConfig) -> Result<()> {
        for ((name, tensor), expected) in self.tensors().iter().zip(config.param_shapes()) {
            check_shape(name, tensor.shape(), &expected)?;
        }
        Ok(())
    }
}

impl<F: Scalar> ParamSet<F> for GruParams<F> {
    fn tensors(&self) -> Vec<(&'static str, ArrayViewD<'_, F>)> {
        let views = [
            self.weight_ih.view().into_dyn(),
            self.weight_hh.view().into_dyn(),
            self.bias_ih.view().into_dyn(),
            self.bias_hh.view().into_dyn(),
        ];
        Self::NAMES.into_iter().zip(views).collect()
    }

    fn tensors_mut(&mut self) -> Vec<(&'static str, ArrayViewMutD<'_, F>)> {
        let views = [
            self.weight_ih.view_mut().into_dyn(),
            self.weight_hh.view_mut().into_dyn(),
            self.bias_ih.view_mut().into_dyn(),
            self.bias_hh.view_mut().into_dyn(),
        ];
        Self::NAMES.into_iter().zip(views).collect()
    }
}

/// Everything the forward pass keeps for the backward pass.
#[derive(Debug, Clone)]
pub struct GruCache<F> {
    /// The input, `[batch, time, X]` in standard layout (the backward GEMMs flatten it).
    x: Array3<F>,
    /// h(0): `[batch, H]`
    h0: Array2<F>,
    /// h(t) after every step: `[batch, time, H]`; the frozen state at padded steps.
    states: Array3<F>,
    /// r, z, n of every step: `[batch, time, 3H]`; zero at padded steps.
    gates: Array3<F>,
    /// W_hn h(t−1) + b_hn of every step: `[batch, time, H]`.
    hidden_n: Array3<F>,
    /// `[batch]`, each in `1..=time`.
    lengths: Vec<usize>,
}

/// Gradients of one backward pass.
#[derive(Debug, Clone)]
pub struct GruGrads<F> {
    /// ∂J/∂x: `[batch, time, X]`; zero at padded steps.
    pub dx: Array3<F>,
    /// ∂J/∂h(0): `[batch, H]`
    pub dh0: Array2<F>,
    /// Same names and shapes as the parameters.
    pub params: GruParams<F>,
    /// ‖∂J/∂h(k)‖₂ over the batch for every step k: `[time]` (gradient-flow
    /// diagnostics). Only sequences with k inside their length contribute;
    /// with `recurrent_clip` it is the norm of the clipped error, the one propagated.
    pub step_grad_norms: Array1<F>,
}

/// A GRU layer that owns its parameters.
#[derive(Debug, Clone)]
pub struct Gru<F> {
    pub config: GruConfig,
    pub params: GruParams<F>,
}

impl<F: Scalar> Gru<F> {
    /// PyTorch's initialisation: every parameter U(−1/√H, 1/√H).
    pub fn new<R: Rng>(config: GruConfig, rng: &mut R) -> Result<Self> {
        config.validate()?;
        let bound = F::one()
            / F::from_usize(config.hidden_size)
                .expect("usize fits a float")
                .sqrt();
        let uniform = Uniform::new_inclusive(-bound, bound);
        let mut params = GruParams::zeros(&config);
        for (_, mut tensor) in params.tensors_mut() {
            tensor.mapv_inplace(|_| rng.sample(&uniform));
        }
        Ok(Gru { config, params })
    }

    /// A layer from existing parameters (a checkpoint, PyTorch weights);
    /// `Error::Shape` names the first tensor that does not fit `config`.
    pub fn from_params(config: GruConfig, params: GruParams<F>) -> Result<Self> {
        let layer = Gru { config, params };
        layer.check_layer()?;
        Ok(layer)
    }

    /// Forward through time over a padded batch.
    pub fn forward(
        &self,
        batch: &SequenceBatch<'_, F>,
    ) -> Result<(SequenceOutput<F>, GruCache<F>)> {
        self.check_layer()?;
        let hidden = self.config.hidden_size;
        batch.validate(self.config.input_size, hidden)?;
        let (batch_size, time, _) = batch.dims();
        let x = batch.x.as_standard_layout().into_owned();
        // Standard layout: the step product reads h's rows as contiguous, and an initial
        // state cut out of another node's value may be laid out column-major.
        let h0 = batch.h0.map_or_else(
            || Array2::zeros((batch_size, hidden)),
            |h| h.as_standard_layout().into_owned(),
        );
        let lengths: Vec<usize> = (0..batch_size).map(|b| batch.length(b)).collect();
        let mut cache = GruCache {
            gates: self.input_projection(&x),
            states: Array3::zeros((batch_size, time, hidden)),
            hidden_n: Array3::zeros((batch_size, time, hidden)),
            x,
            h0,
            lengths,
        };
        self.run_forward(&mut cache);
        Ok((sequence_output(&cache.states, &cache.lengths), cache))
    }

    /// Backward through time.
    /// `dy`: ∂J/∂h(t) `[batch, time, H]` (padded steps ignored); `dh_n`: ∂J/∂h(T_b) `[batch, H]`.
    ///
    /// With `options.recurrent_clip = Some(v)`, every element of δh(t) is clamped to
    /// `[−v, v]` once it is complete (Δ(t) + the error from step t+1 (+ `dh_n` at the
    /// sequence's last step)) and before anything is computed from it. `dh0` is not clamped.
    pub fn backward(
        &self,
        cache: &GruCache<F>,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
    ) -> Result<GruGrads<F>> {
        self.backward_with(cache, dy, dh_n, options, true)
    }

    /// [`Self::backward`]; `input_gradient` false when nobody reads ∂J/∂x (the first layer
    /// over a model input): its GEMM is skipped and `dx` is `[batch, time, 0]`.
    pub fn backward_with(
        &self,
        cache: &GruCache<F>,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
        input_gradient: bool,
    ) -> Result<GruGrads<F>> {
        self.check_layer()?;
        self.check_cache(cache)?;
        let (batch, time, hidden) = cache.states.dim();
        check_shape("dy", dy.shape(), &[batch, time, hidden])?;
        if let Some(d) = dh_n {
            check_shape("dhN", d.shape(), &[batch, hidden])?;
        }
        let clip = options.checked_recurrent_clip()?;

        let dy = dy.as_standard_layout();
        let previous = previous_states(&cache.h0, &cache.states);
        let mut d_input = Array3::zeros((batch, time, 3 * hidden));
        let mut d_hidden = Array3::zeros((batch, time, 3 * hidden));
        // The error reaching h(t) from later steps; dh_n reaches each sequence's last
        // valid step untouched because padded steps leave it alone.
        let mut carry = dh_n.map_or_else(|| Array2::zeros((batch, hidden)), |d| d.to_owned());
        let squared_norms = self.run_backward(
            cache,
            previous.view(),
            dy.view(),
            clip,
            BackwardBuffers {
                d_input: d_input.view_mut(),
                d_hidden: d_hidden.view_mut(),
                carry: carry.view_mut(),
            },
        );
        Ok(GruGrads {
            dx: if input_gradient {
                self.input_gradient(&d_input)
            } else {
                Array3::zeros((batch, time, 0))
            },
            params: self.parameter_gradients(cache, &previous, &d_input, &d_hidden),
            dh0: carry,
            step_grad_norms: squared_norms.mapv(|v| v.sqrt()),
        })
    }

    /// The public fields may have been replaced since construction.
    fn check_layer(&self) -> Result<()> {
        self.config.validate()?;
        self.params.check_shapes(&self.config)
    }

    /// A cache of a layer with other sizes cannot be replayed through this one.
    fn check_cache(&self, cache: &GruCache<F>) -> Result<()> {
        let (batch, time, _) = cache.x.dim();
        let (input, hidden) = (self.config.input_size, self.config.hidden_size);
        check_shape("cache.x", cache.x.shape(), &[batch, time, input])?;
        check_shape(
            "cache.gates",
            cache.gates.shape(),
            &[batch, time, 3 * hidden],
        )
    }

    /// W_ih x(t) + b_ih for every step as one GEMM: `[batch, time, 3H]`.
    fn input_projection(&self, x: &Array3<F>) -> Array3<F> {
        let (batch, time, _) = x.dim();
        let mut projection = Array3::zeros((batch, time, 3 * self.config.hidden_size));
        gemm(
            flatten_time(x.view()),
            self.params.weight_ih.t(),
            flatten_time_mut(&mut projection),
            false,
            Some(&self.params.bias_ih.to_vec()),
        );
        projection
    }

    /// Sequences per thread: all of them unless a step's product is worth splitting.
    fn slice_size(&self, batch: usize) -> usize {
        let hidden = self.config.hidden_size;
        let step_flops = 2 * batch * 3 * hidden * hidden;
        let parts = (step_flops / PARALLEL_STEP_FLOPS).clamp(1, rayon::current_num_threads());
        batch.div_ceil(parts)
    }

    /// Turns `cache.gates` from input projections into r, z, n and fills the
    /// states, one batch slice per task.
    fn run_forward(&self, cache: &mut GruCache<F>) {
        let (batch, time, hidden) = cache.states.dim();
        let size = self.slice_size(batch);
        let recurrent = StepProduct::new(self.params.weight_hh.t());
        let bias_hh = self.params.bias_hh.view();
        let isa = Isa::current();
        let slices: Vec<_> = cache
            .gates
            .axis_chunks_iter_mut(Axis(0), size)
            .zip(cache.states.axis_chunks_iter_mut(Axis(0), size))
            .zip(cache.hidden_n.axis_chunks_iter_mut(Axis(0), size))
            .zip(cache.h0.axis_chunks_iter(Axis(0), size))
            .zip(cache.lengths.chunks(size))
            .collect();
        slices.into_par_iter().for_each(
            |((((mut gates, mut states), mut hidden_n), h0), lengths)| {
                let rows = lengths.len();
                let mut h = h0.to_owned();
                let mut hidden_pre = Array2::zeros((rows, 3 * hidden));
                for t in 0..time {
                    hidden_pre.assign(&bias_hh.broadcast((rows, 3 * hidden)).expect("[3H]"));
                    recurrent.multiply(h.view(), hidden_pre.view_mut(), true);
                    for (b, &length) in lengths.iter().enumerate() {
                        let mut gate_row = gates.slice_mut(s![b, t, ..]);
                        if t >= length {
                            gate_row.fill(F::zero());
                        } else {
                            forward_cells(
                                isa,
                                ForwardCells {
                                    gates: gate_row.into_slice().expect("contiguous rows"),
                                    hidden: hidden_pre.row(b).to_slice().expect("owned"),
                                    hidden_n: hidden_n
                                        .slice_mut(s![b, t, ..])
                                        .into_slice()
                                        .expect("contiguous rows"),
                                    h: h.row_mut(b).into_slice().expect("owned"),
                                },
                            );
                        }
                    }
                    states.index_axis_mut(Axis(1), t).assign(&h);
                }
            },
        );
    }

    /// The backward recurrence, one batch slice per task; returns Σ δh(t)² over the batch, `[time]`.
    fn run_backward(
        &self,
        cache: &GruCache<F>,
        previous: ArrayView3<'_, F>,
        dy: ArrayView3<'_, F>,
        clip: Option<F>,
        buffers: BackwardBuffers<'_, F>,
    ) -> Array1<F> {
        let (batch, time, _) = cache.states.dim();
        let size = self.slice_size(batch);
        let recurrent = StepProduct::new(self.params.weight_hh.view());
        let isa = Isa::current();
        let BackwardBuffers {
            mut d_input,
            mut d_hidden,
            mut carry,
        } = buffers;
        let slices: Vec<_> = d_input
            .axis_chunks_iter_mut(Axis(0), size)
            .zip(d_hidden.axis_chunks_iter_mut(Axis(0), size))
            .zip(carry.axis_chunks_iter_mut(Axis(0), size))
            .zip(batch_slices(batch, size))
            .collect();
        slices
            .into_par_iter()
            .map(|(((mut d_input, mut d_hidden), mut carry), range)| {
                let lengths = &cache.lengths[range.clone()];
                let mut squared = Array1::zeros(time);
                for t in (0..time).rev() {
                    for b in (0..lengths.len()).filter(|&b| t < lengths[b]) {
                        let sequence = range.start + b;
                        let gates = cache.gates.slice(s![sequence, t, ..]);
                        let hidden_n = cache.hidden_n.slice(s![sequence, t, ..]);
                        let h_prev = previous.slice(s![sequence, t, ..]);
                        squared[t] = squared[t]
                            + backward_cells(
                                isa,
                                clip,
                                BackwardCells {
                                    gates: gates.to_slice().expect("contiguous rows"),
                                    hidden_n: hidden_n.to_slice().expect("contiguous rows"),
                                    h_prev: h_prev.to_slice().expect("contiguous rows"),
                                    dy: dy
                                        .slice(s![sequence, t, ..])
                                        .to_slice()
                                        .expect("standard layout"),
                                    carry: carry.row_mut(b).into_slice().expect("owned"),
                                    d_input: d_input
                                        .slice_mut(s![b, t, ..])
                                        .into_slice()
                                        .expect("contiguous rows"),
                                    d_hidden: d_hidden
                                        .slice_mut(s![b, t, ..])
                                        .into_slice()
                                        .expect("contiguous rows"),
                                },
                            );
                    }
                    // Padded rows of d_hidden are zero, so their carry passes unchanged.
                    recurrent.multiply(d_hidden.index_axis(Axis(1), t), carry.view_mut(), true);
                }
                squared
            })
            .reduce(|| Array1::zeros(time), |a, b| a + b)
    }

    /// δx = δa_x W_ih for every step in one GEMM: `[batch, time, X]`.
    fn input_gradient(&self, d_input: &Array3<F>) -> Array3<F> {
        let (batch, time, _) = d_input.dim();
        let mut dx = Array3::zeros((batch, time, self.config.input_size));
        gemm(
            flatten_time(d_input.view()),
            self.params.weight_ih.view(),
            flatten_time_mut(&mut dx),
            false,
            None,
        );
        dx
    }

    /// The sums over time: δW_ih, δW_hh one GEMM each over all steps, the biases column sums.
    fn parameter_gradients(
        &self,
        cache: &GruCache<F>,
        previous: &Array3<F>,
        d_input: &Array3<F>,
        d_hidden: &Array3<F>,
    ) -> GruParams<F> {
        let product = |d: &Array3<F>, right: &Array3<F>| {
            let (d, right) = (flatten_time(d.view()), flatten_time(right.view()));
            let mut out = Array2::zeros((d.ncols(), right.ncols()));
            gemm(d.t(), right, out.view_mut(), false, None);
            out
        };
        GruParams {
            weight_ih: product(d_input, &cache.x),
            weight_hh: product(d_hidden, previous),
            bias_ih: flatten_time(d_input.view()).sum_axis(Axis(0)),
            bias_hh: flatten_time(d_hidden.view()).sum_axis(Axis(0)),
        }
    }
}

impl<F: Scalar> Recurrent<F> for Gru<F> {
    type Cache = GruCache<F>;

    super::recurrent::recurrent_methods!(no_cell);
}

/// The backward pass's outputs, written by the recurrence.
struct BackwardBuffers<'a, F> {
    /// δr̄, δz̄, δn̄ of every step: `[batch, time, 3H]`.
    d_input: ArrayViewMut3<'a, F>,
    /// δr̄, δz̄, r ⊙ δn̄ of every step: `[batch, time, 3H]`.
    d_hidden: ArrayViewMut3<'a, F>,
    /// In: ∂J/∂h_n; out: ∂J/∂h(0). `[batch, H]`
    carry: ArrayViewMut2<'a, F>,
}

/// The batch rows of each slice of `size` sequences.
fn batch_slices(batch: usize, size: usize) -> Vec<Range<usize>> {
    (0..batch)
        .step_by(size)
        .map(|start| start..(start + size).min(batch))
        .collect()
}

/// One sequence's slices for one forward step; `[H]` unless noted.
struct ForwardCells<'a, F> {
    /// `[3H]`. In: W_ih x(t) + b_ih. Out: r, z, n.
    gates: &'a mut [F],
    /// `[3H]`: W_hh h(t−1) + b_hh.
    hidden: &'a [F],
    /// Out: W_hn h(t−1) + b_hn, for the backward pass.
    hidden_n: &'a mut [F],
    /// In: h(t−1). Out: h(t).
    h: &'a mut [F],
}

/// One sequence's slices for one backward step; `[H]` unless noted.
struct BackwardCells<'a, F> {
    /// `[3H]`: r, z, n of the step.
    gates: &'a [F],
    /// W_hn h(t−1) + b_hn.
    hidden_n: &'a [F],
    h_prev: &'a [F],
    /// Δ(t), from the layer's output.
    dy: &'a [F],
    /// In: the error reaching h(t) from later steps. Out: δh(t) ⊙ z(t), the
    /// part of the error reaching h(t−1) that bypasses the weights.
    carry: &'a mut [F],
    /// `[3H]`, out: δr̄, δz̄, δn̄.
    d_input: &'a mut [F],
    /// `[3H]`, out: δr̄, δz̄, r ⊙ δn̄.
    d_hidden: &'a mut [F],
}

/// The forward step of the module doc for `units`, `V::WIDTH` at a time.
///
/// # Safety
/// `units.len()` must be a multiple of `V::WIDTH`, the slices as long as
/// [`ForwardCells`] documents, and the CPU must support `V`.
#[inline(always)]
unsafe fn forward_units<V: Lanes>(cells: &mut ForwardCells<'_, V::Elem>, units: Range<usize>) {
    let w = cells.h.len();
    // SAFETY (whole loop): every index is below the documented lengths; CPU support per the caller.
    unsafe {
        let one = V::splat(<V::Elem as num_traits::One>::one());
        for j in units.step_by(V::WIDTH) {
            let r = (load::<V>(cells.gates, j) + load::<V>(cells.hidden, j)).sigmoid();
            let z = (load::<V>(cells.gates, w + j) + load::<V>(cells.hidden, w + j)).sigmoid();
            let hidden_n = load::<V>(cells.hidden, 2 * w + j);
            let n = (load::<V>(cells.gates, 2 * w + j) + r * hidden_n).tanh();
            let h = (one - z) * n + z * load::<V>(cells.h, j);
            store(r, cells.gates, j);
            store(z, cells.gates, w + j);
            store(n, cells.gates, 2 * w + j);
            store(hidden_n, cells.hidden_n, j);
            store(h, cells.h, j);
        }
    }
}

/// The backward step of the module doc for `units`; returns Σ δh² over them.
///
/// # Safety
/// As [`forward_units`], for [`BackwardCells`].
#[inline(always)]
unsafe fn backward_units<V: Lanes>(
    cells: &mut BackwardCells<'_, V::Elem>,
    clip: Option<V::Elem>,
    units: Range<usize>,
) -> V::Elem {
    let w = cells.h_prev.len();
    // No closures: they would not inherit the caller's SIMD target features.
    // SAFETY (whole body): every index is below the documented lengths; CPU support per the caller.
    unsafe {
        let zero = V::splat(<V::Elem as num_traits::Zero>::zero());
        let one = V::splat(<V::Elem as num_traits::One>::one());
        #[allow(clippy::manual_map)]
        let bounds = match clip {
            Some(v) => Some((V::splat(-v), V::splat(v))),
            None => None,
        };
        let mut squared = zero;
        for j in units.step_by(V::WIDTH) {
            let mut dh = load::<V>(cells.dy, j) + load::<V>(cells.carry, j);
            if let Some((low, high)) = bounds {
                dh = dh.max(low).min(high);
            }
            let r = load::<V>(cells.gates, j);
            let z = load::<V>(cells.gates, w + j);
            let n = load::<V>(cells.gates, 2 * w + j);
            let d_n = dh * (one - z) * (one - n * n);
            let d_z = dh * (load::<V>(cells.h_prev, j) - n) * z * (one - z);
            let d_r = d_n * load::<V>(cells.hidden_n, j) * r * (one - r);
            store(d_r, cells.d_input, j);
            store(d_z, cells.d_input, w + j);
            store(d_n, cells.d_input, 2 * w + j);
            store(d_r, cells.d_hidden, j);
            store(d_z, cells.d_hidden, w + j);
            store(r * d_n, cells.d_hidden, 2 * w + j);
            store(dh * z, cells.carry, j);
            squared = squared + dh * dh;
        }
        squared.sum()
    }
}

/// Whole lanes of `V` over the first units, scalars over the rest.
#[inline(always)]
fn lane_split<V: Lanes>(units: usize) -> (Range<usize>, Range<usize>) {
    let whole = units - units % V::WIDTH;
    (0..whole, whole..units)
}

/// One forward step of one sequence with the best lanes for `F` on `isa`.
fn forward_cells<F: Scalar>(isa: Isa, mut cells: ForwardCells<'_, F>) {
    let hidden = cells.h.len();
    assert!(
        cells.gates.len() == 3 * hidden
            && cells.hidden.len() == 3 * hidden
            && cells.hidden_n.len() == hidden,
        "three gates per unit"
    );
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2_fma() && is_f32::<F>() {
        // SAFETY: F is f32, so the types are identical; AVX2 + FMA were detected.
        unsafe { forward_cells_avx2(retype(&mut cells)) };
        return;
    }
    #[cfg(any(
        target_arch = "aarch64",
        all(target_arch = "wasm32", target_feature = "simd128")
    ))]
    if matches!(isa, Isa::Neon | Isa::Simd128) && is_f32::<F>() {
        // SAFETY: F is f32, so the types are identical; F32x4's instructions are part of the target (NEON; simd128 compiled in).
        unsafe { forward_cells_f32x4(retype(&mut cells)) };
        return;
    }
    let _ = isa;
    // SAFETY: scalar lanes need no CPU feature; lengths asserted above.
    unsafe { forward_units::<F>(&mut cells, 0..hidden) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_cells_avx2(cells: &mut ForwardCells<'_, f32>) {
    let (lanes, rest) = lane_split::<F32x8>(cells.h.len());
    // SAFETY: AVX2 + FMA are enabled here and present (caller); lengths asserted by the caller.
    unsafe {
        forward_units::<F32x8>(cells, lanes);
        forward_units::<f32>(cells, rest);
    }
}

#[cfg(any(
    target_arch = "aarch64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
fn forward_cells_f32x4(cells: &mut ForwardCells<'_, f32>) {
    let (lanes, rest) = lane_split::<F32x4>(cells.h.len());
    // SAFETY: F32x4's instructions are part of the target (NEON; simd128 compiled in); lengths asserted by the caller.
    unsafe {
        forward_units::<F32x4>(cells, lanes);
        forward_units::<f32>(cells, rest);
    }
}

/// One backward step of one sequence with the best lanes for `F` on `isa`; returns Σ δh².
fn backward_cells<F: Scalar>(isa: Isa, clip: Option<F>, mut cells: BackwardCells<'_, F>) -> F {
    let hidden = cells.h_prev.len();
    assert!(
        cells.gates.len() == 3 * hidden
            && cells.hidden_n.len() == hidden
            && cells.dy.len() == hidden
            && cells.carry.len() == hidden
            && cells.d_input.len() == 3 * hidden
            && cells.d_hidden.len() == 3 * hidden,
        "three gates per unit"
    );
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2_fma() && is_f32::<F>() {
        // SAFETY: F is f32, so the types are identical; AVX2 + FMA were detected.
        unsafe { return retype(backward_cells_avx2(retype(&mut cells), retype(clip))) };
    }
    #[cfg(any(
        target_arch = "aarch64",
        all(target_arch = "wasm32", target_feature = "simd128")
    ))]
    if matches!(isa, Isa::Neon | Isa::Simd128) && is_f32::<F>() {
        // SAFETY: F is f32, so the types are identical; F32x4's instructions are part of the target (NEON; simd128 compiled in).
        unsafe { return retype(backward_cells_f32x4(retype(&mut cells), retype(clip))) };
    }
    let _ = isa;
    // SAFETY: scalar lanes need no CPU feature; lengths asserted above.
    unsafe { backward_units::<F>(&mut cells, clip, 0..hidden) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_cells_avx2(cells: &mut BackwardCells<'_, f32>, clip: Option<f32>) -> f32 {
    let (lanes, rest) = lane_split::<F32x8>(cells.h_prev.len());
    // SAFETY: AVX2 + FMA are enabled here and present (caller); lengths asserted by the caller.
    unsafe {
        backward_units::<F32x8>(cells, clip, lanes) + backward_units::<f32>(cells, clip, rest)
    }
}

#[cfg(any(
    target_arch = "aarch64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
fn backward_cells_f32x4(cells: &mut BackwardCells<'_, f32>, clip: Option<f32>) -> f32 {
    let (lanes, rest) = lane_split::<F32x4>(cells.h_prev.len());
    // SAFETY: F32x4's instructions are part of the target (NEON; simd128 compiled in); lengths asserted by the caller.
    unsafe {
        backward_units::<F32x4>(cells, clip, lanes) + backward_units::<f32>(cells, clip, rest)
    }
}
