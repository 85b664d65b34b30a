//! The sequential part of the LSTM passes (SPEC §1): at every time step the
//! recurrent product and the cell update, forward or backward.
//!
//! A step is split over threads by ranges of hidden units ("chunks"): thanks
//! to the interleaved gate order (see the `layout` module) a chunk's units own
//! a contiguous range of gate columns, so each thread multiplies the state by
//! its slice of the recurrent weights (kept in its core's cache from step to
//! step) and finishes its own cells; one barrier per step (the lock-step
//! scheduler) publishes the new state. Inference, whose sequences need nothing
//! from each other, may instead give each thread its own sequences for every step
//! (see `inference_split`). Weights are interleaved and packed
//! once per pass, products read the state in place and write into the pass's
//! time-major buffers: nothing is allocated per step.

use std::ops::Range;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::cell::{
    backward_row, forward_row, BackwardCells, ForwardCells, GateRules, RECURRENT_GATES,
};
use super::layout::{gate_columns, unit_blocks, GateLayout, GATE_LANES};
use super::time_major::TimeMajor;
use super::{Lstm, LstmCache};
use crate::kernels::dot::gemm_nt;
use crate::kernels::gemm::{gemm_prepacked, KC};
use crate::kernels::lockstep::{
    run_lockstep, sequence_parts, step_chunks, SharedRows, CHUNK_ALIGN,
};
use crate::kernels::microkernels::{MicroKernel, MAX_NR};
use crate::kernels::pack::{MatRef, PackedB};
use crate::kernels::Isa;
use crate::Scalar;

// Chunk boundaries (multiples of CHUNK_ALIGN units) are also whole gate blocks.
const _: () = assert!(CHUNK_ALIGN.is_multiple_of(GATE_LANES) && CHUNK_ALIGN.is_multiple_of(MAX_NR));

/// The hidden units of each chunk of a step (one chunk when the layout's blocks are wider than a chunk).
fn unit_chunks(layout: &GateLayout, hidden: usize, batch: usize) -> Vec<Range<usize>> {
    // A block wider than a chunk (PyTorch's order) cannot be split: a step of zero flops is one chunk.
    let splittable = layout.block() <= CHUNK_ALIGN;
    step_chunks(
        hidden,
        usize::from(splittable) * 2 * batch * 4 * hidden * hidden,
    )
}

/// Elements a row of an inference step's buffers is padded by. Rows a multiple of 4 KiB
/// apart fall into one set of the L1 cache (12 lines a set on this project's machine): the
/// micro-kernel's 8 rows of A (or of C) then evict each other and the B panel it reuses.
const ROW_PAD: usize = 16;

/// The pieces a forward step of `units` (one chunk) runs one after the other: the product's
/// gate columns of one block of units, then the cells of that block. The block's product
/// (`[batch, 4·16]`, 16 KiB at a batch of 64) is still in L1 when its cells read it; after
/// the whole chunk's product (128 KiB at S2) the cells read it back from L2 (11 % of an S2
/// inference pass in `perf`). The block's columns are whole B panels of every micro-kernel,
/// so each element's arithmetic is the same as in one product over the chunk.
fn fused_blocks(layout: &GateLayout, units: Range<usize>) -> impl Iterator<Item = Range<usize>> {
    unit_blocks(units, layout.block()).map(|block| block.start..block.start + block.width)
}

const _: () = assert!((4 * GATE_LANES).is_multiple_of(MAX_NR));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Backward,
}

/// A recurrent weight matrix as the per-step product uses it.
enum Product<'a, F> {
    /// Packed for the micro-kernels (the right operand `B`).
    Packed(PackedB<F>),
    /// PyTorch's `[4H, H]` in place, multiplied as `A·Wᵀ` by dot products (streaming steps).
    Rows(ArrayView2<'a, F>),
}

