//! PyTorch state dicts: files written as `safetensors.torch.save_file(module.state_dict())`
//! would be (made by fixtures/make_torch_state_dicts.py from nn.LSTM, nn.RNN and nn.GRU)
//! import into a model node that then reproduces PyTorch's outputs, final
//! states and weight gradients; export gives the same file back; every
//! mismatch between file and node is an error naming the tensor.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{Array3, ArrayD, ArrayViewD, IxDyn};
use odyssey_core::model::torch_interop::{export_state_dict, import_state_dict};
use odyssey_core::model::{Model, ModelSpec, Target, Trainer, TrainingSpec, Value};
use odyssey_core::tensor_file;
use odyssey_core::{Error, Scalar};
use serde_json::json;

use crate::common;
use common::assert_close;

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// One case of make_torch_state_dicts.py: the module's configuration and PyTorch's results.
struct Case {
    name: &'static str,
    json: serde_json::Value,
}

impl Case {
    fn new(name: &'static str) -> Self {
        let text = fs::read_to_string(fixture_path(&format!("torch_{name}.json"))).unwrap();
        Case {
            name,
            json: serde_json::from_str(&text).unwrap(),
        }
    }

    fn usize(&self, key: &str) -> usize {
        self.json[key].as_u64().unwrap() as usize
    }

    fn floats(value: &serde_json::Value) -> Vec<f64> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    }

    fn get(&self, key: &str) -> Vec<f64> {
        Self::floats(&self.json[key])
    }

    fn lengths(&self) -> Vec<usize> {
        self.get("lengths")
            .into_iter()
            .map(|l| l as usize)
            .collect()
    }

    fn is_lstm(&self) -> bool {
        self.json["module"] == "lstm"
    }

    fn state_dict(&self, dtype: &str) -> PathBuf {
        fixture_path(&format!("torch_{}_{dtype}.safetensors", self.name))
    }

    /// A model whose one node is the case's module, as PyTorch has it (no peepholes).
    fn model_spec(&self, dtype: &str) -> ModelSpec {
        let op = match self.json["module"].as_str().unwrap() {
            "lstm" => json!({"type": "lstm", "peepholes": false}),
            "gru" => json!({"type": "gru"}),
            _ => json!({"type": "rnn", "activation": "tanh"}),
        };
        recurrent_model(
            dtype,
            self.usize("input_size"),
            op,
            self.usize("num_layers"),
        )
    }

    fn input<F: Scalar>(&self) -> Value<F> {
        let shape = (
            self.usize("batch"),
            self.usize("time"),
            self.usize("input_size"),
        );
        let data = self.get("x").into_iter().map(F::from_f64_lossy).collect();
        Value::Sequence {
            data: Array3::from_shape_vec(shape, data).unwrap(),
            lengths: Arc::from(self.lengths()),
        }
    }
}

/// `{"type": ...}` merged with a 2-directional stack of hidden size 4 named `rnn`.
fn recurrent_model(
    dtype: &str,
    input_size: usize,
    mut op: serde_json::Value,
    layers: usize,
) -> ModelSpec {
    let node = op.as_object_mut().unwrap();
    node.insert("name".into(), json!("rnn"));
    node.insert("inputs".into(), json!(["x"]));
    node.insert("hiddenSize".into(), json!(4));
    node.insert("numLayers".into(), json!(layers));
    node.insert("bidirectional".into(), json!(true));
    node.insert("output".into(), json!("sequence"));
    serde_json::from_value(json!({
        "dtype": dtype,
        "inputs": [{"kind": "sequence", "name": "x", "features": input_size}],
        "nodes": [op],
        "output": "rnn",
        "loss": "mse"
    }))
    .unwrap()
}

fn sgd() -> TrainingSpec {
    serde_json::from_value(json!({"optimizer": {"type": "sgd"}, "learningRate": 0.1})).unwrap()
}

fn to_f64<F: Scalar>(t: ArrayViewD<'_, F>) -> Vec<f64> {
    t.iter().map(|x| x.to_f64_lossy()).collect()
}

