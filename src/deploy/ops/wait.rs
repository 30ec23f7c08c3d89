//! Waiting for the services' deployments after apply.

use std::time::{Duration, Instant};

use crate::aws::describe;
use crate::deploy::engine::error::{failed, DeployError, Result};
use crate::deploy::engine::{Aws, Node};
use crate::deploy::resources::Spec;

/// Wait for each service's deployment: done when the primary deployment completes;
/// fails fast, with the stopped tasks' reasons, when the circuit breaker rolls back.
pub async fn wait(aws: &Aws, nodes: &[Node<Spec>], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let services = nodes.iter().filter_map(|n| match &n.spec {
        Spec::Service(s) => Some((s.cluster.clone(), s.service_name.clone())),
        _ => None,
    });
    for (cluster, name) in services {
        loop {
            let out = aws
                .ecs
                .describe_services()
                .cluster(&cluster)
                .services(&name)
                .send()
                .await
                .map_err(failed("ECS DescribeServices", &name))?;
            let Some(cur) = out.services().first() else {
                return Err(DeployError::Unexpected {
                    call: "ECS DescribeServices",
                    what: format!("no service {name} right after apply made it"),
                });
            };
            let primary = cur
                .deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"));
            let state = primary
                .and_then(|d| d.rollout_state())
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default();
            eprintln!(
                "  {name}: {state:<12} desired {} running {} pending {}",
                cur.desired_count(),
                cur.running_count(),
                cur.pending_count()
            );
            match state.as_str() {
                "COMPLETED" => break,
                "FAILED" => {
                    let reasons = stopped_reasons(aws, &cluster, &name).await;
                    return Err(DeployError::RolledBack {
                        service: name,
                        reasons: reasons.join("; "),
                    });
                }
                _ => {}
            }
            if Instant::now() > deadline {
                return Err(DeployError::TimedOut {
                    what: format!("deployment of {name}"),
                    secs: timeout.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
    Ok(())
}

async fn stopped_reasons(aws: &Aws, cluster: &str, service: &str) -> Vec<String> {
    let Ok(list) = aws
        .ecs
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
    else {
        return vec!["(stopped tasks unavailable)".into()];
    };
    if list.task_arns().is_empty() {
        return vec!["(no stopped task)".into()];
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
            .map(|t| t.stopped_reason().unwrap_or("?").to_owned())
            .collect(),
        Err(e) => vec![describe(&e)],
    }
}
