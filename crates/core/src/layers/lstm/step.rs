//! One streaming step of a few sequences (`[batch, X]`, batch ≤ [`STREAMING_ROWS`]),
//! on buffers that live from step to step: nothing is allocated per step.
//!
//! It is [`Lstm::infer`] on one time step, bit for bit: the same dot products
//! against the weights in place (PyTorch's gate order), each output summed in
//! the same order, the same cell arithmetic. What changes is who computes
//! what: with [`step_parts`] = 2 the hidden units are split in halves, and the
//! caller and a persistent helper thread ([`run_pair`]) each compute their
//! half's four gates (their rows of `W_ih` and `W_hh`: half the weights, which
//! then stay in that core's L2 from step to step) and finish their half's
//! cells. Each output is still one dot product computed whole by one thread,
//! so the split cannot change a bit of it.

use ndarray::ArrayView2;

use super::cell::{forward_row, ForwardCells, GateRules};
use super::layout::Gate;
use super::{Lstm, LstmVariant, STREAMING_ROWS};
use crate::kernels::dot::gemm_nt;
use crate::kernels::lockstep::{run_pair, SharedRows};
use crate::kernels::pack::MatRef;
use crate::kernels::Isa;
use crate::{Result, Scalar};

/// Below this many flops per step (`2·batch·4H·(X + H)`; at B 1 up to X 64, H 128) a step
/// stays on one thread: a few microseconds, against handing half of it over (x, h and the
/// job's cache lines cross cores; the helper may be parked). Not yet read off a measurement:
/// `cargo run --release -p odyssey-core --example bench_stream` with and without
/// `RAYON_NUM_THREADS=1` varied 2–4× between runs under this session's load. Where the helper
/// does not pay, [`run_pair`] backs off at run time (BENCHMARKS.md, "Where a streaming step goes").
const PAIR_STEP_FLOPS: usize = 200_000;

/// How many threads share a step of `batch` sequences: two when the work is worth a
/// handover and the halves are whole SIMD vectors of units (so that every cell runs
/// the same lanes as in [`Lstm::infer`], whose single block is all `H` units).
pub(crate) fn step_parts(batch: usize, input: usize, hidden: usize) -> usize {
    let flops = 2 * batch * 4 * hidden * (input + hidden);
    if flops >= PAIR_STEP_FLOPS && hidden.is_multiple_of(32) {
        2
    } else {
        1
    }
}

/// What a step writes before the state can take it, kept from step to step.
#[derive(Debug, Clone, Default)]
pub struct StepBuffers<F> {
    /// Per part and sequence, the part's `4w` pre-activations `[i | f | z | o]` (w = H / parts).
    gates: Vec<F>,
    /// h(t) and c(t), `[batch, H]` each.
    h: Vec<F>,
    c: Vec<F>,
    /// The next step reads its pieces of the weights last to first (see [`piece_order`]).
    backwards: bool,
}

impl<F: Scalar> Lstm<F> {
    /// Whether [`Lstm::step`] gives exactly what [`Lstm::infer`] gives for `batch` sequences.
    pub(crate) fn steps_in_place(&self, batch: usize) -> bool {
        batch <= STREAMING_ROWS && self.config.variant != LstmVariant::Fgr
    }

