//! `logs`: a resource's CloudWatch Logs events.

use std::time::Duration;

use crate::deploy::engine::error::{failed, Result};
use crate::deploy::engine::Aws;
use crate::deploy::naming;
use crate::deploy::stack::Stack;

/// Parse `10m`, `2h`, `30s`, `1d` into seconds.
pub fn parse_since(s: &str) -> std::result::Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 30s, 10m, 2h or 1d"))?;
    let mult = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("'{s}': unit '{unit}' is not s, m, h or d")),
    };
    Ok(n * mult)
}

/// `600` → `10m`.
pub fn human(secs: i64) -> String {
    match secs {
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `logs`: the resource's CloudWatch Logs events since `since_secs` ago, oldest first;
/// with `follow`, keep printing new ones until interrupted.
/// What of the log group `logs` prints.
#[derive(Debug, Clone, Copy, Default)]
pub struct Only<'a> {
    /// One task's stream (its id).
    pub task: Option<&'a str>,
    /// A CloudWatch Logs filter pattern.
    pub filter: Option<&'a str>,
}

pub async fn logs(
    aws: &Aws,
    stack: &Stack,
    resource: &str,
    since_secs: i64,
    follow: bool,
    only: Only<'_>,
) -> Result<()> {
    let group = naming::log_group(&stack.stack, resource);
    let mut start = super::runs::now_ms() - since_secs * 1000;
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        let mut token: Option<String> = None;
        let mut newest = start;
        loop {
            let out = aws
                .logs
                .filter_log_events()
                .log_group_name(&group)
                .start_time(start)
                // The awslogs driver's stream of one task: PREFIX/CONTAINER/TASK-ID.
                .set_log_stream_names(only.task.map(|t| vec![format!("{resource}/app/{t}")]))
                .set_filter_pattern(only.filter.map(str::to_owned))
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(failed("Logs FilterLogEvents", &group))?;
            for e in out.events() {
                let id = e.event_id().unwrap_or_default().to_owned();
                if !seen.insert(id) {
                    continue;
                }
                let ts = e.timestamp().unwrap_or(0);
                newest = newest.max(ts);
                let stream = e
                    .log_stream_name()
                    .unwrap_or("")
                    .rsplit('/')
                    .next()
                    .unwrap_or("");
                println!(
                    "{} {stream} {}",
                    aws_smithy_types::DateTime::from_millis(ts),
                    e.message().unwrap_or("").trim_end()
                );
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        if !follow {
            if seen.is_empty() {
                eprintln!(
                    "logs: nothing from {resource} in the last {}{}{} (--since AGE reaches further back)",
                    human(since_secs),
                    only.task.map(|t| format!(" of task {t}")).unwrap_or_default(),
                    only.filter.map(|f| format!(" matching {f:?}")).unwrap_or_default(),
                );
            }
            return Ok(());
        }
        start = newest;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
