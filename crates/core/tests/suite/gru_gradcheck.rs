//! The GRU against its equations written out one sequence and one step at a
//! time, and against central finite differences in f64, for every gradient it
//! returns; the threaded batch slices and the f32 SIMD path against the plain ones.
//!
//! The loss of every check is J = Σ w_y ⊙ y + Σ w_h ⊙ h_n with random weights,
//! so ∂J/∂y = w_y and ∂J/∂h_n = w_h are fed to `backward`.

use ndarray::{s, Array1, Array2, Array3, ArrayD};
use odyssey_core::layers::{BackwardOptions, Gru, GruConfig, SequenceBatch};
use odyssey_core::{Error, ParamSet};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::common;
use common::recurrent::{check_pytorch_init, Case, Problem};
use common::{assert_close, shape_error_name};

fn gru_problem(case: &Case, seed: u64) -> Problem<Gru<f64>> {
    Problem::new(case, seed, |input_size, hidden_size, rng| {
        let config = GruConfig {
            input_size,
            hidden_size,
        };
        Gru::new(config, rng).unwrap()
    })
}

impl Problem<Gru<f64>> {
    /// h(t) of every valid step from the module doc's equations: `[batch][valid steps]`.
    fn reference_states(&self) -> Vec<Vec<Array1<f64>>> {
        let p = &self.layer.params;
        let h_size = self.layer.config.hidden_size;
        let block = |k: usize| k * h_size..(k + 1) * h_size;
        let sigmoid = |a: Array1<f64>| a.mapv(|v| 1.0 / (1.0 + (-v).exp()));
        (0..self.x.dim().0)
            .map(|b| {
                let mut h = self
                    .h0
                    .as_ref()
                    .map_or(Array1::zeros(h_size), |h0| h0.row(b).to_owned());
                (0..self.length(b))
                    .map(|t| {
                        let x = self.x.slice(s![b, t, ..]);
                        let input = |k: usize| {
                            p.weight_ih.slice(s![block(k), ..]).dot(&x)
                                + p.bias_ih.slice(s![block(k)])
                        };
                        let hidden = |k: usize, h: &Array1<f64>| {
                            p.weight_hh.slice(s![block(k), ..]).dot(h)
                                + p.bias_hh.slice(s![block(k)])
                        };
                        let r = sigmoid(input(0) + hidden(0, &h));
                        let z = sigmoid(input(1) + hidden(1, &h));
                        let n = (input(2) + &r * &hidden(2, &h)).mapv(f64::tanh);
                        h = (1.0 - &z) * &n + &z * &h;
                        h.clone()
                    })
                    .collect()
            })
            .collect()
    }
}

#[test]
fn forward_matches_the_step_by_step_equations() {
    for hidden in [1, 5, 11] {
        let problem = gru_problem(&Case::new(hidden), 7);
        let (out, _) = problem.layer.forward(&problem.batch()).unwrap();
        for (b, steps) in problem.reference_states().iter().enumerate() {
            for (t, h) in steps.iter().enumerate() {
                let got: Vec<f64> = out.y.slice(s![b, t, ..]).to_vec();
                assert_close(&format!("y[{b}, {t}]"), got, h.as_slice().unwrap(), 1e-13);
            }
            let last = steps.last().unwrap();
            assert_close(
                &format!("h_n[{b}]"),
                out.h_n.row(b).to_vec(),
                last.as_slice().unwrap(),
                1e-13,
            );
        }
        assert!(out.c_n.is_none());
    }
}

#[test]
fn gradients_match_finite_differences() {
    for hidden in [1, 3, 8, 17] {
        gru_problem(&Case::new(hidden), hidden as u64).check_all_gradients();
    }
}

#[test]
fn single_step_single_sequence_gradients_match() {
    let case = Case {
        batch: 1,
        time: 1,
        lengths: None,
        ..Case::new(3)
    };
    gru_problem(&case, 2).check_all_gradients();
}

#[test]
fn gradients_without_initial_state_or_lengths_match() {
    let case = Case {
        lengths: None,
        with_h0: false,
        ..Case::new(4)
    };
    gru_problem(&case, 3).check_all_gradients();
}

