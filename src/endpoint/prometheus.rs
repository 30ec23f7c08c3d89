//! `/metrics` in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write;
use std::time::Duration;

use crate::health::Status as Health;
use crate::metrics::sample::{METRICS, RESTARTS_PROMETHEUS};
use crate::state::{Phase, State};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metrics page being written.
#[derive(Default)]
pub struct Page(String);

impl Page {
    /// One metric family with a single unlabelled sample.
    pub fn metric(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
        let _ = writeln!(self.0, "{name} {}", fmt_value(value));
    }

    pub fn finish(self) -> String {
        self.0
    }
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// The supervisor's own metrics.
pub fn render(st: &State, uptime: Duration) -> String {
    let mut p = Page::default();
    p.metric(
        "bosun_uptime_seconds",
        "gauge",
        "Seconds since bosun started.",
        uptime.as_secs_f64(),
    );
    if st.has_worker {
        let up = matches!(st.phase, Phase::Running | Phase::Stopping) && st.worker_pid.is_some();
        p.metric(
            "bosun_worker_up",
            "gauge",
            "1 while the worker process runs.",
            f64::from(u8::from(up)),
        );
        let restarts = METRICS.iter().find(|m| m.prometheus == RESTARTS_PROMETHEUS);
        if let Some(m) = restarts {
            p.metric(m.prometheus, m.kind, m.help, st.restarts as f64);
        }
    }
    p.metric(
        "bosun_orphans_reaped_total",
        "counter",
        "Orphaned processes reaped by bosun.",
        st.orphans_reaped as f64,
    );
    p.metric(
        "bosun_ready",
        "gauge",
        "1 when /readyz answers ready.",
        f64::from(u8::from(super::not_ready_reason(st).is_none())),
    );
    if let Some(s) = &st.last_sample {
        for m in METRICS
            .iter()
            .filter(|m| m.prometheus != RESTARTS_PROMETHEUS)
        {
            if let Some(v) = (m.value)(s) {
                p.metric(m.prometheus, m.kind, m.help, v);
            }
        }
    }
    p.metric(
        "bosun_metrics_published_total",
        "counter",
        "Metric samples published to CloudWatch.",
        st.metrics_published as f64,
    );
    p.metric(
        "bosun_metrics_dropped_total",
        "counter",
        "Metric samples dropped (CloudWatch unreachable or rejecting them).",
        st.metrics_dropped as f64,
    );
    if let Some(h) = &st.health {
        let healthy = h.status == Health::Healthy;
        p.metric(
            "bosun_healthy",
            "gauge",
            "1 when the health check is healthy.",
            f64::from(u8::from(healthy)),
        );
        p.metric(
            "bosun_health_checks_total",
            "counter",
            "Health checks run.",
            h.checks as f64,
        );
        p.metric(
            "bosun_health_failing_streak",
            "gauge",
            "Consecutive failed health checks.",
            f64::from(h.failing_streak),
        );
    }
    p.finish()
}
