//! Seeded mutation fuzzing of the core's file loaders: safetensors decoding
//! (`checkpoint::from_bytes`), whole-model checkpoints (`model::checkpoint::load`:
//! manifest and config JSON, weights, optimizer state) and PyTorch state-dict
//! import. Each case mutates a file of the committed seed corpus
//! (`__test__/fixtures/fuzz/`, see its README) and loads it: the loader must
//! return `Ok` or an error naming the file, never panic, and a failed import
//! must leave the model's weights untouched.
//!
//! Bounded for `cargo test` (`CASES_PER_TARGET` cases each, a few seconds).
//! `ODYSSEY_FUZZ_CASES=n` runs n per target instead; `ODYSSEY_FUZZ_SEED=s`
//! starts the case seeds at s (a failure names the seed of its case, so
//! `ODYSSEY_FUZZ_SEED=<seed> ODYSSEY_FUZZ_CASES=1` replays it).

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use odyssey_core::model::checkpoint::{self, LoadedTrainer};
use odyssey_core::model::torch_interop::import_state_dict;
use odyssey_core::model::{Model, ModelSpec};
use odyssey_core::tensor_file;
use odyssey_core::Error;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value as Json};

use crate::common;

const CASES_PER_TARGET: u64 = 700;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../__test__/fixtures/fuzz")
        .join(name)
}

/// A file of the generation the corpus checkpoint's manifest names.
fn committed_file(checkpoint: &str, file: &str) -> PathBuf {
    let manifest: Json =
        serde_json::from_slice(&fs::read(corpus(checkpoint).join("checkpoint.json")).unwrap())
            .unwrap();
    corpus(checkpoint)
        .join(manifest["current"].as_str().unwrap())
        .join(file)
}

fn case_seeds(target: u64) -> impl Iterator<Item = u64> {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let cases = env("ODYSSEY_FUZZ_CASES").unwrap_or(CASES_PER_TARGET);
    let first = env("ODYSSEY_FUZZ_SEED").unwrap_or(target << 32);
    first..first + cases
}

// ---------------------------------------------------------------------------------------------
// Mutations

/// Numbers a careless or hostile writer puts where sizes, offsets and counts go.
const INTERESTING: [f64; 16] = [
    0.0,
    1.0,
    2.0,
    7.0,
    255.0,
    65536.0,
    2147483648.0,
    4294967296.0,
    9007199254740992.0,
    1e15,
    1.8446744073709552e19,
    -1.0,
    -2147483648.0,
    0.5,
    1e300,
    3.0,
];

fn interesting_json(rng: &mut ChaCha8Rng) -> Json {
    match rng.gen_range(0..6) {
        0 => Json::Null,
        1 => json!("F16"),
        2 => json!([]),
        3 => json!({}),
        4 => json!(u64::MAX),
        _ => json!(INTERESTING.choose(rng).copied().unwrap()),
    }
}

/// Replaces, removes or retypes one randomly chosen value somewhere in `value`.
fn mutate_json(value: &mut Json, rng: &mut ChaCha8Rng) {
    let children = match value {
        Json::Object(map) => map.len(),
        Json::Array(items) => items.len(),
        _ => 0,
    };
    // Descend with probability 3/4 while there is somewhere to go.
    if children > 0 && rng.gen_bool(0.75) {
        let index = rng.gen_range(0..children);
        match value {
            Json::Object(map) => {
                if rng.gen_bool(0.1) {
                    let key = map.keys().nth(index).unwrap().clone();
                    map.remove(&key);
                } else {
                    mutate_json(map.values_mut().nth(index).unwrap(), rng);
                }
            }
            Json::Array(items) => mutate_json(&mut items[index], rng),
            _ => unreachable!(),
        }
        return;
    }
    *value = match value {
        Json::Number(n) if rng.gen_bool(0.5) => {
            // Off by one, in either direction.
            let v = n.as_f64().unwrap_or(0.0);
            json!(if rng.gen_bool(0.5) { v + 1.0 } else { v - 1.0 })
        }
        Json::String(s) if rng.gen_bool(0.5) => json!(format!(
            "{s}{}",
            ["x", "_l9", "/..", "\u{0}"].choose(rng).unwrap()
        )),
        _ => interesting_json(rng),
    };
}

/// `bytes` as a safetensors header and data, if they parse that far.
fn split_safetensors(bytes: &[u8]) -> Option<(Json, &[u8])> {
    let length = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header = serde_json::from_slice(bytes.get(8..8usize.checked_add(length)?)?).ok()?;
    Some((header, &bytes[8 + length..]))
}

