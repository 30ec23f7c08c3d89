//! A scheduled job: an EventBridge Scheduler schedule in the stack's group, running
//! the job's task definition (an ECS RunTask target) with the scheduler role.

use serde_json::json;

use super::{roles, Builder, Cx, Dep};
use crate::deploy::engine::Kind;
use crate::deploy::naming;
use crate::deploy::resources::{role::Role, schedule};
use crate::deploy::stack::Job;

/// The stack's jobs (name, job, what its schedule depends on): the scheduler role,
/// the schedule group, and a schedule each.
pub fn add_all(cx: &Cx<'_>, b: &mut Builder, jobs: &[(&str, &Job, Vec<Dep>)]) {
    if jobs.is_empty() {
        return;
    }
    let t = cx.t;
    let scheduler_role = naming::scheduler_role(cx.name());
    // RunTask of the jobs' task definitions in the stack's cluster only, and the
    // roles under the stack's path passed to ECS tasks only (IAM User Guide,
    // iam:PassedToService; ECS Developer Guide, the ecs:cluster condition key).
    let statements = vec![
        json!({ "Effect": "Allow", "Action": ["ecs:RunTask"], "Resource": jobs.iter()
            .map(|(name, _, _)| t.arn("ecs", &format!("task-definition/{}:*", cx.family(name)))).collect::<Vec<_>>(),
            "Condition": { "ArnEquals": { "ecs:cluster": cx.cluster_arn() } } }),
        json!({ "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": format!("arn:aws:iam::{}:role{}*", t.account, naming::role_path(cx.name())),
            "Condition": { "StringEquals": { "iam:PassedToService": "ecs-tasks.amazonaws.com" } } }),
    ];
    b.add(
        roles::role(
            cx,
            &scheduler_role,
            roles::Trust::Scheduler {
                group: naming::schedule_group(cx.name()),
            },
            statements,
        ),
        &[],
    );
    let group = group(cx, b);
    for (name, j, job_deps) in jobs {
        let mut deps = vec![group.clone(), (Role::KIND, scheduler_role.clone())];
        deps.extend(job_deps.iter().cloned());
        b.add(job_schedule(cx, j, name), &deps);
    }
}

/// The stack's schedule group, added once (jobs and EC2 capacity refreshes share it).
pub fn group(cx: &Cx<'_>, b: &mut Builder) -> Dep {
    if let Some(g) = &b.schedule_group {
        return g.clone();
    }
    let g = b.add(
        schedule::ScheduleGroup {
            name: naming::schedule_group(cx.name()),
            tags: cx.tags_kv(),
        },
        &[],
    );
    b.schedule_group = Some(g.clone());
    g
}

/// The schedule of a job: an ECS RunTask target.
fn job_schedule(cx: &Cx<'_>, j: &Job, name: &str) -> schedule::Schedule {
    let fam = &cx.family(name);
    use schedule as sc;
    let t = cx.t;
    let (subnets, security_groups, assign_public_ip) = cx.awsvpc();
    sc::Schedule {
        name: naming::job_schedule(cx.name(), name),
        group_name: naming::schedule_group(cx.name()),
        schedule_expression: j.schedule.clone(),
        schedule_expression_timezone: j.timezone.clone().unwrap_or_else(|| "UTC".into()),
        flexible_time_window: sc::FlexibleTimeWindow {
            mode: "OFF".into(),
            maximum_window_in_minutes: None,
        },
        state: "ENABLED".into(),
        target: sc::Target {
            arn: cx.cluster_arn(),
            role_arn: cx.role_arn(&naming::scheduler_role(cx.name())),
            retry_policy: sc::RetryPolicy {
                maximum_event_age_in_seconds: j.max_event_age_seconds.unwrap_or(86400) as i32,
                maximum_retry_attempts: j.retry_attempts.unwrap_or(0) as i32,
            },
            input: None,
            ecs_parameters: Some(sc::EcsParameters {
                task_definition_arn: t.arn("ecs", &format!("task-definition/{fam}")),
                task_count: j.task_count.unwrap_or(1) as i32,
                launch_type: j
                    .container
                    .resources
                    .instance_types
                    .is_none()
                    .then(|| "FARGATE".into()),
                capacity_provider_strategy: j.container.resources.instance_types.as_ref().map(
                    |_| {
                        vec![sc::StrategyItem {
                            capacity_provider: fam.to_owned(),
                            weight: 1,
                        }]
                    },
                ),
                network_configuration: sc::NetworkConfiguration {
                    awsvpc_configuration: sc::AwsVpc {
                        subnets,
                        security_groups,
                        assign_public_ip,
                    },
                },
            }),
        },
    }
}
