//! The one check of a model spec (`describe`) and the one rule set for
//! replacing tensors by name (`assign_named`), which layers and models share.

use ndarray::{ArrayD, IxDyn};
use odyssey_core::model::{describe, Model, ModelSpec, ValueKind, ValueShape};
use odyssey_core::params::{assign_named, NamedValues};
use odyssey_core::Error;

fn spec(json: serde_json::Value) -> ModelSpec {
    serde_json::from_value(json).expect("valid model spec")
}

/// A spec on a sequence input `x` (2 features), a vector input `v` (3) and tokens `q`.
fn graph(nodes: serde_json::Value) -> ModelSpec {
    let last = nodes.as_array().unwrap().last().unwrap()["name"].clone();
    spec(serde_json::json!({
        "inputs": [
            {"kind": "sequence", "name": "x", "features": 2},
            {"kind": "vector", "name": "v", "features": 3},
            {"kind": "tokens", "name": "q"}
        ],
        "nodes": nodes, "output": last, "loss": "mse"
    }))
}

fn error_of(spec: ModelSpec) -> String {
    let err = describe(&spec).unwrap_err();
    // Model::new refuses the same spec with the same error.
    assert_eq!(Model::<f32>::new(spec).err().unwrap(), err);
    err.to_string()
}

fn shape(kind: ValueKind, width: usize) -> ValueShape {
    ValueShape { kind, width }
}

#[test]
fn describe_gives_every_value_its_shape_and_every_token_input_its_smallest_vocabulary() {
    let described = describe(&graph(serde_json::json!([
        {"name": "words", "inputs": ["q"], "type": "embedding", "vocabSize": 7, "dim": 4},
        {"name": "chars", "inputs": ["q"], "type": "embedding", "vocabSize": 5, "dim": 2},
        {"name": "enc", "inputs": ["words"], "type": "lstm", "hiddenSize": 3, "numLayers": 2,
         "bidirectional": true, "output": "states"},
        {"name": "seq", "inputs": ["x"], "type": "rnn", "hiddenSize": 6, "bidirectional": true},
        {"name": "last", "inputs": ["seq"], "type": "lstm", "hiddenSize": 2, "output": "last"},
        {"name": "both", "inputs": ["enc", "v", "last"], "type": "concat"},
        {"name": "out", "inputs": ["both"], "type": "dense", "units": 1}
    ])))
    .unwrap();
    let shapes: Vec<(&str, ValueShape)> = described
        .values
        .iter()
        .map(|(n, s)| (n.as_str(), *s))
        .collect();
    assert_eq!(
        shapes,
        [
            ("x", shape(ValueKind::Sequence, 2)),
            ("v", shape(ValueKind::Vector, 3)),
            ("q", shape(ValueKind::Tokens, 0)),
            ("words", shape(ValueKind::Sequence, 4)),
            ("chars", shape(ValueKind::Sequence, 2)),
            // 2 layers · 2 directions · (h, c) · 3
            ("enc", shape(ValueKind::Vector, 24)),
            ("seq", shape(ValueKind::Sequence, 12)),
            ("last", shape(ValueKind::Vector, 2)),
            ("both", shape(ValueKind::Vector, 29)),
            ("out", shape(ValueKind::Vector, 1)),
        ]
    );
    assert_eq!(described.vocabularies, [("q".to_owned(), 5)]);
    assert_eq!(described.node_inputs[5], [5, 1, 7]);
}

#[test]
fn describe_refuses_bad_wiring_naming_the_node() {
    let cases = [
        (
            serde_json::json!([{"name": "out", "inputs": ["nope"], "type": "dense", "units": 1}]),
            "nodes 'out': reads 'nope', which is neither a model input nor an earlier node",
        ),
        (
            serde_json::json!([{"name": "out", "inputs": [], "type": "dense", "units": 1}]),
            "nodes 'out': a node reads at least one input",
        ),
        (
            serde_json::json!([
                {"name": "d", "inputs": ["v"], "type": "dense", "units": 1},
                {"name": "d", "inputs": ["d"], "type": "dense", "units": 1}
            ]),
            "spec.nodes: duplicate name 'd'",
        ),
        (
            serde_json::json!([{"name": "x", "inputs": ["v"], "type": "dense", "units": 1}]),
            "spec.nodes: duplicate name 'x'",
        ),
        (
            serde_json::json!([{"name": "e", "inputs": ["x"], "type": "embedding", "vocabSize": 3, "dim": 2}]),
            "nodes 'e': an embedding reads token ids (a tokens input), got [n, time, 2]",
        ),
        (
            serde_json::json!([{"name": "r", "inputs": ["v"], "type": "lstm", "hiddenSize": 2}]),
            "nodes 'r': a recurrent layer reads sequences [n, time, features], got vectors [n, 3]",
        ),
        (
            serde_json::json!([{"name": "d", "inputs": ["q"], "type": "dense", "units": 2}]),
            "nodes 'd': a dense node reads float values; token ids go through an embedding first",
        ),
        (
            serde_json::json!([{"name": "d", "inputs": ["x", "v"], "type": "dense", "units": 2}]),
            "nodes 'd': a dense node reads exactly one input, got 2",
        ),
        (
            serde_json::json!([{"name": "c", "inputs": ["x", "v"], "type": "concat"}]),
            "nodes 'c': concat joins all vectors or all sequences, not a mixture: [n, time, 2], [n, 3]",
        ),
        (
            serde_json::json!([{"name": "m", "inputs": ["x", "x", "v"], "type": "multiply"}]),
            "nodes 'm': multiply needs inputs of one shape, got [n, time, 2], [n, time, 2], [n, 3]",
        ),
        (
            serde_json::json!([{"name": "n", "inputs": ["x"], "type": "l2Normalize"}]),
            "nodes 'n': l2Normalize reads vectors [n, features], got [n, time, 2]",
        ),
    ];
    for (nodes, expected) in cases {
        let message = error_of(graph(nodes));
        assert!(message.starts_with(expected), "{message}");
    }
    let mut not_last = graph(serde_json::json!([
        {"name": "a", "inputs": ["v"], "type": "dense", "units": 1},
        {"name": "b", "inputs": ["a"], "type": "dense", "units": 1}
    ]));
    not_last.output = "a".to_owned();
    assert_eq!(
        error_of(not_last),
        "spec.output: must name the last node ('b'), got 'a' (nodes after the output would never train)"
    );
}

