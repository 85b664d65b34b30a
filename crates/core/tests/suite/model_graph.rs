//! The model graph: finite-difference checks of whole-model gradients
//! (stacked, bidirectional, every node kind), truncated BPTT against full
//! BPTT, and a model that learns.

use std::sync::Arc;

use ndarray::{Array2, Array3};
use odyssey_core::model::{Model, ModelSpec, Target, Tbptt, Trainer, TrainingSpec, Value};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common;
use common::weights;

fn spec(json: serde_json::Value) -> ModelSpec {
    serde_json::from_value(json).expect("valid model spec")
}

fn sgd(lr: f64) -> TrainingSpec {
    serde_json::from_value(serde_json::json!({"optimizer": {"type": "sgd"}, "learningRate": lr}))
        .unwrap()
}

fn random3(rng: &mut ChaCha8Rng, shape: (usize, usize, usize)) -> Array3<f64> {
    Array3::from_shape_fn(shape, |_| rng.gen_range(-1.0..1.0))
}

fn random2(rng: &mut ChaCha8Rng, shape: (usize, usize)) -> Array2<f64> {
    Array2::from_shape_fn(shape, |_| rng.gen_range(-1.0..1.0))
}

fn loss_of(trainer: &Trainer<f64>, inputs: &[Value<f64>], target: &Target<f64>) -> f64 {
    trainer
        .gradients(inputs.to_vec(), target, None, 0)
        .unwrap()
        .0
}

/// Compares every trainable gradient element (up to `per_tensor` of each tensor) with central differences.
fn check_gradients(
    mut trainer: Trainer<f64>,
    inputs: Vec<Value<f64>>,
    target: Target<f64>,
    per_tensor: usize,
) {
    let (_, grads, _) = trainer.gradients(inputs.clone(), &target, None, 0).unwrap();
    let eps = 1e-6;
    let shapes: Vec<usize> = trainer
        .model
        .trainable_tensors_mut()
        .iter()
        .map(|t| t.len())
        .collect();
    assert_eq!(shapes.len(), grads.params.len());
    for (k, &len) in shapes.iter().enumerate() {
        let stride = (len / per_tensor).max(1);
        for i in (0..len).step_by(stride) {
            let original = trainer.model.trainable_tensors_mut()[k]
                .as_slice_memory_order()
                .unwrap()[i];
            let set = |trainer: &mut Trainer<f64>, v: f64| {
                trainer.model.trainable_tensors_mut()[k]
                    .as_slice_memory_order_mut()
                    .unwrap()[i] = v;
            };
            set(&mut trainer, original + eps);
            let plus = loss_of(&trainer, &inputs, &target);
            set(&mut trainer, original - eps);
            let minus = loss_of(&trainer, &inputs, &target);
            set(&mut trainer, original);
            let numeric = (plus - minus) / (2.0 * eps);
            let analytic = grads.params[k].as_slice_memory_order().unwrap()[i];
            let tolerance = 1e-6 + 1e-5 * numeric.abs();
            assert!(
                (numeric - analytic).abs() < tolerance,
                "tensor {k} element {i}: numeric {numeric} vs analytic {analytic}"
            );
        }
    }
}

#[test]
fn stacked_bidirectional_lstm_classifier_gradients_match_finite_differences() {
    let model = Model::<f64>::new(spec(serde_json::json!({
        "dtype": "float64", "seed": 3,
        "inputs": [{"kind": "tokens", "name": "words"}],
        "nodes": [
            {"name": "embed", "inputs": ["words"], "type": "embedding", "vocabSize": 7, "dim": 4},
            {"name": "lstm", "inputs": ["embed"], "type": "lstm", "hiddenSize": 3, "numLayers": 2,
             "bidirectional": true, "output": "last", "variant": "CIFG"},
            {"name": "head", "inputs": ["lstm"], "type": "dense", "units": 5}
        ],
        "output": "head", "loss": "crossEntropy"
    })))
    .unwrap();
    let ids = Array2::from_shape_fn((3, 4), |(b, t)| ((b * 5 + t * 3) % 7) as u32);
    let inputs = vec![Value::Tokens {
        ids,
        lengths: Arc::from(vec![4, 2, 3]),
    }];
    check_gradients(
        Trainer::new(model, sgd(0.1)).unwrap(),
        inputs,
        Target::Classes(vec![1, 4, 0]),
        12,
    );
}