fn join_safetensors(header: &Json, data: &[u8]) -> Vec<u8> {
    let text = serde_json::to_vec(header).unwrap();
    let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&text);
    bytes.extend_from_slice(data);
    bytes
}

/// One random mutation of a file, byte-level or aware of its format.
fn mutate(bytes: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match rng.gen_range(0..6) {
        0 => out.truncate(rng.gen_range(0..bytes.len().max(1))),
        1 => {
            for _ in 0..rng.gen_range(1..=8) {
                if out.is_empty() {
                    break;
                }
                let at = rng.gen_range(0..out.len());
                out[at] ^= 1 << rng.gen_range(0..8);
            }
        }
        2 => {
            // A header length anywhere from 0 to far past the end.
            let claimed: u64 = match rng.gen_range(0..4) {
                0 => rng.gen(),
                1 => bytes.len() as u64 + rng.gen_range(0..16),
                2 => rng.gen_range(0..bytes.len() as u64 + 1),
                _ => INTERESTING.choose(rng).copied().unwrap().abs() as u64,
            };
            if out.len() >= 8 {
                out[..8].copy_from_slice(&claimed.to_le_bytes());
            }
        }
        3 => {
            let at = rng.gen_range(0..=out.len());
            let junk: Vec<u8> = (0..rng.gen_range(1..64)).map(|_| rng.gen()).collect();
            out.splice(at..at, junk);
        }
        _ => {
            // Structured: edit the safetensors header, or the JSON document itself.
            if let Some((mut header, data)) = split_safetensors(bytes) {
                mutate_json(&mut header, rng);
                return join_safetensors(&header, data);
            }
            if let Ok(mut document) = serde_json::from_slice::<Json>(bytes) {
                mutate_json(&mut document, rng);
                return serde_json::to_vec_pretty(&document).unwrap();
            }
            out.reverse();
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Checking one case

/// Runs `load` on case `seed`; a panic is reported with the seed that replays it.
fn no_panic<T>(target: &str, seed: u64, load: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(load)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("{target}: case seed {seed} panicked: {message}");
        }
    }
}

/// An error must say which file is to blame.
fn assert_names(error: &Error, file: &str, target: &str, seed: u64) {
    let message = error.to_string();
    assert!(
        message.contains(file),
        "{target}: case seed {seed}: error does not name {file}: {message}"
    );
}

#[test]
fn safetensors_decoding_survives_mutations() {
    let seeds = [
        fs::read(committed_file("checkpoint-f32", "model.safetensors")).unwrap(),
        fs::read(committed_file("checkpoint-f64", "optimizer.safetensors")).unwrap(),
        fs::read(corpus("lstm.safetensors")).unwrap(),
    ];
    let (mut accepted, mut refused) = (0, 0);
    for seed in case_seeds(1) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let bytes = mutate(seeds.choose(&mut rng).unwrap(), &mut rng);
        let source = format!("case-{seed}.safetensors");
        let (as_f32, as_f64) = no_panic("safetensors", seed, || {
            (
                tensor_file::from_bytes::<f32>(&bytes, &source),
                tensor_file::from_bytes::<f64>(&bytes, &source),
            )
        });
        for result in [as_f32.map(|_| ()), as_f64.map(|_| ())] {
            match result {
                Ok(()) => accepted += 1,
                Err(error) => {
                    assert!(
                        matches!(error, Error::Checkpoint { .. }),
                        "case seed {seed}: {error:?}"
                    );
                    assert_names(&error, &source, "safetensors", seed);
                    refused += 1;
                }
            }
        }
    }
    // Some mutations (a flipped bit in a value) leave a valid file: both outcomes must occur.
    assert!(
        accepted > 0 && refused > 0,
        "accepted {accepted}, refused {refused}"
    );
}

/// Copies the seed checkpoint into `dir`; the relative paths of its files.
fn copy_checkpoint(source: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    fs::create_dir_all(dir).unwrap();
    for entry in fs::read_dir(source).unwrap() {
        let entry = entry.unwrap();
        let name = PathBuf::from(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs::create_dir_all(dir.join(&name)).unwrap();
            for inner in fs::read_dir(entry.path()).unwrap() {
                let inner = inner.unwrap();
                fs::copy(inner.path(), dir.join(&name).join(inner.file_name())).unwrap();
                files.push(name.join(inner.file_name()));
            }
        } else if name
            .extension()
            .is_some_and(|e| e == "json" || e == "safetensors")
        {
            fs::copy(entry.path(), dir.join(&name)).unwrap();
            files.push(name);
        }
    }
    files.sort();
    files
}

