//! The simple RNN against an independent step-by-step forward and against
//! central finite differences in f64, for every gradient it returns.
//!
//! The loss of every check is J = Σ w_y ⊙ y + Σ w_h ⊙ h_n with random weights,
//! so ∂J/∂y = w_y and ∂J/∂h_n = w_h are fed to `backward`.

use ndarray::{s, Array1, Array2, Array3, ArrayView2};
use odyssey_core::layers::{BackwardOptions, RnnActivation, RnnConfig, SequenceBatch, SimpleRnn};
use odyssey_core::Error;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::common;
use common::recurrent::{check_pytorch_init, Case, Problem};
use common::shape_error_name;

/// ReLU is not differentiable at 0; finite differences need |a(t)| well above EPS.
const RELU_MARGIN: f64 = 1e-3;

fn rnn_problem(case: &Case, activation: RnnActivation, seed: u64) -> Problem<SimpleRnn<f64>> {
    Problem::new(case, seed, |input_size, hidden_size, rng| {
        let config = RnnConfig {
            input_size,
            hidden_size,
            activation,
        };
        SimpleRnn::new(config, rng).unwrap()
    })
}

/// The first seed whose ReLU pre-activations all keep `RELU_MARGIN` away from 0.
fn away_from_relu_kink(case: &Case, activation: RnnActivation) -> Problem<SimpleRnn<f64>> {
    (0..200)
        .map(|seed| rnn_problem(case, activation, seed))
        .find(|p| p.min_abs_preactivation() > RELU_MARGIN)
        .expect("no seed keeps the ReLU pre-activations away from 0")
}

impl Problem<SimpleRnn<f64>> {
    /// a(t) = W_ih x(t) + b_ih + W_hh h(t−1) + b_hh at every valid step, written
    /// out one sequence and one step at a time: `[batch][valid steps]`.
    fn reference_preactivations(&self) -> Vec<Vec<Array1<f64>>> {
        let p = &self.layer.params;
        let hidden = self.layer.config.hidden_size;
        (0..self.x.dim().0)
            .map(|b| {
                let mut h = self
                    .h0
                    .as_ref()
                    .map_or(Array1::zeros(hidden), |h0| h0.row(b).to_owned());
                (0..self.length(b))
                    .map(|t| {
                        let a = p.weight_ih.dot(&self.x.slice(s![b, t, ..]))
                            + &p.bias_ih
                            + p.weight_hh.dot(&h)
                            + &p.bias_hh;
                        h = a.mapv(|v| activate(self.layer.config.activation, v));
                        a
                    })
                    .collect()
            })
            .collect()
    }

    fn min_abs_preactivation(&self) -> f64 {
        self.reference_preactivations()
            .iter()
            .flatten()
            .flat_map(|a| a.iter().map(|v| v.abs()).collect::<Vec<_>>())
            .fold(f64::INFINITY, f64::min)
    }
}

fn activate(activation: RnnActivation, a: f64) -> f64 {
    match activation {
        RnnActivation::Tanh => a.tanh(),
        RnnActivation::Relu => a.max(0.0),
    }
}

#[test]
fn forward_matches_the_step_by_step_equations() {
    for activation in [RnnActivation::Tanh, RnnActivation::Relu] {
        let problem = rnn_problem(&Case::new(5), activation, 7);
        let (out, _) = problem.layer.forward(&problem.batch()).unwrap();
        for (b, steps) in problem.reference_preactivations().iter().enumerate() {
            for (t, a) in steps.iter().enumerate() {
                for (j, &a_j) in a.iter().enumerate() {
                    let expected = activate(activation, a_j);
                    assert!(
                        (out.y[[b, t, j]] - expected).abs() < 1e-12,
                        "{activation:?} y[{b},{t},{j}]"
                    );
                }
            }
        }
    }
}

#[test]
fn tanh_gradients_match_finite_differences() {
    for hidden in [1, 3, 7, 17] {
        rnn_problem(&Case::new(hidden), RnnActivation::Tanh, hidden as u64).check_all_gradients();
    }
}

#[test]
fn relu_gradients_match_finite_differences() {
    for hidden in [1, 3, 7, 17] {
        away_from_relu_kink(&Case::new(hidden), RnnActivation::Relu).check_all_gradients();
    }
}

#[test]
fn single_step_single_sequence_gradients_match() {
    for activation in [RnnActivation::Tanh, RnnActivation::Relu] {
        let case = Case {
            batch: 1,
            time: 1,
            lengths: None,
            ..Case::new(3)
        };
        away_from_relu_kink(&case, activation).check_all_gradients();
    }
}

#[test]
fn gradients_without_initial_state_or_lengths_match() {
    let case = Case {
        lengths: None,
        with_h0: false,
        ..Case::new(4)
    };
    rnn_problem(&case, RnnActivation::Tanh, 3).check_all_gradients();
}