impl<F: Scalar> Product<'_, F> {
    /// `C[.., cols] (+)= A·B[.., cols]`.
    ///
    /// # Safety
    /// As [`gemm_prepacked`]: `c` points at (0, `cols.start`) of a matrix with row
    /// stride `rs_c` whose rows of A × `cols` nobody else touches during the call.
    #[allow(clippy::too_many_arguments)]
    unsafe fn multiply(
        &self,
        kernel: &MicroKernel<F>,
        isa: Isa,
        a: MatRef<'_, F>,
        cols: Range<usize>,
        c: *mut F,
        rs_c: isize,
        accumulate: bool,
    ) {
        // SAFETY: per the caller.
        unsafe {
            match self {
                Product::Packed(b) => gemm_prepacked(kernel, a, b, cols, c, rs_c, accumulate),
                Product::Rows(w) => gemm_nt(
                    isa,
                    a,
                    MatRef::from_view(w.view()),
                    cols,
                    c,
                    rs_c,
                    accumulate,
                ),
            }
        }
    }
}

/// A weight `[4H, k]` in PyTorch's order as the right operand of the forward products
/// `A·Wᵀ` of a pass: packed in the pass's gate order, or where it is for PyTorch's order
/// (a streaming step, for which packing would cost more than the product).
fn forward_operand<'a, F: Scalar>(
    weight: ArrayView2<'a, F>,
    layout: &GateLayout,
    kernel: &MicroKernel<F>,
) -> Product<'a, F> {
    if layout.is_pytorch() {
        Product::Rows(weight)
    } else {
        let interleaved = layout.interleave_rows(weight);
        Product::Packed(PackedB::pack(
            MatRef::from_view(interleaved.t()),
            kernel.nr,
            KC,
        ))
    }
}

/// The recurrent weights of one pass in the pass's gate order, ready for the per-step products.
struct RecurrentWeights<'a, F> {
    /// Forward: Rᵀ `[H, 4H]`; backward: R `[4H, H]`.
    hidden: Product<'a, F>,
    /// FGR: `weight_gg` as one `[4H, 4H]` matrix over the interleaved gates
    /// (see [`full_gate_matrix`]), transposed for the forward pass.
    gates: Option<PackedB<F>>,
}

impl<'a, F: Scalar> RecurrentWeights<'a, F> {
    fn new(
        lstm: &'a Lstm<F>,
        layout: &GateLayout,
        kernel: &MicroKernel<F>,
        direction: Direction,
    ) -> Self {
        let pack = |matrix: ArrayView2<'_, F>| {
            let operand = if direction == Direction::Forward {
                matrix.reversed_axes()
            } else {
                matrix
            };
            PackedB::pack(MatRef::from_view(operand), kernel.nr, KC)
        };
        let params = &lstm.params;
        let full_gates = (!params.weight_gg.is_empty())
            .then(|| full_gate_matrix(params.weight_gg.view(), layout));
        let hidden = match direction {
            Direction::Forward => forward_operand(params.weight_hh.view(), layout, kernel),
            Direction::Backward => {
                Product::Packed(pack(layout.interleave_rows(params.weight_hh.view()).view()))
            }
        };
        RecurrentWeights {
            hidden,
            gates: full_gates.map(|matrix| pack(matrix.view())),
        }
    }
}

/// FGR's `weight_gg` (`[3H, 3H]`, blocks ī, f̄, ō × i, f, o) as `[4H, 4H]`: row =
/// interleaved pre-activation column, column = interleaved activation column of
/// t−1; the z rows and columns stay zero.
fn full_gate_matrix<F: Scalar>(weight_gg: ArrayView2<'_, F>, layout: &GateLayout) -> Array2<F> {
    let hidden = weight_gg.nrows() / 3;
    let mut full = Array2::zeros((4 * hidden, 4 * hidden));
    for (r, target) in RECURRENT_GATES.into_iter().enumerate() {
        for (k, source) in RECURRENT_GATES.into_iter().enumerate() {
            for j in 0..hidden {
                for u in 0..hidden {
                    let value = weight_gg[[r * hidden + j, k * hidden + u]];
                    full[[layout.column(target, j), layout.column(source, u)]] = value;
                }
            }
        }
    }
    full
}

