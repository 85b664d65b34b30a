//! Whole-model checkpoints: round trips (f32 and f64), bitwise-identical
//! resumption, crash safety (simulated leftovers and real kill -9 during saves)
//! and every kind of damaged checkpoint giving an error that names the file
//! and the tensor.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ndarray::{Array3, ArrayD, ArrayViewD};
use odyssey_core::model::checkpoint::{
    load, read_config, save, LoadedTrainer, CONFIG_FILE, FORMAT_VERSION, MANIFEST_FILE, MODEL_FILE,
    OPTIMIZER_FILE,
};
use odyssey_core::model::{Model, ModelSpec, StepReport, Target, Trainer, TrainingSpec, Value};
use odyssey_core::tensor_file;
use odyssey_core::{Error, Scalar};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::common;
use common::entries;

/// A 2-layer bidirectional LSTM with peepholes, dropout and a dense head on every step.
fn model_spec(dtype: &str) -> ModelSpec {
    serde_json::from_value(json!({
        "dtype": dtype,
        "seed": 11,
        "inputs": [{"kind": "sequence", "name": "x", "features": 3}],
        "nodes": [
            {"name": "lstm", "inputs": ["x"], "type": "lstm", "hiddenSize": 5, "numLayers": 2,
             "bidirectional": true},
            {"name": "drop", "inputs": ["lstm"], "type": "dropout", "rate": 0.3},
            {"name": "head", "inputs": ["drop"], "type": "dense", "units": 2}
        ],
        "output": "head",
        "loss": "mse"
    }))
    .unwrap()
}

/// Adam with warmup, decay and clipping: every piece of state a resumed run needs.
fn training_spec() -> TrainingSpec {
    serde_json::from_value(json!({
        "optimizer": {"type": "adam", "weightDecay": 0.01},
        "learningRate": 0.02,
        "schedule": {"schedule": {"type": "exponential", "gamma": 0.9}, "warmupSteps": 2},
        "clip": {"globalNorm": 1.0}
    }))
    .unwrap()
}

fn trainer<F: Scalar>(dtype: &str) -> Trainer<F> {
    Trainer::new(Model::new(model_spec(dtype)).unwrap(), training_spec()).unwrap()
}

/// `[batch 3, time 4, 3]` inputs with one shorter sequence, and `[3, 4, 2]` targets.
fn batch<F: Scalar>(index: u64) -> (Vec<Value<F>>, Target<F>) {
    let mut rng = ChaCha8Rng::seed_from_u64(100 + index);
    let mut draw = |shape: (usize, usize, usize)| {
        Array3::from_shape_fn(shape, |_| F::from_f64_lossy(rng.gen_range(-1.0..1.0)))
    };
    let x = Value::Sequence {
        data: draw((3, 4, 3)),
        lengths: Arc::from(vec![4, 2, 4]),
    };
    (vec![x], Target::Values(draw((3, 4, 2)).into_dyn()))
}

/// Trains steps `from..to`, one distinct batch per step.
fn train<F: Scalar>(trainer: &mut Trainer<F>, from: u64, to: u64) -> Vec<StepReport> {
    (from..to)
        .map(|i| {
            let (inputs, target) = batch(i);
            trainer.train_step(inputs, &target).unwrap()
        })
        .collect()
}

fn bits<F: Scalar>(t: &ArrayViewD<'_, F>) -> Vec<u64> {
    // f32 → f64 is exact and injective, so equal bits here mean equal bits there.
    t.iter().map(|x| x.to_f64_lossy().to_bits()).collect()
}

fn assert_bitwise_equal<F: Scalar>(a: &Trainer<F>, b: &Trainer<F>) {
    assert_eq!(a.model.spec(), b.model.spec());
    assert_eq!(a.spec(), b.spec());
    assert_eq!(a.step_count(), b.step_count());
    assert_eq!(a.skipped_count(), b.skipped_count());
    let (wa, wb) = (a.model.named_tensors(), b.model.named_tensors());
    assert_eq!(wa.len(), wb.len());
    for ((name_a, ta), (name_b, tb)) in wa.iter().zip(&wb) {
        assert_eq!(name_a, name_b);
        assert_eq!(ta.shape(), tb.shape(), "{name_a}");
        assert!(bits(ta) == bits(tb), "{name_a} differs");
    }
    let (sa, sb) = (a.optimizer_state(), b.optimizer_state());
    assert_eq!(sa.step, sb.step);
    assert_eq!(sa.tensors.len(), sb.tensors.len());
    for ((name_a, ta), (name_b, tb)) in sa.tensors.iter().zip(&sb.tensors) {
        assert_eq!(name_a, name_b);
        assert!(
            bits(&ta.view()) == bits(&tb.view()),
            "optimizer {name_a} differs"
        );
    }
}

