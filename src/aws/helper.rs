//! `bosun-aws`: the process that holds the AWS SDK for bosun (see
//! [`crate::metrics::helper`] for why it is a process of its own). It reads
//! [`Request`]s as JSON lines on stdin and answers each with one [`Reply`] line on
//! stdout: queue depth from SQS (and running tasks from ECS), samples buffered and
//! published to CloudWatch by [`Publisher`] (bounded buffer, back-off, drop-oldest),
//! and a final flush within a deadline. It ends when its input does (bosun closed it
//! or is gone); TERM, INT and HUP do not end it, so a stop cannot cut the final flush.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::cloudwatch::Publisher;
use super::{queue, tasks};
use crate::metrics::wire::{Args, Depth, Reply, Request};
use crate::metrics::{running_from_env, Dimensions, Quiet};

/// `bosun-aws` options, given by bosun (the protocol's [`Args`]).
pub type Options = Args;

/// The helper's state: the clients it was asked for.
struct Served {
    sdk: aws_config::SdkConfig,
    publisher: Option<Arc<Publisher>>,
    sqs: Option<(aws_sdk_sqs::Client, String)>,
    ecs: Option<(aws_sdk_ecs::Client, String, String)>,
    quiet_queue: Quiet,
    quiet_ecs: Quiet,
}

impl Served {
    async fn new(opts: Options) -> Served {
        let sdk = super::config().await;
        if sdk.region().is_none() {
            tracing::warn!(
                "no AWS region configured (AWS_REGION): CloudWatch and SQS calls will fail"
            );
        }
        // The dimension names bosun sends are the contract's (ServiceName, ClusterName).
        let dims: Dimensions = opts
            .dimensions
            .into_iter()
            .filter_map(|(name, value)| match name.as_str() {
                "ServiceName" => Some(("ServiceName", value)),
                "ClusterName" => Some(("ClusterName", value)),
                _ => {
                    tracing::warn!(name, "unknown dimension ignored");
                    None
                }
            })
            .collect();
        let publisher = opts.cloudwatch.then(|| {
            Arc::new(Publisher {
                client: aws_sdk_cloudwatch::Client::new(&sdk),
                namespace: opts.namespace.clone(),
                dims,
                high_resolution: opts.high_resolution,
                buffer: Arc::default(),
            })
        });
        let sqs = opts.queue_url.map(|u| (aws_sdk_sqs::Client::new(&sdk), u));
        let ecs = match opts.ecs_service {
            Some((c, s)) if sqs.is_some() => Some((aws_sdk_ecs::Client::new(&sdk), c, s)),
            _ => None,
        };
        Served {
            sdk,
            publisher,
            sqs,
            ecs,
            quiet_queue: Quiet::default(),
            quiet_ecs: Quiet::default(),
        }
    }

    fn counters(&self, id: u64) -> Reply {
        let mut reply = Reply {
            id,
            ..Reply::default()
        };
        if let Some(p) = &self.publisher {
            reply.published = p.buffer.published.load(Ordering::Relaxed);
            reply.dropped = p.buffer.dropped.load(Ordering::Relaxed);
            reply.unsent = p.buffer.len() as u64;
        }
        reply
    }

    async fn answer(&mut self, request: Request) -> Reply {
        match request {
            Request::Depth { id } => {
                let (depth, error) = self.depth().await;
                Reply {
                    depth,
                    error,
                    ..self.counters(id)
                }
            }
            Request::Publish { id, sample } => {
                match &self.publisher {
                    Some(p) => p.buffer.push(sample),
                    None => tracing::debug!("publish asked without --cloudwatch: ignored"),
                }
                self.counters(id)
            }
            Request::EarlierRuns {
                id,
                cluster,
                family,
                task_arn,
            } => {
                let client = match &self.ecs {
                    Some((c, _, _)) => c.clone(),
                    None => aws_sdk_ecs::Client::new(&self.sdk),
                };
                let (earlier, error) =
                    match tasks::earlier_runs(&client, &cluster, &family, &task_arn).await {
                        Ok(arns) => (Some(arns), None),
                        Err((_, e)) => (None, Some(e)),
                    };
                Reply {
                    earlier,
                    error,
                    ..self.counters(id)
                }
            }
            Request::Flush { id, within_ms } => {
                if let Some(p) = &self.publisher {
                    let mut quiet = Quiet::default();
                    let within = Duration::from_millis(within_ms);
                    match tokio::time::timeout(within, p.send_all(&mut quiet)).await {
                        Ok(Ok(())) => tracing::info!("final metrics flushed"),
                        _ => tracing::warn!(
                            unsent = p.buffer.len(),
                            "final metrics flush did not finish within the grace"
                        ),
                    }
                }
                self.counters(id)
            }
        }
    }

    /// Queue depth, and the running tasks that divide it.
    async fn depth(&mut self) -> (Option<Depth>, Option<String>) {
        let Some((client, url)) = &self.sqs else {
            return (None, Some("no --queue-url given".into()));
        };
        let d = match queue::depth(client, url).await {
            Ok(d) => {
                self.quiet_queue.recovered("SQS GetQueueAttributes");
                d
            }
            Err((_, e)) => {
                let error = format!("{url}: {e}");
                self.quiet_queue.warn("SQS GetQueueAttributes", &error);
                return (None, Some(error));
            }
        };
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
        let depth = Depth {
            visible: d.visible,
            in_flight: d.in_flight,
            delayed: d.delayed,
            running_tasks: running.or_else(running_from_env),
        };
        (Some(depth), None)
    }
}

/// Serve bosun until stdin ends. Returns the process's exit code.
pub async fn serve(opts: Options) -> u8 {
    let mut served = Served::new(opts).await;
    if let Some(p) = &served.publisher {
        tokio::spawn(p.clone().run());
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return 0,
            Err(e) => {
                tracing::error!(error = %e, "cannot read requests");
                return 1;
            }
        };
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, line, "unreadable request ignored");
                continue;
            }
        };
        let reply = served.answer(request).await;
        let mut text = match serde_json::to_vec(&reply) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a reply");
                return 1;
            }
        };
        text.push(b'\n');
        if out.write_all(&text).await.is_err() || out.flush().await.is_err() {
            // bosun is gone.
            return 0;
        }
    }
}
