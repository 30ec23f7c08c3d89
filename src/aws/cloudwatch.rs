//! The `cloudwatch` sink: PutMetricData, all datums of an interval in one call (high
//! resolution when the interval is under 60 s). Samples wait in a bounded buffer; a
//! failed call is retried with back-off (retryable errors) or dropped (fatal ones);
//! when AWS stays unreachable the oldest samples are dropped, counted and reported.
//! Nothing here can hold up the worker or the supervisor: it runs in the `bosun-aws`
//! helper process, and bosun's sampler only ever hands samples over.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{classify, describe, Failure};
use crate::metrics::sample::{Sample, Unit};
use crate::metrics::{Dimensions, Quiet};

/// At most this many samples wait for CloudWatch (an hour at the default interval).
pub const BUFFER_SAMPLES: usize = 60;
/// PutMetricData takes at most 1000 datums per call; bosun sends at most 7 a sample.
pub const MAX_DATUMS: usize = 1000;
/// Samples go to CloudWatch together: a call when this many wait, or when the window
/// since the last call has passed. At the default 60 s interval each sample goes at
/// once, as before; at 1 s, a call every 10 s instead of every second (PutMetricData is
/// billed per 1,000 requests: CloudWatch pricing), each sample keeping its own
/// timestamp.
const BATCH_SAMPLES: usize = 10;
const BATCH_WINDOW: Duration = Duration::from_secs(30);
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// Samples waiting to be published (drop-oldest when full).
#[derive(Default)]
pub struct Buffer {
    samples: Mutex<VecDeque<Sample>>,
    pub dropped: AtomicU64,
    pub published: AtomicU64,
    notify: Notify,
}

impl Buffer {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Sample>> {
        self.samples.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add a sample; when full, the oldest is dropped (and counted).
    pub fn push(&self, s: Sample) {
        let dropped = {
            let mut q = self.lock();
            q.push_back(s);
            let mut dropped = 0;
            while q.len() > BUFFER_SAMPLES {
                q.pop_front();
                dropped += 1;
            }
            dropped
        };
        if dropped > 0 {
            let total = self.dropped.fetch_add(dropped, Ordering::Relaxed) + dropped;
            if total == 1 || total.is_multiple_of(10) {
                tracing::warn!(
                    dropped_total = total,
                    "CloudWatch unreachable: oldest metric samples dropped"
                );
            }
        }
        self.notify.notify_one();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(&self, max_samples: usize) -> Vec<Sample> {
        let mut q = self.lock();
        let n = q.len().min(max_samples);
        q.drain(..n).collect()
    }

    /// Put an unsent batch back in front (older than anything pushed meanwhile).
    fn put_back(&self, batch: Vec<Sample>) {
        let mut q = self.lock();
        for s in batch.into_iter().rev() {
            q.push_front(s);
        }
        while q.len() > BUFFER_SAMPLES {
            q.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Publishes the buffer to CloudWatch.
pub struct Publisher {
    pub client: aws_sdk_cloudwatch::Client,
    pub namespace: String,
    pub dims: Dimensions,
    pub high_resolution: bool,
    pub buffer: Arc<Buffer>,
}

fn datums(sample: &Sample, dims: &[Dimension], high_resolution: bool) -> Vec<MetricDatum> {
    let ts = DateTime::from_millis(sample.timestamp_ms as i64);
    sample
        .datums()
        .into_iter()
        .map(|(name, value, unit)| {
            MetricDatum::builder()
                .metric_name(name)
                .value(value)
                .unit(match unit {
                    Unit::Percent => StandardUnit::Percent,
                    Unit::Bytes => StandardUnit::Bytes,
                    Unit::Count => StandardUnit::Count,
                    Unit::Seconds => StandardUnit::Seconds,
                    Unit::None => StandardUnit::None,
                })
                .timestamp(ts)
                .storage_resolution(if high_resolution { 1 } else { 60 })
                .set_dimensions(Some(dims.to_vec()))
                .build()
        })
        .collect()
}

impl Publisher {
    fn dimensions(&self) -> Vec<Dimension> {
        self.dims
            .iter()
            .map(|(k, v)| Dimension::builder().name(*k).value(v).build())
            .collect()
    }

    /// Send everything buffered, one call per up to 1000 datums.
    pub async fn send_all(&self, quiet: &mut Quiet) -> Result<(), Failure> {
        let dims = self.dimensions();
        let per_call = MAX_DATUMS / 7;
        loop {
            let batch = self.buffer.take(per_call);
            if batch.is_empty() {
                return Ok(());
            }
            let data: Vec<MetricDatum> = batch
                .iter()
                .flat_map(|s| datums(s, &dims, self.high_resolution))
                .collect();
            let sent = self
                .client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(data))
                .send()
                .await;
            match sent {
                Ok(_) => {
                    self.buffer
                        .published
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    quiet.recovered("CloudWatch PutMetricData");
                }
                Err(e) => {
                    let kind = classify(&e);
                    quiet.warn("CloudWatch PutMetricData", &describe(&e));
                    match kind {
                        Failure::Retry => self.buffer.put_back(batch),
                        Failure::Fatal => {
                            self.buffer
                                .dropped
                                .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        }
                    }
                    return Err(kind);
                }
            }
        }
    }

    /// Publish as samples arrive, backing off while CloudWatch fails.
    pub async fn run(self: Arc<Self>) {
        let mut quiet = Quiet::default();
        let mut backoff = BACKOFF_START;
        let mut last_call: Option<Instant> = None;
        loop {
            if self.buffer.is_empty() {
                self.buffer.notify.notified().await;
            }
            if let Some(last) = last_call {
                let due = last + BATCH_WINDOW;
                while self.buffer.len() < BATCH_SAMPLES && Instant::now() < due {
                    tokio::select! {
                        () = self.buffer.notify.notified() => {}
                        () = tokio::time::sleep_until(due) => {}
                    }
                }
            }
            last_call = Some(Instant::now());
            match self.send_all(&mut quiet).await {
                Ok(()) => backoff = BACKOFF_START,
                Err(_) => {
                    tokio::time::sleep_until(Instant::now() + backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_CAP);
                }
            }
        }
    }
}
