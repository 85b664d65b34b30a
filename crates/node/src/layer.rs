//! `NativeRecurrent`: one LSTM, GRU or simple-RNN layer of one dtype, with the cache
//! of its last forward pass, behind a JS class. Every method body runs inside
//! [`guard`], so errors and panics surface as JS exceptions.

use std::marker::PhantomData;

use napi::bindgen_prelude::{Either, Float32Array, Float64Array, Uint32Array};
use napi_derive::napi;
use ndarray::{ArrayView2, ArrayViewD};
use odyssey_core::layers::recurrent::Recurrent;
use odyssey_core::layers::{
    BackwardOptions, Gru, GruConfig, Lstm, LstmConfig, LstmVariant, RnnActivation, RnnConfig,
    SequenceBatch, SimpleRnn,
};
use odyssey_core::params::{assign_named, NamedValues};
use odyssey_core::Error;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::convert::{dims, js_shape, to_js, view2, view3, Floats, JsFloat, JsFloats};
use crate::error::{guard, BindingError, ErrorCode};

/// PyTorch names a single-layer module's tensors `weight_ih_l0`, ...; the core's
/// `ParamSet` names have no layer suffix.
const LAYER_SUFFIX: &str = "_l0";

// The objects below spell out `Either<Float32Array, Float64Array>` (that is,
// `JsFloats`) because the .d.ts generator does not resolve type aliases.

#[napi(object, object_to_js = false)]
pub struct LstmInit {
    pub input_size: u32,
    pub hidden_size: u32,
    /// `'vanilla' | 'NIG' | 'NFG' | 'NOG' | 'NIAF' | 'NOAF' | 'NP' | 'CIFG' | 'FGR'`
    pub variant: String,
    pub peepholes: bool,
    /// `'float32' | 'float64'`
    pub dtype: String,
    pub seed: i64,
    pub forget_bias: f64,
}

/// Sizes, dtype and seed of a layer with no options of its own (the GRU).
#[napi(object, object_to_js = false)]
pub struct GruInit {
    pub input_size: u32,
    pub hidden_size: u32,
    /// `'float32' | 'float64'`
    pub dtype: String,
    pub seed: i64,
}

#[napi(object, object_to_js = false)]
pub struct SimpleRnnInit {
    pub input_size: u32,
    pub hidden_size: u32,
    /// `'tanh' | 'relu'`
    pub activation: String,
    /// `'float32' | 'float64'`
    pub dtype: String,
    pub seed: i64,
}

/// A padded batch; every array in the layer's dtype.
#[napi(object, object_to_js = false)]
pub struct SequenceArgs {
    /// `[batch, time, inputSize]`, flat.
    pub x: Either<Float32Array, Float64Array>,
    /// `[batch, time, inputSize]`
    pub shape: Vec<u32>,
    /// `[batch]`, each in `1..=time`.
    pub lengths: Option<Uint32Array>,
    /// `[batch, hiddenSize]`
    pub h0: Option<Either<Float32Array, Float64Array>>,
    /// `[batch, hiddenSize]` (LSTM only)
    pub c0: Option<Either<Float32Array, Float64Array>>,
}

#[napi(object, object_from_js = false)]
pub struct ForwardOutput {
    /// `[batch, time, hiddenSize]`
    #[napi(ts_type = "Float32Array | Float64Array")]
    pub y: Floats,
    /// `[batch, hiddenSize]`
    #[napi(ts_type = "Float32Array | Float64Array")]
    pub h_n: Floats,
    /// `[batch, hiddenSize]` (LSTM only)
    #[napi(ts_type = "Float32Array | Float64Array")]
    pub c_n: Option<Floats>,
}

#[napi(object, object_to_js = false)]
pub struct BackwardArgs {
    /// `[batch, time, hiddenSize]`
    pub dy: Either<Float32Array, Float64Array>,
    /// `[batch, hiddenSize]`
    pub dh_n: Option<Either<Float32Array, Float64Array>>,
    /// `[batch, hiddenSize]` (LSTM only)
    pub dc_n: Option<Either<Float32Array, Float64Array>>,
    pub recurrent_clip: Option<f64>,
}

/// A tensor under its PyTorch name (`weight_ih_l0`, ...).
#[napi(object, object_to_js = false)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<u32>,
    pub data: Either<Float32Array, Float64Array>,
}

/// A [`NamedTensor`] on its way to JS.
#[napi(object, object_from_js = false)]
pub struct NamedTensorOutput {
    pub name: String,
    pub shape: Vec<u32>,
    #[napi(ts_type = "Float32Array | Float64Array")]
    pub data: Floats,
}