/// Imports the case's state dict and compares y, h_n, c_n, the loss and every weight gradient with PyTorch's.
fn reproduce_pytorch<F: Scalar>(case: &Case, dtype: &str, file: &str, tolerance: f64) {
    let mut model = Model::<F>::new(case.model_spec(dtype)).unwrap();
    import_state_dict(&mut model, "rnn", &case.state_dict(file)).unwrap();

    let pass = model.forward(vec![case.input()], false, 0, None).unwrap();
    let Value::Sequence { data: y, .. } = pass.output() else {
        panic!("a sequence output");
    };
    assert_close("y", to_f64(y.view().into_dyn()), &case.get("y"), tolerance);
    // PyTorch's h_n is [layers·directions, batch, H] in the order of our layer entries.
    let states = &pass.final_states[0];
    let h_n: Vec<f64> = states
        .iter()
        .flat_map(|s| to_f64(s.h.view().into_dyn()))
        .collect();
    assert_close("h_n", &h_n, &case.get("h_n"), tolerance);
    if case.is_lstm() {
        let c_n: Vec<f64> = states
            .iter()
            .flat_map(|s| to_f64(s.c.as_ref().unwrap().view().into_dyn()))
            .collect();
        assert_close("c_n", &c_n, &case.get("c_n"), tolerance);
    }

    // Our MSE towards zero is Σ y² / N over the N valid elements; PyTorch's loss is ½ Σ y².
    let valid: usize = case.lengths().iter().sum();
    let half_n = (valid * y.dim().2) as f64 / 2.0;
    let trainer = Trainer::new(model, sgd()).unwrap();
    let target = Target::Values(ArrayD::zeros(IxDyn(y.shape())));
    let (loss, grads, _) = trainer
        .gradients(vec![case.input()], &target, None, 0)
        .unwrap();
    assert_close(
        "loss",
        [loss * half_n],
        &[case.json["loss"].as_f64().unwrap()],
        tolerance,
    );
    let names = trainer.model.named_tensors();
    assert_eq!(names.len(), case.json["grads"].as_object().unwrap().len());
    for ((name, _), grad) in names.iter().zip(&grads.params) {
        let torch_name = name.strip_prefix("rnn.").unwrap();
        let ours: Vec<f64> = to_f64(grad.view()).iter().map(|g| g * half_n).collect();
        assert_close(
            name,
            &ours,
            &Case::floats(&case.json["grads"][torch_name]),
            tolerance,
        );
    }
}

const CASES: [&str; 4] = [
    "lstm_2layer_bidirectional",
    "lstm_2layer_bidirectional_varlen",
    "rnn_tanh_2layer_bidirectional",
    "gru_2layer_bidirectional_varlen",
];

#[test]
fn imported_pytorch_weights_reproduce_pytorch_in_f64() {
    for name in CASES {
        reproduce_pytorch::<f64>(&Case::new(name), "float64", "f64", 1e-9);
    }
}

#[test]
fn imported_pytorch_weights_reproduce_pytorch_in_f32() {
    for name in CASES {
        reproduce_pytorch::<f32>(&Case::new(name), "float32", "f32", 1e-5);
    }
}

fn tensors_of(path: &Path) -> BTreeMap<String, ArrayD<f32>> {
    tensor_file::load::<f32>(path).unwrap().tensors
}

#[test]
fn export_writes_back_exactly_the_imported_state_dict() {
    for name in CASES {
        let case = Case::new(name);
        let mut model = Model::<f32>::new(case.model_spec("float32")).unwrap();
        import_state_dict(&mut model, "rnn", &case.state_dict("f32")).unwrap();
        let dir = common::temp_dir();
        let exported = dir.path().join(format!("{name}.safetensors"));
        export_state_dict(&model, "rnn", &exported).unwrap();
        assert_eq!(
            tensors_of(&exported),
            tensors_of(&case.state_dict("f32")),
            "{name}"
        );
    }
}

/// Peepholes and FGR's gate recurrence go through the same names: `peephole_i_l0`, `weight_gg_l1_reverse`.
#[test]
fn peephole_and_fgr_tensors_round_trip_between_models() {
    let op = json!({"type": "lstm", "variant": "FGR"});
    let source = Model::<f64>::new(recurrent_model("float64", 3, op.clone(), 2)).unwrap();
    let mut other_spec = recurrent_model("float64", 3, op, 2);
    other_spec.seed = 99;
    let mut target = Model::<f64>::new(other_spec).unwrap();
    let dir = common::temp_dir();
    let file = dir.path().join("fgr.safetensors");
    export_state_dict(&source, "rnn", &file).unwrap();
    import_state_dict(&mut target, "rnn", &file).unwrap();

    let names: Vec<String> = source.named_tensors().into_iter().map(|(n, _)| n).collect();
    for key in [
        "rnn.peephole_i_l0",
        "rnn.peephole_o_l1_reverse",
        "rnn.weight_gg_l1",
        "rnn.weight_gg_l0_reverse",
    ] {
        assert!(names.iter().any(|n| n == key), "{key} not in {names:?}");
    }
    for ((name, a), (_, b)) in source.named_tensors().iter().zip(target.named_tensors()) {
        assert_eq!(a, &b, "{name}");
    }
}

