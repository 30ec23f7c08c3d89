//! `status`: what is deployed, read from AWS (never built): each service's tasks,
//! deployments, scaling and events, each job's schedule, each queue's depth.

use crate::deploy::engine::error::{absent_on, failed, Result};
use crate::deploy::engine::Aws;
use crate::deploy::naming;
use crate::deploy::stack::limits::DEFAULT_IDLE_MINUTES;
use crate::deploy::stack::{Container, Resource, Service, Stack};

/// `status`: desired/running/pending, deployments, scaling policies and recent events.
pub async fn status(aws: &Aws, stack: &Stack) -> Result<String> {
    let mut out = String::new();
    for (name, res) in &stack.resources {
        let svc_name = naming::family(&stack.stack, name);
        match res {
            Resource::WorkerService(s) => {
                let d = aws
                    .ecs
                    .describe_services()
                    .cluster(&stack.cluster)
                    .services(&svc_name)
                    .send()
                    .await;
                let d = absent_on(
                    d,
                    &["ClusterNotFoundException"],
                    "ECS DescribeServices",
                    &svc_name,
                )?;
                let services = d.map(|d| d.services().to_vec()).unwrap_or_default();
                match services.iter().find(|x| x.status() == Some("ACTIVE")) {
                    None => out.push_str(&format!(
                        "{name} (worker-service {svc_name}): not deployed\n"
                    )),
                    Some(x) => {
                        out.push_str(&format!("{name} (worker-service {svc_name}): desired {} running {} pending {}\n", x.desired_count(), x.running_count(), x.pending_count()));
                        for dep in x.deployments() {
                            out.push_str(&format!(
                                "  deployment {} {} rollout {} running {}/{}\n",
                                dep.status().unwrap_or("?"),
                                dep.task_definition().unwrap_or("?"),
                                dep.rollout_state().map(|r| r.as_str()).unwrap_or("-"),
                                dep.running_count(),
                                dep.desired_count()
                            ));
                        }
                        let id = format!("service/{}/{svc_name}", stack.cluster);
                        let p = aws
                            .scaling
                            .describe_scaling_policies()
                            .service_namespace(
                                aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs,
                            )
                            .resource_id(&id)
                            .send()
                            .await
                            .map_err(failed("AutoScaling DescribeScalingPolicies", &id))?;
                        {
                            for pol in p
                                .scaling_policies()
                                .iter()
                                .filter(|p| p.resource_id() == id)
                            {
                                match pol.target_tracking_scaling_policy_configuration() {
                                    Some(c) => out.push_str(&format!(
                                        "  scaling policy {} target {}\n",
                                        pol.policy_name(),
                                        c.target_value()
                                    )),
                                    None => out.push_str(&format!(
                                        "  scaling policy {} ({})\n",
                                        pol.policy_name(),
                                        pol.policy_type().as_str()
                                    )),
                                }
                            }
                        }
                        if let Some(line) = zero_status(aws, stack, name, s, x).await? {
                            out.push_str(&line);
                        }
                        out.push_str(&ec2_status(aws, stack, name, &s.container).await?);
                        // Where the stack's other tasks reach it.
                        if !s.ports.is_empty() {
                            let ports: Vec<String> = s
                                .ports
                                .iter()
                                .map(|p| format!("{}/{}", p.container_port, p.protocol))
                                .collect();
                            out.push_str(&format!(
                                "  reachable as {} on {} ({} registered)\n",
                                naming::private_host(&stack.stack, name),
                                ports.join(", "),
                                if x.service_registries().is_empty() {
                                    "not"
                                } else {
                                    "Cloud Map"
                                }
                            ));
                        }
                        for ev in x.events().iter().take(5) {
                            out.push_str(&format!("  event: {}\n", ev.message().unwrap_or("")));
                        }
                    }
                }
            }
            Resource::ScheduledJob(j) => {
                let st = aws
                    .scheduler
                    .get_schedule()
                    .name(naming::job_schedule(&stack.stack, name))
                    .group_name(naming::schedule_group(&stack.stack))
                    .send()
                    .await;
                match absent_on(
                    st,
                    &["ResourceNotFoundException"],
                    "Scheduler GetSchedule",
                    &svc_name,
                )? {
                    Some(s) => {
                        out.push_str(&format!(
                            "{name} (scheduled-job): {} {} state {}\n",
                            s.schedule_expression().unwrap_or(j.schedule.all()[0]),
                            s.schedule_expression_timezone().unwrap_or("UTC"),
                            s.state().map(|x| x.as_str()).unwrap_or("?")
                        ));
                        out.push_str(&job_runs(aws, stack, name, j).await?);
                        out.push_str(&ec2_status(aws, stack, name, &j.container).await?);
                    }
                    None => out.push_str(&format!("{name} (scheduled-job): not deployed\n")),
                }
            }
            Resource::Bucket(_) => {
                let account = aws.account().await?;
                let bucket = naming::bucket(&stack.stack, name, &account, &aws.region);
                let out_b = aws.s3.head_bucket().bucket(&bucket).send().await;
                let there = absent_on(
                    out_b,
                    &["NotFound", "NoSuchBucket"],
                    "S3 HeadBucket",
                    &bucket,
                )?;
                out.push_str(&format!(
                    "{name} (bucket {bucket}): {}\n",
                    if there.is_some() {
                        "deployed"
                    } else {
                        "not deployed"
                    }
                ));
            }
            Resource::SqsQueue(q) => match queue_depth(aws, stack, name).await? {
                Some((visible, in_flight)) => {
                    out.push_str(&format!(
                        "{name} (sqs-queue {}): visible {visible} in flight {in_flight}\n",
                        naming::queue(&stack.stack, name, q.fifo)
                    ));
                    // Poison messages: what the workers gave up on.
                    if let Some(d) = &q.dead_letter_queue {
                        let dlq = match &d.target_queue {
                            Some(t) => naming::queue(&stack.stack, t, stack.is_fifo(t)),
                            None => naming::dead_letter_queue(&stack.stack, name, q.fifo),
                        };
                        match depth(aws, &dlq).await? {
                            Some((v, f)) => out.push_str(&format!(
                                "  dead letters ({dlq}): {v} visible, {f} in flight{}\n",
                                if v + f > 0 {
                                    " (messages the workers gave up on)"
                                } else {
                                    ""
                                }
                            )),
                            None => {
                                out.push_str(&format!("  dead letters ({dlq}): not deployed\n"))
                            }
                        }
                    }
                }
                None => out.push_str(&format!("{name} (sqs-queue): not deployed\n")),
            },
        }
    }
    Ok(out)
}