#[test]
fn missing_h0_means_zeros() {
    let mut problem = rnn_problem(&Case::new(3), RnnActivation::Tanh, 1);
    problem.h0 = None;
    let (without, _) = problem.layer.forward(&problem.batch()).unwrap();
    problem.h0 = Some(Array2::zeros((3, 3)));
    let (with_zeros, _) = problem.layer.forward(&problem.batch()).unwrap();
    assert_eq!(without.y, with_zeros.y);
    assert_eq!(without.h_n, with_zeros.h_n);
    assert!(without.c_n.is_none());
}

#[test]
fn padded_steps_freeze_the_state_and_get_no_gradient() {
    let mut problem = rnn_problem(&Case::new(3), RnnActivation::Tanh, 5);
    let (out, _) = problem.layer.forward(&problem.batch()).unwrap();
    let grads = problem.gradients(&BackwardOptions::default());
    for b in 0..problem.x.dim().0 {
        let length = problem.length(b);
        assert_eq!(
            out.h_n.row(b),
            out.y.slice(s![b, length - 1, ..]),
            "h_n of sequence {b}"
        );
        assert!(
            out.y.slice(s![b, length.., ..]).iter().all(|&v| v == 0.0),
            "y padding of {b}"
        );
        assert!(
            grads
                .dx
                .slice(s![b, length.., ..])
                .iter()
                .all(|&v| v == 0.0),
            "dx padding of {b}"
        );
    }

    // Garbage in the padding changes nothing.
    problem.x.slice_mut(s![1, 1.., ..]).fill(1e3);
    let (garbage, _) = problem.layer.forward(&problem.batch()).unwrap();
    assert_eq!(garbage.y, out.y);
    assert_eq!(garbage.h_n, out.h_n);
}

/// ∂J/∂h(k) = Δ(k) + ∂J'/∂h0 of the same layer run on steps k+1.. from h0 = h(k).
#[test]
fn step_grad_norms_are_the_norms_of_dj_dh() {
    let case = Case {
        lengths: None,
        ..Case::new(4)
    };
    rnn_problem(&case, RnnActivation::Tanh, 11).check_step_grad_norms();
}

#[test]
fn a_loose_clip_changes_nothing() {
    rnn_problem(&Case::new(3), RnnActivation::Tanh, 2).check_loose_clip_changes_nothing();
}

/// With one step, δh(0) = clamp(Δ(0) + dh_n), so dh0 = W_hhᵀ (δh ⊙ (1 − h²)) can be written down.
#[test]
fn the_clip_clamps_the_total_error_of_each_step() {
    let clip = 0.3;
    let case = Case {
        time: 1,
        lengths: None,
        ..Case::new(3)
    };
    let mut problem = rnn_problem(&case, RnnActivation::Tanh, 4);
    problem.w_y *= 2.0; // most totals exceed the clip
    let grads = problem.gradients(&BackwardOptions {
        recurrent_clip: Some(clip),
    });
    let (out, _) = problem.layer.forward(&problem.batch()).unwrap();
    let total = &problem.w_y.slice(s![.., 0, ..]) + &problem.w_h;
    let delta_h = total.mapv(|v: f64| v.clamp(-clip, clip));
    assert!(
        total.iter().any(|v| v.abs() > clip),
        "the test must actually clip"
    );
    let delta_a: Array2<f64> = &delta_h * &out.h_n.mapv(|h| 1.0 - h * h);
    let expected_dh0 = delta_a.dot(&problem.layer.params.weight_hh);
    let max_error = (&grads.dh0 - &expected_dh0)
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(max_error < 1e-12, "dh0 off by {max_error}");
    let expected_norm = delta_h.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((grads.step_grad_norms[0] - expected_norm).abs() < 1e-12);
}

#[test]
fn clipped_errors_are_bounded_at_every_step() {
    let mut problem = rnn_problem(&Case::new(7), RnnActivation::Tanh, 6);
    problem.w_y *= 10.0;
    problem.check_clip_bounds_every_step(0.05);
}

#[test]
fn initialisation_is_pytorchs_uniform_and_seeded() {
    let config = RnnConfig {
        input_size: 5,
        hidden_size: 16,
        activation: RnnActivation::Tanh,
    };
    check_pytorch_init(
        |rng| SimpleRnn::<f32>::new(config, rng).unwrap(),
        [
            ("weight_ih", vec![16, 5]),
            ("weight_hh", vec![16, 16]),
            ("bias_ih", vec![16]),
            ("bias_hh", vec![16]),
        ],
    );
}

fn layer() -> SimpleRnn<f64> {
    rnn_problem(&Case::new(3), RnnActivation::Tanh, 0).layer
}

#[test]
fn zero_sizes_are_invalid() {
    for (input_size, hidden_size, name) in [(0, 3, "inputSize"), (3, 0, "hiddenSize")] {
        let config = RnnConfig {
            input_size,
            hidden_size,
            activation: RnnActivation::Tanh,
        };
        let err = SimpleRnn::<f64>::new(config, &mut ChaCha8Rng::seed_from_u64(0)).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { name: ref n, .. } if n == name),
            "{err}"
        );
    }
}

