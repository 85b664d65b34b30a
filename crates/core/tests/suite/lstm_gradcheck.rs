//! The LSTM of SPEC §1 against central finite differences in f64, for every
//! variant, with and without peepholes, variable lengths, initial states and
//! odd sizes; plus padding semantics, recurrent clipping, the gradient-flow
//! diagnostic, f32/f64 agreement, initialisation and input validation.
//!
//! Every check differentiates J = Σ w ⊙ y + Σ v ⊙ h_n + Σ u ⊙ c_n with fixed
//! random w, v, u, so backward receives dy = w, dh_n = v, dc_n = u.

use ndarray::{s, Array, Array1, Array2, Array3, ArrayD, Axis, Dimension, ShapeBuilder};
use odyssey_core::layers::{
    BackwardOptions, Lstm, LstmConfig, LstmGrads, LstmVariant, SequenceBatch, SequenceOutput,
};
use odyssey_core::{Error, ParamSet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common;
use common::{assert_arrays_close, Tolerance};

/// Central-difference step and the largest accepted error |analytic − numeric| / max(|analytic|, |numeric|, 1e-3).
const EPS: f64 = 1e-6;
const TOLERANCE: f64 = 1e-5;

fn uniform<D: Dimension>(
    rng: &mut ChaCha8Rng,
    shape: impl ShapeBuilder<Dim = D>,
    bound: f64,
) -> Array<f64, D> {
    Array::from_shape_simple_fn(shape, || rng.gen_range(-bound..=bound))
}

/// Sizes and options of one problem.
#[derive(Debug, Clone)]
struct Case {
    config: LstmConfig,
    batch: usize,
    time: usize,
    lengths: Option<Vec<usize>>,
    /// Random h0, c0 instead of zeros.
    initial_state: bool,
    seed: u64,
}

impl Case {
    fn new(
        variant: LstmVariant,
        peepholes: bool,
        [batch, time, input, hidden]: [usize; 4],
    ) -> Self {
        Case {
            config: LstmConfig::new(input, hidden)
                .with_variant(variant)
                .with_peepholes(peepholes),
            batch,
            time,
            lengths: None,
            initial_state: false,
            seed: 7,
        }
    }

    fn lengths(self, lengths: &[usize]) -> Self {
        Case {
            lengths: Some(lengths.to_vec()),
            ..self
        }
    }

    fn initial_state(self) -> Self {
        Case {
            initial_state: true,
            ..self
        }
    }
}

/// A layer, its inputs and the loss weights of J.
#[derive(Debug, Clone)]
struct Problem {
    lstm: Lstm<f64>,
    x: Array3<f64>,
    lengths: Option<Vec<usize>>,
    h0: Array2<f64>,
    c0: Array2<f64>,
    /// Loss weights: w `[batch, time, H]`, v and u `[batch, H]`.
    w: Array3<f64>,
    v: Array2<f64>,
    u: Array2<f64>,
}

/// A tensor J can be differentiated by.
#[derive(Debug, Clone, Copy)]
enum Wrt {
    X,
    H0,
    C0,
    Param(&'static str),
}

impl Problem {
    fn new(case: &Case) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
        let (b, t, x, h) = (
            case.batch,
            case.time,
            case.config.input_size,
            case.config.hidden_size,
        );
        let lstm = Lstm::new(case.config, 0.5, &mut rng).expect("valid config");
        let state_bound = if case.initial_state { 0.8 } else { 0.0 };
        Problem {
            lstm,
            x: uniform(&mut rng, (b, t, x), 1.0),
            lengths: case.lengths.clone(),
            h0: uniform(&mut rng, (b, h), state_bound),
            c0: uniform(&mut rng, (b, h), state_bound),
            w: uniform(&mut rng, (b, t, h), 1.0),
            v: uniform(&mut rng, (b, h), 1.0),
            u: uniform(&mut rng, (b, h), 1.0),
        }
    }

    fn batch(&self) -> SequenceBatch<'_, f64> {
        SequenceBatch {
            x: self.x.view(),
            lengths: self.lengths.as_deref(),
            h0: Some(self.h0.view()),
            c0: Some(self.c0.view()),
        }
    }

    fn loss(&self) -> f64 {
        let (out, _) = self.lstm.forward(&self.batch()).expect("valid problem");
        (&out.y * &self.w).sum()
            + (&out.h_n * &self.v).sum()
            + (&out.c_n.expect("LSTM has c_n") * &self.u).sum()
    }

    /// The gradients of `Lstm::backward`, which must equal those of `Lstm::backward_consuming`
    /// (the model's path, δ written over the cache's own activations) bit for bit, with δx
    /// or without it (a model input's: nobody reads it).
    fn gradients(&self, options: &BackwardOptions<f64>) -> LstmGrads<f64> {
        let (_, cache) = self.lstm.forward(&self.batch()).expect("valid problem");
        let (dy, dh_n, dc_n) = (self.w.view(), Some(self.v.view()), Some(self.u.view()));
        let grads = self
            .lstm
            .backward(&cache, dy, dh_n, dc_n, options)
            .expect("valid gradients");
        for input_gradient in [true, false] {
            let (_, cache) = self.lstm.forward(&self.batch()).expect("valid problem");
            let consumed = self
                .lstm
                .backward_consuming(cache, dy, dh_n, dc_n, options, input_gradient)
                .expect("valid gradients");
            let (batch, time, _) = grads.dx.dim();
            let dx_ok = if input_gradient {
                consumed.dx == grads.dx
            } else {
                consumed.dx.dim() == (batch, time, 0)
            };
            assert!(
                dx_ok
                    && consumed.dh0 == grads.dh0
                    && consumed.dc0 == grads.dc0
                    && consumed.params == grads.params
                    && consumed.step_grad_norms == grads.step_grad_norms,
                "backward_consuming (input_gradient {input_gradient}) differs from backward"
            );
        }
        grads
    }

    /// Every tensor J depends on (or could depend on), with its analytic gradient.
    fn analytic(&self, grads: &LstmGrads<f64>) -> Vec<(Wrt, ArrayD<f64>)> {
        let mut all = vec![
            (Wrt::X, grads.dx.clone().into_dyn()),
            (Wrt::H0, grads.dh0.clone().into_dyn()),
            (Wrt::C0, grads.dc0.clone().into_dyn()),
        ];
        all.extend(
            grads
                .params
                .tensors()
                .into_iter()
                .map(|(name, g)| (Wrt::Param(name), g.to_owned())),
        );
        all
    }

    fn element_mut(&mut self, wrt: Wrt, index: usize) -> &mut f64 {
        let element = match wrt {
            Wrt::X => self.x.iter_mut().nth(index),
            Wrt::H0 => self.h0.iter_mut().nth(index),
            Wrt::C0 => self.c0.iter_mut().nth(index),
            Wrt::Param(name) => {
                let (_, tensor) = self
                    .lstm
                    .params
                    .tensors_mut()
                    .into_iter()
                    .find(|(n, _)| *n == name)
                    .expect("named");
                tensor.into_iter().nth(index)
            }
        };
        element.expect("index in range")
    }

    fn numeric(&self, wrt: Wrt, index: usize) -> f64 {
        let shifted = |delta: f64| {
            let mut p = self.clone();
            *p.element_mut(wrt, index) += delta;
            p.loss()
        };
        (shifted(EPS) - shifted(-EPS)) / (2.0 * EPS)
    }
}