#[test]
fn vqa_shaped_graph_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let model = Model::<f64>::new(spec(serde_json::json!({
        "dtype": "float64", "seed": 5,
        "inputs": [{"kind": "vector", "name": "image", "features": 6}, {"kind": "sequence", "name": "question", "features": 3}],
        "nodes": [
            {"name": "q", "inputs": ["question"], "type": "lstm", "hiddenSize": 2, "numLayers": 2, "output": "states"},
            {"name": "qd", "inputs": ["q"], "type": "dense", "units": 4, "activation": "tanh"},
            {"name": "norm", "inputs": ["image"], "type": "l2Normalize"},
            {"name": "id", "inputs": ["norm"], "type": "dense", "units": 4, "activation": "tanh"},
            {"name": "fuse", "inputs": ["qd", "id"], "type": "multiply"},
            {"name": "cat", "inputs": ["fuse", "qd"], "type": "concat"},
            {"name": "drop", "inputs": ["cat"], "type": "dropout", "rate": 0.0},
            {"name": "out", "inputs": ["drop"], "type": "dense", "units": 3}
        ],
        "output": "out", "loss": "mse"
    })))
    .unwrap();
    let inputs = vec![
        Value::Vector(random2(&mut rng, (2, 6))),
        Value::Sequence {
            data: random3(&mut rng, (2, 5, 3)),
            lengths: Arc::from(vec![5, 3]),
        },
    ];
    let target = Target::Values(random2(&mut rng, (2, 3)).into_dyn());
    check_gradients(Trainer::new(model, sgd(0.1)).unwrap(), inputs, target, 10);
}

#[test]
fn many_to_many_simple_rnn_with_sum_merge_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let model = Model::<f64>::new(spec(serde_json::json!({
        "dtype": "float64",
        "inputs": [{"kind": "sequence", "name": "x", "features": 2}],
        "nodes": [
            {"name": "rnn", "inputs": ["x"], "type": "rnn", "hiddenSize": 3, "bidirectional": true, "merge": "sum"},
            {"name": "out", "inputs": ["rnn"], "type": "dense", "units": 2}
        ],
        "output": "out", "loss": "mse"
    })))
    .unwrap();
    let inputs = vec![Value::Sequence {
        data: random3(&mut rng, (2, 4, 2)),
        lengths: Arc::from(vec![4, 2]),
    }];
    let target = Target::Values(random3(&mut rng, (2, 4, 2)).into_dyn());
    check_gradients(Trainer::new(model, sgd(0.1)).unwrap(), inputs, target, 20);
}

/// The recurrent node kinds truncated BPTT runs over (each carries its own state between windows).
const RECURRENT_KINDS: [&str; 3] = ["lstm", "rnn", "gru"];

fn sequence_regressor(seed: u64, kind: &str) -> Trainer<f64> {
    let model = Model::<f64>::new(spec(serde_json::json!({
        "dtype": "float64", "seed": seed,
        "inputs": [{"kind": "sequence", "name": "x", "features": 2}],
        "nodes": [
            {"name": "recurrent", "inputs": ["x"], "type": kind, "hiddenSize": 4},
            {"name": "out", "inputs": ["recurrent"], "type": "dense", "units": 1}
        ],
        "output": "out", "loss": "mse"
    })))
    .unwrap();
    Trainer::new(model, sgd(0.05)).unwrap()
}

/// Steps `start..end` of every sequence of a full-length batch.
fn time_window(data: &Array3<f64>, start: usize, end: usize) -> Array3<f64> {
    data.slice(ndarray::s![.., start..end, ..]).to_owned()
}

fn full_length(data: Array3<f64>) -> Value<f64> {
    let lengths = Arc::from(vec![data.dim().1; data.dim().0]);
    Value::Sequence { data, lengths }
}