/// b_hn is inside the reset product, so the two biases' n blocks get different
/// gradients while their r and z blocks agree (a check that the layout is PyTorch's).
#[test]
fn the_biases_differ_only_in_the_n_block() {
    let hidden = 4;
    let problem = gru_problem(&Case::new(hidden), 8);
    let grads = problem.gradients(&BackwardOptions::default());
    let ih = problem.param_grad(&grads, "bias_ih");
    let hh = problem.param_grad(&grads, "bias_hh");
    assert_eq!(ih.slice(s![..2 * hidden]), hh.slice(s![..2 * hidden]));
    assert!(ih
        .slice(s![2 * hidden..])
        .iter()
        .zip(hh.slice(s![2 * hidden..]))
        .all(|(a, b)| (a - b).abs() > 1e-9));
}

#[test]
fn padded_steps_freeze_the_state_and_get_no_gradient() {
    let mut problem = gru_problem(&Case::new(3), 5);
    let (out, _) = problem.layer.forward(&problem.batch()).unwrap();
    let grads = problem.gradients(&BackwardOptions::default());
    for b in 0..problem.x.dim().0 {
        let length = problem.length(b);
        assert_eq!(out.h_n.row(b), out.y.slice(s![b, length - 1, ..]));
        assert!(out.y.slice(s![b, length.., ..]).iter().all(|&v| v == 0.0));
        assert!(grads
            .dx
            .slice(s![b, length.., ..])
            .iter()
            .all(|&v| v == 0.0));
    }
    // Garbage in the padding changes nothing.
    problem.x.slice_mut(s![1, 1.., ..]).fill(1e3);
    let (garbage, _) = problem.layer.forward(&problem.batch()).unwrap();
    assert_eq!(garbage.y, out.y);
    assert_eq!(garbage.h_n, out.h_n);
    assert_eq!(
        problem.gradients(&BackwardOptions::default()).params,
        grads.params
    );
}

/// A batch large enough to be split over threads gives, row for row, what each
/// sequence gives alone (one slice, one thread).
#[test]
fn threaded_batch_slices_agree_with_sequences_run_alone() {
    let case = Case {
        batch: 64,
        time: 5,
        input: 6,
        hidden: 40,
        lengths: Some((0..64).map(|b| 1 + b % 5).collect()),
        with_h0: true,
    };
    let problem = gru_problem(&case, 12);
    let (out, _) = problem.layer.forward(&problem.batch()).unwrap();
    let grads = problem.gradients(&BackwardOptions::default());
    let mut weight_hh = ArrayD::zeros(problem.param_grad(&grads, "weight_hh").raw_dim());
    for b in [0, 17, 40, 63] {
        let alone = Problem {
            layer: problem.layer.clone(),
            x: problem.x.slice(s![b..b + 1, .., ..]).to_owned(),
            h0: problem
                .h0
                .as_ref()
                .map(|h| h.slice(s![b..b + 1, ..]).to_owned()),
            lengths: Some(vec![problem.length(b)]),
            w_y: problem.w_y.slice(s![b..b + 1, .., ..]).to_owned(),
            w_h: problem.w_h.slice(s![b..b + 1, ..]).to_owned(),
        };
        let (single, _) = alone.layer.forward(&alone.batch()).unwrap();
        let single_grads = alone.gradients(&BackwardOptions::default());
        let row = |a: &Array3<f64>| a.slice(s![b, .., ..]).iter().copied().collect::<Vec<_>>();
        assert_close("y", row(&out.y), single.y.as_slice().unwrap(), 1e-12);
        assert_close(
            "dx",
            row(&grads.dx),
            single_grads.dx.as_slice().unwrap(),
            1e-12,
        );
        assert_close(
            "dh0",
            grads.dh0.row(b).to_vec(),
            single_grads.dh0.as_slice().unwrap(),
            1e-12,
        );
        weight_hh += alone.param_grad(&single_grads, "weight_hh");
    }
    assert!(weight_hh.iter().any(|&v| v != 0.0));
}

/// ∂J/∂h(k) = Δ(k) + ∂J'/∂h0 of the same layer run on steps k+1.. from h0 = h(k).
#[test]
fn step_grad_norms_are_the_norms_of_dj_dh() {
    let case = Case {
        lengths: None,
        ..Case::new(4)
    };
    gru_problem(&case, 11).check_step_grad_norms();
}

#[test]
fn a_loose_clip_changes_nothing() {
    gru_problem(&Case::new(3), 2).check_loose_clip_changes_nothing();
}

