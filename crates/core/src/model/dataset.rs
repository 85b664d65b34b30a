//! A dataset: the model inputs of N examples and, for training and
//! evaluation, their targets, cut into batches in a seeded order.
//!
//! The batch order of an epoch depends only on (seed, epoch), so a run
//! resumed at epoch e from a checkpoint sees exactly the batches the
//! uninterrupted run saw.

use std::sync::Arc;

use ndarray::{s, ArrayD, ArrayView, Axis, Dimension};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::objective::{Labels, Target, TargetView, Weights};
use super::value::Value;
use crate::{Error, Result, Scalar};

/// The model inputs (in the spec's input order) of `len` examples, their
/// target, and how much each example or step counts in the loss.
#[derive(Debug, Clone)]
pub struct Dataset<F> {
    inputs: Vec<Value<F>>,
    target: Option<Target<F>>,
    weights: Option<Weights>,
    len: usize,
}

/// Some examples of a dataset, ready for one model call.
#[derive(Debug, Clone)]
pub struct Batch<F> {
    pub inputs: Vec<Value<F>>,
    pub target: Option<Target<F>>,
    pub weights: Option<Weights>,
}

impl<F> Batch<F> {
    /// The batch's target and weights, if it has a target.
    pub fn labels(&self) -> Option<Labels<'_, F>> {
        self.target.as_ref().map(|target| Labels {
            target: target.view(),
            weights: self.weights.as_ref(),
        })
    }
}

/// In which order an epoch visits the examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Sequential,
    /// A permutation drawn from (seed, epoch) alone.
    Shuffled {
        seed: u64,
        epoch: u64,
    },
}

impl<F: Scalar> Dataset<F> {
    /// `inputs`: every value with the same number of examples N ≥ 1 along axis 0
    /// (sequences `[N, time, features]` + lengths, tokens `[N, time]` + lengths,
    /// vectors `[N, features]`). `target`: values `[N, ...]` (the output's shape)
    /// or class indices, `[N]` for vector outputs and `[N·time]` for sequences.
    /// Every float must be finite, so that a non-finite loss during training
    /// can only come from the model, never from the data.
    pub fn new(inputs: Vec<Value<F>>, target: Option<Target<F>>) -> Result<Self> {
        let len = check_examples(&inputs, target.as_ref().map(Target::view))?;
        Ok(Dataset {
            inputs,
            target,
            weights: None,
            len,
        })
    }

