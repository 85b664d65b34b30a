//! Loss weights through the trainer: truncated BPTT scores each window with
//! that window's per-step weights, and a dataset's weights are checked against
//! its examples and its target. (The values against PyTorch are in
//! `__test__/loss-weights.test.ts`.)

use std::sync::Arc;

use ndarray::{Array1, Array2, Array3, ArrayD};
use odyssey_core::model::{Dataset, Labels, Model, Target, Tbptt, Trainer, Value, Weights};
use odyssey_core::Error;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// LSTM(4) → dense(1) on every step of `[batch, time, 2]`, trained by SGD.
fn sequence_regressor() -> Trainer<f64> {
    let spec = serde_json::from_value(serde_json::json!({
        "dtype": "float64", "seed": 3,
        "inputs": [{"kind": "sequence", "name": "x", "features": 2}],
        "nodes": [
            {"name": "lstm", "inputs": ["x"], "type": "lstm", "hiddenSize": 4},
            {"name": "out", "inputs": ["lstm"], "type": "dense", "units": 1}
        ],
        "output": "out", "loss": "mse"
    }))
    .unwrap();
    let training = serde_json::from_value(
        serde_json::json!({"optimizer": {"type": "sgd"}, "learningRate": 0.1}),
    )
    .unwrap();
    Trainer::new(Model::new(spec).unwrap(), training).unwrap()
}

fn problem(batch: usize, time: usize) -> (Vec<Value<f64>>, Target<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x = Array3::from_shape_fn((batch, time, 2), |_| rng.gen_range(-1.0..1.0));
    let y = Array3::from_shape_fn((batch, time, 1), |_| rng.gen_range(-1.0..1.0));
    let inputs = vec![Value::Sequence {
        data: x,
        lengths: Arc::from(vec![time; batch]),
    }];
    (inputs, Target::Values(y.into_dyn()))
}

fn step_weights(batch: usize, time: usize, weight: impl Fn(usize, usize) -> f64) -> Weights {
    let (_, target) = problem(batch, time);
    let values = Array2::from_shape_fn((batch, time), |(b, t)| weight(b, t)).into_dyn();
    Weights::new(values, &target, batch).unwrap()
}

#[test]
fn tbptt_over_the_whole_sequence_is_the_weighted_full_step() {
    let (inputs, target) = problem(3, 6);
    let weights = step_weights(3, 6, |b, t| (b + t) as f64 * 0.25);
    let labels = Labels {
        target: target.view(),
        weights: Some(&weights),
    };
    let (mut full, mut truncated) = (sequence_regressor(), sequence_regressor());
    let report = full.train_step(inputs.clone(), labels.clone()).unwrap();
    let reports = truncated
        .train_tbptt(inputs, labels, Tbptt { k1: 6, k2: 6 })
        .unwrap();
    let unweighted = sequence_regressor()
        .train_step(problem(3, 6).0, &target)
        .unwrap();
    assert_ne!(report.loss, unweighted.loss);
    assert_eq!(reports, vec![report]);
}

#[test]
fn each_tbptt_window_weighs_its_own_steps() {
    let (inputs, target) = problem(2, 6);
    // Only the last window's steps (4, 5) count: the first two windows have nothing to learn from.
    let weights = step_weights(2, 6, |_, t| if t >= 4 { 1.0 } else { 0.0 });
    let labels = Labels {
        target: target.view(),
        weights: Some(&weights),
    };
    let mut trainer = sequence_regressor();
    let reports = trainer
        .train_tbptt(inputs, labels, Tbptt { k1: 2, k2: 2 })
        .unwrap();
    assert_eq!(reports.len(), 3);
    assert_eq!((reports[0].loss, reports[0].grad_norm), (0.0, 0.0));
    assert_eq!((reports[1].loss, reports[1].grad_norm), (0.0, 0.0));
    assert!(reports[2].loss > 0.0 && reports[2].grad_norm > 0.0);
}

#[test]
fn a_dataset_checks_its_weights_against_examples_and_target() {
    let (inputs, target) = problem(3, 4);
    let dataset = |t: Option<Target<f64>>| Dataset::new(inputs.clone(), t).unwrap();
    let per_example = ArrayD::from_elem(vec![3], 1.0);
    assert!(dataset(Some(target.clone()))
        .with_weights(per_example.clone())
        .is_ok());

    let err = dataset(None).with_weights(per_example).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { name, .. } if name == "weights"),
        "{err}"
    );
    let err = dataset(Some(target.clone()))
        .with_weights(ArrayD::from_elem(vec![3, 3], 1.0))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, expected, .. } if name == "weights" && expected.contains("[3, 4] (per step)")),
        "{err}"
    );
    let mut negative = Array1::from_elem(3, 1.0);
    negative[2] = -0.5;
    let err = dataset(Some(target))
        .with_weights(negative.into_dyn())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { name, .. } if name == "weights[2]"),
        "{err}"
    );
}