fn load_f32(dir: &Path) -> Trainer<f32> {
    match load(dir) {
        Ok(LoadedTrainer::F32(t)) => t,
        Ok(LoadedTrainer::F64(_)) => panic!("an f32 checkpoint loaded as f64"),
        Err(e) => panic!("load failed: {e}"),
    }
}

fn load_error(dir: &Path) -> Error {
    match load(dir) {
        Ok(_) => panic!("loaded a damaged checkpoint"),
        Err(e) => e,
    }
}

/// Asserts a `Checkpoint` error naming a file called `file` (and `tensor`); returns the reason.
fn checkpoint_error(error: Error, file: &str, tensor: Option<&str>) -> String {
    match error {
        Error::Checkpoint {
            path,
            tensor: named,
            reason,
        } => {
            assert!(path.ends_with(file), "error names {path}, expected {file}");
            assert_eq!(named.as_deref(), tensor, "reason: {reason}");
            reason
        }
        other => panic!("expected a checkpoint error about {file}, got {other:?}"),
    }
}

fn committed_generation(dir: &Path) -> PathBuf {
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap();
    dir.join(manifest["current"].as_str().unwrap())
}

fn generations(dir: &tempfile::TempDir) -> Vec<String> {
    entries(dir.path())
        .into_iter()
        .filter(|name| name.starts_with("gen-"))
        .collect()
}

