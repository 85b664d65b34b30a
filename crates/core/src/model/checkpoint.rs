//! Whole-model checkpoints: everything a training run needs to go on bit for
//! bit as if it had never stopped.
//!
//! A checkpoint directory holds one *generation* per save and a manifest that
//! names the current one:
//!
//! ```text
//! dir/checkpoint.json                          {"formatVersion": 2, "current": "gen-<step>-<nonce>"}
//! dir/gen-<step>-<nonce>/config.json           format version, ModelSpec (with its dtype), TrainingSpec,
//!                                              step and skipped counters, fit's position (finished
//!                                              epochs, batch, batch size, shuffle, seed), the caller's metadata
//! dir/gen-<step>-<nonce>/model.safetensors     every tensor as "{node}.{pytorch name}" (`lstm.weight_ih_l0`)
//! dir/gen-<step>-<nonce>/optimizer.safetensors the optimizer's buffers (`"{param index}.exp_avg"`),
//!                                              its step count in the metadata
//! ```
//!
//! Crash safety: a save writes a complete new generation (every file flushed),
//! then atomically replaces the manifest; that rename is the commit point. A
//! process killed at any instant leaves the manifest naming either the old
//! complete generation or the new one, never a mixture. Generations the
//! manifest does not name (older ones, or one whose save was interrupted) are
//! removed after each commit. One process saves into a directory at a time.
//!
//! Dropout masks are seeded from (model seed, step, node) and an epoch's order
//! from (seed, epoch), so no random state needs saving: the counters, fit's
//! position and the optimizer state are the whole story.
//!
//! Version 1 (no position) is still read: such a checkpoint loads as a model
//! that has not run `fit` (epoch 0), as it did before.

use std::any::TypeId;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD};
use serde::{Deserialize, Serialize};

use super::model::Model;
use super::spec::{Dtype, ModelSpec};
use super::trainer::{Trainer, TrainingPosition, TrainingSpec};
use crate::optim::OptimizerState;
use crate::tensor_file::{self, sync_directory, write_atomically};
use crate::{Error, Result, Scalar};

/// The version of the layout described above, which [`save`] writes.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version [`load`] reads (version 1 lacks fit's position).
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// The manifest: the only file a save replaces in place.
pub const MANIFEST_FILE: &str = "checkpoint.json";
pub const CONFIG_FILE: &str = "config.json";
pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Optimizer-file metadata key holding the optimizer's own step count.
const OPTIMIZER_STEP_KEY: &str = "step";
const GENERATION_PREFIX: &str = "gen-";

/// The contents of `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointConfig {
    pub format_version: u32,
    /// Its `dtype` decides whether [`load`] returns an f32 or an f64 trainer.
    pub model: ModelSpec,
    pub training: TrainingSpec,
    /// Updates applied so far.
    pub step: u64,
    /// Steps skipped because the loss or a gradient was not finite.
    pub skipped: u64,
    /// Where `fit` stopped; absent when the model never ran `fit` (and in version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<TrainingPosition>,
    /// Whatever the caller saved with the weights (epoch, vocabulary, ...); `null` when nothing.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub metadata: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    format_version: u32,
    /// The directory name of the committed generation.
    current: String,
}

/// A trainer restored from a checkpoint, in the scalar type its spec names.
pub enum LoadedTrainer {
    F32(Trainer<f32>),
    F64(Trainer<f64>),
}

