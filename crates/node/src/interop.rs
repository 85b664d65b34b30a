//! PyTorch interop of `NativeModel`: one LSTM or RNN node's weights read from
//! or written to a `state_dict()` safetensors file, on a libuv worker.
//!
//! The file work is `odyssey_core::model::torch_interop`'s; this only takes the
//! model's lease on the JS thread (one operation at a time, as every other
//! method) and gives it back when the promise settles.

use std::path::PathBuf;

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;
use odyssey_core::model::torch_interop::{export_state_dict, import_state_dict};

use crate::error::{guard, BindingError, ErrorCode};
use crate::model::NativeModel;
use crate::session::{each_session, Lease};
use crate::tasks::{on_worker, settle};

/// Which way the tensors go.
#[derive(Clone, Copy)]
enum Direction {
    /// File → node (the node's tensors are replaced only if the whole file fits).
    Import,
    /// Node → file (written atomically).
    Export,
}

pub struct StateDictTask {
    lease: Option<Lease>,
    direction: Direction,
    node: String,
    path: PathBuf,
}

#[napi]
impl Task for StateDictTask {
    type Output = napi::Result<(), ErrorCode>;
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let (node, path) = (self.node.as_str(), self.path.as_path());
        Ok(on_worker(&self.lease, |s| match self.direction {
            Direction::Import => {
                each_session!(s, s => Ok(import_state_dict(&mut s.trainer.model, node, path)?))
            }
            Direction::Export => {
                each_session!(s, s => Ok(export_state_dict(&s.trainer.model, node, path)?))
            }
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<()> {
        settle(&env, output, |()| ())
    }

    fn finally(mut self, _: Env) -> napi::Result<()> {
        self.lease.take();
        Ok(())
    }
}

impl StateDictTask {
    /// Takes `model`'s lease now, on the JS thread, as every operation does.
    fn new(
        model: &NativeModel,
        operation: &'static str,
        direction: Direction,
        node: String,
        path: String,
    ) -> Result<AsyncTask<Self>, BindingError> {
        Ok(AsyncTask::new(StateDictTask {
            lease: Some(model.lease(operation)?),
            direction,
            node,
            path: PathBuf::from(path),
        }))
    }
}

#[napi]
impl NativeModel {
    /// Loads a PyTorch `nn.LSTM` / `nn.RNN` state dict (safetensors) into the recurrent node
    /// `node`; nothing changes unless every key, shape and dtype fits and every value is finite.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn import_state_dict(
        &self,
        node: String,
        path: String,
    ) -> napi::Result<AsyncTask<StateDictTask>, ErrorCode> {
        guard(|| StateDictTask::new(self, "importStateDict", Direction::Import, node, path))
    }

    /// Writes the recurrent node `node` as a PyTorch state dict (safetensors), atomically.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn export_state_dict(
        &self,
        node: String,
        path: String,
    ) -> napi::Result<AsyncTask<StateDictTask>, ErrorCode> {
        guard(|| StateDictTask::new(self, "exportStateDict", Direction::Export, node, path))
    }
}
