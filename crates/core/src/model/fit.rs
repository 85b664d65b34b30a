//! Whole-dataset loops on top of the one-step [`Trainer`]: `fit` (epochs of
//! batches, optional validation, progress, cancellation), `evaluate` and
//! `predict` in batches.
//!
//! Threads: the training loop runs on the caller's thread (each step depends
//! on the last). `evaluate` and `predict` only read the model, so their
//! batches run in parallel on rayon's global pool; nothing here creates a pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ndarray::ArrayD;
use rayon::prelude::*;

use super::dataset::{batch_rows, concat_rows, Dataset, Order};
use super::graph::Model;
use super::metrics::score_batch;
use super::objective::Labels;
use super::spec::LossSpec;
use super::trainer::{StepReport, Tbptt, Trainer};
use super::value::Value;
use crate::{Error, Result, Scalar};

/// How `fit` walks the data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Train until this many epochs are done in total (Keras' `epochs`): the
    /// epochs run are `initial_epoch..epochs`.
    pub epochs: usize,
    /// Epoch to start at, when resuming; it decides the shuffle order (Keras' `initial_epoch`).
    pub initial_epoch: usize,
    /// Examples per update (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Visit the examples in a new order every epoch, drawn from (seed, epoch).
    pub shuffle: bool,
    pub seed: u64,
    /// Truncated BPTT for each batch instead of one full step.
    pub tbptt: Option<Tbptt>,
    /// Stop with [`FitError::NonFiniteStep`] at the first skipped update instead of carrying on.
    pub stop_on_non_finite: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            initial_epoch: 0,
            batch_size: 32,
            shuffle: true,
            seed: 0,
            tbptt: None,
            stop_on_non_finite: false,
        }
    }
}

impl FitOptions {
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::invalid("batchSize", "must be >= 1, got 0"));
        }
        if self.epochs <= self.initial_epoch {
            return Err(Error::invalid(
                "epochs",
                format!(
                    "must be greater than initialEpoch ({}), got {}",
                    self.initial_epoch, self.epochs
                ),
            ));
        }
        Ok(())
    }
}

/// What one batch did (with truncated BPTT a batch is several updates).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchProgress {
    /// 0-based epoch and batch within it.
    pub epoch: usize,
    pub batch: usize,
    pub batches: usize,
    /// Examples in this batch.
    pub examples: usize,
    /// Training loss (mean over the batch's updates).
    pub loss: f64,
    /// Global L2 norm of the gradients before clipping (the largest of the batch's updates).
    pub grad_norm: f64,
    pub clipped: bool,
    /// Whether every update of the batch was applied; false when one was skipped as non-finite.
    pub applied: bool,
    /// Updates skipped because the loss or a gradient was not finite.
    pub non_finite_updates: usize,
    /// Learning rate of the batch's last update.
    pub learning_rate: f64,
    pub examples_per_second: f64,
    /// Updates applied since the trainer was created (or restored).
    pub step: u64,
}

/// Loss (and accuracy for classification losses) over a dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean over every scored row (padded steps excluded), as if in one batch.
    pub loss: f64,
    /// Cross-entropy: share of rows whose largest logit is the target class.
    /// Binary cross-entropy: share of elements with (logit > 0) == (target > 0.5).
    pub accuracy: Option<f64>,
    pub examples: usize,
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochProgress {
    pub epoch: usize,
    /// Mean training loss over the epoch's finite batches, weighted by their examples (NaN if none).
    pub loss: f64,
    pub non_finite_updates: usize,
    pub validation: Option<Evaluation>,
    /// Training time of the epoch (validation excluded).
    pub seconds: f64,
    pub examples_per_second: f64,
    pub step: u64,
}

/// The outcome of `fit`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FitSummary {
    /// Every epoch that ran to its end.
    pub epochs: Vec<EpochProgress>,
    /// Stopped by the cancel flag; the weights are those of the last finished update.
    pub cancelled: bool,
    pub non_finite_updates: usize,
}

/// Receives progress as `fit` goes. Both methods run on the training thread.
pub trait FitObserver {
    fn batch_end(&mut self, _progress: &BatchProgress) {}
    fn epoch_end(&mut self, _progress: &EpochProgress) {}
}

/// Ignores all progress.
impl FitObserver for () {}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error(transparent)]
    Core(#[from] Error),
    /// An update was skipped as non-finite and the options said to stop.
    #[error(
        "epoch {epoch}, batch {batch}: non-finite loss ({loss}) or gradient norm ({grad_norm}); \
         the update was skipped and fit stopped (stopOnNonFinite); the weights are those of the last finite update"
    )]
    NonFiniteStep {
        epoch: usize,
        batch: usize,
        loss: f64,
        grad_norm: f64,
    },
}