#[napi(object, object_from_js = false)]
pub struct BackwardOutput {
    /// `[batch, time, inputSize]`
    #[napi(ts_type = "Float32Array | Float64Array")]
    pub dx: Floats,
    /// `[batch, hiddenSize]`
    #[napi(ts_type = "Float32Array | Float64Array")]
    pub dh0: Floats,
    /// `[batch, hiddenSize]` (LSTM only)
    #[napi(ts_type = "Float32Array | Float64Array")]
    pub dc0: Option<Floats>,
    /// Parameter gradients, named and shaped like the parameters.
    pub grads: Vec<NamedTensorOutput>,
    /// `[time]`: ‖∂J/∂c(k)‖ (LSTM) or ‖∂J/∂h(k)‖ (simple RNN).
    #[napi(ts_type = "Float64Array")]
    pub step_grad_norms: Floats,
}

/// Applies the same generic code to whichever layer a `NativeRecurrent` holds.
macro_rules! each_layer {
    ($inner:expr, $layer:ident => $body:expr) => {
        match $inner {
            AnyLayer::LstmF32($layer) => $body,
            AnyLayer::LstmF64($layer) => $body,
            AnyLayer::RnnF32($layer) => $body,
            AnyLayer::RnnF64($layer) => $body,
            AnyLayer::GruF32($layer) => $body,
            AnyLayer::GruF64($layer) => $body,
        }
    };
}

/// One recurrent layer of one dtype.
#[napi]
pub struct NativeRecurrent {
    /// `None` once disposed.
    inner: Option<AnyLayer>,
}

#[napi]
impl NativeRecurrent {
    #[napi(factory)]
    pub fn lstm(options: LstmInit) -> napi::Result<Self, ErrorCode> {
        guard(|| {
            Ok(NativeRecurrent {
                inner: Some(AnyLayer::lstm(&options)?),
            })
        })
    }

    #[napi(factory)]
    pub fn simple_rnn(options: SimpleRnnInit) -> napi::Result<Self, ErrorCode> {
        guard(|| {
            Ok(NativeRecurrent {
                inner: Some(AnyLayer::simple_rnn(&options)?),
            })
        })
    }

    #[napi(factory)]
    pub fn gru(options: GruInit) -> napi::Result<Self, ErrorCode> {
        guard(|| {
            Ok(NativeRecurrent {
                inner: Some(AnyLayer::gru(&options)?),
            })
        })
    }

    /// Forward through time; keeps what `backward` needs.
    #[napi]
    pub fn forward(&mut self, args: SequenceArgs) -> napi::Result<ForwardOutput, ErrorCode> {
        guard(|| each_layer!(self.layer_mut()?, layer => layer.forward(&args)))
    }

    /// Backward through the most recent forward pass.
    #[napi]
    pub fn backward(&self, args: BackwardArgs) -> napi::Result<BackwardOutput, ErrorCode> {
        guard(|| each_layer!(self.layer()?, layer => layer.backward(&args)))
    }

    /// Copies of the parameters under PyTorch names.
    #[napi]
    pub fn get_weights(&self) -> napi::Result<Vec<NamedTensorOutput>, ErrorCode> {
        guard(|| Ok(each_layer!(self.layer()?, layer => layer.weights())))
    }

    /// Replaces the named parameters (all or some); nothing changes unless every
    /// entry is valid. Drops the forward cache, which the old weights produced.
    #[napi]
    pub fn set_weights(&mut self, weights: Vec<NamedTensor>) -> napi::Result<(), ErrorCode> {
        guard(|| each_layer!(self.layer_mut()?, layer => layer.set_weights(&weights)))
    }

    /// Frees the parameters and the forward cache now rather than when JS collects the
    /// object. Every later call fails with `ODYSSEY_STATE`; disposing twice is fine.
    #[napi]
    pub fn dispose(&mut self) -> napi::Result<(), ErrorCode> {
        guard(|| {
            self.inner = None;
            Ok(())
        })
    }
}

impl NativeRecurrent {
    fn layer(&self) -> Result<&AnyLayer, BindingError> {
        self.inner.as_ref().ok_or_else(disposed)
    }

    fn layer_mut(&mut self) -> Result<&mut AnyLayer, BindingError> {
        self.inner.as_mut().ok_or_else(disposed)
    }
}

fn disposed() -> BindingError {
    BindingError::State("this layer has been disposed; create another one".to_owned())
}

