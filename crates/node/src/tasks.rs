//! The async methods of `NativeModel` as napi `Task`s: each runs on a libuv
//! worker thread and settles a promise on the JS thread.
//!
//! Why `AsyncTask` rather than a spawned thread with a deferred promise: libuv
//! owns the thread, the promise and its lifetime (the event loop stays alive
//! while work is pending; nothing outlives the environment), and errors cross
//! back through `resolve` on the JS thread, where they become JS errors with
//! our codes. The cost is one libuv pool thread (4 by default, see
//! `UV_THREADPOOL_SIZE`) per running call; a model runs one call at a time.
//!
//! Compute threads: the worker drives the computation itself; the core's
//! batched `evaluate`/`predict` use rayon's global pool (one thread per core).
//! No pool is created here, so nothing nests.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};

use napi::bindgen_prelude::{Either3, JsObjectValue, JsValue};
use napi::threadsafe_function::{
    ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use napi::{Env, Status, Task};
use napi_derive::napi;
use odyssey_core::model::{
    checkpoint, evaluate, fit, predict, BatchProgress, EpochProgress, Evaluation, FitObserver,
    FitOptions, FitSummary,
};

use crate::convert::Floats;
use crate::data::{ModelFloat, OwnedDataset};
use crate::dto::TensorOutput;
use crate::error::{guard, BindingError, ErrorCode};
use crate::exit::Job;
use crate::session::{each_session, AnySession, Lease, Session};

/// Progress of one batch.
#[napi(object, object_from_js = false)]
pub struct BatchEvent {
    /// `'batch'`
    pub kind: String,
    /// 0-based epoch, and batch within it.
    pub epoch: u32,
    pub batch: u32,
    pub batches: u32,
    pub examples: u32,
    pub loss: f64,
    /// Global L2 norm of the gradients before clipping.
    pub grad_norm: f64,
    pub clipped: bool,
    /// False when an update of this batch was skipped because it was not finite.
    pub applied: bool,
    pub non_finite_updates: u32,
    pub learning_rate: f64,
    pub examples_per_second: f64,
    /// Updates applied so far.
    pub step: f64,
}

/// Loss (and accuracy for classification losses) over a dataset.
#[napi(object, object_from_js = false)]
pub struct EvaluationOutput {
    pub loss: f64,
    pub accuracy: Option<f64>,
    pub examples: u32,
}

/// Progress of one finished epoch.
#[napi(object, object_from_js = false)]
pub struct EpochEvent {
    /// `'epoch'`
    pub kind: String,
    pub epoch: u32,
    /// Mean training loss over the epoch's finite batches (NaN if none).
    pub loss: f64,
    pub non_finite_updates: u32,
    pub validation: Option<EvaluationOutput>,
    /// Training time of the epoch (validation excluded).
    pub seconds: f64,
    pub examples_per_second: f64,
    pub step: f64,
}

/// The last event of a fit, delivered before its promise settles.
#[napi(object, object_from_js = false)]
pub struct EndEvent {
    /// `'end'`
    pub kind: String,
}

/// What `fit` resolves to.
#[napi(object, object_from_js = false)]
pub struct FitOutput {
    /// Every epoch that ran to its end.
    pub epochs: Vec<EpochEvent>,
    /// Stopped by the cancel token; the weights are those of the last finished update.
    pub cancelled: bool,
    pub non_finite_updates: u32,
}

type ProgressEvent = Either3<BatchEvent, EpochEvent, EndEvent>;
/// Weak (unref'd): the running task keeps the event loop alive while JS awaits it; the
/// callback must not keep it alive on its own.
type ProgressCallback =
    ThreadsafeFunction<ProgressEvent, UnknownReturnValue, ProgressEvent, Status, false, true>;

fn batch_event(p: &BatchProgress) -> BatchEvent {
    BatchEvent {
        kind: "batch".to_owned(),
        epoch: p.epoch as u32,
        batch: p.batch as u32,
        batches: p.batches as u32,
        examples: p.examples as u32,
        loss: p.loss,
        grad_norm: p.grad_norm,
        clipped: p.clipped,
        applied: p.applied,
        non_finite_updates: p.non_finite_updates as u32,
        learning_rate: p.learning_rate,
        examples_per_second: p.examples_per_second,
        step: p.step as f64,
    }
}

fn evaluation_output(e: &Evaluation) -> EvaluationOutput {
    EvaluationOutput {
        loss: e.loss,
        accuracy: e.accuracy,
        examples: e.examples as u32,
    }
}

fn epoch_event(p: &EpochProgress) -> EpochEvent {
    EpochEvent {
        kind: "epoch".to_owned(),
        epoch: p.epoch as u32,
        loss: p.loss,
        non_finite_updates: p.non_finite_updates as u32,
        validation: p.validation.as_ref().map(evaluation_output),
        seconds: p.seconds,
        examples_per_second: p.examples_per_second,
        step: p.step as f64,
    }
}

/// Sends progress to JS without waiting for it (the queue is unbounded, so a call never blocks).
struct ProgressSender<'a> {
    callback: Option<&'a ProgressCallback>,
    job: &'a Job,
}

