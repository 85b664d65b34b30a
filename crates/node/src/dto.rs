//! The plain JS objects `NativeModel`'s methods take and return.

use napi::bindgen_prelude::{Either, Float32Array, Float64Array};
use napi_derive::napi;
use odyssey_core::model::{GraphShapes, ValueKind};

use crate::convert::Floats;

/// `fit` options; omitted ones continue the model's training position (see `FitRequest`).
#[napi(object, object_to_js = false)]
pub struct FitArgs {
    /// Train until this many epochs are done in total (epochs `initialEpoch..epochs` run).
    pub epochs: u32,
    pub initial_epoch: Option<u32>,
    /// Continue exactly where the model stopped (refuses options that contradict it).
    pub resume: Option<bool>,
    pub batch_size: Option<u32>,
    pub shuffle: Option<bool>,
    /// Seed of the per-epoch shuffle (a safe integer >= 0); default: the model's seed.
    pub seed: Option<i64>,
    pub tbptt: Option<TbpttArgs>,
    pub stop_on_non_finite: Option<bool>,
    /// Wait for the callbacks after every batch / epoch (their events carry `window: true`).
    pub await_batch_end: Option<bool>,
    pub await_epoch_end: Option<bool>,
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
    #[napi(ts_type = "Float32Array | Float64Array")]
    pub data: Floats,
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
    #[napi(ts_type = "Float64Array")]
    pub norms: Floats,
}

/// A state tensor from JS, flat and row-major.
#[napi(object, object_to_js = false)]
pub struct StateTensorArgs {
    pub data: Either<Float32Array, Float64Array>,
    pub shape: Vec<u32>,
}

/// One recurrent node's state from JS: h (and c for an LSTM), each `[entries, batch, H]`.
#[napi(object, object_to_js = false)]
pub struct NodeStateArgs {
    pub node: String,
    pub h: StateTensorArgs,
    pub c: Option<StateTensorArgs>,
}

/// One recurrent node's state on its way to JS: h (and c for an LSTM), each `[entries, batch, H]`.
#[napi(object, object_from_js = false)]
pub struct NodeStateOutput {
    pub node: String,
    pub h: TensorOutput,
    pub c: Option<TensorOutput>,
}

/// One value of a described graph: a model input or a node's output.
#[napi(object, object_from_js = false)]
pub struct ValueDescription {
    pub name: String,
    /// `'sequence'` (`[n, time, width]`), `'tokens'` (`[n, time]`, width 0) or `'vector'` (`[n, width]`).
    pub kind: String,
    pub width: f64,
    /// The model input whose time axis (and lengths) a sequence has; absent for vectors.
    pub time: Option<String>,
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

pub(crate) fn graph_description(shapes: &GraphShapes) -> GraphDescription {
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
                time: shape.time.map(|slot| shapes.values[slot].0.clone()),
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