/// A job's last run (from its run-summary lines of the last week) and its next one
/// (of a cron schedule in UTC; the Scheduler does not say, and a rate counts from
/// when its schedule was made).
async fn job_runs(
    aws: &Aws,
    stack: &Stack,
    name: &str,
    j: &crate::deploy::stack::Job,
) -> Result<String> {
    use super::runs;
    let week_ago = runs::now_ms() - 7 * 86_400_000;
    let last = runs::from_logs(aws, stack, name, week_ago).await?.pop();
    let mut out = match last {
        Some(r) => format!(
            "  last run: {} {}{} ({})\n",
            r.started_at,
            r.outcome,
            r.exit_code
                .map(|c| format!(" exit {c}"))
                .unwrap_or_default(),
            r.reason
        ),
        None => "  last run: none in the last 7 days\n".to_owned(),
    };
    if j.enabled == Some(false) {
        out.push_str("  next run: none (enabled: false)\n");
        return Ok(out);
    }
    let now = runs::now_ms() / 1000;
    let utc = j.timezone.as_deref().is_none_or(|t| t == "UTC");
    let next = j
        .schedule
        .all()
        .iter()
        .filter_map(|e| crate::deploy::stack::schedule::next_after(e, now))
        .min();
    match next {
        Some(t) if utc => out.push_str(&format!("  next run: {}\n", runs::iso_ms(t * 1000))),
        _ => {}
    }
    Ok(out)
}