enum AnyLayer {
    LstmF32(Stateful<f32, Lstm<f32>>),
    LstmF64(Stateful<f64, Lstm<f64>>),
    RnnF32(Stateful<f32, SimpleRnn<f32>>),
    RnnF64(Stateful<f64, SimpleRnn<f64>>),
    GruF32(Stateful<f32, Gru<f32>>),
    GruF64(Stateful<f64, Gru<f64>>),
}

impl AnyLayer {
    fn lstm(options: &LstmInit) -> Result<Self, BindingError> {
        let config = LstmConfig {
            input_size: options.input_size as usize,
            hidden_size: options.hidden_size as usize,
            variant: options.variant.parse::<LstmVariant>()?,
            peepholes: options.peepholes,
        };
        let rng = &mut seeded_rng(options.seed)?;
        let forget_bias = options.forget_bias;
        Ok(match Dtype::parse(&options.dtype)? {
            Dtype::F32 => {
                AnyLayer::LstmF32(Stateful::new(Lstm::new(config, forget_bias as f32, rng)?))
            }
            Dtype::F64 => AnyLayer::LstmF64(Stateful::new(Lstm::new(config, forget_bias, rng)?)),
        })
    }

    fn simple_rnn(options: &SimpleRnnInit) -> Result<Self, BindingError> {
        let config = RnnConfig {
            input_size: options.input_size as usize,
            hidden_size: options.hidden_size as usize,
            activation: options.activation.parse::<RnnActivation>()?,
        };
        let rng = &mut seeded_rng(options.seed)?;
        Ok(match Dtype::parse(&options.dtype)? {
            Dtype::F32 => AnyLayer::RnnF32(Stateful::new(SimpleRnn::new(config, rng)?)),
            Dtype::F64 => AnyLayer::RnnF64(Stateful::new(SimpleRnn::new(config, rng)?)),
        })
    }

    fn gru(options: &GruInit) -> Result<Self, BindingError> {
        let config = GruConfig {
            input_size: options.input_size as usize,
            hidden_size: options.hidden_size as usize,
        };
        let rng = &mut seeded_rng(options.seed)?;
        Ok(match Dtype::parse(&options.dtype)? {
            Dtype::F32 => AnyLayer::GruF32(Stateful::new(Gru::new(config, rng)?)),
            Dtype::F64 => AnyLayer::GruF64(Stateful::new(Gru::new(config, rng)?)),
        })
    }
}

enum Dtype {
    F32,
    F64,
}

impl Dtype {
    fn parse(name: &str) -> Result<Self, BindingError> {
        match name {
            "float32" => Ok(Dtype::F32),
            "float64" => Ok(Dtype::F64),
            other => Err(invalid(
                "dtype",
                format!("expected 'float32' or 'float64', got '{other}'"),
            )),
        }
    }
}

fn seeded_rng(seed: i64) -> Result<ChaCha8Rng, BindingError> {
    let seed =
        u64::try_from(seed).map_err(|_| invalid("seed", format!("must be >= 0, got {seed}")))?;
    Ok(ChaCha8Rng::seed_from_u64(seed))
}

fn invalid(name: &str, reason: String) -> BindingError {
    Error::invalid(name, reason).into()
}

/// A core layer and the cache of its last successful forward pass.
struct Stateful<F: JsFloat, L: Recurrent<F>> {
    layer: L,
    /// The cache and the `(batch, time)` it was made for; `None` before the
    /// first forward pass and after `set_weights`.
    last_forward: Option<(L::Cache, (usize, usize))>,
    _dtype: PhantomData<F>,
}

impl<F: JsFloat, L: Recurrent<F>> Stateful<F, L> {
    fn new(layer: L) -> Self {
        Stateful {
            layer,
            last_forward: None,
            _dtype: PhantomData,
        }
    }

    fn forward(&mut self, args: &SequenceArgs) -> Result<ForwardOutput, BindingError> {
        // A failed call must not leave the previous batch's cache for backward.
        self.last_forward = None;
        let (batch, time, features) = match dims(&args.shape)[..] {
            [batch, time, features] => (batch, time, features),
            _ => {
                return Err(
                    Error::shape("shape", "[batch, time, inputSize]", &dims(&args.shape)).into(),
                )
            }
        };
        let hidden = self.layer.hidden_size();
        let lengths: Option<Vec<usize>> = args
            .lengths
            .as_ref()
            .map(|l| l.iter().map(|&v| v as usize).collect());
        let sequences = SequenceBatch {
            x: view3(&args.x, "x", (batch, time, features))?,
            lengths: lengths.as_deref(),
            h0: optional_state(args.h0.as_ref(), "h0", (batch, hidden))?,
            c0: self.cell_argument(args.c0.as_ref(), "c0", (batch, hidden))?,
        };
        let (output, cache) = self.layer.forward_sequence(&sequences)?;
        self.last_forward = Some((cache, (batch, time)));
        Ok(ForwardOutput {
            y: to_js(&output.y),
            h_n: to_js(&output.h_n),
            c_n: output.c_n.as_ref().map(to_js),
        })
    }

