//! The services that run beside the supervisor loop: the endpoint, the health checks
//! (and the metrics). They live on one thread of their own with a current-thread tokio
//! runtime, started after the worker, so they add nothing to the worker's start and
//! can never delay signal handling or reaping.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use crate::config::{Listen, MetricsSink, OnUnhealthy};
use crate::endpoint;
use crate::health;
use crate::metrics;
use crate::state::Shared;
use crate::supervise::events::Requests;
use crate::supervise::reaper::Watches;

/// Stack size of the services thread and of the runtime's blocking threads (only the
/// pages used count in RSS).
const STACK: usize = 512 * 1024;

/// Why the endpoint cannot listen: a startup error (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} (--listen / BOSUN_LISTEN): {source}")]
pub struct ListenError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// Bind the endpoint's socket now, before the worker starts, so that a bad address is
/// a usage error and not a worker running without an endpoint.
pub fn bind(listen: Listen) -> Result<Option<TcpListener>, ListenError> {
    match listen {
        Listen::Off => Ok(None),
        Listen::On(addr) => TcpListener::bind(addr)
            .map(Some)
            .map_err(|source| ListenError { addr, source }),
    }
}

/// Everything the services thread needs.
pub struct Services {
    pub listener: Option<TcpListener>,
    pub health: Option<health::Config>,
    /// No worker: a sidecar, whose log lines name the check's target.
    pub sidecar: bool,
    pub on_unhealthy: OnUnhealthy,
    pub shared: Arc<Shared>,
    pub requests: Requests,
    pub watches: Watches,
    /// `None`: no sink and no endpoint, nothing to sample for.
    pub metrics: Option<metrics::Config>,
}

/// What the services thread still does as bosun exits: task protection cleared, a last
/// metrics sample flushed.
#[derive(Default)]
pub struct AtExit {
    keeper: Option<crate::protect::Keeper>,
    flush: Option<tokio::sync::mpsc::UnboundedSender<metrics::Flush>>,
}

impl AtExit {
    /// Both, waiting at most until `deadline` (the keeper: at least a second).
    pub fn run(&self, deadline: std::time::Instant) {
        if let Some(k) = &self.keeper {
            k.release(deadline);
        }
        let now = std::time::Instant::now();
        if let (Some(tx), true) = (&self.flush, deadline > now) {
            let (done, wait) = std::sync::mpsc::channel();
            if tx.send(metrics::Flush { deadline, done }).is_ok() {
                let _ = wait.recv_timeout(deadline - now);
            }
        }
    }
}

impl Services {
    /// Whether there is anything to run at all.
    pub fn any(&self) -> bool {
        self.listener.is_some() || self.health.is_some() || self.metrics.is_some()
    }

    /// Start the services thread (nothing when there is nothing to run), and say what
    /// it must still do as bosun exits.
    pub fn start(self) -> std::io::Result<AtExit> {
        if !self.any() {
            return Ok(AtExit::default());
        }
        let (flush_tx, flush_rx) = tokio::sync::mpsc::unbounded_channel();
        // A last sample is worth waiting for only where it goes somewhere that outlives
        // bosun (stdout, CloudWatch), not for /metrics alone.
        let flush = self
            .metrics
            .as_ref()
            .is_some_and(|m| m.sinks.iter().any(|s| *s != MetricsSink::Prometheus))
            .then_some(flush_tx);
        // Protection is asked for through the endpoint, so it is kept where there is one.
        let keeper = self
            .listener
            .as_ref()
            .map(|_| crate::protect::keeper(self.shared.restarts()));
        let at_exit = AtExit {
            keeper: keeper.as_ref().map(|(k, _)| k.clone()),
            flush,
        };
        if self.health.is_some() {
            // Before anyone can ask /readyz: "starting", not "no check configured".
            let report =
                health::Machine::new(1, std::time::Duration::ZERO, self.shared.started()).report();
            self.shared.update(|s| s.health = Some(report));
        }
        std::thread::Builder::new()
            .name("bosun-services".into())
            .stack_size(STACK)
            .spawn(move || self.run(flush_rx, keeper))?;
        Ok(at_exit)
    }

    fn run(
        self,
        flushes: tokio::sync::mpsc::UnboundedReceiver<metrics::Flush>,
        keeper: Option<(
            crate::protect::Keeper,
            impl std::future::Future<Output = ()> + Send + 'static,
        )>,
    ) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_stack_size(STACK)
            .max_blocking_threads(2)
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the services runtime");
                return;
            }
        };
        rt.block_on(async move {
            let mut tasks = tokio::task::JoinSet::new();
            if let (Some(listener), Some((keeper, keep))) = (self.listener, keeper) {
                if let Ok(addr) = listener.local_addr() {
                    tracing::info!(%addr, "endpoint listening");
                }
                tasks.spawn(keep);
                let router = endpoint::router(self.shared.clone(), keeper);
                tasks.spawn(endpoint::serve(listener, router));
            }
            if let Some(cfg) = self.health {
                tracing::info!(check = ?cfg.check, interval_secs = cfg.interval.as_secs_f64(), "health checks on");
                let subject = if self.sidecar {
                    cfg.check.to_string()
                } else {
                    "worker".to_owned()
                };
                tasks.spawn(health::runner::run(
                    cfg,
                    subject,
                    self.on_unhealthy,
                    self.shared.clone(),
                    self.requests,
                    self.watches.clone(),
                ));
            }
            if let Some(cfg) = self.metrics {
                tasks.spawn(metrics::run(cfg, self.shared, self.watches, flushes));
            }
            while tasks.join_next().await.is_some() {}
        });
    }
}