#[test]
fn tbptt_with_k1_equal_k2_equal_time_is_exactly_full_bptt() {
    for kind in RECURRENT_KINDS {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let inputs = vec![full_length(random3(&mut rng, (3, 6, 2)))];
        let target = Target::Values(random3(&mut rng, (3, 6, 1)).into_dyn());
        let (mut full, mut truncated) = (sequence_regressor(1, kind), sequence_regressor(1, kind));
        let report = full.train_step(inputs.clone(), &target).unwrap();
        let reports = truncated
            .train_tbptt(inputs, &target, Tbptt { k1: 6, k2: 6 })
            .unwrap();
        assert_eq!(reports, vec![report], "{kind}");
        assert_eq!(weights(&mut full), weights(&mut truncated), "{kind}");
    }
}

#[test]
fn tbptt_chunks_carry_state_and_update_once_per_window() {
    for kind in RECURRENT_KINDS {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let inputs = vec![full_length(random3(&mut rng, (2, 10, 2)))];
        let target = Target::Values(random3(&mut rng, (2, 10, 1)).into_dyn());
        let mut trainer = sequence_regressor(2, kind);
        let before = weights(&mut trainer);
        let reports = trainer
            .train_tbptt(inputs.clone(), &target, Tbptt { k1: 3, k2: 5 })
            .unwrap();
        assert_eq!(reports.len(), 4, "{kind}: windows end at steps 3, 6, 9, 10");
        assert_eq!(trainer.step_count(), 4, "{kind}");
        assert_ne!(before, weights(&mut trainer), "{kind}");
        let err = trainer
            .train_tbptt(inputs, &target, Tbptt { k1: 4, k2: 2 })
            .unwrap_err();
        assert!(err.to_string().contains("k1 <= k2"), "{kind}: {err}");
    }
}

/// Two windows of 3 steps: the second starts from the state the first window's forward pass
/// (before its update) ended in, and is scored with the weights after the first update.
#[test]
fn the_second_tbptt_window_starts_from_the_first_window_s_final_state() {
    for kind in RECURRENT_KINDS {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let x = random3(&mut rng, (2, 6, 2));
        let y = random3(&mut rng, (2, 6, 1));
        let mut truncated = sequence_regressor(3, kind);
        let reports = truncated
            .train_tbptt(
                vec![full_length(x.clone())],
                &Target::Values(y.clone().into_dyn()),
                Tbptt { k1: 3, k2: 3 },
            )
            .unwrap();

        let mut by_hand = sequence_regressor(3, kind);
        let first = vec![full_length(time_window(&x, 0, 3))];
        let carried = by_hand
            .model
            .forward(first.clone(), false, 0, None)
            .unwrap()
            .final_states;
        let first_target = Target::Values(time_window(&y, 0, 3).into_dyn());
        assert_eq!(
            reports[0],
            by_hand.train_step(first, &first_target).unwrap(),
            "{kind}"
        );
        let second = vec![full_length(time_window(&x, 3, 6))];
        let second_target = Target::Values(time_window(&y, 3, 6).into_dyn());
        let from_state = |initial| {
            by_hand
                .gradients(second.clone(), &second_target, initial, 0)
                .unwrap()
                .0
        };
        assert_eq!(reports[1].loss, from_state(Some(&carried)), "{kind}");
        assert_ne!(
            reports[1].loss,
            from_state(None),
            "{kind}: the state matters"
        );
    }
}