#[test]
fn forward_rejects_bad_shapes_and_lengths() {
    let rnn = layer();
    let wrong_features = Array3::<f64>::zeros((2, 4, 2));
    let err = rnn
        .forward(&SequenceBatch::new(wrong_features.view()))
        .unwrap_err();
    assert_eq!(shape_error_name(err), "x");

    let x = Array3::<f64>::zeros((2, 4, 3));
    for (lengths, expected) in [
        (
            vec![4, 0],
            Error::Length {
                index: 1,
                value: 0,
                max: 4,
            },
        ),
        (
            vec![5, 1],
            Error::Length {
                index: 0,
                value: 5,
                max: 4,
            },
        ),
    ] {
        let batch = SequenceBatch {
            lengths: Some(&lengths),
            ..SequenceBatch::new(x.view())
        };
        assert_eq!(rnn.forward(&batch).unwrap_err(), expected);
    }
    let too_few = [4];
    let batch = SequenceBatch {
        lengths: Some(&too_few),
        ..SequenceBatch::new(x.view())
    };
    assert_eq!(
        shape_error_name(rnn.forward(&batch).unwrap_err()),
        "lengths"
    );

    let h0 = Array2::<f64>::zeros((3, 3));
    let batch = SequenceBatch {
        h0: Some(h0.view()),
        ..SequenceBatch::new(x.view())
    };
    assert_eq!(shape_error_name(rnn.forward(&batch).unwrap_err()), "h0");
}

#[test]
fn backward_rejects_bad_shapes_and_clips() {
    let rnn = layer();
    let x = Array3::<f64>::zeros((2, 4, 3));
    let (_, cache) = rnn.forward(&SequenceBatch::new(x.view())).unwrap();
    let dy = Array3::<f64>::zeros((2, 4, 3));
    let none = BackwardOptions::default();

    let short_dy = Array3::<f64>::zeros((2, 3, 3));
    let err = rnn
        .backward(&cache, short_dy.view(), None, &none)
        .unwrap_err();
    assert_eq!(shape_error_name(err), "dy");

    let dh_n = Array2::<f64>::zeros((2, 4));
    let dh_n_view: ArrayView2<'_, f64> = dh_n.view();
    let err = rnn
        .backward(&cache, dy.view(), Some(dh_n_view), &none)
        .unwrap_err();
    assert_eq!(shape_error_name(err), "dhN");

    common::assert_bad_recurrent_clips_rejected(|options| {
        rnn.backward(&cache, dy.view(), None, options)
    });
}

#[test]
fn parameters_that_do_not_fit_the_config_are_rejected() {
    let rnn = layer();
    let mut wrong = rnn.params.clone();
    wrong.weight_hh = Array2::zeros((3, 2));
    let err = SimpleRnn::from_params(rnn.config, wrong.clone()).unwrap_err();
    assert_eq!(shape_error_name(err), "weight_hh");
    assert!(SimpleRnn::from_params(rnn.config, rnn.params.clone()).is_ok());

    // The fields are public: a replaced tensor is caught before any GEMM.
    let x = Array3::<f64>::zeros((1, 2, 3));
    let mut replaced = layer();
    replaced.params = wrong;
    let err = replaced.forward(&SequenceBatch::new(x.view())).unwrap_err();
    assert_eq!(shape_error_name(err), "weight_hh");
}

#[test]
fn a_cache_from_a_layer_of_other_sizes_is_rejected() {
    let other = SimpleRnn::<f64>::new(
        RnnConfig {
            input_size: 3,
            hidden_size: 5,
            activation: RnnActivation::Tanh,
        },
        &mut ChaCha8Rng::seed_from_u64(0),
    )
    .unwrap();
    let x = Array3::<f64>::zeros((1, 2, 3));
    let (_, cache) = other.forward(&SequenceBatch::new(x.view())).unwrap();
    let dy = Array3::<f64>::zeros((1, 2, 3));
    let err = layer()
        .backward(&cache, dy.view(), None, &BackwardOptions::default())
        .unwrap_err();
    assert_eq!(shape_error_name(err), "cache.states");
}

/// An initial state laid out column-major (as one cut out of another node's value can be)
/// gives what the same values in standard layout give (the GRU once misread one).
#[test]
fn a_column_major_initial_state_is_read_by_value() {
    let problem = rnn_problem(&Case::new(5), RnnActivation::Tanh, 21);
    let h0 = problem.h0.clone().unwrap();
    let column_major = h0.t().as_standard_layout().into_owned().reversed_axes();
    assert!(!column_major.is_standard_layout() && column_major == h0);
    let batch = SequenceBatch {
        h0: Some(column_major.view()),
        ..problem.batch()
    };
    let (out, _) = problem.layer.forward(&batch).unwrap();
    assert_eq!(out.y, problem.layer.forward(&problem.batch()).unwrap().0.y);
}