    /// One time step of `batch` sequences: `x` `[batch, X]`; `h`, `c` `[batch, H]` hold
    /// y(t−1), c(t−1) and receive y(t), c(t). Only for [`Lstm::steps_in_place`] batches.
    pub(crate) fn step(
        &self,
        x: &[F],
        h: &mut [F],
        c: &mut [F],
        buffers: &mut StepBuffers<F>,
    ) -> Result<()> {
        self.check_layer()?;
        let (input, hidden) = (self.config.input_size, self.config.hidden_size);
        let batch = h.len() / hidden;
        assert!(
            self.steps_in_place(batch)
                && x.len() == batch * input
                && h.len() == batch * hidden
                && c.len() == batch * hidden,
            "a streaming step's operands"
        );
        let parts = step_parts(batch, input, hidden);
        let width = hidden / parts;
        buffers.gates.resize(batch * 4 * hidden, F::zero());
        buffers.h.resize(batch * hidden, F::zero());
        buffers.c.resize(batch * hidden, F::zero());
        let isa = Isa::current();
        let rules = GateRules::new(&self.config);
        let params = &self.params;
        let bias = [params.bias_ih.as_slice(), params.bias_hh.as_slice()]
            .map(|b| b.expect("parameters are contiguous"));
        let peepholes = self.config.uses_peepholes().then(|| {
            [&params.peephole_i, &params.peephole_f, &params.peephole_o]
                .map(|p| p.as_slice().expect("parameters are contiguous"))
        });
        let (x_rows, h_rows) = (rows_of(x, batch, input), rows_of(h, batch, hidden));
        let (w_ih, w_hh) = (
            MatRef::from_view(params.weight_ih.view()),
            MatRef::from_view(params.weight_hh.view()),
        );
        let c_prev: &[F] = c;
        let gates = SharedRows::new(&mut buffers.gates, 4 * width);
        let h_next = SharedRows::new(&mut buffers.h, hidden);
        let c_next = SharedRows::new(&mut buffers.c, hidden);
        let backwards = buffers.backwards;
        buffers.backwards = !backwards;
        let work = |part: usize| {
            if part >= parts {
                return;
            }
            let units = part * width..(part + 1) * width;
            let rows = part * batch..(part + 1) * batch;
            for (gate, piece) in piece_order(width, backwards) {
                let first = gate.block(hidden).start + units.start;
                let outputs = first + piece.start..first + piece.end;
                let columns =
                    gate as usize * width + piece.start..gate as usize * width + piece.end;
                // SAFETY: rows `rows` of `gates` are this part's alone; the pointer is the piece's
                // first column of its first row, `batch` rows of its columns 4·width apart.
                unsafe {
                    for r in rows.clone() {
                        let block = gates.row_mut(r, columns.clone());
                        for ((g, &i), &h) in block
                            .iter_mut()
                            .zip(&bias[0][outputs.clone()])
                            .zip(&bias[1][outputs.clone()])
                        {
                            *g = i + h;
                        }
                    }
                    let first = gates.ptr_at(rows.start, columns.start);
                    let rs = gates.width() as isize;
                    gemm_nt(isa, x_rows, w_ih, outputs.clone(), first, rs, true);
                    gemm_nt(isa, h_rows, w_hh, outputs, first, rs, true);
                }
            }
            for b in 0..batch {
                // SAFETY: this part alone writes its gate rows and its units of h(t), c(t).
                let cells = unsafe {
                    ForwardCells {
                        gates: gates.row_mut(rows.start + b, 0..4 * width),
                        c_prev: &c_prev[b * hidden..][units.clone()],
                        c: c_next.row_mut(b, units.clone()),
                        keep_activations: false,
                        y: h_next.row_mut(b, units.clone()),
                        peepholes: peepholes.map(|p| p.map(|values| &values[units.clone()])),
                    }
                };
                forward_row(isa, &rules, width, cells);
            }
        };
        if parts == 1 {
            work(0);
        } else {
            run_pair(&work);
        }
        h.copy_from_slice(&buffers.h);
        c.copy_from_slice(&buffers.c);
        Ok(())
    }
}

/// `values` as `[rows, width]`, a product's left operand.
fn rows_of<F: Scalar>(values: &[F], rows: usize, width: usize) -> MatRef<'_, F> {
    MatRef::from_view(ArrayView2::from_shape((rows, width), values).expect("[rows, width]"))
}

/// Units of a part whose rows of `W_ih` and `W_hh` (one gate) a step reads as one piece.
const PIECE_UNITS: usize = 32;

/// The (gate, units of the part) pieces of a step in the order it reads their weights, every
/// other step last to first. A part's weights may not fit its core's L2 (768 KiB at X 128,
/// H 256; 512 KiB of L2 on a Zen 3): read in the same order every step, each piece is evicted
/// before it is needed again; reversed, the pieces read last are needed first (X 128, H 256,
/// two threads, fastest of 40 × 500 steps, alternated, on top of the AVX2 dot kernel:
/// 16.7–17.4 → 15.5–16.5 µs, as BENCHMARKS.md "Session 10" records). Each output is
/// still `bias + x·W_ih + h·W_hh`, summed in that order.
fn piece_order(
    width: usize,
    backwards: bool,
) -> impl Iterator<Item = (Gate, std::ops::Range<usize>)> {
    let per_gate = width.div_ceil(PIECE_UNITS);
    let count = Gate::ALL.len() * per_gate;
    (0..count).map(move |i| {
        let i = if backwards { count - 1 - i } else { i };
        let start = i % per_gate * PIECE_UNITS;
        (
            Gate::ALL[i / per_gate],
            start..(start + PIECE_UNITS).min(width),
        )
    })
}
