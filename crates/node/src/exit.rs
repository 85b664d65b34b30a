//! Work on libuv workers that the process's exit must be able to stop.
//!
//! Node ends a process (`process.exit()`, an uncaught exception, an unhandled
//! rejection) by joining libuv's worker threads: a `fit` still running there
//! would keep the process alive to its last epoch, and a worker waiting for the
//! JS thread (which will never run JS again) would keep it alive forever. So
//! every async task registers a [`Job`] while it runs, and `stop_work`, called
//! from the facade's `process.on('exit')` listener, raises every cancel flag of
//! the environment and releases every wait for JS.
//!
//! Why not an env cleanup hook (`napi_add_env_cleanup_hook`): Node runs none on
//! that path, and where it runs them (a worker thread's teardown) it first waits
//! for the environment's pending async work, so a hook sees only finished work.
//! Measured on Node 20: `process.exit()` 0.5 s into a 50-epoch fit with only the
//! hook still ran after 20 s; `worker.terminate()` waited the whole fit (31 s)
//! with the hook as without it.
//!
//! Environments are told apart by the thread that runs their JS: a job belongs
//! to the thread that started it, and `stop_work` stops only that thread's jobs
//! (`process.exit()` in a worker thread must not cancel the main thread's fit).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::{self, ThreadId};
use std::time::Duration;

/// How often a worker waiting for JS looks whether its environment is stopping:
/// a receiver blocked in `recv` cannot be woken from another thread, so it waits in slices.
const WAIT_SLICE: Duration = Duration::from_millis(20);

/// One async task's stop switches, shared by the task (on the worker) and the registry.
pub(crate) struct Job {
    owner: ThreadId,
    /// The flag the computation reads before each batch (a fit's `CancelToken`).
    cancel: Arc<AtomicBool>,
    /// Set once the environment stops: nothing on the JS thread will run any more.
    stopping: AtomicBool,
}

/// Every job still running, of every environment (weak: a finished task drops its job).
static JOBS: Mutex<Vec<Weak<Job>>> = Mutex::new(Vec::new());

impl Job {
    /// Registers a job of the calling JS thread's environment; it stays registered while the `Arc` lives.
    pub(crate) fn start(cancel: Arc<AtomicBool>) -> Arc<Job> {
        let job = Arc::new(Job {
            owner: thread::current().id(),
            cancel,
            stopping: AtomicBool::new(false),
        });
        let mut jobs = JOBS.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.retain(|j| j.strong_count() > 0);
        jobs.push(Arc::downgrade(&job));
        job
    }

    /// A job with a flag of its own (work that no caller cancels: only exit does).
    pub(crate) fn start_uncancellable() -> Arc<Job> {
        Job::start(Arc::new(AtomicBool::new(false)))
    }

    pub(crate) fn cancel_flag(&self) -> &AtomicBool {
        &self.cancel
    }

    /// Waits for what the JS thread sends on `reply`; `None` when the environment
    /// stops first (or the sender is gone), since JS will then never answer.
    pub(crate) fn wait_for_js<T>(&self, reply: &Receiver<T>) -> Option<T> {
        loop {
            match reply.recv_timeout(WAIT_SLICE) {
                Ok(value) => return Some(value),
                Err(RecvTimeoutError::Timeout) if !self.stopping.load(Ordering::Acquire) => {}
                Err(_) => return None,
            }
        }
    }
}

/// Stops the calling thread's environment's native work (see `crate::stop_work`): every
/// running task's cancel flag is raised and no worker waits for JS any more.
pub(crate) fn stop_jobs_of_this_thread() {
    let owner = thread::current().id();
    let jobs = JOBS.lock().unwrap_or_else(PoisonError::into_inner);
    for job in jobs.iter().filter_map(Weak::upgrade) {
        if job.owner == owner {
            job.cancel.store(true, Ordering::Relaxed);
            job.stopping.store(true, Ordering::Release);
        }
    }
}