/// Saves the trainer's model, training spec, counters and optimizer state into
/// `dir` (created if missing), replacing the checkpoint already there only once
/// the new one is complete on disk. `metadata` is stored verbatim in `config.json`.
pub fn save<F: Scalar>(
    dir: &Path,
    trainer: &Trainer<F>,
    metadata: &serde_json::Value,
) -> Result<()> {
    check_dtype::<F>(trainer.model.spec())?;
    fs::create_dir_all(dir)
        .map_err(|e| io_error(dir, "cannot create the checkpoint directory", e))?;
    let generation = generation_name(trainer.step_count());
    let generation_dir = dir.join(&generation);
    fs::create_dir(&generation_dir).map_err(|e| io_error(&generation_dir, "cannot create", e))?;
    let written = write_generation(&generation_dir, trainer, metadata)
        // The new directory entry must be on disk before a manifest can name it.
        .and_then(|()| sync_directory(dir).map_err(|e| io_error(dir, "cannot flush directory", e)));
    if let Err(e) = written {
        // Best effort: the write error matters more, and the next save removes leftovers anyway.
        let _ = fs::remove_dir_all(&generation_dir);
        return Err(e);
    }
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        current: generation.clone(),
    };
    // The commit point. On failure the new generation stays: the rename may have
    // happened before the error (a failed directory flush), and the next save removes it if not.
    write_atomically(&dir.join(MANIFEST_FILE), &to_json(&manifest)?)?;
    remove_stale_generations(dir, &generation);
    Ok(())
}

/// Restores the trainer saved in `dir`: model and weights, training spec,
/// counters and optimizer state. Every file is validated against the model
/// the spec builds; a problem is an error naming the file (and the tensor).
pub fn load(dir: &Path) -> Result<LoadedTrainer> {
    Ok(load_with_metadata(dir)?.0)
}

/// [`load`], and the metadata [`save`] was given (`null` when none), read from the same generation.
pub fn load_with_metadata(dir: &Path) -> Result<(LoadedTrainer, serde_json::Value)> {
    let (generation_dir, mut config) = read_committed(dir)?;
    let metadata = std::mem::take(&mut config.metadata);
    let trainer = match config.model.dtype {
        Dtype::Float32 => LoadedTrainer::F32(restore(&generation_dir, config)?),
        Dtype::Float64 => LoadedTrainer::F64(restore(&generation_dir, config)?),
    };
    Ok((trainer, metadata))
}

/// The committed checkpoint's `config.json` (specs, counters, metadata) without loading tensors.
pub fn read_config(dir: &Path) -> Result<CheckpointConfig> {
    Ok(read_committed(dir)?.1)
}