#[test]
fn an_lstm_learns_to_sum_its_inputs() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let model = Model::<f32>::new(spec(serde_json::json!({
        "seed": 1,
        "inputs": [{"kind": "sequence", "name": "x", "features": 1}],
        "nodes": [
            {"name": "lstm", "inputs": ["x"], "type": "lstm", "hiddenSize": 8, "output": "last"},
            {"name": "out", "inputs": ["lstm"], "type": "dense", "units": 1}
        ],
        "output": "out", "loss": "mse"
    })))
    .unwrap();
    let training: TrainingSpec = serde_json::from_value(
        serde_json::json!({"optimizer": {"type": "adam"}, "learningRate": 0.02}),
    )
    .unwrap();
    let mut trainer = Trainer::new(model, training).unwrap();
    let mut batch = || {
        let x = Array3::<f32>::from_shape_fn((16, 5, 1), |_| rng.gen_range(0.0..0.4));
        let y = x.sum_axis(ndarray::Axis(1)).into_dyn();
        (
            vec![Value::Sequence {
                data: x,
                lengths: Arc::from(vec![5; 16]),
            }],
            Target::Values(y),
        )
    };
    let losses: Vec<f64> = (0..300)
        .map(|_| {
            let (inputs, target) = batch();
            trainer.train_step(inputs, &target).unwrap().loss
        })
        .collect();
    let early: f64 = losses[..20].iter().sum::<f64>() / 20.0;
    let late: f64 = losses[280..].iter().sum::<f64>() / 20.0;
    assert!(late < early / 10.0, "loss fell from {early} only to {late}");
}

#[test]
fn specs_with_wiring_errors_are_rejected_when_built_with_the_node_named() {
    let unknown = spec(serde_json::json!({
        "inputs": [{"kind": "sequence", "name": "x", "features": 2}],
        "nodes": [{"name": "out", "inputs": ["nope"], "type": "dense", "units": 1}],
        "output": "out", "loss": "mse"
    }));
    let err = Model::<f32>::new(unknown).err().unwrap().to_string();
    assert!(err.contains("out") && err.contains("nope"), "{err}");
    let wrong_input = spec(serde_json::json!({
        "inputs": [{"kind": "vector", "name": "x", "features": 2}],
        "nodes": [{"name": "lstm", "inputs": ["x"], "type": "lstm", "hiddenSize": 2}],
        "output": "lstm", "loss": "mse"
    }));
    let err = Model::<f32>::new(wrong_input).err().unwrap().to_string();
    assert!(err.contains("lstm") && err.contains("sequence"), "{err}");
}

/// The gradient of every tensor of node `node` (by its position among the trainable tensors).
fn node_gradient_norm(
    trainer: &Trainer<f64>,
    inputs: &[Value<f64>],
    target: &Target<f64>,
    node: &str,
) -> f64 {
    let (_, grads, _) = trainer.gradients(inputs.to_vec(), target, None, 0).unwrap();
    let names: Vec<String> = trainer
        .model
        .named_tensors()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names
        .iter()
        .zip(&grads.params)
        .filter(|(name, _)| name.starts_with(&format!("{node}.")))
        .map(|(_, g)| g.iter().map(|v| v * v).sum::<f64>())
        .sum::<f64>()
        .sqrt()
}

#[test]
fn encoder_decoder_lstm_gradients_reach_the_encoder_and_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let spec = spec(serde_json::json!({
        "dtype": "float64", "seed": 7,
        "inputs": [{"kind": "sequence", "name": "src", "features": 3}, {"kind": "sequence", "name": "tgt", "features": 2}],
        "nodes": [
            {"name": "enc", "inputs": ["src"], "type": "lstm", "hiddenSize": 3, "numLayers": 2, "output": "states", "peepholes": false},
            {"name": "dec", "inputs": ["tgt"], "type": "lstm", "hiddenSize": 3, "numLayers": 2, "initialState": "enc"},
            {"name": "out", "inputs": ["dec"], "type": "dense", "units": 2}
        ],
        "output": "out", "loss": "mse"
    }));
    let inputs = vec![
        Value::Sequence {
            data: random3(&mut rng, (3, 5, 3)),
            lengths: Arc::from(vec![5, 2, 4]),
        },
        Value::Sequence {
            data: random3(&mut rng, (3, 4, 2)),
            lengths: Arc::from(vec![4, 3, 1]),
        },
    ];
    let target = Target::Values(random3(&mut rng, (3, 4, 2)).into_dyn());
    let trainer = Trainer::new(Model::<f64>::new(spec).unwrap(), sgd(0.1)).unwrap();
    // The encoder's only path to the loss is the decoder's initial state.
    assert!(node_gradient_norm(&trainer, &inputs, &target, "enc") > 1e-3);
    check_gradients(trainer, inputs, target, 16);
}