/// Compares every analytic gradient with central differences; panics naming the worst element.
fn check_gradients(case: &Case) {
    let problem = Problem::new(case);
    let grads = problem.gradients(&BackwardOptions::default());
    let mut worst = (0.0, String::new());
    for (wrt, analytic) in problem.analytic(&grads) {
        assert_eq!(
            analytic.len(),
            tensor_len(&problem, wrt),
            "{wrt:?}: gradient and tensor sizes differ"
        );
        for (index, &a) in analytic.iter().enumerate() {
            let n = problem.numeric(wrt, index);
            let error = (a - n).abs() / a.abs().max(n.abs()).max(1e-3);
            if error > worst.0 {
                worst = (
                    error,
                    format!("{wrt:?}[{index}]: analytic {a:e}, numeric {n:e}"),
                );
            }
        }
    }
    assert!(
        worst.0 <= TOLERANCE,
        "{case:?}\nworst relative error {:e} at {}",
        worst.0,
        worst.1
    );
}

fn tensor_len(problem: &Problem, wrt: Wrt) -> usize {
    match wrt {
        Wrt::X => problem.x.len(),
        Wrt::H0 => problem.h0.len(),
        Wrt::C0 => problem.c0.len(),
        Wrt::Param(name) => problem
            .lstm
            .params
            .tensors()
            .iter()
            .find(|(n, _)| *n == name)
            .expect("named")
            .1
            .len(),
    }
}