#[test]
fn model_checkpoints_survive_mutations() {
    let scratch = common::temp_dir();
    let sources = [corpus("checkpoint-f32"), corpus("checkpoint-f64")];
    let (mut loaded, mut refused) = (0, 0);
    for seed in case_seeds(2) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dir = scratch.path().join(format!("case-{seed}"));
        let files = copy_checkpoint(sources.choose(&mut rng).unwrap(), &dir);
        let victim = dir.join(files.choose(&mut rng).unwrap());
        let bytes = mutate(&fs::read(&victim).unwrap(), &mut rng);
        fs::write(&victim, bytes).unwrap();
        match no_panic("model checkpoint", seed, || checkpoint::load(&dir)) {
            Ok(LoadedTrainer::F32(_) | LoadedTrainer::F64(_)) => loaded += 1,
            Err(error) => {
                assert_names(&error, &dir.display().to_string(), "model checkpoint", seed);
                refused += 1;
            }
        }
        fs::remove_dir_all(&dir).unwrap();
    }
    assert!(
        loaded > 0 && refused > 0,
        "loaded {loaded}, refused {refused}"
    );
}

/// The model the state-dict corpus file fits: a 2-layer bidirectional LSTM without peepholes.
fn torch_model() -> Model<f32> {
    let spec: ModelSpec = serde_json::from_value(json!({
        "inputs": [{"kind": "sequence", "name": "x", "features": 3}],
        "nodes": [{"type": "lstm", "name": "encoder", "inputs": ["x"], "hiddenSize": 4, "numLayers": 2,
                   "bidirectional": true, "peepholes": false}],
        "output": "encoder",
        "loss": "mse"
    }))
    .unwrap();
    Model::new(spec).unwrap()
}

/// Every weight's bits (so that NaN equals itself).
fn weights(model: &Model<f32>) -> Vec<(String, Vec<u32>)> {
    model
        .named_tensors()
        .into_iter()
        .map(|(name, t)| (name, t.iter().map(|x| x.to_bits()).collect()))
        .collect()
}

#[test]
fn state_dict_import_survives_mutations() {
    let scratch = common::temp_dir();
    let seed_file = fs::read(corpus("lstm.safetensors")).unwrap();
    let mut model = torch_model();
    import_state_dict(&mut model, "encoder", &corpus("lstm.safetensors"))
        .expect("the seed file imports");
    let (mut imported, mut refused) = (0, 0);
    for seed in case_seeds(3) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let file = scratch.path().join(format!("case-{seed}.safetensors"));
        fs::write(&file, mutate(&seed_file, &mut rng)).unwrap();
        let before = weights(&model);
        match no_panic("state dict", seed, || {
            import_state_dict(&mut model, "encoder", &file)
        }) {
            Ok(()) => imported += 1,
            Err(error) => {
                assert_names(&error, &file.display().to_string(), "state dict", seed);
                assert!(
                    weights(&model) == before,
                    "case seed {seed}: a refused import changed the weights"
                );
                refused += 1;
            }
        }
        fs::remove_file(&file).unwrap();
    }
    assert!(
        imported > 0 && refused > 0,
        "imported {imported}, refused {refused}"
    );
}

/// Sizes no mutation is likely to hit exactly, each of which would once have
/// asked the allocator for gigabytes (and aborted the process) before failing.
#[test]
fn checkpoints_asking_for_huge_layers_are_refused_before_allocating() {
    let scratch = common::temp_dir();
    let huge = [
        ("hiddenSize", json!(1u64 << 31)),
        ("numLayers", json!(1_000_000_000_000_000u64)),
        ("hiddenSize", json!(u64::MAX)),
    ];
    for (k, (key, value)) in huge.into_iter().enumerate() {
        let dir = scratch.path().join(format!("case-{k}"));
        let files = copy_checkpoint(&corpus("checkpoint-f32"), &dir);
        let config_path = dir.join(files.iter().find(|f| f.ends_with("config.json")).unwrap());
        let mut config: Json = serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
        config["model"]["nodes"][0][key] = value.clone();
        fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
        let error = checkpoint::load(&dir).err().expect("refused");
        let message = error.to_string();
        assert!(
            message.contains("config.json") && message.contains("lstm") && message.contains("2^28"),
            "{key} = {value}: {message}"
        );
    }
}
