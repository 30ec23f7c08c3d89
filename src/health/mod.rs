//! Health: the check kinds ([`check`]) and the ECS/Docker state machine that turns
//! check results into `starting` / `healthy` / `unhealthy`, with interval, timeout,
//! start period and retries exactly as those define them.

pub mod check;
pub mod runner;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::HealthOptions;
use check::Check;

/// The health of the worker, as Docker and ECS name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Starting,
    Healthy,
    Unhealthy,
}

/// The longest check output kept for `/status` (bytes).
pub const OUTPUT_LIMIT: usize = 4096;

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    /// What the check printed, or why it failed (at most [`OUTPUT_LIMIT`] bytes).
    pub output: String,
}

/// What `/status` shows of the health.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: Status,
    pub failing_streak: u32,
    pub checks: u64,
    pub last_output: String,
    /// When the last check ended.
    #[serde(skip)]
    pub last_check: Option<Instant>,
}

/// The state machine: feed it each check's outcome, it says what changed.
#[derive(Debug)]
pub struct Machine {
    retries: u32,
    start_period: Duration,
    /// When the current worker started (start period is counted from here).
    since: Instant,
    status: Status,
    streak: u32,
    checks: u64,
    last_output: String,
    last_check: Option<Instant>,
}

/// A change of status worth acting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    BecameHealthy,
    BecameUnhealthy,
}

impl Machine {
    pub fn new(retries: u32, start_period: Duration, since: Instant) -> Machine {
        Machine {
            retries: retries.max(1),
            start_period,
            since,
            status: Status::Starting,
            streak: 0,
            checks: 0,
            last_output: String::new(),
            last_check: None,
        }
    }

    /// A new worker started: back to `starting`, with a fresh start period.
    pub fn reset(&mut self, since: Instant) {
        self.since = since;
        self.status = Status::Starting;
        self.streak = 0;
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// Record one outcome that ended at `now`.
    pub fn record(&mut self, outcome: Outcome, now: Instant) -> Transition {
        self.checks += 1;
        self.last_output = outcome.output;
        self.last_check = Some(now);
        if outcome.ok {
            self.streak = 0;
            let was = self.status;
            self.status = Status::Healthy;
            return if was == Status::Healthy {
                Transition::None
            } else {
                Transition::BecameHealthy
            };
        }
        // Docker: failures during the start period don't count, until the first
        // success ends the start period early.
        let in_start_period =
            self.status == Status::Starting && now.duration_since(self.since) < self.start_period;
        if in_start_period {
            return Transition::None;
        }
        self.streak += 1;
        if self.streak >= self.retries && self.status != Status::Unhealthy {
            self.status = Status::Unhealthy;
            return Transition::BecameUnhealthy;
        }
        Transition::None
    }

    pub fn report(&self) -> Report {
        Report {
            status: self.status,
            failing_streak: self.streak,
            checks: self.checks,
            last_output: self.last_output.clone(),
            last_check: self.last_check,
        }
    }
}

/// The configured check, if any, with its timing.
#[derive(Debug, Clone)]
pub struct Config {
    pub check: Check,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u32,
}

impl Config {
    /// `None` when no check is configured.
    pub fn from_options(o: &HealthOptions) -> Option<Config> {
        let check = if let Some(cmd) = &o.health_cmd {
            Check::Command(cmd.clone())
        } else if let Some(url) = &o.health_http {
            Check::Http(url.clone())
        } else if let Some(addr) = &o.health_tcp {
            Check::Tcp(addr.clone())
        } else {
            return None;
        };
        Some(Config {
            check,
            interval: o.health_interval,
            timeout: o.health_timeout,
            start_period: o.health_start_period,
            retries: o.health_retries,
        })
    }
}

/// Cut `s` to at most `limit` bytes, on a character boundary, keeping the end (the
/// most recent output is the most useful).
pub fn truncate_keep_end(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_owned();
    }
    let mut start = s.len() - limit;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Outcome {
        Outcome {
            ok: true,
            output: "ok".into(),
        }
    }
    fn bad() -> Outcome {
        Outcome {
            ok: false,
            output: "bad".into(),
        }
    }

    #[test]
    fn retries_consecutive_failures_make_unhealthy() {
        let t0 = Instant::now();
        let mut m = Machine::new(3, Duration::ZERO, t0);
        assert_eq!(m.status(), Status::Starting);
        assert_eq!(m.record(bad(), t0), Transition::None);
        assert_eq!(m.record(bad(), t0), Transition::None);
        assert_eq!(m.record(bad(), t0), Transition::BecameUnhealthy);
        assert_eq!(m.record(bad(), t0), Transition::None);
        assert_eq!(m.record(ok(), t0), Transition::BecameHealthy);
        assert_eq!(m.record(bad(), t0), Transition::None);
        assert_eq!(m.status(), Status::Healthy);
    }

    #[test]
    fn start_period_failures_do_not_count_until_a_success() {
        let t0 = Instant::now();
        let mut m = Machine::new(1, Duration::from_secs(10), t0);
        for _ in 0..5 {
            assert_eq!(
                m.record(bad(), t0 + Duration::from_secs(1)),
                Transition::None
            );
        }
        assert_eq!(m.status(), Status::Starting);
        // A success inside the start period makes it healthy, and then failures count.
        assert_eq!(
            m.record(ok(), t0 + Duration::from_secs(2)),
            Transition::BecameHealthy
        );
        assert_eq!(
            m.record(bad(), t0 + Duration::from_secs(3)),
            Transition::BecameUnhealthy
        );
    }

    #[test]
    fn failures_after_the_start_period_count() {
        let t0 = Instant::now();
        let mut m = Machine::new(2, Duration::from_secs(1), t0);
        assert_eq!(
            m.record(bad(), t0 + Duration::from_millis(500)),
            Transition::None
        );
        assert_eq!(
            m.record(bad(), t0 + Duration::from_secs(2)),
            Transition::None
        );
        assert_eq!(
            m.record(bad(), t0 + Duration::from_secs(3)),
            Transition::BecameUnhealthy
        );
    }

    #[test]
    fn reset_starts_over() {
        let t0 = Instant::now();
        let mut m = Machine::new(1, Duration::ZERO, t0);
        m.record(bad(), t0);
        assert_eq!(m.status(), Status::Unhealthy);
        m.reset(t0);
        assert_eq!(m.status(), Status::Starting);
    }

    #[test]
    fn truncation_keeps_the_end_on_char_boundaries() {
        assert_eq!(truncate_keep_end("abcdef", 3), "def");
        assert_eq!(truncate_keep_end("ééé", 3), "é");
        assert_eq!(truncate_keep_end("ab", 3), "ab");
    }
}
