//! The fit loop, evaluation, prediction and streaming over datasets: batch
//! order, resumability, cancellation, non-finite steps, batch-size invariance
//! of evaluation, and stepping through time against whole-sequence prediction.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ndarray::{s, Array2, Array3, Axis};
use odyssey_core::model::dataset::batch_rows;
use odyssey_core::model::{
    evaluate, fit, predict, predict_into, predicted_shape, BatchProgress, Dataset, EpochProgress,
    FitError, FitObserver, FitOptions, Model, ModelSpec, Order, Stream, Target, Tbptt, Trainer,
    TrainingSpec, Value,
};
use odyssey_core::{Error, Scalar};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common;
use common::weights;

/// The cancel flag of the calls nobody cancels.
static NEVER: AtomicBool = AtomicBool::new(false);

fn model<F: Scalar>(json: serde_json::Value) -> Model<F> {
    let spec: ModelSpec = serde_json::from_value(json).expect("valid model spec");
    Model::new(spec).expect("model builds")
}

fn adam(lr: f64) -> TrainingSpec {
    serde_json::from_value(serde_json::json!({"optimizer": {"type": "adam"}, "learningRate": lr}))
        .unwrap()
}

/// LSTM → dense(1) reading `[batch, time, 2]`; `output` is `"sequence"` or `"last"`.
fn regressor<F: Scalar>(output: &str, dtype: &str) -> Trainer<F> {
    let m = model(serde_json::json!({
        "dtype": dtype, "seed": 7,
        "inputs": [{"kind": "sequence", "name": "x", "features": 2}],
        "nodes": [
            {"name": "lstm", "inputs": ["x"], "type": "lstm", "hiddenSize": 6, "output": output},
            {"name": "out", "inputs": ["lstm"], "type": "dense", "units": 1}
        ],
        "output": "out", "loss": "mse"
    }));
    Trainer::new(m, adam(0.01)).unwrap()
}

/// `n` sequences `[n, time, 2]` of values in [0, 1) whose target is the running sum of feature 0
/// (`[n, time, 1]`) or its total (`[n, 1]`), with lengths drawn from `min_length..=time`.
fn running_sums<F: Scalar>(
    n: usize,
    time: usize,
    min_length: usize,
    total: bool,
    seed: u64,
) -> Dataset<F> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array3::from_shape_fn((n, time, 2), |_| F::from_f64_lossy(rng.gen_range(0.0..1.0)));
    let lengths: Vec<usize> = (0..n).map(|_| rng.gen_range(min_length..=time)).collect();
    let mut sums = Array3::zeros((n, time, 1));
    for b in 0..n {
        let mut acc = F::zero();
        for t in 0..lengths[b] {
            acc = acc + x[[b, t, 0]] * F::from_f64_lossy(0.2);
            sums[[b, t, 0]] = acc;
        }
    }
    let target = if total {
        let last: Vec<F> = (0..n).map(|b| sums[[b, lengths[b] - 1, 0]]).collect();
        Array2::from_shape_vec((n, 1), last).unwrap().into_dyn()
    } else {
        sums.into_dyn()
    };
    let inputs = vec![Value::Sequence {
        data: x,
        lengths: Arc::from(lengths),
    }];
    Dataset::new(inputs, Some(Target::Values(target))).unwrap()
}

/// Records every callback; optionally raises the cancel flag after batch `cancel_after`.
#[derive(Default)]
struct Recorder {
    batches: Vec<BatchProgress>,
    epochs: Vec<EpochProgress>,
    cancel_after: Option<(usize, Arc<AtomicBool>)>,
}