/// Copies `source` into `targets` by name once every name and shape has been
/// checked: a target missing from `source`, a shape that differs, or a source
/// tensor no target wants is an error naming `path` and the tensor, and then
/// nothing has been modified. `owner` says whose tensors the targets are.
pub(crate) fn assign_by_name<F: Scalar>(
    targets: Vec<(String, ArrayViewMutD<'_, F>)>,
    source: &BTreeMap<String, ArrayD<F>>,
    path: &Path,
    owner: &str,
) -> Result<()> {
    for (name, target) in &targets {
        let tensor = source.get(name).ok_or_else(|| {
            file_error(
                path,
                Some(name),
                format!("missing; {owner} has it with shape {:?}", target.shape()),
            )
        })?;
        if tensor.shape() != target.shape() {
            return Err(file_error(
                path,
                Some(name),
                format!(
                    "{owner} expects shape {:?}, got {:?}",
                    target.shape(),
                    tensor.shape()
                ),
            ));
        }
    }
    if let Some(unexpected) = source
        .keys()
        .find(|k| !targets.iter().any(|(name, _)| name == *k))
    {
        return Err(file_error(
            path,
            Some(unexpected),
            format!("{owner} has no tensor of this name"),
        ));
    }
    for (name, mut target) in targets {
        target.assign(&source[&name]);
    }
    Ok(())
}

/// The metadata `safetensors.torch.save_file` writes; PyTorch-side loaders look for it.
pub(crate) fn torch_metadata() -> BTreeMap<String, String> {
    BTreeMap::from([("format".to_owned(), "pt".to_owned())])
}

pub(crate) fn file_error(path: &Path, tensor: Option<&str>, reason: String) -> Error {
    Error::Checkpoint {
        path: path.display().to_string(),
        tensor: tensor.map(str::to_owned),
        reason,
    }
}

/// Refuses a trainer whose scalar type is not the one its spec declares:
/// [`load`] would build the other type and reject the tensors.
fn check_dtype<F: Scalar>(spec: &ModelSpec) -> Result<()> {
    let declared = match spec.dtype {
        Dtype::Float32 => TypeId::of::<f32>(),
        Dtype::Float64 => TypeId::of::<f64>(),
    };
    if TypeId::of::<F>() == declared {
        return Ok(());
    }
    Err(Error::invalid(
        "dtype",
        format!(
            "the model spec declares {:?} but the trainer computes in {}",
            spec.dtype,
            std::any::type_name::<F>()
        ),
    ))
}

fn write_generation<F: Scalar>(
    dir: &Path,
    trainer: &Trainer<F>,
    metadata: &serde_json::Value,
) -> Result<()> {
    let config = CheckpointConfig {
        format_version: FORMAT_VERSION,
        model: trainer.model.spec().clone(),
        training: trainer.spec().clone(),
        step: trainer.step_count(),
        skipped: trainer.skipped_count(),
        position: trainer.position(),
        metadata: metadata.clone(),
    };
    write_atomically(&dir.join(CONFIG_FILE), &to_json(&config)?)?;
    tensor_file::save(
        &dir.join(MODEL_FILE),
        &trainer.model.named_tensors(),
        &torch_metadata(),
    )?;
    let state = trainer.optimizer_state();
    let buffers: Vec<(&str, ArrayViewD<'_, F>)> = state
        .tensors
        .iter()
        .map(|(n, t)| (n.as_str(), t.view()))
        .collect();
    let step = BTreeMap::from([(OPTIMIZER_STEP_KEY.to_owned(), state.step.to_string())]);
    tensor_file::save(&dir.join(OPTIMIZER_FILE), &buffers, &step)
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|e| Error::invalid("checkpoint", e.to_string()))
}

/// `gen-<step>-<nonce>`: unique per save, so a save never touches a file the committed checkpoint uses.
fn generation_name(step: u64) -> String {
    static SAVES: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seed = nanos
        ^ (u64::from(tensor_file::process_id()) << 32)
        ^ SAVES.fetch_add(1, Ordering::Relaxed);
    format!("{GENERATION_PREFIX}{step}-{:016x}", mix(seed))
}

/// SplitMix64's finaliser: spreads nearby seeds over the whole range.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether `name` has exactly the form [`generation_name`] makes (so no path can hide in it).
fn is_generation_name(name: &str) -> bool {
    let Some((step, nonce)) = name
        .strip_prefix(GENERATION_PREFIX)
        .and_then(|rest| rest.split_once('-'))
    else {
        return false;
    };
    let digits = |s: &str, radix: u32| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    digits(step, 10) && nonce.len() == 16 && digits(nonce, 16)
}

/// Removes every generation but `current`, and manifest temporaries a killed
/// save left behind (named by [`write_atomically`]: `.checkpoint.json.<id>.tmp`).
/// Failures are ignored: the checkpoint is already committed, and the next save tries again.
fn remove_stale_generations(dir: &Path, current: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let manifest_temp = format!(".{MANIFEST_FILE}.");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_generation_name(&name) && name != current {
            let _ = fs::remove_dir_all(entry.path());
        } else if name.starts_with(&manifest_temp) && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The committed generation's directory and its config.
fn read_committed(dir: &Path) -> Result<(PathBuf, CheckpointConfig)> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest: Manifest = read_json(&manifest_path)?;
    check_version(&manifest_path, manifest.format_version)?;
    if !is_generation_name(&manifest.current) {
        return Err(file_error(
            &manifest_path,
            None,
            format!(
                "`current` = {:?} is not a checkpoint generation name",
                manifest.current
            ),
        ));
    }
    let generation_dir = dir.join(&manifest.current);
    let config_path = generation_dir.join(CONFIG_FILE);
    let config: CheckpointConfig = read_json(&config_path)?;
    check_version(&config_path, config.format_version)?;
    Ok((generation_dir, config))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(|e| io_error(path, "cannot read", e))?;
    serde_json::from_slice(&bytes).map_err(|e| file_error(path, None, format!("malformed: {e}")))
}

fn check_version(path: &Path, version: u32) -> Result<()> {
    if (OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Ok(());
    }
    Err(file_error(
        path,
        None,
        format!("format version {version} is not supported (this build reads {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})"),
    ))
}

fn restore<F: Scalar>(generation_dir: &Path, config: CheckpointConfig) -> Result<Trainer<F>> {
    let config_path = generation_dir.join(CONFIG_FILE);
    let in_config = |e: Error| file_error(&config_path, None, e.to_string());
    let model = Model::new(config.model).map_err(in_config)?;
    let mut trainer = Trainer::new(model, config.training).map_err(in_config)?;

    let model_path = generation_dir.join(MODEL_FILE);
    let weights = tensor_file::load::<F>(&model_path)?;
    assign_by_name(
        named_tensors_mut(&mut trainer.model),
        &weights.tensors,
        &model_path,
        "the model",
    )?;

    trainer.set_position(config.position);
    let optimizer_path = generation_dir.join(OPTIMIZER_FILE);
    let state = read_optimizer_state(&optimizer_path, &mut trainer.model)?;
    trainer
        .restore(config.step, config.skipped, state)
        .map_err(|e| match e {
            Error::Key { name, reason } => file_error(&optimizer_path, Some(&name), reason),
            other => file_error(&optimizer_path, None, other.to_string()),
        })?;
    Ok(trainer)
}

/// Every tensor of the model with its checkpoint key, mutable.
fn named_tensors_mut<F: Scalar>(model: &mut Model<F>) -> Vec<(String, ArrayViewMutD<'_, F>)> {
    let names: Vec<String> = model
        .named_tensors()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    names.into_iter().zip(model.tensors_mut()).collect()
}

/// Reads the optimizer file and checks its buffers against the model's
/// trainable tensors now, rather than at the first step after loading.
fn read_optimizer_state<F: Scalar>(path: &Path, model: &mut Model<F>) -> Result<OptimizerState<F>> {
    let file = tensor_file::load::<F>(path)?;
    let step = file
        .metadata
        .get(OPTIMIZER_STEP_KEY)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            file_error(
                path,
                None,
                format!("metadata `{OPTIMIZER_STEP_KEY}` is missing or not a count"),
            )
        })?;
    let shapes: Vec<Vec<usize>> = model
        .trainable_tensors_mut()
        .iter()
        .map(|t| t.shape().to_vec())
        .collect();
    check_buffer_shapes(&file.tensors, &shapes, path)?;
    Ok(OptimizerState {
        step,
        tensors: file.tensors.into_iter().collect(),
    })
}

