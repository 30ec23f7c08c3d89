//! `logs`: a resource's CloudWatch Logs events.

use std::time::Duration;

use crate::deploy::engine::error::{failed, DeployError, Result};
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

/// A usage error unless `resource` is a service or job of the stack.
pub fn has_logs(stack: &Stack, resource: &str) -> Result<()> {
    match stack.resources.get(resource) {
        Some(r) if r.container().is_some() => {}
        Some(r) => {
            return Err(DeployError::Usage(format!(
                "'{resource}' is a {}: it has no logs",
                r.kind()
            )))
        }
        None => {
            let names: Vec<&String> = stack
                .resources
                .iter()
                .filter(|(_, r)| r.container().is_some())
                .map(|(n, _)| n)
                .collect();
            return Err(DeployError::Usage(format!(
                "no resource named '{resource}' (with logs: {names:?})"
            )));
        }
    }
    Ok(())
}

/// `logs`: the resource's CloudWatch Logs events since `since_secs` ago, oldest first;
/// with `follow`, keep printing new ones until interrupted.
pub async fn logs(
    aws: &Aws,
    stack: &Stack,
    resource: &str,
    since_secs: i64,
    follow: bool,
) -> Result<()> {
    has_logs(stack, resource)?;
    let group = naming::log_group(&stack.stack, resource);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut start = now_ms - since_secs * 1000;
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
            return Ok(());
        }
        start = newest;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