/// Rewrites one safetensors file of the committed checkpoint through `edit`.
fn edit_tensors(
    path: &Path,
    edit: impl FnOnce(&mut BTreeMap<String, ArrayD<f32>>, &mut BTreeMap<String, String>),
) {
    let mut file = tensor_file::load::<f32>(path).unwrap();
    edit(&mut file.tensors, &mut file.metadata);
    let views: Vec<(&str, ArrayViewD<'_, f32>)> = file
        .tensors
        .iter()
        .map(|(name, t)| (name.as_str(), t.view()))
        .collect();
    tensor_file::save(path, &views, &file.metadata).unwrap();
}

fn saved_after_steps(steps: u64) -> (tempfile::TempDir, Trainer<f32>) {
    let dir = common::temp_dir();
    let mut original = trainer::<f32>("float32");
    train(&mut original, 0, steps);
    save(dir.path(), &original, &serde_json::Value::Null).unwrap();
    (dir, original)
}

#[test]
fn round_trip_restores_weights_specs_counters_optimizer_state_and_metadata() {
    let dir = common::temp_dir();
    let mut original = trainer::<f32>("float32");
    train(&mut original, 0, 3);
    let metadata = json!({"epoch": 2, "vocabulary": ["yes", "no"]});
    save(dir.path(), &original, &metadata).unwrap();

    assert_bitwise_equal(&original, &load_f32(dir.path()));
    let config = read_config(dir.path()).unwrap();
    assert_eq!(config.format_version, FORMAT_VERSION);
    assert_eq!(&config.model, original.model.spec());
    assert_eq!(&config.training, original.spec());
    assert_eq!((config.step, config.skipped), (3, 0));
    assert_eq!(config.metadata, metadata);
}

#[test]
fn the_model_file_uses_pytorch_names_under_the_node_prefix() {
    let (dir, original) = saved_after_steps(1);
    let file =
        tensor_file::load::<f32>(&committed_generation(dir.path()).join(MODEL_FILE)).unwrap();
    for key in [
        "lstm.weight_ih_l0",
        "lstm.weight_hh_l1_reverse",
        "lstm.bias_ih_l1",
        "lstm.peephole_o_l0_reverse",
        "head.weight",
    ] {
        assert!(
            file.tensors.contains_key(key),
            "{key} missing: {:?}",
            file.tensors.keys()
        );
    }
    assert_eq!(file.tensors.len(), original.model.named_tensors().len());
    assert_eq!(file.tensors["lstm.weight_ih_l1"].shape(), &[20, 10]);
}

#[test]
fn an_f64_model_round_trips_as_f64() {
    let dir = common::temp_dir();
    let mut original = trainer::<f64>("float64");
    train(&mut original, 0, 2);
    save(dir.path(), &original, &serde_json::Value::Null).unwrap();
    match load(dir.path()) {
        Ok(LoadedTrainer::F64(loaded)) => assert_bitwise_equal(&original, &loaded),
        Ok(LoadedTrainer::F32(_)) => panic!("an f64 checkpoint loaded as f32"),
        Err(e) => panic!("load failed: {e}"),
    }
}

#[test]
fn resuming_is_bitwise_identical_to_never_stopping() {
    let (n, m) = (3, 4);
    let mut uninterrupted = trainer::<f32>("float32");
    train(&mut uninterrupted, 0, n);
    let expected_reports = train(&mut uninterrupted, n, n + m);

    let (dir, _) = saved_after_steps(n);
    let mut resumed = load_f32(dir.path());
    let reports = train(&mut resumed, n, n + m);

    assert_eq!(reports, expected_reports);
    assert_bitwise_equal(&uninterrupted, &resumed);
}

#[test]
fn a_new_save_replaces_the_old_one_and_leaves_one_generation() {
    let (dir, mut trainer) = saved_after_steps(1);
    train(&mut trainer, 1, 3);
    save(dir.path(), &trainer, &serde_json::Value::Null).unwrap();
    assert_eq!(generations(&dir).len(), 1, "{:?}", entries(dir.path()));
    assert_eq!(load_f32(dir.path()).step_count(), 3);
}

#[test]
fn leftovers_of_an_interrupted_save_leave_the_old_checkpoint_loadable_and_are_removed_later() {
    let (dir, mut trainer) = saved_after_steps(2);
    let committed = committed_generation(dir.path());

    // A save killed after writing a complete new weights file but before the manifest was replaced…
    let orphan = dir.path().join("gen-5-00000000000000ab");
    fs::create_dir(&orphan).unwrap();
    fs::copy(committed.join(CONFIG_FILE), orphan.join(CONFIG_FILE)).unwrap();
    fs::write(orphan.join(MODEL_FILE), [0u8; 3]).unwrap();
    // …and one killed while writing the manifest's temporary file.
    let manifest_temp = dir.path().join(format!(".{MANIFEST_FILE}.999-0.tmp"));
    fs::write(&manifest_temp, b"{\"formatVersion\": 1, \"curr").unwrap();

    assert_bitwise_equal(&trainer, &load_f32(dir.path()));

    train(&mut trainer, 2, 3);
    save(dir.path(), &trainer, &serde_json::Value::Null).unwrap();
    assert!(
        !orphan.exists() && !manifest_temp.exists(),
        "{:?}",
        entries(dir.path())
    );
    assert_eq!(entries(dir.path()).len(), 2, "{:?}", entries(dir.path()));
    assert_bitwise_equal(&trainer, &load_f32(dir.path()));
}

#[test]
fn saving_into_a_directory_keeps_files_that_are_not_checkpoint_generations() {
    let (dir, trainer) = saved_after_steps(1);
    fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
    fs::create_dir(dir.path().join("gen-old-runs")).unwrap();
    save(dir.path(), &trainer, &serde_json::Value::Null).unwrap();
    assert!(dir.path().join("notes.txt").exists());
    assert!(dir.path().join("gen-old-runs").exists());
}

#[test]
fn a_trainer_whose_scalar_type_contradicts_its_spec_is_refused_before_writing() {
    let dir = common::temp_dir();
    let mismatched: Trainer<f64> = trainer("float32");
    let error = save(
        &dir.path().join("ckpt"),
        &mismatched,
        &serde_json::Value::Null,
    )
    .unwrap_err();
    assert!(
        matches!(&error, Error::Invalid { name, .. } if name == "dtype"),
        "{error:?}"
    );
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn a_missing_manifest_or_file_is_an_io_error_naming_it() {
    let dir = common::temp_dir();
    assert!(
        matches!(load_error(dir.path()), Error::Io { path, .. } if path.ends_with(MANIFEST_FILE))
    );

    for file in [CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE] {
        let (dir, _) = saved_after_steps(1);
        fs::remove_file(committed_generation(dir.path()).join(file)).unwrap();
        let error = load_error(dir.path());
        assert!(
            matches!(&error, Error::Io { path, .. } if path.ends_with(file)),
            "{error:?}"
        );
    }
}

#[test]
fn a_damaged_manifest_is_an_error_and_cannot_point_outside_the_directory() {
    let (dir, _) = saved_after_steps(1);
    let manifest = dir.path().join(MANIFEST_FILE);
    for (contents, expected) in [
        (
            json!({"formatVersion": 1, "current": "../elsewhere"}),
            "not a checkpoint generation",
        ),
        (
            json!({"formatVersion": 3, "current": "gen-1-0000000000000000"}),
            "format version 3",
        ),
        (json!({"formatVersion": 1}), "malformed"),
    ] {
        fs::write(&manifest, contents.to_string()).unwrap();
        let reason = checkpoint_error(load_error(dir.path()), MANIFEST_FILE, None);
        assert!(reason.contains(expected), "{reason}");
    }
}

#[test]
fn a_truncated_or_corrupt_file_is_an_error_naming_it() {
    for (file, keep) in [(MODEL_FILE, 100), (OPTIMIZER_FILE, 7), (CONFIG_FILE, 20)] {
        let (dir, _) = saved_after_steps(1);
        let path = committed_generation(dir.path()).join(file);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..keep]).unwrap();
        checkpoint_error(load_error(dir.path()), file, None);
    }
}

