//! `NativeModel`: a whole model (graph, trainer, streaming state) of one dtype
//! behind a JS class, and `CancelToken`, the flag a running fit reads.
//!
//! The model lives behind `Arc<Mutex<..>>` so that a libuv worker can train
//! it while JS keeps running. Every call first takes the model's *lease*: one
//! operation at a time, and a call that finds the lease taken is refused with
//! `ODYSSEY_STATE` instead of waiting, so the JS thread never blocks on a
//! worker. The async methods take the lease on the JS thread when they are
//! called and give it back when their promise settles.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use napi::bindgen_prelude::{AsyncTask, Either, Either3, Float32Array, Float64Array};
use napi::threadsafe_function::{ThreadsafeFunction, UnknownReturnValue};
use napi::Status;
use napi_derive::napi;
use odyssey_core::model::checkpoint::LoadedTrainer;
use odyssey_core::model::fit::train_batch;
use odyssey_core::model::spec::Dtype;
use odyssey_core::model::{
    describe, Batch, FitOptions, GraphShapes, Model, ModelSpec, StepReport, Stream, Tbptt, Trainer,
    TrainingSpec, ValueKind,
};
use odyssey_core::Error;

use crate::convert::{js_shape, to_js};
use crate::data::{
    copy_inputs, into_values, DatasetArgs, InputArgs, ModelFloat, OwnedDataset, OwnedInput,
};
use crate::error::{guard, BindingError, ErrorCode};
use crate::layer::{named_values, weight_shapes, NamedTensor};
use crate::tasks::{
    BatchEvent, EndEvent, EpochEvent, EvaluateTask, FitTask, LoadTask, PredictTask, SaveTask,
};

/// Applies the same generic code to whichever dtype a session has.
macro_rules! each_session {
    ($session:expr, $s:ident => $body:expr) => {
        match $session {
            $crate::model::AnySession::F32($s) => $body,
            $crate::model::AnySession::F64($s) => $body,
        }
    };
}
pub(crate) use each_session;

/// A trainer and the recurrent state carried by `step`.
pub struct Session<F: ModelFloat> {
    pub trainer: Trainer<F>,
    pub stream: Stream<F>,
}

pub enum AnySession {
    F32(Session<f32>),
    F64(Session<f64>),
}

impl AnySession {
    fn new(model: ModelSpec, training: TrainingSpec) -> Result<Self, BindingError> {
        Ok(match model.dtype {
            Dtype::Float32 => {
                AnySession::F32(Session::new(Trainer::new(Model::new(model)?, training)?))
            }
            Dtype::Float64 => {
                AnySession::F64(Session::new(Trainer::new(Model::new(model)?, training)?))
            }
        })
    }

    fn specs(&self) -> (&ModelSpec, &TrainingSpec) {
        each_session!(self, s => (s.trainer.model.spec(), s.trainer.spec()))
    }
}

impl<F: ModelFloat> Session<F> {
    fn new(trainer: Trainer<F>) -> Self {
        Session {
            trainer,
            stream: Stream::new(),
        }
    }
}

impl From<LoadedTrainer> for AnySession {
    fn from(loaded: LoadedTrainer) -> Self {
        match loaded {
            LoadedTrainer::F32(trainer) => AnySession::F32(Session::new(trainer)),
            LoadedTrainer::F64(trainer) => AnySession::F64(Session::new(trainer)),
        }
    }
}

/// What a `NativeModel` shares with the workers running its async calls.
struct Shared {
    /// `None` once disposed.
    session: Mutex<Option<AnySession>>,
    /// The operation holding the lease, if any.
    running: Mutex<Option<&'static str>>,
}

/// The right to use a model for one operation; released on drop.
pub(crate) struct Lease {
    shared: Arc<Shared>,
}