/// Trains `trainer` on `train` for `options.epochs` epochs, evaluating on
/// `validation` after each. `cancel` is read before every batch: once it is
/// set, fit returns within one batch with `cancelled`, keeping the weights of
/// the last finished update.
pub fn fit<F: Scalar>(
    trainer: &mut Trainer<F>,
    train: &Dataset<F>,
    validation: Option<&Dataset<F>>,
    options: &FitOptions,
    observer: &mut dyn FitObserver,
    cancel: &AtomicBool,
) -> std::result::Result<FitSummary, FitError> {
    options.validate()?;
    require_target(train, "train")?;
    if let Some(validation) = validation {
        require_target(validation, "validationData")?;
    }
    let mut summary = FitSummary::default();
    for epoch in options.initial_epoch..options.epochs {
        let Some(tally) = train_epoch(trainer, train, options, epoch, observer, cancel)? else {
            summary.cancelled = true;
            break;
        };
        summary.non_finite_updates += tally.non_finite_updates;
        let validation = match validation
            .map(|v| evaluate(&trainer.model, v, options.batch_size, cancel))
            .transpose()
        {
            // Cancelled during the validation: the epoch is not finished.
            Err(_) if cancel.load(Ordering::Relaxed) => {
                summary.cancelled = true;
                break;
            }
            validation => validation?,
        };
        let progress = tally.finish(epoch, validation, trainer.step_count());
        observer.epoch_end(&progress);
        summary.epochs.push(progress);
    }
    Ok(summary)
}

fn require_target<F: Scalar>(data: &Dataset<F>, name: &str) -> Result<()> {
    match data.target() {
        Some(_) => Ok(()),
        None => Err(Error::invalid(name, "training and evaluation need targets")),
    }
}

/// Runs one epoch's batches; `None` when cancelled before its end.
fn train_epoch<F: Scalar>(
    trainer: &mut Trainer<F>,
    train: &Dataset<F>,
    options: &FitOptions,
    epoch: usize,
    observer: &mut dyn FitObserver,
    cancel: &AtomicBool,
) -> std::result::Result<Option<EpochTally>, FitError> {
    let order = match options.shuffle {
        true => Order::Shuffled {
            seed: options.seed,
            epoch: epoch as u64,
        },
        false => Order::Sequential,
    };
    let batches = batch_rows(train.len(), options.batch_size, order);
    // Padding never reaches a vector output, so its batches can drop padded steps (not under TBPTT,
    // which needs full-length sequences).
    let trim_time = !trainer.model.output_is_sequence() && options.tbptt.is_none();
    let mut tally = EpochTally::started();
    for (b, rows) in batches.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let started = Instant::now();
        let mut batch = train.batch(rows, trim_time);
        let inputs = std::mem::take(&mut batch.inputs);
        let labels = batch
            .labels()
            .expect("fit checked that the dataset has targets");
        let reports = train_batch(trainer, inputs, labels, options.tbptt)?;
        let progress = batch_progress(
            &reports,
            (epoch, b, batches.len()),
            rows.len(),
            started,
            trainer.step_count(),
        );
        tally.add(&progress);
        observer.batch_end(&progress);
        if !progress.applied && options.stop_on_non_finite {
            return Err(FitError::NonFiniteStep {
                epoch,
                batch: b,
                loss: progress.loss,
                grad_norm: progress.grad_norm,
            });
        }
    }
    Ok((!cancel.load(Ordering::Relaxed)).then_some(tally))
}

/// One batch: a full step, or one update per truncated-BPTT window, as `fit` takes it:
/// a non-finite prediction counts as a skipped update like a non-finite loss.
pub fn train_batch<F: Scalar>(
    trainer: &mut Trainer<F>,
    inputs: Vec<Value<F>>,
    labels: Labels<'_, F>,
    tbptt: Option<Tbptt>,
) -> Result<Vec<StepReport>> {
    let result = match tbptt {
        Some(tbptt) => trainer.train_tbptt(inputs, labels, tbptt),
        None => trainer.train_step(inputs, labels).map(|r| vec![r]),
    };
    match result {
        // The dataset's numbers are all finite, so a non-finite value found inside the step (an
        // overflowing prediction, which the loss refuses) came from the model: the same event as a
        // non-finite loss, and the weights were not touched either.
        Err(Error::NonFinite { value, .. }) => Ok(vec![StepReport {
            loss: value,
            grad_norm: f64::NAN,
            clipped: false,
            applied: false,
            learning_rate: trainer
                .spec()
                .schedule
                .learning_rate(trainer.spec().learning_rate, trainer.step_count()),
        }]),
        other => other,
    }
}

