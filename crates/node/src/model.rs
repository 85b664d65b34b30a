//! `NativeModel`: a whole model (graph, trainer, streaming state) of one dtype
//! behind a JS class, and `CancelToken`, the flag a running fit reads. Every
//! call takes the model's lease first (see `session`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use napi::bindgen_prelude::{AsyncTask, Either3};
use napi::threadsafe_function::{ThreadsafeFunction, UnknownReturnValue};
use napi::{Env, Status, Task};
use napi_derive::napi;
use odyssey_core::model::checkpoint;
use odyssey_core::model::fit::train_batch;
use odyssey_core::model::spec::Dtype;
use odyssey_core::model::{
    describe, model_state, node_states, FitOptions, FitRequest, Model, ModelSpec, NamedState,
    StepReport, Tbptt, ValueShape,
};
use odyssey_core::params::NamedValues;
use odyssey_core::Error;

use crate::convert::{dims, js_shape, to_js, Floats, JsFloatSlice};
use crate::data::{
    copy_inputs, into_values, DatasetArgs, InputArgs, LabelledBatch, ModelFloat, OwnedDataset,
    OwnedInput,
};
use crate::decode::{DecodeArgs, DecodeTask};
use crate::dto::{
    graph_description, FitArgs, GradientFlowEntry, GraphDescription, NodeStateArgs,
    NodeStateOutput, StateTensorArgs, StepOutput, TbpttArgs, TensorOutput,
};
use crate::error::{guard, BindingError, ErrorCode};
use crate::layer::{named_values, weight_shapes, NamedTensor, NamedTensorOutput};
use crate::output::OutputArray;
use crate::session::{each_session, AnySession, Lease, Session, Shared};
use crate::stage;
use crate::tasks::{
    settle, BatchEvent, EndEvent, EpochEvent, EvaluateTask, FitTask, PredictTask, ReadPass,
    ResumeSlot, SaveTask, Waits,
};

/// The flag a running `fit` reads before every batch, and the way its callbacks
/// tell the fit waiting for them to go on.
#[napi]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
    resume: ResumeSlot,
}

