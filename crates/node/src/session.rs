//! A model's session (trainer and streaming state of one dtype) and the lease
//! that serialises the operations on it.
//!
//! The session lives behind `Arc<Mutex<..>>` so that a libuv worker can train
//! it while JS keeps running. Every call first takes the model's *lease*: one
//! operation at a time, and a call that finds the lease taken is refused with
//! `ODYSSEY_STATE` instead of waiting, so the JS thread never blocks on a
//! worker. The async methods take the lease on the JS thread when they are
//! called and give it back when their promise settles.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use odyssey_core::model::checkpoint::LoadedTrainer;
use odyssey_core::model::spec::Dtype;
use odyssey_core::model::{Model, ModelSpec, Stream, Trainer, TrainingSpec};

use crate::data::ModelFloat;
use crate::error::BindingError;

/// Applies the same generic code to whichever dtype a session has.
macro_rules! each_session {
    ($session:expr, $s:ident => $body:expr) => {
        match $session {
            $crate::session::AnySession::F32($s) => $body,
            $crate::session::AnySession::F64($s) => $body,
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
    pub(crate) fn new(model: ModelSpec, training: TrainingSpec) -> Result<Self, BindingError> {
        Ok(match model.dtype {
            Dtype::Float32 => {
                AnySession::F32(Session::new(Trainer::new(Model::new(model)?, training)?))
            }
            Dtype::Float64 => {
                AnySession::F64(Session::new(Trainer::new(Model::new(model)?, training)?))
            }
        })
    }

    pub(crate) fn specs(&self) -> (&ModelSpec, &TrainingSpec) {
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
pub(crate) struct Shared {
    /// `None` once disposed.
    session: Mutex<Option<AnySession>>,
    /// The operation holding the lease, if any.
    running: Mutex<Option<&'static str>>,
}

impl Shared {
    pub(crate) fn new(session: AnySession) -> Arc<Self> {
        Arc::new(Shared {
            session: Mutex::new(Some(session)),
            running: Mutex::new(None),
        })
    }

    pub(crate) fn is_disposed(&self) -> bool {
        lock(&self.session).is_none()
    }
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
    pub(crate) fn take(
        shared: &Arc<Shared>,
        operation: &'static str,
    ) -> Result<Self, BindingError> {
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

    /// Drops the session: every later operation fails with `ODYSSEY_STATE`.
    pub(crate) fn dispose(&self) {
        *lock(&self.shared.session) = None;
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
