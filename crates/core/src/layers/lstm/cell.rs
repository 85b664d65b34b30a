//! The elementwise part of one LSTM step (SPEC §1), forward and backward,
//! for one sequence and one block of hidden units, with every variant decoded
//! into [`GateRules`].
//!
//! The math is written once over [`Lanes`]: it runs one unit at a time for
//! any float, or sixteen `f32` units at a time with AVX-512, eight with AVX2
//! (four with NEON). A
//! block's gates are interleaved (see the `layout` module): `[i(w), f(w),
//! z(w), o(w)]` for its `w` units.

use std::ops::Range;

use super::layout::{unit_blocks, Gate};
use super::{LstmConfig, LstmVariant};
#[cfg(any(
    target_arch = "aarch64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
use crate::kernels::lanes::F32x4;
use crate::kernels::lanes::{load, store, Lanes};
#[cfg(target_arch = "x86_64")]
use crate::kernels::lanes::{F32x16, F32x8};
use crate::kernels::Isa;
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
use crate::kernels::{is_f32, retype};
use crate::Scalar;

/// FGR's gates in `weight_gg` order: row/column block `k` of `weight_gg` is gate `RECURRENT_GATES[k]`.
pub(super) const RECURRENT_GATES: [Gate; 3] = [Gate::Input, Gate::Forget, Gate::Output];

/// How the forget gate is produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ForgetGate {
    /// f = σ(f̄)
    Learned,
    /// NFG: f = 1
    Open,
    /// CIFG: f = 1 − i
    Coupled,
}

/// tanh, or nothing for the NIAF / NOAF variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Squash {
    Tanh,
    Identity,
}

impl Squash {
    #[inline(always)]
    fn apply<V: Lanes>(self, x: V) -> V {
        match self {
            Squash::Tanh => x.tanh(),
            Squash::Identity => x,
        }
    }

    /// The derivative expressed through the output `a = apply(x)`, which is what the cache holds.
    #[inline(always)]
    fn derivative_at_output<V: Lanes>(self, a: V, one: V) -> V {
        match self {
            Squash::Tanh => one - a * a,
            Squash::Identity => one,
        }
    }
}

/// A variant of SPEC §1, decoded once per pass so that the per-element loops only test flags.
#[derive(Debug, Clone, Copy)]
pub(super) struct GateRules {
    /// `false` for NIG (i = 1).
    pub input_gate: bool,
    pub forget_gate: ForgetGate,
    /// `false` for NOG (o = 1).
    pub output_gate: bool,
    pub input_squash: Squash,
    pub output_squash: Squash,
}

impl GateRules {
    pub(super) fn new(config: &LstmConfig) -> Self {
        let variant = config.variant;
        GateRules {
            input_gate: variant != LstmVariant::Nig,
            forget_gate: match variant {
                LstmVariant::Nfg => ForgetGate::Open,
                LstmVariant::Cifg => ForgetGate::Coupled,
                _ => ForgetGate::Learned,
            },
            output_gate: variant != LstmVariant::Nog,
            input_squash: if variant == LstmVariant::Niaf {
                Squash::Identity
            } else {
                Squash::Tanh
            },
            output_squash: if variant == LstmVariant::Noaf {
                Squash::Identity
            } else {
                Squash::Tanh
            },
        }
    }
}

/// The peephole vectors `[H]` each, copied out of the parameters once per pass.
#[derive(Debug, Clone)]
pub(super) struct Peepholes<F> {
    pub i: Vec<F>,
    pub f: Vec<F>,
    pub o: Vec<F>,
}

impl<F: Scalar> Peepholes<F> {
    /// `p_i, p_f, p_o` of `units`.
    pub(super) fn of(&self, units: Range<usize>) -> [&[F]; 3] {
        [
            &self.i[units.clone()],
            &self.f[units.clone()],
            &self.o[units],
        ]
    }
}

/// `x` clamped to `[low, high]` when bounds are given.
#[inline(always)]
fn clamp<V: Lanes>(x: V, bounds: Option<(V, V)>) -> V {
    match bounds {
        Some((low, high)) => x.max(low).min(high),
        None => x,
    }
}

/// `pre + p ⊙ c`, or `pre` without peepholes.
///
/// # Safety
/// As [`load`], for the peephole slice.
#[inline(always)]
unsafe fn with_peephole<V: Lanes>(pre: V, peephole: Option<&[V::Elem]>, c: V, at: usize) -> V {
    match peephole {
        // SAFETY: per the caller.
        Some(p) => pre + unsafe { load::<V>(p, at) } * c,
        None => pre,
    }
}