/// The inverse of [`full_gate_matrix`]: the `[3H, 3H]` blocks of a `[4H, 4H]` gradient.
pub(super) fn gate_blocks_of<F: Scalar>(
    full: ArrayView2<'_, F>,
    layout: &GateLayout,
    hidden: usize,
) -> Array2<F> {
    let mut blocks = Array2::zeros((3 * hidden, 3 * hidden));
    for (r, target) in RECURRENT_GATES.into_iter().enumerate() {
        for (k, source) in RECURRENT_GATES.into_iter().enumerate() {
            for j in 0..hidden {
                for u in 0..hidden {
                    blocks[[r * hidden + j, k * hidden + u]] =
                        full[[layout.column(target, j), layout.column(source, u)]];
                }
            }
        }
    }
    blocks
}

/// Runs the forward recurrence. In: `cache.gates` holds every step's input
/// projection (interleaved, with biases), h and c step 0 the initial state.
/// Out: `cache.gates` holds the activations, h and c every step.
pub(super) fn forward<F: Scalar>(lstm: &Lstm<F>, layout: &GateLayout, cache: &mut LstmCache<F>) {
    let isa = Isa::current();
    let (batch, time) = cache.dims();
    let hidden = lstm.config.hidden_size;
    let kernel = MicroKernel::<F>::select(isa);
    let weights = RecurrentWeights::new(lstm, layout, &kernel, Direction::Forward);
    let rules = GateRules::new(&lstm.config);
    let peepholes = lstm.peepholes();
    let chunks = unit_chunks(layout, hidden, batch);
    let lengths = &cache.lengths;
    let gates = SharedRows::new(cache.gates.as_mut_slice(), 4 * hidden);
    let h = SharedRows::new(cache.h.as_mut_slice(), hidden);
    let c = SharedRows::new(cache.c.as_mut_slice(), hidden);
    let step = |t: usize, chunk: usize| {
        // Block by block of units (see `fused_blocks`).
        for units in fused_blocks(layout, chunks[chunk].clone()) {
            let cols = gate_columns(&units);
            let rows = t * batch..(t + 1) * batch;
            // SAFETY: during step t this chunk writes only its own columns of the gate
            // rows of step t and its own units of h and c (step t + 1); it reads h
            // (step t) and the gates of step t − 1, both complete before step t
            // started (lock step), and its own units of c (step t).
            unsafe {
                let pre = gates.ptr_at(rows.start, cols.start);
                let rs = gates.width() as isize;
                weights.hidden.multiply(
                    &kernel,
                    isa,
                    h.rows_ref(rows.clone()),
                    cols.clone(),
                    pre,
                    rs,
                    true,
                );
                if let (Some(gate_weights), true) = (&weights.gates, t > 0) {
                    let previous = gates.rows_ref(rows.start - batch..rows.start);
                    gemm_prepacked(&kernel, previous, gate_weights, cols.clone(), pre, rs, true);
                }
                for (row, &length) in rows.zip(lengths) {
                    let gate_row = gates.row_mut(row, cols.clone());
                    if t >= length {
                        gate_row.fill(F::zero());
                        continue;
                    }
                    let cells = ForwardCells {
                        gates: gate_row,
                        c_prev: c.row(row, units.clone()),
                        c: c.row_mut(row + batch, units.clone()),
                        keep_activations: true,
                        y: h.row_mut(row + batch, units.clone()),
                        peepholes: peepholes.as_ref().map(|p| p.of(units.clone())),
                    };
                    forward_row(isa, &rules, layout.block(), cells);
                }
            }
        }
    };
    run_lockstep(time, chunks.len(), &step);
}

/// Where an inference pass reads and writes: `[batch, time, ·]` batch-major, row
/// `b * time + t` of `x` and `y` is step t of sequence b.
pub(super) struct InferenceBuffers<'a, F> {
    /// Each sequence's length, in `1..=time`.
    pub lengths: &'a [usize],
    /// x(t): `[batch * time, X]`.
    pub x: &'a [F],
    /// y(0): `[batch, H]`; zeros when `None`.
    pub h0: Option<&'a [F]>,
    /// Out: y(t) `[batch * time, H]`; must come in zeroed (padded steps stay zero).
    pub y: &'a mut [F],
    /// Two halves `[batch, H]` each, c(t) in half `t % 2`. In: c(0) in the first half.
    /// Out: c(T_b) of every sequence in half `time % 2` (a finished sequence's
    /// c is carried over from half to half).
    pub c: &'a mut [F],
}