impl FitObserver for Recorder {
    fn batch_end(&mut self, progress: &BatchProgress) {
        self.batches.push(progress.clone());
        if let Some((after, flag)) = &self.cancel_after {
            if self.batches.len() == after + 1 {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }
    fn epoch_end(&mut self, progress: &EpochProgress) {
        self.epochs.push(progress.clone());
    }
}

fn options(epochs: usize, batch_size: usize) -> FitOptions {
    FitOptions {
        epochs,
        batch_size,
        seed: 11,
        ..FitOptions::default()
    }
}

#[test]
fn batches_cover_every_example_once_in_an_order_fixed_by_seed_and_epoch() {
    let sequential = batch_rows(10, 4, Order::Sequential);
    assert_eq!(
        sequential,
        vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]
    );
    let epoch = |seed, epoch| batch_rows(10, 4, Order::Shuffled { seed, epoch });
    let mut seen: Vec<usize> = epoch(3, 0).concat();
    seen.sort_unstable();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert_eq!(epoch(3, 1), epoch(3, 1), "same (seed, epoch), same order");
    assert_ne!(epoch(3, 0), epoch(3, 1), "a new order every epoch");
    assert_ne!(epoch(3, 0), epoch(4, 0), "the seed matters");
}

#[test]
fn fit_lowers_the_loss_and_reports_every_batch_and_epoch() {
    let mut trainer = regressor::<f32>("sequence", "float32");
    let data = running_sums::<f32>(40, 6, 3, false, 1);
    let validation = running_sums::<f32>(12, 6, 3, false, 2);
    let before = evaluate(&trainer.model, &validation, 8, &NEVER)
        .unwrap()
        .loss;
    let mut recorder = Recorder::default();
    let summary = fit(
        &mut trainer,
        &data,
        Some(&validation),
        &options(25, 8),
        &mut recorder,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(summary.epochs.len(), 25);
    assert!(!summary.cancelled);
    assert_eq!(
        recorder.batches.len(),
        25 * 5,
        "40 examples in batches of 8"
    );
    assert_eq!(trainer.step_count(), 125);
    let first = &recorder.batches[0];
    assert_eq!(
        (first.epoch, first.batch, first.batches, first.examples),
        (0, 0, 5, 8)
    );
    assert!(
        first.grad_norm > 0.0 && first.examples_per_second > 0.0 && first.learning_rate == 0.01
    );
    assert!(recorder
        .batches
        .iter()
        .all(|b| b.applied && b.loss.is_finite()));
    let last = summary.epochs.last().unwrap();
    assert_eq!(recorder.epochs.last(), Some(last));
    let after = last.validation.unwrap();
    assert_eq!(after.accuracy, None, "no accuracy for MSE");
    assert!(
        after.loss < before / 5.0,
        "validation loss {before} -> {}",
        after.loss
    );
    assert!(last.loss < summary.epochs[0].loss / 5.0);
}

#[test]
fn an_interrupted_run_resumed_at_its_epoch_ends_bitwise_equal_to_an_uninterrupted_one() {
    let data = running_sums::<f32>(20, 5, 2, false, 3);
    let no_cancel = AtomicBool::new(false);
    let mut straight = regressor::<f32>("sequence", "float32");
    fit(
        &mut straight,
        &data,
        None,
        &options(3, 6),
        &mut (),
        &no_cancel,
    )
    .unwrap();
    let mut resumed = regressor::<f32>("sequence", "float32");
    fit(
        &mut resumed,
        &data,
        None,
        &options(1, 6),
        &mut (),
        &no_cancel,
    )
    .unwrap();
    let rest = FitOptions {
        initial_epoch: 1,
        ..options(3, 6)
    };
    fit(&mut resumed, &data, None, &rest, &mut (), &no_cancel).unwrap();
    assert_eq!(weights(&mut straight), weights(&mut resumed));
}

#[test]
fn cancelling_stops_before_the_next_batch_and_keeps_the_last_finished_update() {
    let data = running_sums::<f32>(32, 5, 2, false, 4);
    let flag = Arc::new(AtomicBool::new(false));
    let mut trainer = regressor::<f32>("sequence", "float32");
    let mut recorder = Recorder {
        cancel_after: Some((2, flag.clone())),
        ..Recorder::default()
    };
    let summary = fit(
        &mut trainer,
        &data,
        None,
        &options(5, 8),
        &mut recorder,
        &flag,
    )
    .unwrap();
    assert!(summary.cancelled);
    assert!(summary.epochs.is_empty(), "the first epoch never finished");
    assert_eq!(
        recorder.batches.len(),
        3,
        "batches 0, 1 and 2 ran; the flag stopped batch 3"
    );
    assert_eq!(trainer.step_count(), 3);
    // The same three updates without cancelling give the same weights.
    let mut reference = regressor::<f32>("sequence", "float32");
    let order = batch_rows(32, 8, Order::Shuffled { seed: 11, epoch: 0 });
    for rows in &order[..3] {
        let batch = data.batch(rows, false);
        reference
            .train_step(batch.inputs, batch.target.as_ref().unwrap())
            .unwrap();
    }
    assert_eq!(weights(&mut trainer), weights(&mut reference));
    assert!(predict(&trainer.model, &data, 8, &NEVER)
        .unwrap()
        .iter()
        .all(|v| v.is_finite()));
}

/// A float32 target of 1e20 is finite, but its square overflows: that batch's loss is infinite.
fn data_with_an_overflowing_target() -> Dataset<f32> {
    let finite = running_sums::<f32>(8, 4, 4, true, 5);
    let mut target = match finite.target().unwrap() {
        Target::Values(v) => v.clone(),
        Target::Classes(_) => unreachable!(),
    };
    target[[5, 0]] = 1e20;
    Dataset::new(finite.inputs().to_vec(), Some(Target::Values(target))).unwrap()
}

#[test]
fn non_finite_steps_are_skipped_counted_and_reported() {
    let data = data_with_an_overflowing_target();
    let mut trainer = regressor::<f32>("last", "float32");
    let mut recorder = Recorder::default();
    let sequential = FitOptions {
        shuffle: false,
        ..options(2, 4)
    };
    let summary = fit(
        &mut trainer,
        &data,
        None,
        &sequential,
        &mut recorder,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(
        summary.non_finite_updates, 2,
        "example 5 is in batch 1 of both epochs"
    );
    let applied: Vec<bool> = recorder.batches.iter().map(|b| b.applied).collect();
    assert_eq!(applied, vec![true, false, true, false]);
    assert!(recorder.batches[1].loss.is_infinite());
    assert_eq!(
        trainer.step_count(),
        2,
        "only the finite batches updated the weights"
    );
    assert_eq!(recorder.epochs[0].non_finite_updates, 1);
    assert!(
        recorder.epochs[0].loss.is_finite(),
        "the epoch loss leaves the skipped batch out"
    );
}

#[test]
fn stop_on_non_finite_ends_fit_with_an_error_naming_the_batch() {
    let data = data_with_an_overflowing_target();
    let mut trainer = regressor::<f32>("last", "float32");
    let stop = FitOptions {
        shuffle: false,
        stop_on_non_finite: true,
        ..options(2, 4)
    };
    let err = fit(
        &mut trainer,
        &data,
        None,
        &stop,
        &mut (),
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            FitError::NonFiniteStep {
                epoch: 0,
                batch: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("stopOnNonFinite"), "{err}");
    assert_eq!(trainer.step_count(), 1);
}

#[test]
fn evaluation_is_the_same_for_any_batch_size_with_padded_sequences() {
    let trainer = regressor::<f64>("sequence", "float64");
    let data = running_sums::<f64>(11, 7, 1, false, 6);
    let whole = evaluate(&trainer.model, &data, 11, &NEVER).unwrap();
    for batch_size in [1, 3, 4] {
        let batched = evaluate(&trainer.model, &data, batch_size, &NEVER).unwrap();
        assert!(
            (batched.loss - whole.loss).abs() < 1e-12,
            "{batch_size}: {} vs {}",
            batched.loss,
            whole.loss
        );
        assert_eq!(batched.examples, 11);
    }
    // Vector outputs: batches drop padded steps, which must not change anything.
    let last = regressor::<f64>("last", "float64");
    let totals = running_sums::<f64>(11, 7, 1, true, 6);
    let a = evaluate(&last.model, &totals, 11, &NEVER).unwrap().loss;
    let b = evaluate(&last.model, &totals, 2, &NEVER).unwrap().loss;
    assert!((a - b).abs() < 1e-12, "{a} vs {b}");
}

#[test]
fn classification_accuracy_counts_valid_steps_whose_largest_logit_is_the_target() {
    let m = model::<f64>(serde_json::json!({
        "dtype": "float64", "seed": 2,
        "inputs": [{"kind": "tokens", "name": "words"}],
        "nodes": [
            {"name": "embed", "inputs": ["words"], "type": "embedding", "vocabSize": 5, "dim": 3},
            {"name": "rnn", "inputs": ["embed"], "type": "rnn", "hiddenSize": 4},
            {"name": "out", "inputs": ["rnn"], "type": "dense", "units": 3}
        ],
        "output": "out", "loss": "crossEntropy"
    }));
    let ids = Array2::from_shape_fn((4, 5), |(b, t)| ((b * 3 + t) % 5) as u32);
    let lengths = vec![5, 2, 4, 1];
    let classes: Vec<u32> = (0..20).map(|i| (i % 3) as u32).collect();
    let inputs = vec![Value::Tokens {
        ids,
        lengths: Arc::from(lengths.clone()),
    }];
    let data = Dataset::new(inputs, Some(Target::Classes(classes.clone()))).unwrap();
    let logits = predict(&m, &data, 3, &NEVER).unwrap();
    assert_eq!(logits.shape(), &[4, 5, 3]);
    let (mut correct, mut counted) = (0, 0);
    for b in 0..4 {
        for t in 0..lengths[b] {
            let row = logits.slice(s![b, t, ..]);
            let best = (0..3)
                .max_by(|&i, &j| row[i].partial_cmp(&row[j]).unwrap())
                .unwrap();
            correct += usize::from(best == classes[b * 5 + t] as usize);
            counted += 1;
        }
    }
    let evaluation = evaluate(&m, &data, 3, &NEVER).unwrap();
    assert_eq!(counted, 12);
    assert_eq!(evaluation.accuracy, Some(correct as f64 / counted as f64));
}

#[test]
fn predicting_in_batches_equals_one_forward_pass() {
    let trainer = regressor::<f64>("sequence", "float64");
    let data = running_sums::<f64>(9, 6, 2, false, 8);
    let batched = predict(&trainer.model, &data, 4, &NEVER).unwrap();
    let whole = trainer
        .model
        .forward(data.inputs().to_vec(), false, 0, None)
        .unwrap();
    assert_eq!(batched, whole.output().float_data("output").unwrap());
}

#[test]
fn predict_into_fills_every_batch_rows_and_refuses_a_buffer_of_another_size() {
    let trainer = regressor::<f64>("sequence", "float64");
    let data = running_sums::<f64>(9, 6, 2, false, 8);
    assert_eq!(predicted_shape(&trainer.model, &data).unwrap(), [9, 6, 1]);
    let whole = predict(&trainer.model, &data, 9, &NEVER).unwrap();
    // Batches of 4, 4 and 1 rows, each into its own part of the buffer.
    let mut out = vec![f64::NAN; 9 * 6];
    predict_into(&trainer.model, &data, 4, &NEVER, &mut out).unwrap();
    assert_eq!(out, whole.as_slice().unwrap());
    let mut short = vec![0.0; 9 * 6 - 1];
    let refused = predict_into(&trainer.model, &data, 4, &NEVER, &mut short).unwrap_err();
    assert!(matches!(refused, Error::Shape { ref name, .. } if name == "out"));
    assert!(short.iter().all(|&v| v == 0.0));

    let last = regressor::<f64>("last", "float64");
    assert_eq!(predicted_shape(&last.model, &data).unwrap(), [9, 1]);
}

#[test]
fn a_raised_cancel_flag_stops_predict_and_evaluate() {
    let trainer = regressor::<f64>("sequence", "float64");
    let data = running_sums::<f64>(9, 6, 2, false, 8);
    let raised = AtomicBool::new(true);
    let stopped = predict(&trainer.model, &data, 4, &raised).unwrap_err();
    assert!(matches!(stopped, Error::Invalid { ref name, .. } if name == "cancel"));
    assert!(evaluate(&trainer.model, &data, 4, &raised).is_err());
}

#[test]
fn stepping_through_time_equals_predicting_the_whole_sequence() {
    let m = model::<f64>(serde_json::json!({
        "dtype": "float64", "seed": 4,
        "inputs": [{"kind": "sequence", "name": "x", "features": 2}],
        "nodes": [
            {"name": "lstm", "inputs": ["x"], "type": "lstm", "hiddenSize": 5, "numLayers": 2},
            {"name": "rnn", "inputs": ["lstm"], "type": "rnn", "hiddenSize": 3},
            {"name": "out", "inputs": ["rnn"], "type": "dense", "units": 2}
        ],
        "output": "out", "loss": "mse"
    }));
    let data = running_sums::<f64>(3, 8, 8, false, 9);
    let whole = predict(&m, &data, 3, &NEVER).unwrap();
    let Value::Sequence { data: x, .. } = &data.inputs()[0] else {
        unreachable!()
    };
    let mut stream = Stream::new();
    for (start, end) in [(0, 1), (1, 2), (2, 5), (5, 8)] {
        let chunk = x.slice(s![.., start..end, ..]).to_owned();
        let inputs = vec![Value::Sequence {
            data: chunk,
            lengths: Arc::from(vec![end - start; 3]),
        }];
        let out = stream.step(&m, inputs).unwrap();
        let expected = whole.slice_axis(Axis(1), (start..end).into());
        let gap = (&out - &expected)
            .iter()
            .fold(0.0f64, |g, d| g.max(d.abs()));
        assert!(gap < 1e-12, "steps {start}..{end} differ by {gap}");
    }
    // After a reset the stream starts over: the first step again.
    stream.reset();
    let first = vec![Value::Sequence {
        data: x.slice(s![.., 0..1, ..]).to_owned(),
        lengths: Arc::from(vec![1; 3]),
    }];
    let again = stream.step(&m, first.clone()).unwrap();
    assert!((&again - &whole.slice_axis(Axis(1), (0..1).into()))
        .iter()
        .all(|d| d.abs() < 1e-12));
    let other_batch = vec![Value::Sequence {
        data: Array3::zeros((2, 1, 2)),
        lengths: Arc::from(vec![1; 2]),
    }];
    let err = stream.step(&m, other_batch).unwrap_err();
    assert!(err.to_string().contains("a batch of 3"), "{err}");
}

#[test]
fn a_bidirectional_model_cannot_be_streamed() {
    let m = model::<f32>(serde_json::json!({
        "inputs": [{"kind": "sequence", "name": "x", "features": 1}],
        "nodes": [{"name": "bi", "inputs": ["x"], "type": "lstm", "hiddenSize": 2, "bidirectional": true}],
        "output": "bi", "loss": "mse"
    }));
    let inputs = vec![Value::Sequence {
        data: Array3::zeros((1, 1, 1)),
        lengths: Arc::from(vec![1]),
    }];
    let err = Stream::new().step(&m, inputs).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { name, .. } if name == "bi"),
        "{err}"
    );
}

#[test]
fn fit_with_tbptt_over_the_whole_sequence_equals_full_bptt() {
    let data = running_sums::<f64>(12, 6, 6, false, 10);
    let no_cancel = AtomicBool::new(false);
    let mut full = regressor::<f64>("sequence", "float64");
    fit(&mut full, &data, None, &options(2, 4), &mut (), &no_cancel).unwrap();
    let mut truncated = regressor::<f64>("sequence", "float64");
    let tbptt = FitOptions {
        tbptt: Some(Tbptt { k1: 6, k2: 6 }),
        ..options(2, 4)
    };
    fit(&mut truncated, &data, None, &tbptt, &mut (), &no_cancel).unwrap();
    assert_eq!(weights(&mut full), weights(&mut truncated));
    // Shorter windows: several updates per batch, all reported as one batch.
    let mut windows = regressor::<f64>("sequence", "float64");
    let mut recorder = Recorder::default();
    let short = FitOptions {
        tbptt: Some(Tbptt { k1: 2, k2: 3 }),
        ..options(1, 4)
    };
    fit(&mut windows, &data, None, &short, &mut recorder, &no_cancel).unwrap();
    assert_eq!(recorder.batches.len(), 3);
    assert_eq!(windows.step_count(), 9, "three windows per batch");
}

#[test]
fn datasets_reject_mismatched_counts_bad_lengths_and_non_finite_values() {
    let seq = |n: usize, lengths: Vec<usize>| Value::Sequence {
        data: Array3::<f32>::zeros((n, 3, 1)),
        lengths: Arc::from(lengths),
    };
    let err = Dataset::new(
        vec![seq(2, vec![3, 3]), Value::Vector(Array2::zeros((3, 1)))],
        None,
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "inputs[1]"),
        "{err}"
    );
    let err = Dataset::new(vec![seq(2, vec![3, 4])], None).unwrap_err();
    assert_eq!(
        err,
        Error::Length {
            index: 1,
            value: 4,
            max: 3
        }
    );
    let mut nan = Array2::<f32>::zeros((2, 2));
    nan[[1, 0]] = f32::NAN;
    let err = Dataset::new(vec![Value::Vector(nan)], None).unwrap_err();
    assert!(
        matches!(&err, Error::NonFinite { name, index: 2, .. } if name == "inputs[0]"),
        "{err}"
    );
    let err = Dataset::new(
        vec![seq(2, vec![3, 3])],
        Some(Target::Classes(vec![0, 1, 2])),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "target"),
        "{err}"
    );
    let trainer = regressor::<f32>("last", "float32");
    let unlabelled = Dataset::new(vec![seq(2, vec![3, 3])], None).unwrap();
    assert!(evaluate(&trainer.model, &unlabelled, 2, &NEVER)
        .unwrap_err()
        .to_string()
        .contains("targets"));
}