#[test]
fn bidirectional_rnn_decoders_start_from_an_encoder_or_from_a_learned_vector() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let spec = spec(serde_json::json!({
        "dtype": "float64", "seed": 8,
        "inputs": [
            {"kind": "sequence", "name": "src", "features": 2},
            {"kind": "vector", "name": "image", "features": 3},
            {"kind": "sequence", "name": "tgt", "features": 2}
        ],
        "nodes": [
            {"name": "enc", "inputs": ["src"], "type": "rnn", "hiddenSize": 2, "bidirectional": true, "output": "states"},
            {"name": "dec", "inputs": ["tgt"], "type": "rnn", "hiddenSize": 2, "bidirectional": true, "initialState": "enc"},
            {"name": "init", "inputs": ["image"], "type": "dense", "units": 4, "activation": "tanh"},
            {"name": "caption", "inputs": ["tgt"], "type": "rnn", "hiddenSize": 2, "bidirectional": true, "merge": "sum", "initialState": "init"},
            {"name": "both", "inputs": ["dec", "caption"], "type": "concat"},
            {"name": "out", "inputs": ["both"], "type": "dense", "units": 1}
        ],
        "output": "out", "loss": "mse"
    }));
    let inputs = vec![
        Value::Sequence {
            data: random3(&mut rng, (2, 4, 2)),
            lengths: Arc::from(vec![4, 3]),
        },
        Value::Vector(random2(&mut rng, (2, 3))),
        Value::Sequence {
            data: random3(&mut rng, (2, 3, 2)),
            lengths: Arc::from(vec![2, 3]),
        },
    ];
    let target = Target::Values(random3(&mut rng, (2, 3, 1)).into_dyn());
    let trainer = Trainer::new(Model::<f64>::new(spec).unwrap(), sgd(0.1)).unwrap();
    assert!(node_gradient_norm(&trainer, &inputs, &target, "enc") > 1e-3);
    assert!(node_gradient_norm(&trainer, &inputs, &target, "init") > 1e-3);
    check_gradients(trainer, inputs, target, 16);
}

#[test]
fn gru_decoders_start_from_a_stacked_gru_encoder_or_a_learned_vector_with_the_gradient_reaching_both(
) {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let spec = spec(serde_json::json!({
        "dtype": "float64", "seed": 10,
        "inputs": [
            {"kind": "sequence", "name": "src", "features": 3},
            {"kind": "vector", "name": "image", "features": 2},
            {"kind": "sequence", "name": "tgt", "features": 2}
        ],
        "nodes": [
            {"name": "enc", "inputs": ["src"], "type": "gru", "hiddenSize": 3, "numLayers": 2, "output": "states"},
            {"name": "dec", "inputs": ["tgt"], "type": "gru", "hiddenSize": 3, "numLayers": 2, "initialState": "enc"},
            {"name": "init", "inputs": ["image"], "type": "dense", "units": 3, "activation": "tanh"},
            {"name": "caption", "inputs": ["tgt"], "type": "gru", "hiddenSize": 3, "initialState": "init"},
            {"name": "both", "inputs": ["dec", "caption"], "type": "concat"},
            {"name": "out", "inputs": ["both"], "type": "dense", "units": 2}
        ],
        "output": "out", "loss": "mse"
    }));
    let inputs = vec![
        Value::Sequence {
            data: random3(&mut rng, (3, 5, 3)),
            lengths: Arc::from(vec![5, 2, 4]),
        },
        Value::Vector(random2(&mut rng, (3, 2))),
        Value::Sequence {
            data: random3(&mut rng, (3, 4, 2)),
            lengths: Arc::from(vec![4, 3, 1]),
        },
    ];
    let target = Target::Values(random3(&mut rng, (3, 4, 2)).into_dyn());
    let trainer = Trainer::new(Model::<f64>::new(spec).unwrap(), sgd(0.1)).unwrap();
    // The encoder's and the vector's only paths to the loss are the decoders' initial states.
    assert!(node_gradient_norm(&trainer, &inputs, &target, "enc") > 1e-3);
    assert!(node_gradient_norm(&trainer, &inputs, &target, "init") > 1e-3);
    check_gradients(trainer, inputs, target, 16);
}