#[test]
fn every_variant_with_peepholes_variable_lengths_and_initial_state() {
    for variant in LstmVariant::ALL {
        check_gradients(
            &Case::new(variant, true, [3, 5, 2, 3])
                .lengths(&[5, 1, 3])
                .initial_state(),
        );
    }
}

#[test]
fn every_variant_without_peepholes() {
    for variant in LstmVariant::ALL {
        check_gradients(&Case::new(variant, false, [2, 4, 3, 3]));
        check_gradients(
            &Case::new(variant, false, [3, 4, 2, 2])
                .lengths(&[2, 4, 1])
                .initial_state(),
        );
    }
}

#[test]
fn odd_sizes() {
    let shapes = [
        [1, 1, 1, 1],
        [1, 6, 2, 1],
        [2, 1, 3, 3],
        [1, 3, 2, 7],
        [2, 3, 3, 17],
    ];
    for variant in LstmVariant::ALL {
        for shape in shapes {
            check_gradients(&Case::new(variant, true, shape).initial_state());
        }
    }
}

#[test]
fn unused_gate_blocks_get_exactly_zero_gradient() {
    let hidden = 3;
    let block = |k: usize| k * hidden..(k + 1) * hidden;
    // (variant, gate blocks of the [4H] layout it never uses, peepholes it never uses)
    let expectations: [(LstmVariant, &[usize], &[&str]); 4] = [
        (LstmVariant::Nig, &[0], &["peephole_i"]),
        (LstmVariant::Nfg, &[1], &["peephole_f"]),
        (LstmVariant::Cifg, &[1], &["peephole_f"]),
        (LstmVariant::Nog, &[3], &["peephole_o"]),
    ];
    for (variant, blocks, peepholes) in expectations {
        let problem = Problem::new(&Case::new(variant, true, [2, 4, 2, hidden]).initial_state());
        let g = problem.gradients(&BackwardOptions::default()).params;
        for &k in blocks {
            for rows in [
                g.weight_ih.slice(s![block(k), ..]),
                g.weight_hh.slice(s![block(k), ..]),
            ] {
                assert!(
                    rows.iter().all(|&v| v == 0.0),
                    "{variant:?}: weight block {k} has gradient"
                );
            }
            assert!(
                g.bias_ih.slice(s![block(k)]).iter().all(|&v| v == 0.0),
                "{variant:?}: bias block {k}"
            );
        }
        for (name, tensor) in g.tensors() {
            let unused = peepholes.contains(&name);
            assert_eq!(
                tensor.iter().all(|&v| v == 0.0),
                unused,
                "{variant:?}: {name}"
            );
        }
    }
}

#[test]
fn both_biases_get_the_same_gradient() {
    let problem = Problem::new(&Case::new(LstmVariant::Vanilla, true, [2, 3, 2, 4]));
    let g = problem.gradients(&BackwardOptions::default()).params;
    assert_eq!(g.bias_ih, g.bias_hh);
}

