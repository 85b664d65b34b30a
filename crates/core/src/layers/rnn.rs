//! The simple (Elman) RNN of SPEC §2: h(t) = g(W_ih x(t) + b_ih + W_hh h(t−1) + b_hh),
//! with exact backpropagation through time.
//!
//! Cost layout: the input projection of every step is one GEMM before the
//! recurrence, and δW_ih, δW_hh, δx are single GEMMs after it; inside the time
//! loop only the `[batch, hidden] × [hidden, hidden]` products remain, each with
//! its elementwise epilogue (g forward; clip, g' and the bias sum backward) on
//! the rows it just wrote. Per-step quantities live time-major (row
//! `t * batch + b` is step t of sequence b): a step of the batch is one
//! contiguous matrix for its product, and h(t − 1) of every step is a plain
//! slice of the state buffer for δW_hh. Buffers are allocated once per pass.

use std::ops::Range;

use ndarray::{
    s, Array1, Array2, Array3, ArrayView2, ArrayView3, ArrayViewD, ArrayViewMut2, ArrayViewMutD,
    Axis,
};
use rand::distributions::Uniform;
use rand::Rng;
use rayon::prelude::*;

use super::recurrent::layer_parameter_count;
use super::sequence::{BackwardOptions, SequenceBatch, SequenceOutput};
use crate::kernels::gemm;
use crate::kernels::gemm::{gemm_prepacked, KC};
#[cfg(any(
    target_arch = "aarch64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
use crate::kernels::lanes::F32x4;
#[cfg(target_arch = "x86_64")]
use crate::kernels::lanes::F32x8;
use crate::kernels::lanes::{load, store, Lanes};
use crate::kernels::lockstep::{run_lockstep, sequence_parts, step_chunks, SharedRows};
use crate::kernels::microkernels::MicroKernel;
use crate::kernels::pack::{MatRef, PackedB};
use crate::kernels::Isa;
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
use crate::kernels::{is_f32, retype};
use crate::{Error, ParamSet, Result, Scalar};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RnnActivation {
    #[default]
    Tanh,
    Relu,
}

impl RnnActivation {
    /// g per lane.
    ///
    /// # Safety
    /// The CPU must support `V`'s instructions.
    #[inline(always)]
    unsafe fn apply<V: Lanes>(self, a: V) -> V {
        match self {
            RnnActivation::Tanh => a.tanh(),
            // SAFETY: per the caller.
            RnnActivation::Relu => a.max(unsafe { V::splat(num_traits::Zero::zero()) }),
        }
    }

