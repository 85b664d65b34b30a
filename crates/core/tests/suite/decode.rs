//! Decoding: greedy picks the most likely token at every step and reports the
//! log-probability the model gives its sequence (checked against a teacher-forced
//! forward pass), beam search is never less likely than greedy, and the options and
//! models decoding cannot serve are refused naming the argument.

use std::sync::Arc;

use ndarray::Array2;
use odyssey_core::model::decode::{decode, DecodeOptions, Decoded};
use odyssey_core::model::{Model, Value};
use odyssey_core::Error;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VOCABULARY: usize = 6;
const START: u32 = 4;
const STOP: u32 = 5;

fn model(json: serde_json::Value) -> Model<f64> {
    Model::new(serde_json::from_value(json).expect("a valid spec")).expect("the model builds")
}

/// `dec` → embedding → LSTM → dense, beside a `src` → embedding → LSTM (states) encoder.
/// Once recurrent nodes take an `initialState`, the decoder starts from the encoder's
/// states; until then the test exercises the decoding itself (context once, decoder stepped).
fn seq2seq(seed: u64) -> Model<f64> {
    model(serde_json::json!({
        "dtype": "float64", "seed": seed,
        "inputs": [{"kind": "tokens", "name": "src"}, {"kind": "tokens", "name": "dec"}],
        "nodes": [
            {"name": "src_emb", "inputs": ["src"], "type": "embedding", "vocabSize": VOCABULARY, "dim": 4},
            {"name": "enc", "inputs": ["src_emb"], "type": "lstm", "hiddenSize": 8, "output": "states"},
            {"name": "dec_emb", "inputs": ["dec"], "type": "embedding", "vocabSize": VOCABULARY, "dim": 4},
            {"name": "decoder", "inputs": ["dec_emb"], "type": "lstm", "hiddenSize": 8},
            {"name": "out", "inputs": ["decoder"], "type": "dense", "units": VOCABULARY}
        ],
        "output": "out", "loss": "crossEntropy"
    }))
}

fn tokens(ids: Vec<u32>, batch: usize) -> Value<f64> {
    let time = ids.len() / batch;
    Value::Tokens {
        ids: Array2::from_shape_vec((batch, time), ids).unwrap(),
        lengths: Arc::from(vec![time; batch]),
    }
}

fn sources(batch: usize, time: usize) -> Value<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    tokens(
        (0..batch * time).map(|_| rng.gen_range(0..4)).collect(),
        batch,
    )
}

fn options(beam_width: usize) -> DecodeOptions {
    DecodeOptions {
        decoder_input: "dec".into(),
        start: START,
        stop: STOP,
        max_steps: 7,
        beam_width,
        length_penalty: 0.0,
    }
}

/// The log-probability the model gives `ids` (then `stop`, unless `max_steps` ids were
/// decoded) for one source, and whether every token was the most likely one, by one
/// teacher-forced forward pass over `[start, ids...]`.
fn teacher_forced(
    model: &Model<f64>,
    source: &Value<f64>,
    b: usize,
    ids: &[u32],
    max_steps: usize,
) -> (f64, bool) {
    let Value::Tokens { ids: src, .. } = source else {
        unreachable!()
    };
    let row = src.row(b).to_vec();
    let mut fed = vec![START];
    fed.extend_from_slice(ids);
    let mut targets = ids.to_vec();
    if ids.len() < max_steps {
        targets.push(STOP);
    } else {
        fed.pop();
    }
    let pass = model
        .forward(vec![tokens(row, 1), tokens(fed, 1)], false, 0, None)
        .unwrap();
    let logits = pass.output().float_data("output").unwrap();
    let (mut log_prob, mut greedy) = (0.0, true);
    for (t, &target) in targets.iter().enumerate() {
        let z: Vec<f64> = (0..VOCABULARY).map(|k| logits[[0, t, k]]).collect();
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_sum = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        log_prob += z[target as usize] - log_sum;
        greedy &= z[target as usize] == max;
    }
    (log_prob, greedy)
}

#[test]
fn greedy_takes_the_most_likely_token_and_scores_its_sequence() {
    let (model, source) = (seq2seq(3), sources(5, 6));
    let Decoded { ids, log_probs } = decode(&model, vec![source.clone()], &options(1)).unwrap();
    assert_eq!(ids.len(), 5);
    for b in 0..5 {
        assert!(!ids[b].contains(&STOP));
        let (log_prob, greedy) = teacher_forced(&model, &source, b, &ids[b], 7);
        assert!(greedy, "example {b}: {:?} is not the argmax path", ids[b]);
        assert!(
            (log_prob - log_probs[b]).abs() < 1e-10,
            "{log_prob} vs {}",
            log_probs[b]
        );
    }
}

#[test]
fn beam_search_is_never_less_likely_than_greedy_and_scores_its_sequence() {
    for seed in 0..4 {
        let (model, source) = (seq2seq(seed), sources(6, 5));
        let greedy = decode(&model, vec![source.clone()], &options(1)).unwrap();
        let beam = decode(&model, vec![source.clone()], &options(4)).unwrap();
        for b in 0..6 {
            assert!(
                beam.log_probs[b] >= greedy.log_probs[b] - 1e-12,
                "seed {seed}, example {b}"
            );
            let (log_prob, _) = teacher_forced(&model, &source, b, &beam.ids[b], 7);
            assert!((log_prob - beam.log_probs[b]).abs() < 1e-10);
        }
    }
}

#[test]
fn refuses_what_decoding_cannot_serve_naming_the_argument() {
    let model = seq2seq(1);
    let source = || vec![sources(2, 3)];
    let invalid = |options: DecodeOptions| decode(&model, source(), &options).unwrap_err();
    let named = |err: Error, name: &str| {
        assert!(
            matches!(&err, Error::Invalid { name: n, .. } if n == name),
            "{err}"
        );
    };
    named(
        invalid(DecodeOptions {
            decoder_input: "src_emb".into(),
            ..options(1)
        }),
        "decoderInput",
    );
    named(
        invalid(DecodeOptions {
            start: 6,
            ..options(1)
        }),
        "start",
    );
    named(
        invalid(DecodeOptions {
            stop: 9,
            ..options(2)
        }),
        "stop",
    );
    named(
        invalid(DecodeOptions {
            max_steps: 0,
            ..options(1)
        }),
        "maxSteps",
    );
    named(
        invalid(DecodeOptions {
            beam_width: 0,
            ..options(1)
        }),
        "beamWidth",
    );
    named(
        invalid(DecodeOptions {
            length_penalty: f64::NAN,
            ..options(1)
        }),
        "lengthPenalty",
    );
    let err = decode(&model, vec![], &options(1)).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "inputs"),
        "{err}"
    );

    let regressor = model_without_token_decoder();
    let err = decode(&regressor, vec![], &options(1)).unwrap_err();
    assert!(
        err.to_string().contains("the model has no token input"),
        "{err}"
    );
}

fn model_without_token_decoder() -> Model<f64> {
    model(serde_json::json!({
        "dtype": "float64",
        "inputs": [{"kind": "sequence", "name": "x", "features": 2}],
        "nodes": [{"name": "out", "inputs": ["x"], "type": "dense", "units": 3}],
        "output": "out", "loss": "crossEntropy"
    }))
}