impl ProgressSender<'_> {
    fn send(&self, event: ProgressEvent) {
        if let Some(callback) = self.callback {
            // A closing environment drops the event; fit itself goes on to its end.
            callback.call(event, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }

    /// Sends the `end` event and waits until JS has run it. Thread-safe calls are
    /// delivered in order, so every earlier event has run too: no progress can
    /// arrive after the promise settles (libuv orders the two queues freely).
    fn finish(&self) {
        let Some(callback) = self.callback else {
            return;
        };
        let (done, handled) = mpsc::channel();
        let end = Either3::C(EndEvent {
            kind: "end".to_owned(),
        });
        let status = callback.call_with_return_value(
            end,
            ThreadsafeFunctionCallMode::NonBlocking,
            move |_, _| {
                // The receiver may be gone only if this task is; nothing to tell then.
                let _ = done.send(());
                Ok(())
            },
        );
        if status == Status::Ok {
            // Err means the environment dropped the call (shutting down): nobody is left to wait for,
            // as when it stops while we wait.
            let _ = self.job.wait_for_js(&handled);
        }
    }
}

impl FitObserver for ProgressSender<'_> {
    fn batch_end(&mut self, progress: &BatchProgress) {
        self.send(Either3::A(batch_event(progress)));
    }

    fn epoch_end(&mut self, progress: &EpochProgress) {
        self.send(Either3::B(epoch_event(progress)));
    }
}

/// Runs `body` on the leased session inside `guard`, on the worker.
pub(crate) fn on_worker<T>(
    lease: &Option<Lease>,
    body: impl FnOnce(&mut AnySession) -> Result<T, BindingError>,
) -> napi::Result<T, ErrorCode> {
    guard(|| {
        let lease = lease
            .as_ref()
            .expect("a task computes once, before finally releases its lease");
        lease.with_session(body)
    })
}

/// The promise's value, or a rejection with the error's `code` (on the JS thread).
pub(crate) fn settle<T, J>(
    env: &Env,
    output: napi::Result<T, ErrorCode>,
    into_js: impl FnOnce(T) -> J,
) -> napi::Result<J> {
    output
        .map(into_js)
        .map_err(|error| coded_rejection(env, error))
}

/// A JS `Error` carrying `code`, as a rejection reason: napi's own conversion
/// would set `code` to a napi status name.
fn coded_rejection(env: &Env, error: napi::Error<ErrorCode>) -> napi::Error {
    let build = || -> napi::Result<napi::Error> {
        let mut object = env.create_error(napi::Error::new(
            Status::GenericFailure,
            error.reason.clone(),
        ))?;
        object.set_named_property("code", error.status.as_ref())?;
        Ok(napi::Error::from(object.to_unknown()))
    };
    build().unwrap_or_else(|e| e)
}

pub struct FitTask {
    lease: Option<Lease>,
    data: Option<(OwnedDataset, Option<OwnedDataset>)>,
    options: FitOptions,
    progress: Option<ProgressCallback>,
    job: Arc<Job>,
}

impl FitTask {
    pub(crate) fn new(
        lease: Lease,
        data: (OwnedDataset, Option<OwnedDataset>),
        options: FitOptions,
        progress: Option<ProgressCallback>,
        cancel: Arc<AtomicBool>,
    ) -> Self {
        FitTask {
            lease: Some(lease),
            data: Some(data),
            options,
            progress,
            job: Job::start(cancel),
        }
    }
}

fn run_fit<F: ModelFloat>(
    session: &mut Session<F>,
    (train, validation): (OwnedDataset, Option<OwnedDataset>),
    options: &FitOptions,
    observer: &mut ProgressSender<'_>,
    cancel: &AtomicBool,
) -> Result<FitSummary, BindingError> {
    let inputs = &session.trainer.model.spec().inputs;
    let train = train.into_dataset::<F>(inputs)?;
    let validation = validation
        .map(|v| v.into_dataset::<F>(inputs))
        .transpose()?;
    Ok(fit(
        &mut session.trainer,
        &train,
        validation.as_ref(),
        options,
        observer,
        cancel,
    )?)
}

