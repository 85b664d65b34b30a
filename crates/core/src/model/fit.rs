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

use super::dataset::{batch_rows, Dataset, Order};
use super::metrics::score_batch;
use super::model::Model;
use super::objective::Labels;
use super::spec::LossSpec;
use super::trainer::{StepReport, Tbptt, Trainer, TrainingPosition};
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
    /// Batches of `initial_epoch` already trained (a run resumed inside an epoch skips them).
    pub initial_batch: usize,
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
            initial_batch: 0,
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

    fn position(&self, epochs: usize, batch: usize) -> TrainingPosition {
        TrainingPosition {
            epochs,
            batch,
            batch_size: self.batch_size,
            shuffle: self.shuffle,
            seed: self.seed,
        }
    }
}

/// `fit`'s options as the caller gave them: what is left out continues the
/// model's own [`TrainingPosition`], so that a loaded checkpoint trains on
/// exactly where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FitRequest {
    pub epochs: usize,
    /// Start at this epoch's first batch; `None`: where the model stopped (epoch 0 for a new model).
    pub initial_epoch: Option<usize>,
    /// Continue exactly as the run that stopped: its batch size, shuffle and seed, and
    /// nothing that contradicts them.
    pub resume: bool,
    /// Default 32 (or the stopped run's).
    pub batch_size: Option<usize>,
    /// Default true (or the stopped run's).
    pub shuffle: Option<bool>,
    /// Default `default_seed` of [`FitRequest::resolve`] (or the stopped run's).
    pub seed: Option<u64>,
    pub tbptt: Option<Tbptt>,
    pub stop_on_non_finite: bool,
}

impl FitRequest {
    /// The options of a fit of a model standing at `position`.
    pub fn resolve(
        &self,
        position: Option<TrainingPosition>,
        default_seed: u64,
    ) -> Result<FitOptions> {
        if let (true, Some(epoch)) = (self.resume, self.initial_epoch) {
            return Err(Error::invalid(
                "initialEpoch",
                format!("resume continues where the model stopped; it cannot also start at epoch {epoch}"),
            ));
        }
        let continued = position.filter(|_| self.initial_epoch.is_none());
        let (epoch, batch) = continued.map_or((self.initial_epoch.unwrap_or(0), 0), |p| {
            (p.epochs, p.batch)
        });
        // Inside an epoch (or when asked to resume), the rest of the walk must be the one that stopped.
        let strict = continued.filter(|p| self.resume || p.batch > 0);
        let batch_size = pick(
            "batchSize",
            self.batch_size,
            continued.map(|p| p.batch_size),
            strict.map(|p| p.batch_size),
            32,
        )?;
        let shuffle = pick(
            "shuffle",
            self.shuffle,
            continued.map(|p| p.shuffle),
            strict.map(|p| p.shuffle),
            true,
        )?;
        let seed = pick(
            "seed",
            self.seed,
            continued.map(|p| p.seed),
            strict.map(|p| p.seed),
            default_seed,
        )?;
        if self.epochs <= epoch {
            let reason = match continued {
                Some(_) => format!(
                    "the model has finished {epoch} epochs and fit goes on from there (epochs counts all \
                     epochs); pass epochs > {epoch}, or initialEpoch to start elsewhere; got {}",
                    self.epochs
                ),
                None => format!("must be greater than initialEpoch ({epoch}), got {}", self.epochs),
            };
            return Err(Error::invalid("epochs", reason));
        }
        let options = FitOptions {
            epochs: self.epochs,
            initial_epoch: epoch,
            initial_batch: batch,
            batch_size,
            shuffle,
            seed,
            tbptt: self.tbptt,
            stop_on_non_finite: self.stop_on_non_finite,
        };
        options.validate()?;
        Ok(options)
    }
}

/// The value of one walk option: the caller's, else the stopped run's, else the default.
/// `required`: the stopped run's value when a different one would change the rest of its walk.
fn pick<T: PartialEq + std::fmt::Debug + Copy>(
    name: &str,
    given: Option<T>,
    stopped: Option<T>,
    required: Option<T>,
    default: T,
) -> Result<T> {
    match (given, required) {
        (Some(given), Some(required)) if given != required => Err(Error::invalid(
            name,
            format!(
                "the model stopped inside a run of fit with {name} {required:?}; continuing it needs the \
                 same, got {given:?} (pass initialEpoch to start an epoch afresh)"
            ),
        )),
        _ => Ok(given.or(stopped).unwrap_or(default)),
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
    let mut run = FitRun::new(train, validation, options)?;
    while let Some(event) = run.advance(trainer, cancel)? {
        match event {
            FitEvent::Batch(progress) => observer.batch_end(&progress),
            FitEvent::Epoch(progress) => observer.epoch_end(&progress),
        }
    }
    Ok(run.into_summary())
}

/// What [`FitRun::advance`] just did.
#[derive(Debug, Clone, PartialEq)]
pub enum FitEvent {
    Batch(BatchProgress),
    /// The epoch's batches and its validation are done.
    Epoch(EpochProgress),
}

/// `fit` one batch at a time, for a caller that lends the trainer to someone
/// else between batches (the Node binding's callbacks use the model while fit
/// waits for them): the run keeps the walk, the trainer is borrowed per call.
pub struct FitRun<'d, F: Scalar> {
    train: &'d Dataset<F>,
    validation: Option<&'d Dataset<F>>,
    options: FitOptions,
    /// The epoch under way (or next to start).
    epoch: usize,
    /// That epoch's walk, once started.
    walk: Option<EpochWalk>,
    /// `stopOnNonFinite`'s error, returned by the call after the batch that caused it.
    stop: Option<FitError>,
    summary: FitSummary,
}