fn forward(lstm: &Lstm<f64>, batch: &SequenceBatch<'_, f64>) -> SequenceOutput<f64> {
    lstm.forward(batch).expect("valid batch").0
}

#[test]
fn padded_steps_output_zero_and_each_sequence_matches_running_alone() {
    let lengths = [4, 1, 3];
    let problem = Problem::new(
        &Case::new(LstmVariant::Fgr, true, [3, 4, 2, 3])
            .lengths(&lengths)
            .initial_state(),
    );
    let out = forward(&problem.lstm, &problem.batch());
    let grads = problem.gradients(&BackwardOptions::default());
    let mut summed_params = grads.params.zeros_like();
    for (b, &len) in lengths.iter().enumerate() {
        assert!(
            out.y.slice(s![b, len.., ..]).iter().all(|&v| v == 0.0),
            "y of sequence {b} after its end"
        );
        assert!(
            grads.dx.slice(s![b, len.., ..]).iter().all(|&v| v == 0.0),
            "dx of sequence {b} after its end"
        );

        let alone = Problem {
            x: problem.x.slice(s![b..=b, ..len, ..]).to_owned(),
            lengths: None,
            h0: problem.h0.slice(s![b..=b, ..]).to_owned(),
            c0: problem.c0.slice(s![b..=b, ..]).to_owned(),
            w: problem.w.slice(s![b..=b, ..len, ..]).to_owned(),
            v: problem.v.slice(s![b..=b, ..]).to_owned(),
            u: problem.u.slice(s![b..=b, ..]).to_owned(),
            lstm: problem.lstm.clone(),
        };
        let alone_out = forward(&alone.lstm, &alone.batch());
        assert_arrays_close(
            "y",
            &out.y.slice(s![b..=b, ..len, ..]),
            &alone_out.y,
            Tolerance::LargerOrOne(1e-14),
        );
        assert_arrays_close(
            "h_n",
            &out.h_n.slice(s![b..=b, ..]),
            &alone_out.h_n,
            Tolerance::LargerOrOne(1e-14),
        );
        let c_n = out.c_n.as_ref().expect("c_n");
        assert_arrays_close(
            "c_n",
            &c_n.slice(s![b..=b, ..]),
            &alone_out.c_n.expect("c_n"),
            Tolerance::LargerOrOne(1e-14),
        );

        let alone_grads = alone.gradients(&BackwardOptions::default());
        assert_arrays_close(
            "dx",
            &grads.dx.slice(s![b..=b, ..len, ..]),
            &alone_grads.dx,
            Tolerance::LargerOrOne(1e-13),
        );
        assert_arrays_close(
            "dh0",
            &grads.dh0.slice(s![b..=b, ..]),
            &alone_grads.dh0,
            Tolerance::LargerOrOne(1e-13),
        );
        assert_arrays_close(
            "dc0",
            &grads.dc0.slice(s![b..=b, ..]),
            &alone_grads.dc0,
            Tolerance::LargerOrOne(1e-13),
        );
        for ((_, mut sum), (_, g)) in summed_params
            .tensors_mut()
            .into_iter()
            .zip(alone_grads.params.tensors())
        {
            sum += &g;
        }
    }
    for ((name, sum), (_, batched)) in summed_params
        .tensors()
        .into_iter()
        .zip(grads.params.tensors())
    {
        assert_arrays_close(name, &sum, &batched, Tolerance::LargerOrOne(1e-12));
    }
}

#[test]
fn absent_lengths_and_states_mean_full_lengths_and_zero_states() {
    let problem =
        Problem::new(&Case::new(LstmVariant::Vanilla, true, [2, 3, 2, 3]).lengths(&[3, 3]));
    let explicit = forward(&problem.lstm, &problem.batch());
    let implicit = forward(&problem.lstm, &SequenceBatch::new(problem.x.view()));
    assert_eq!(explicit.y, implicit.y);
    assert_eq!(explicit.h_n, implicit.h_n);
    assert_eq!(explicit.c_n, implicit.c_n);
}

