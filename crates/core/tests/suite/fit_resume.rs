//! Checkpoints that remember where `fit` stopped: the position (finished
//! epochs, batch, batch size, shuffle, seed) is saved and restored with the
//! metadata, and a run resumed from it — at an epoch's end or inside an
//! epoch — is bitwise equal to one that never stopped.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ndarray::Array3;
use odyssey_core::model::checkpoint::{
    load_with_metadata, read_config, save, LoadedTrainer, CONFIG_FILE, MANIFEST_FILE,
};
use odyssey_core::model::{
    fit, BatchProgress, Dataset, EpochProgress, FitObserver, FitOptions, FitRequest, Model, Target,
    Trainer, TrainingPosition, Value,
};
use odyssey_core::Error;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::common;

/// LSTM → dropout → dense on every step, trained with Adam and a decaying schedule: the
/// dropout masks (step), the order (seed, epoch) and the optimizer all have to come back.
fn trainer() -> Trainer<f32> {
    let spec = serde_json::from_value(json!({
        "dtype": "float32", "seed": 5,
        "inputs": [{"kind": "sequence", "name": "x", "features": 2}],
        "nodes": [
            {"name": "lstm", "inputs": ["x"], "type": "lstm", "hiddenSize": 4},
            {"name": "drop", "inputs": ["lstm"], "type": "dropout", "rate": 0.2},
            {"name": "out", "inputs": ["drop"], "type": "dense", "units": 1}
        ],
        "output": "out", "loss": "mse"
    }))
    .unwrap();
    let training = serde_json::from_value(json!({
        "optimizer": {"type": "adam"}, "learningRate": 0.01,
        "schedule": {"schedule": {"type": "exponential", "gamma": 0.95}}
    }))
    .unwrap();
    Trainer::new(Model::new(spec).unwrap(), training).unwrap()
}

/// 22 sequences `[22, 4, 2]` (batches of 5: four full and one of 2) with running-sum targets.
fn data() -> Dataset<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x = Array3::from_shape_fn((22, 4, 2), |_| rng.gen_range(0.0f32..1.0));
    let mut y = Array3::zeros((22, 4, 1));
    for b in 0..22 {
        let mut sum = 0.0;
        for t in 0..4 {
            sum += x[[b, t, 0]] * 0.3;
            y[[b, t, 0]] = sum;
        }
    }
    let inputs = vec![Value::Sequence {
        data: x,
        lengths: Arc::from(vec![4; 22]),
    }];
    Dataset::new(inputs, Some(Target::Values(y.into_dyn()))).unwrap()
}

/// Every batch's loss bits and every epoch's (loss, validation loss) bits; optionally raises
/// the cancel flag after `cancel_after` batches.
#[derive(Default)]
struct Recorder {
    batch_losses: Vec<u32>,
    epochs: Vec<(u64, u64)>,
    cancel_after: Option<(usize, Arc<AtomicBool>)>,
}