#[napi]
impl Task for FitTask {
    type Output = napi::Result<FitSummary, ErrorCode>;
    type JsValue = FitOutput;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let data = self.data.take().expect("a task computes once");
        let mut sender = ProgressSender {
            callback: self.progress.as_ref(),
            job: &self.job,
        };
        let (options, cancel) = (&self.options, self.job.cancel_flag());
        let outcome = on_worker(
            &self.lease,
            |s| each_session!(s, s => run_fit(s, data, options, &mut sender, cancel)),
        );
        sender.finish();
        Ok(outcome)
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<FitOutput> {
        settle(&env, output, |summary| FitOutput {
            epochs: summary.epochs.iter().map(epoch_event).collect(),
            cancelled: summary.cancelled,
            non_finite_updates: summary.non_finite_updates as u32,
        })
    }

    fn finally(mut self, _: Env) -> napi::Result<()> {
        self.lease.take();
        Ok(())
    }
}

pub struct EvaluateTask {
    lease: Option<Lease>,
    data: Option<OwnedDataset>,
    batch_size: usize,
    job: Arc<Job>,
}

impl EvaluateTask {
    pub(crate) fn new(lease: Lease, data: OwnedDataset, batch_size: usize) -> Self {
        EvaluateTask {
            lease: Some(lease),
            data: Some(data),
            batch_size,
            job: Job::start_uncancellable(),
        }
    }
}

#[napi]
impl Task for EvaluateTask {
    type Output = napi::Result<Evaluation, ErrorCode>;
    type JsValue = EvaluationOutput;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let data = self.data.take().expect("a task computes once");
        let (batch_size, cancel) = (self.batch_size, self.job.cancel_flag());
        Ok(on_worker(&self.lease, |s| {
            each_session!(s, s => {
                let model = &s.trainer.model;
                let data = data.into_dataset(&model.spec().inputs)?;
                Ok(evaluate(model, &data, batch_size, cancel)?)
            })
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<EvaluationOutput> {
        settle(&env, output, |e| evaluation_output(&e))
    }

    fn finally(mut self, _: Env) -> napi::Result<()> {
        self.lease.take();
        Ok(())
    }
}

/// A prediction still in Rust buffers (typed arrays are made on the JS thread).
pub struct Prediction {
    data: Floats,
    shape: Vec<u32>,
}

pub struct PredictTask {
    lease: Option<Lease>,
    data: Option<OwnedDataset>,
    batch_size: usize,
    job: Arc<Job>,
}

impl PredictTask {
    pub(crate) fn new(lease: Lease, data: OwnedDataset, batch_size: usize) -> Self {
        PredictTask {
            lease: Some(lease),
            data: Some(data),
            batch_size,
            job: Job::start_uncancellable(),
        }
    }
}

fn run_predict<F: ModelFloat>(
    session: &Session<F>,
    data: OwnedDataset,
    batch_size: usize,
    cancel: &AtomicBool,
) -> Result<Prediction, BindingError> {
    let model = &session.trainer.model;
    let data = data.into_dataset::<F>(&model.spec().inputs)?;
    let output = predict(model, &data, batch_size, cancel)?;
    let shape = crate::convert::js_shape(output.shape());
    let values = match output.as_slice() {
        Some(contiguous) => contiguous.to_vec(),
        None => output.iter().copied().collect(),
    };
    Ok(Prediction {
        data: F::wrap(values),
        shape,
    })
}

#[napi]
impl Task for PredictTask {
    type Output = napi::Result<Prediction, ErrorCode>;
    type JsValue = TensorOutput;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let data = self.data.take().expect("a task computes once");
        let (batch_size, cancel) = (self.batch_size, self.job.cancel_flag());
        Ok(on_worker(
            &self.lease,
            |s| each_session!(s, s => run_predict(s, data, batch_size, cancel)),
        ))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<TensorOutput> {
        settle(&env, output, |p| TensorOutput {
            data: p.data,
            shape: p.shape,
        })
    }

    fn finally(mut self, _: Env) -> napi::Result<()> {
        self.lease.take();
        Ok(())
    }
}

pub struct SaveTask {
    lease: Option<Lease>,
    dir: PathBuf,
    metadata: serde_json::Value,
}

impl SaveTask {
    pub(crate) fn new(lease: Lease, dir: PathBuf, metadata: serde_json::Value) -> Self {
        SaveTask {
            lease: Some(lease),
            dir,
            metadata,
        }
    }
}

#[napi]
impl Task for SaveTask {
    type Output = napi::Result<(), ErrorCode>;
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let (dir, metadata) = (&self.dir, &self.metadata);
        Ok(on_worker(
            &self.lease,
            |s| each_session!(s, s => Ok(checkpoint::save(dir, &s.trainer, metadata)?)),
        ))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<()> {
        settle(&env, output, |()| ())
    }

    fn finally(mut self, _: Env) -> napi::Result<()> {
        self.lease.take();
        Ok(())
    }
}
