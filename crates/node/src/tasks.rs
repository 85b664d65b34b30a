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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use napi::bindgen_prelude::Either3;
use napi::threadsafe_function::{
    ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use napi::{Env, Status, Task};
use napi_derive::napi;
use odyssey_core::model::spec::Dtype;
use odyssey_core::model::{
    checkpoint, evaluate, predict_into, predicted_shape, BatchProgress, EpochProgress, Evaluation,
    FitEvent, FitOptions, FitRun, FitSummary,
};

use crate::data::{ModelFloat, OwnedDataset};
use crate::error::{guard, BindingError, ErrorCode};
use crate::exit::Job;
use crate::output::OutputArray;
use crate::session::{each_session, AnySession, Lease, Session, SessionFloat};

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
    /// The fit waits for `CancelToken.resume()` before going on, lending the model meanwhile.
    pub window: bool,
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
    /// The fit waits for `CancelToken.resume()` before going on, lending the model meanwhile.
    pub window: bool,
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

fn batch_event(p: &BatchProgress, window: bool) -> BatchEvent {
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
        window,
    }
}

fn evaluation_output(e: &Evaluation) -> EvaluationOutput {
    EvaluationOutput {
        loss: e.loss,
        accuracy: e.accuracy,
        examples: e.examples as u32,
    }
}

fn epoch_event(p: &EpochProgress, window: bool) -> EpochEvent {
    EpochEvent {
        kind: "epoch".to_owned(),
        epoch: p.epoch as u32,
        loss: p.loss,
        non_finite_updates: p.non_finite_updates as u32,
        validation: p.validation.as_ref().map(evaluation_output),
        seconds: p.seconds,
        examples_per_second: p.examples_per_second,
        step: p.step as f64,
        window,
    }
}

/// After which events the fit waits for its callbacks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Waits {
    pub batch: bool,
    pub epoch: bool,
}

/// Where a fit waiting for its callbacks leaves the sender that wakes it (`CancelToken.resume()`).
pub(crate) type ResumeSlot = Arc<Mutex<Option<mpsc::Sender<()>>>>;

/// How often a fit waiting for its callbacks looks at its cancel flag.
const WAIT_SLICE: Duration = Duration::from_millis(20);

/// Sends progress to JS: without waiting for it (the queue is unbounded, so a
/// call never blocks), or, where `waits` says, in a callback window: the
/// worker has let go of the session, lends the lease, sends the event and
/// waits until JS calls `CancelToken.resume()` — or until the fit is cancelled
/// (an abort; `stop_work` when the process exits), so a JS thread that will
/// never answer cannot keep it waiting.
struct ProgressSender<'a> {
    callback: Option<&'a ProgressCallback>,
    job: &'a Job,
    waits: Waits,
    resume: &'a ResumeSlot,
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

impl ProgressSender<'_> {
    /// Delivers one event of the fit holding `lease` (the session is not locked here).
    fn deliver(&self, event: &FitEvent, lease: &Lease) {
        let window = self.callback.is_some()
            && match event {
                FitEvent::Batch(_) => self.waits.batch,
                FitEvent::Epoch(_) => self.waits.epoch,
            };
        let event = match event {
            FitEvent::Batch(p) => Either3::A(batch_event(p, window)),
            FitEvent::Epoch(p) => Either3::B(epoch_event(p, window)),
        };
        if !window {
            return self.send(event);
        }
        let (wake, woken) = mpsc::channel();
        *lock_slot(self.resume) = Some(wake);
        lease.open_window();
        if let Some(callback) = self.callback {
            if callback.call(event, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok {
                self.wait_for_resume(&woken);
            }
        }
        lease.close_window();
        lock_slot(self.resume).take();
    }

    /// Until JS resumes the fit, or the fit is cancelled (which `stop_work` does when the process exits).
    fn wait_for_resume(&self, woken: &mpsc::Receiver<()>) {
        while let Err(RecvTimeoutError::Timeout) = woken.recv_timeout(WAIT_SLICE) {
            if self.job.cancel_flag().load(Ordering::Relaxed) {
                return;
            }
        }
    }
}

fn lock_slot(slot: &ResumeSlot) -> MutexGuard<'_, Option<mpsc::Sender<()>>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
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

/// What a pass over data that only reads the model holds (evaluate, predict, decode):
/// its lease, its input, copied on the JS thread until the worker takes it, and a job
/// that only the process's exit cancels.
pub(crate) struct ReadPass<T> {
    lease: Option<Lease>,
    input: Option<T>,
    job: Arc<Job>,
}

impl<T> ReadPass<T> {
    pub(crate) fn new(lease: Lease, input: T) -> Self {
        ReadPass {
            lease: Some(lease),
            input: Some(input),
            job: Job::start_uncancellable(),
        }
    }

    /// Runs `body` on the worker with the input and the exit flag (a task computes once).
    pub(crate) fn compute<O>(
        &mut self,
        body: impl FnOnce(&mut AnySession, T, &AtomicBool) -> Result<O, BindingError>,
    ) -> napi::Result<O, ErrorCode> {
        let input = self.input.take().expect("a task computes once");
        let cancel = self.job.cancel_flag();
        on_worker(&self.lease, |s| body(s, input, cancel))
    }

