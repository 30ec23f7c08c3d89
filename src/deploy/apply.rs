//! The verbs around the engine: connecting (the caller's account, never guessed),
//! the preflight that runs before any mutating call, waiting for deployments,
//! `status` and `logs`.

use std::time::{Duration, Instant};

use super::aws::Aws;
use super::engine::{self, Ctx, Node, Reconciled};
use super::error::{absent_on, failed, DeployError, Result};
use super::render::{self, Preflight, Target};
use super::resources::Spec;
use super::stack::{Resource, Stack};
use crate::aws::describe;

/// Connect: the clients, and the account from STS. A stack that names its account
/// is deployed to that account only.
pub async fn connect(stack: &Stack) -> Result<Ctx> {
    let region = stack
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok());
    let aws = Aws::new(region.as_deref()).await;
    let account = aws.account().await?;
    if let Some(want) = &stack.account {
        if *want != account {
            return Err(DeployError::Precondition(format!(
                "the stack is for account {want}, but the credentials are account {account}'s: nothing was changed"
            )));
        }
    }
    Ok(Ctx::new(aws, &stack.stack, &stack.cluster, account))
}

/// Render the stack for the connected account and region.
pub fn rendered(ctx: &Ctx, stack: &Stack) -> render::Rendered {
    render::render(
        stack,
        &Target {
            region: ctx.region.clone(),
            account: ctx.account.clone(),
            images: ctx.images.clone(),
            image_configs: ctx.image_configs.clone(),
        },
    )
}

/// Everything a deploy needs that the stack does not create: its subnets, security
/// groups and secrets. Checked before the first mutating call, so a stack that
/// cannot deploy changes nothing; once a run (the ECR repositories made before the
/// push and the plan after it check the same stack).
pub async fn preflight(ctx: &Ctx, p: &Preflight) -> Result<()> {
    ctx.once("preflight".into(), || check(ctx, p)).await?;
    Ok(())
}

async fn check(ctx: &Ctx, p: &Preflight) -> Result<()> {
    let mut missing = Vec::new();
    if !p.subnets.is_empty() {
        let out = ctx
            .aws
            .ec2
            .describe_subnets()
            .set_subnet_ids(Some(p.subnets.clone()))
            .send()
            .await;
        match absent_on(
            out,
            &["InvalidSubnetID.NotFound"],
            "EC2 DescribeSubnets",
            &p.subnets.join(","),
        )? {
            Some(_) => {}
            None => missing.push(format!("subnets {} (not all exist)", p.subnets.join(", "))),
        }
    }
    if !p.security_groups.is_empty() {
        let out = ctx
            .aws
            .ec2
            .describe_security_groups()
            .set_group_ids(Some(p.security_groups.clone()))
            .send()
            .await;
        match absent_on(
            out,
            &["InvalidGroup.NotFound", "InvalidGroupId.NotFound"],
            "EC2 DescribeSecurityGroups",
            &p.security_groups.join(","),
        )? {
            Some(_) => {}
            None => missing.push(format!(
                "security groups {} (not all exist)",
                p.security_groups.join(", ")
            )),
        }
    }
    if !p.capacity_providers.is_empty() {
        // The stack's own cluster gets them; a shared one must have them already.
        if let Some(have) = super::resources::cluster::foreign_providers(ctx, &ctx.cluster).await? {
            let lacking: Vec<&str> = p
                .capacity_providers
                .iter()
                .filter(|x| !have.contains(x))
                .map(String::as_str)
                .collect();
            if !lacking.is_empty() {
                missing.push(format!(
                    "capacity providers {} on cluster {} (the spot services' strategy names them; the cluster is not this stack's, so bosun-deploy does not change it: associate them with `aws ecs put-cluster-capacity-providers`, or give the stack a cluster of its own)",
                    lacking.join(", "),
                    ctx.cluster
                ));
            }
        }
    }
    if !p.ec2_resources.is_empty() {
        if super::resources::cluster::foreign_providers(ctx, &ctx.cluster)
            .await?
            .is_some()
        {
            missing.push(format!(
                "a cluster of the stack's own ({} run on EC2 instances through capacity providers the stack creates, which must go on the cluster; cluster {} is not this stack's, so bosun-deploy does not change it: give the stack a cluster of its own)",
                p.ec2_resources.join(", "),
                ctx.cluster
            ));
        }
        let out = ctx
            .aws
            .ssm
            .get_parameters()
            .set_names(Some(p.ami_parameters.clone()))
            .send()
            .await
            .map_err(failed("SSM GetParameters", p.ami_parameters.join(",")))?;
        for name in out.invalid_parameters() {
            missing.push(format!(
                "the ECS-optimized AMI's public parameter {name} (the region has no such AMI)"
            ));
        }
    }
    let mut secrets = p.secrets.clone();
    secrets.sort();
    secrets.dedup();
    let found = engine::bounded(secrets.iter().map(|name| async move {
        let out = ctx
            .aws
            .secrets
            .describe_secret()
            .secret_id(name)
            .send()
            .await;
        Ok(absent_on(
            out,
            &["ResourceNotFoundException"],
            "SecretsManager DescribeSecret",
            name,
        )?
        .is_some())
    }))
    .await?;
    for (name, ok) in secrets.iter().zip(found) {
        if !ok {
            missing.push(format!("secret {name}"));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DeployError::Precondition(format!(
            "the stack needs what does not exist in account {} ({}): {}; nothing was changed",
            ctx.account,
            ctx.region,
            missing.join("; ")
        )))
    }
}