/// One sequence's slices for one forward step of one block of `w` units; `[w]` unless noted.
pub(super) struct ForwardCells<'a, F> {
    /// `[4w]`. In: pre-activations without the peephole terms
    /// (W x(t) + R y(t−1) + biases, + weight_gg terms for FGR). Out: activations i, f, z, o
    /// when `keep_activations`; left as they came in inference (nothing reads them there).
    pub gates: &'a mut [F],
    pub c_prev: &'a [F],
    pub c: &'a mut [F],
    /// Whether the activations stay in `gates` for a backward pass (false in inference).
    pub keep_activations: bool,
    pub y: &'a mut [F],
    /// p_i, p_f, p_o of the block's units.
    pub peepholes: Option<[&'a [F]; 3]>,
}

/// Completes one step of SPEC §1's forward pass for one block, `V::WIDTH` units at a time.
///
/// # Safety
/// The block's width must be a multiple of `V::WIDTH`, every slice as long as
/// documented on [`ForwardCells`], and the CPU must support `V`.
#[inline(always)]
pub(super) unsafe fn forward_cells<V: Lanes>(rules: &GateRules, cells: ForwardCells<'_, V::Elem>) {
    let w = cells.c.len();
    debug_assert!(w.is_multiple_of(V::WIDTH) && cells.gates.len() == 4 * w);
    let [p_i, p_f, p_o] = cells.peepholes.map_or([None; 3], |p| p.map(Some));
    // SAFETY (whole loop): lanes l .. l + WIDTH lie inside every slice (w is a
    // multiple of WIDTH, lengths per the caller); the CPU supports V.
    unsafe {
        let one = V::splat(<V::Elem as num_traits::One>::one());
        for l in (0..w).step_by(V::WIDTH) {
            let c_prev = load::<V>(cells.c_prev, l);
            let i = if rules.input_gate {
                with_peephole(load::<V>(cells.gates, l), p_i, c_prev, l).sigmoid()
            } else {
                one
            };
            let f = match rules.forget_gate {
                ForgetGate::Learned => {
                    with_peephole(load::<V>(cells.gates, w + l), p_f, c_prev, l).sigmoid()
                }
                ForgetGate::Open => one,
                ForgetGate::Coupled => one - i,
            };
            let z = rules.input_squash.apply(load::<V>(cells.gates, 2 * w + l));
            let c = z * i + c_prev * f;
            let o = if rules.output_gate {
                with_peephole(load::<V>(cells.gates, 3 * w + l), p_o, c, l).sigmoid()
            } else {
                one
            };
            let cell_out = rules.output_squash.apply(c);

            if cells.keep_activations {
                store(i, cells.gates, l);
                store(f, cells.gates, w + l);
                store(z, cells.gates, 2 * w + l);
                store(o, cells.gates, 3 * w + l);
            }
            store(c, cells.c, l);
            store(o * cell_out, cells.y, l);
        }
    }
}

/// p_i, p_f, p_o of some units, and the gradients to accumulate for them.
pub(super) type PeepholesAndGrads<'a, F> = ([&'a [F]; 3], [&'a mut [F]; 3]);

/// One sequence's slices for one backward step of one block of `w` units; `[w]` unless noted.
pub(super) struct BackwardCells<'a, F> {
    /// `[4w]`, in: activations i, f, z, o as the forward pass left them; out: δī, δf̄, δz̄, δō
    /// of step t (zero for gates the variant does not have), written over them. Exact BPTT
    /// reads step t's activations only at step t, so their buffer can hold the δ from then on.
    pub gates: &'a mut [F],
    pub c_prev: &'a [F],
    /// c(t). Its squashed value (tanh(c(t)), c(t) for NOAF) is recomputed from it here, with
    /// the forward pass's lanes (so bit for bit), rather than kept: `[time * batch, H]` less.
    pub c: &'a [F],
    /// Total δy(t) = Δ(t) + recurrent term (+ ∂J/∂h_n at the last step), before clipping.
    pub dy: &'a [F],
    /// `[4w]`, FGR only: ∂J/∂(activations i, f, ·, o of step t) through `weight_gg`.
    pub d_gates: Option<&'a [F]>,
    /// In: δc(t+1) ⊙ f(t+1) + p_i ⊙ δī(t+1) + p_f ⊙ δf̄(t+1) (+ ∂J/∂c_n at the last step).
    /// Out: the same quantity one step earlier, i.e. with t+1 replaced by t.
    pub dc_carry: &'a mut [F],
    /// `[4w]`, accumulates the bias gradient: += δī, δf̄, δz̄, δō.
    pub bias_grad: &'a mut [F],
    /// p_i, p_f, p_o of the block's units, and their gradients to accumulate
    /// (+= c(t−1) ⊙ δī, c(t−1) ⊙ δf̄, c(t) ⊙ δō).
    pub peepholes: Option<PeepholesAndGrads<'a, F>>,
}