/// With one step from h0 = 0, δh = clamp(Δ(0) + dh_n) and dh0 = δh ⊙ z + δa_h W_hh
/// can be written down from the forward's gates.
#[test]
fn the_clip_clamps_the_total_error_of_each_step() {
    let clip = 0.3;
    let case = Case {
        time: 1,
        lengths: None,
        with_h0: false,
        ..Case::new(3)
    };
    let mut problem = gru_problem(&case, 4);
    problem.w_y *= 2.0;
    let grads = problem.gradients(&BackwardOptions {
        recurrent_clip: Some(clip),
    });
    let total = &problem.w_y.slice(s![.., 0, ..]) + &problem.w_h;
    assert!(
        total.iter().any(|v| v.abs() > clip),
        "the test must actually clip"
    );
    let delta_h = total.mapv(|v: f64| v.clamp(-clip, clip));
    let expected_norm = delta_h.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((grads.step_grad_norms[0] - expected_norm).abs() < 1e-12);
    // The clipped error, fed in as if unclipped, must give the same gradients.
    let mut unclipped = gru_problem(&case, 4);
    unclipped.w_y.slice_mut(s![.., 0, ..]).assign(&delta_h);
    unclipped.w_h.fill(0.0);
    let reference = unclipped.gradients(&BackwardOptions::default());
    assert_eq!(grads.params, reference.params);
    assert_eq!(grads.dh0, reference.dh0);
}

#[test]
fn clipped_errors_are_bounded_at_every_step() {
    let mut problem = gru_problem(&Case::new(7), 6);
    problem.w_y *= 10.0;
    problem.check_clip_bounds_every_step(0.05);
}

/// The f32 path (eight lanes at a time where the CPU has AVX2, then a scalar
/// tail: H = 19) agrees with f64 on the same weights and data.
#[test]
fn f32_agrees_with_f64() {
    let problem = gru_problem(
        &Case {
            batch: 5,
            lengths: Some(vec![4, 1, 3, 4, 2]),
            ..Case::new(19)
        },
        9,
    );
    let to32 = |a: &Array3<f64>| a.mapv(|v| v as f32);
    let params = problem.layer.params.clone();
    let gru32 = Gru::<f32>::from_params(
        problem.layer.config,
        odyssey_core::layers::GruParams {
            weight_ih: params.weight_ih.mapv(|v| v as f32),
            weight_hh: params.weight_hh.mapv(|v| v as f32),
            bias_ih: params.bias_ih.mapv(|v| v as f32),
            bias_hh: params.bias_hh.mapv(|v| v as f32),
        },
    )
    .unwrap();
    let (x32, h032) = (
        to32(&problem.x),
        problem.h0.as_ref().unwrap().mapv(|v| v as f32),
    );
    let batch32 = SequenceBatch {
        x: x32.view(),
        lengths: problem.lengths.as_deref(),
        h0: Some(h032.view()),
        c0: None,
    };
    let (out32, cache32) = gru32.forward(&batch32).unwrap();
    let w_h32 = problem.w_h.mapv(|v| v as f32);
    let grads32 = gru32
        .backward(
            &cache32,
            to32(&problem.w_y).view(),
            Some(w_h32.view()),
            &BackwardOptions::default(),
        )
        .unwrap();
    let (out, _) = problem.layer.forward(&problem.batch()).unwrap();
    let grads = problem.gradients(&BackwardOptions::default());
    let widen = |a: ndarray::ArrayViewD<'_, f32>| a.iter().map(|&v| v as f64).collect::<Vec<_>>();
    assert_close(
        "y",
        widen(out32.y.view().into_dyn()),
        &out.y.iter().copied().collect::<Vec<_>>(),
        1e-5,
    );
    assert_close(
        "dx",
        widen(grads32.dx.view().into_dyn()),
        &grads.dx.iter().copied().collect::<Vec<_>>(),
        1e-4,
    );
    for ((name, g32), g64) in grads32.params.tensors().into_iter().zip(&grads.params) {
        assert_close(
            name,
            widen(g32),
            &g64.iter().copied().collect::<Vec<_>>(),
            1e-4,
        );
    }
}