/// One epoch's batches in order, the next to train, and the running sums.
struct EpochWalk {
    batches: Vec<Vec<usize>>,
    next: usize,
    tally: EpochTally,
}

impl<'d, F: Scalar> FitRun<'d, F> {
    pub fn new(
        train: &'d Dataset<F>,
        validation: Option<&'d Dataset<F>>,
        options: &FitOptions,
    ) -> Result<Self> {
        options.validate()?;
        require_target(train, "train")?;
        if let Some(validation) = validation {
            require_target(validation, "validationData")?;
        }
        Ok(FitRun {
            train,
            validation,
            options: *options,
            epoch: options.initial_epoch,
            walk: None,
            stop: None,
            summary: FitSummary::default(),
        })
    }

    /// Trains the next batch, or ends the epoch whose batches are done (validation
    /// included), moving the trainer's [`TrainingPosition`] along. `None` once the
    /// last epoch has ended or `cancel` was found set (then `summary.cancelled`).
    pub fn advance(
        &mut self,
        trainer: &mut Trainer<F>,
        cancel: &AtomicBool,
    ) -> std::result::Result<Option<FitEvent>, FitError> {
        if let Some(stop) = self.stop.take() {
            return Err(stop);
        }
        if self.epoch >= self.options.epochs || self.summary.cancelled {
            return Ok(None);
        }
        if cancel.load(Ordering::Relaxed) {
            self.summary.cancelled = true;
            return Ok(None);
        }
        let walk = match &mut self.walk {
            Some(walk) => walk,
            None => self.walk.insert(self.start_epoch()),
        };
        if walk.next < walk.batches.len() {
            return self.train_next(trainer).map(Some);
        }
        Ok(self.end_epoch(trainer, cancel)?.map(FitEvent::Epoch))
    }

    pub fn into_summary(self) -> FitSummary {
        self.summary
    }

    fn start_epoch(&self) -> EpochWalk {
        let order = match self.options.shuffle {
            true => Order::Shuffled {
                seed: self.options.seed,
                epoch: self.epoch as u64,
            },
            false => Order::Sequential,
        };
        let resumed = self.epoch == self.options.initial_epoch;
        EpochWalk {
            batches: batch_rows(self.train.len(), self.options.batch_size, order),
            next: if resumed {
                self.options.initial_batch
            } else {
                0
            },
            tally: EpochTally::started(),
        }
    }

    fn train_next(&mut self, trainer: &mut Trainer<F>) -> std::result::Result<FitEvent, FitError> {
        let walk = self.walk.as_mut().expect("an epoch is under way");
        let rows = &walk.batches[walk.next];
        // Padding never reaches a vector output, so its batches can drop padded steps (not under TBPTT,
        // which needs full-length sequences).
        let trim_time = !trainer.model.output_is_sequence() && self.options.tbptt.is_none();
        let started = Instant::now();
        let mut batch = self.train.batch(rows, trim_time);
        let inputs = std::mem::take(&mut batch.inputs);
        let labels = batch
            .labels()
            .expect("fit checked that the dataset has targets");
        let reports = train_batch(trainer, inputs, labels, self.options.tbptt)?;
        let progress = batch_progress(
            &reports,
            (self.epoch, walk.next, walk.batches.len()),
            rows.len(),
            started,
            trainer.step_count(),
        );
        walk.tally.add(&progress);
        walk.next += 1;
        trainer.set_position(Some(self.options.position(self.epoch, walk.next)));
        if !progress.applied && self.options.stop_on_non_finite {
            self.stop = Some(FitError::NonFiniteStep {
                epoch: self.epoch,
                batch: progress.batch,
                loss: progress.loss,
                grad_norm: progress.grad_norm,
            });
        }
        Ok(FitEvent::Batch(progress))
    }