/// A problem whose δy and δc grow well beyond 1 so that clipping has work to do.
fn large_error_problem() -> Problem {
    let mut problem =
        Problem::new(&Case::new(LstmVariant::Vanilla, true, [2, 8, 2, 4]).lengths(&[8, 5]));
    problem.w *= 20.0;
    problem.v *= 20.0;
    problem.u *= 20.0;
    problem.lstm.params.weight_hh *= 4.0;
    problem
}

#[test]
fn recurrent_clip_with_a_huge_bound_changes_nothing() {
    let problem = large_error_problem();
    let plain = problem.gradients(&BackwardOptions::default());
    let clipped = problem.gradients(&BackwardOptions {
        recurrent_clip: Some(1e12),
    });
    assert_eq!(plain.dx, clipped.dx);
    assert_eq!(plain.dh0, clipped.dh0);
    assert_eq!(plain.dc0, clipped.dc0);
    assert_eq!(plain.params, clipped.params);
    assert_eq!(plain.step_grad_norms, clipped.step_grad_norms);
}

#[test]
fn recurrent_clip_with_a_small_bound_bounds_every_step() {
    let problem = large_error_problem();
    let (batch, hidden) = problem.v.dim();
    let bound = 0.05;
    let plain = problem.gradients(&BackwardOptions::default());
    let clipped = problem.gradients(&BackwardOptions {
        recurrent_clip: Some(bound),
    });
    // Every element of δc(k) lies in [−v, v], so the norm over the batch is at most v·√(batch·H).
    let largest = bound * ((batch * hidden) as f64).sqrt();
    assert!(
        plain.step_grad_norms.iter().any(|&n| n > largest),
        "the unclipped problem must need clipping"
    );
    for (k, &norm) in clipped.step_grad_norms.iter().enumerate() {
        assert!(
            norm <= largest * (1.0 + 1e-12),
            "step {k}: ‖δc‖ = {norm} > {largest}"
        );
    }
    assert_ne!(plain.params.weight_hh, clipped.params.weight_hh);
    assert_ne!(plain.dx, clipped.dx);
    let all_finite = clipped
        .dx
        .iter()
        .chain(&clipped.dh0)
        .chain(&clipped.dc0)
        .all(|v| v.is_finite());
    assert!(
        all_finite
            && clipped
                .params
                .tensors()
                .iter()
                .all(|(_, t)| t.iter().all(|v| v.is_finite()))
    );
}

/// With one step and no peepholes, |δc| = |δy · o · tanh'(c)| < |δy|, so clamping an incoming error whose
/// every element exceeds v gives exactly the gradients of the unclipped error v·sign. The same holds for
/// ∂J/∂c_n when δy = 0. This pins down that both δy and δc are clamped, elementwise.
#[test]
fn recurrent_clip_clamps_dy_and_dc_elementwise() {
    let bound = 0.3;
    let problem =
        Problem::new(&Case::new(LstmVariant::Vanilla, false, [2, 1, 3, 4]).initial_state());
    let (_, cache) = problem.lstm.forward(&problem.batch()).expect("valid");
    let large = |a: &Array2<f64>| a.mapv(|v| 100.0 * v.signum() * (0.5 + v.abs()));
    let at_bound = |a: &Array2<f64>| a.mapv(|v| bound * v.signum());
    let clip = BackwardOptions {
        recurrent_clip: Some(bound),
    };
    let zero_dy = Array3::zeros(problem.w.raw_dim());
    let dy_large = large(&problem.w.slice(s![.., 0, ..]).to_owned()).insert_axis(Axis(1));
    let dy_at_bound = at_bound(&problem.w.slice(s![.., 0, ..]).to_owned()).insert_axis(Axis(1));
    let (dc_large, dc_at_bound) = (large(&problem.u), at_bound(&problem.u));
    let run = |dy: &Array3<f64>, dc_n: Option<&Array2<f64>>, options: &BackwardOptions<f64>| {
        let g = problem
            .lstm
            .backward(&cache, dy.view(), None, dc_n.map(|d| d.view()), options)
            .expect("valid");
        (g.dx, g.dh0, g.dc0, g.params)
    };
    let plain = BackwardOptions::default();
    assert_eq!(
        run(&dy_large, None, &clip),
        run(&dy_at_bound, None, &plain),
        "δy is clamped"
    );
    assert_eq!(
        run(&zero_dy, Some(&dc_large), &clip),
        run(&zero_dy, Some(&dc_at_bound), &plain),
        "δc is clamped"
    );
    assert_ne!(run(&dy_large, None, &clip), run(&dy_large, None, &plain));
}

