//! The LSTM's inference pass (`Lstm::infer`: predict, evaluate, streaming and decoding
//! keep no backward cache) gives the training forward pass's outputs bit for bit, for
//! every variant, padding, initial states, strided inputs, multi-threaded and streaming
//! sizes, in f32 and f64; and a model's inference pass (training = false) equals its
//! training pass and refuses to be backpropagated through.

use std::sync::Arc;

use ndarray::{s, Array2, Array3, ArrayD};
use odyssey_core::layers::{Lstm, LstmConfig, LstmVariant, SequenceBatch, SequenceOutput};
use odyssey_core::model::{Model, ModelSpec, Value};
use odyssey_core::{Error, Scalar};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random<F: Scalar>(rng: &mut ChaCha8Rng, shape: (usize, usize, usize)) -> Array3<F> {
    Array3::from_shape_simple_fn(shape, || F::from_f64_lossy(rng.gen_range(-1.0..1.0)))
}

fn assert_same<F: Scalar>(what: &str, a: &SequenceOutput<F>, b: &SequenceOutput<F>) {
    // Bitwise: the same products and cell arithmetic, only the buffers differ.
    assert!(a.y == b.y, "{what}: y differs");
    assert!(a.h_n == b.h_n, "{what}: h_n differs");
    assert!(a.c_n == b.c_n, "{what}: c_n differs");
}

/// `[batch, time, input, hidden]` sizes: a streaming step (PyTorch gate order, weights in
/// place), small odd sizes, one large enough for the lock-step split over threads with a
/// hidden size that is no multiple of the gate blocks, and a batch large enough for the
/// split by sequences (two parts of whole micro-kernel tiles, the last part with a partial
/// tile).
const SIZES: [[usize; 4]; 5] = [
    [1, 1, 5, 7],
    [3, 5, 4, 6],
    [2, 2, 3, 20],
    [9, 7, 11, 100],
    [37, 6, 13, 40],
];

fn infer_equals_forward<F: Scalar>() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for variant in LstmVariant::ALL {
        for peepholes in [false, true] {
            for [batch, time, input, hidden] in SIZES {
                let config = LstmConfig::new(input, hidden)
                    .with_variant(variant)
                    .with_peepholes(peepholes);
                let lstm = Lstm::<F>::new(config, F::one(), &mut rng).expect("valid");
                let mut x = random::<F>(&mut rng, (batch, time, input));
                let lengths: Vec<usize> = (0..batch).map(|b| time - b % time).collect();
                // Whatever lies in padded steps must not matter to either pass.
                for (b, &length) in lengths.iter().enumerate() {
                    x.slice_mut(s![b, length.., ..])
                        .fill(F::from_f64_lossy(1e6));
                }
                let h0 = random::<F>(&mut rng, (1, batch, hidden)).remove_axis(ndarray::Axis(0));
                let c0 = random::<F>(&mut rng, (1, batch, hidden)).remove_axis(ndarray::Axis(0));
                let what = format!(
                    "{variant:?} peepholes {peepholes} sizes {batch}×{time}×{input}→{hidden}"
                );
                let plain = SequenceBatch::new(x.view());
                let padded = SequenceBatch {
                    lengths: Some(&lengths),
                    h0: Some(h0.view()),
                    c0: Some(c0.view()),
                    ..plain
                };
                for (case, batch_in) in [("plain", plain), ("padded, initial state", padded)] {
                    let (trained, _) = lstm.forward(&batch_in).expect("valid");
                    let inferred = lstm.infer(&batch_in).expect("valid");
                    assert_same(&format!("{what}, {case}"), &trained, &inferred);
                }
                // A time-major view of the same data (not standard layout) and a transposed h0.
                let x_t = x
                    .clone()
                    .permuted_axes([1, 0, 2])
                    .as_standard_layout()
                    .to_owned();
                let strided = x_t.view().permuted_axes([1, 0, 2]);
                let h0_t = h0.t().as_standard_layout().to_owned();
                let odd = SequenceBatch {
                    x: strided,
                    h0: Some(h0_t.t()),
                    ..padded
                };
                let (trained, _) = lstm.forward(&odd).expect("valid");
                assert_same(
                    &format!("{what}, strided"),
                    &trained,
                    &lstm.infer(&odd).expect("valid"),
                );
            }
        }
    }
}

#[test]
fn inference_gives_the_training_forward_outputs_bit_for_bit() {
    infer_equals_forward::<f32>();
    infer_equals_forward::<f64>();
}

#[test]
fn inference_validates_like_the_training_pass() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let lstm = Lstm::<f64>::new(LstmConfig::new(3, 4), 1.0, &mut rng).expect("valid");
    let x = Array3::<f64>::zeros((2, 3, 5));
    let expected = lstm.forward(&SequenceBatch::new(x.view())).unwrap_err();
    assert!(matches!(expected, Error::Shape { .. }));
    assert_eq!(
        lstm.infer(&SequenceBatch::new(x.view())).unwrap_err(),
        expected
    );
    let x = Array3::<f64>::zeros((2, 3, 3));
    let h0 = Array2::<f64>::zeros((2, 5));
    let batch = SequenceBatch {
        h0: Some(h0.view()),
        ..SequenceBatch::new(x.view())
    };
    assert_eq!(
        lstm.infer(&batch).unwrap_err(),
        lstm.forward(&batch).unwrap_err()
    );
}

fn two_layer_model() -> Model<f32> {
    let spec: ModelSpec = serde_json::from_str(
        r#"{
            "inputs": [{ "kind": "sequence", "name": "x", "features": 6 }],
            "nodes": [
                { "name": "lstm", "inputs": ["x"], "type": "lstm", "hiddenSize": 24,
                  "numLayers": 2, "bidirectional": true },
                { "name": "head", "inputs": ["lstm"], "type": "dense", "units": 3 }
            ],
            "output": "head",
            "loss": "mse",
            "dtype": "float32",
            "seed": 5
        }"#,
    )
    .expect("a valid spec");
    Model::new(spec).expect("a valid model")
}

#[test]
fn a_models_inference_pass_equals_its_training_pass_and_keeps_nothing_for_backward() {
    let model = two_layer_model();
    let input = || Value::Sequence {
        data: random::<f32>(&mut ChaCha8Rng::seed_from_u64(10), (5, 8, 6)),
        lengths: Arc::from(vec![8, 3, 1, 8, 6]),
    };
    let output = |training: bool| -> (ArrayD<f32>, _) {
        let pass = model
            .forward(vec![input()], training, 0, None)
            .expect("valid");
        (pass.output().float_data("output").expect("floats"), pass)
    };
    let (trained, _) = output(true);
    let (inferred, pass) = output(false);
    assert!(trained == inferred, "inference changed the model's output");
    let doutput = ArrayD::<f32>::ones(inferred.shape());
    let error = model
        .backward(pass, doutput, &Default::default())
        .err()
        .expect("an inference pass cannot be backpropagated");
    assert!(
        error.to_string().contains("inference pass"),
        "unexpected error: {error}"
    );
}
