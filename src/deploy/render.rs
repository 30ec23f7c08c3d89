//! Pure functions from a stack to the exact AWS API inputs (as the APIs' JSON names
//! them): no AWS call. `apply` sends these; `render` prints them.
//!
//! Names: queue `{stack}-{name}` (dead-letter `{stack}-{name}-dlq`), log group
//! `/bosun/{stack}/{name}`, roles under the IAM path `/bosun/{stack}/`, task family,
//! service, schedule and dashboard `{stack}-{name}`, schedule group `bosun-{stack}`.
//! Everything is tagged `bosun:stack = {stack}` (and the stack's own tags).

use serde_json::{json, Map, Value};

use super::stack::{Container, Job, Resource, Service, Stack};
use super::validate::{directive, Directive, DEFAULT_STOP_TIMEOUT};

/// Where bosun lives in the image (`bosun-deploy inject` and the buildpack put it there).
pub const BOSUN_PATH: &str = "/usr/local/bin/bosun";
/// The tag that marks what a stack created.
pub const STACK_TAG: &str = "bosun:stack";

/// The account and region ARNs are written for.
#[derive(Debug, Clone)]
pub struct Target {
    pub region: String,
    pub account: String,
}

impl Target {
    fn arn(&self, service: &str, rest: &str) -> String {
        format!("arn:aws:{service}:{}:{}:{rest}", self.region, self.account)
    }
}

/// Whether `name` is a FIFO sqs-queue of the stack.
fn is_fifo(stack: &Stack, name: &str) -> bool {
    matches!(stack.resources.get(name), Some(Resource::SqsQueue(q)) if q.fifo)
}

pub fn queue_name(stack: &Stack, name: &str, fifo: bool) -> String {
    format!("{}-{name}{}", stack.stack, if fifo { ".fifo" } else { "" })
}

pub fn queue_url(stack: &Stack, t: &Target, name: &str) -> String {
    let fifo = is_fifo(stack, name);
    format!(
        "https://sqs.{}.amazonaws.com/{}/{}",
        t.region,
        t.account,
        queue_name(stack, name, fifo)
    )
}

fn queue_arn(stack: &Stack, t: &Target, name: &str) -> String {
    let fifo = is_fifo(stack, name);
    t.arn("sqs", &queue_name(stack, name, fifo))
}

pub fn log_group(stack: &Stack, name: &str) -> String {
    format!("/bosun/{}/{name}", stack.stack)
}

pub fn family(stack: &Stack, name: &str) -> String {
    format!("{}-{name}", stack.stack)
}

pub fn role_path(stack: &Stack) -> String {
    format!("/bosun/{}/", stack.stack)
}

pub fn schedule_group(stack: &Stack) -> String {
    format!("bosun-{}", stack.stack)
}

/// `jobsQueue` → `JOBS_QUEUE`.
pub fn env_name(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(if ch == '-' {
            '_'
        } else {
            ch.to_ascii_uppercase()
        });
    }
    out
}