impl FitObserver for Recorder {
    fn batch_end(&mut self, progress: &BatchProgress) {
        self.batch_losses.push((progress.loss as f32).to_bits());
        if let Some((after, flag)) = &self.cancel_after {
            if self.batch_losses.len() == *after {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }
    fn epoch_end(&mut self, progress: &EpochProgress) {
        let validation = progress.validation.map_or(f64::NAN, |v| v.loss);
        self.epochs
            .push((progress.loss.to_bits(), validation.to_bits()));
    }
}

fn request(epochs: usize) -> FitRequest {
    FitRequest {
        epochs,
        batch_size: Some(5),
        seed: Some(17),
        ..FitRequest::default()
    }
}

fn run(trainer: &mut Trainer<f32>, options: &FitOptions, recorder: &mut Recorder) -> bool {
    let cancel = recorder
        .cancel_after
        .as_ref()
        .map_or_else(|| Arc::new(AtomicBool::new(false)), |(_, f)| f.clone());
    let data = data();
    fit(trainer, &data, Some(&data), options, recorder, &cancel)
        .unwrap()
        .cancelled
}

fn weight_bits(trainer: &Trainer<f32>) -> Vec<Vec<u32>> {
    let mut bits: Vec<Vec<u32>> = trainer
        .model
        .named_tensors()
        .iter()
        .map(|(_, t)| t.iter().map(|v| v.to_bits()).collect())
        .collect();
    let state = trainer.optimizer_state();
    bits.extend(
        state
            .tensors
            .iter()
            .map(|(_, t)| t.iter().map(|v| v.to_bits()).collect()),
    );
    bits
}

fn load_f32(dir: &Path) -> (Trainer<f32>, serde_json::Value) {
    match load_with_metadata(dir).unwrap() {
        (LoadedTrainer::F32(trainer), metadata) => (trainer, metadata),
        (LoadedTrainer::F64(_), _) => panic!("an f32 checkpoint loaded as f64"),
    }
}

fn uninterrupted(epochs: usize) -> (Trainer<f32>, Recorder) {
    let mut trainer = trainer();
    let mut recorder = Recorder::default();
    let options = request(epochs).resolve(None, 0).unwrap();
    run(&mut trainer, &options, &mut recorder);
    (trainer, recorder)
}

#[test]
fn the_checkpoint_stores_the_position_and_gives_back_the_metadata() {
    let dir = common::temp_dir();
    let mut trainer = trainer();
    assert_eq!(trainer.position(), None, "a new model has not run fit");
    let options = request(3).resolve(None, 0).unwrap();
    run(&mut trainer, &options, &mut Recorder::default());
    let expected = TrainingPosition {
        epochs: 3,
        batch: 0,
        batch_size: 5,
        shuffle: true,
        seed: 17,
    };
    assert_eq!(trainer.position(), Some(expected));
    let metadata = json!({"vocabulary": ["a", "b"], "note": "epoch 3"});
    save(dir.path(), &trainer, &metadata).unwrap();

    let config = read_config(dir.path()).unwrap();
    assert_eq!(config.format_version, 2);
    assert_eq!(config.position, Some(expected));
    assert_eq!((config.step, config.skipped), (15, 0));
    let (loaded, read_back) = load_f32(dir.path());
    assert_eq!(loaded.position(), Some(expected));
    assert_eq!(loaded.step_count(), 15);
    assert_eq!(read_back, metadata);
    assert_eq!(weight_bits(&loaded), weight_bits(&trainer));
}

#[test]
fn resuming_at_epoch_3_of_6_from_the_checkpoint_alone_equals_the_uninterrupted_run_bitwise() {
    let (straight, straight_log) = uninterrupted(6);
    let dir = common::temp_dir();
    let mut first = trainer();
    let mut first_log = Recorder::default();
    run(
        &mut first,
        &request(3).resolve(None, 0).unwrap(),
        &mut first_log,
    );
    save(dir.path(), &first, &serde_json::Value::Null).unwrap();
    drop(first);

    let (mut resumed, _) = load_f32(dir.path());
    // Nothing but the total: batch size, shuffle and seed come from the checkpoint.
    let rest = FitRequest {
        epochs: 6,
        resume: true,
        ..FitRequest::default()
    }
    .resolve(resumed.position(), 999)
    .unwrap();
    assert_eq!((rest.initial_epoch, rest.initial_batch), (3, 0));
    assert_eq!((rest.batch_size, rest.seed), (5, 17));
    run(&mut resumed, &rest, &mut first_log);

    assert!(
        weight_bits(&resumed) == weight_bits(&straight),
        "weights or optimizer differ"
    );
    assert_eq!(
        first_log.batch_losses, straight_log.batch_losses,
        "the order differs"
    );
    assert_eq!(first_log.epochs, straight_log.epochs);
    assert_eq!(resumed.step_count(), straight.step_count());
}

#[test]
fn resuming_inside_an_epoch_trains_only_its_remaining_batches_bitwise() {
    let (straight, straight_log) = uninterrupted(3);
    let dir = common::temp_dir();
    let mut first = trainer();
    let flag = Arc::new(AtomicBool::new(false));
    let mut first_log = Recorder {
        cancel_after: Some((7, flag)),
        ..Recorder::default()
    };
    let cancelled = run(
        &mut first,
        &request(3).resolve(None, 0).unwrap(),
        &mut first_log,
    );
    assert!(cancelled);
    assert_eq!(first.position().map(|p| (p.epochs, p.batch)), Some((1, 2)));
    save(dir.path(), &first, &serde_json::Value::Null).unwrap();

    let (mut resumed, _) = load_f32(dir.path());
    let rest = FitRequest {
        epochs: 3,
        ..FitRequest::default()
    }
    .resolve(resumed.position(), 0)
    .unwrap();
    let mut rest_log = Recorder::default();
    run(&mut resumed, &rest, &mut rest_log);

    assert!(weight_bits(&resumed) == weight_bits(&straight));
    first_log.batch_losses.extend(rest_log.batch_losses);
    assert_eq!(first_log.batch_losses, straight_log.batch_losses);
    // The resumed epoch's loss covers its last 3 batches only; the next epoch is whole again.
    assert_eq!(rest_log.epochs.len(), 2);
    assert_eq!(rest_log.epochs[1], straight_log.epochs[2]);
    assert_eq!(
        rest_log.epochs[0].1, straight_log.epochs[1].1,
        "validation after the epoch"
    );
}

#[test]
fn what_would_change_the_rest_of_a_stopped_walk_is_refused_by_name() {
    let inside = TrainingPosition {
        epochs: 1,
        batch: 2,
        batch_size: 5,
        shuffle: true,
        seed: 17,
    };
    let at_end = TrainingPosition { batch: 0, ..inside };
    let message = |r: FitRequest, p: TrainingPosition| match r.resolve(Some(p), 0) {
        Err(Error::Invalid { name, reason }) => format!("{name}: {reason}"),
        other => panic!("expected an error, got {other:?}"),
    };
    let other_size = FitRequest {
        epochs: 3,
        batch_size: Some(8),
        ..FitRequest::default()
    };
    assert!(message(other_size, inside).starts_with("batchSize: the model stopped inside"));
    // At an epoch's end a new batch size is a choice, unless asked to resume.
    assert_eq!(other_size.resolve(Some(at_end), 0).unwrap().batch_size, 8);
    let strict = FitRequest {
        resume: true,
        ..other_size
    };
    assert!(message(strict, at_end).starts_with("batchSize:"));
    let both = FitRequest {
        epochs: 3,
        resume: true,
        initial_epoch: Some(0),
        ..FitRequest::default()
    };
    assert!(message(both, at_end).starts_with("initialEpoch:"));
    let done = FitRequest {
        epochs: 1,
        ..FitRequest::default()
    };
    assert!(message(done, at_end).contains("the model has finished 1 epochs"));
    // An explicit initialEpoch starts that epoch afresh, whatever the position.
    let afresh = FitRequest {
        epochs: 3,
        initial_epoch: Some(0),
        batch_size: Some(8),
        ..FitRequest::default()
    };
    let options = afresh.resolve(Some(inside), 0).unwrap();
    assert_eq!((options.initial_epoch, options.initial_batch), (0, 0));
}

#[test]
fn a_version_1_checkpoint_still_loads_as_a_model_that_has_not_run_fit() {
    let dir = common::temp_dir();
    let (trainer, _) = uninterrupted(1);
    save(dir.path(), &trainer, &json!({"kept": true})).unwrap();
    let manifest_path = dir.path().join(MANIFEST_FILE);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();
    manifest["formatVersion"] = json!(1);
    fs::write(&manifest_path, manifest.to_string()).unwrap();
    let config_path = dir
        .path()
        .join(manifest["current"].as_str().unwrap())
        .join(CONFIG_FILE);
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    config["formatVersion"] = json!(1);
    config.as_object_mut().unwrap().remove("position");
    fs::write(&config_path, config.to_string()).unwrap();

    let (loaded, metadata) = load_f32(dir.path());
    assert_eq!(loaded.position(), None);
    assert_eq!(loaded.step_count(), trainer.step_count());
    assert_eq!(metadata, json!({"kept": true}));
    assert!(weight_bits(&loaded) == weight_bits(&trainer));
}
