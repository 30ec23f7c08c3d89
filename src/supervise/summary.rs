//! The run-summary line: at the worker's end bosun writes one line on stderr saying how
//! the run went. Its fields are a contract (the deployer's `runs` and a job's alerts
//! read them from the task's log group), so it is written here, by hand, in one
//! `write`, whatever `BOSUN_LOG` filters: never through the log formatter.
//!
//! JSON (`--log-format json`), one object:
//! `{"timestamp":"2026-12-07T03:00:00.000000Z","level":"INFO","message":"run ended",
//! "outcome":"failed","reason":"exit","exit_code":3,"duration_secs":12.503,
//! "restarts":2,"task_id":"158d1c8083dd49d6b527399fd6414f5c"}`; `signal` (a name such as
//! `SIGKILL`) when the worker died of one, `task_id` when bosun runs in an ECS task.
//! Text: the same fields as `key=value` after `INFO run ended`.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::LogFormat;

use super::signals;
use super::status::Exit;

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The worker exited on its own (any code).
    Exit,
    /// The worker died of a signal bosun did not send.
    Signal,
    /// `--max-runtime` ran out (exit 124).
    TimeLimit,
    /// The health check found the worker unhealthy and bosun stopped it (exit 1).
    Unhealthy,
    /// bosun was asked to stop (SIGTERM from ECS: StopTask, a deployment, scale-in).
    Stopped,
    /// The kernel's OOM killer ended the worker (SIGKILL, and the cgroup counted it).
    OutOfMemory,
    /// The command could not be started (exit 126 or 127).
    NotStarted,
    /// `--singleton`: an earlier run was still going, so this one did not start.
    Skipped,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Exit => "exit",
            Reason::Signal => "signal",
            Reason::TimeLimit => "time-limit",
            Reason::Unhealthy => "unhealthy",
            Reason::Stopped => "stopped",
            Reason::OutOfMemory => "out-of-memory",
            Reason::NotStarted => "not-started",
            Reason::Skipped => "skipped",
        }
    }
}

/// How a run went: what the summary line says.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// bosun's own exit code.
    pub exit_code: u8,
    pub reason: Reason,
    /// The signal the worker died of, if it did.
    pub signal: Option<i32>,
    /// From the first start of the worker to its last end.
    pub duration: Duration,
    /// Restarts by the restart policy.
    pub restarts: u64,
}

impl RunEnd {
    /// `succeeded` (exit 0), `failed`, or `skipped`.
    pub fn outcome(&self) -> &'static str {
        match (self.reason, self.exit_code) {
            (Reason::Skipped, _) => "skipped",
            (_, 0) => "succeeded",
            _ => "failed",
        }
    }

    /// The run's end as bosun saw it: its exit code, how the last worker ended (if it
    /// was started), and what bosun knew of the stop.
    pub fn new(exit_code: u8, last: Option<Exit>, cause: Cause, oom: bool) -> RunEnd {
        let signal = match last {
            Some(Exit::Signal(s)) => Some(s),
            _ => None,
        };
        let reason = match cause {
            Cause::TimeLimit => Reason::TimeLimit,
            Cause::Unhealthy => Reason::Unhealthy,
            Cause::Stopped => Reason::Stopped,
            Cause::Ended => match last {
                Some(Exit::Signal(libc::SIGKILL)) if oom => Reason::OutOfMemory,
                Some(Exit::Signal(_)) => Reason::Signal,
                _ => Reason::Exit,
            },
        };
        RunEnd {
            exit_code,
            reason,
            signal,
            duration: Duration::ZERO,
            restarts: 0,
        }
    }

    /// The line (ending in a newline), at `now`.
    pub fn line(&self, format: LogFormat, task_id: Option<&str>, now: SystemTime) -> String {
        let ts = rfc3339(now);
        let secs = (self.duration.as_secs_f64() * 1000.0).round() / 1000.0;
        let signal = self.signal.map(signals::name);
        match format {
            LogFormat::Json => {
                let mut v = serde_json::json!({
                    "timestamp": ts,
                    "level": "INFO",
                    "message": "run ended",
                    "outcome": self.outcome(),
                    "reason": self.reason.as_str(),
                    "exit_code": self.exit_code,
                    "duration_secs": secs,
                    "restarts": self.restarts,
                });
                if let Some(s) = signal {
                    v["signal"] = s.into();
                }
                if let Some(t) = task_id {
                    v["task_id"] = t.into();
                }
                format!("{v}\n")
            }
            LogFormat::Text => {
                let mut s = format!(
                    "{ts}  INFO run ended outcome={} reason={} exit_code={} duration_secs={secs} restarts={}",
                    self.outcome(),
                    self.reason.as_str(),
                    self.exit_code,
                    self.restarts
                );
                if let Some(sig) = signal {
                    s.push_str(&format!(" signal={sig}"));
                }
                if let Some(t) = task_id {
                    s.push_str(&format!(" task_id={t}"));
                }
                s.push('\n');
                s
            }
        }
    }

    /// Write the line on stderr, in one `write`.
    pub fn write(&self, format: LogFormat, task_id: Option<&str>) {
        let line = self.line(format, task_id, SystemTime::now());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// What bosun knew of why the worker's last run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// It ended on its own.
    Ended,
    TimeLimit,
    Unhealthy,
    /// TERM/INT to bosun.
    Stopped,
}

/// The task id of an ECS task ARN (what follows the last `/`).
pub fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, as bosun's other log lines write time.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::civil::from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let at = |s: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(1_795_521_600), "2026-11-24T12:00:00.000000Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn reasons_and_outcomes() {
        let r = RunEnd::new(0, Some(Exit::Code(0)), Cause::Ended, false);
        assert_eq!((r.reason, r.outcome()), (Reason::Exit, "succeeded"));
        let r = RunEnd::new(3, Some(Exit::Code(3)), Cause::Ended, false);
        assert_eq!((r.reason, r.outcome()), (Reason::Exit, "failed"));
        let r = RunEnd::new(137, Some(Exit::Signal(9)), Cause::Ended, true);
        assert_eq!(r.reason, Reason::OutOfMemory);
        let r = RunEnd::new(137, Some(Exit::Signal(9)), Cause::Ended, false);
        assert_eq!((r.reason, r.signal), (Reason::Signal, Some(9)));
        let r = RunEnd::new(124, Some(Exit::Signal(15)), Cause::TimeLimit, false);
        assert_eq!((r.reason, r.outcome()), (Reason::TimeLimit, "failed"));
    }

    #[test]
    fn json_line_fields() {
        let mut r = RunEnd::new(143, Some(Exit::Signal(15)), Cause::Ended, false);
        r.duration = Duration::from_millis(1500);
        r.restarts = 2;
        let line = r.line(LogFormat::Json, Some("abc"), UNIX_EPOCH);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["message"], "run ended");
        assert_eq!(v["outcome"], "failed");
        assert_eq!(v["reason"], "signal");
        assert_eq!(v["signal"], "SIGTERM");
        assert_eq!(v["exit_code"], 143);
        assert_eq!(v["duration_secs"], 1.5);
        assert_eq!(v["restarts"], 2);
        assert_eq!(v["task_id"], "abc");
        let text = r.line(LogFormat::Text, None, UNIX_EPOCH);
        assert_eq!(text, "1970-01-01T00:00:00.000000Z  INFO run ended outcome=failed reason=signal exit_code=143 duration_secs=1.5 restarts=2 signal=SIGTERM\n");
    }
}
