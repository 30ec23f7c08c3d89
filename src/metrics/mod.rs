//! Metrics that drive autoscaling: CPU and memory from the cgroup ([`cgroup`],
//! [`sample`]), the task's identity and limits from ECS ([`ecs`]), the queue backlog
//! from SQS ([`queue`]), published to any of `prometheus` (the endpoint's `/metrics`),
//! `emf` (stdout) and `cloudwatch` (PutMetricData). The loop runs on the services
//! thread: a slow or unreachable AWS never holds up the worker.

pub mod cgroup;
#[cfg(feature = "aws")]
pub mod cloudwatch;
pub mod ecs;
pub mod emf;
#[cfg(feature = "aws")]
pub mod queue;
pub mod sample;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::MetricsSink;
use crate::state::Shared;
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

/// AWS clients, when a sink or the queue needs them.
#[cfg(feature = "aws")]
struct Aws {
    sqs: Option<(aws_sdk_sqs::Client, String)>,
    ecs: Option<(aws_sdk_ecs::Client, String, String)>,
    publisher: Option<Arc<cloudwatch::Publisher>>,
    quiet_queue: Quiet,
    quiet_ecs: Quiet,
}

#[cfg(feature = "aws")]
impl Aws {
    async fn new(cfg: &Config, id: &Identity, dims: &Dimensions) -> Option<Aws> {
        let want_cw = cfg.has(MetricsSink::Cloudwatch);
        if !want_cw && cfg.queue_url.is_none() {
            return None;
        }
        let sdk = crate::aws::config().await;
        if sdk.region().is_none() {
            tracing::warn!(
                "no AWS region configured (AWS_REGION): CloudWatch and SQS calls will fail"
            );
        }
        let sqs = cfg
            .queue_url
            .clone()
            .map(|u| (aws_sdk_sqs::Client::new(&sdk), u));
        let ecs = match (&id.cluster, &id.service, &cfg.queue_url) {
            (Some(c), Some(s), Some(_)) if id.in_ecs => {
                Some((aws_sdk_ecs::Client::new(&sdk), c.clone(), s.clone()))
            }
            _ => None,
        };
        let publisher = want_cw.then(|| {
            Arc::new(cloudwatch::Publisher {
                client: aws_sdk_cloudwatch::Client::new(&sdk),
                namespace: cfg.namespace.clone(),
                dims: dims.clone(),
                high_resolution: cfg.interval < Duration::from_secs(60),
                buffer: Arc::default(),
            })
        });
        Some(Aws {
            sqs,
            ecs,
            publisher,
            quiet_queue: Quiet::default(),
            quiet_ecs: Quiet::default(),
        })
    }

    async fn queue(&mut self, sample: &mut Sample) {
        let Some((client, url)) = &self.sqs else {
            return;
        };
        match queue::depth(client, url).await {
            Ok(d) => {
                self.quiet_queue.recovered("SQS GetQueueAttributes");
                sample.queue_visible = Some(d.visible);
                sample.queue_in_flight = Some(d.in_flight);
                sample.queue_delayed = Some(d.delayed);
            }
            Err((_, e)) => self
                .quiet_queue
                .warn("SQS GetQueueAttributes", &format!("{url}: {e}")),
        }
        let running = match &self.ecs {
            Some((client, cluster, service)) => {
                match queue::running_tasks(client, cluster, service).await {
                    Ok(n) => {
                        self.quiet_ecs.recovered("ECS DescribeServices");
                        Some(n)
                    }
                    Err((_, e)) => {
                        self.quiet_ecs.warn("ECS DescribeServices", &e);
                        None
                    }
                }
            }
            None => None,
        };
        let running = running.or_else(running_from_env);
        sample.running_tasks = running;
        if let Some(v) = sample.queue_visible {
            sample.backlog_per_task = Some(sample::backlog_per_task(v, running.unwrap_or(1)));
        }
    }
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
    mut flushes: tokio::sync::mpsc::UnboundedReceiver<Flush>,
) {
    let identity = Identity::discover().await;
    let dims = dimensions(&identity);
    let mut sampler = Sampler::new(
        cgroup::Cgroup::detect(Path::new("/")),
        &identity,
        cfg.interval,
    );
    let (cores, mem) = sampler.limits();
    tracing::info!(interval_secs = cfg.interval.as_secs_f64(), sinks = ?cfg.sinks, cpu_limit_cores = cores, memory_limit_bytes = mem, "metrics on");
    #[cfg(feature = "aws")]
    let mut aws = Aws::new(&cfg, &identity, &dims).await;
    #[cfg(feature = "aws")]
    if let Some(p) = aws.as_ref().and_then(|a| a.publisher.clone()) {
        tokio::spawn(p.run());
    }
    let high_res = cfg.interval < Duration::from_secs(60);
    let mut ticker =
        tokio::time::interval_at(tokio::time::Instant::now() + cfg.interval, cfg.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let flush = tokio::select! {
            _ = ticker.tick() => None,
            f = flushes.recv() => f,
        };
        let mut s = Sample {
            timestamp_ms: now_ms(),
            worker_restarts: shared.snapshot().restarts,
            ..Sample::default()
        };
        sampler.resources(&mut s);
        #[cfg(feature = "aws")]
        if let Some(a) = aws.as_mut() {
            let bound = flush.as_ref().map_or(Duration::from_secs(15), |f| {
                f.deadline.saturating_duration_since(Instant::now())
            });
            if tokio::time::timeout(bound, a.queue(&mut s)).await.is_err() {
                tracing::debug!("queue depth not read in time");
            }
        }
        shared.update(|st| st.last_sample = Some(s.clone()));
        if cfg.has(MetricsSink::Emf) {
            emf::emit(&s, &cfg.namespace, &dims, high_res);
        }
        #[cfg(feature = "aws")]
        if let Some(p) = aws.as_ref().and_then(|a| a.publisher.as_ref()) {
            p.buffer.push(s.clone());
            let (published, dropped) = (
                p.buffer
                    .published
                    .load(std::sync::atomic::Ordering::Relaxed),
                p.buffer.dropped.load(std::sync::atomic::Ordering::Relaxed),
            );
            shared.update(|st| {
                st.metrics_published = published;
                st.metrics_dropped = dropped;
            });
        }
        if let Some(f) = flush {
            #[cfg(feature = "aws")]
            if let Some(p) = aws.as_ref().and_then(|a| a.publisher.as_ref()) {
                let left = f.deadline.saturating_duration_since(Instant::now());
                let mut quiet = Quiet::default();
                match tokio::time::timeout(left, p.send_all(&mut quiet)).await {
                    Ok(Ok(())) => tracing::info!("final metrics flushed"),
                    _ => tracing::warn!(
                        unsent = p.buffer.len(),
                        "final metrics flush did not finish within the grace"
                    ),
                }
            }
            let _ = f.done.send(());
            return;
        }
    }
}