/// Locks a mutex whose holder may have panicked (the panic is already an `ODYSSEY_PANIC` error).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[napi]
impl CancelToken {
    #[napi(constructor)]
    pub fn new() -> napi::Result<Self, ErrorCode> {
        guard(|| {
            Ok(CancelToken {
                flag: Arc::new(AtomicBool::new(false)),
                resume: ResumeSlot::default(),
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

    /// Lets the fit waiting for its callbacks (an event with `window: true`) go on.
    #[napi]
    pub fn resume(&self) -> napi::Result<(), ErrorCode> {
        guard(|| {
            if let Some(waiting) = lock(&self.resume).take() {
                // The fit may have stopped waiting already (cancelled): nothing to wake then.
                let _ = waiting.send(());
            }
            Ok(())
        })
    }

    #[napi(getter)]
    pub fn cancelled(&self) -> napi::Result<bool, ErrorCode> {
        guard(|| Ok(self.flag.load(Ordering::Relaxed)))
    }
}

/// A model graph with its trainer, of the dtype its spec names.
#[napi]
pub struct NativeModel {
    shared: Arc<Shared>,
    /// The specs as JSON with every default filled in (the model spec never changes; the
    /// training spec's learning rate may).
    model_spec: String,
    training_spec: Mutex<String>,
    /// JSON of the metadata of the checkpoint this model was loaded from.
    metadata: Option<String>,
    dtype: Dtype,
    /// The shape of the graph's output, for the array `predict` writes into.
    output: ValueShape,
}

impl NativeModel {
    pub(crate) fn from_session(
        session: AnySession,
        metadata: Option<String>,
    ) -> Result<Self, BindingError> {
        let (model, training) = session.specs();
        let (dtype, output) = (model.dtype, describe(model)?.output());
        let model_spec = serde_json::to_string(model).map_err(json_error("modelSpec"))?;
        let training_spec = serde_json::to_string(training).map_err(json_error("trainingSpec"))?;
        Ok(NativeModel {
            dtype,
            output,
            shared: Shared::new(session),
            model_spec,
            training_spec: Mutex::new(training_spec),
            metadata,
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
            NativeModel::from_session(AnySession::new(model, training)?, None)
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
        guard(|| Ok(lock(&self.training_spec).clone()))
    }

    /// JSON of the metadata saved with the checkpoint this model was loaded from (`null` when none).
    #[napi(getter)]
    pub fn metadata(&self) -> napi::Result<Option<String>, ErrorCode> {
        guard(|| Ok(self.metadata.clone()))
    }

    /// Replaces the base learning rate (the schedule scales it) from the next update on; in a
    /// fit's callback window, from its next batch.
    #[napi]
    pub fn set_learning_rate(&self, learning_rate: f64) -> napi::Result<(), ErrorCode> {
        guard(|| {
            let spec = self.now("setLearningRate", |s| {
                each_session!(s, s => s.trainer.set_learning_rate(learning_rate)?);
                serde_json::to_string(s.specs().1).map_err(json_error("trainingSpec"))
            })?;
            *lock(&self.training_spec) = spec;
            Ok(())
        })
    }

    /// Epochs `fit` has finished on this model (saved in its checkpoints).
    #[napi]
    pub fn epochs(&self) -> napi::Result<f64, ErrorCode> {
        guard(|| {
            self.now("epochs", |s| {
                let position = each_session!(s, s => s.trainer.position());
                Ok(position.map_or(0.0, |p| p.epochs as f64))
            })
        })
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
            let waits = Waits {
                batch: options.await_batch_end.unwrap_or(false),
                epoch: options.await_epoch_end.unwrap_or(false),
            };
            let options = lease.with_session(|s| fit_options(&options, s))?;
            Ok(AsyncTask::new(FitTask::new(
                lease,
                (train, validation),
                (options, waits),
                on_progress,
                (cancel.flag.clone(), cancel.resume.clone()),
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
            let data = OwnedDataset::copy(&data)?;
            Ok(AsyncTask::new(EvaluateTask(ReadPass::new(
                lease,
                (data, batch_size as usize),
            ))))
        })
    }

    /// The model's output for every example (`[n, features]` or `[n, time, features]`), on a
    /// libuv worker, written into a typed array allocated now (see `output`).
    #[napi(ts_return_type = "Promise<TensorOutput>")]
    pub fn predict(
        &self,
        env: Env,
        data: DatasetArgs,
        batch_size: u32,
    ) -> napi::Result<AsyncTask<PredictTask>, ErrorCode> {
        guard(|| {
            let lease = self.lease("predict")?;
            let data = OwnedDataset::copy(&data)?;
            let len = data
                .input_shapes()
                .and_then(|inputs| self.output.dims(&inputs))
                .map_or(0, |dims| dims.iter().product());
            let output = OutputArray::unfilled(&env, self.dtype, len)?;
            let pass = ReadPass::new(lease, (data, batch_size as usize));
            Ok(AsyncTask::new(PredictTask::new(pass, output)))
        })
    }

    /// Decodes an encoder–decoder model: the encoder once on `inputs` (every input but the
    /// decoder's), then the decoder step by step, greedy or by beam search, on a libuv worker.
    #[napi(ts_return_type = "Promise<DecodeOutput>")]
    pub fn decode(
        &self,
        inputs: Vec<InputArgs>,
        options: DecodeArgs,
    ) -> napi::Result<AsyncTask<DecodeTask>, ErrorCode> {
        guard(|| {
            let lease = self.lease("decode")?;
            let inputs = copy_inputs(&inputs);
            Ok(AsyncTask::new(DecodeTask(ReadPass::new(
                lease,
                (inputs, (&options).into()),
            ))))
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
                let tbptt = tbptt.as_ref().map(to_tbptt);
                each_session!(s, s => train_step_on(s, &batch, tbptt))
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
            self.now(
                "gradientFlow",
                |s| each_session!(s, s => gradient_flow_on(s, &batch)),
            )
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

    /// Streaming inference for a model with one sequence input, one time step: `x`
    /// `[batch, features]` flat, in the model's dtype, read where it is; the output
    /// `[batch, width]` is written into `out` (nothing is allocated per call).
    #[napi(
        ts_args_type = "x: Float32Array | Float64Array, batch: number, out: Float32Array | Float64Array"
    )]
    pub fn step_into(
        &self,
        x: JsFloatSlice<'_>,
        batch: u32,
        mut out: JsFloatSlice<'_>,
    ) -> napi::Result<(), ErrorCode> {
        guard(|| {
            self.now(
                "step",
                |s| each_session!(s, s => step_into_on(s, &x, batch as usize, &mut out)),
            )
        })
    }

    /// [`Self::step_into`] with the output `[batch, width]` returned in a new array: the
    /// WebAssembly build's path, where a typed-array argument is a copy in the module's memory
    /// (emnapi), so writes into an `out` argument would never reach JS.
    #[napi(
        ts_args_type = "x: Float32Array | Float64Array, batch: number, width: number",
        ts_return_type = "Float32Array | Float64Array"
    )]
    pub fn step_flat(
        &self,
        x: JsFloatSlice<'_>,
        batch: u32,
        width: u32,
    ) -> napi::Result<Floats, ErrorCode> {
        guard(|| {
            self.now(
                "step",
                |s| each_session!(s, s => step_flat_on(s, &x, batch as usize, width as usize)),
            )
        })
    }

    /// The WebAssembly build's streaming stage (see `stage`): makes it hold `x_len` values of
    /// the model's dtype, then `out_len`, and returns the byte address of the first in the
    /// module's memory, where JS writes x and reads the output of [`Self::step_staged`]. Any
    /// earlier address may be stale.
    #[napi]
    pub fn step_stage(&self, x_len: u32, out_len: u32) -> napi::Result<f64, ErrorCode> {
        guard(|| {
            self.now("step", |s| {
                let (x_len, out_len) = (x_len as usize, out_len as usize);
                let address = each_session!(s, s => stage_of(s, x_len, out_len));
                Ok(address as f64)
            })
        })
    }

    /// [`Self::step_into`] on the stage: x `[batch, features]` is the stage's x, the output
    /// `[batch, width]` goes to its out. No typed array crosses emnapi.
    #[napi]
    pub fn step_staged(&self, batch: u32) -> napi::Result<(), ErrorCode> {
        guard(|| {
            self.now(
                "step",
                |s| each_session!(s, s => step_staged_on(s, batch as usize)),
            )
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

    /// The state the next `step` starts from, per recurrent node (empty after a reset).
    #[napi]
    pub fn get_state(&self) -> napi::Result<Vec<NodeStateOutput>, ErrorCode> {
        guard(|| self.now("getState", |s| Ok(each_session!(s, s => state_of(s)))))
    }

    /// Sets the state the next `step` starts from; checked in the core before anything changes.
    #[napi]
    pub fn set_state(&self, state: Vec<NodeStateArgs>) -> napi::Result<(), ErrorCode> {
        guard(|| {
            self.now(
                "setState",
                |s| each_session!(s, s => set_state_on(s, &state)),
            )
        })
    }

    /// Copies of every tensor under its key `"{node}.{pytorch name}"` (`lstm.weight_ih_l0`).
    #[napi]
    pub fn get_weights(&self) -> napi::Result<Vec<NamedTensorOutput>, ErrorCode> {
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
        guard(|| {
            match self.lease("dispose") {
            Ok(lease) if lease.borrowed => Err(BindingError::State(
                "a fit is running on this model, waiting for its callback; dispose it after fit settles"
                    .to_owned(),
            )),
            Ok(lease) => {
                lease.dispose();
                // The buffers kept for this model's next step are not needed any more.
                crate::ALLOCATOR.release();
                Ok(())
            }
            Err(_) if self.shared.is_disposed() => Ok(()),
            Err(busy) => Err(busy),
        }
        })
    }
}

pub struct LoadTask {
    dir: PathBuf,
}

impl LoadTask {
    pub(crate) fn new(dir: PathBuf) -> Self {
        LoadTask { dir }
    }
}

#[napi]
impl Task for LoadTask {
    type Output = napi::Result<(AnySession, Option<String>), ErrorCode>;
    type JsValue = NativeModel;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(guard(|| {
            let (trainer, metadata) = checkpoint::load_with_metadata(&self.dir)?;
            let metadata = match metadata {
                serde_json::Value::Null => None,
                value => Some(value.to_string()),
            };
            Ok((AnySession::from(trainer), metadata))
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<NativeModel> {
        let (session, metadata) = settle(&env, output, |s| s)?;
        settle(
            &env,
            guard(|| NativeModel::from_session(session, metadata)),
            |m| m,
        )
    }
}

fn train_step_on<F: ModelFloat>(
    session: &mut Session<F>,
    batch: &DatasetArgs,
    tbptt: Option<Tbptt>,
) -> Result<Vec<StepOutput>, BindingError> {
    let spec = &session.trainer.model.spec().inputs;
    let mut batch = LabelledBatch::new(batch, spec, "a training step")?;
    let inputs = std::mem::take(&mut batch.inputs);
    let labels = batch.labels();
    let reports = train_batch(&mut session.trainer, inputs, labels, tbptt)?;
    Ok(reports.iter().map(step_output).collect())
}

fn gradient_flow_on<F: ModelFloat>(
    session: &Session<F>,
    batch: &DatasetArgs,
) -> Result<Vec<GradientFlowEntry>, BindingError> {
    let spec = &session.trainer.model.spec().inputs;
    let mut batch = LabelledBatch::new(batch, spec, "gradient flow")?;
    let inputs = std::mem::take(&mut batch.inputs);
    let labels = batch.labels();
    let flow = session.trainer.gradient_flow(inputs, labels)?;
    Ok(flow
        .into_iter()
        .map(|(node, suffix, norms)| GradientFlowEntry {
            node,
            layer: suffix.trim_start_matches('_').to_owned(),
            norms: Floats::F64(norms.iter().map(|n| n.to_f64_lossy()).collect()),
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

fn step_into_on<F: ModelFloat>(
    session: &mut Session<F>,
    x: &JsFloatSlice<'_>,
    batch: usize,
    out: &mut JsFloatSlice<'_>,
) -> Result<(), BindingError> {
    let x = F::slice(x, "x")?;
    let (xs, outs) = (x.as_ptr_range(), F::slice(out, "out")?.as_ptr_range());
    if xs.start < outs.end && outs.start < xs.end {
        return Err(Error::invalid("out", "must not share memory with x").into());
    }
    let out = F::slice_mut(out, "out")?;
    Ok(session
        .stream
        .step_into(&session.trainer.model, x, batch, out)?)
}

fn step_flat_on<F: ModelFloat>(
    session: &mut Session<F>,
    x: &JsFloatSlice<'_>,
    batch: usize,
    width: usize,
) -> Result<Floats, BindingError> {
    let mut out = vec![F::zero(); batch * width];
    session
        .stream
        .step_into(&session.trainer.model, F::slice(x, "x")?, batch, &mut out)?;
    Ok(F::wrap(out))
}

/// The stage's address for values of the session's dtype.
fn stage_of<F: ModelFloat>(_: &Session<F>, x_len: usize, out_len: usize) -> usize {
    stage::stage::<F>(x_len, out_len)
}

fn step_staged_on<F: ModelFloat>(
    session: &mut Session<F>,
    batch: usize,
) -> Result<(), BindingError> {
    stage::with_stage::<F, _>(|x, out| {
        Ok(session
            .stream
            .step_into(&session.trainer.model, x, batch, out)?)
    })
}

fn weights_of<F: ModelFloat>(model: &Model<F>) -> Vec<NamedTensorOutput> {
    model
        .named_tensors()
        .into_iter()
        .map(|(name, t)| NamedTensorOutput {
            name,
            shape: js_shape(t.shape()),
            data: to_js(&t),
        })
        .collect()
}

/// The options of a fit of `session`'s model, from where it stands.
fn fit_options(args: &FitArgs, session: &AnySession) -> Result<FitOptions, BindingError> {
    let seed = match args.seed {
        Some(seed) => Some(
            u64::try_from(seed)
                .map_err(|_| Error::invalid("seed", format!("must be >= 0, got {seed}")))?,
        ),
        None => None,
    };
    let request = FitRequest {
        epochs: args.epochs as usize,
        initial_epoch: args.initial_epoch.map(|e| e as usize),
        resume: args.resume.unwrap_or(false),
        batch_size: args.batch_size.map(|b| b as usize),
        shuffle: args.shuffle,
        seed,
        tbptt: args.tbptt.as_ref().map(to_tbptt),
        stop_on_non_finite: args.stop_on_non_finite.unwrap_or(false),
    };
    let (position, model_seed) =
        each_session!(session, s => (s.trainer.position(), s.trainer.model.spec().seed));
    Ok(request.resolve(position, model_seed)?)
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

fn state_tensor<F: ModelFloat>(array: &ndarray::Array3<F>) -> TensorOutput {
    TensorOutput {
        data: to_js(array),
        shape: js_shape(array.shape()),
    }
}

fn state_of<F: ModelFloat>(session: &Session<F>) -> Vec<NodeStateOutput> {
    let Some(state) = session.stream.state() else {
        return Vec::new();
    };
    node_states(&session.trainer.model, state)
        .into_iter()
        .map(|s| NodeStateOutput {
            node: s.node,
            h: state_tensor(&s.h),
            c: s.c.as_ref().map(state_tensor),
        })
        .collect()
}

fn state_values<'a, F: ModelFloat>(
    name: &'a str,
    shape: &'a [usize],
    tensor: &'a StateTensorArgs,
) -> Result<NamedValues<'a, F>, BindingError> {
    Ok(NamedValues {
        name,
        shape,
        data: F::elements(&tensor.data, &format!("{name}.data"))?,
    })
}

/// Checks `state` in the core (`model_state`) and makes it the state the next step starts from.
fn set_state_on<F: ModelFloat>(
    session: &mut Session<F>,
    state: &[NodeStateArgs],
) -> Result<(), BindingError> {
    let names: Vec<(String, String)> = state
        .iter()
        .map(|s| (format!("state.{}.h", s.node), format!("state.{}.c", s.node)))
        .collect();
    let shapes: Vec<(Vec<usize>, Option<Vec<usize>>)> = state
        .iter()
        .map(|s| (dims(&s.h.shape), s.c.as_ref().map(|c| dims(&c.shape))))
        .collect();
    let given = state
        .iter()
        .zip(&names)
        .zip(&shapes)
        .map(|((s, (h_name, c_name)), (h_shape, c_shape))| {
            Ok(NamedState {
                node: &s.node,
                h: state_values(h_name, h_shape, &s.h)?,
                c: match (&s.c, c_shape) {
                    (Some(c), Some(shape)) => Some(state_values(c_name, shape, c)?),
                    _ => None,
                },
            })
        })
        .collect::<Result<Vec<_>, BindingError>>()?;
    let next = model_state(&session.trainer.model, &given, session.stream.state())?;
    session.stream.set_state(next);
    Ok(())
}
