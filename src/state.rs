//! What the supervisor knows, shared read-only with the endpoint and the metrics.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::health;
use crate::metrics::sample::Sample;
use crate::supervise::status::Exit;
use crate::supervise::summary::RunEnd;

/// Where the worker's life stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Running,
    BackingOff,
    Stopping,
    Exited,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::BackingOff => "backing-off",
            Phase::Stopping => "stopping",
            Phase::Exited => "exited",
        }
    }
}

/// A snapshot of the supervisor's state.
#[derive(Debug, Clone)]
pub struct State {
    pub phase: Phase,
    pub worker_pid: Option<i32>,
    pub restarts: u64,
    pub last_exit: Option<Exit>,
    pub orphans_reaped: u64,
    /// `None` when no health check is configured.
    pub health: Option<health::Report>,
    /// Whether there is a worker at all (`false` in sidecar mode).
    pub has_worker: bool,
    /// The last metrics sample.
    pub last_sample: Option<Sample>,
    /// Samples published to CloudWatch, and dropped (unreachable or rejected).
    pub metrics_published: u64,
    pub metrics_dropped: u64,
    /// The ECS task's ARN, once the metadata endpoint said it.
    pub task_arn: Option<String>,
    /// How the run ended, once it has (the final flush publishes it).
    pub run_end: Option<RunEnd>,
}

/// The supervisor writes, everybody else reads.
#[derive(Debug)]
pub struct Shared {
    started: Instant,
    state: Mutex<State>,
    /// The worker's generation: bumped at each restart, so the health checker starts
    /// a new start period (an explicit message, not a polled counter).
    restarted: tokio::sync::watch::Sender<u64>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            started: Instant::now(),
            restarted: tokio::sync::watch::Sender::new(0),
            state: Mutex::new(State {
                phase: Phase::Starting,
                worker_pid: None,
                restarts: 0,
                last_exit: None,
                orphans_reaped: 0,
                health: None,
                has_worker: true,
                last_sample: None,
                metrics_published: 0,
                metrics_dropped: 0,
                task_arn: None,
                run_end: None,
            }),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn snapshot(&self) -> State {
        self.lock().clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
    }

    /// A new worker was started in place of the last one.
    pub fn worker_restarted(&self) {
        let restarts = {
            let mut st = self.lock();
            st.restarts += 1;
            st.restarts
        };
        self.restarted.send_replace(restarts);
    }

    /// Learn of restarts (`has_changed` after each one).
    pub fn restarts(&self) -> tokio::sync::watch::Receiver<u64> {
        self.restarted.subscribe()
    }

    /// When bosun started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Stopping (or stopped): readiness must say no.
    pub fn stopping(&self) -> bool {
        matches!(self.lock().phase, Phase::Stopping | Phase::Exited)
    }
}