/// The forward recurrence for inference: the same products and cell arithmetic as
/// [`forward`] (so the same y, bit for bit), with nothing kept for a backward pass.
/// Not for FGR, whose gates read the previous step's activations.
///
/// The input projection W x(t) is not one GEMM over all steps here but part of each
/// step, block by block of units: the block's pre-activations start as the biases, W x(t)
/// and then R y(t−1) are accumulated onto them (the additions of [`Lstm::forward`], in its
/// order), and its cells complete them at once. They never leave L1, where one GEMM over
/// all steps wrote `[batch * time, 4H]` (26 MB at S2) to memory, to be read back by the
/// recurrence: that traffic, not the flops, made the projection a third of a pass.
///
/// The step's operands are rows [`ROW_PAD`] elements longer than their data: y(t − 1) is
/// read from a copy of that shape rather than from the output, whose rows are `time * H`
/// floats apart (a multiple of 4 KiB at S2), like the pre-activation rows at H = 256.
pub(super) fn infer<F: Scalar>(
    lstm: &Lstm<F>,
    layout: &GateLayout,
    buffers: InferenceBuffers<'_, F>,
) {
    let isa = Isa::current();
    let hidden = lstm.config.hidden_size;
    let features = lstm.config.input_size;
    let batch = buffers.lengths.len();
    let time = buffers.y.len() / (batch * hidden);
    assert!(
        buffers.x.len() == batch * time * features,
        "inference buffers fit the layer"
    );
    let kernel = MicroKernel::<F>::select(isa);
    let weights = RecurrentWeights::new(lstm, layout, &kernel, Direction::Forward);
    assert!(weights.gates.is_none(), "FGR needs the cached pass");
    let input = forward_operand(lstm.params.weight_ih.view(), layout, &kernel);
    let bias = layout.interleave((&lstm.params.bias_ih + &lstm.params.bias_hh).view());
    let rules = GateRules::new(&lstm.config);
    let peepholes = lstm.peepholes();
    let lengths = buffers.lengths;
    let zeros;
    let h0 = match buffers.h0 {
        Some(h0) => h0,
        None => {
            zeros = vec![F::zero(); batch * hidden];
            &zeros
        }
    };
    // SAFETY of the operand: nobody writes h0.
    let h0 = unsafe { MatRef::from_raw_parts(h0.as_ptr(), batch, hidden, hidden as isize, 1) };
    let x = buffers.x;
    // One step's pre-activations in the pass's gate order: `[batch, 4H]` (padded rows).
    let mut pre_rows = vec![F::zero(); batch * (4 * hidden + ROW_PAD)];
    let pre = SharedRows::new(&mut pre_rows, 4 * hidden + ROW_PAD);
    // y(t) in half `t % 2`, `[batch, H]` each (padded rows), for the next step's product.
    let mut state_rows = vec![F::zero(); 2 * batch * (hidden + ROW_PAD)];
    let state = SharedRows::new(&mut state_rows, hidden + ROW_PAD);
    let y = SharedRows::new(buffers.y, hidden);
    let c = SharedRows::new(buffers.c, hidden);
    // Step t of the sequences `seqs` over the hidden units `units` (whole gate blocks).
    let step = |t: usize, seqs: Range<usize>, units: Range<usize>| {
        // SAFETY of the operand: x(t) of the sequences `seqs`, rows `t + b·time` of `x`
        // (asserted to hold `[batch * time, X]`), which nobody writes.
        let x_t = unsafe {
            MatRef::from_raw_parts(
                x.as_ptr().add((seqs.start * time + t) * features),
                seqs.len(),
                features,
                (time * features) as isize,
                1,
            )
        };
        // Block by block of units (see `fused_blocks`).
        for units in fused_blocks(layout, units) {
            let cols = gate_columns(&units);
            let (now, next) = (t % 2 * batch, (t + 1) % 2 * batch);
            // SAFETY: during step t this call writes only its own sequences' rows × its own
            // columns of `pre`, and their rows × its own units of y (step t), of c's half
            // `next` and of `state`'s half `now`; it reads `state`'s half `next` (y of step
            // t − 1) of its sequences, complete before step t started (by this thread, or by
            // every chunk of the lock step), and c's half `now` of its sequences and units.
            unsafe {
                for b in seqs.clone() {
                    pre.row_mut(b, cols.clone())
                        .copy_from_slice(&bias[cols.clone()]);
                }
                let previous = if t == 0 {
                    h0.block(seqs.clone(), 0..hidden)
                } else {
                    state
                        .rows_ref(next + seqs.start..next + seqs.end)
                        .block(0..seqs.len(), 0..hidden)
                };
                let (out, rs) = (pre.ptr_at(seqs.start, cols.start), pre.width() as isize);
                input.multiply(&kernel, isa, x_t, cols.clone(), out, rs, true);
                weights
                    .hidden
                    .multiply(&kernel, isa, previous, cols.clone(), out, rs, true);
                for b in seqs.clone() {
                    let c_prev = c.row(now + b, units.clone());
                    let c_next = c.row_mut(next + b, units.clone());
                    if t >= lengths[b] {
                        c_next.copy_from_slice(c_prev);
                        continue;
                    }
                    let y_now = state.row_mut(now + b, units.clone());
                    let cells = ForwardCells {
                        gates: pre.row_mut(b, cols.clone()),
                        c_prev,
                        c: c_next,
                        keep_activations: false,
                        y: &mut *y_now,
                        peepholes: peepholes.as_ref().map(|p| p.of(units.clone())),
                    };
                    forward_row(isa, &rules, layout.block(), cells);
                    y.row_mut(b * time + t, units.clone())
                        .copy_from_slice(y_now);
                }
            }
        }
    };
    match inference_split::<F>(layout, &lstm.config, batch) {
        Split::Sequences(parts) => parts.into_par_iter().for_each(|sequences| {
            for t in 0..time {
                step(t, sequences.clone(), 0..hidden);
            }
        }),
        Split::Units(chunks) => run_lockstep(time, chunks.len(), &|t, chunk| {
            step(t, 0..batch, chunks[chunk].clone())
        }),
    }
}