#[test]
fn an_invalid_spec_in_the_config_is_an_error_naming_the_config() {
    let (dir, _) = saved_after_steps(1);
    let path = committed_generation(dir.path()).join(CONFIG_FILE);
    let mut config: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    config["model"]["nodes"][0]["hiddenSize"] = json!(0);
    fs::write(&path, config.to_string()).unwrap();
    let reason = checkpoint_error(load_error(dir.path()), CONFIG_FILE, None);
    assert!(reason.contains("hiddenSize"), "{reason}");
}

#[test]
fn model_tensors_that_are_missing_unknown_or_misshapen_are_errors_naming_them() {
    type Edit = fn(&mut BTreeMap<String, ArrayD<f32>>);
    let cases: [(Edit, &str, &str); 3] = [
        (
            |t| {
                t.remove("lstm.bias_hh_l1_reverse");
            },
            "lstm.bias_hh_l1_reverse",
            "missing",
        ),
        (
            |t| {
                t.insert("lstm.weight_ih_l2".into(), ArrayD::zeros(vec![20, 10]));
            },
            "lstm.weight_ih_l2",
            "no tensor",
        ),
        (
            |t| {
                t.insert("head.weight".into(), ArrayD::zeros(vec![3, 10]));
            },
            "head.weight",
            "[3, 10]",
        ),
    ];
    for (edit, tensor, expected) in cases {
        let (dir, _) = saved_after_steps(1);
        edit_tensors(
            &committed_generation(dir.path()).join(MODEL_FILE),
            |t, _| edit(t),
        );
        let reason = checkpoint_error(load_error(dir.path()), MODEL_FILE, Some(tensor));
        assert!(reason.contains(expected), "{reason}");
    }
}