/// The account's ECR registry: its host (from the authorization's endpoint) and a
/// user and password that log in to it for 12 hours (GetAuthorizationToken: a read,
/// made once a run).
pub async fn ecr_login(ctx: &Ctx) -> Result<std::sync::Arc<(String, String, String)>> {
    ctx.once("ecr-login".into(), || read_ecr_login(ctx)).await
}

async fn read_ecr_login(ctx: &Ctx) -> Result<(String, String, String)> {
    let out = ctx
        .aws
        .ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(failed("ECR GetAuthorizationToken", &ctx.account))?;
    let bad =
        |why: &str| DeployError::Precondition(format!("ECR GetAuthorizationToken answered {why}"));
    let data = out
        .authorization_data()
        .first()
        .ok_or_else(|| bad("no authorization"))?;
    let token = data.authorization_token().ok_or_else(|| bad("no token"))?;
    let decoded =
        aws_smithy_types::base64::decode(token).map_err(|_| bad("a token that is not base64"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad("a token that is not text"))?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| bad("a token without a user"))?;
    let endpoint = data.proxy_endpoint().ok_or_else(|| bad("no endpoint"))?;
    let host = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, h)| h)
        .trim_end_matches('/')
        .to_owned();
    Ok((host, user.to_owned(), password.to_owned()))
}

/// The user name and password of a private registry, from the Secrets Manager secret
/// ECS pulls with (`{"username": …, "password": …}`).
pub async fn registry_credentials(ctx: &Ctx, arn: &str) -> Result<(String, String)> {
    let out = ctx
        .aws
        .secrets
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(failed("SecretsManager GetSecretValue", arn))?;
    let v: serde_json::Value =
        serde_json::from_str(out.secret_string().unwrap_or_default()).unwrap_or_default();
    match (v["username"].as_str(), v["password"].as_str()) {
        (Some(u), Some(p)) => Ok((u.to_owned(), p.to_owned())),
        _ => Err(DeployError::Precondition(format!(
            "secret {arn} is not a registry's credentials: ECS wants a JSON object with username and password"
        ))),
    }
}

/// Before images are pushed to ECR: preflight, then create (or bring in line) the
/// stack's ECR repositories alone, each change said on stderr before it is made.
pub async fn ensure_repositories(ctx: &Ctx, stack: &Stack) -> Result<()> {
    let r = rendered(ctx, stack);
    preflight(ctx, &r.preflight).await?;
    let repos: Vec<Node> = r
        .nodes
        .into_iter()
        .filter(|n| {
            n.spec.kind() == <super::resources::repository::Repository as engine::Kind>::KIND
        })
        .collect();
    if repos.is_empty() {
        return Ok(());
    }
    let plan = engine::reconcile_some(ctx, &repos).await?;
    for c in &plan.plan.changes {
        eprintln!("{c}\n      (before its image is pushed there)");
    }
    engine::execute(ctx, &repos, &plan, &mut |_, _| {}).await?;
    Ok(())
}