fn import_error(spec: ModelSpec, node: &str, file: &Path) -> (Error, Model<f32>, Model<f32>) {
    let untouched = Model::<f32>::new(spec.clone()).unwrap();
    let mut model = Model::<f32>::new(spec).unwrap();
    let error = import_state_dict(&mut model, node, file).unwrap_err();
    (error, model, untouched)
}

/// Asserts the error names the file and `tensor`, the reason contains `expected`, and no weight changed.
fn assert_refused(spec: ModelSpec, file: &Path, tensor: &str, expected: &str) {
    let (error, model, untouched) = import_error(spec, "rnn", file);
    match &error {
        Error::Checkpoint {
            path,
            tensor: Some(named),
            reason,
        } => {
            assert_eq!(Path::new(path), file);
            assert_eq!(named, tensor, "{error}");
            assert!(reason.contains(expected), "{error}");
        }
        other => panic!("expected a checkpoint error about {tensor}, got {other:?}"),
    }
    for ((name, a), (_, b)) in model.named_tensors().iter().zip(untouched.named_tensors()) {
        assert_eq!(a, &b, "{name} changed although the import failed");
    }
}

#[test]
fn a_file_that_does_not_fit_the_node_is_refused_naming_the_tensor() {
    let file = Case::new("lstm_2layer_bidirectional").state_dict("f32");
    let plain = || json!({"type": "lstm", "peepholes": false});
    // Layer 1 reads both directions of layer 0: [16, 8] in the file; input 4 makes layer 0 [16, 4].
    assert_refused(
        recurrent_model("float32", 4, plain(), 2),
        &file,
        "weight_ih_l0",
        "node `rnn` expects shape [16, 4], got [16, 3]",
    );
    assert_refused(
        recurrent_model("float32", 3, plain(), 3),
        &file,
        "weight_ih_l2",
        "missing",
    );
    assert_refused(
        recurrent_model("float32", 3, plain(), 1),
        &file,
        "bias_hh_l1", // unexpected keys are reported in name order,
        "no tensor",
    );
    assert_refused(
        recurrent_model("float32", 3, json!({"type": "lstm"}), 2),
        &file,
        "peephole_i_l0",
        "peepholes: false",
    );
    assert_refused(
        recurrent_model("float32", 3, json!({"type": "rnn"}), 2),
        &file,
        "weight_ih_l0",
        "expects shape [4, 3], got [16, 3]",
    );
    assert_refused(
        recurrent_model("float32", 3, json!({"type": "gru"}), 2),
        &file,
        "weight_ih_l0",
        "expects shape [12, 3], got [16, 3]",
    );
}

#[test]
fn a_file_of_the_other_scalar_type_is_refused() {
    let case = Case::new("rnn_tanh_2layer_bidirectional");
    let mut model = Model::<f32>::new(case.model_spec("float32")).unwrap();
    let error = import_state_dict(&mut model, "rnn", &case.state_dict("f64")).unwrap_err();
    assert!(
        matches!(&error, Error::Checkpoint { reason, .. } if reason.contains("F64")),
        "{error}"
    );
}

#[test]
fn only_existing_recurrent_nodes_have_state_dicts() {
    let mut spec = Case::new("rnn_tanh_2layer_bidirectional").model_spec("float32");
    spec.nodes.push(
        serde_json::from_value(
            json!({"name": "head", "inputs": ["rnn"], "type": "dense", "units": 2}),
        )
        .unwrap(),
    );
    spec.output = "head".into();
    let file = Case::new("rnn_tanh_2layer_bidirectional").state_dict("f32");

    let (error, _, _) = import_error(spec.clone(), "head", &file);
    assert!(
        matches!(&error, Error::Invalid { name, .. } if name == "head"),
        "{error:?}"
    );
    let (error, _, _) = import_error(spec.clone(), "nope", &file);
    assert!(
        matches!(&error, Error::Key { name, .. } if name == "nope"),
        "{error:?}"
    );

    let model = Model::<f32>::new(spec).unwrap();
    let dir = common::temp_dir();
    let out = dir.path().join("dense.safetensors");
    assert!(matches!(
        export_state_dict(&model, "head", &out),
        Err(Error::Invalid { .. })
    ));
    assert!(!out.exists());
}