/// step_grad_norms[k] is ‖∂J/∂c(k)‖ for the total derivative through c(k) and y(k). Splitting the
/// sequence after step k gives it independently: the tail's dc0 and dh0 are ∂J/∂c(k) and ∂J/∂y(k)
/// through later steps, and with NOG (o = 1) y(k) = tanh(c(k)) adds (w(k) + dh0) ⊙ (1 − tanh²c(k)).
#[test]
fn step_grad_norms_are_the_total_cell_gradient_of_every_step() {
    let problem = Problem::new(&Case::new(LstmVariant::Nog, true, [3, 5, 2, 4]).initial_state());
    let norms = problem
        .gradients(&BackwardOptions::default())
        .step_grad_norms;
    let time = problem.x.dim().1;
    assert_eq!(norms.len(), time);
    for k in 0..time {
        let head = Problem {
            x: problem.x.slice(s![.., ..=k, ..]).to_owned(),
            w: problem.w.slice(s![.., ..=k, ..]).to_owned(),
            ..problem.clone()
        };
        let head_out = forward(&head.lstm, &head.batch());
        let c_k = head_out.c_n.expect("c_n");
        let (d_y_later, d_c_later) = if k + 1 == time {
            (problem.v.clone(), problem.u.clone())
        } else {
            let tail = Problem {
                x: problem.x.slice(s![.., k + 1.., ..]).to_owned(),
                w: problem.w.slice(s![.., k + 1.., ..]).to_owned(),
                h0: head_out.h_n,
                c0: c_k.clone(),
                ..problem.clone()
            };
            let g = tail.gradients(&BackwardOptions::default());
            (g.dh0, g.dc0)
        };
        let dy_k = &problem.w.slice(s![.., k, ..]) + &d_y_later;
        let dc_k = d_c_later + dy_k * c_k.mapv(|c| 1.0 - c.tanh().powi(2));
        let expected = dc_k.mapv(|v| v * v).sum().sqrt();
        assert!(
            (norms[k] - expected).abs() <= 1e-12 * expected.max(1.0),
            "step {k}: {} vs {expected}",
            norms[k]
        );
    }
}

