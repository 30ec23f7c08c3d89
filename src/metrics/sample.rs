//! One sample of what the worker uses, and how each figure is computed.
//!
//! - CPUUtilization: CPU time used by the container's cgroup since the previous
//!   sample ÷ (wall time × the CPU limit in cores) × 100. The limit is the ECS task's
//!   CPU (task metadata), else the cgroup quota, else the host's cores. With the task's
//!   CPU as the limit this is the figure ECS reports as the service's CPUUtilization
//!   (CPU used ÷ CPU reserved), so it can pass 100 % when an EC2 task without a hard
//!   limit bursts. Without any cgroup, the host's CPU use (sysinfo).
//! - MemoryUtilization / MemoryUsed: cgroup memory usage minus inactive file cache
//!   (`docker stats` and ECS count it so) ÷ the ECS task memory, else the cgroup limit,
//!   else host memory.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::cgroup::Cgroup;
use super::ecs::Identity;

/// One interval's figures (`None`: not available).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    pub cpu_utilization: Option<f64>,
    pub memory_utilization: Option<f64>,
    pub memory_used_bytes: Option<u64>,
    pub queue_visible: Option<u64>,
    pub queue_in_flight: Option<u64>,
    pub queue_delayed: Option<u64>,
    pub running_tasks: Option<u64>,
    pub backlog_per_task: Option<f64>,
    /// Restarts since bosun started (`/status`; Prometheus reads its counter live).
    pub worker_restarts: u64,
    /// Restarts since the sample before (CloudWatch's and EMF's `WorkerRestarts`).
    #[serde(default)]
    pub worker_restarts_in_interval: u64,
    /// The run's exit code: in the final sample only, once the worker has ended.
    #[serde(default)]
    pub run_exit_code: Option<u8>,
    /// The run's duration in seconds, with [`Sample::run_exit_code`].
    #[serde(default)]
    pub run_duration_secs: Option<f64>,
}

/// CloudWatch units used by bosun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Percent,
    Bytes,
    Count,
    Seconds,
    /// A number without unit (an exit code).
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Percent => "Percent",
            Unit::Bytes => "Bytes",
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::None => "None",
        }
    }
}

/// One published metric: its CloudWatch and Prometheus names, unit, help, and how it
/// is read from a sample. The one list both sinks (and EMF) publish.
pub struct Metric {
    pub cloudwatch: &'static str,
    pub prometheus: &'static str,
    /// Prometheus type: `gauge` or `counter`.
    pub kind: &'static str,
    pub unit: Unit,
    pub help: &'static str,
    pub value: fn(&Sample) -> Option<f64>,
}

/// Every metric bosun publishes, in publishing order.
pub const METRICS: &[Metric] = &[
    Metric {
        cloudwatch: "CPUUtilization",
        prometheus: "bosun_cpu_utilization_percent",
        kind: "gauge",
        unit: Unit::Percent,
        help: "CPU used by the container against its limit (CloudWatch CPUUtilization).",
        value: |s| s.cpu_utilization,
    },
    Metric {
        cloudwatch: "MemoryUtilization",
        prometheus: "bosun_memory_utilization_percent",
        kind: "gauge",
        unit: Unit::Percent,
        help: "Memory used against the limit (CloudWatch MemoryUtilization).",
        value: |s| s.memory_utilization,
    },
    Metric {
        cloudwatch: "MemoryUsed",
        prometheus: "bosun_memory_used_bytes",
        kind: "gauge",
        unit: Unit::Bytes,
        help: "Memory used, inactive file cache excluded (CloudWatch MemoryUsed).",
        value: |s| s.memory_used_bytes.map(|b| b as f64),
    },
    Metric {
        cloudwatch: "ApproximateNumberOfMessagesVisible",
        prometheus: "bosun_queue_messages_visible",
        kind: "gauge",
        unit: Unit::Count,
        help: "Messages waiting in the queue (ApproximateNumberOfMessagesVisible).",
        value: |s| s.queue_visible.map(|n| n as f64),
    },
    Metric {
        cloudwatch: "ApproximateNumberOfMessagesNotVisible",
        prometheus: "bosun_queue_messages_in_flight",
        kind: "gauge",
        unit: Unit::Count,
        help: "Messages being processed (ApproximateNumberOfMessagesNotVisible).",
        value: |s| s.queue_in_flight.map(|n| n as f64),
    },
    Metric {
        cloudwatch: "BacklogPerTask",
        prometheus: "bosun_queue_backlog_per_task",
        kind: "gauge",
        unit: Unit::Count,
        help: "Visible messages per running task (BacklogPerTask).",
        value: |s| s.backlog_per_task,
    },
    Metric {
        cloudwatch: "WorkerRestarts",
        prometheus: RESTARTS_PROMETHEUS,
        kind: "counter",
        unit: Unit::Count,
        help: "Times the worker was restarted.",
        // CloudWatch sums a Count over a period: each datum is the restarts of its
        // own interval, not the running total (which would sum to a number that
        // grows with the period).
        value: |s| Some(s.worker_restarts_in_interval as f64),
    },
    Metric {
        cloudwatch: "RunExitCode",
        prometheus: "bosun_run_exit_code",
        kind: "gauge",
        unit: Unit::None,
        help: "The run's exit code (0: succeeded), published once, when the worker has ended.",
        value: |s| s.run_exit_code.map(f64::from),
    },
    Metric {
        cloudwatch: "RunDuration",
        prometheus: "bosun_run_duration_seconds",
        kind: "gauge",
        unit: Unit::Seconds,
        help: "How long the run took, from the worker's first start to its last end, published with RunExitCode.",
        value: |s| s.run_duration_secs,
    },
];