/// One step of SPEC §1's backward pass for one block. With `clip = Some(v)`,
/// δy(t) is clamped to [−v, v] before any use, and δc(t) is clamped once all its
/// terms are summed, before it feeds this step's gates and the carry to t−1.
/// Returns Σ δc(t)² (after clamping) over the block, for the gradient-flow diagnostic.
///
/// # Safety
/// As [`forward_cells`], for the slices of [`BackwardCells`].
#[inline(always)]
pub(super) unsafe fn backward_cells<V: Lanes>(
    rules: &GateRules,
    clip: Option<V::Elem>,
    cells: BackwardCells<'_, V::Elem>,
) -> V::Elem {
    let w = cells.c_prev.len();
    debug_assert!(w.is_multiple_of(V::WIDTH) && cells.gates.len() == 4 * w);
    let (peepholes, mut peephole_grads) = match cells.peepholes {
        Some((p, g)) => (Some(p), Some(g)),
        None => (None, None),
    };
    // No closures below: they would not inherit the SIMD target features of the caller.
    // SAFETY (whole body): lanes l .. l + WIDTH lie inside every slice; the CPU supports V.
    unsafe {
        let zero = V::splat(<V::Elem as num_traits::Zero>::zero());
        let one = V::splat(<V::Elem as num_traits::One>::one());
        #[allow(clippy::manual_map)] // `Option::map` takes a closure, see above
        let bounds = match clip {
            Some(v) => Some((V::splat(-v), V::splat(v))),
            None => None,
        };
        let mut squared_norm = zero;
        for l in (0..w).step_by(V::WIDTH) {
            let i = load::<V>(cells.gates, l);
            let f = load::<V>(cells.gates, w + l);
            let z = load::<V>(cells.gates, 2 * w + l);
            let o = load::<V>(cells.gates, 3 * w + l);
            let [d_i_rec, d_f_rec, d_o_rec] = match cells.d_gates {
                Some(d) => [
                    load::<V>(d, l),
                    load::<V>(d, w + l),
                    load::<V>(d, 3 * w + l),
                ],
                None => [zero; 3],
            };
            let [p_i, p_f, p_o] = match peepholes {
                Some([p_i, p_f, p_o]) => [load::<V>(p_i, l), load::<V>(p_f, l), load::<V>(p_o, l)],
                None => [zero; 3],
            };
            let (c_prev, c) = (load::<V>(cells.c_prev, l), load::<V>(cells.c, l));
            let cell_out = rules.output_squash.apply(c);

            let dy = clamp(load::<V>(cells.dy, l), bounds);
            let d_o_bar = if rules.output_gate {
                (dy * cell_out + d_o_rec) * o * (one - o)
            } else {
                zero
            };
            let dc = clamp(
                dy * o * rules.output_squash.derivative_at_output(cell_out, one)
                    + p_o * d_o_bar
                    + load::<V>(cells.dc_carry, l),
                bounds,
            );
            let d_f = dc * c_prev + d_f_rec;
            // CIFG's f = 1 − i sends the forget gate's error to the input gate with the opposite sign.
            let d_i = if rules.forget_gate == ForgetGate::Coupled {
                dc * z + d_i_rec - d_f
            } else {
                dc * z + d_i_rec
            };
            let d_i_bar = if rules.input_gate {
                d_i * i * (one - i)
            } else {
                zero
            };
            let d_f_bar = if rules.forget_gate == ForgetGate::Learned {
                d_f * f * (one - f)
            } else {
                zero
            };
            let d_z_bar = dc * i * rules.input_squash.derivative_at_output(z, one);

            for (g, d) in [d_i_bar, d_f_bar, d_z_bar, d_o_bar].into_iter().enumerate() {
                store(d, cells.gates, g * w + l);
                store(
                    load::<V>(cells.bias_grad, g * w + l) + d,
                    cells.bias_grad,
                    g * w + l,
                );
            }
            if let Some(grads) = peephole_grads.as_mut() {
                for (k, term) in [c_prev * d_i_bar, c_prev * d_f_bar, c * d_o_bar]
                    .into_iter()
                    .enumerate()
                {
                    store(load::<V>(grads[k], l) + term, grads[k], l);
                }
            }
            let carry = dc * f + p_i * d_i_bar + p_f * d_f_bar;
            store(carry, cells.dc_carry, l);
            squared_norm = squared_norm + dc * dc;
        }
        squared_norm.sum()
    }
}