/// How an inference pass shares its work among threads.
enum Split {
    /// Each thread runs its own sequences through every step: no synchronisation per step.
    Sequences(Vec<Range<usize>>),
    /// Every step is split by hidden units, in lock step.
    Units(Vec<Range<usize>>),
}

/// Bytes of weights (W and R) each thread may read at every step when it runs every unit of
/// its own sequences: on the AVX-512 machine of sessions 5–9 (2 MiB of L2 per core) S2's
/// 1.5 MiB stayed in L2 from step to step, and at S3 (8 MiB, streamed from L3 at every step)
/// the split by sequences measured no less CPU time than the lock step, which streams half of
/// them per thread (BENCHMARKS.md "Inference kernels, session 8"). On a Zen 3 (512 KiB of L2,
/// so S2's weights come from L3 either way) the two splits measured the same at S2
/// (BENCHMARKS.md "Session 10"), so the bound is not read from the cache size.
const SEQUENCE_SPLIT_WEIGHT_BYTES: usize = 1536 * 1024;

/// Sequences are independent in inference, so the threads can split the batch instead of the
/// units: a thread then multiplies all the weights (which must fit its L2 cache) against its
/// own rows, and never waits for the other's step. The parts are `sequence_parts`' (as the
/// simple RNN's); an element's arithmetic is the same in either split (a row's
/// products do not depend on the other rows).
fn inference_split<F: Scalar>(
    layout: &GateLayout,
    config: &super::LstmConfig,
    batch: usize,
) -> Split {
    let (features, hidden) = (config.input_size, config.hidden_size);
    let weight_bytes = 4 * hidden * (features + hidden) * std::mem::size_of::<F>();
    let step_flops = 2 * batch * 4 * hidden * (features + hidden);
    let parts = (!layout.is_pytorch() && weight_bytes <= SEQUENCE_SPLIT_WEIGHT_BYTES)
        .then(|| sequence_parts(batch, step_flops))
        .flatten();
    match parts {
        Some(parts) => Split::Sequences(parts),
        None => Split::Units(unit_chunks(layout, hidden, batch)),
    }
}