/// Locks a mutex whose holder may have panicked: the panic was already turned into
/// an `ODYSSEY_PANIC` error, and the model stays usable (its last update was either
/// applied or not, as after any failed step).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Lease {
    fn take(shared: &Arc<Shared>, operation: &'static str) -> Result<Self, BindingError> {
        let mut running = lock(&shared.running);
        if let Some(other) = *running {
            return Err(BindingError::State(format!(
                "{other} is already running on this model; {operation} has to wait until it settles \
                 (cancel a fit with its signal)"
            )));
        }
        if lock(&shared.session).is_none() {
            return Err(disposed());
        }
        *running = Some(operation);
        Ok(Lease {
            shared: shared.clone(),
        })
    }

    /// Runs `body` on the model's session.
    pub fn with_session<T>(
        &self,
        body: impl FnOnce(&mut AnySession) -> Result<T, BindingError>,
    ) -> Result<T, BindingError> {
        let mut session = lock(&self.shared.session);
        body(session.as_mut().ok_or_else(disposed)?)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        *lock(&self.shared.running) = None;
    }
}

fn disposed() -> BindingError {
    BindingError::State("this model has been disposed; create or load another one".to_owned())
}

/// The flag a running `fit` reads before every batch.
#[napi]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
}

#[napi]
impl CancelToken {
    #[napi(constructor)]
    pub fn new() -> napi::Result<Self, ErrorCode> {
        guard(|| {
            Ok(CancelToken {
                flag: Arc::new(AtomicBool::new(false)),
            })
        })
    }

    /// Asks the fit reading this token to stop before its next batch.
    #[napi]
    pub fn cancel(&self) -> napi::Result<(), ErrorCode> {
        guard(|| {
            self.flag.store(true, Ordering::Relaxed);
            Ok(())
        })
    }

    #[napi(getter)]
    pub fn cancelled(&self) -> napi::Result<bool, ErrorCode> {
        guard(|| Ok(self.flag.load(Ordering::Relaxed)))
    }
}

/// `fit` options; omitted ones take `FitOptions::default()`.
#[napi(object, object_to_js = false)]
pub struct FitArgs {
    /// Train until this many epochs are done in total (epochs `initialEpoch..epochs` run).
    pub epochs: u32,
    pub initial_epoch: Option<u32>,
    pub batch_size: u32,
    pub shuffle: Option<bool>,
    /// Seed of the per-epoch shuffle (a safe integer >= 0).
    pub seed: Option<i64>,
    pub tbptt: Option<TbpttArgs>,
    pub stop_on_non_finite: Option<bool>,
}

/// Truncated BPTT: every `k1` steps, backpropagate through the last `k2`.
#[napi(object, object_to_js = false)]
pub struct TbpttArgs {
    pub k1: u32,
    pub k2: u32,
}

/// What one update did.
#[napi(object, object_from_js = false)]
pub struct StepOutput {
    pub loss: f64,
    /// Global L2 norm of the gradients before clipping.
    pub grad_norm: f64,
    pub clipped: bool,
    /// False when the loss or a gradient was not finite and the update was skipped.
    pub applied: bool,
    pub learning_rate: f64,
}

/// A float tensor, flat and row-major.
#[napi(object, object_from_js = false)]
pub struct TensorOutput {
    pub data: Either<Float32Array, Float64Array>,
    pub shape: Vec<u32>,
}

/// Per-step gradient norms of one recurrent layer entry.
#[napi(object, object_from_js = false)]
pub struct GradientFlowEntry {
    /// The recurrent node's name.
    pub node: String,
    /// `l0`, `l1`, `l0_reverse`, ... (PyTorch's layer suffixes).
    pub layer: String,
    /// `[time]`: ‖∂J/∂c(k)‖ (LSTM) or ‖∂J/∂h(k)‖ (simple RNN) for every step k.
    pub norms: Float64Array,
}

