//! Metrics that drive autoscaling: CPU and memory from the cgroup ([`cgroup`],
//! [`sample`]), the task's identity and limits from ECS ([`ecs`]), the queue backlog
//! from SQS, published to any of `prometheus` (the endpoint's `/metrics`), `emf`
//! (stdout) and `cloudwatch` (PutMetricData). The loop runs on the services thread;
//! SQS and CloudWatch calls are made by the `bosun-aws` helper process ([`helper`]),
//! so a slow or unreachable AWS never holds up the worker, and bosun never links the
//! SDK.

pub mod cgroup;
pub mod ecs;
pub mod emf;
pub mod helper;
pub mod sample;
pub mod wire;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{LogFormat, MetricsSink};
use crate::state::Shared;
use crate::supervise::reaper::Watches;
use ecs::Identity;
use sample::{Sample, Sampler};

/// CloudWatch dimensions: (name, value), those known of ServiceName and ClusterName.
pub type Dimensions = Vec<(&'static str, String)>;

/// What the metrics loop does.
#[derive(Debug, Clone)]
pub struct Config {
    pub sinks: Vec<MetricsSink>,
    pub interval: Duration,
    pub namespace: String,
    pub queue_url: Option<String>,
    /// The `bosun-aws` executable: set exactly when `cloudwatch` or a queue is asked
    /// for (bosun finds it before anything starts).
    pub helper: Option<std::path::PathBuf>,
    /// The helper's log lines are in the same format as bosun's.
    pub log_format: LogFormat,
}

impl Config {
    fn has(&self, sink: MetricsSink) -> bool {
        self.sinks.contains(&sink)
    }
}

/// A request for a last sample and a final flush, answered on `done`.
pub struct Flush {
    pub deadline: Instant,
    pub done: std::sync::mpsc::Sender<()>,
}

/// Says a failure once, not on every attempt, and says when it is over.
#[derive(Default)]
pub struct Quiet {
    failing: Option<String>,
    repeats: u64,
}

impl Quiet {
    pub fn warn(&mut self, what: &str, error: &str) {
        if self.failing.as_deref() == Some(error) {
            self.repeats += 1;
            tracing::debug!(what, error, repeats = self.repeats, "still failing");
        } else {
            tracing::warn!(what, error, "failed (said once; retrying quietly)");
            self.failing = Some(error.to_owned());
            self.repeats = 0;
        }
    }

    pub fn recovered(&mut self, what: &str) {
        if self.failing.take().is_some() {
            tracing::info!(what, failures = self.repeats + 1, "working again");
        }
    }
}

fn dimensions(id: &Identity) -> Dimensions {
    let mut d = Vec::new();
    if let Some(s) = &id.service {
        d.push(("ServiceName", s.clone()));
    }
    if let Some(c) = &id.cluster {
        d.push(("ClusterName", c.clone()));
    }
    d
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `BOSUN_RUNNING_TASKS`, outside ECS.
pub fn running_from_env() -> Option<u64> {
    std::env::var("BOSUN_RUNNING_TASKS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

/// Sample every interval and publish, until a final flush is asked for.
pub async fn run(
    cfg: Config,
    shared: Arc<Shared>,
    watches: Watches,
    mut flushes: tokio::sync::mpsc::UnboundedReceiver<Flush>,
) {
    let identity = Identity::discover().await;
    shared.update(|st| st.task_arn = identity.task_arn.clone());
    let dims = dimensions(&identity);
    let mut sampler = Sampler::new(
        cgroup::Cgroup::detect(Path::new("/")),
        &identity,
        cfg.interval,
    );
    let (cores, mem) = sampler.limits();
    tracing::info!(interval_secs = cfg.interval.as_secs_f64(), sinks = ?cfg.sinks, cpu_limit_cores = cores, memory_limit_bytes = mem, "metrics on");
    let mut aws = cfg.helper.clone().map(|path| {
        let ecs_service = match (&identity.cluster, &identity.service) {
            (Some(c), Some(s)) if identity.in_ecs => Some((c.as_str(), s.as_str())),
            _ => None,
        };
        helper::Helper::new(helper::Spec::new(path, &cfg, &dims, ecs_service), watches)
    });
    let high_res = cfg.interval < Duration::from_secs(60);
    let mut last_running: Option<u64> = None;
    let mut restarts_before = 0;
    // Every task of a deployment starts within seconds of the others: a first tick
    // somewhere in the first interval spreads their AWS calls over it instead of
    // sending them all in the same second.
    let first = cfg.interval + cfg.interval.mul_f64(jitter());
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + first, cfg.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let flush = tokio::select! {
            _ = ticker.tick() => None,
            f = flushes.recv() => f,
        };
        let restarts = shared.snapshot().restarts;
        let mut s = Sample {
            timestamp_ms: now_ms(),
            worker_restarts: restarts,
            worker_restarts_in_interval: restarts.saturating_sub(restarts_before),
            ..Sample::default()
        };
        restarts_before = restarts;
        sampler.resources(&mut s);
        // The final flush carries how the run ended (a job's exit status and duration).
        if let Some(end) = flush.as_ref().and(shared.snapshot().run_end) {
            s.run_exit_code = Some(end.exit_code);
            s.run_duration_secs = Some(end.duration.as_secs_f64());
        }
        // A final flush has until the end of the grace; an interval, at most 15 s.
        let bound = || {
            flush.as_ref().map_or(Duration::from_secs(15), |f| {
                f.deadline.saturating_duration_since(Instant::now())
            })
        };
        if let Some(helper) = aws.as_mut().filter(|_| cfg.queue_url.is_some()) {
            let reply = helper.call(|id| wire::Request::Depth { id }, bound()).await;
            if let Some(d) = reply.and_then(|r| r.depth) {
                s.queue_visible = Some(d.visible);
                s.queue_in_flight = Some(d.in_flight);
                s.queue_delayed = Some(d.delayed);
                s.running_tasks = d.running_tasks;
                // The service's running count when ECS answered, else the last one it
                // gave; never a guess. ECS throttles its API per account and Region
                // (ECS API reference, "Request throttling"), and a refused or throttled
                // read taken as one task would publish the whole queue as this task's
                // backlog, and target tracking would multiply the service: with no
                // count yet, no datum.
                if d.running_tasks.is_some() {
                    last_running = d.running_tasks;
                }
                s.backlog_per_task = last_running.map(|n| sample::backlog_per_task(d.visible, n));
            }
        }
        shared.update(|st| st.last_sample = Some(s.clone()));
        if cfg.has(MetricsSink::Emf) {
            emf::emit(&s, &cfg.namespace, &dims, high_res);
        }
        if let Some(helper) = aws.as_mut().filter(|_| cfg.has(MetricsSink::Cloudwatch)) {
            let sample = s.clone();
            let mut reply = helper
                .call(|id| wire::Request::Publish { id, sample }, bound())
                .await;
            if flush.is_some() {
                let within_ms = bound().as_millis() as u64;
                // The helper says how the flush went.
                reply = helper
                    .call(|id| wire::Request::Flush { id, within_ms }, bound())
                    .await;
            }
            if let Some(r) = reply {
                shared.update(|st| {
                    st.metrics_published = r.published;
                    st.metrics_dropped = r.dropped;
                });
            }
        }
        if let Some(f) = flush {
            let _ = f.done.send(());
            return;
        }
    }
}

/// A fraction in `[0, 1)` that differs between tasks (their pids and start times).
pub(crate) fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}
