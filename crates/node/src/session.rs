//! A model's session (trainer and streaming state of one dtype) and the lease
//! that serialises the operations on it.
//!
//! The session lives behind `Arc<Mutex<..>>` so that a libuv worker can train
//! it while JS keeps running. Every call first takes the model's *lease*: one
//! operation at a time, and a call that finds the lease taken is refused with
//! `ODYSSEY_STATE` instead of waiting, so the JS thread never blocks on a
//! worker. The async methods take the lease on the JS thread when they are
//! called and give it back when their promise settles.
//!
//! A fit *lends* its lease while it waits for its callbacks (a callback
//! window, see `tasks::ProgressSender`): its worker has let go of the session,
//! and one operation at a time may borrow the model until the window closes.
//! (That only the callbacks borrow it is the facade's part: the native side
//! cannot tell which JS code calls.)

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

    fn dtype(&self) -> Dtype {
        self.specs().0.dtype
    }
}

/// The session of one dtype (the dtype of a model never changes).
pub(crate) trait SessionFloat: ModelFloat {
    fn session(any: &mut AnySession) -> Option<&mut Session<Self>>;
}

impl SessionFloat for f32 {
    fn session(any: &mut AnySession) -> Option<&mut Session<f32>> {
        match any {
            AnySession::F32(s) => Some(s),
            AnySession::F64(_) => None,
        }
    }
}

impl SessionFloat for f64 {
    fn session(any: &mut AnySession) -> Option<&mut Session<f64>> {
        match any {
            AnySession::F64(s) => Some(s),
            AnySession::F32(_) => None,
        }
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
    running: Mutex<Running>,
}

/// Who holds the lease.
#[derive(Default)]
struct Running {
    /// The operation holding the lease, if any.
    operation: Option<&'static str>,
    /// While a fit waits for its callbacks: `Some(borrower)`, the operation borrowing the lease if any.
    window: Option<Option<&'static str>>,
}

impl Shared {
    pub(crate) fn new(session: AnySession) -> Arc<Self> {
        Arc::new(Shared {
            session: Mutex::new(Some(session)),
            running: Mutex::new(Running::default()),
        })
    }

    pub(crate) fn is_disposed(&self) -> bool {
        lock(&self.session).is_none()
    }
}

/// The right to use a model for one operation; released on drop.
pub(crate) struct Lease {
    shared: Arc<Shared>,
    /// Borrowed from a fit's callback window rather than taken.
    pub(crate) borrowed: bool,
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
        let borrowed = match (running.operation, running.window) {
            (None, _) => false,
            (Some(_), Some(None)) => true,
            (Some(other), Some(Some(borrower))) => {
                return Err(BindingError::State(format!(
                    "{borrower} is already running in a callback of {other}; {operation} has to wait until it settles"
                )))
            }
            (Some(other), None) => {
                return Err(BindingError::State(format!(
                    "{other} is already running on this model; {operation} has to wait until it settles \
                     (cancel a fit with its signal; fit's callbacks may use the model while fit waits for them)"
                )))
            }
        };
        if lock(&shared.session).is_none() {
            return Err(disposed());
        }
        match borrowed {
            true => running.window = Some(Some(operation)),
            false => running.operation = Some(operation),
        }
        Ok(Lease {
            shared: shared.clone(),
            borrowed,
        })
    }

    /// Runs `body` on the session's trainer, of the dtype the caller knows the model has.
    pub fn with_trainer<F: SessionFloat, T>(
        &self,
        body: impl FnOnce(&mut Trainer<F>) -> Result<T, BindingError>,
    ) -> Result<T, BindingError> {
        self.with_session(|s| {
            let session = F::session(s).expect("a model keeps its dtype");
            body(&mut session.trainer)
        })
    }

    pub fn dtype(&self) -> Result<Dtype, BindingError> {
        self.with_session(|s| Ok(s.dtype()))
    }

    /// Lends the lease to one operation at a time until [`Lease::close_window`] (a fit waiting for its callbacks).
    pub fn open_window(&self) {
        lock(&self.shared.running).window = Some(None);
    }

    /// Ends the loan; an operation still borrowing goes on (the session's lock orders it with the fit).
    pub fn close_window(&self) {
        lock(&self.shared.running).window = None;
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
        let mut running = lock(&self.shared.running);
        match (self.borrowed, running.window) {
            (true, Some(_)) => running.window = Some(None),
            (true, None) => {}
            (false, _) => *running = Running::default(),
        }
    }
}

fn disposed() -> BindingError {
    BindingError::State("this model has been disposed; create or load another one".to_owned())
}