/// ∂J/∂(outputs) handed to the backward pass, standard layout.
#[derive(Clone, Copy)]
pub(super) struct OutputGrads<'a, F> {
    /// ∂J/∂y(t): `[batch, time, H]`.
    pub dy: &'a [F],
    /// ∂J/∂h_n, ∂J/∂c_n: `[batch, H]`.
    pub dh_n: Option<&'a [F]>,
    pub dc_n: Option<&'a [F]>,
    pub time: usize,
    pub hidden: usize,
}

impl<F: Scalar> OutputGrads<'_, F> {
    /// Adds Δ(t) of sequence `b` to its δy over `units`, and ∂J/∂h_n, ∂J/∂c_n
    /// (to δy and the cell carry) when `t` is its last step.
    fn add_to(
        &self,
        (b, t, length): (usize, usize, usize),
        units: Range<usize>,
        dy: &mut [F],
        dc_carry: &mut [F],
    ) {
        let hidden = self.hidden;
        add_assign(dy, &self.dy[(b * self.time + t) * hidden..][units.clone()]);
        if t + 1 == length {
            if let Some(dh_n) = self.dh_n {
                add_assign(dy, &dh_n[b * hidden..][units.clone()]);
            }
            if let Some(dc_n) = self.dc_n {
                add_assign(dc_carry, &dc_n[b * hidden..][units]);
            }
        }
    }
}

fn add_assign<F: Scalar>(target: &mut [F], source: &[F]) {
    for (x, &d) in target.iter_mut().zip(source) {
        *x = *x + d;
    }
}

/// What the backward recurrence produces.
pub(super) struct RecurrenceGrads<F> {
    /// δī, δf̄, δz̄, δō of every step (interleaved): `[time * batch, 4H]`; zero at padded steps
    /// (the buffer of the gate activations it was given, which are zero there too).
    pub d_pre: TimeMajor<F>,
    /// δy(0), δc(0): `[batch, H]`.
    pub dh0: Array2<F>,
    pub dc0: Array2<F>,
    /// Σ over steps and sequences of the δ pre-activations (interleaved): `[4H]`.
    pub bias: Vec<F>,
    /// Rows p_i, p_f, p_o of the peephole gradients: `[3, H]` (`[0, H]` without peepholes).
    pub peepholes: Array2<F>,
    /// Σ over the batch of δc(t)², per step and chunk: `[time, chunks]`.
    pub squared_cell_grads: Array2<F>,
}

