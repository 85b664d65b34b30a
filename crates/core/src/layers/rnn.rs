//! The simple (Elman) RNN of SPEC §2: h(t) = g(W_ih x(t) + b_ih + W_hh h(t−1) + b_hh),
//! with exact backpropagation through time.
//!
//! Cost layout: the input projection of every step is one GEMM before the
//! recurrence, and δW_ih, δx are single GEMMs after it; inside the time loop
//! only the `[batch, hidden] × [hidden, hidden]` products remain, written into
//! buffers allocated once per pass.

use std::ops::Range;

use ndarray::{
    s, Array1, Array2, Array3, ArrayView1, ArrayView2, ArrayView3, ArrayViewD, ArrayViewMut1,
    ArrayViewMut2, ArrayViewMutD, Axis, Zip,
};
use rand::distributions::Uniform;
use rand::Rng;

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
use crate::kernels::lanes::Lanes;
use crate::kernels::lockstep::{run_lockstep, step_chunks, SharedRows};
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

/// Everything the forward pass stores for the backward pass.
#[derive(Debug, Clone)]
pub struct RnnCache<F> {
    /// The input, `[batch, time, input_size]` in standard layout (the backward GEMMs flatten it).
    x: Array3<F>,
    /// h(0): `[batch, hidden_size]`
    h0: Array2<F>,
    /// h(t) after every step: `[batch, time, hidden_size]`; the frozen state at padded steps.
    states: Array3<F>,
    /// `[batch]`, each in `1..=time`.
    lengths: Vec<usize>,
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
        batch.validate(self.config.input_size, self.config.hidden_size)?;
        let (batch_size, _, _) = batch.dims();
        let x = batch.x.as_standard_layout().into_owned();
        let h0 = batch.h0.map_or_else(
            || Array2::zeros((batch_size, self.config.hidden_size)),
            // The recurrence reads h(t − 1) as rows: a column-major h0 must be copied row-major.
            |h| h.as_standard_layout().into_owned(),
        );
        let lengths: Vec<usize> = (0..batch_size).map(|b| batch.length(b)).collect();