#[test]
fn f32_agrees_with_f64() {
    for variant in LstmVariant::ALL {
        let problem = Problem::new(
            &Case::new(variant, true, [3, 6, 4, 5])
                .lengths(&[6, 2, 4])
                .initial_state(),
        );
        let single = Lstm::from_params(problem.lstm.config, problem.lstm.params.map(|v| v as f32))
            .expect("same shapes");
        let x = problem.x.mapv(|v| v as f32);
        let (h0, c0) = (problem.h0.mapv(|v| v as f32), problem.c0.mapv(|v| v as f32));
        let batch = SequenceBatch {
            x: x.view(),
            lengths: problem.lengths.as_deref(),
            h0: Some(h0.view()),
            c0: Some(c0.view()),
        };
        let (out32, cache32) = single.forward(&batch).expect("valid");
        let out64 = forward(&problem.lstm, &problem.batch());
        let widen = |a: &Array3<f32>| a.mapv(f64::from);
        assert_arrays_close(
            "y",
            &widen(&out32.y),
            &out64.y,
            Tolerance::LargerOrOne(1e-5),
        );
        assert_arrays_close(
            "h_n",
            &out32.h_n.mapv(f64::from),
            &out64.h_n,
            Tolerance::LargerOrOne(1e-5),
        );

        let w = problem.w.mapv(|v| v as f32);
        let grads32 = single
            .backward(&cache32, w.view(), None, None, &BackwardOptions::default())
            .expect("valid");
        let (_, cache64) = problem.lstm.forward(&problem.batch()).expect("valid");
        let grads64 = problem
            .lstm
            .backward(
                &cache64,
                problem.w.view(),
                None,
                None,
                &BackwardOptions::default(),
            )
            .expect("valid");
        assert_arrays_close(
            "dx",
            &widen(&grads32.dx),
            &grads64.dx,
            Tolerance::LargerOrOne(1e-4),
        );
        assert_arrays_close(
            "weight_hh",
            &grads32.params.weight_hh.mapv(f64::from),
            &grads64.params.weight_hh,
            Tolerance::LargerOrOne(1e-4),
        );
    }
}

#[test]
fn initialisation_follows_pytorch_and_the_config() {
    let hidden = 4;
    let bound = 1.0 / (hidden as f64).sqrt();
    let forget_bias = 1.0;
    for variant in LstmVariant::ALL {
        for peepholes in [true, false] {
            let config = LstmConfig::new(3, hidden)
                .with_variant(variant)
                .with_peepholes(peepholes);
            let lstm = Lstm::<f64>::new(config, forget_bias, &mut ChaCha8Rng::seed_from_u64(1))
                .expect("valid");
            let again = Lstm::<f64>::new(config, forget_bias, &mut ChaCha8Rng::seed_from_u64(1))
                .expect("valid");
            assert_eq!(lstm.params, again.params, "same seed, same parameters");

            let names: Vec<_> = lstm.params.tensors().iter().map(|(n, _)| *n).collect();
            let mut expected = vec!["weight_ih", "weight_hh", "bias_ih", "bias_hh"];
            if peepholes && variant != LstmVariant::Np {
                expected.extend(["peephole_i", "peephole_f", "peephole_o"]);
            }
            if variant == LstmVariant::Fgr {
                expected.push("weight_gg");
            }
            assert_eq!(names, expected, "{variant:?}, peepholes {peepholes}");

            for (name, tensor) in lstm.params.tensors() {
                for (index, &value) in tensor.iter().enumerate() {
                    let shift = if name == "bias_ih" && (hidden..2 * hidden).contains(&index) {
                        forget_bias
                    } else {
                        0.0
                    };
                    assert!(
                        (value - shift).abs() <= bound,
                        "{name}[{index}] = {value} outside U(±{bound}) + {shift}"
                    );
                }
            }
        }
    }
    let fgr = Lstm::<f64>::new(
        LstmConfig::new(3, hidden).with_variant(LstmVariant::Fgr),
        0.0,
        &mut ChaCha8Rng::seed_from_u64(1),
    );
    assert_eq!(
        fgr.expect("valid").params.weight_gg.dim(),
        (3 * hidden, 3 * hidden)
    );
}

fn expect_shape_error<T: std::fmt::Debug>(result: Result<T, Error>, tensor: &str) {
    match result {
        Err(Error::Shape { name, .. }) => assert_eq!(name, tensor),
        other => panic!("expected Error::Shape for {tensor}, got {other:?}"),
    }
}

fn expect_invalid<T: std::fmt::Debug>(result: Result<T, Error>, argument: &str) {
    match result {
        Err(Error::Invalid { name, .. }) => assert_eq!(name, argument),
        other => panic!("expected Error::Invalid for {argument}, got {other:?}"),
    }
}