    /// `None` when cancelled during the validation: the epoch is not finished then.
    fn end_epoch(
        &mut self,
        trainer: &mut Trainer<F>,
        cancel: &AtomicBool,
    ) -> Result<Option<EpochProgress>> {
        let validation = match self
            .validation
            .map(|v| evaluate(&trainer.model, v, self.options.batch_size, cancel))
            .transpose()
        {
            Err(_) if cancel.load(Ordering::Relaxed) => {
                self.summary.cancelled = true;
                return Ok(None);
            }
            validation => validation?,
        };
        let walk = self.walk.take().expect("an epoch is under way");
        let progress = walk
            .tally
            .finish(self.epoch, validation, trainer.step_count());
        self.summary.non_finite_updates += progress.non_finite_updates;
        self.summary.epochs.push(progress.clone());
        self.epoch += 1;
        trainer.set_position(Some(self.options.position(self.epoch, 0)));
        Ok(Some(progress))
    }
}

fn require_target<F: Scalar>(data: &Dataset<F>, name: &str) -> Result<()> {
    match data.target() {
        Some(_) => Ok(()),
        None => Err(Error::invalid(name, "training and evaluation need targets")),
    }
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
    let batches = vec![(); data.len().div_ceil(batch_size.max(1))];
    let scores = in_batches(
        model,
        data,
        batch_size,
        cancel,
        batches,
        |output, labels, loss, ()| score_batch(&output, labels, loss),
    )?;
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
    let shape = predicted_shape(model, data)?;
    let mut out = vec![F::zero(); shape.iter().product()];
    predict_into(model, data, batch_size, cancel, &mut out)?;
    Ok(ArrayD::from_shape_vec(shape, out).expect("the buffer holds the predicted shape"))
}

/// The shape [`predict`] gives for `data`: `[N, features]` or `[N, time, features]`.
pub fn predicted_shape<F: Scalar>(model: &Model<F>, data: &Dataset<F>) -> Result<Vec<usize>> {
    let inputs: Vec<&[usize]> = data.inputs().iter().map(Value::shape).collect();
    let output = model.shapes().output();
    output.dims(&inputs).ok_or_else(|| {
        Error::invalid(
            "inputs",
            format!("do not give the model's output {output} its axes"),
        )
    })
}

/// [`predict`] into `out`: [`predicted_shape`]'s elements, row-major. Every batch writes its
/// own rows, so the caller's buffer (a JavaScript array the binding hands in) is the only copy.
pub fn predict_into<F: Scalar>(
    model: &Model<F>,
    data: &Dataset<F>,
    batch_size: usize,
    cancel: &AtomicBool,
    out: &mut [F],
) -> Result<()> {
    let shape = predicted_shape(model, data)?;
    let len: usize = shape.iter().product();
    if out.len() != len {
        return Err(Error::shape(
            "out",
            format!("{len} elements for an output {shape:?}"),
            &[out.len()],
        ));
    }
    let rows_per_part = batch_size.max(1) * (len / shape[0]);
    let parts: Vec<&mut [F]> = out.chunks_mut(rows_per_part).collect();
    in_batches(
        model,
        data,
        batch_size,
        cancel,
        parts,
        |output, _, _, part| {
            let output = output.into_float_data("output")?;
            let values = output.as_slice().expect("standard layout");
            if values.len() != part.len() {
                return Err(Error::shape(
                    "output",
                    format!("{} elements, as predicted", part.len()),
                    output.shape(),
                ));
            }
            copy_in_parallel(values, part);
            Ok(())
        },
    )?;
    Ok(())
}

/// `target.copy_from_slice(source)` on every thread of the pool. The target is often fresh
/// memory (a new JavaScript array): its page faults, not the copy, are most of the time.
fn copy_in_parallel<F: Scalar>(source: &[F], target: &mut [F]) {
    const CHUNK: usize = 1 << 16;
    target
        .par_chunks_mut(CHUNK)
        .zip(source.par_chunks(CHUNK))
        .for_each(|(target, source)| target.copy_from_slice(source));
}

/// Runs `model` in inference mode over `data` in order, the batches in parallel,
/// and maps each batch's output (with its target, the model's loss and the batch's
/// item of `parts`, one per batch) through `each`.
fn in_batches<F: Scalar, P: Send, T: Send>(
    model: &Model<F>,
    data: &Dataset<F>,
    batch_size: usize,
    cancel: &AtomicBool,
    parts: Vec<P>,
    each: impl Fn(Value<F>, Option<Labels<'_, F>>, LossSpec, P) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    if batch_size == 0 {
        return Err(Error::invalid("batchSize", "must be >= 1, got 0"));
    }
    // Trimming padded steps is exact for vector outputs; sequence outputs keep the
    // full time axis so that the batches stack back together.
    let trim_time = !model.output_is_sequence();
    batch_rows(data.len(), batch_size, Order::Sequential)
        .into_par_iter()
        .zip(parts)
        .map(|(rows, part)| {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::invalid("cancel", "stopped before its last batch"));
            }
            let mut batch = data.batch(&rows, trim_time);
            let pass = model.forward(std::mem::take(&mut batch.inputs), false, 0, None)?;
            each(pass.into_output(), batch.labels(), model.spec().loss, part)
        })
        .collect()
}