/// Runs `forward_cells` over every block of a row that spans whole blocks of
/// units (a thread's chunk): lanes `V` for blocks whose width they divide, else the
/// narrower lanes `N`, else scalars (a narrow last block). The vector lanes agree bit
/// for bit, so which of them a block takes never changes a result.
///
/// # Safety
/// The slices must be as long as [`ForwardCells`] documents for the row's units; the CPU must
/// support `V` and `N`.
#[inline(always)]
unsafe fn forward_row_on<V: Lanes, N: Lanes<Elem = V::Elem>>(
    rules: &GateRules,
    block_units: usize,
    row: ForwardCells<'_, V::Elem>,
) {
    for block in unit_blocks(0..row.c.len(), block_units) {
        let (units, gates) = (
            block.start..block.start + block.width,
            4 * block.start..4 * (block.start + block.width),
        );
        let cells = ForwardCells {
            gates: &mut row.gates[gates],
            c_prev: &row.c_prev[units.clone()],
            c: &mut row.c[units.clone()],
            keep_activations: row.keep_activations,
            y: &mut row.y[units.clone()],
            peepholes: row
                .peepholes
                .map(|p| p.map(|values| &values[units.clone()])),
        };
        // SAFETY: each block's slices have the documented lengths; the CPU supports V and N (caller).
        unsafe {
            if block.width.is_multiple_of(V::WIDTH) {
                forward_cells::<V>(rules, cells);
            } else if block.width.is_multiple_of(N::WIDTH) {
                forward_cells::<N>(rules, cells);
            } else {
                forward_cells::<V::Elem>(rules, cells);
            }
        }
    }
}