/// Runs the backward recurrence over the steps of `cache` (see `Lstm::backward` for `clip`).
/// `gates`: the gate activations of `cache` (the cache's own buffer, or a copy when the
/// cache must outlive the pass), overwritten step by step with the δ pre-activations that
/// come back as [`RecurrenceGrads::d_pre`]; `cache.gates` itself is not read.
pub(super) fn backward<F: Scalar>(
    lstm: &Lstm<F>,
    layout: &GateLayout,
    cache: &LstmCache<F>,
    mut gates: TimeMajor<F>,
    outputs: OutputGrads<'_, F>,
    clip: Option<F>,
) -> RecurrenceGrads<F> {
    let isa = Isa::current();
    let (batch, time) = cache.dims();
    let hidden = lstm.config.hidden_size;
    let kernel = MicroKernel::<F>::select(isa);
    let weights = RecurrentWeights::new(lstm, layout, &kernel, Direction::Backward);
    let rules = GateRules::new(&lstm.config);
    let peepholes = lstm.peepholes();
    let chunks = unit_chunks(layout, hidden, batch);
    let (mut dy_rows, mut dc_rows) = (
        Array2::zeros((batch, hidden)),
        Array2::zeros((batch, hidden)),
    );
    let mut bias_sums = vec![F::zero(); 4 * hidden];
    let peephole_rows = if peepholes.is_some() { 3 } else { 0 };
    let mut peephole_sums = vec![F::zero(); peephole_rows * hidden];
    let mut squared_norms = Array2::zeros((time, chunks.len()));
    let full_gates = weights.gates.is_some();
    let mut d_gate_rows = vec![F::zero(); if full_gates { batch * 4 * hidden } else { 0 }];

    let d_pre = SharedRows::new(gates.as_mut_slice(), 4 * hidden);
    let dy = SharedRows::new(dy_rows.as_slice_mut().expect("owned"), hidden);
    let dc_carry = SharedRows::new(dc_rows.as_slice_mut().expect("owned"), hidden);
    let d_gates = SharedRows::new(&mut d_gate_rows, 4 * hidden);
    let bias = SharedRows::new(&mut bias_sums, 4 * hidden);
    let peephole_grads = SharedRows::new(&mut peephole_sums, hidden);
    let norms = SharedRows::new(squared_norms.as_slice_mut().expect("owned"), chunks.len());
    let c = cache.c.as_slice();

    // Step s handles t = time − 1 − s; the extra last step (s = time) only
    // carries δ(0) back through R into δy(0) = dh0.
    let step = |s: usize, chunk: usize| {
        let units = chunks[chunk].clone();
        let cols = gate_columns(&units);
        let next = time - s;
        // SAFETY: during step s this chunk writes only its own units of dy and
        // dc_carry, its own gate columns of d_gates, of the d_pre rows of step t
        // (which held step t's activations until this chunk read them) and of the
        // bias sums, its own units of the peephole sums and its own norm slot; it
        // reads the d_pre rows of step t + 1, complete before step s started (lock
        // step), and the forward cache, which nobody writes.
        unsafe {
            if next < time {
                let later = d_pre.rows_ref(next * batch..(next + 1) * batch);
                let out = dy.ptr_at(0, units.start);
                weights.hidden.multiply(
                    &kernel,
                    isa,
                    later,
                    units.clone(),
                    out,
                    hidden as isize,
                    false,
                );
                if let Some(gate_weights) = &weights.gates {
                    let out = d_gates.ptr_at(0, cols.start);
                    gemm_prepacked(
                        &kernel,
                        later,
                        gate_weights,
                        cols.clone(),
                        out,
                        4 * hidden as isize,
                        false,
                    );
                }
            }
            let Some(t) = next.checked_sub(1) else {
                return;
            };
            let mut squared_norm = F::zero();
            for (b, &length) in cache
                .lengths
                .iter()
                .enumerate()
                .filter(|&(_, &length)| t < length)
            {
                let row = t * batch + b;
                let (dy_row, dc_row) = (
                    dy.row_mut(b, units.clone()),
                    dc_carry.row_mut(b, units.clone()),
                );
                outputs.add_to((b, t, length), units.clone(), dy_row, dc_row);
                let peephole_cells = match &peepholes {
                    Some(p) => Some((
                        p.of(units.clone()),
                        [
                            peephole_grads.row_mut(0, units.clone()),
                            peephole_grads.row_mut(1, units.clone()),
                            peephole_grads.row_mut(2, units.clone()),
                        ],
                    )),
                    None => None,
                };
                let cells = BackwardCells {
                    gates: d_pre.row_mut(row, cols.clone()),
                    c_prev: &c[row * hidden..][units.clone()],
                    c: &c[(row + batch) * hidden..][units.clone()],
                    dy: dy_row,
                    d_gates: if full_gates {
                        Some(d_gates.row(b, cols.clone()))
                    } else {
                        None
                    },
                    dc_carry: dc_row,
                    bias_grad: bias.row_mut(0, cols.clone()),
                    peepholes: peephole_cells,
                };
                squared_norm =
                    squared_norm + backward_row(isa, &rules, clip, layout.block(), cells);
            }
            norms.row_mut(t, chunk..chunk + 1)[0] = squared_norm;
        }
    };
    run_lockstep(time + 1, chunks.len(), &step);
    RecurrenceGrads {
        d_pre: gates,
        dh0: dy_rows,
        dc0: dc_rows,
        bias: bias_sums,
        peepholes: Array2::from_shape_vec((peephole_rows, hidden), peephole_sums)
            .expect("rows of H sums"),
        squared_cell_grads: squared_norms,
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{s, Array2, Array3};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::super::{LstmConfig, LstmVariant};
    use super::*;
    use crate::kernels::microkernels::MAX_MR;
    use crate::layers::{BackwardOptions, SequenceBatch};

    /// A streaming-sized pass (PyTorch order, weights in place) must agree with
    /// the same sequence inside a larger batch (interleaved, packed, threaded).
    fn small_and_large_passes_agree<F: Scalar>(tolerance: f64) {
        let (time, hidden) = (4, 40);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let config = LstmConfig::new(5, hidden).with_variant(LstmVariant::Cifg);
        let lstm = Lstm::<F>::new(config, F::one(), &mut rng).expect("valid");
        let mut random = |shape: (usize, usize, usize)| {
            Array3::from_shape_simple_fn(shape, || F::from_f64_lossy(rng.gen_range(-1.0..1.0)))
        };
        let (x, dy) = (random((1, time, 5)), random((1, time, hidden)));
        let run = |x: &Array3<F>, dy: &Array3<F>| {
            let (out, cache) = lstm.forward(&SequenceBatch::new(x.view())).expect("valid");
            let grads = lstm
                .backward(&cache, dy.view(), None, None, &BackwardOptions::default())
                .expect("valid");
            (
                cache.layout.is_pytorch(),
                out.y,
                grads.dx,
                grads.params.weight_hh,
            )
        };
        let thrice =
            |a: &Array3<F>| ndarray::concatenate![ndarray::Axis(0), a.view(), a.view(), a.view()];
        let (small_layout, y1, dx1, dw1) = run(&x, &dy);
        let (large_layout, y3, dx3, dw3) = run(&thrice(&x), &thrice(&dy));
        assert!(
            small_layout && !large_layout,
            "the two passes take different paths"
        );
        let close = |a: &Array2<F>, b: &Array2<F>| {
            a.iter()
                .zip(b)
                .all(|(&p, &q)| (p.to_f64_lossy() - q.to_f64_lossy()).abs() <= tolerance)
        };
        assert!(close(
            &y1.slice(s![0, .., ..]).to_owned(),
            &y3.slice(s![2, .., ..]).to_owned()
        ));
        assert!(close(
            &dx1.slice(s![0, .., ..]).to_owned(),
            &dx3.slice(s![1, .., ..]).to_owned()
        ));
        assert!(close(&dw1.mapv(|v| v * F::from_f64_lossy(3.0)), &dw3));
    }

    /// Inference splits a batch by sequences where each thread's part holds whole tiles and
    /// the weights fit a core's L2 cache (S2: B 64, X 128, H 256), else by units.
    #[test]
    fn inference_splits_the_batch_where_the_weights_fit_the_cache() {
        if rayon::current_num_threads() < 2 {
            return;
        }
        let split = |batch: usize, input: usize, hidden: usize| {
            let config = LstmConfig::new(input, hidden);
            inference_split::<f32>(&GateLayout::interleaved(hidden), &config, batch)
        };
        let threads = rayon::current_num_threads();
        match split(64, 128, 256) {
            Split::Sequences(parts) => {
                assert_eq!(parts.len(), threads);
                assert_eq!(parts.first().map(|p| p.start), Some(0));
                assert_eq!(parts.last().map(|p| p.end), Some(64));
                assert!(parts.iter().all(|p| p.start % MAX_MR == 0 && !p.is_empty()));
            }
            Split::Units(_) => panic!("S2 splits by sequences"),
        }
        assert!(
            matches!(split(64, 512, 512), Split::Units(_)),
            "8 MiB of weights"
        );
        assert!(
            matches!(split(MAX_MR, 128, 256), Split::Units(_)),
            "one tile of rows"
        );
    }

    #[test]
    fn streaming_and_batched_passes_agree_in_f32_and_f64() {
        small_and_large_passes_agree::<f32>(1e-4);
        small_and_large_passes_agree::<f64>(1e-12);
    }
}