/// Buffers are named `"{param index}.{buffer}"`: each index must name a
/// trainable tensor of the same shape, and a non-empty state covers them all.
/// (The optimizer itself checks the buffer names when the state is loaded.)
fn check_buffer_shapes<F>(
    buffers: &BTreeMap<String, ArrayD<F>>,
    shapes: &[Vec<usize>],
    path: &Path,
) -> Result<()> {
    let mut covered = vec![false; shapes.len()];
    for (name, buffer) in buffers {
        let index = name
            .split_once('.')
            .and_then(|(i, _)| i.parse::<usize>().ok());
        let Some(index) = index.filter(|&i| i < shapes.len()) else {
            return Err(file_error(
                path,
                Some(name),
                format!(
                    "does not name one of the model's {} trainable tensors",
                    shapes.len()
                ),
            ));
        };
        if buffer.shape() != shapes[index].as_slice() {
            return Err(file_error(
                path,
                Some(name),
                format!(
                    "trainable tensor {index} has shape {:?}, got {:?}",
                    shapes[index],
                    buffer.shape()
                ),
            ));
        }
        covered[index] = true;
    }
    match covered.iter().position(|c| !c) {
        Some(index) if !buffers.is_empty() => Err(file_error(
            path,
            None,
            format!("no buffers for trainable tensor {index} (the state covers some tensors, so it must cover all)"),
        )),
        _ => Ok(()),
    }
}

fn io_error(path: &Path, action: &str, error: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        reason: format!("{action}: {error}"),
    }
}