/// The restart counter's Prometheus name: `/metrics` reads it live from the
/// supervisor's state rather than from the last sample.
pub const RESTARTS_PROMETHEUS: &str = "bosun_worker_restarts_total";

impl Sample {
    /// The CloudWatch metrics of this sample: (name, value, unit), only those present.
    pub fn datums(&self) -> Vec<(&'static str, f64, Unit)> {
        METRICS
            .iter()
            .filter_map(|m| (m.value)(self).map(|v| (m.cloudwatch, v, m.unit)))
            .collect()
    }
}

/// `visible ÷ running` as a number, never dividing by zero (no running task counts
/// as one: the backlog is still there to scale out for). Not rounded up: target
/// tracking scales in only once the metric is below the target, and a ratio rounded
/// up to 1 would keep a target below 1 from ever scaling in while one message waits
/// (Application Auto Scaling User Guide, "Target tracking scaling policies").
pub fn backlog_per_task(visible: u64, running: u64) -> f64 {
    visible as f64 / running.max(1) as f64
}

/// Reads CPU and memory; keeps the previous CPU reading for the next delta.
pub struct Sampler {
    cgroup: Cgroup,
    cpu_limit_cores: Option<f64>,
    memory_limit_bytes: Option<u64>,
    last_cpu: Option<(u64, Instant)>,
    last_cpu_percent: Option<f64>,
    /// Windows shorter than this give no new CPU figure (a quota is enforced per
    /// period, so a very short window can show a burst far above the limit).
    min_window: f64,
    host: sysinfo::System,
    host_cores: f64,
    host_memory: u64,
}

impl Sampler {
    pub fn new(cgroup: Cgroup, identity: &Identity, interval: std::time::Duration) -> Sampler {
        let mut host = sysinfo::System::new();
        host.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
        host.refresh_memory();
        let host_cores = host.cpus().len().max(1) as f64;
        let host_memory = host.total_memory();
        let cpu_limit_cores = identity
            .cpu_limit_cores
            .or_else(|| cgroup.cpu_limit_cores());
        let memory_limit_bytes = identity
            .memory_limit_bytes
            .or_else(|| cgroup.memory_limit_bytes());
        let mut s = Sampler {
            cgroup,
            cpu_limit_cores,
            memory_limit_bytes,
            last_cpu: None,
            last_cpu_percent: None,
            min_window: (interval.as_secs_f64() / 2.0).min(0.5),
            host,
            host_cores,
            host_memory,
        };
        s.prime();
        s
    }

    /// The limits in use: (cores, bytes).
    pub fn limits(&self) -> (f64, u64) {
        (
            self.cpu_limit_cores.unwrap_or(self.host_cores),
            self.memory_limit_bytes.unwrap_or(self.host_memory),
        )
    }

    /// Take the first CPU reading, so the first sample has a delta.
    fn prime(&mut self) {
        match self.cgroup.cpu_usage_usec() {
            Some(u) => self.last_cpu = Some((u, Instant::now())),
            None => self.host.refresh_cpu_usage(),
        }
    }

    /// CPU and memory now.
    pub fn resources(&mut self, sample: &mut Sample) {
        let (cores, mem_limit) = self.limits();
        let now = Instant::now();
        match self.cgroup.cpu_usage_usec() {
            Some(usage) => {
                if let Some((prev, at)) = self.last_cpu {
                    let wall = now.duration_since(at).as_secs_f64();
                    if wall < self.min_window {
                        // Too short to measure (the final sample right after another):
                        // repeat the last figure and keep measuring from the old start.
                        sample.cpu_utilization = self.last_cpu_percent;
                        return self.memory(sample, mem_limit);
                    }
                    let used = usage.saturating_sub(prev) as f64 / 1e6;
                    let pct = round2(used / (wall * cores) * 100.0);
                    sample.cpu_utilization = Some(pct);
                    self.last_cpu_percent = Some(pct);
                }
                self.last_cpu = Some((usage, now));
            }
            None => {
                self.host.refresh_cpu_usage();
                sample.cpu_utilization = Some(round2(f64::from(self.host.global_cpu_usage())));
            }
        }
        self.memory(sample, mem_limit);
    }

    fn memory(&mut self, sample: &mut Sample, mem_limit: u64) {
        let used = self.cgroup.memory_used_bytes().or_else(|| {
            self.host.refresh_memory();
            Some(self.host.used_memory())
        });
        sample.memory_used_bytes = used;
        if let Some(u) = used {
            if mem_limit > 0 {
                sample.memory_utilization = Some(round2(u as f64 / mem_limit as f64 * 100.0));
            }
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_never_divides_by_zero() {
        assert_eq!(backlog_per_task(0, 0), 0.0);
        assert_eq!(backlog_per_task(7, 0), 7.0);
        assert_eq!(backlog_per_task(7, 2), 3.5);
        assert_eq!(backlog_per_task(8, 2), 4.0);
    }

    #[test]
    fn datums_carry_the_contract_names() {
        let s = Sample {
            cpu_utilization: Some(1.0),
            queue_visible: Some(3),
            ..Default::default()
        };
        let names: Vec<_> = s.datums().iter().map(|d| d.0).collect();
        assert_eq!(
            names,
            [
                "CPUUtilization",
                "ApproximateNumberOfMessagesVisible",
                "WorkerRestarts"
            ]
        );
    }
}