/// One value of a described graph: a model input or a node's output.
#[napi(object, object_from_js = false)]
pub struct ValueDescription {
    pub name: String,
    /// `'sequence'` (`[n, time, width]`), `'tokens'` (`[n, time]`, width 0) or `'vector'` (`[n, width]`).
    pub kind: String,
    pub width: f64,
}

/// The smallest vocabulary of the embeddings reading a token input.
#[napi(object, object_from_js = false)]
pub struct VocabularyDescription {
    pub input: String,
    pub size: f64,
}

/// A model spec checked by the core, with the shape of every value.
#[napi(object, object_from_js = false)]
pub struct GraphDescription {
    /// The model inputs, then every node's output, in spec order.
    pub values: Vec<ValueDescription>,
    pub vocabularies: Vec<VocabularyDescription>,
}

fn graph_description(shapes: &GraphShapes) -> GraphDescription {
    let kind = |k: ValueKind| match k {
        ValueKind::Sequence => "sequence",
        ValueKind::Tokens => "tokens",
        ValueKind::Vector => "vector",
    };
    GraphDescription {
        values: shapes
            .values
            .iter()
            .map(|(name, shape)| ValueDescription {
                name: name.clone(),
                kind: kind(shape.kind).to_owned(),
                width: shape.width as f64,
            })
            .collect(),
        vocabularies: shapes
            .vocabularies
            .iter()
            .map(|(input, size)| VocabularyDescription {
                input: input.clone(),
                size: *size as f64,
            })
            .collect(),
    }
}

/// A model graph with its trainer, of the dtype its spec names.
#[napi]
pub struct NativeModel {
    shared: Arc<Shared>,
    /// The specs as JSON with every default filled in (they never change).
    model_spec: String,
    training_spec: String,
}

impl NativeModel {
    pub(crate) fn from_session(session: AnySession) -> Result<Self, BindingError> {
        let (model, training) = session.specs();
        let model_spec = serde_json::to_string(model).map_err(json_error("modelSpec"))?;
        let training_spec = serde_json::to_string(training).map_err(json_error("trainingSpec"))?;
        Ok(NativeModel {
            shared: Arc::new(Shared {
                session: Mutex::new(Some(session)),
                running: Mutex::new(None),
            }),
            model_spec,
            training_spec,
        })
    }

    pub(crate) fn lease(&self, operation: &'static str) -> Result<Lease, BindingError> {
        Lease::take(&self.shared, operation)
    }

    /// Takes the lease and runs `body` on the session now, on the JS thread.
    fn now<T>(
        &self,
        operation: &'static str,
        body: impl FnOnce(&mut AnySession) -> Result<T, BindingError>,
    ) -> Result<T, BindingError> {
        self.lease(operation)?.with_session(body)
    }
}

/// A JSON (de)serialisation error as an `ODYSSEY_INVALID` naming what was being read or written.
fn json_error(name: &'static str) -> impl Fn(serde_json::Error) -> BindingError {
    move |e| Error::invalid(name, e.to_string()).into()
}

#[napi]
impl NativeModel {
    /// Builds a freshly initialised model from the JSON of a `ModelSpec` (its
    /// `dtype` decides f32 or f64) and of a `TrainingSpec`.
    #[napi(constructor)]
    pub fn new(model_spec: String, training_spec: String) -> napi::Result<Self, ErrorCode> {
        guard(|| {
            let model = serde_json::from_str(&model_spec).map_err(json_error("modelSpec"))?;
            let training =
                serde_json::from_str(&training_spec).map_err(json_error("trainingSpec"))?;
            NativeModel::from_session(AnySession::new(model, training)?)
        })
    }

    /// Checks the JSON of a `ModelSpec` (names, wiring, sizes, shapes) without building
    /// the model, and describes every value in it.
    #[napi]
    pub fn describe_graph(model_spec: String) -> napi::Result<GraphDescription, ErrorCode> {
        guard(|| {
            let spec: ModelSpec =
                serde_json::from_str(&model_spec).map_err(json_error("modelSpec"))?;
            Ok(graph_description(&describe(&spec)?))
        })
    }