    /// Gives the model back, in the task's `finally` (also when JS never sees the result).
    pub(crate) fn release(&mut self) {
        self.lease.take();
    }
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
#[cfg(not(target_family = "wasm"))]
fn coded_rejection(env: &Env, error: napi::Error<ErrorCode>) -> napi::Error {
    use napi::bindgen_prelude::{JsObjectValue, JsValue};

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

/// Under WebAssembly napi-rs keeps no JS value inside an `Error`, so the object
/// built above would reach JS without its `code`: there the code travels at the
/// head of the message, `<code>\u{1f}<message>`, and the facade's
/// `fromNativeError` (ts/errors.ts) takes it off again.
#[cfg(target_family = "wasm")]
fn coded_rejection(_env: &Env, error: napi::Error<ErrorCode>) -> napi::Error {
    napi::Error::new(
        Status::GenericFailure,
        format!("{}\u{1f}{}", error.status.as_ref(), error.reason),
    )
}

pub struct FitTask {
    lease: Option<Lease>,
    data: Option<(OwnedDataset, Option<OwnedDataset>)>,
    options: FitOptions,
    waits: Waits,
    progress: Option<ProgressCallback>,
    job: Arc<Job>,
    resume: ResumeSlot,
}

impl FitTask {
    pub(crate) fn new(
        lease: Lease,
        data: (OwnedDataset, Option<OwnedDataset>),
        (options, waits): (FitOptions, Waits),
        progress: Option<ProgressCallback>,
        (cancel, resume): (Arc<AtomicBool>, ResumeSlot),
    ) -> Self {
        FitTask {
            lease: Some(lease),
            data: Some(data),
            options,
            waits,
            progress,
            job: Job::start(cancel),
            resume,
        }
    }
}

/// The fit loop, one batch per lock of the session, so that the session is
/// free while the sender waits for JS.
fn run_fit<F: SessionFloat>(
    lease: &Lease,
    (train, validation): (OwnedDataset, Option<OwnedDataset>),
    options: &FitOptions,
    sender: &ProgressSender<'_>,
) -> Result<FitSummary, BindingError> {
    let inputs = lease.with_trainer::<F, _>(|t| Ok(t.model.spec().inputs.clone()))?;
    let train = train.into_dataset::<F>(&inputs)?;
    let validation = validation
        .map(|v| v.into_dataset::<F>(&inputs))
        .transpose()?;
    let mut run = FitRun::new(&train, validation.as_ref(), options)?;
    let cancel = sender.job.cancel_flag();
    while let Some(event) = lease.with_trainer(|t| Ok(run.advance(t, cancel)?))? {
        sender.deliver(&event, lease);
    }
    Ok(run.into_summary())
}

#[napi]
impl Task for FitTask {
    type Output = napi::Result<FitSummary, ErrorCode>;
    type JsValue = FitOutput;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let data = self.data.take().expect("a task computes once");
        let sender = ProgressSender {
            callback: self.progress.as_ref(),
            job: &self.job,
            waits: self.waits,
            resume: &self.resume,
        };
        let lease = self
            .lease
            .as_ref()
            .expect("a task computes once, before finally releases its lease");
        let outcome = guard(|| match lease.dtype()? {
            Dtype::Float32 => run_fit::<f32>(lease, data, &self.options, &sender),
            Dtype::Float64 => run_fit::<f64>(lease, data, &self.options, &sender),
        });
        sender.finish();
        Ok(outcome)
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<FitOutput> {
        settle(&env, output, |summary| FitOutput {
            epochs: summary
                .epochs
                .iter()
                .map(|e| epoch_event(e, false))
                .collect(),
            cancelled: summary.cancelled,
            non_finite_updates: summary.non_finite_updates as u32,
        })
    }

    fn finally(mut self, _: Env) -> napi::Result<()> {
        self.lease.take();
        Ok(())
    }
}

/// The data and the batch size.
pub struct EvaluateTask(pub(crate) ReadPass<(OwnedDataset, usize)>);

#[napi]
impl Task for EvaluateTask {
    type Output = napi::Result<Evaluation, ErrorCode>;
    type JsValue = EvaluationOutput;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.0.compute(|s, (data, batch_size), cancel| {
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
        self.0.release();
        Ok(())
    }
}

/// The data and the batch size, and the array the output goes into.
pub struct PredictTask {
    pass: ReadPass<(OwnedDataset, usize)>,
    /// Filled by the worker; the promise resolves with it.
    output: Option<OutputArray>,
}

impl PredictTask {
    pub(crate) fn new(pass: ReadPass<(OwnedDataset, usize)>, output: OutputArray) -> Self {
        PredictTask {
            pass,
            output: Some(output),
        }
    }
}

/// A prediction's values (filled in place) and shape.
#[napi(object, object_from_js = false)]
pub struct PredictOutput {
    pub data: OutputArray,
    pub shape: Vec<u32>,
}

/// Predicts into `output`; returns the output's shape.
fn run_predict<F: ModelFloat>(
    session: &Session<F>,
    data: OwnedDataset,
    batch_size: usize,
    output: &mut OutputArray,
    cancel: &AtomicBool,
) -> Result<Vec<u32>, BindingError> {
    let model = &session.trainer.model;
    let data = data.into_dataset::<F>(&model.spec().inputs)?;
    predict_into(model, &data, batch_size, cancel, output.values_mut()?)?;
    Ok(crate::convert::js_shape(&predicted_shape(model, &data)?))
}

#[napi]
impl Task for PredictTask {
    type Output = napi::Result<Vec<u32>, ErrorCode>;
    type JsValue = PredictOutput;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let output = self.output.as_mut().expect("a task computes once");
        Ok(self.pass.compute(|s, (data, batch_size), cancel| {
            each_session!(s, s => run_predict(s, data, batch_size, output, cancel))
        }))
    }

    fn resolve(&mut self, env: Env, shape: Self::Output) -> napi::Result<PredictOutput> {
        settle(&env, shape, |shape| PredictOutput {
            data: self.output.take().expect("a task resolves once"),
            shape,
        })
    }

    fn finally(mut self, _: Env) -> napi::Result<()> {
        self.pass.release();
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