/// Preflight, then read everything and plan: no mutating call.
pub async fn plan(ctx: &Ctx, stack: &Stack) -> Result<(Vec<Node>, Reconciled)> {
    let r = rendered(ctx, stack);
    preflight(ctx, &r.preflight).await?;
    let reconciled = engine::reconcile(ctx, &r.nodes).await?;
    Ok((r.nodes, reconciled))
}

/// The plan of an empty stack: delete everything the stack owns.
pub async fn plan_delete(ctx: &Ctx) -> Result<(Vec<Node>, Reconciled)> {
    Ok((Vec::new(), engine::reconcile(ctx, &[]).await?))
}

/// Wait for each service's deployment: done when the primary deployment completes;
/// fails fast, with the stopped tasks' reasons, when the circuit breaker rolls back.
pub async fn wait(aws: &Aws, nodes: &[Node], timeout: Duration) -> Result<()> {
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
                return Err(DeployError::Precondition(format!(
                    "service {name} not found"
                )));
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
                    return Err(DeployError::Precondition(format!(
                        "deployment of {name} failed and was rolled back: {}",
                        reasons.join("; ")
                    )));
                }
                _ => {}
            }
            if Instant::now() > deadline {
                return Err(DeployError::Precondition(format!(
                    "deployment of {name} did not finish within {}s",
                    timeout.as_secs()
                )));
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

/// `status`: desired/running/pending, deployments, scaling policies and recent events.
pub async fn status(aws: &Aws, stack: &Stack) -> Result<String> {
    let mut out = String::new();
    for (name, res) in &stack.resources {
        let svc_name = render::family(stack, name);
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
                    .name(&svc_name)
                    .group_name(render::schedule_group(&stack.stack))
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
                            s.schedule_expression().unwrap_or(&j.schedule),
                            s.schedule_expression_timezone().unwrap_or("UTC"),
                            s.state().map(|x| x.as_str()).unwrap_or("?")
                        ));
                        out.push_str(&ec2_status(aws, stack, name, &j.container).await?);
                    }
                    None => out.push_str(&format!("{name} (scheduled-job): not deployed\n")),
                }
            }
            Resource::SqsQueue(q) => match queue_depth(aws, stack, name).await? {
                Some((visible, in_flight)) => out.push_str(&format!(
                    "{name} (sqs-queue {}): visible {visible} in flight {in_flight}\n",
                    render::queue_name(stack, name, q.fifo)
                )),
                None => out.push_str(&format!("{name} (sqs-queue): not deployed\n")),
            },
        }
    }
    Ok(out)
}

/// The EC2 capacity line of a resource with `instanceTypes` (empty otherwise): the
/// group's desired and in-service instances, and its warm pool.
async fn ec2_status(
    aws: &Aws,
    stack: &Stack,
    name: &str,
    ctr: &super::stack::Container,
) -> Result<String> {
    let Some(types) = &ctr.resources.instance_types else {
        return Ok(String::new());
    };
    let group = render::family(stack, name);
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
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let Some(Resource::SqsQueue(q)) = stack.resources.get(name) else {
        return Ok(None);
    };
    let qn = render::queue_name(stack, name, q.fifo);
    let u = aws.sqs.get_queue_url().queue_name(&qn).send().await;
    let Some(u) = absent_on(
        u,
        &[
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
        ],
        "SQS GetQueueUrl",
        &qn,
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
        .map_err(failed("SQS GetQueueAttributes", &qn))?;
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
    s: &crate::deploy::stack::Service,
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
    let svc = render::family(stack, name);
    let alarms = aws
        .cloudwatch
        .describe_alarms()
        .alarm_names(format!("{svc}-wake"))
        .alarm_names(format!("{svc}-idle"))
        .send()
        .await
        .map_err(failed("CloudWatch DescribeAlarms", &svc))?;
    let state = |suffix: &str| {
        alarms
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(format!("{svc}-{suffix}").as_str()))
            .and_then(|a| a.state_value())
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| "missing".into())
    };
    let tasks = x.running_count() + x.pending_count();
    let idle = sc
        .idle_minutes
        .unwrap_or(crate::deploy::validate::DEFAULT_IDLE_MINUTES);
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
    let group = render::log_group(stack, resource);
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