    /// Restores a model saved with `save`: weights, training spec, counters and optimizer state.
    #[napi(ts_return_type = "Promise<NativeModel>")]
    pub fn load(dir: String) -> napi::Result<AsyncTask<LoadTask>, ErrorCode> {
        guard(|| Ok(AsyncTask::new(LoadTask::new(PathBuf::from(dir)))))
    }

    /// The model spec as JSON, every default filled in.
    #[napi(getter)]
    pub fn model_spec(&self) -> napi::Result<String, ErrorCode> {
        guard(|| Ok(self.model_spec.clone()))
    }

    /// The training spec as JSON, every default filled in.
    #[napi(getter)]
    pub fn training_spec(&self) -> napi::Result<String, ErrorCode> {
        guard(|| Ok(self.training_spec.clone()))
    }

    /// Updates applied so far.
    #[napi]
    pub fn step_count(&self) -> napi::Result<f64, ErrorCode> {
        guard(|| {
            self.now("stepCount", |s| {
                Ok(each_session!(s, s => s.trainer.step_count() as f64))
            })
        })
    }

    /// Trains on `train` on a libuv worker; resolves when the last epoch is done or the
    /// token is cancelled. Progress arrives through `onProgress` (batch, epoch, then one
    /// `end` event, which is always delivered before the promise settles).
    #[napi(ts_return_type = "Promise<FitOutput>")]
    // Spelled out: the .d.ts generator does not resolve type aliases.
    #[allow(clippy::type_complexity)]
    pub fn fit(
        &self,
        train: DatasetArgs,
        validation: Option<DatasetArgs>,
        options: FitArgs,
        on_progress: Option<
            ThreadsafeFunction<
                Either3<BatchEvent, EpochEvent, EndEvent>,
                UnknownReturnValue,
                Either3<BatchEvent, EpochEvent, EndEvent>,
                Status,
                false,
                true,
            >,
        >,
        cancel: &CancelToken,
    ) -> napi::Result<AsyncTask<FitTask>, ErrorCode> {
        guard(|| {
            let lease = self.lease("fit")?;
            let train = OwnedDataset::copy(&train)?;
            let validation = validation.as_ref().map(OwnedDataset::copy).transpose()?;
            let options = fit_options(&options)?;
            Ok(AsyncTask::new(FitTask::new(
                lease,
                (train, validation),
                options,
                on_progress,
                cancel.flag.clone(),
            )))
        })
    }

    /// Loss (and accuracy for classification losses) over `data`, on a libuv worker.
    #[napi(ts_return_type = "Promise<EvaluationOutput>")]
    pub fn evaluate(
        &self,
        data: DatasetArgs,
        batch_size: u32,
    ) -> napi::Result<AsyncTask<EvaluateTask>, ErrorCode> {
        guard(|| {
            let lease = self.lease("evaluate")?;
            Ok(AsyncTask::new(EvaluateTask::new(
                lease,
                OwnedDataset::copy(&data)?,
                batch_size as usize,
            )))
        })
    }

    /// The model's output for every example (`[n, features]` or `[n, time, features]`), on a libuv worker.
    #[napi(ts_return_type = "Promise<TensorOutput>")]
    pub fn predict(
        &self,
        data: DatasetArgs,
        batch_size: u32,
    ) -> napi::Result<AsyncTask<PredictTask>, ErrorCode> {
        guard(|| {
            let lease = self.lease("predict")?;
            Ok(AsyncTask::new(PredictTask::new(
                lease,
                OwnedDataset::copy(&data)?,
                batch_size as usize,
            )))
        })
    }