#[test]
fn initialisation_is_pytorchs_uniform_and_seeded() {
    let config = GruConfig {
        input_size: 5,
        hidden_size: 16,
    };
    check_pytorch_init(
        |rng| Gru::<f32>::new(config, rng).unwrap(),
        [
            ("weight_ih", vec![48, 5]),
            ("weight_hh", vec![48, 16]),
            ("bias_ih", vec![48]),
            ("bias_hh", vec![48]),
        ],
    );
}

#[test]
fn bad_sizes_shapes_lengths_and_clips_give_typed_errors() {
    for (input_size, hidden_size, name) in [(0, 3, "inputSize"), (3, 0, "hiddenSize")] {
        let config = GruConfig {
            input_size,
            hidden_size,
        };
        let err = Gru::<f64>::new(config, &mut ChaCha8Rng::seed_from_u64(0)).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { name: ref n, .. } if n == name),
            "{err}"
        );
    }
    let gru = gru_problem(&Case::new(3), 0).layer;
    let wrong_features = Array3::<f64>::zeros((2, 4, 2));
    assert_eq!(
        shape_error_name(
            gru.forward(&SequenceBatch::new(wrong_features.view()))
                .unwrap_err()
        ),
        "x"
    );
    let x = Array3::<f64>::zeros((2, 4, 3));
    let lengths = [4, 5];
    let batch = SequenceBatch {
        lengths: Some(&lengths),
        ..SequenceBatch::new(x.view())
    };
    assert_eq!(
        gru.forward(&batch).unwrap_err(),
        Error::Length {
            index: 1,
            value: 5,
            max: 4
        }
    );
    let h0 = Array2::<f64>::zeros((3, 3));
    let batch = SequenceBatch {
        h0: Some(h0.view()),
        ..SequenceBatch::new(x.view())
    };
    assert_eq!(shape_error_name(gru.forward(&batch).unwrap_err()), "h0");

    let (_, cache) = gru.forward(&SequenceBatch::new(x.view())).unwrap();
    let none = BackwardOptions::default();
    let short_dy = Array3::<f64>::zeros((2, 3, 3));
    assert_eq!(
        shape_error_name(
            gru.backward(&cache, short_dy.view(), None, &none)
                .unwrap_err()
        ),
        "dy"
    );
    let dy = Array3::<f64>::zeros((2, 4, 3));
    let dh_n = Array2::<f64>::zeros((2, 4));
    assert_eq!(
        shape_error_name(
            gru.backward(&cache, dy.view(), Some(dh_n.view()), &none)
                .unwrap_err()
        ),
        "dhN"
    );
    common::assert_bad_recurrent_clips_rejected(|options| {
        gru.backward(&cache, dy.view(), None, options)
    });
}

#[test]
fn parameters_and_caches_that_do_not_fit_are_rejected() {
    let gru = gru_problem(&Case::new(3), 0).layer;
    let mut wrong = gru.params.clone();
    wrong.weight_hh = Array2::zeros((9, 2));
    assert_eq!(
        shape_error_name(Gru::from_params(gru.config, wrong.clone()).unwrap_err()),
        "weight_hh"
    );
    let x = Array3::<f64>::zeros((1, 2, 3));
    let mut replaced = gru.clone();
    replaced.params = wrong;
    assert_eq!(
        shape_error_name(replaced.forward(&SequenceBatch::new(x.view())).unwrap_err()),
        "weight_hh"
    );

    let other = gru_problem(&Case::new(5), 0).layer;
    let (_, cache) = other.forward(&SequenceBatch::new(x.view())).unwrap();
    let dy = Array3::<f64>::zeros((1, 2, 3));
    let err = gru
        .backward(&cache, dy.view(), None, &BackwardOptions::default())
        .unwrap_err();
    assert_eq!(shape_error_name(err), "cache.gates");
}

/// An initial state laid out column-major (as one cut out of another node's value can be)
/// gives what the same values in standard layout give.
#[test]
fn a_column_major_initial_state_is_read_by_value() {
    let problem = gru_problem(&Case::new(5), 21);
    let h0 = problem.h0.clone().unwrap();
    let column_major = h0.t().as_standard_layout().into_owned().reversed_axes();
    assert_eq!(column_major, h0);
    let batch = SequenceBatch {
        h0: Some(column_major.view()),
        ..problem.batch()
    };
    let (out, _) = problem.layer.forward(&batch).unwrap();
    assert_eq!(out.y, problem.layer.forward(&problem.batch()).unwrap().0.y);
}