#[test]
fn bad_inputs_give_typed_errors() {
    let problem =
        Problem::new(&Case::new(LstmVariant::Vanilla, true, [2, 3, 2, 4]).initial_state());
    let lstm = &problem.lstm;
    let wrong_x = Array3::<f64>::zeros((2, 3, 5));
    expect_shape_error(lstm.forward(&SequenceBatch::new(wrong_x.view())), "x");
    let empty_time = Array3::<f64>::zeros((2, 0, 2));
    expect_shape_error(lstm.forward(&SequenceBatch::new(empty_time.view())), "x");

    for (lengths, index, value) in [([3, 0], 1, 0), ([4, 3], 0, 4)] {
        let batch = SequenceBatch {
            lengths: Some(&lengths),
            ..problem.batch()
        };
        assert_eq!(
            lstm.forward(&batch).unwrap_err(),
            Error::Length {
                index,
                value,
                max: 3
            }
        );
    }
    expect_shape_error(
        lstm.forward(&SequenceBatch {
            lengths: Some(&[3]),
            ..problem.batch()
        }),
        "lengths",
    );

    let wrong_state = Array2::<f64>::zeros((2, 3));
    expect_shape_error(
        lstm.forward(&SequenceBatch {
            h0: Some(wrong_state.view()),
            ..problem.batch()
        }),
        "h0",
    );
    expect_shape_error(
        lstm.forward(&SequenceBatch {
            c0: Some(wrong_state.view()),
            ..problem.batch()
        }),
        "c0",
    );

    let (_, cache) = lstm.forward(&problem.batch()).expect("valid");
    let options = BackwardOptions::default();
    let wrong_dy = Array3::<f64>::zeros((2, 2, 4));
    expect_shape_error(
        lstm.backward(&cache, wrong_dy.view(), None, None, &options),
        "dy",
    );
    let dy = problem.w.view();
    expect_shape_error(
        lstm.backward(&cache, dy, Some(wrong_state.view()), None, &options),
        "dhN",
    );
    expect_shape_error(
        lstm.backward(&cache, dy, None, Some(wrong_state.view()), &options),
        "dcN",
    );
    common::assert_bad_recurrent_clips_rejected(|options| {
        lstm.backward(&cache, dy, None, None, options)
    });

    let wider = Problem::new(&Case::new(LstmVariant::Vanilla, true, [2, 3, 2, 5]));
    let (_, wider_cache) = wider.lstm.forward(&wider.batch()).expect("valid");
    expect_shape_error(
        lstm.backward(&wider_cache, dy, None, None, &options),
        "cache.gates",
    );
}

#[test]
fn bad_configs_and_parameters_give_typed_errors() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    expect_invalid(
        Lstm::<f64>::new(LstmConfig::new(3, 0), 1.0, &mut rng),
        "hiddenSize",
    );
    expect_invalid(
        Lstm::<f64>::new(LstmConfig::new(0, 3), 1.0, &mut rng),
        "inputSize",
    );
    expect_invalid(
        Lstm::<f64>::new(LstmConfig::new(3, 3), f64::NAN, &mut rng),
        "forget_bias",
    );

    let config = LstmConfig::new(3, 4);
    let params = Lstm::<f64>::new(config, 1.0, &mut rng)
        .expect("valid")
        .params;
    let mut wrong = params.clone();
    wrong.weight_hh = Array2::zeros((16, 3));
    expect_shape_error(Lstm::from_params(config, wrong), "weight_hh");
    // Peepholes are `[0]` under NP, so a peephole layer's parameters do not fit.
    expect_shape_error(
        Lstm::from_params(config.with_variant(LstmVariant::Np), params.clone()),
        "peephole_i",
    );
    expect_shape_error(
        Lstm::from_params(config.with_variant(LstmVariant::Fgr), params.clone()),
        "weight_gg",
    );

    let mut broken = Lstm::from_params(config, params).expect("valid");
    broken.params.bias_hh = Array1::zeros(5);
    let x = Array3::<f64>::zeros((1, 2, 3));
    expect_shape_error(broken.forward(&SequenceBatch::new(x.view())), "bias_hh");
}
