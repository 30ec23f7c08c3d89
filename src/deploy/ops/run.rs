//! `run RESOURCE`: one task of a worker service's or scheduled job's current task
//! definition, started now in the stack's cluster, network and capacity; its log
//! lines printed as they arrive, and its worker's exit code returned as `run`'s own.

use std::time::{Duration, Instant};

use aws_sdk_ecs::types as t;

use super::lock::Interrupts;
use super::{connect, current_task_definition, runnable, task_id, Runs};
use crate::deploy::components::{self, Target};
use crate::deploy::engine::error::{exit, failed, DeployError, Result};
use crate::deploy::engine::Ctx;
use crate::deploy::naming::{self, STACK_TAG};
use crate::deploy::stack::Stack;

/// How often the task and its log stream are read.
const POLL: Duration = Duration::from_secs(2);

/// The container every task definition of the stack runs (see `components::task`).
pub const CONTAINER: &str = "app";

/// What `run` was asked.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub resource: String,
    /// `--env NAME=VALUE`, in order.
    pub env: Vec<(String, String)>,
    /// `-- COMMAND...`: the container's command in place of its own.
    pub command: Vec<String>,
    /// Wait for the task's end (else print its ARN and return).
    pub wait: bool,
    pub timeout: Duration,
}

/// Parse `--env NAME=VALUE`.
pub fn parse_env(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, v)) if !n.is_empty() => Ok((n.to_owned(), v.to_owned())),
        _ => Err(format!("'{s}' is not NAME=VALUE")),
    }
}

/// `run` in ECS. Exits with the worker's exit code; a task that stopped before its
/// container ran is an error (exit 4) with ECS's reason.
pub async fn run(stack: &Stack, a: &RunArgs) -> Result<u8> {
    let res = runnable(stack, &a.resource, Runs::Any)?;
    let ctr = res
        .container()
        .ok_or_else(|| DeployError::Internal("no container".into()))?;
    // Ctrl-C stops the task: taken over before the first call.
    let interrupts = Interrupts::take()?;
    let ctx = connect(stack).await?;
    let task_definition = current_task_definition(&ctx, stack, &a.resource).await?;
    let target = Target {
        region: ctx.region.clone(),
        account: ctx.account.clone(),
        images: Default::default(),
        image_configs: Default::default(),
        bosun_added: Default::default(),
        secrets: Default::default(),
        network: super::network(&ctx, stack).await?,
        discovery: Default::default(),
    };
    let p = components::placement(stack, &target, &a.resource)
        .ok_or_else(|| DeployError::Internal(format!("no placement for {}", a.resource)))?;
    let arn = start(
        &ctx,
        stack,
        a,
        &task_definition,
        &p,
        ctr.enable_execute_command,
    )
    .await?;
    let id = task_id(&arn).to_owned();
    eprintln!(
        "run: started task {id} of {} in cluster {}",
        task_definition
            .rsplit('/')
            .next()
            .unwrap_or(&task_definition),
        stack.cluster
    );
    if !a.wait {
        println!("{arn}");
        return Ok(exit::OK);
    }
    let follow = follow(&ctx, stack, &a.resource, &arn, a.timeout);
    tokio::select! {
        done = follow => done,
        sig = interrupts.wait() => {
            stop(&ctx, &stack.cluster, &arn, &format!("Stopped by bosun-deploy run ({sig})")).await?;
            eprintln!("run: {sig}: asked ECS to stop task {id} (it gets its stopTimeout to finish)");
            Ok(exit::INTERRUPTED)
        }
    }
}

