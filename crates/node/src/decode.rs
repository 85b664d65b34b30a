//! `decode` on a libuv worker: the options and the encoder inputs are copied on
//! the JS thread, the core decodes (greedy or beam search) on the worker.

use std::sync::atomic::AtomicBool;

use napi::bindgen_prelude::{Float64Array, Uint32Array};
use napi::{Env, Task};
use napi_derive::napi;
use odyssey_core::model::decode::{DecodeOptions, Decoded, Decoder};

use crate::data::{into_values, ModelFloat, OwnedInput};
use crate::error::{BindingError, ErrorCode};
use crate::session::{each_session, Session};
use crate::tasks::{settle, ReadPass};

/// How to decode (see the core's `DecodeOptions`).
#[napi(object, object_to_js = false)]
pub struct DecodeArgs {
    pub decoder_input: String,
    pub start: u32,
    pub stop: u32,
    pub max_steps: u32,
    pub beam_width: u32,
    pub length_penalty: f64,
}

impl From<&DecodeArgs> for DecodeOptions {
    fn from(args: &DecodeArgs) -> Self {
        DecodeOptions {
            decoder_input: args.decoder_input.clone(),
            start: args.start,
            stop: args.stop,
            max_steps: args.max_steps as usize,
            beam_width: args.beam_width as usize,
            length_penalty: args.length_penalty,
        }
    }
}

/// One decoded sequence per example (without start and stop) and its log-probability.
#[napi(object)]
pub struct DecodeOutput {
    pub ids: Vec<Uint32Array>,
    pub log_probs: Float64Array,
}

/// The encoder inputs and how to decode.
pub struct DecodeTask(pub(crate) ReadPass<(Vec<OwnedInput>, DecodeOptions)>);

fn run_decode<F: ModelFloat>(
    session: &Session<F>,
    inputs: Vec<OwnedInput>,
    options: &DecodeOptions,
    cancel: &AtomicBool,
) -> Result<Decoded, BindingError> {
    let decoder = Decoder::new(&session.trainer.model, options)?;
    let values = into_values(inputs, &decoder.encoder_inputs())?;
    Ok(decoder.decode(values, cancel)?)
}

#[napi]
impl Task for DecodeTask {
    type Output = napi::Result<Decoded, ErrorCode>;
    type JsValue = DecodeOutput;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.0.compute(|s, (inputs, options), cancel| {
            each_session!(s, s => run_decode(s, inputs, &options, cancel))
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<DecodeOutput> {
        settle(&env, output, |d| DecodeOutput {
            ids: d.ids.into_iter().map(Uint32Array::new).collect(),
            log_probs: Float64Array::new(d.log_probs),
        })
    }

    fn finally(mut self, _: Env) -> napi::Result<()> {
        self.0.release();
        Ok(())
    }
}
