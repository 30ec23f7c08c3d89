//! Waiting for the services' deployments after apply: a line when a service's state
//! changes (not the same line every poll), ECS's service events and the stopped tasks'
//! reasons as they come, and a summary when the wait ends.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::aws::describe;
use crate::deploy::engine::error::{failed, DeployError, Result};
use crate::deploy::engine::{Aws, Node};
use crate::deploy::resources::Spec;

/// How often a deployment is read: ECS's own state changes take seconds.
const POLL: Duration = Duration::from_secs(5);

/// What one service's wait has shown already.
#[derive(Default)]
struct Seen {
    line: String,
    events: BTreeSet<String>,
    stopped: BTreeSet<String>,
}

/// Wait for each service's deployment: done when the primary deployment completes;
/// fails fast, with the stopped tasks' reasons, when the circuit breaker rolls back;
/// [`DeployError::TimedOut`] (exit 6) past `timeout`.
pub async fn wait(aws: &Aws, nodes: &[Node<Spec>], timeout: Duration) -> Result<()> {
    let services: Vec<(String, String)> = nodes
        .iter()
        .filter_map(|n| match &n.spec {
            Spec::Service(s) => Some((s.cluster.clone(), s.service_name.clone())),
            _ => None,
        })
        .collect();
    wait_services(aws, &services, timeout).await
}

/// [`wait`] for these services (cluster, name).
pub async fn wait_services(
    aws: &Aws,
    services: &[(String, String)],
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut summary = Vec::new();
    for (cluster, name) in services {
        let mut seen = Seen::default();
        // Events from before this wait are not this deployment's.
        let since = aws_smithy_types::DateTime::from(std::time::SystemTime::now())
            .secs()
            .saturating_sub(60);
        loop {
            let out = aws
                .ecs
                .describe_services()
                .cluster(cluster)
                .services(name)
                .send()
                .await
                .map_err(failed("ECS DescribeServices", name))?;
            let Some(cur) = out.services().first() else {
                return Err(DeployError::Unexpected {
                    call: "ECS DescribeServices",
                    what: format!("no service {name} right after apply made it"),
                });
            };
            let state = cur
                .deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
                .and_then(|d| d.rollout_state())
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default();
            let line = format!(
                "  {name}: {state} desired {} running {} pending {}",
                cur.desired_count(),
                cur.running_count(),
                cur.pending_count()
            );
            if line != seen.line {
                eprintln!("{line}");
                seen.line = line;
            }
            // ECS lists its events newest first.
            let mut fresh: Vec<&aws_sdk_ecs::types::ServiceEvent> = cur
                .events()
                .iter()
                .filter(|e| e.created_at().is_none_or(|t| t.secs() >= since))
                .filter(|e| !seen.events.contains(e.id().unwrap_or_default()))
                .collect();
            fresh.reverse();
            for e in fresh {
                seen.events.insert(e.id().unwrap_or_default().to_owned());
                eprintln!("  {name}: event: {}", e.message().unwrap_or_default());
            }
            for (task, reason) in stopped(aws, cluster, name).await {
                if seen.stopped.insert(task.clone()) {
                    eprintln!("  {name}: task {task} stopped: {reason}");
                }
            }
            match state.as_str() {
                "COMPLETED" => {
                    summary.push(format!(
                        "{name} deployed in {:.0}s (running {})",
                        started.elapsed().as_secs_f64(),
                        cur.running_count()
                    ));
                    break;
                }
                "FAILED" => {
                    let reasons: Vec<String> = stopped(aws, cluster, name)
                        .await
                        .into_iter()
                        .map(|(_, r)| r)
                        .collect();
                    return Err(DeployError::RolledBack {
                        service: name.clone(),
                        reasons: if reasons.is_empty() {
                            "(no stopped task)".into()
                        } else {
                            reasons.join("; ")
                        },
                    });
                }
                _ => {}
            }
            if Instant::now() > deadline {
                // A task protected from scale-in is not stopped by a deployment until
                // its protection ends (ECS Developer Guide, "Protect your Amazon ECS
                // tasks from being terminated by scale-in events"): name them.
                let held = protected(aws, cluster, name).await;
                return Err(DeployError::TimedOut {
                    what: if held.is_empty() {
                        format!("deployment of {name}")
                    } else {
                        format!(
                            "deployment of {name} (tasks protected from scale-in hold it: {})",
                            held.join(", ")
                        )
                    },
                    secs: timeout.as_secs(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
    if !summary.is_empty() {
        eprintln!("{}", summary.join("; "));
    }
    Ok(())
}

/// The service's running tasks that hold scale-in protection (`ID until TIME`); none
/// when they cannot be read (this is for the reader of a timeout).
async fn protected(aws: &Aws, cluster: &str, service: &str) -> Vec<String> {
    let Ok(list) = aws
        .ecs
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
        .send()
        .await
    else {
        return Vec::new();
    };
    let held = super::tasks::protection(aws, cluster, list.task_arns())
        .await
        .unwrap_or_default();
    held.into_iter()
        .filter(|(_, (on, _))| *on)
        .map(|(arn, (_, until))| {
            format!(
                "{} until {}",
                super::task_id(&arn),
                until.as_deref().unwrap_or("?")
            )
        })
        .collect()
}

/// The service's stopped tasks (id, why ECS stopped it); a read that fails says so
/// in place of a reason (the wait goes on: the reasons are for the reader).
async fn stopped(aws: &Aws, cluster: &str, service: &str) -> Vec<(String, String)> {
    let list = match aws
        .ecs
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
    {
        Ok(list) => list,
        Err(e) => {
            return vec![(
                "?".into(),
                format!("(stopped tasks unavailable: {})", describe(&e)),
            )]
        }
    };
    if list.task_arns().is_empty() {
        return Vec::new();
    }
    match aws
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(list.task_arns().to_vec()))
        .send()
        .await
    {
        Ok(out) => out
            .tasks()
            .iter()
            .map(|t| {
                let id = t
                    .task_arn()
                    .and_then(|a| a.rsplit('/').next())
                    .unwrap_or("?")
                    .to_owned();
                let mut why = t.stopped_reason().unwrap_or("?").to_owned();
                // The container's own exit and reason, where ECS gives them.
                for c in t.containers() {
                    if let Some(code) = c.exit_code() {
                        why.push_str(&format!("; {} exited {code}", c.name().unwrap_or("?")));
                    }
                    if let Some(r) = c.reason() {
                        why.push_str(&format!("; {}: {r}", c.name().unwrap_or("?")));
                    }
                }
                (id, why)
            })
            .collect(),
        Err(e) => vec![("?".into(), describe(&e))],
    }
}
