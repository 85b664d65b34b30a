//! The elementwise part of one LSTM step for one sequence (SPEC §1), forward
//! and backward, with every variant decoded into [`GateRules`].
//!
//! A gate row is `[4H]` in PyTorch's block order i, f, g(=z), o: element `j`
//! of gate `k` sits at `k * H + j`.

use std::ops::Range;

use super::{LstmConfig, LstmVariant};
use crate::Scalar;

/// The four gate blocks of a `[4H]` row, in PyTorch order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    Input = 0,
    Forget = 1,
    /// The block input z (PyTorch's "g").
    Cell = 2,
    Output = 3,
}

impl Gate {
    /// Every gate in row order.
    const ALL: [Gate; 4] = [Gate::Input, Gate::Forget, Gate::Cell, Gate::Output];

    /// Columns of this gate in a `[.., 4H]` matrix.
    pub(super) fn block(self, hidden: usize) -> Range<usize> {
        let k = self as usize;
        k * hidden..(k + 1) * hidden
    }
}

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
    fn apply<F: Scalar>(self, x: F) -> F {
        match self {
            Squash::Tanh => x.tanh(),
            Squash::Identity => x,
        }
    }

    /// The derivative expressed through the output `a = apply(x)`, which is what the cache holds.
    fn derivative_at_output<F: Scalar>(self, a: F) -> F {
        match self {
            Squash::Tanh => F::one() - a * a,
            Squash::Identity => F::one(),
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
    pub peepholes: bool,
    /// FGR: `weight_gg` feeds the gate activations of t−1 into ī, f̄, ō.
    pub full_gate_recurrence: bool,
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
            peepholes: config.uses_peepholes(),
            full_gate_recurrence: variant == LstmVariant::Fgr,
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
    /// `(p_i[j], p_f[j], p_o[j])`, zeros when the layer has no peepholes.
    fn at(this: Option<&Self>, j: usize) -> (F, F, F) {
        this.map_or((F::zero(), F::zero(), F::zero()), |p| {
            (p.i[j], p.f[j], p.o[j])
        })
    }
}

fn sigmoid<F: Scalar>(x: F) -> F {
    F::one() / (F::one() + (-x).exp())
}

/// One sequence's slices for one forward step; `[H]` unless noted.
pub(super) struct ForwardRow<'a, F> {
    /// `[4H]`. In: pre-activations without the peephole terms
    /// (W x(t) + R y(t−1) + biases, + weight_gg terms for FGR). Out: activations i, f, z, o.
    pub gates: &'a mut [F],
    pub c_prev: &'a [F],
    pub c: &'a mut [F],
    /// tanh(c(t)), or c(t) for NOAF.
    pub cell_out: &'a mut [F],
    pub y: &'a mut [F],
}

/// Completes one step of SPEC §1's forward pass for one sequence.
pub(super) fn forward_row<F: Scalar>(
    rules: &GateRules,
    peepholes: Option<&Peepholes<F>>,
    row: ForwardRow<'_, F>,
) {
    let hidden = row.c.len();
    let one = F::one();
    for j in 0..hidden {
        let (p_i, p_f, p_o) = Peepholes::at(peepholes, j);
        let c_prev = row.c_prev[j];
        let i = if rules.input_gate {
            sigmoid(row.gates[j] + p_i * c_prev)
        } else {
            one
        };
        let f = match rules.forget_gate {
            ForgetGate::Learned => sigmoid(row.gates[hidden + j] + p_f * c_prev),
            ForgetGate::Open => one,
            ForgetGate::Coupled => one - i,
        };
        let z = rules.input_squash.apply(row.gates[2 * hidden + j]);
        let c = z * i + c_prev * f;
        let o = if rules.output_gate {
            sigmoid(row.gates[3 * hidden + j] + p_o * c)
        } else {
            one
        };
        let cell_out = rules.output_squash.apply(c);

        row.gates[j] = i;
        row.gates[hidden + j] = f;
        row.gates[2 * hidden + j] = z;
        row.gates[3 * hidden + j] = o;
        row.c[j] = c;
        row.cell_out[j] = cell_out;
        row.y[j] = o * cell_out;
    }
}