    /// The same dataset with loss weights: `[N]` per example or `[N, time]` per
    /// step of a sequence output (see [`Weights::new`]); needs a target.
    pub fn with_weights(self, weights: ArrayD<f64>) -> Result<Self> {
        let target = self
            .target
            .as_ref()
            .ok_or_else(|| Error::invalid("weights", "weigh the loss of a dataset with targets"))?;
        let weights = Some(Weights::new(weights, target, self.len)?);
        Ok(Dataset { weights, ..self })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn inputs(&self) -> &[Value<F>] {
        &self.inputs
    }

    pub fn target(&self) -> Option<&Target<F>> {
        self.target.as_ref()
    }

    pub fn weights(&self) -> Option<&Weights> {
        self.weights.as_ref()
    }

    /// The whole dataset as one batch.
    pub fn into_batch(self) -> Batch<F> {
        Batch {
            inputs: self.inputs,
            target: self.target,
            weights: self.weights,
        }
    }

    /// The examples `rows` (in that order) as one batch. With `trim_time`, each
    /// sequence input's time axis is cut to the batch's longest length: exact
    /// whenever the model's output is a vector (padding never reaches it), and
    /// much cheaper for short questions padded to a long maximum.
    pub fn batch(&self, rows: &[usize], trim_time: bool) -> Batch<F> {
        let inputs = self
            .inputs
            .iter()
            .map(|v| select_rows(v, rows, trim_time))
            .collect();
        let target = self
            .target
            .as_ref()
            .map(|t| select_target(t, rows, self.len));
        let weights = self.weights.as_ref().map(|w| w.select(rows));
        Batch {
            inputs,
            target,
            weights,
        }
    }
}

/// The checks of [`Dataset::new`] on data the caller keeps (a synchronous training call's
/// target stays in JavaScript memory): returns the number of examples.
pub fn check_examples<F: Scalar>(
    inputs: &[Value<F>],
    target: Option<TargetView<'_, F>>,
) -> Result<usize> {
    let len = inputs
        .first()
        .map(Value::batch)
        .ok_or_else(|| Error::invalid("inputs", "a dataset needs at least one input"))?;
    if len == 0 {
        return Err(Error::invalid(
            "inputs",
            "a dataset needs at least one example",
        ));
    }
    for (i, value) in inputs.iter().enumerate() {
        let name = format!("inputs[{i}]");
        if value.batch() != len {
            return Err(Error::shape(
                &name,
                format!("{len} examples along axis 0 (as inputs[0])"),
                &value.grad_shape(),
            ));
        }
        check_lengths(&name, value)?;
        if let Value::Sequence { data, .. } = value {
            check_finite(&name, data.view())?;
        }
        if let Value::Vector(data) = value {
            check_finite(&name, data.view())?;
        }
    }
    if let Some(target) = target {
        check_target(target, len)?;
    }
    Ok(len)
}

/// Every example index once, cut into batches of `batch_size` (the last may be smaller).
pub fn batch_rows(len: usize, batch_size: usize, order: Order) -> Vec<Vec<usize>> {
    let mut indices: Vec<usize> = (0..len).collect();
    if let Order::Shuffled { seed, epoch } = order {
        indices.shuffle(&mut ChaCha8Rng::seed_from_u64(epoch_seed(seed, epoch)));
    }
    indices
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// Mixes (seed, epoch) so that neighbouring epochs get unrelated permutations.
fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    let mut z = seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn check_lengths<F: Scalar>(name: &str, value: &Value<F>) -> Result<()> {
    let (time, lengths) = match value {
        Value::Sequence { data, lengths } => (data.dim().1, lengths),
        Value::Tokens { ids, lengths } => (ids.dim().1, lengths),
        Value::Vector(_) => return Ok(()),
    };
    if lengths.len() != value.batch() {
        return Err(Error::shape(
            &format!("{name}.lengths"),
            format!("[{}]", value.batch()),
            &[lengths.len()],
        ));
    }
    match lengths.iter().position(|&l| l == 0 || l > time) {
        Some(index) => Err(Error::Length {
            index,
            value: lengths[index],
            max: time,
        }),
        None => Ok(()),
    }
}

fn check_finite<F: Scalar, D: Dimension>(name: &str, values: ArrayView<'_, F, D>) -> Result<()> {
    // All finite, checked without a branch per element (the compiler vectorises it: a
    // training step checks its whole batch, on the calling thread); the index is searched
    // for only when a value fails.
    let finite = match values.as_slice() {
        Some(values) => values.iter().fold(true, |ok, v| ok & v.is_finite()),
        None => values.iter().all(|v| v.is_finite()),
    };
    if finite {
        return Ok(());
    }
    let (index, &value) = values
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
        .expect("a value failed the check");
    Err(Error::NonFinite {
        name: name.to_owned(),
        index,
        value: value.to_f64_lossy(),
    })
}

fn check_target<F: Scalar>(target: TargetView<'_, F>, len: usize) -> Result<()> {
    match target {
        TargetView::Values(values) => {
            if values.ndim() < 2 || values.shape()[0] != len {
                return Err(Error::shape(
                    "target",
                    format!("[{len}, ...] (one row per example)"),
                    values.shape(),
                ));
            }
            check_finite("target", values)
        }
        TargetView::Classes(classes) => {
            if classes.is_empty() || classes.len() % len != 0 {
                let expected = format!("[{len}] or [{len}·time] class indices");
                return Err(Error::shape("target", expected, &[classes.len()]));
            }
            Ok(())
        }
    }
}

fn select_rows<F: Scalar>(value: &Value<F>, rows: &[usize], trim_time: bool) -> Value<F> {
    let pick_lengths =
        |lengths: &Arc<[usize]>| -> Vec<usize> { rows.iter().map(|&r| lengths[r]).collect() };
    match value {
        Value::Sequence { data, lengths } => {
            let lengths = pick_lengths(lengths);
            let time = kept_time(&lengths, data.dim().1, trim_time);
            let data = match consecutive(rows) {
                // One copy of a contiguous block (`select` assembles its result row by row).
                Some(range) => data.slice(s![range, ..time, ..]).to_owned(),
                None => data.slice(s![.., ..time, ..]).select(Axis(0), rows),
            };
            Value::Sequence {
                data,
                lengths: lengths.into(),
            }
        }
        Value::Tokens { ids, lengths } => {
            let lengths = pick_lengths(lengths);
            let time = kept_time(&lengths, ids.dim().1, trim_time);
            let ids = ids.slice(s![.., ..time]).select(Axis(0), rows);
            Value::Tokens {
                ids,
                lengths: lengths.into(),
            }
        }
        Value::Vector(data) => Value::Vector(data.select(Axis(0), rows)),
    }
}

/// `rows` as a range when they are consecutive and ascending (every batch of a pass in order).
fn consecutive(rows: &[usize]) -> Option<std::ops::Range<usize>> {
    let first = *rows.first()?;
    let ascending = rows.iter().enumerate().all(|(i, &r)| r == first + i);
    ascending.then(|| first..first + rows.len())
}

fn kept_time(lengths: &[usize], time: usize, trim_time: bool) -> usize {
    if trim_time {
        lengths.iter().copied().max().unwrap_or(time)
    } else {
        time
    }
}

fn select_target<F: Scalar>(target: &Target<F>, rows: &[usize], len: usize) -> Target<F> {
    match target {
        Target::Values(values) => Target::Values(values.select(Axis(0), rows)),
        Target::Classes(classes) => {
            let per_example = classes.len() / len;
            let picked = rows
                .iter()
                .flat_map(|&r| &classes[r * per_example..(r + 1) * per_example]);
            Target::Classes(picked.copied().collect())
        }
    }
}
