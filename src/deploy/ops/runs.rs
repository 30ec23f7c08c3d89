//! `runs JOB [--since AGE]`: a job's run history, from bosun's run-summary lines in the
//! job's log group (kept as long as its retention, not the hour ECS remembers stopped
//! tasks), and the runs that never started (their container never ran, so no bosun
//! wrote a line), from ECS's stopped tasks while it has them.

use serde::Serialize;

use super::verbs::Output;
use super::{connect, runnable, task_id, Runs};
use crate::deploy::engine::error::{exit, failed, Result};
use crate::deploy::engine::{Aws, Ctx};
use crate::deploy::naming;
use crate::deploy::stack::{Resource, Stack};

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunLine {
    /// When it started (ISO 8601, UTC).
    pub started_at: String,
    /// How long it ran, in seconds (none for a run that never started).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
    /// `succeeded`, `failed`, `skipped`, or `not-started`.
    pub outcome: String,
    /// Why it ended: bosun's reason (`exit`, `signal`, `time-limit`,
    /// `out-of-memory`, `unhealthy`, `stopped`, `not-started`, `skipped`), or for a run
    /// that never started, ECS's stopped reason.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

/// A run-summary line's event (its JSON message and when CloudWatch Logs took it) as
/// a run; `None` for any other line.
pub fn from_event(message: &str, timestamp_ms: i64, stream: &str) -> Option<RunLine> {
    let v: serde_json::Value = serde_json::from_str(message.trim()).ok()?;
    if v["message"] != "run ended" {
        return None;
    }
    let duration = v["duration_secs"].as_f64();
    let ended_ms = timestamp_ms;
    let started_ms = ended_ms - (duration.unwrap_or(0.0) * 1000.0) as i64;
    // The task id: the line's own, else the awslogs stream's last part
    // (PREFIX/CONTAINER/TASK-ID).
    let task = v["task_id"].as_str().map(str::to_owned).or_else(|| {
        stream
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    });
    Some(RunLine {
        started_at: iso_ms(started_ms),
        duration_secs: duration,
        outcome: v["outcome"].as_str().unwrap_or("unknown").to_owned(),
        reason: v["reason"].as_str().unwrap_or("unknown").to_owned(),
        exit_code: v["exit_code"].as_i64(),
        signal: v["signal"].as_str().map(str::to_owned),
        restarts: v["restarts"].as_u64(),
        task_id: task,
    })
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn iso_ms(ms: i64) -> String {
    aws_smithy_types::DateTime::from_millis(ms)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// The run-summary lines of the job's log group since `start_ms`, every page read.
pub async fn from_logs(aws: &Aws, stack: &Stack, job: &str, start_ms: i64) -> Result<Vec<RunLine>> {
    let group = naming::log_group(&stack.stack, job);
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = aws
            .logs
            .filter_log_events()
            .log_group_name(&group)
            .start_time(start_ms)
            // CloudWatch Logs JSON filter patterns match on a JSON event's fields
            // (CloudWatch Logs User Guide, "Filter pattern syntax": JSON log events).
            .filter_pattern(r#"{ $.message = "run ended" }"#)
            .set_next_token(token.take())
            .send()
            .await;
        let page = match page {
            Ok(p) => p,
            // No log group yet: no run yet.
            Err(e) if crate::deploy::engine::error::code_of(&e) == "ResourceNotFoundException" => {
                return Ok(out)
            }
            Err(e) => return Err(failed("Logs FilterLogEvents", &group)(e)),
        };
        out.extend(page.events().iter().filter_map(|e| {
            from_event(
                e.message()?,
                e.timestamp()?,
                e.log_stream_name().unwrap_or_default(),
            )
        }));
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(out)
}

/// The job's stopped tasks whose container never ran (no exit code): runs that never
/// started, with ECS's reason.
async fn never_started(ctx: &Ctx, stack: &Stack, job: &str, start_ms: i64) -> Result<Vec<RunLine>> {
    let arns = super::tasks::list(ctx, stack, job, true).await?;
    let tasks = super::tasks::describe(ctx, &stack.cluster, &arns).await?;
    Ok(tasks
        .iter()
        .filter(|t| t.containers().iter().all(|c| c.exit_code().is_none()))
        .filter_map(|t| {
            let at = t.created_at().or(t.stopped_at())?;
            let ms = at.to_millis().ok()?;
            (ms >= start_ms).then(|| RunLine {
                started_at: iso_ms(ms),
                duration_secs: None,
                outcome: "not-started".into(),
                reason: t
                    .stopped_reason()
                    .or_else(|| t.containers().iter().find_map(|c| c.reason()))
                    .unwrap_or("stopped before its container ran")
                    .to_owned(),
                exit_code: None,
                signal: None,
                restarts: None,
                task_id: t.task_arn().map(|a| task_id(a).to_owned()),
            })
        })
        .collect())
}

/// Both sources, oldest first; a task both list (bosun wrote a line, so it started)
/// shows once.
pub async fn history(ctx: &Ctx, stack: &Stack, job: &str, since_secs: i64) -> Result<Vec<RunLine>> {
    let start_ms = now_ms() - since_secs * 1000;
    let (logged, unstarted) = futures_util::join!(
        from_logs(&ctx.aws, stack, job, start_ms),
        never_started(ctx, stack, job, start_ms)
    );
    let mut runs = logged?;
    for u in unstarted? {
        if !runs
            .iter()
            .any(|r| r.task_id.is_some() && r.task_id == u.task_id)
        {
            runs.push(u);
        }
    }
    runs.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    Ok(runs)
}

/// `runs`: print the job's runs.
pub async fn runs(stack: &Stack, job: &str, since_secs: i64, output: Output) -> Result<u8> {
    let res = runnable(stack, job, Runs::Any)?;
    if !matches!(res, Resource::ScheduledJob(_)) {
        return Err(crate::deploy::engine::error::DeployError::Usage(format!(
            "'{job}' is a {}: runs takes a scheduled-job (a service's tasks: `bosun-deploy tasks {job} --stopped`)",
            res.kind()
        )));
    }
    let ctx = connect(stack).await?;
    let runs = history(&ctx, stack, job, since_secs).await?;
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&runs).unwrap_or_default()
        ),
        Output::Text => print!("{}", text(job, &runs, since_secs)),
    }
    Ok(exit::OK)
}

/// The history for people: a line a run.
pub fn text(job: &str, runs: &[RunLine], since_secs: i64) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if runs.is_empty() {
        let _ = writeln!(
            out,
            "{job}: no run in the last {} (--since AGE reaches further back)",
            super::logs::human(since_secs)
        );
        return out;
    }
    for r in runs {
        let _ = write!(
            out,
            "{}  {:<11}  {}",
            r.started_at,
            r.outcome,
            r.duration_secs
                .map_or_else(|| "-".to_owned(), |d| format!("{d:.1}s"))
        );
        if let Some(c) = r.exit_code {
            let _ = write!(out, "  exit {c}");
        }
        if let Some(s) = &r.signal {
            let _ = write!(out, " ({s})");
        }
        let _ = write!(out, "  {}", r.reason);
        if let Some(n) = r.restarts.filter(|n| *n > 0) {
            let _ = write!(out, "  {n} retries");
        }
        if let Some(t) = &r.task_id {
            let _ = write!(out, "  task {t}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_become_runs() {
        let line = r#"{"duration_secs":12.5,"exit_code":3,"level":"INFO","message":"run ended","outcome":"failed","reason":"exit","restarts":2,"timestamp":"2026-12-07T03:00:12.500000Z"}"#;
        let r = from_event(line, 1_796_612_412_500, "nightly/app/abc123").unwrap();
        assert_eq!(r.outcome, "failed");
        assert_eq!(r.exit_code, Some(3));
        assert_eq!(r.restarts, Some(2));
        assert_eq!(r.task_id.as_deref(), Some("abc123"));
        assert_eq!(r.started_at, "2026-12-07T03:00:00Z");
        assert!(from_event(r#"{"message":"worker started"}"#, 0, "").is_none());
        assert!(from_event("plain text", 0, "").is_none());
        let t = text("nightly", &[r], 86_400);
        assert!(
            t.contains("failed") && t.contains("exit 3") && t.contains("2 retries"),
            "{t}"
        );
    }
}