    /// Saves a crash-safe checkpoint into `dir`, on a libuv worker. `metadata`: JSON stored with it.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn save(
        &self,
        dir: String,
        metadata: Option<String>,
    ) -> napi::Result<AsyncTask<SaveTask>, ErrorCode> {
        guard(|| {
            let metadata = match metadata {
                Some(json) => serde_json::from_str(&json).map_err(json_error("metadata"))?,
                None => serde_json::Value::Null,
            };
            let lease = self.lease("save")?;
            Ok(AsyncTask::new(SaveTask::new(
                lease,
                PathBuf::from(dir),
                metadata,
            )))
        })
    }

    /// One training step on `batch` (or one update per window with `tbptt`), synchronously.
    #[napi]
    pub fn train_step(
        &self,
        batch: DatasetArgs,
        tbptt: Option<TbpttArgs>,
    ) -> napi::Result<Vec<StepOutput>, ErrorCode> {
        guard(|| {
            self.now("trainStep", |s| {
                let batch = OwnedDataset::copy(&batch)?;
                let tbptt = tbptt.as_ref().map(to_tbptt);
                each_session!(s, s => train_step_on(s, batch, tbptt))
            })
        })
    }

    /// Per-step gradient norms of every recurrent layer entry for the loss on `batch`; weights untouched.
    #[napi]
    pub fn gradient_flow(
        &self,
        batch: DatasetArgs,
    ) -> napi::Result<Vec<GradientFlowEntry>, ErrorCode> {
        guard(|| {
            self.now("gradientFlow", |s| {
                let batch = OwnedDataset::copy(&batch)?;
                each_session!(s, s => gradient_flow_on(s, batch))
            })
        })
    }

    /// Streaming inference: the output for the next chunk of time steps (`[batch, steps, ...]`
    /// inputs), carrying the recurrent state from the previous call.
    #[napi]
    pub fn step(&self, inputs: Vec<InputArgs>) -> napi::Result<TensorOutput, ErrorCode> {
        guard(|| {
            self.now("step", |s| {
                let inputs = copy_inputs(&inputs);
                each_session!(s, s => step_on(s, inputs))
            })
        })
    }

    /// Forgets the state `step` carries: the next call starts new sequences.
    #[napi]
    pub fn reset_state(&self) -> napi::Result<(), ErrorCode> {
        guard(|| {
            self.now("resetState", |s| {
                each_session!(s, s => s.stream.reset());
                Ok(())
            })
        })
    }

    /// Copies of every tensor under its key `"{node}.{pytorch name}"` (`lstm.weight_ih_l0`).
    #[napi]
    pub fn get_weights(&self) -> napi::Result<Vec<NamedTensor>, ErrorCode> {
        guard(|| {
            self.now("getWeights", |s| {
                Ok(each_session!(s, s => weights_of(&s.trainer.model)))
            })
        })
    }

    /// Replaces the named tensors (any subset); nothing changes unless every entry
    /// names a tensor, has its shape and holds finite values.
    #[napi]
    pub fn set_weights(&self, weights: Vec<NamedTensor>) -> napi::Result<(), ErrorCode> {
        guard(|| {
            self.now(
                "setWeights",
                |s| each_session!(s, s => set_weights(&mut s.trainer.model, &weights)),
            )
        })
    }

    /// Frees the model. Every later call fails with `ODYSSEY_STATE`; disposing twice is fine.
    #[napi]
    pub fn dispose(&self) -> napi::Result<(), ErrorCode> {
        guard(|| match self.lease("dispose") {
            Ok(lease) => {
                *lock(&lease.shared.session) = None;
                // The buffers kept for this model's next step are not needed any more.
                crate::ALLOCATOR.release();
                Ok(())
            }
            Err(_) if lock(&self.shared.session).is_none() => Ok(()),
            Err(busy) => Err(busy),
        })
    }
}

/// A copied batch as one core batch, which must have a target.
fn labelled_batch<F: ModelFloat>(
    model: &Model<F>,
    batch: OwnedDataset,
    purpose: &str,
) -> Result<Batch<F>, BindingError> {
    let batch = batch.into_dataset(&model.spec().inputs)?.into_batch();
    if batch.target.is_none() {
        return Err(Error::invalid("batch", format!("{purpose} needs a target")).into());
    }
    Ok(batch)
}