/// The EC2 capacity line of a resource with `instanceTypes` (empty otherwise): the
/// group's desired and in-service instances, and its warm pool.
async fn ec2_status(aws: &Aws, stack: &Stack, name: &str, ctr: &Container) -> Result<String> {
    let Some(types) = &ctr.resources.instance_types else {
        return Ok(String::new());
    };
    let group = naming::family(&stack.stack, name);
    let out = aws
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group)
        .send()
        .await
        .map_err(failed("AutoScaling DescribeAutoScalingGroups", &group))?;
    let Some(g) = out.auto_scaling_groups().first() else {
        return Ok(format!("  EC2 capacity {group}: not deployed\n"));
    };
    let in_service = g
        .instances()
        .iter()
        .filter(|i| i.lifecycle_state().map(|l| l.as_str()) == Some("InService"))
        .count();
    let mut line = format!(
        "  EC2 capacity {group} ({}): desired {}, instances {} ({in_service} in service)",
        types.join(", "),
        g.desired_capacity().unwrap_or(0),
        g.instances().len()
    );
    if g.warm_pool_configuration().is_some() {
        let pool = aws
            .autoscaling
            .describe_warm_pool()
            .auto_scaling_group_name(&group)
            .send()
            .await
            .map_err(failed("AutoScaling DescribeWarmPool", &group))?;
        line.push_str(&format!(", warm pool {}", pool.instances().len()));
    }
    line.push('\n');
    Ok(line)
}

/// A queue's messages (visible, in flight), or `None` when it does not exist.
async fn queue_depth(aws: &Aws, stack: &Stack, name: &str) -> Result<Option<(i64, i64)>> {
    let Some(Resource::SqsQueue(q)) = stack.resources.get(name) else {
        return Ok(None);
    };
    depth(aws, &naming::queue(&stack.stack, name, q.fifo)).await
}

/// A queue's messages by its name (visible, in flight), or `None` when it does not
/// exist.
async fn depth(aws: &Aws, qn: &str) -> Result<Option<(i64, i64)>> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let u = aws.sqs.get_queue_url().queue_name(qn).send().await;
    let Some(u) = absent_on(
        u,
        &[
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
        ],
        "SQS GetQueueUrl",
        qn,
    )?
    else {
        return Ok(None);
    };
    let attrs = aws
        .sqs
        .get_queue_attributes()
        .queue_url(u.queue_url().unwrap_or_default())
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(failed("SQS GetQueueAttributes", qn))?;
    let get = |k: A| {
        attrs
            .attributes()
            .and_then(|a| a.get(&k))
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    Ok(Some((
        get(A::ApproximateNumberOfMessages),
        get(A::ApproximateNumberOfMessagesNotVisible),
    )))
}

/// For a service that scales to zero: its queues' depth (visible, in flight), its
/// tasks, its wake and idle alarms' states, and whether it is idle at zero.
async fn zero_status(
    aws: &Aws,
    stack: &Stack,
    name: &str,
    s: &Service,
    x: &aws_sdk_ecs::types::Service,
) -> Result<Option<String>> {
    let Some(sc) = s.scaling.as_ref().filter(|sc| sc.min_instances == Some(0)) else {
        return Ok(None);
    };
    let (mut visible, mut in_flight) = (0i64, 0i64);
    for q in &s.container.connect_to {
        if let Some((v, f)) = queue_depth(aws, stack, q).await? {
            visible += v;
            in_flight += f;
        }
    }
    let svc = naming::family(&stack.stack, name);
    let alarms = aws
        .cloudwatch
        .describe_alarms()
        .alarm_names(naming::service_part(&svc, "wake"))
        .alarm_names(naming::service_part(&svc, "idle"))
        .send()
        .await
        .map_err(failed("CloudWatch DescribeAlarms", &svc))?;
    let state = |suffix: &str| {
        alarms
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(naming::service_part(&svc, suffix).as_str()))
            .and_then(|a| a.state_value())
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| "missing".into())
    };
    let tasks = x.running_count() + x.pending_count();
    let idle = sc.idle_minutes.unwrap_or(DEFAULT_IDLE_MINUTES);
    let verdict = match (x.desired_count(), tasks, visible + in_flight) {
        (0, 0, 0) => "idle at zero".to_owned(),
        (0, 0, _) => {
            "at zero, messages waiting: the wake alarm starts a task within minutes".to_owned()
        }
        (_, _, 0) => format!("running, queues empty: goes to zero after {idle} min idle"),
        _ => "running".to_owned(),
    };
    Ok(Some(format!(
        "  scales to zero: {verdict}; queue visible {visible} in flight {in_flight}, tasks {tasks}; alarms wake {} idle {}\n",
        state("wake"),
        state("idle")
    )))
}