fn batch_progress(
    reports: &[StepReport],
    (epoch, batch, batches): (usize, usize, usize),
    examples: usize,
    started: Instant,
    step: u64,
) -> BatchProgress {
    let non_finite_updates = reports.iter().filter(|r| !r.applied).count();
    BatchProgress {
        epoch,
        batch,
        batches,
        examples,
        loss: reports.iter().map(|r| r.loss).sum::<f64>() / reports.len() as f64,
        grad_norm: reports
            .iter()
            .map(|r| r.grad_norm)
            .fold(f64::NEG_INFINITY, nan_max),
        clipped: reports.iter().any(|r| r.clipped),
        applied: non_finite_updates == 0,
        non_finite_updates,
        learning_rate: reports.last().map_or(f64::NAN, |r| r.learning_rate),
        examples_per_second: examples as f64 / started.elapsed().as_secs_f64().max(1e-9),
        step,
    }
}

/// `max` that lets a NaN through, so a non-finite norm is never hidden.
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Running sums of an epoch.
struct EpochTally {
    started: Instant,
    examples: usize,
    finite_loss_sum: f64,
    finite_examples: usize,
    non_finite_updates: usize,
}

impl EpochTally {
    fn started() -> Self {
        EpochTally {
            started: Instant::now(),
            examples: 0,
            finite_loss_sum: 0.0,
            finite_examples: 0,
            non_finite_updates: 0,
        }
    }

    fn add(&mut self, batch: &BatchProgress) {
        self.examples += batch.examples;
        self.non_finite_updates += batch.non_finite_updates;
        if batch.loss.is_finite() {
            self.finite_loss_sum += batch.loss * batch.examples as f64;
            self.finite_examples += batch.examples;
        }
    }

    fn finish(self, epoch: usize, validation: Option<Evaluation>, step: u64) -> EpochProgress {
        let seconds = self.started.elapsed().as_secs_f64();
        EpochProgress {
            epoch,
            loss: match self.finite_examples {
                0 => f64::NAN,
                n => self.finite_loss_sum / n as f64,
            },
            non_finite_updates: self.non_finite_updates,
            validation,
            seconds,
            examples_per_second: self.examples as f64 / seconds.max(1e-9),
            step,
        }
    }
}

/// Loss (and accuracy) of `model` over `data` in inference mode, `batch_size` examples at a time.
/// Gives up with an error before its next batch once `cancel` is set.
pub fn evaluate<F: Scalar>(
    model: &Model<F>,
    data: &Dataset<F>,
    batch_size: usize,
    cancel: &AtomicBool,
) -> Result<Evaluation> {
    require_target(data, "evaluate")?;
    let scores = in_batches(model, data, batch_size, cancel, score_batch)?;
    let weight: f64 = scores.iter().map(|s| s.weight).sum();
    let loss_sum: f64 = scores.iter().map(|s| s.loss * s.weight).sum();
    let accuracy = scores
        .iter()
        .map(|s| s.hits)
        .try_fold((0, 0), |(c, n), hits| hits.map(|(ci, ni)| (c + ci, n + ni)))
        .map(|(correct, counted)| correct as f64 / counted.max(1) as f64);
    Ok(Evaluation {
        loss: if weight > 0.0 { loss_sum / weight } else { 0.0 },
        accuracy,
        examples: data.len(),
    })
}

/// The model's output for every example, stacked: `[N, features]` or `[N, time, features]`.
/// Gives up with an error before its next batch once `cancel` is set.
pub fn predict<F: Scalar>(
    model: &Model<F>,
    data: &Dataset<F>,
    batch_size: usize,
    cancel: &AtomicBool,
) -> Result<ArrayD<F>> {
    let outputs = in_batches(model, data, batch_size, cancel, |output, _, _| {
        output.float_data("output")
    })?;
    concat_rows(&outputs)
}

/// Runs `model` in inference mode over `data` in order, the batches in parallel,
/// and maps each batch's output (with its target and the model's loss) through `each`.
fn in_batches<F: Scalar, T: Send>(
    model: &Model<F>,
    data: &Dataset<F>,
    batch_size: usize,
    cancel: &AtomicBool,
    each: impl Fn(&Value<F>, Option<Labels<'_, F>>, LossSpec) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    if batch_size == 0 {
        return Err(Error::invalid("batchSize", "must be >= 1, got 0"));
    }
    // Trimming padded steps is exact for vector outputs; sequence outputs keep the
    // full time axis so that the batches stack back together.
    let trim_time = !model.output_is_sequence();
    batch_rows(data.len(), batch_size, Order::Sequential)
        .par_iter()
        .map(|rows| {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::invalid("cancel", "stopped before its last batch"));
            }
            let mut batch = data.batch(rows, trim_time);
            let pass = model.forward(std::mem::take(&mut batch.inputs), false, 0, None)?;
            each(pass.output(), batch.labels(), model.spec().loss)
        })
        .collect()
}
