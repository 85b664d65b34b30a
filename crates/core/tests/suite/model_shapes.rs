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

fn shape(kind: ValueKind, width: usize, time: Option<usize>) -> ValueShape {
    ValueShape { kind, width, time }
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
            ("x", shape(ValueKind::Sequence, 2, Some(0))),
            ("v", shape(ValueKind::Vector, 3, None)),
            ("q", shape(ValueKind::Tokens, 0, Some(2))),
            ("words", shape(ValueKind::Sequence, 4, Some(2))),
            ("chars", shape(ValueKind::Sequence, 2, Some(2))),
            // 2 layers · 2 directions · (h, c) · 3
            ("enc", shape(ValueKind::Vector, 24, None)),
            ("seq", shape(ValueKind::Sequence, 12, Some(0))),
            ("last", shape(ValueKind::Vector, 2, None)),
            ("both", shape(ValueKind::Vector, 29, None)),
            ("out", shape(ValueKind::Vector, 1, None)),
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

/// An encoder on `x` and a decoder on `x` whose `initialState` names `source`.
fn decoder_of(encoder: serde_json::Value, decoder: serde_json::Value) -> ModelSpec {
    let mut nodes = vec![encoder];
    let mut decoder = decoder;
    decoder["name"] = "dec".into();
    decoder["inputs"] = serde_json::json!(["x"]);
    nodes.push(decoder);
    graph(serde_json::Value::Array(nodes))
}

#[test]
fn an_initial_state_must_name_a_value_of_the_decoder_s_state_shape() {
    let encoder = |options: serde_json::Value| {
        let mut node = serde_json::json!({"name": "enc", "inputs": ["x"], "type": "lstm", "hiddenSize": 4, "output": "states"});
        node.as_object_mut()
            .unwrap()
            .extend(options.as_object().unwrap().clone());
        node
    };
    let good = decoder_of(
        encoder(serde_json::json!({"numLayers": 2})),
        serde_json::json!({"type": "lstm", "hiddenSize": 4, "numLayers": 2, "initialState": "enc"}),
    );
    let described = describe(&good).unwrap();
    assert_eq!(
        described.node_inputs[1],
        [0, 3],
        "the decoder reads x, then enc's states"
    );
    let cases = [
        (
            serde_json::json!({"type": "lstm", "hiddenSize": 4, "initialState": "nope"}),
            encoder(serde_json::json!({})),
            "nodes 'dec'.initialState: reads 'nope', which is neither a model input nor an earlier node",
        ),
        (
            serde_json::json!({"type": "lstm", "hiddenSize": 4, "numLayers": 2, "initialState": "enc"}),
            encoder(serde_json::json!({})),
            "nodes 'dec'.initialState: 'enc' hands on [n, 8] (the lstm states of 1 layer × 1 direction × (h, c) × H 4), \
             'dec' needs [n, 16] (the lstm states of 2 layers × 1 direction × (h, c) × H 4)",
        ),
        (
            serde_json::json!({"type": "lstm", "hiddenSize": 4, "bidirectional": true, "initialState": "enc"}),
            encoder(serde_json::json!({"hiddenSize": 8})),
            "nodes 'dec'.initialState: 'enc' hands on [n, 16] (the lstm states of 1 layer × 1 direction × (h, c) × H 8), \
             'dec' needs [n, 16] (the lstm states of 1 layer × 2 directions × (h, c) × H 4)",
        ),
        (
            serde_json::json!({"type": "rnn", "hiddenSize": 4, "initialState": "enc"}),
            encoder(serde_json::json!({})),
            "nodes 'dec'.initialState: 'enc' is a lstm node with output 'states'; a rnn node starts from the 'states' output of a rnn node",
        ),
        (
            serde_json::json!({"type": "lstm", "hiddenSize": 4, "initialState": "enc"}),
            encoder(serde_json::json!({"output": "last"})),
            "nodes 'dec'.initialState: 'enc' is a lstm node with output 'last'; a lstm node starts from the 'states' output of a lstm node",
        ),
        (
            serde_json::json!({"type": "lstm", "hiddenSize": 4, "initialState": "v"}),
            encoder(serde_json::json!({})),
            "nodes 'dec'.initialState: 'v' is [n, 3], 'dec' needs [n, 8] (the lstm states of 1 layer × 1 direction × (h, c) × H 4)",
        ),
        (
            serde_json::json!({"type": "rnn", "hiddenSize": 3, "initialState": "x"}),
            encoder(serde_json::json!({})),
            "nodes 'dec'.initialState: 'x' is [n, time, 2], 'dec' needs [n, 3] (the rnn states of 1 layer × 1 direction × h × H 3)",
        ),
        (
            serde_json::json!({"type": "lstm", "hiddenSize": 4, "initialState": "enc"}),
            serde_json::json!({"name": "enc", "inputs": ["v"], "type": "dense", "units": 7}),
            "nodes 'dec'.initialState: 'enc' is [n, 7], 'dec' needs [n, 8] (the lstm states of 1 layer × 1 direction × (h, c) × H 4)",
        ),
    ];
    for (decoder, encoder, expected) in cases {
        assert_eq!(error_of(decoder_of(encoder, decoder)), expected);
    }
    // Any vector of the right width will do: a dense layer of an image vector (captioning).
    describe(&decoder_of(
        serde_json::json!({"name": "enc", "inputs": ["v"], "type": "dense", "units": 8}),
        serde_json::json!({"type": "lstm", "hiddenSize": 4, "initialState": "enc"}),
    ))
    .unwrap();
}

#[test]
fn repeat_takes_a_vector_and_the_sequence_whose_time_axis_it_repeats_over() {
    let repeated = describe(&graph(serde_json::json!([
        {"name": "each", "inputs": ["v", "q"], "type": "repeat"},
        {"name": "both", "inputs": ["x", "each"], "type": "concat"}
    ])))
    .unwrap();
    assert_eq!(repeated.output(), shape(ValueKind::Sequence, 5, Some(0)));
    let over_tokens = describe(&graph(serde_json::json!([
        {"name": "each", "inputs": ["v", "q"], "type": "repeat"}
    ])))
    .unwrap();
    assert_eq!(
        over_tokens.output(),
        shape(ValueKind::Sequence, 3, Some(2)),
        "the time axis of q"
    );
    for (inputs, expected) in [
        (serde_json::json!(["v"]), "nodes 'r': repeat reads two inputs, a vector [n, w] and the sequence whose time axis it repeats over, got 1"),
        (serde_json::json!(["x", "q"]), "nodes 'r': repeat reads a vector [n, w] and then a sequence or token ids [n, time], got [n, time, 2], [n, time] token ids"),
        (serde_json::json!(["v", "v"]), "nodes 'r': repeat reads a vector [n, w] and then a sequence or token ids [n, time], got [n, 3], [n, 3]"),
    ] {
        let spec = graph(serde_json::json!([{"name": "r", "inputs": inputs, "type": "repeat"}]));
        assert_eq!(error_of(spec), expected);
    }
}