    /// `values` ← g(`values`), eight at a time where the CPU allows: the step's
    /// activations cost as much as its product when computed one `tanhf` at a time.
    fn apply_in_place<F: Scalar>(self, isa: Isa, values: &mut [F]) {
        #[cfg(target_arch = "x86_64")]
        if isa.has_avx2_fma() && is_f32::<F>() {
            // SAFETY: F is f32, so the slice types are identical; AVX2 + FMA were detected.
            unsafe { self.apply_avx2(retype(values)) };
            return;
        }
        #[cfg(any(
            target_arch = "aarch64",
            all(target_arch = "wasm32", target_feature = "simd128")
        ))]
        if matches!(isa, Isa::Neon | Isa::Simd128) && is_f32::<F>() {
            // SAFETY: F is f32, so the slice types are identical; F32x4's instructions are part of the target (NEON; simd128 compiled in).
            unsafe { self.apply_lanes::<F32x4>(retype(values)) };
            return;
        }
        let _ = isa;
        // SAFETY: scalar lanes need no CPU feature.
        unsafe { self.apply_lanes::<F>(values) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn apply_avx2(self, values: &mut [f32]) {
        // SAFETY: AVX2 + FMA are enabled here and present (caller).
        unsafe { self.apply_lanes::<F32x8>(values) }
    }

    /// # Safety
    /// The CPU must support `V`'s instructions.
    #[inline(always)]
    unsafe fn apply_lanes<V: Lanes>(self, values: &mut [V::Elem]) {
        let whole = values.len() - values.len() % V::WIDTH;
        let (lanes, rest) = values.split_at_mut(whole);
        // SAFETY (both loops): every pointer is inside `values`; CPU support per the caller.
        for chunk in lanes.chunks_exact_mut(V::WIDTH) {
            unsafe {
                self.apply(V::load(chunk.as_ptr()))
                    .store(chunk.as_mut_ptr())
            };
        }
        for value in rest {
            *value = unsafe { self.apply(*value) };
        }
    }

    /// g'(a) expressed through h = g(a), so the cache needs no pre-activations:
    /// tanh' = 1 − h², relu' = [h > 0] (h > 0 exactly when a > 0).
    fn derivative_from_output<F: Scalar>(self, h: F) -> F {
        match self {
            RnnActivation::Tanh => F::one() - h * h,
            RnnActivation::Relu if h > F::zero() => F::one(),
            RnnActivation::Relu => F::zero(),
        }
    }

    /// The backward epilogue of one row (see [`DeltaRow`]); returns ‖δh‖². Tanh rows run
    /// eight lanes at a time where the CPU allows; ReLU's g' needs a comparison, which
    /// lanes lack, so its rows run one value at a time.
    fn delta_row<F: Scalar>(self, isa: Isa, clip: Option<F>, row: DeltaRow<'_, F>) -> F {
        #[cfg(target_arch = "x86_64")]
        if self == RnnActivation::Tanh && isa.has_avx2_fma() && is_f32::<F>() {
            // SAFETY: F is f32, so the types are identical; AVX2 + FMA were detected.
            return unsafe { retype(tanh_delta_avx2(retype(clip), retype(row))) };
        }
        #[cfg(any(
            target_arch = "aarch64",
            all(target_arch = "wasm32", target_feature = "simd128")
        ))]
        if self == RnnActivation::Tanh && matches!(isa, Isa::Neon | Isa::Simd128) && is_f32::<F>() {
            // SAFETY: F is f32, so the types are identical; F32x4's instructions are part of
            // the target (NEON; simd128 compiled in).
            return unsafe {
                retype(delta_lanes::<F32x4>(
                    retype(clip),
                    retype(row),
                    tanh_slope,
                    tanh_slope,
                ))
            };
        }
        let _ = isa;
        let slope = match self {
            RnnActivation::Tanh => tanh_slope::<F>,
            RnnActivation::Relu => relu_slope::<F>,
        };
        // SAFETY: scalar lanes need no CPU feature.
        unsafe { delta_lanes::<F>(clip, row, slope, slope) }
    }
}

/// One row of the backward epilogue: one sequence at one step, a chunk's units.
/// δh = clip(recurrent term + Δ(t) (+ ∂J/∂h_n at the sequence's last step)),
/// δa(t) = δh ⊙ g'(a(t)), written over the recurrent term and added to the bias sums.
struct DeltaRow<'a, F> {
    /// In: δa(t + 1)·W_hh (zero at the last step); out: δa(t).
    delta: &'a mut [F],
    /// Δ(t) = ∂J/∂y(t).
    dy: &'a [F],
    /// ∂J/∂h_n, at the sequence's last step only.
    dh_n: Option<&'a [F]>,
    /// h(t) = g(a(t)).
    h: &'a [F],
    /// Σ δa over the steps and sequences done so far.
    bias: &'a mut [F],
}

/// tanh' = 1 − h², on lanes.
///
/// # Safety
/// The CPU must support `V`'s instructions.
#[inline(always)]
unsafe fn tanh_slope<V: Lanes>(h: V) -> V {
    // SAFETY: per the caller.
    unsafe { V::splat(num_traits::One::one()) - h * h }
}

/// relu' = [h > 0], one value at a time (see [`RnnActivation::derivative_from_output`]).
///
/// # Safety
/// None needed; `unsafe` only to share [`tanh_slope`]'s type.
#[inline(always)]
unsafe fn relu_slope<F: Scalar>(h: F) -> F {
    RnnActivation::Relu.derivative_from_output(h)
}