fn tags(stack: &Stack) -> Vec<(String, String)> {
    let mut t = vec![(STACK_TAG.to_owned(), stack.stack.clone())];
    t.extend(stack.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    t
}

/// Tags as ECS writes them: `[{"key","value"}]`.
fn tags_ecs(stack: &Stack) -> Value {
    json!(tags(stack)
        .into_iter()
        .map(|(k, v)| json!({ "key": k, "value": v }))
        .collect::<Vec<_>>())
}

/// Tags as IAM and Scheduler write them: `[{"Key","Value"}]`.
fn tags_kv(stack: &Stack) -> Value {
    json!(tags(stack)
        .into_iter()
        .map(|(k, v)| json!({ "Key": k, "Value": v }))
        .collect::<Vec<_>>())
}

/// Tags as SQS and CloudWatch Logs write them: a map.
fn tags_map(stack: &Stack) -> Value {
    Value::Object(
        tags(stack)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

/// bosun's grace: a little shorter than ECS's stopTimeout, so bosun finishes its stop
/// sequence (and final metrics flush) before ECS sends SIGKILL.
pub fn bosun_grace(stop_timeout: i64) -> f64 {
    let s = stop_timeout as f64;
    s - (s * 0.25).min(2.0)
}

fn shell_join(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The health check command for bosun: ECS's `["CMD-SHELL", "..."]` or `["CMD", ...]`
/// forms, or plain words.
fn health_shell(cmd: &[String]) -> String {
    match cmd.first().map(String::as_str) {
        Some("CMD-SHELL") => cmd[1..].join(" "),
        Some("CMD") => shell_join(&cmd[1..]),
        _ => shell_join(cmd),
    }
}

/// Everything `render` prints and `apply` sends.
pub fn render(stack: &Stack, t: &Target) -> Value {
    let mut log_groups = Vec::new();
    let mut roles = Vec::new();
    let mut queues = Vec::new();
    let mut task_defs = Vec::new();
    let mut services = Vec::new();
    let mut targets = Vec::new();
    let mut policies = Vec::new();
    let mut schedules = Vec::new();
    let mut dashboards = Vec::new();

    // Queues (dead-letter queues first, so their ARN exists for the redrive policy).
    for (name, res) in &stack.resources {
        let Resource::SqsQueue(q) = res else { continue };
        let mut attrs = Map::new();
        let mut put = |k: &str, v: Option<i64>| {
            if let Some(v) = v {
                attrs.insert(k.into(), json!(v.to_string()));
            }
        };
        put("VisibilityTimeout", q.visibility_timeout_seconds);
        put("MessageRetentionPeriod", q.message_retention_seconds);
        put("DelaySeconds", q.delay_seconds);
        if q.fifo {
            attrs.insert("FifoQueue".into(), json!("true"));
        }
        if let Some(dlq) = &q.dead_letter_queue {
            let target = match &dlq.target_queue {
                Some(other) => queue_arn(stack, t, other),
                None => {
                    let dlq_name = format!(
                        "{}-{name}-dlq{}",
                        stack.stack,
                        if q.fifo { ".fifo" } else { "" }
                    );
                    let mut dattrs = json!({ "MessageRetentionPeriod": "1209600" });
                    if q.fifo {
                        dattrs["FifoQueue"] = json!("true");
                    }
                    queues.push(json!({ "QueueName": dlq_name, "Attributes": dattrs, "tags": tags_map(stack) }));
                    t.arn("sqs", &dlq_name)
                }
            };
            attrs.insert(
                "RedrivePolicy".into(),
                json!(json!({ "deadLetterTargetArn": target, "maxReceiveCount": dlq.max_receive_count }).to_string()),
            );
        }
        queues.push(json!({ "QueueName": queue_name(stack, name, q.fifo), "Attributes": attrs, "tags": tags_map(stack) }));
    }

    let execution_role = format!("{}-execution", stack.stack);
    let mut secret_arns: Vec<String> = Vec::new();

    for (name, res) in &stack.resources {
        let Some(ctr) = res.container() else { continue };
        let fam = family(stack, name);
        log_groups.push(json!({
            "logGroupName": log_group(stack, name),
            "retentionInDays": ctr.logging.retention_days.unwrap_or(30),
            "tags": tags_map(stack),
        }));
        let (td, secrets) = task_definition(stack, t, name, res, ctr, &execution_role);
        secret_arns.extend(secrets);
        task_defs.push(td);
        roles.push(task_role(stack, t, name, res, ctr));
        match res {
            Resource::WorkerService(s) => {
                let (svc, tgt, pols, dash) = service(stack, t, name, s);
                services.push(svc);
                targets.extend(tgt);
                policies.extend(pols);
                dashboards.push(dash);
            }
            Resource::ScheduledJob(j) => schedules.push(schedule(stack, t, j, &fam)),
            Resource::SqsQueue(_) => {}
        }
    }
    if !task_defs.is_empty() {
        let mut statements = vec![
            json!({
                "Effect": "Allow",
                "Action": ["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                "Resource": "*"
            }),
            json!({
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": t.arn("logs", &format!("log-group:/bosun/{}/*", stack.stack)),
            }),
        ];
        secret_arns.sort();
        secret_arns.dedup();
        if !secret_arns.is_empty() {
            statements.push(json!({ "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": secret_arns }));
        }
        roles.push(role(
            stack,
            &execution_role,
            "ecs-tasks.amazonaws.com",
            statements,
        ));
    }
    if !schedules.is_empty() {
        let statements = vec![
            json!({ "Effect": "Allow", "Action": ["ecs:RunTask"], "Resource": stack.resources.iter()
                .filter(|(_, r)| matches!(r, Resource::ScheduledJob(_)))
                .map(|(n, _)| t.arn("ecs", &format!("task-definition/{}:*", family(stack, n)))).collect::<Vec<_>>() }),
            json!({ "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": format!("arn:aws:iam::{}:role{}*", t.account, role_path(stack)) }),
        ];
        roles.push(role(
            stack,
            &format!("{}-scheduler", stack.stack),
            "scheduler.amazonaws.com",
            statements,
        ));
    }
    json!({
        "stack": stack.stack,
        "region": t.region,
        "account": t.account,
        "cluster": { "clusterName": stack.cluster, "tags": tags_ecs(stack) },
        "logGroups": log_groups,
        "roles": roles,
        "queues": queues,
        "taskDefinitions": task_defs,
        "services": services,
        "scalableTargets": targets,
        "scalingPolicies": policies,
        "scheduleGroup": if schedules.is_empty() { Value::Null } else { json!({ "Name": schedule_group(stack), "Tags": tags_kv(stack) }) },
        "schedules": schedules,
        "dashboards": dashboards,
    })
}

/// An IAM role: CreateRole input plus its one inline policy.
fn role(stack: &Stack, name: &str, principal: &str, statements: Vec<Value>) -> Value {
    let mut r = json!({
        "RoleName": name,
        "Path": role_path(stack),
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Principal": { "Service": principal }, "Action": "sts:AssumeRole" }]
        },
        "Tags": tags_kv(stack),
    });
    // IAM rejects a policy without statements: a role that needs nothing has none.
    if !statements.is_empty() {
        r["PolicyName"] = json!("bosun");
        r["PolicyDocument"] = json!({ "Version": "2012-10-17", "Statement": statements });
    }
    r
}

fn role_arn(stack: &Stack, t: &Target, name: &str) -> String {
    format!("arn:aws:iam::{}:role{}{name}", t.account, role_path(stack))
}

/// The task role: only what connectTo and iamRoleStatements ask for, plus what bosun
/// itself calls (metrics, task protection).
fn task_role(stack: &Stack, t: &Target, name: &str, res: &Resource, ctr: &Container) -> Value {
    let mut statements = Vec::new();
    let queues: Vec<String> = ctr
        .connect_to
        .iter()
        .filter(|q| matches!(stack.resources.get(*q), Some(Resource::SqsQueue(_))))
        .map(|q| queue_arn(stack, t, q))
        .collect();
    if !queues.is_empty() {
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
            "Resource": queues,
        }));
    }
    if let Resource::WorkerService(_) = res {
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": "*",
            "Condition": { "StringEquals": { "cloudwatch:namespace": "Bosun" } }
        }));
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["ecs:DescribeServices"],
            "Resource": t.arn("ecs", &format!("service/{}/{}", stack.cluster, family(stack, name))),
        }));
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"],
            "Resource": t.arn("ecs", &format!("task/{}/*", stack.cluster)),
        }));
    }
    for s in &ctr.iam_role_statements {
        statements.push(json!({ "Effect": s.effect, "Action": s.action, "Resource": s.resource }));
    }
    role(
        stack,
        &format!("{}-{name}-task", stack.stack),
        "ecs-tasks.amazonaws.com",
        statements,
    )
}

/// RegisterTaskDefinition input, and the secret ARNs it reads.
fn task_definition(
    stack: &Stack,
    t: &Target,
    name: &str,
    res: &Resource,
    ctr: &Container,
    execution_role: &str,
) -> (Value, Vec<String>) {
    let stop = ctr.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT);
    let mut env: Vec<(String, String)> = vec![
        (
            "BOSUN_STOP_TIMEOUT".into(),
            format!("{}", bosun_grace(stop)),
        ),
        ("BOSUN_SERVICE_NAME".into(), family(stack, name)),
        ("BOSUN_CLUSTER_NAME".into(), stack.cluster.clone()),
        ("BOSUN_LOG_FORMAT".into(), "json".into()),
    ];
    let mut secrets = Vec::new();
    let mut secret_arns = Vec::new();
    if let Some(h) = &ctr.internal_health_check {
        env.push((
            "BOSUN_HEALTH_CMD".into(),
            health_shell(&h.health_check_command),
        ));
        env.push((
            "BOSUN_HEALTH_INTERVAL".into(),
            h.interval_seconds.unwrap_or(30).to_string(),
        ));
        env.push((
            "BOSUN_HEALTH_TIMEOUT".into(),
            h.timeout_seconds.unwrap_or(5).to_string(),
        ));
        env.push((
            "BOSUN_HEALTH_RETRIES".into(),
            h.retries.unwrap_or(3).to_string(),
        ));
        env.push((
            "BOSUN_HEALTH_START_PERIOD".into(),
            h.start_period_seconds.unwrap_or(0).to_string(),
        ));
    }
    let backlog_queue = match res {
        Resource::WorkerService(s) => s
            .scaling
            .as_ref()
            .and_then(|sc| sc.scaling_policy.as_ref())
            .and_then(|p| p.keep_backlog_per_instance_under)
            .and_then(|_| {
                ctr.connect_to
                    .iter()
                    .find(|q| matches!(stack.resources.get(*q), Some(Resource::SqsQueue(_))))
            }),
        _ => None,
    };
    if let Some(q) = backlog_queue {
        env.push(("BOSUN_METRICS".into(), "cloudwatch".into()));
        env.push(("BOSUN_QUEUE_URL".into(), queue_url(stack, t, q)));
    }
    for q in &ctr.connect_to {
        if let Some(Resource::SqsQueue(_)) = stack.resources.get(q) {
            let fifo = is_fifo(stack, q);
            let e = env_name(q);
            env.push((format!("STP_{e}_URL"), queue_url(stack, t, q)));
            env.push((format!("STP_{e}_ARN"), queue_arn(stack, t, q)));
            env.push((format!("STP_{e}_NAME"), queue_name(stack, q, fifo)));
        }
    }
    for v in &ctr.environment {
        let text = match &v.value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match directive(&text) {
            Ok(Some(Directive::Secret { name: secret, key })) => {
                let base = t.arn("secretsmanager", &format!("secret:{secret}"));
                secret_arns.push(format!("{base}*"));
                let value_from = match key {
                    Some(k) => format!("{base}:{k}::"),
                    None => base,
                };
                secrets.push(json!({ "name": v.name, "valueFrom": value_from }));
            }
            Ok(Some(Directive::ResourceParam { resource, param })) => {
                let fifo = is_fifo(stack, &resource);
                let value = match param.as_str() {
                    "url" => queue_url(stack, t, &resource),
                    "arn" => queue_arn(stack, t, &resource),
                    "name" => queue_name(stack, &resource, fifo),
                    _ => family(stack, &resource),
                };
                env.push((v.name.clone(), value));
            }
            _ => env.push((v.name.clone(), text)),
        }
    }
    env.sort();
    env.dedup_by(|a, b| a.0 == b.0);
    let mut command: Vec<String> = ctr.entry_point.clone().unwrap_or_default();
    command.extend(ctr.command.clone().unwrap_or_default());
    let image = ctr
        .packaging
        .properties
        .image
        .clone()
        .unwrap_or_else(|| format!("{}:latest", family(stack, name)));
    let mut container = json!({
        "name": "app",
        "image": image,
        "essential": true,
        "entryPoint": [BOSUN_PATH, "--"],
        "command": command,
        "environment": env.into_iter().map(|(k, v)| json!({ "name": k, "value": v })).collect::<Vec<_>>(),
        "stopTimeout": stop,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group(stack, name),
                "awslogs-region": t.region,
                "awslogs-stream-prefix": name,
            }
        },
    });
    if !secrets.is_empty() {
        container["secrets"] = json!(secrets);
    }
    if let Some(h) = &ctr.internal_health_check {
        container["healthCheck"] = json!({
            "command": ["CMD", BOSUN_PATH, "probe"],
            "interval": h.interval_seconds.unwrap_or(30),
            "timeout": h.timeout_seconds.unwrap_or(5),
            "retries": h.retries.unwrap_or(3),
            "startPeriod": h.start_period_seconds.unwrap_or(0),
        });
    }
    let r = &ctr.resources;
    let arch = if r.architecture.as_deref() == Some("arm64") {
        "ARM64"
    } else {
        "X86_64"
    };
    let ec2 = r.instance_types.is_some();
    let mut td = json!({
        "family": family(stack, name),
        "networkMode": "awsvpc",
        "requiresCompatibilities": [if ec2 { "EC2" } else { "FARGATE" }],
        "executionRoleArn": role_arn(stack, t, execution_role),
        "taskRoleArn": role_arn(stack, t, &format!("{}-{name}-task", stack.stack)),
        "runtimePlatform": { "cpuArchitecture": arch, "operatingSystemFamily": "LINUX" },
        "containerDefinitions": [container],
        "tags": tags_ecs(stack),
    });
    if let (Some(cpu), Some(mem)) = (r.cpu, r.memory) {
        td["cpu"] = json!(((cpu * 1024.0).round() as i64).to_string());
        td["memory"] = json!(mem.to_string());
    }
    (td, secret_arns)
}

fn network(stack: &Stack) -> Value {
    let n = stack.network.clone();
    let (subnets, sgs, public) = n
        .map(|n| (n.subnets, n.security_groups, n.assign_public_ip))
        .unwrap_or_default();
    json!({ "awsvpcConfiguration": {
        "subnets": subnets,
        "securityGroups": sgs,
        "assignPublicIp": if public { "ENABLED" } else { "DISABLED" },
    }})
}

/// CreateService input, the scalable target, the scaling policies and the dashboard.
fn service(
    stack: &Stack,
    t: &Target,
    name: &str,
    s: &Service,
) -> (Value, Option<Value>, Vec<Value>, Value) {
    let svc_name = family(stack, name);
    let min = s
        .scaling
        .as_ref()
        .and_then(|x| x.min_instances)
        .unwrap_or(1);
    let max = s
        .scaling
        .as_ref()
        .and_then(|x| x.max_instances)
        .unwrap_or(min);
    let mut svc = json!({
        "cluster": stack.cluster,
        "serviceName": svc_name,
        "taskDefinition": family(stack, name),
        "desiredCount": min,
        "networkConfiguration": network(stack),
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": { "enable": true, "rollback": true },
            "minimumHealthyPercent": 100,
            "maximumPercent": 200,
        },
        "enableECSManagedTags": true,
        "propagateTags": "SERVICE",
        "tags": tags_ecs(stack),
    });
    if s.spot {
        svc["capacityProviderStrategy"] =
            json!([{ "capacityProvider": "FARGATE_SPOT", "weight": 1 }]);
    } else if s.container.resources.instance_types.is_some() {
        svc["launchType"] = json!("EC2");
    } else {
        svc["launchType"] = json!("FARGATE");
    }
    let resource_id = format!("service/{}/{svc_name}", stack.cluster);
    let mut target = None;
    let mut policies = Vec::new();
    if let Some(sc) = &s.scaling {
        target = Some(json!({
            "ServiceNamespace": "ecs",
            "ResourceId": resource_id,
            "ScalableDimension": "ecs:service:DesiredCount",
            "MinCapacity": min,
            "MaxCapacity": max,
            "Tags": tags_map(stack),
        }));
        let pol = sc.scaling_policy.clone().unwrap_or_default();
        // One target-tracking policy per metric: Application Auto Scaling scales out
        // when any is above its target and in only when all are below. Out fast (60 s
        // cooldown), in cautiously (300 s).
        let mut add = |suffix: &str, value: f64, spec: Value| {
            let mut cfg = json!({ "TargetValue": value, "ScaleOutCooldown": 60, "ScaleInCooldown": 300, "DisableScaleIn": false });
            for (k, v) in spec.as_object().into_iter().flatten() {
                cfg[k] = v.clone();
            }
            policies.push(json!({
                "PolicyName": format!("{svc_name}-{suffix}"),
                "ServiceNamespace": "ecs",
                "ResourceId": resource_id,
                "ScalableDimension": "ecs:service:DesiredCount",
                "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": cfg,
            }));
        };
        if let Some(v) = pol.keep_avg_cpu_utilization_under {
            add(
                "cpu",
                v,
                json!({ "PredefinedMetricSpecification": { "PredefinedMetricType": "ECSServiceAverageCPUUtilization" } }),
            );
        }
        if let Some(v) = pol.keep_avg_memory_utilization_under {
            add(
                "memory",
                v,
                json!({ "PredefinedMetricSpecification": { "PredefinedMetricType": "ECSServiceAverageMemoryUtilization" } }),
            );
        }
        if let Some(v) = pol.keep_backlog_per_instance_under {
            add(
                "backlog",
                v,
                json!({ "CustomizedMetricSpecification": {
                    "MetricName": "BacklogPerTask",
                    "Namespace": "Bosun",
                    "Dimensions": [{ "Name": "ServiceName", "Value": svc_name }, { "Name": "ClusterName", "Value": stack.cluster }],
                    "Statistic": "Average",
                }}),
            );
        }
    }
    let dims = json!(["ServiceName", svc_name, "ClusterName", stack.cluster]);
    let mut d = dims.as_array().cloned().unwrap_or_default();
    let metric = |ns: &str, m: &str| {
        let mut row = vec![json!(ns), json!(m)];
        row.append(&mut d.clone());
        json!(row)
    };
    let body = json!({ "widgets": [
        { "type": "metric", "x": 0, "y": 0, "width": 12, "height": 6, "properties": { "title": "CPU %", "region": t.region, "stat": "Average", "period": 60, "metrics": [metric("AWS/ECS", "CPUUtilization")] } },
        { "type": "metric", "x": 12, "y": 0, "width": 12, "height": 6, "properties": { "title": "Memory %", "region": t.region, "stat": "Average", "period": 60, "metrics": [metric("AWS/ECS", "MemoryUtilization")] } },
        { "type": "metric", "x": 0, "y": 6, "width": 12, "height": 6, "properties": { "title": "Backlog per task", "region": t.region, "stat": "Average", "period": 60, "metrics": [metric("Bosun", "BacklogPerTask")] } },
        { "type": "metric", "x": 12, "y": 6, "width": 12, "height": 6, "properties": { "title": "Running tasks", "region": t.region, "stat": "Average", "period": 60, "metrics": [metric("ECS/ContainerInsights", "RunningTaskCount")] } },
    ]});
    d.clear();
    let dash = json!({ "DashboardName": svc_name, "DashboardBody": body.to_string() });
    (svc, target, policies, dash)
}

/// CreateSchedule input: an ECS RunTask target.
fn schedule(stack: &Stack, t: &Target, j: &Job, fam: &str) -> Value {
    let net = network(stack);
    let a = &net["awsvpcConfiguration"];
    json!({
        "Name": fam,
        "GroupName": schedule_group(stack),
        "ScheduleExpression": j.schedule,
        "ScheduleExpressionTimezone": j.timezone.clone().unwrap_or_else(|| "UTC".into()),
        "FlexibleTimeWindow": { "Mode": "OFF" },
        "State": "ENABLED",
        "Target": {
            "Arn": t.arn("ecs", &format!("cluster/{}", stack.cluster)),
            "RoleArn": role_arn(stack, t, &format!("{}-scheduler", stack.stack)),
            "RetryPolicy": {
                "MaximumEventAgeInSeconds": j.max_event_age_seconds.unwrap_or(86400),
                "MaximumRetryAttempts": j.retry_attempts.unwrap_or(0),
            },
            "EcsParameters": {
                "TaskDefinitionArn": t.arn("ecs", &format!("task-definition/{fam}")),
                "TaskCount": j.task_count.unwrap_or(1),
                "LaunchType": if j.container.resources.instance_types.is_some() { "EC2" } else { "FARGATE" },
                "NetworkConfiguration": { "awsvpcConfiguration": {
                    "Subnets": a["subnets"], "SecurityGroups": a["securityGroups"], "AssignPublicIp": a["assignPublicIp"],
                }},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_and_grace() {
        assert_eq!(env_name("jobsQueue"), "JOBS_QUEUE");
        assert_eq!(env_name("q"), "Q");
        assert_eq!(bosun_grace(30), 28.0);
        assert_eq!(bosun_grace(2), 1.5);
        assert_eq!(
            health_shell(&["CMD-SHELL".into(), "curl -f x".into()]),
            "curl -f x"
        );
        assert_eq!(
            health_shell(&["node".into(), "a b.js".into()]),
            "node 'a b.js'"
        );
    }
}
