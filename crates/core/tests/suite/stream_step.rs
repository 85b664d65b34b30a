//! `Stream::step_into` (a flat `[batch, features]` step into the caller's buffer) against
//! `Stream::step` (the graph's path): the same outputs and states, bit for bit, whether the
//! LSTM layers step in place (one thread or split over two) or the model takes the graph's path.

use std::sync::Arc;

use ndarray::Array3;
use odyssey_core::model::{Model, ModelSpec, Stream, Value};
use odyssey_core::{Error, Scalar};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn model<F: Scalar>(json: serde_json::Value) -> Model<F> {
    let spec: ModelSpec = serde_json::from_value(json).expect("valid model spec");
    Model::new(spec).expect("model builds")
}

/// One sequence input of `features` → `nodes` (each reading the previous one; the last is the output).
fn chain<F: Scalar>(dtype: &str, features: usize, nodes: serde_json::Value) -> Model<F> {
    let mut nodes = nodes.as_array().expect("a list of nodes").clone();
    let mut previous = "x".to_owned();
    for (n, node) in nodes.iter_mut().enumerate() {
        let name = format!("n{n}");
        node["name"] = name.clone().into();
        node["inputs"] = serde_json::json!([previous]);
        previous = name;
    }
    model(serde_json::json!({
        "dtype": dtype, "seed": 11,
        "inputs": [{"kind": "sequence", "name": "x", "features": features}],
        "nodes": nodes, "output": previous, "loss": "mse"
    }))
}

/// Steps both paths `steps` times on the same random inputs and compares every output and state bit.
fn assert_same_steps<F: Scalar>(m: &Model<F>, batch: usize, steps: usize) {
    let features = match m.spec().inputs[..] {
        [odyssey_core::model::InputSpec::Sequence { features, .. }] => features,
        _ => unreachable!("one sequence input"),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(batch as u64);
    let (mut graph, mut flat) = (Stream::new(), Stream::new());
    for step in 0..steps {
        let x: Vec<F> = (0..batch * features)
            .map(|_| F::from_f64_lossy(rng.gen_range(-2.0..2.0)))
            .collect();
        let data = Array3::from_shape_vec((batch, 1, features), x.clone()).unwrap();
        let lengths: Arc<[usize]> = vec![1; batch].into();
        let expected = graph
            .step(m, vec![Value::Sequence { data, lengths }])
            .unwrap();
        let mut out = vec![F::zero(); expected.len()];
        flat.step_into(m, &x, batch, &mut out).unwrap();
        let bits = |values: &mut dyn Iterator<Item = F>| -> Vec<u64> {
            values.map(|v| v.to_f64_lossy().to_bits()).collect()
        };
        assert_eq!(
            bits(&mut out.iter().copied()),
            bits(&mut expected.iter().copied()),
            "output of step {step}"
        );
        assert_eq!(graph.state(), flat.state(), "state after step {step}");
    }
}

#[test]
fn the_streaming_size_steps_in_place_on_two_threads_bit_for_bit() {
    // B 1, X 128, H 256: the bench's streaming case, split over the helper pair.
    let m = chain::<f32>(
        "float32",
        128,
        serde_json::json!([{"type": "lstm", "hiddenSize": 256}]),
    );
    assert_same_steps(&m, 1, 30);
}

#[test]
fn every_variant_batch_and_stack_steps_in_place_bit_for_bit() {
    for variant in ["", "NIG", "NFG", "NOG", "NIAF", "NOAF", "NP", "CIFG"] {
        for peepholes in [true, false] {
            let m = chain::<f32>(
                "float32",
                40,
                serde_json::json!([{"type": "lstm", "hiddenSize": 96, "variant": variant,
                                    "peepholes": peepholes, "forgetBias": 1.0}]),
            );
            assert_same_steps(&m, 2, 6);
        }
    }
    // Stacked layers, two nodes, the `last` output, up to four sequences, and sizes that
    // stay on one thread (H 24 is not two whole vectors of units; H 16 is too little work).
    let stacked = serde_json::json!([
        {"type": "lstm", "hiddenSize": 64, "numLayers": 2},
        {"type": "lstm", "hiddenSize": 24},
        {"type": "lstm", "hiddenSize": 16, "output": "last"}
    ]);
    for batch in 1..=4 {
        assert_same_steps(&chain::<f32>("float32", 9, stacked.clone()), batch, 5);
    }
    assert_same_steps(&chain::<f64>("float64", 9, stacked), 3, 5);
}

#[test]
fn other_models_take_the_graphs_path_with_the_same_result() {
    let lstm = serde_json::json!({"type": "lstm", "hiddenSize": 32});
    let cases = [
        // Five sequences: more than a streaming step keeps in PyTorch's gate order.
        (serde_json::json!([lstm.clone()]), 5),
        (
            serde_json::json!([{"type": "lstm", "hiddenSize": 32, "variant": "FGR"}]),
            1,
        ),
        (serde_json::json!([{"type": "gru", "hiddenSize": 32}]), 2),
        (serde_json::json!([{"type": "rnn", "hiddenSize": 32}]), 2),
        (serde_json::json!([lstm, {"type": "dense", "units": 3}]), 1),
        (
            serde_json::json!([{"type": "lstm", "hiddenSize": 8, "output": "states"}]),
            1,
        ),
    ];
    for (nodes, batch) in cases {
        assert_same_steps(&chain::<f32>("float32", 7, nodes), batch, 4);
    }
}

#[test]
fn bad_flat_steps_are_typed_errors_naming_the_argument() {
    let m = chain::<f32>(
        "float32",
        4,
        serde_json::json!([{"type": "lstm", "hiddenSize": 8}]),
    );
    let mut stream = Stream::new();
    let mut out = vec![0.0f32; 8];
    let err = stream.step_into(&m, &[0.0; 5], 1, &mut out).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "x"),
        "{err}"
    );
    let err = stream
        .step_into(&m, &[0.0; 4], 1, &mut out[..7])
        .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "out"),
        "{err}"
    );
    stream.step_into(&m, &[0.0; 4], 1, &mut out).unwrap();
    let mut two = vec![0.0f32; 16];
    let err = stream.step_into(&m, &[0.0; 8], 2, &mut two).unwrap_err();
    assert!(err.to_string().contains("a batch of 1"), "{err}");
    stream.reset();
    stream.step_into(&m, &[0.0; 8], 2, &mut two).unwrap();

    let two_inputs = model::<f32>(serde_json::json!({
        "inputs": [{"kind": "sequence", "name": "a", "features": 2},
                   {"kind": "sequence", "name": "b", "features": 2}],
        "nodes": [{"name": "ab", "inputs": ["a", "b"], "type": "concat"},
                  {"name": "l", "inputs": ["ab"], "type": "lstm", "hiddenSize": 3}],
        "output": "l", "loss": "mse"
    }));
    let err = Stream::new()
        .step_into(&two_inputs, &[0.0; 2], 1, &mut [0.0; 3])
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { name, .. } if name == "x"),
        "{err}"
    );
}