/// RunTask, one task, as the resource's service or schedule runs it.
async fn start(
    ctx: &Ctx,
    stack: &Stack,
    a: &RunArgs,
    task_definition: &str,
    p: &components::Placement,
    exec: bool,
) -> Result<String> {
    let built = DeployError::request;
    let network = t::NetworkConfiguration::builder()
        .awsvpc_configuration(
            t::AwsVpcConfiguration::builder()
                .set_subnets(Some(p.subnets.clone()))
                .set_security_groups(Some(p.security_groups.clone()))
                .assign_public_ip(t::AssignPublicIp::from(p.assign_public_ip.as_str()))
                .build()
                .map_err(built("network configuration"))?,
        )
        .build();
    let strategy: Vec<t::CapacityProviderStrategyItem> = p
        .strategy
        .iter()
        .map(|(provider, weight, base)| {
            t::CapacityProviderStrategyItem::builder()
                .capacity_provider(provider)
                .weight(*weight)
                .set_base(*base)
                .build()
                .map_err(built("capacity provider strategy"))
        })
        .collect::<Result<_>>()?;
    let mut tags = vec![
        (STACK_TAG.to_owned(), stack.stack.clone()),
        (naming::RESOURCE_TAG.to_owned(), a.resource.clone()),
    ];
    tags.extend(stack.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    let tags: Vec<t::Tag> = tags
        .into_iter()
        .map(|(k, v)| t::Tag::builder().key(k).value(v).build())
        .collect();
    let mut req = ctx
        .aws
        .ecs
        .run_task()
        .cluster(&stack.cluster)
        .task_definition(task_definition)
        .count(1)
        .started_by(naming::RUN_STARTED_BY)
        .network_configuration(network)
        .enable_ecs_managed_tags(true)
        .enable_execute_command(exec)
        .set_tags(Some(tags));
    req = match &p.launch_type {
        Some(l) => req.launch_type(t::LaunchType::from(l.as_str())),
        None => req.set_capacity_provider_strategy(Some(strategy)),
    };
    if !a.env.is_empty() || !a.command.is_empty() {
        let env = a
            .env
            .iter()
            .map(|(n, v)| t::KeyValuePair::builder().name(n).value(v).build())
            .collect::<Vec<_>>();
        let over = t::ContainerOverride::builder()
            .name(CONTAINER)
            .set_command((!a.command.is_empty()).then(|| a.command.clone()))
            .set_environment((!env.is_empty()).then_some(env))
            .build();
        req = req.overrides(t::TaskOverride::builder().container_overrides(over).build());
    }
    let out = req
        .send()
        .await
        .map_err(failed("ECS RunTask", &a.resource))?;
    // RunTask answers a task it could not place (no capacity, a missing provider)
    // in `failures`, not as an error (ECS API reference, RunTask: failures).
    if let Some(task) = out.tasks().first().and_then(|t| t.task_arn()) {
        return Ok(task.to_owned());
    }
    let why: Vec<String> = out
        .failures()
        .iter()
        .map(|f| {
            format!(
                "{}{}",
                f.reason().unwrap_or("no reason given"),
                f.detail().map(|d| format!(" ({d})")).unwrap_or_default()
            )
        })
        .collect();
    Err(DeployError::Refused(format!(
        "ECS started no task of {}: {}",
        a.resource,
        if why.is_empty() {
            "no task and no failure in its answer".to_owned()
        } else {
            why.join("; ")
        }
    )))
}

/// Ask ECS to stop a task.
pub async fn stop(ctx: &Ctx, cluster: &str, arn: &str, reason: &str) -> Result<()> {
    ctx.aws
        .ecs
        .stop_task()
        .cluster(cluster)
        .task(arn)
        .reason(reason)
        .send()
        .await
        .map_err(failed("ECS StopTask", arn))?;
    Ok(())
}

/// Print the task's state changes (stderr) and its log lines (stdout) until it
/// stops; then its worker's exit code.
async fn follow(
    ctx: &Ctx,
    stack: &Stack,
    resource: &str,
    arn: &str,
    timeout: Duration,
) -> Result<u8> {
    let id = task_id(arn).to_owned();
    let group = naming::log_group(&stack.stack, resource);
    // The awslogs driver's stream: PREFIX/CONTAINER/TASK-ID (ECS Developer Guide,
    // "Using the awslogs log driver": awslogs-stream-prefix).
    let stream = format!("{resource}/{CONTAINER}/{id}");
    let mut logs = Stream::new(group, stream);
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let task = describe(ctx, &stack.cluster, arn).await?;
        let status = task.last_status().unwrap_or("UNKNOWN").to_owned();
        if status != last {
            eprintln!("run: task {id}: {status}");
            last = status.clone();
        }
        logs.print_new(ctx).await?;
        if status == "STOPPED" {
            // The last lines reach CloudWatch Logs a moment after the task stops.
            for _ in 0..3 {
                tokio::time::sleep(POLL).await;
                if logs.print_new(ctx).await? == 0 {
                    break;
                }
            }
            return outcome(&task);
        }
        if Instant::now() >= deadline {
            eprintln!(
                "run: task {id} is still {status}: it goes on (bosun-deploy tasks {resource} shows it)"
            );
            return Err(DeployError::TimedOut {
                what: format!("task {id}"),
                secs: timeout.as_secs(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The worker's exit code, or why the task stopped before its container ran.
fn outcome(task: &t::Task) -> Result<u8> {
    let id = task_id(task.task_arn().unwrap_or_default()).to_owned();
    let reason = task.stopped_reason().unwrap_or("no reason given");
    let app = task
        .containers()
        .iter()
        .find(|c| c.name() == Some(CONTAINER));
    match app.and_then(|c| c.exit_code()) {
        Some(code) => {
            eprintln!("run: task {id} stopped ({reason}): the worker exited with {code}");
            Ok(code.clamp(0, 255) as u8)
        }
        None => Err(DeployError::Refused(format!(
            "task {id} stopped before its container ran: {reason}{}",
            app.and_then(|c| c.reason())
                .map(|r| format!(" (container: {r})"))
                .unwrap_or_default()
        ))),
    }
}

/// One task, described.
pub async fn describe(ctx: &Ctx, cluster: &str, arn: &str) -> Result<t::Task> {
    let out = ctx
        .aws
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .tasks(arn)
        .send()
        .await
        .map_err(failed("ECS DescribeTasks", arn))?;
    out.tasks()
        .first()
        .cloned()
        .ok_or_else(|| DeployError::Unexpected {
            call: "ECS DescribeTasks",
            what: format!("no task {arn}"),
        })
}

/// A log stream read forward from its start.
struct Stream {
    group: String,
    name: String,
    token: Option<String>,
}

impl Stream {
    fn new(group: String, name: String) -> Stream {
        Stream {
            group,
            name,
            token: None,
        }
    }

    /// Print what arrived since the last read; how many lines. A stream not made yet
    /// (the task has not started) has none.
    async fn print_new(&mut self, ctx: &Ctx) -> Result<usize> {
        let mut printed = 0;
        loop {
            let out = ctx
                .aws
                .logs
                .get_log_events()
                .log_group_name(&self.group)
                .log_stream_name(&self.name)
                .start_from_head(true)
                .set_next_token(self.token.clone())
                .send()
                .await;
            let out = match out {
                Ok(o) => o,
                Err(e)
                    if crate::deploy::engine::error::code_of(&e) == "ResourceNotFoundException" =>
                {
                    return Ok(printed)
                }
                Err(e) => return Err(failed("Logs GetLogEvents", &self.name)(e)),
            };
            for e in out.events() {
                println!("{}", e.message().unwrap_or_default().trim_end());
                printed += 1;
            }
            let next = out.next_forward_token().map(str::to_owned);
            // The same token again: the end of the stream for now (CloudWatch Logs
            // API reference, GetLogEvents: nextForwardToken).
            let end = next == self.token || out.events().is_empty();
            self.token = next.or(self.token.take());
            if end {
                return Ok(printed);
            }
        }
    }
}