        let mut states = self.input_projection(&x);
        self.run_recurrence(&mut states, h0.view(), &lengths);
        let output = sequence_output(&states, &lengths);
        Ok((
            output,
            RnnCache {
                x,
                h0,
                states,
                lengths,
            },
        ))
    }

    /// `dy`: ∂J/∂h(t) `[batch, time, hidden]`; `dh_n`: ∂J/∂h(T_b) `[batch, hidden]`.
    pub fn backward(
        &self,
        cache: &RnnCache<F>,
        dy: ArrayView3<'_, F>,
        dh_n: Option<ArrayView2<'_, F>>,
        options: &BackwardOptions<F>,
    ) -> Result<RnnGrads<F>> {
        self.check_layer()?;
        self.check_cache(cache)?;
        let (batch, time, hidden) = cache.states.dim();
        check_shape("dy", dy.shape(), &[batch, time, hidden])?;
        if let Some(d) = dh_n {
            check_shape("dhN", d.shape(), &[batch, hidden])?;
        }
        let clip = validated_clip(options.recurrent_clip)?;

        // ∂J/∂h(t) arriving from step t+1 (and from dh_n): padded steps leave
        // the state unchanged, so dh_n reaches each sequence's last valid step
        // untouched.
        let mut carry = dh_n.map_or_else(|| Array2::zeros((batch, hidden)), |d| d.to_owned());
        let mut next_carry = Array2::<F>::zeros((batch, hidden));
        // δa(t) = ∂J/∂a(t); stays zero at padded steps.
        let mut delta_a = Array3::zeros((batch, time, hidden));
        let recurrent_weight = StepProduct::new(self.params.weight_hh.view());
        let chunks = step_chunks(hidden, 2 * batch * hidden * hidden);
        // Σ δh² of every step and chunk, summed per step once all chunks are done.
        let mut squares = Array2::<F>::zeros((time, chunks.len()));
        let lengths = &cache.lengths;
        let standard = "owned, standard layout";
        let carry_rows = SharedRows::new(carry.as_slice_mut().expect(standard), hidden);
        let next_rows = SharedRows::new(next_carry.as_slice_mut().expect(standard), hidden);
        let delta_rows = SharedRows::new(delta_a.as_slice_mut().expect(standard), hidden);
        let square_rows = SharedRows::new(squares.as_slice_mut().expect(standard), chunks.len());
        // Lock step k: first the carry into step time − k (δa(time − k)·W_hh, needing every
        // chunk's δa of lock step k − 1), then δa of step time − 1 − k from it.
        let step = |lock: usize, chunk: usize| {
            let units = chunks[chunk].clone();
            // SAFETY: during lock step k this chunk writes only its own units of the carry
            // rows, of δa(time − 1 − k) and its own square; it reads δa(time − k), complete
            // since lock step k − 1.
            unsafe {
                if lock > 0 {
                    let later = time - lock;
                    recurrent_weight.multiply_columns(
                        delta_rows.strided_rows_ref(later, batch, time),
                        units.clone(),
                        next_rows.ptr_at(0, units.start),
                        hidden as isize,
                        false,
                    );
                    for (b, _) in lengths.iter().enumerate().filter(|(_, &l)| later < l) {
                        carry_rows
                            .row_mut(b, units.clone())
                            .copy_from_slice(next_rows.row(b, units.clone()));
                    }
                }
                if lock == time {
                    return;
                }
                let t = time - 1 - lock;
                let mut sum_sq = F::zero();
                for (b, _) in lengths.iter().enumerate().filter(|(_, &l)| t < l) {
                    sum_sq = sum_sq
                        + self.hidden_delta(
                            dy.slice(s![b, t, units.clone()]),
                            ArrayView1::from(carry_rows.row(b, units.clone())),
                            cache.states.slice(s![b, t, units.clone()]),
                            clip,
                            ArrayViewMut1::from(delta_rows.row_mut(b * time + t, units.clone())),
                        );
                }
                square_rows.row_mut(t, chunk..chunk + 1)[0] = sum_sq;
            }
        };
        run_lockstep(time + 1, chunks.len(), &step);
        let norms = squares.map_axis(Axis(1), |row| {
            row.iter()
                .fold(F::zero(), |sum, &square| sum + square)
                .sqrt()
        });

        Ok(self.gradients_after_recurrence(cache, delta_a, carry, norms))
    }

    /// The public fields may have been replaced since construction.
    fn check_layer(&self) -> Result<()> {
        self.config.validate()?;
        self.params.check_shapes(&self.config)
    }

    /// A cache of a layer with other sizes cannot be replayed through this one.
    fn check_cache(&self, cache: &RnnCache<F>) -> Result<()> {
        let (batch, time, _) = cache.x.dim();
        check_shape(
            "cache.x",
            cache.x.shape(),
            &[batch, time, self.config.input_size],
        )?;
        check_shape(
            "cache.states",
            cache.states.shape(),
            &[batch, time, self.config.hidden_size],
        )
    }

    /// W_ih x(t) + b_ih + b_hh for every step as one GEMM: `[batch, time, hidden]`.
    fn input_projection(&self, x: &Array3<F>) -> Array3<F> {
        let (batch, time, _) = x.dim();
        let hidden = self.config.hidden_size;
        let bias = (&self.params.bias_ih + &self.params.bias_hh).to_vec();
        let mut projection = Array3::zeros((batch, time, hidden));
        let (input, weight) = (flatten_time(x.view()), self.params.weight_ih.t());
        gemm(
            input,
            weight,
            flatten_time_mut(&mut projection),
            false,
            Some(&bias),
        );
        projection
    }

    /// Turns `states` from input projections into h(t), step by step, in place.
    /// Padded steps copy the previous state, so it stays frozen. A step is split
    /// over threads by ranges of hidden units (lock step, as the LSTM's): each
    /// thread multiplies h(t − 1) by its columns of W_hhᵀ, kept in its core's
    /// cache from step to step, and activates its own units.
    fn run_recurrence(&self, states: &mut Array3<F>, h0: ArrayView2<'_, F>, lengths: &[usize]) {
        let (activation, isa) = (self.config.activation, Isa::current());
        let (batch, time, hidden) = states.dim();
        let recurrent_weight_t = StepProduct::new(self.params.weight_hh.t());
        let chunks = step_chunks(hidden, 2 * batch * hidden * hidden);
        let h0 = MatRef::from_view(h0);
        let states = SharedRows::new(states.as_slice_mut().expect("a fresh projection"), hidden);
        let step = |t: usize, chunk: usize| {
            let units = chunks[chunk].clone();
            // SAFETY: during step t this chunk writes only its own units of the rows of
            // step t; it reads the rows of step t − 1, complete before step t started.
            unsafe {
                let previous = if t == 0 {
                    h0
                } else {
                    states.strided_rows_ref(t - 1, batch, time)
                };
                recurrent_weight_t.multiply_columns(
                    previous,
                    units.clone(),
                    states.ptr_at(t, units.start),
                    (time * hidden) as isize,
                    true,
                );
                for (b, &length) in lengths.iter().enumerate() {
                    let row = states.row_mut(b * time + t, units.clone());
                    if t < length {
                        activation.apply_in_place(isa, row);
                    } else {
                        row.copy_from_slice(states.row(b * time + t - 1, units.clone()));
                    }
                }
            }
        };
        run_lockstep(time, chunks.len(), &step);
    }

    /// δa(t) = clip(Δ(t) + carry) ⊙ g'(a(t)) for one sequence at one step;
    /// returns ‖δh(t)‖² of the (clipped) total error.
    fn hidden_delta(
        &self,
        dy: ArrayView1<'_, F>,
        carry: ArrayView1<'_, F>,
        h: ArrayView1<'_, F>,
        clip: Option<F>,
        delta_a: ArrayViewMut1<'_, F>,
    ) -> F {
        let activation = self.config.activation;
        let mut sum_sq = F::zero();
        Zip::from(delta_a)
            .and(dy)
            .and(carry)
            .and(h)
            .for_each(|delta_a, &dy, &carry, &h| {
                let delta_h = clamp(dy + carry, clip);
                sum_sq = sum_sq + delta_h * delta_h;
                *delta_a = delta_h * activation.derivative_from_output(h);
            });
        sum_sq
    }

    /// δx, δW_ih, δW_hh and the biases as single GEMMs / reductions over all steps.
    fn gradients_after_recurrence(
        &self,
        cache: &RnnCache<F>,
        delta_a: Array3<F>,
        dh0: Array2<F>,
        step_grad_norms: Array1<F>,
    ) -> RnnGrads<F> {
        let (batch, time, input) = cache.x.dim();
        let hidden = self.config.hidden_size;
        let delta_a_flat = flatten_time(delta_a.view());
        let mut dx = Array3::zeros((batch, time, input));
        gemm(
            delta_a_flat,
            self.params.weight_ih.view(),
            flatten_time_mut(&mut dx),
            false,
            None,
        );
        let mut grad_weight_ih = Array2::zeros((hidden, input));
        gemm(
            delta_a_flat.t(),
            flatten_time(cache.x.view()),
            grad_weight_ih.view_mut(),
            false,
            None,
        );
        let mut grad_weight_hh = Array2::zeros((hidden, hidden));
        let previous = previous_states(&cache.h0, &cache.states);
        gemm(
            delta_a_flat.t(),
            flatten_time(previous.view()),
            grad_weight_hh.view_mut(),
            false,
            None,
        );
        let grad_bias = delta_a_flat.sum_axis(Axis(0));
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
pub(super) struct StepProduct<F> {
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

pub(super) fn validated_clip<F: Scalar>(clip: Option<F>) -> Result<Option<F>> {
    match clip {
        Some(v) if !(v.is_finite() && v > F::zero()) => Err(Error::invalid(
            "recurrentClip",
            format!("must be a finite number > 0, got {v}"),
        )),
        _ => Ok(clip),
    }
}

fn clamp<F: Scalar>(value: F, clip: Option<F>) -> F {
    clip.map_or(value, |v| value.max(-v).min(v))
}