#[test]
fn optimizer_buffers_that_do_not_fit_the_model_are_errors_naming_the_file() {
    let (dir, _) = saved_after_steps(1);
    let path = committed_generation(dir.path()).join(OPTIMIZER_FILE);
    edit_tensors(&path, |t, _| {
        t.insert("0.exp_avg".into(), ArrayD::zeros(vec![2, 2]));
    });
    let reason = checkpoint_error(load_error(dir.path()), OPTIMIZER_FILE, Some("0.exp_avg"));
    assert!(reason.contains("[2, 2]"), "{reason}");

    let (dir, _) = saved_after_steps(1);
    let path = committed_generation(dir.path()).join(OPTIMIZER_FILE);
    edit_tensors(&path, |t, _| {
        t.insert("99.exp_avg".into(), ArrayD::zeros(vec![2]));
    });
    checkpoint_error(load_error(dir.path()), OPTIMIZER_FILE, Some("99.exp_avg"));

    let (dir, _) = saved_after_steps(1);
    let path = committed_generation(dir.path()).join(OPTIMIZER_FILE);
    edit_tensors(&path, |t, _| {
        t.retain(|name, _| !name.starts_with("3."));
    });
    let reason = checkpoint_error(load_error(dir.path()), OPTIMIZER_FILE, None);
    assert!(reason.contains("tensor 3"), "{reason}");

    let (dir, _) = saved_after_steps(1);
    let path = committed_generation(dir.path()).join(OPTIMIZER_FILE);
    edit_tensors(&path, |t, _| {
        let buffer = t.remove("0.exp_avg").unwrap();
        t.insert("0.momentum_buffer".into(), buffer);
    });
    let reason = checkpoint_error(
        load_error(dir.path()),
        OPTIMIZER_FILE,
        Some("0.momentum_buffer"),
    );
    assert!(reason.contains("not a buffer"), "{reason}");

    let (dir, _) = saved_after_steps(1);
    let path = committed_generation(dir.path()).join(OPTIMIZER_FILE);
    edit_tensors(&path, |_, metadata| {
        metadata.insert("step".into(), "many".into());
    });
    let reason = checkpoint_error(load_error(dir.path()), OPTIMIZER_FILE, None);
    assert!(reason.contains("step"), "{reason}");
}

/// What the child prints after each committed save.
const CHILD_SAVED: &str = "crash child saved";

/// Set for the child process of [`kill_9_at_any_instant_of_a_save_leaves_a_consistent_checkpoint`].
const CRASH_DIR_VARIABLE: &str = "ODYSSEY_CRASH_TEST_DIR";

/// Trains and saves into `$ODYSSEY_CRASH_TEST_DIR` one step at a time until killed,
/// continuing from the checkpoint already there.
#[test]
#[ignore = "the child process of kill_9_at_any_instant_of_a_save_leaves_a_consistent_checkpoint"]
fn crash_child_trains_and_saves_until_killed() {
    let Some(dir) = std::env::var_os(CRASH_DIR_VARIABLE).map(PathBuf::from) else {
        return;
    };
    let mut trainer = load_f32(&dir);
    loop {
        let step = trainer.step_count();
        train(&mut trainer, step, step + 1);
        save(&dir, &trainer, &json!({"writer": "child"})).unwrap();
        println!("{CHILD_SAVED}");
    }
}

/// Starts a child that trains and saves in a loop, waits for its first committed
/// save, then kills it (SIGKILL on Unix: no destructor, flush or cleanup runs)
/// a random 0–50 ms later, which lands anywhere in a later save.
fn kill_a_saving_child(dir: &Path, rng: &mut ChaCha8Rng) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "model_checkpoint::crash_child_trains_and_saves_until_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_VARIABLE, dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // `contains`: libtest may print "test <name> ... " first, on the same line.
    let saved = lines.any(|line| line.is_ok_and(|l| l.contains(CHILD_SAVED)));
    assert!(saved, "the child exited before its first save");
    std::thread::sleep(Duration::from_millis(rng.gen_range(0..50)));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn kill_9_at_any_instant_of_a_save_leaves_a_consistent_checkpoint() {
    let dir = common::temp_dir();
    let mut reference = trainer::<f32>("float32");
    save(dir.path(), &reference, &serde_json::Value::Null).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for _ in 0..16 {
        kill_a_saving_child(dir.path(), &mut rng);
        let loaded = load_f32(dir.path());
        let step = loaded.step_count();
        assert!(
            step > reference.step_count(),
            "a save the child reported as committed is lost"
        );
        let done = reference.step_count();
        train(&mut reference, done, step);
        assert_bitwise_equal(&reference, &loaded);
    }

    save(dir.path(), &reference, &serde_json::Value::Null).unwrap();
    assert_eq!(
        entries(dir.path()).len(),
        2,
        "leftovers survived a clean save: {:?}",
        entries(dir.path())
    );
}