fn train_step_on<F: ModelFloat>(
    session: &mut Session<F>,
    batch: OwnedDataset,
    tbptt: Option<Tbptt>,
) -> Result<Vec<StepOutput>, BindingError> {
    let mut batch = labelled_batch(&session.trainer.model, batch, "a training step")?;
    let inputs = std::mem::take(&mut batch.inputs);
    let labels = batch.labels().expect("labelled_batch checked the target");
    let reports = train_batch(&mut session.trainer, inputs, labels, tbptt)?;
    Ok(reports.iter().map(step_output).collect())
}

fn gradient_flow_on<F: ModelFloat>(
    session: &Session<F>,
    batch: OwnedDataset,
) -> Result<Vec<GradientFlowEntry>, BindingError> {
    let mut batch = labelled_batch(&session.trainer.model, batch, "gradient flow")?;
    let inputs = std::mem::take(&mut batch.inputs);
    let labels = batch.labels().expect("labelled_batch checked the target");
    let flow = session.trainer.gradient_flow(inputs, labels)?;
    Ok(flow
        .into_iter()
        .map(|(node, suffix, norms)| GradientFlowEntry {
            node,
            layer: suffix.trim_start_matches('_').to_owned(),
            norms: Float64Array::new(norms.iter().map(|n| n.to_f64_lossy()).collect()),
        })
        .collect())
}

fn step_on<F: ModelFloat>(
    session: &mut Session<F>,
    inputs: Vec<OwnedInput>,
) -> Result<TensorOutput, BindingError> {
    let values = into_values(inputs, &session.trainer.model.spec().inputs)?;
    let output = session.stream.step(&session.trainer.model, values)?;
    Ok(TensorOutput {
        data: to_js(&output),
        shape: js_shape(output.shape()),
    })
}

fn weights_of<F: ModelFloat>(model: &Model<F>) -> Vec<NamedTensor> {
    model
        .named_tensors()
        .into_iter()
        .map(|(name, t)| NamedTensor {
            name,
            shape: js_shape(t.shape()),
            data: to_js(&t),
        })
        .collect()
}

fn fit_options(args: &FitArgs) -> Result<FitOptions, BindingError> {
    let defaults = FitOptions::default();
    let seed = match args.seed {
        Some(seed) => u64::try_from(seed)
            .map_err(|_| Error::invalid("seed", format!("must be >= 0, got {seed}")))?,
        None => defaults.seed,
    };
    let options = FitOptions {
        epochs: args.epochs as usize,
        initial_epoch: args
            .initial_epoch
            .map_or(defaults.initial_epoch, |e| e as usize),
        batch_size: args.batch_size as usize,
        shuffle: args.shuffle.unwrap_or(defaults.shuffle),
        seed,
        tbptt: args.tbptt.as_ref().map(to_tbptt),
        stop_on_non_finite: args
            .stop_on_non_finite
            .unwrap_or(defaults.stop_on_non_finite),
    };
    options.validate()?;
    Ok(options)
}

fn to_tbptt(args: &TbpttArgs) -> Tbptt {
    Tbptt {
        k1: args.k1 as usize,
        k2: args.k2 as usize,
    }
}

fn step_output(report: &StepReport) -> StepOutput {
    StepOutput {
        loss: report.loss,
        grad_norm: report.grad_norm,
        clipped: report.clipped,
        applied: report.applied,
        learning_rate: report.learning_rate,
    }
}

fn set_weights<F: ModelFloat>(
    model: &mut Model<F>,
    weights: &[NamedTensor],
) -> Result<(), BindingError> {
    let shapes = weight_shapes(weights);
    Ok(model.assign_named(&named_values::<F>(weights, &shapes)?)?)
}