/// One sequence's slices for one backward step; `[H]` unless noted.
pub(super) struct BackwardRow<'a, F> {
    /// `[4H]`: activations i, f, z, o as the forward pass left them.
    pub gates: &'a [F],
    pub c_prev: &'a [F],
    pub cell_out: &'a [F],
    /// Total δy(t) = Δ(t) + recurrent term (+ ∂J/∂h_n at the last step), before clipping.
    pub dy: &'a [F],
    /// `[4H]`, FGR only (zeros otherwise): ∂J/∂(activations i, f, ·, o of step t) through `weight_gg`.
    pub d_gates: &'a [F],
    /// In: δc(t+1) ⊙ f(t+1) + p_i ⊙ δī(t+1) + p_f ⊙ δf̄(t+1) (+ ∂J/∂c_n at the last step).
    /// Out: the same quantity one step earlier, i.e. with t+1 replaced by t.
    pub dc_carry: &'a mut [F],
    /// `[4H]`, out: δī, δf̄, δz̄, δō of step t (zero for gates the variant does not have).
    pub d_pre: &'a mut [F],
}

/// One step of SPEC §1's backward pass for one sequence. With `clip = Some(v)`,
/// δy(t) is clamped to [−v, v] before any use, and δc(t) is clamped once all its
/// terms are summed, before it feeds this step's gates and the carry to t−1.
/// Returns Σ_j δc(t)_j² (after clamping) for the gradient-flow diagnostic.
pub(super) fn backward_row<F: Scalar>(
    rules: &GateRules,
    peepholes: Option<&Peepholes<F>>,
    clip: Option<F>,
    row: BackwardRow<'_, F>,
) -> F {
    let hidden = row.c_prev.len();
    let clamp = |x: F| clip.map_or(x, |v| x.max(-v).min(v));
    let sigmoid_slope = |a: F| a * (F::one() - a);
    let mut squared_norm = F::zero();
    for j in 0..hidden {
        let (p_i, p_f, p_o) = Peepholes::at(peepholes, j);
        let [i, f, z, o] = Gate::ALL.map(|g| row.gates[g as usize * hidden + j]);
        let [d_i_rec, d_f_rec, _, d_o_rec] =
            Gate::ALL.map(|g| row.d_gates[g as usize * hidden + j]);
        let (c_prev, cell_out) = (row.c_prev[j], row.cell_out[j]);

        let dy = clamp(row.dy[j]);
        let d_o_bar = if rules.output_gate {
            (dy * cell_out + d_o_rec) * sigmoid_slope(o)
        } else {
            F::zero()
        };
        let dc = clamp(
            dy * o * rules.output_squash.derivative_at_output(cell_out)
                + p_o * d_o_bar
                + row.dc_carry[j],
        );
        let d_f = dc * c_prev + d_f_rec;
        // CIFG's f = 1 − i sends the forget gate's error to the input gate with the opposite sign.
        let d_i = dc * z + d_i_rec
            - if rules.forget_gate == ForgetGate::Coupled {
                d_f
            } else {
                F::zero()
            };
        let d_i_bar = if rules.input_gate {
            d_i * sigmoid_slope(i)
        } else {
            F::zero()
        };
        let d_f_bar = if rules.forget_gate == ForgetGate::Learned {
            d_f * sigmoid_slope(f)
        } else {
            F::zero()
        };
        let d_z_bar = dc * i * rules.input_squash.derivative_at_output(z);

        row.d_pre[j] = d_i_bar;
        row.d_pre[hidden + j] = d_f_bar;
        row.d_pre[2 * hidden + j] = d_z_bar;
        row.d_pre[3 * hidden + j] = d_o_bar;
        row.dc_carry[j] = dc * f + p_i * d_i_bar + p_f * d_f_bar;
        squared_norm = squared_norm + dc * dc;
    }
    squared_norm
}
