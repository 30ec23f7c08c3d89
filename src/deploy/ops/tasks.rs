//! `tasks RESOURCE [--stopped]`: a resource's running tasks (id, revision, started,
//! health, capacity, scale-in protection) or those ECS still remembers as stopped
//! (why, and each container's exit code).

use std::collections::BTreeMap;

use aws_sdk_ecs::types as t;
use serde::Serialize;

use super::verbs::Output;
use super::{connect, runnable, task_id, Runs};
use crate::deploy::engine::error::{exit, failed, Result};
use crate::deploy::engine::{Aws, Ctx};
use crate::deploy::naming;
use crate::deploy::stack::{Resource, Stack};

/// DescribeTasks takes up to 100 tasks a call; GetTaskProtection up to 10 (ECS API
/// reference, DescribeTasks: tasks; GetTaskProtection: tasks).
const DESCRIBE_BATCH: usize = 100;
const PROTECTION_BATCH: usize = 10;

/// One task as `tasks` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskLine {
    pub id: String,
    pub arn: String,
    pub revision: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    pub health: String,
    pub capacity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    /// Container → exit code and reason (stopped tasks).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub containers: BTreeMap<String, ContainerEnd>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerEnd {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The ARNs of a resource's tasks (running, or stopped), every page read: a
/// service's by its name, a job's by its family (scheduled runs and `run`'s alike).
pub async fn list(ctx: &Ctx, stack: &Stack, name: &str, stopped: bool) -> Result<Vec<String>> {
    let family = naming::family(&stack.stack, name);
    let mut req = ctx
        .aws
        .ecs
        .list_tasks()
        .cluster(&stack.cluster)
        .desired_status(if stopped {
            t::DesiredStatus::Stopped
        } else {
            t::DesiredStatus::Running
        });
    req = match stack.resources.get(name) {
        Some(Resource::WorkerService(_)) => req.service_name(&family),
        _ => req.family(&family),
    };
    let mut pages = req.into_paginator().send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            // No cluster yet: no task.
            Err(e) if crate::deploy::engine::error::code_of(&e) == "ClusterNotFoundException" => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(failed("ECS ListTasks", &family)(e)),
        };
        arns.extend(page.task_arns().iter().cloned());
    }
    Ok(arns)
}

/// The tasks, described (a hundred a call), in the order asked.
pub async fn describe(ctx: &Ctx, cluster: &str, arns: &[String]) -> Result<Vec<t::Task>> {
    let mut out = Vec::new();
    for chunk in arns.chunks(DESCRIBE_BATCH) {
        let page = ctx
            .aws
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(failed("ECS DescribeTasks", cluster))?;
        out.extend(page.tasks().iter().cloned());
    }
    Ok(out)
}

/// Scale-in protection of a service's tasks, ten a call: ARN → whether on, and until
/// when.
pub async fn protection(
    aws: &Aws,
    cluster: &str,
    arns: &[String],
) -> Result<BTreeMap<String, (bool, Option<String>)>> {
    let mut out = BTreeMap::new();
    for chunk in arns.chunks(PROTECTION_BATCH) {
        let page = aws
            .ecs
            .get_task_protection()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(failed("ECS GetTaskProtection", cluster))?;
        for p in page.protected_tasks() {
            if let Some(arn) = p.task_arn() {
                let until = when(p.expiration_date());
                out.insert(arn.to_owned(), (p.protection_enabled(), until));
            }
        }
    }
    Ok(out)
}

fn when(d: Option<&aws_smithy_types::DateTime>) -> Option<String> {
    d.and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
}

fn line(task: &t::Task, protected: Option<bool>) -> TaskLine {
    let arn = task.task_arn().unwrap_or_default().to_owned();
    let containers = task
        .containers()
        .iter()
        .filter(|c| c.exit_code().is_some() || c.reason().is_some())
        .map(|c| {
            (
                c.name().unwrap_or_default().to_owned(),
                ContainerEnd {
                    exit_code: c.exit_code(),
                    reason: c.reason().map(str::to_owned),
                },
            )
        })
        .collect();
    TaskLine {
        id: task_id(&arn).to_owned(),
        revision: task
            .task_definition_arn()
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or_default()
            .to_owned(),
        arn,
        status: task.last_status().unwrap_or("UNKNOWN").to_owned(),
        started_at: when(task.started_at()),
        stopped_at: when(task.stopped_at()),
        health: task
            .health_status()
            .map(|h| h.as_str().to_owned())
            .unwrap_or_else(|| "UNKNOWN".into()),
        capacity: task
            .capacity_provider_name()
            .map(str::to_owned)
            .or_else(|| task.launch_type().map(|l| l.as_str().to_owned()))
            .unwrap_or_else(|| "-".into()),
        protected,
        stopped_reason: task.stopped_reason().map(str::to_owned),
        stop_code: task.stop_code().map(|c| c.as_str().to_owned()),
        containers,
    }
}

/// `tasks`: print the resource's tasks.
pub async fn tasks(stack: &Stack, name: &str, stopped: bool, output: Output) -> Result<u8> {
    let res = runnable(stack, name, Runs::Any)?;
    let ctx = connect(stack).await?;
    // The stack's own, deployed: refused otherwise.
    super::current_task_definition(&ctx, stack, name).await?;
    let arns = list(&ctx, stack, name, stopped).await?;
    let described = describe(&ctx, &stack.cluster, &arns).await?;
    let protected = if matches!(res, Resource::WorkerService(_)) && !stopped && !arns.is_empty() {
        protection(&ctx.aws, &stack.cluster, &arns).await?
    } else {
        BTreeMap::new()
    };
    let lines: Vec<TaskLine> = described
        .iter()
        .map(|t| line(t, t.task_arn().and_then(|a| protected.get(a)).map(|p| p.0)))
        .collect();
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&lines).unwrap_or_default()
        ),
        Output::Text => print!("{}", text(name, &lines, stopped)),
    }
    Ok(exit::OK)
}

/// The listing for people: one line a task; for stopped ones, why and how each
/// container ended on the next.
pub fn text(name: &str, lines: &[TaskLine], stopped: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if lines.is_empty() {
        let _ = writeln!(
            out,
            "{name}: no {} task",
            if stopped { "stopped" } else { "running" }
        );
        return out;
    }
    for l in lines {
        let at = if stopped {
            &l.stopped_at
        } else {
            &l.started_at
        };
        let _ = write!(
            out,
            "{}  {}  {}  {}  health {}  {}",
            l.id,
            l.revision,
            l.status,
            at.as_deref().unwrap_or("-"),
            l.health,
            l.capacity
        );
        match l.protected {
            Some(true) => out.push_str("  protected"),
            Some(false) => out.push_str("  unprotected"),
            None => {}
        }
        out.push('\n');
        if stopped {
            let _ = writeln!(
                out,
                "    stopped: {}{}",
                l.stopped_reason.as_deref().unwrap_or("no reason given"),
                l.stop_code
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            );
            for (c, end) in &l.containers {
                let _ = writeln!(
                    out,
                    "    {c}: exit {}{}",
                    end.exit_code
                        .map_or_else(|| "none (it did not run)".into(), |c| c.to_string()),
                    end.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                );
            }
        }
    }
    out
}