/// One forward step of a row of whole blocks of `block_units` units, with the best lanes for `F` on `isa`.
pub(super) fn forward_row<F: Scalar>(
    isa: Isa,
    rules: &GateRules,
    block_units: usize,
    row: ForwardCells<'_, F>,
) {
    assert!(row.gates.len() == 4 * row.c.len(), "four gates per unit");
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && is_f32::<F>() {
        // SAFETY: F is f32, so the row types are identical; AVX-512F, AVX2 and FMA were detected.
        unsafe { forward_row_avx512(rules, block_units, retype(row)) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2_fma() && is_f32::<F>() {
        // SAFETY: F is f32, so the row types are identical; AVX2 + FMA were detected.
        unsafe { forward_row_avx2(rules, block_units, retype(row)) };
        return;
    }
    #[cfg(any(
        target_arch = "aarch64",
        all(target_arch = "wasm32", target_feature = "simd128")
    ))]
    if matches!(isa, Isa::Neon | Isa::Simd128) && is_f32::<F>() {
        // SAFETY: F is f32, so the row types are identical; F32x4's instructions are part of the target (NEON; simd128 compiled in).
        unsafe { forward_row_on::<F32x4, F32x4>(rules, block_units, retype(row)) };
        return;
    }
    let _ = isa;
    // SAFETY: scalar lanes need no CPU feature; lengths checked by the slicing above.
    unsafe { forward_row_on::<F, F>(rules, block_units, row) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_row_avx2(rules: &GateRules, block_units: usize, row: ForwardCells<'_, f32>) {
    // SAFETY: AVX2 + FMA are enabled here and present (caller).
    unsafe { forward_row_on::<F32x8, F32x8>(rules, block_units, row) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn forward_row_avx512(rules: &GateRules, block_units: usize, row: ForwardCells<'_, f32>) {
    // SAFETY: AVX-512F, AVX2 and FMA are enabled here and present (caller).
    unsafe { forward_row_on::<F32x16, F32x8>(rules, block_units, row) }
}

/// Runs `backward_cells` over every block of a row of whole blocks of units (lanes chosen
/// per block as in [`forward_row_on`]); returns Σ δc².
///
/// # Safety
/// As [`forward_row_on`], for [`BackwardCells`].
#[inline(always)]
unsafe fn backward_row_on<V: Lanes, N: Lanes<Elem = V::Elem>>(
    rules: &GateRules,
    clip: Option<V::Elem>,
    block_units: usize,
    row: BackwardCells<'_, V::Elem>,
) -> V::Elem {
    let BackwardCells {
        gates,
        c_prev,
        c,
        dy,
        d_gates,
        dc_carry,
        bias_grad,
        mut peepholes,
    } = row;
    let mut squared_norm = <V::Elem as num_traits::Zero>::zero();
    for block in unit_blocks(0..c_prev.len(), block_units) {
        let (units, cols) = (
            block.start..block.start + block.width,
            4 * block.start..4 * (block.start + block.width),
        );
        let cells = BackwardCells {
            gates: &mut gates[cols.clone()],
            c_prev: &c_prev[units.clone()],
            c: &c[units.clone()],
            dy: &dy[units.clone()],
            d_gates: d_gates.map(|d| &d[cols.clone()]),
            dc_carry: &mut dc_carry[units.clone()],
            bias_grad: &mut bias_grad[cols.clone()],
            peepholes: peepholes.as_mut().map(|(p, g)| {
                let [g_i, g_f, g_o] = g;
                (
                    p.map(|values| &values[units.clone()]),
                    [
                        &mut g_i[units.clone()],
                        &mut g_f[units.clone()],
                        &mut g_o[units.clone()],
                    ],
                )
            }),
        };
        // SAFETY: each block's slices have the documented lengths; the CPU supports V and N (caller).
        let block_norm = unsafe {
            if block.width.is_multiple_of(V::WIDTH) {
                backward_cells::<V>(rules, clip, cells)
            } else if block.width.is_multiple_of(N::WIDTH) {
                backward_cells::<N>(rules, clip, cells)
            } else {
                backward_cells::<V::Elem>(rules, clip, cells)
            }
        };
        squared_norm = squared_norm + block_norm;
    }
    squared_norm
}

/// One backward step of a row of whole blocks of `block_units` units, with the best lanes for `F` on
/// `isa`; returns Σ δc².
pub(super) fn backward_row<F: Scalar>(
    isa: Isa,
    rules: &GateRules,
    clip: Option<F>,
    block_units: usize,
    row: BackwardCells<'_, F>,
) -> F {
    assert!(
        row.gates.len() == 4 * row.c_prev.len(),
        "four gates per unit"
    );
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && is_f32::<F>() {
        // SAFETY: F is f32, so the types are identical; AVX-512F, AVX2 and FMA were detected.
        unsafe {
            let norm = backward_row_avx512(rules, retype(clip), block_units, retype(row));
            return retype(norm);
        }
    }
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2_fma() && is_f32::<F>() {
        // SAFETY: F is f32, so the types are identical; AVX2 + FMA were detected.
        unsafe {
            let norm = backward_row_avx2(rules, retype(clip), block_units, retype(row));
            return retype(norm);
        }
    }
    #[cfg(any(
        target_arch = "aarch64",
        all(target_arch = "wasm32", target_feature = "simd128")
    ))]
    if matches!(isa, Isa::Neon | Isa::Simd128) && is_f32::<F>() {
        // SAFETY: F is f32, so the types are identical; F32x4's instructions are part of the target (NEON; simd128 compiled in).
        unsafe {
            let norm =
                backward_row_on::<F32x4, F32x4>(rules, retype(clip), block_units, retype(row));
            return retype(norm);
        }
    }
    let _ = isa;
    // SAFETY: scalar lanes need no CPU feature; slice lengths are checked by slicing.
    unsafe { backward_row_on::<F, F>(rules, clip, block_units, row) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_row_avx2(
    rules: &GateRules,
    clip: Option<f32>,
    block_units: usize,
    row: BackwardCells<'_, f32>,
) -> f32 {
    // SAFETY: AVX2 + FMA are enabled here and present (caller).
    unsafe { backward_row_on::<F32x8, F32x8>(rules, clip, block_units, row) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn backward_row_avx512(
    rules: &GateRules,
    clip: Option<f32>,
    block_units: usize,
    row: BackwardCells<'_, f32>,
) -> f32 {
    // SAFETY: AVX-512F, AVX2 and FMA are enabled here and present (caller).
    unsafe { backward_row_on::<F32x16, F32x8>(rules, clip, block_units, row) }
}