/// [`DeltaRow`]'s arithmetic, `V::WIDTH` values at a time with g' = `slope`, the
/// remainder one at a time with `tail_slope`; returns ‖δh‖².
///
/// # Safety
/// The CPU must support `V`'s instructions.
#[inline(always)]
unsafe fn delta_lanes<V: Lanes>(
    clip: Option<V::Elem>,
    row: DeltaRow<'_, V::Elem>,
    slope: unsafe fn(V) -> V,
    tail_slope: unsafe fn(V::Elem) -> V::Elem,
) -> V::Elem {
    let DeltaRow {
        delta,
        dy,
        dh_n,
        h,
        bias,
    } = row;
    let len = delta.len();
    assert!(
        dy.len() == len
            && h.len() == len
            && bias.len() == len
            && dh_n.is_none_or(|d| d.len() == len),
        "rows of one width"
    );
    let whole = len - len % V::WIDTH;
    // SAFETY (whole function): every index is below `len` (asserted), the CPU per the caller.
    unsafe {
        let bounds = clip.map(|c| (V::splat(-c), V::splat(c)));
        let mut squares = V::splat(num_traits::Zero::zero());
        for i in (0..whole).step_by(V::WIDTH) {
            let mut total = load::<V>(delta, i) + load(dy, i);
            if let Some(dh_n) = dh_n {
                total = total + load(dh_n, i);
            }
            if let Some((low, high)) = bounds {
                total = total.max(low).min(high);
            }
            squares = squares + total * total;
            let d = total * slope(load(h, i));
            store(d, delta, i);
            store(load::<V>(bias, i) + d, bias, i);
        }
        if whole == len {
            return squares.sum();
        }
        let tail = DeltaRow {
            delta: &mut delta[whole..],
            dy: &dy[whole..],
            dh_n: dh_n.map(|d| &d[whole..]),
            h: &h[whole..],
            bias: &mut bias[whole..],
        };
        squares.sum() + delta_lanes::<V::Elem>(clip, tail, tail_slope, tail_slope)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tanh_delta_avx2(clip: Option<f32>, row: DeltaRow<'_, f32>) -> f32 {
    // SAFETY: AVX2 + FMA are enabled here and present (caller).
    unsafe { delta_lanes::<F32x8>(clip, row, tanh_slope, tanh_slope) }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RnnConfig {
    pub input_size: usize,
    pub hidden_size: usize,
    pub activation: RnnActivation,
}

impl RnnConfig {
    pub fn validate(&self) -> Result<()> {
        for (name, size) in [
            ("inputSize", self.input_size),
            ("hiddenSize", self.hidden_size),
        ] {
            if size == 0 {
                return Err(Error::invalid(name, "must be at least 1, got 0"));
            }
        }
        layer_parameter_count(1, self.input_size, self.hidden_size)?;
        Ok(())
    }
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

impl<F: Scalar> RnnParams<F> {
    /// Every tensor drawn from U(−bound, bound), in PyTorch's parameter order.
    fn uniform<R: Rng>(config: &RnnConfig, bound: F, rng: &mut R) -> Self {
        let (input, hidden) = (config.input_size, config.hidden_size);
        let dist = Uniform::new(-bound, bound);
        RnnParams {
            weight_ih: Array2::from_shape_simple_fn((hidden, input), || rng.sample(&dist)),
            weight_hh: Array2::from_shape_simple_fn((hidden, hidden), || rng.sample(&dist)),
            bias_ih: Array1::from_shape_simple_fn(hidden, || rng.sample(&dist)),
            bias_hh: Array1::from_shape_simple_fn(hidden, || rng.sample(&dist)),
        }
    }
}

impl<F> RnnParams<F> {
    /// `Error::Shape` naming the first tensor whose shape does not fit `config`.
    pub fn check_shapes(&self, config: &RnnConfig) -> Result<()> {
        let (input, hidden) = (config.input_size, config.hidden_size);
        let expected: [&[usize]; 4] = [&[hidden, input], &[hidden, hidden], &[hidden], &[hidden]];
        for ((name, tensor), expected) in self.tensors().iter().zip(expected) {
            check_shape(name, tensor.shape(), expected)?;
        }
        Ok(())
    }
}

impl<F> ParamSet<F> for RnnParams<F> {
    fn tensors(&self) -> Vec<(&'static str, ArrayViewD<'_, F>)> {
        vec![
            ("weight_ih", self.weight_ih.view().into_dyn()),
            ("weight_hh", self.weight_hh.view().into_dyn()),
            ("bias_ih", self.bias_ih.view().into_dyn()),
            ("bias_hh", self.bias_hh.view().into_dyn()),
        ]
    }

    fn tensors_mut(&mut self) -> Vec<(&'static str, ArrayViewMutD<'_, F>)> {
        vec![
            ("weight_ih", self.weight_ih.view_mut().into_dyn()),
            ("weight_hh", self.weight_hh.view_mut().into_dyn()),
            ("bias_ih", self.bias_ih.view_mut().into_dyn()),
            ("bias_hh", self.bias_hh.view_mut().into_dyn()),
        ]
    }
}

/// Everything the forward pass stores for the backward pass, time-major (see the module doc).
#[derive(Debug, Clone)]
pub struct RnnCache<F> {
    /// The inputs, padded steps zeroed: `[time * batch, input_size]`.
    x: Array2<F>,
    /// h after k steps for k = 0..=time (k = 0 is h(0)): `[(time + 1) * batch, hidden_size]`.
    /// A padded step repeats its sequence's last state.
    states: Array2<F>,
    /// `[batch]`, each in `1..=time`.
    lengths: Vec<usize>,
}

impl<F> RnnCache<F> {
    /// `(batch, time)` of the forward pass that made this cache.
    fn dims(&self) -> (usize, usize) {
        let batch = self.lengths.len();
        (batch, self.x.nrows() / batch)
    }
}

#[derive(Debug, Clone)]
pub struct RnnGrads<F> {
    /// ∂J/∂x: `[batch, time, input_size]`; zero at padded steps.
    pub dx: Array3<F>,
    /// ∂J/∂h(0): `[batch, hidden_size]`
    pub dh0: Array2<F>,
    pub params: RnnParams<F>,
    /// ‖∂J/∂h(k)‖₂ over the batch for every step k: `[time]` (gradient-flow diagnostics).
    /// Only sequences with k inside their length contribute; with `recurrent_clip`
    /// it is the norm of the clipped error, the one that is propagated.
    pub step_grad_norms: Array1<F>,
}

#[derive(Debug, Clone)]
pub struct SimpleRnn<F> {
    pub config: RnnConfig,
    pub params: RnnParams<F>,
}

impl<F: Scalar> SimpleRnn<F> {
    /// PyTorch's initialisation: every parameter U(−1/√H, 1/√H).
    pub fn new<R: Rng>(config: RnnConfig, rng: &mut R) -> Result<Self> {
        config.validate()?;
        let bound = F::one()
            / F::from_usize(config.hidden_size)
                .unwrap_or_else(F::one)
                .sqrt();
        let params = RnnParams::uniform(&config, bound, rng);
        Ok(SimpleRnn { config, params })
    }

    /// A layer from existing parameters (a checkpoint, PyTorch weights);
    /// `Error::Shape` names the first tensor that does not fit `config`.
    pub fn from_params(config: RnnConfig, params: RnnParams<F>) -> Result<Self> {
        let layer = SimpleRnn { config, params };
        layer.check_layer()?;
        Ok(layer)
    }

    pub fn forward(
        &self,
        batch: &SequenceBatch<'_, F>,
    ) -> Result<(SequenceOutput<F>, RnnCache<F>)> {
        self.check_layer()?;
        let hidden = self.config.hidden_size;
        batch.validate(self.config.input_size, hidden)?;
        let (batch_size, time, _) = batch.dims();
        let lengths: Vec<usize> = (0..batch_size).map(|b| batch.length(b)).collect();
        let x = time_major_rows(batch.x, &lengths);
        let mut states = Array2::zeros(((time + 1) * batch_size, hidden));
        if let Some(h0) = batch.h0 {
            states.slice_mut(s![..batch_size, ..]).assign(&h0);
        }
        // Rows after h(0), built from the slice: slicing would give a one-unit layer's
        // column a stride of 0, and the GEMM writes C by unit column stride.
        let (_, projection) = states
            .as_slice_mut()
            .expect("owned")
            .split_at_mut(batch_size * hidden);
        let projection = ArrayViewMut2::from_shape((time * batch_size, hidden), projection)
            .expect("[time * batch, hidden] rows");
        self.input_projection(x.view(), projection);
        self.run_recurrence(&mut states, &lengths);
        let output = time_major_output(&states, &lengths);
        Ok((output, RnnCache { x, states, lengths }))
    }

    /// `dy`: ∂J/∂h(t) `[batch, time, hidden]`; `dh_n`: ∂J/∂h(T_b) `[batch, hidden]`.
    pub fn backward(
        &self,
        cache: &RnnCache<F>,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
    ) -> Result<RnnGrads<F>> {
        self.backward_with(cache, dy, dh_n, options, true)
    }

    /// [`Self::backward`]; `input_gradient` false when nobody reads ∂J/∂x (the first layer
    /// over a model input): its GEMM, a third of the products after the recurrence at
    /// X = H / 2, is skipped and `dx` is `[batch, time, 0]`.
    pub fn backward_with(
        &self,
        cache: &RnnCache<F>,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
        input_gradient: bool,
    ) -> Result<RnnGrads<F>> {
        self.check_layer()?;
        self.check_cache(cache)?;
        let (batch, time) = cache.dims();
        let hidden = self.config.hidden_size;
        check_shape("dy", dy.shape(), &[batch, time, hidden])?;
        if let Some(d) = dh_n {
            check_shape("dhN", d.shape(), &[batch, hidden])?;
        }
        let clip = options.checked_recurrent_clip()?;
        let (activation, isa) = (self.config.activation, Isa::current());
        // Read as rows of slices: a copy only when they come in another layout.
        let (dy, dh_n) = (
            dy.as_standard_layout(),
            dh_n.map(|d| d.as_standard_layout().into_owned()),
        );
        let standard = "standard layout";
        let (dy, dh_n) = (
            dy.as_slice().expect(standard),
            dh_n.as_ref().map(|d| d.as_slice().expect(standard)),
        );

        // δa(t) = ∂J/∂a(t), time-major; stays zero at padded steps.
        let mut delta_a = Array2::<F>::zeros((time * batch, hidden));
        let mut dh0 = Array2::<F>::zeros((batch, hidden));
        let recurrent_weight = StepProduct::new(self.params.weight_hh.view());
        // Split as the forward pass (see `run_recurrence`): by sequences, each part through
        // every step alone, or by units in lock step. A part of the sequences sums its own
        // bias row (added up after the recurrence); the chunks of units share one row.
        let step_flops = 2 * batch * hidden * hidden;
        let (parts, chunks) = match sequence_parts(batch, step_flops) {
            Some(parts) => (parts, Vec::new()),
            None => (Vec::new(), step_chunks(hidden, step_flops)),
        };
        let by_sequences = !parts.is_empty();
        let (bias_rows, columns) = if by_sequences {
            (parts.len(), parts.len())
        } else {
            (1, chunks.len())
        };
        let mut bias = Array2::<F>::zeros((bias_rows, hidden));
        // Σ δh² of every step and part (or chunk), summed per step once all are done.
        let mut squares = Array2::<F>::zeros((time, columns));
        let lengths = &cache.lengths;
        let states = cache.states.as_slice().expect(standard);
        let delta_rows = SharedRows::new(delta_a.as_slice_mut().expect(standard), hidden);
        let dh0_rows = SharedRows::new(dh0.as_slice_mut().expect(standard), hidden);
        let bias_rows = SharedRows::new(bias.as_slice_mut().expect(standard), hidden);
        let square_rows = SharedRows::new(squares.as_slice_mut().expect(standard), columns);
        // Lock step k of the sequences `sequences`, units `units`, part or chunk `column`:
        // the recurrent term δa(time − k)·W_hh into the rows of step time − 1 − k (needing
        // δa of lock step k − 1 of these sequences, all units; into dh0 at k = time), then
        // that step's epilogue. A padded step's δa(t + 1) is zero, so is its term: at a
        // sequence's last step only Δ and ∂J/∂h_n remain, as the padding passes them on.
        let step = |lock: usize, sequences: Range<usize>, units: Range<usize>, column: usize| {
            let bias_row = if by_sequences { column } else { 0 };
            // SAFETY: both schedules below run lock step k of these rows × units on one
            // thread, which alone writes them (of step time − 1 − k, or dh0), its bias row's
            // units and its own square; the rows `sequences` of step time − k it reads are
            // complete since lock step k − 1 and written by nobody.
            unsafe {
                if lock > 0 {
                    let later = (time - lock) * batch;
                    let out = if lock == time {
                        dh0_rows.ptr_at(sequences.start, units.start)
                    } else {
                        delta_rows.ptr_at(later - batch + sequences.start, units.start)
                    };
                    recurrent_weight.multiply_columns(
                        delta_rows.rows_ref(later + sequences.start..later + sequences.end),
                        units.clone(),
                        out,
                        hidden as isize,
                        false,
                    );
                }
                if lock == time {
                    return;
                }
                let t = time - 1 - lock;
                let mut sum_sq = F::zero();
                for b in sequences {
                    let length = lengths[b];
                    let delta = delta_rows.row_mut(t * batch + b, units.clone());
                    if t >= length {
                        // Zero already, unless W_hh holds a non-finite value.
                        delta.fill(F::zero());
                        continue;
                    }
                    let row = DeltaRow {
                        delta,
                        dy: &dy[(b * time + t) * hidden..][units.clone()],
                        dh_n: dh_n
                            .filter(|_| t + 1 == length)
                            .map(|d| &d[b * hidden..][units.clone()]),
                        h: &states[((t + 1) * batch + b) * hidden..][units.clone()],
                        bias: bias_rows.row_mut(bias_row, units.clone()),
                    };
                    sum_sq = sum_sq + activation.delta_row(isa, clip, row);
                }
                square_rows.row_mut(t, column..column + 1)[0] = sum_sq;
            }
        };
        if by_sequences {
            parts.par_iter().enumerate().for_each(|(part, sequences)| {
                for lock in 0..=time {
                    step(lock, sequences.clone(), 0..hidden, part);
                }
            });
        } else {
            run_lockstep(time + 1, chunks.len(), &|lock, chunk| {
                step(lock, 0..batch, chunks[chunk].clone(), chunk)
            });
        }
        let norms = squares.map_axis(Axis(1), |row| {
            row.iter()
                .fold(F::zero(), |sum, &square| sum + square)
                .sqrt()
        });
        let bias = bias.sum_axis(Axis(0));
        Ok(self.gradients_after_recurrence(cache, delta_a, dh0, bias, norms, input_gradient))
    }

    /// The public fields may have been replaced since construction.
    fn check_layer(&self) -> Result<()> {
        self.config.validate()?;
        self.params.check_shapes(&self.config)
    }

    /// A cache of a layer with other sizes cannot be replayed through this one.
    fn check_cache(&self, cache: &RnnCache<F>) -> Result<()> {
        let (batch, time) = cache.dims();
        check_shape(
            "cache.x",
            cache.x.shape(),
            &[time * batch, self.config.input_size],
        )?;
        check_shape(
            "cache.states",
            cache.states.shape(),
            &[(time + 1) * batch, self.config.hidden_size],
        )
    }

    /// W_ih x + b_ih + b_hh for every row of `x` (`[rows, input]`) as one GEMM into `out`
    /// (`[rows, hidden]`).
    fn input_projection(&self, x: ArrayView2<'_, F>, out: ArrayViewMut2<'_, F>) {
        let bias = (&self.params.bias_ih + &self.params.bias_hh).to_vec();
        gemm(x, self.params.weight_ih.t(), out, false, Some(&bias));
    }

    /// Turns `states` (h(0), then every step's input projection; time-major) into h(t),
    /// step by step, in place. Padded steps copy the previous state, so it stays frozen.
    /// On several threads, a large batch is split by sequences: each thread runs its
    /// rows through every step with all of W_hhᵀ (kept in its core's cache), with no
    /// synchronisation between steps. A small one is split by hidden units in lock step
    /// (as the LSTM's): each thread multiplies h(t − 1) by its columns of W_hhᵀ and
    /// activates its own units.
    fn run_recurrence(&self, states: &mut Array2<F>, lengths: &[usize]) {
        let (activation, isa) = (self.config.activation, Isa::current());
        let batch = lengths.len();
        let (rows, hidden) = states.dim();
        let time = rows / batch - 1;
        let recurrent_weight_t = StepProduct::new(self.params.weight_hh.t());
        let states = SharedRows::new(states.as_slice_mut().expect("owned"), hidden);
        // Step t of the sequences `sequences`, units `units`: h(t + 1) from h(t).
        let step = |t: usize, sequences: Range<usize>, units: Range<usize>| {
            let (now, next) = (t * batch, (t + 1) * batch);
            // SAFETY: both schedules below run step t of these rows × units of h(t + 1) on
            // one thread, touched by no other, after the rows `sequences` of h(t) are
            // complete; nobody writes h(t) during step t.
            unsafe {
                recurrent_weight_t.multiply_columns(
                    states.rows_ref(now + sequences.start..now + sequences.end),
                    units.clone(),
                    states.ptr_at(next + sequences.start, units.start),
                    hidden as isize,
                    true,
                );
                for b in sequences {
                    let row = states.row_mut(next + b, units.clone());
                    if t < lengths[b] {
                        activation.apply_in_place(isa, row);
                    } else {
                        row.copy_from_slice(states.row(now + b, units.clone()));
                    }
                }
            }
        };
        let step_flops = 2 * batch * hidden * hidden;
        if let Some(parts) = sequence_parts(batch, step_flops) {
            parts.into_par_iter().for_each(|sequences| {
                for t in 0..time {
                    // SAFETY: each part reads and writes only the rows of its own sequences.
                    step(t, sequences.clone(), 0..hidden);
                }
            });
        } else {
            let chunks = step_chunks(hidden, step_flops);
            // SAFETY: during step t each chunk writes only its own units of the rows of
            // h(t + 1); it reads the rows of h(t), complete before step t started.
            run_lockstep(time, chunks.len(), &|t, chunk| {
                step(t, 0..batch, chunks[chunk].clone())
            });
        }
    }

    /// δx (when `input_gradient`; else `[batch, time, 0]`), δW_ih and δW_hh as single GEMMs
    /// over all steps (the bias sums were taken during the recurrence). `delta_a`: δa(t),
    /// time-major `[time * batch, hidden]`.
    fn gradients_after_recurrence(
        &self,
        cache: &RnnCache<F>,
        delta_a: Array2<F>,
        dh0: Array2<F>,
        grad_bias: Array1<F>,
        step_grad_norms: Array1<F>,
        input_gradient: bool,
    ) -> RnnGrads<F> {
        let (batch, time) = cache.dims();
        let (input, hidden) = (self.config.input_size, self.config.hidden_size);
        let dx = if input_gradient {
            let mut dx = Array2::zeros((time * batch, input));
            gemm(
                delta_a.view(),
                self.params.weight_ih.view(),
                dx.view_mut(),
                false,
                None,
            );
            batch_major(dx.view(), batch)
        } else {
            Array3::zeros((batch, time, 0))
        };
        let mut grad_weight_ih = Array2::zeros((hidden, input));
        gemm(
            delta_a.t(),
            cache.x.view(),
            grad_weight_ih.view_mut(),
            false,
            None,
        );
        // δW_hh = Σ_t δa(t)ᵀ h(t − 1): h(t − 1) of every step are the state rows before the last step's.
        let mut grad_weight_hh = Array2::zeros((hidden, hidden));
        gemm(
            delta_a.t(),
            cache.states.slice(s![..time * batch, ..]),
            grad_weight_hh.view_mut(),
            false,
            None,
        );
        RnnGrads {
            dx,
            dh0,
            params: RnnParams {
                weight_ih: grad_weight_ih,
                weight_hh: grad_weight_hh,
                bias_ih: grad_bias.clone(),
                bias_hh: grad_bias,
            },
            step_grad_norms,
        }
    }
}

/// `x` (`[batch, time, f]`, any layout) time-major: `[time * batch, f]`, row `t * batch + b`
/// holding step t of sequence b; padded steps zero, so that whatever the caller put there
/// cannot reach a gradient.
pub(super) fn time_major_rows<F: Scalar>(x: ArrayView3<'_, F>, lengths: &[usize]) -> Array2<F> {
    let (batch, time, features) = x.dim();
    let mut rows = Array2::zeros((time * batch, features));
    for (b, &length) in lengths.iter().enumerate() {
        rows.slice_mut(s![b..length * batch; batch, ..])
            .assign(&x.slice(s![b, ..length, ..]));
    }
    rows
}

/// Time-major rows `[time * batch, f]` back in batch-major order: `[batch, time, f]`.
pub(super) fn batch_major<F: Scalar>(rows: ArrayView2<'_, F>, batch: usize) -> Array3<F> {
    let (count, features) = rows.dim();
    let mut out = Array3::zeros((batch, count / batch, features));
    for (b, mut sequence) in out.outer_iter_mut().enumerate() {
        sequence.assign(&rows.slice(s![b..; batch, ..]));
    }
    out
}

/// y (zero at padded steps) and h_n (each sequence's state at its own length) from the
/// time-major states `[(time + 1) * batch, hidden]` (h(0) first).
fn time_major_output<F: Scalar>(states: &Array2<F>, lengths: &[usize]) -> SequenceOutput<F> {
    let batch = lengths.len();
    let (rows, hidden) = states.dim();
    let mut y = Array3::zeros((batch, rows / batch - 1, hidden));
    let mut h_n = Array2::zeros((batch, hidden));
    for (b, &length) in lengths.iter().enumerate() {
        y.slice_mut(s![b, ..length, ..])
            .assign(&states.slice(s![batch + b..(length + 1) * batch; batch, ..]));
        h_n.row_mut(b).assign(&states.row(length * batch + b));
    }
    SequenceOutput { y, h_n, c_n: None }
}

/// y (zero at padded steps) and h_n (each sequence's state at its own length).
pub(super) fn sequence_output<F: Scalar>(
    states: &Array3<F>,
    lengths: &[usize],
) -> SequenceOutput<F> {
    let (batch, _, hidden) = states.dim();
    let mut y = states.clone();
    let mut h_n = Array2::zeros((batch, hidden));
    for ((mut y_b, mut h_b), &length) in y.outer_iter_mut().zip(h_n.outer_iter_mut()).zip(lengths) {
        h_b.assign(&y_b.row(length - 1));
        y_b.slice_mut(s![length.., ..]).fill(F::zero());
    }
    SequenceOutput { y, h_n, c_n: None }
}

/// A weight matrix multiplied at every time step, packed once per pass.
pub(super) struct StepProduct<F: Scalar> {
    kernel: MicroKernel<F>,
    packed: PackedB<F>,
}

impl<F: Scalar> StepProduct<F> {
    /// Packs `b` (`[k, n]`) as the right operand.
    pub(super) fn new(b: ArrayView2<'_, F>) -> Self {
        let kernel = MicroKernel::select(Isa::current());
        let packed = PackedB::pack(MatRef::from_view(b), kernel.nr, KC);
        StepProduct { kernel, packed }
    }

    /// `c = (accumulate ? c : 0) + a·b` on the calling thread; `a`: `[m, k]` with
    /// contiguous rows, `c`: `[m, n]` with contiguous rows.
    pub(super) fn multiply(
        &self,
        a: ArrayView2<'_, F>,
        mut c: ArrayViewMut2<'_, F>,
        accumulate: bool,
    ) {
        assert!(
            c.ncols() == self.packed.n() && (c.ncols() < 2 || c.strides()[1] == 1),
            "C rows are contiguous"
        );
        let rs_c = c.strides()[0];
        // SAFETY: `c` is borrowed exclusively; its pointer is element (0, 0), row stride rs_c,
        // and it spans the m rows × all n columns written.
        unsafe {
            gemm_prepacked(
                &self.kernel,
                MatRef::from_view(a),
                &self.packed,
                0..self.packed.n(),
                c.as_mut_ptr(),
                rs_c,
                accumulate,
            );
        }
    }
}

impl<F: Scalar> StepProduct<F> {
    /// `C[.., cols] = a·b[.., cols]` (no accumulation), for one chunk of a lock step.
    ///
    /// # Safety
    /// `c` points at (0, `cols.start`) of a matrix with row stride `rs_c` whose rows of
    /// `a` × `cols` nobody else touches during the call; `cols` starts on a multiple of
    /// [`crate::kernels::lockstep::CHUNK_ALIGN`] (whole panels of `b`).
    unsafe fn multiply_columns(
        &self,
        a: MatRef<'_, F>,
        cols: Range<usize>,
        c: *mut F,
        rs_c: isize,
        accumulate: bool,
    ) {
        // SAFETY: per the caller.
        unsafe { gemm_prepacked(&self.kernel, a, &self.packed, cols, c, rs_c, accumulate) }
    }
}

/// h(t − 1) for every step: `[batch, time, hidden]` (h(0) at t = 0), the
/// partner of δa(t) in δW_hh = Σ_t δa(t)ᵀ h(t − 1). `states`: h(t), `[batch, time, hidden]`.
pub(super) fn previous_states<F: Scalar>(h0: &Array2<F>, states: &Array3<F>) -> Array3<F> {
    let time = states.dim().1;
    let mut previous = Array3::zeros(states.raw_dim());
    previous.index_axis_mut(Axis(1), 0).assign(h0);
    previous
        .slice_mut(s![.., 1.., ..])
        .assign(&states.slice(s![.., ..time - 1, ..]));
    previous
}

/// `[batch, time, f]` in standard layout as `[batch·time, f]`.
pub(super) fn flatten_time<F>(a: ArrayView3<'_, F>) -> ArrayView2<'_, F> {
    let (batch, time, features) = a.dim();
    a.into_shape_with_order((batch * time, features))
        .expect("layer-owned arrays are in standard layout")
}

pub(super) fn flatten_time_mut<F>(a: &mut Array3<F>) -> ndarray::ArrayViewMut2<'_, F> {
    let (batch, time, features) = a.dim();
    a.view_mut()
        .into_shape_with_order((batch * time, features))
        .expect("layer-owned arrays are in standard layout")
}

pub(super) fn check_shape(name: &str, actual: &[usize], expected: &[usize]) -> Result<()> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::shape(name, format!("{expected:?}"), actual))
    }
}