    fn backward(&self, args: &BackwardArgs) -> Result<BackwardOutput, BindingError> {
        let (cache, (batch, time)) = self.last_forward.as_ref().ok_or_else(|| {
            BindingError::State(
                "backward: no forward pass to go back through (call forward first)".to_owned(),
            )
        })?;
        let hidden = self.layer.hidden_size();
        let dy = view3(&args.dy, "dy", (*batch, *time, hidden))?;
        let dh_n = optional_state(args.dh_n.as_ref(), "dhN", (*batch, hidden))?;
        let dc_n = self.cell_argument(args.dc_n.as_ref(), "dcN", (*batch, hidden))?;
        let options = BackwardOptions {
            recurrent_clip: args.recurrent_clip.map(F::from_f64_lossy),
        };
        let grads = self
            .layer
            .backward_sequence(cache, dy, dh_n, dc_n, &options)?;
        let names = self
            .layer
            .parameters()
            .tensors()
            .into_iter()
            .map(|(name, _)| name);
        Ok(BackwardOutput {
            dx: to_js(&grads.dx),
            dh0: to_js(&grads.dh0),
            dc0: grads.dc0.as_ref().map(to_js),
            grads: names
                .zip(&grads.params)
                .map(|(name, g)| named_tensor(name, g.view()))
                .collect(),
            step_grad_norms: Floats::F64(
                grads
                    .step_grad_norms
                    .iter()
                    .map(|n| n.to_f64_lossy())
                    .collect(),
            ),
        })
    }

    fn weights(&self) -> Vec<NamedTensorOutput> {
        let tensors = self.layer.parameters().tensors();
        tensors
            .into_iter()
            .map(|(name, t)| named_tensor(name, t))
            .collect()
    }

    fn set_weights(&mut self, weights: &[NamedTensor]) -> Result<(), BindingError> {
        let shapes = weight_shapes(weights);
        let sources = named_values::<F>(weights, &shapes)?;
        let targets = self
            .layer
            .parameters_mut()
            .tensors_mut()
            .into_iter()
            .map(|(name, t)| (format!("{name}{LAYER_SUFFIX}"), t))
            .collect();
        assign_named(targets, &sources, "this layer")?;
        self.last_forward = None;
        Ok(())
    }

    /// A cell-state argument: a view for the LSTM, an error for a layer without a cell.
    fn cell_argument<'a>(
        &self,
        array: Option<&'a JsFloats>,
        name: &str,
        dims: (usize, usize),
    ) -> Result<Option<ArrayView2<'a, F>>, BindingError> {
        if array.is_some() && !self.layer.has_cell() {
            return Err(invalid(name, "this layer has no cell state".to_owned()));
        }
        optional_state(array, name, dims)
    }
}

fn optional_state<'a, F: JsFloat>(
    array: Option<&'a JsFloats>,
    name: &str,
    dims: (usize, usize),
) -> Result<Option<ArrayView2<'a, F>>, BindingError> {
    array.map(|a| view2(a, name, dims)).transpose()
}

fn named_tensor<F: JsFloat>(name: &str, tensor: ArrayViewD<'_, F>) -> NamedTensorOutput {
    NamedTensorOutput {
        name: format!("{name}{LAYER_SUFFIX}"),
        shape: js_shape(tensor.shape()),
        data: to_js(&tensor),
    }
}

/// The declared shape of every weight, for [`named_values`] to borrow.
pub(crate) fn weight_shapes(weights: &[NamedTensor]) -> Vec<Vec<usize>> {
    weights.iter().map(|w| dims(&w.shape)).collect()
}

/// Weights from JS as the core's named values; only their dtype is checked here,
/// everything else by [`assign_named`].
pub(crate) fn named_values<'a, F: JsFloat>(
    weights: &'a [NamedTensor],
    shapes: &'a [Vec<usize>],
) -> Result<Vec<NamedValues<'a, F>>, BindingError> {
    weights
        .iter()
        .zip(shapes)
        .map(|(w, shape)| {
            Ok(NamedValues {
                name: &w.name,
                shape,
                data: F::elements(&w.data, &format!("{}.data", w.name))?,
            })
        })
        .collect()
}