/// An initial state handed to a decoder may be laid out column-major (a slice of another value
/// can be; the GRU once misread one): every recurrent kind reads it by value. The state here
/// is a vector model input, given once in standard and once in column-major layout.
#[test]
fn every_recurrent_kind_reads_an_initial_state_of_either_memory_layout_by_value() {
    for (kind, width) in [("lstm", 2 * 2 * 3), ("rnn", 2 * 3), ("gru", 2 * 3)] {
        let model = Model::<f64>::new(spec(serde_json::json!({
            "dtype": "float64", "seed": 12,
            "inputs": [{"kind": "vector", "name": "state", "features": width}, {"kind": "sequence", "name": "tgt", "features": 2}],
            "nodes": [{"name": "dec", "inputs": ["tgt"], "type": kind, "hiddenSize": 3, "numLayers": 2, "initialState": "state"}],
            "output": "dec", "loss": "mse"
        })))
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(15);
        let state = random2(&mut rng, (4, width));
        let column_major = state.t().as_standard_layout().into_owned().reversed_axes();
        assert!(!column_major.is_standard_layout() && column_major == state);
        let tgt = Value::Sequence {
            data: random3(&mut rng, (4, 3, 2)),
            lengths: Arc::from(vec![3, 1, 2, 3]),
        };
        let output = |state| {
            let pass = model
                .forward(vec![Value::Vector(state), tgt.clone()], false, 0, None)
                .unwrap();
            let Value::Sequence { data, .. } = pass.output() else {
                panic!("a sequence output")
            };
            data.as_standard_layout().into_owned()
        };
        let zero = output(Array2::zeros((4, width)));
        let standard = output(state);
        assert_ne!(standard, zero, "{kind}: the state matters");
        assert_eq!(output(column_major), standard, "{kind}");
    }
}

#[test]
fn a_vector_repeated_over_time_and_joined_to_a_sequence_gets_every_step_s_gradient() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let spec = spec(serde_json::json!({
        "dtype": "float64", "seed": 9,
        "inputs": [{"kind": "vector", "name": "context", "features": 3}, {"kind": "tokens", "name": "words"}],
        "nodes": [
            {"name": "ctx", "inputs": ["context"], "type": "dense", "units": 2, "activation": "tanh"},
            {"name": "embed", "inputs": ["words"], "type": "embedding", "vocabSize": 5, "dim": 2},
            {"name": "each", "inputs": ["ctx", "words"], "type": "repeat"},
            {"name": "joined", "inputs": ["embed", "each"], "type": "concat"},
            {"name": "lstm", "inputs": ["joined"], "type": "lstm", "hiddenSize": 3},
            {"name": "out", "inputs": ["lstm"], "type": "dense", "units": 4}
        ],
        "output": "out", "loss": "crossEntropy"
    }));
    let inputs = vec![
        Value::Vector(random2(&mut rng, (2, 3))),
        Value::Tokens {
            ids: Array2::from_shape_fn((2, 4), |(b, t)| ((b * 3 + t) % 5) as u32),
            lengths: Arc::from(vec![4, 3]),
        },
    ];
    let target = Target::Classes(vec![0, 1, 2, 3, 3, 2, 1, 0]);
    let trainer = Trainer::new(Model::<f64>::new(spec).unwrap(), sgd(0.1)).unwrap();
    let pass = trainer
        .model
        .forward(inputs.clone(), false, 0, None)
        .unwrap();
    let Value::Sequence { data, lengths } = &pass.values[4] else {
        panic!("repeat gives a sequence")
    };
    assert_eq!(data.dim(), (2, 4, 2));
    assert_eq!(&lengths[..], [4, 3]);
    assert_eq!(
        data.slice(ndarray::s![1, 3, ..]),
        data.slice(ndarray::s![1, 0, ..])
    );
    assert!(node_gradient_norm(&trainer, &inputs, &target, "ctx") > 1e-3);
    check_gradients(trainer, inputs, target, 16);
}