#[test]
fn describe_refuses_a_size_typo_before_any_weight_is_allocated() {
    let message = error_of(graph(serde_json::json!([
        {"name": "big", "inputs": ["x"], "type": "lstm", "hiddenSize": 1usize << 20}
    ])));
    assert!(
        message.starts_with("nodes 'big': its sizes need at least") && message.contains("(2^28)"),
        "{message}"
    );
    let message = error_of(graph(serde_json::json!([
        {"name": "a", "inputs": ["v"], "type": "dense", "units": 3usize << 24},
        {"name": "b", "inputs": ["v"], "type": "dense", "units": 3usize << 24},
        {"name": "c", "inputs": ["a", "b"], "type": "concat"}
    ])));
    assert!(
        message.starts_with("nodes 'b': the nodes up to and including it need"),
        "{message}"
    );
}

fn tensors() -> Vec<(String, ArrayD<f64>)> {
    vec![
        ("w".to_owned(), ArrayD::zeros(IxDyn(&[2, 3]))),
        ("b".to_owned(), ArrayD::zeros(IxDyn(&[2]))),
    ]
}

fn assign(
    tensors: &mut [(String, ArrayD<f64>)],
    sources: &[NamedValues<'_, f64>],
) -> Result<(), Error> {
    let targets = tensors
        .iter_mut()
        .map(|(n, t)| (n.clone(), t.view_mut()))
        .collect();
    assign_named(targets, sources, "this layer")
}

#[test]
fn assign_named_checks_key_shape_length_and_finiteness_before_changing_anything() {
    let mut targets = tensors();
    let ones = [1.0; 6];
    let good = NamedValues {
        name: "w",
        shape: &[2, 3],
        data: &ones,
    };
    let bad = |name, shape, data| NamedValues { name, shape, data };
    let nan = [0.0, f64::NAN];
    let cases: [(NamedValues<'_, f64>, &str); 4] = [
        (
            bad("bias", &[2], &ones[..2]),
            "weights: unknown weight 'bias'; this layer has w, b",
        ),
        (bad("b", &[3], &ones[..3]), "b: expected shape [2], got [3]"),
        (
            bad("b", &[2], &ones[..3]),
            "b.data: expected shape [2] (2 elements), got [3]",
        ),
        (
            bad("b", &[2], &nan),
            "b.data: non-finite value NaN at flat index 1",
        ),
    ];
    for (source, expected) in cases {
        let err = assign(&mut targets, &[good, source]).unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert_eq!(targets, tensors(), "nothing changes when one entry is bad");
    }
    assign(&mut targets, &[good]).unwrap();
    assert_eq!(targets[0].1, ArrayD::<f64>::ones(IxDyn(&[2, 3])));
    assert_eq!(targets[1].1, ArrayD::<f64>::zeros(IxDyn(&[2])));
}

#[test]
fn a_model_assigns_weights_by_key_under_the_same_rules() {
    let mut model = Model::<f64>::new(graph(serde_json::json!([
        {"name": "d", "inputs": ["v"], "type": "dense", "units": 2}
    ])))
    .unwrap();
    let err = model
        .assign_named(&[NamedValues {
            name: "d.bias",
            shape: &[3],
            data: &[0.0; 3],
        }])
        .unwrap_err();
    assert_eq!(err.to_string(), "d.bias: expected shape [2], got [3]");
    let err = model
        .assign_named(&[NamedValues {
            name: "bias",
            shape: &[2],
            data: &[0.0; 2],
        }])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "weights: unknown weight 'bias'; this model has d.weight, d.bias"
    );
    model
        .assign_named(&[NamedValues {
            name: "d.bias",
            shape: &[2],
            data: &[0.5, -0.5],
        }])
        .unwrap();
    let bias = &model.named_tensors()[1].1;
    assert_eq!(bias.as_slice().unwrap(), [0.5, -0.5]);
}
