//! Pure functions from a stack to the exact AWS API inputs (as the APIs' JSON names
//! them): no AWS call. `apply` sends these; `render` prints them.
//!
//! Names: queue `{stack}-{name}` (dead-letter `{stack}-{name}-dlq`), log group
//! `/bosun/{stack}/{name}`, roles under the IAM path `/bosun/{stack}/`, task family,
//! service, schedule and dashboard `{stack}-{name}`, schedule group `bosun-{stack}`.
//! Everything is tagged `bosun:stack = {stack}` (and the stack's own tags).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::engine::{Kind, Node};
use super::instance_types;
use super::resources::{
    alarm, auto_scaling_group as asg, capacity_provider,
    cluster::{self, Cluster},
    dashboard, instance_profile, launch_template, log_group, queue, repository, role, scaling,
    schedule, service, task_definition, EcsTag, KvTag, Spec, KINDS,
};
use super::stack::{Container, Job, Resource, Service, Stack};
use super::validate::{directive, Directive, DEFAULT_IDLE_MINUTES, DEFAULT_STOP_TIMEOUT};

/// Where bosun lives in the image (`bosun-deploy inject` and the buildpack put it there).
pub const BOSUN_PATH: &str = "/usr/local/bin/bosun";
/// The tag that marks what a stack created.
pub const STACK_TAG: &str = "bosun:stack";

/// What `render` (which reads no registry) writes for the start command of a
/// prebuilt image without a command: apply reads it from the image's config.
pub const IMAGE_START: &str = "(the image's ENTRYPOINT and CMD, read from its registry by apply)";

/// The account and region ARNs are written for.
#[derive(Debug, Clone)]
pub struct Target {
    pub region: String,
    pub account: String,
    /// The images bosun-deploy built (resource → `REPO@sha256:…`); `render` builds
    /// none and shows [`super::package::UNBUILT`] for their digests.
    pub images: BTreeMap<String, String>,
    /// The configs of the prebuilt images run without a command (resource → config).
    pub image_configs: BTreeMap<String, super::registry::ImageConfig>,
}

/// The queue whose backlog bosun publishes for a service (a backlog target and a
/// connected queue), if any.
fn backlog_queue<'a>(stack: &'a Stack, res: &'a Resource) -> Option<&'a String> {
    let Resource::WorkerService(s) = res else {
        return None;
    };
    s.scaling
        .as_ref()
        .and_then(|sc| sc.scaling_policy.as_ref())
        .and_then(|p| p.keep_backlog_per_instance_under)
        .and_then(|_| {
            s.container
                .connect_to
                .iter()
                .find(|q| matches!(stack.resources.get(*q), Some(Resource::SqsQueue(_))))
        })
}

/// Why a resource's bosun needs `bosun-aws` (its AWS helper) in the image, if it
/// does: publishing a queue's backlog (CloudWatch, SQS) or a singleton job's check of
/// earlier runs (ECS).
pub fn needs_helper(stack: &Stack, res: &Resource) -> Option<&'static str> {
    if backlog_queue(stack, res).is_some() {
        return Some("it publishes its queue's backlog to CloudWatch");
    }
    match res {
        Resource::ScheduledJob(j) if j.singleton => {
            Some("it is a singleton job, which asks ECS for earlier runs")
        }
        _ => None,
    }
}

/// Whether an image's ENTRYPOINT starts with bosun (`bosun-deploy inject`, or a
/// Dockerfile that puts it there): it runs its start command under bosun as it is.
fn runs_bosun(entrypoint: &[String]) -> bool {
    entrypoint
        .first()
        .is_some_and(|e| e == BOSUN_PATH || e.ends_with("/bosun") || e == "bosun")
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

/// The IAM path of the stack's roles.
pub fn role_path(stack_name: &str) -> String {
    format!("/bosun/{stack_name}/")
}

/// The stack's EventBridge Scheduler group.
pub fn schedule_group(stack_name: &str) -> String {
    format!("bosun-{stack_name}")
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

/// The stack rendered: every resource with its dependencies, in creation order, and
/// what must exist before anything is changed.
pub struct Rendered {
    pub nodes: Vec<Node>,
    pub preflight: Preflight,
}

/// What apply checks before its first mutating call.
#[derive(Debug, Default)]
pub struct Preflight {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// The capacity providers the services' strategies name (a shared cluster must
    /// have them already).
    pub capacity_providers: Vec<String>,
    /// Secrets Manager secret names the tasks read.
    pub secrets: Vec<String>,
    /// The resources that run on the stack's EC2 capacity (its own capacity providers
    /// must go on the cluster, so the cluster must be the stack's).
    pub ec2_resources: Vec<String>,
    /// The public SSM parameters of the ECS-optimized AMIs the launch templates name.
    pub ami_parameters: Vec<String>,
}

impl Rendered {
    /// `render`'s output: the API inputs, grouped by kind.
    pub fn to_json(&self, stack: &Stack, t: &Target) -> Value {
        let mut out = Map::new();
        out.insert("stack".into(), json!(stack.stack));
        out.insert("region".into(), json!(t.region));
        out.insert("account".into(), json!(t.account));
        for n in &self.nodes {
            let list = out
                .entry(n.spec.plural())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = list {
                a.push(n.spec.to_json());
            }
        }
        Value::Object(out)
    }
}

fn tag_pairs(stack: &Stack) -> Vec<(String, String)> {
    let mut t = vec![(STACK_TAG.to_owned(), stack.stack.clone())];
    t.extend(stack.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    t.sort();
    t
}

fn tags_ecs(stack: &Stack) -> Vec<EcsTag> {
    tag_pairs(stack)
        .into_iter()
        .map(|(key, value)| EcsTag { key, value })
        .collect()
}

fn tags_kv(stack: &Stack) -> Vec<KvTag> {
    tag_pairs(stack)
        .into_iter()
        .map(|(key, value)| KvTag { key, value })
        .collect()
}

fn tags_map(stack: &Stack) -> BTreeMap<String, String> {
    tag_pairs(stack).into_iter().collect()
}

struct Builder {
    nodes: Vec<Node>,
}

impl Builder {
    /// Add a resource; returns its id for others to depend on.
    fn add(&mut self, spec: impl Into<Spec>, deps: &[Dep]) -> Dep {
        let spec = spec.into();
        let id = (spec.kind(), spec.name());
        self.nodes.push(Node {
            spec,
            deps: deps.to_vec(),
        });
        id
    }
}

type Dep = (&'static str, String);

/// Everything `render` prints and `apply` reconciles.
pub fn render(stack: &Stack, t: &Target) -> Rendered {
    let mut b = Builder { nodes: Vec::new() };
    let mut preflight = Preflight::default();
    let has_tasks = stack.resources.values().any(|r| r.container().is_some());
    let cluster = has_tasks.then(|| {
        b.add(
            Cluster {
                cluster_name: stack.cluster.clone(),
                capacity_providers: cluster::FARGATE_PROVIDERS.map(String::from).to_vec(),
                tags: tags_ecs(stack),
            },
            &[],
        )
    });
    if has_tasks {
        if let Some(n) = &stack.network {
            preflight.subnets = n.subnets.clone();
            preflight.security_groups = n.security_groups.clone();
        }
        let mut providers: Vec<String> = stack
            .resources
            .values()
            .filter_map(|r| match r {
                Resource::WorkerService(s) if s.spot => Some(spot_strategy(s)),
                _ => None,
            })
            .flatten()
            .map(|i| i.capacity_provider)
            .collect();
        providers.sort();
        providers.dedup();
        preflight.capacity_providers = providers;
        {}
    }

    // Queues (dead-letter queues first, so they exist for the redrive policy).
    let mut queue_ids: BTreeMap<String, Dep> = BTreeMap::new();
    for (name, res) in &stack.resources {
        let Resource::SqsQueue(q) = res else { continue };
        let mut attrs = BTreeMap::new();
        attrs.insert(
            "VisibilityTimeout".to_owned(),
            q.visibility_timeout_seconds.unwrap_or(30).to_string(),
        );
        attrs.insert(
            "MessageRetentionPeriod".to_owned(),
            q.message_retention_seconds.unwrap_or(345_600).to_string(),
        );
        attrs.insert(
            "DelaySeconds".to_owned(),
            q.delay_seconds.unwrap_or(0).to_string(),
        );
        if q.fifo {
            attrs.insert("FifoQueue".into(), "true".into());
        }
        let mut deps = Vec::new();
        if let Some(dlq) = &q.dead_letter_queue {
            let target = match &dlq.target_queue {
                Some(other) => {
                    let other_fifo = is_fifo(stack, other);
                    deps.push((queue::Queue::KIND, queue_name(stack, other, other_fifo)));
                    queue_arn(stack, t, other)
                }
                None => {
                    let dlq_name = format!(
                        "{}-{name}-dlq{}",
                        stack.stack,
                        if q.fifo { ".fifo" } else { "" }
                    );
                    let mut dattrs = BTreeMap::new();
                    dattrs.insert("VisibilityTimeout".to_owned(), "30".to_owned());
                    dattrs.insert("MessageRetentionPeriod".to_owned(), "1209600".to_owned());
                    dattrs.insert("DelaySeconds".to_owned(), "0".to_owned());
                    if q.fifo {
                        dattrs.insert("FifoQueue".into(), "true".into());
                    }
                    deps.push(b.add(
                        queue::Queue {
                            queue_name: dlq_name.clone(),
                            attributes: dattrs,
                            tags: tags_map(stack),
                            url: None,
                        },
                        &[],
                    ));
                    t.arn("sqs", &dlq_name)
                }
            };
            attrs.insert(
                "RedrivePolicy".into(),
                queue::redrive(&target, dlq.max_receive_count),
            );
        }
        let id = b.add(
            queue::Queue {
                queue_name: queue_name(stack, name, q.fifo),
                attributes: attrs,
                tags: tags_map(stack),
                url: None,
            },
            &deps,
        );
        queue_ids.insert(name.clone(), id);
    }

    let execution_role = format!("{}-execution", stack.stack);
    let execution_id: Dep = (role::Role::KIND, execution_role.clone());
    let mut secret_arns: Vec<String> = Vec::new();
    let mut scheduled: Vec<(String, &Job, Vec<Dep>)> = Vec::new();
    let mut pending_roles = Vec::new();

    for (name, res) in &stack.resources {
        let Some(ctr) = res.container() else { continue };
        let fam = family(stack, name);
        let lg = b.add(
            log_group::LogGroup {
                log_group_name: log_group(stack, name),
                retention_in_days: ctr.logging.retention_days.unwrap_or(30) as i32,
                tags: tags_map(stack),
            },
            &[],
        );
        let task_role = task_role(stack, t, name, res, ctr);
        let task_role_id = (role::Role::KIND, task_role.role_name.clone());
        pending_roles.push(task_role);
        // A built image without the stack's registry goes to its ECR repository.
        let ecr = (super::package::is_built(ctr) && stack.registry.is_none()).then(|| {
            b.add(
                repository::Repository {
                    repository_name: super::package::ecr_repository(stack, name),
                    image_scanning_configuration: repository::Scanning { scan_on_push: true },
                    image_tag_mutability: "MUTABLE".into(),
                    lifecycle_policy_text: repository::lifecycle_policy(),
                    tags: tags_kv(stack),
                },
                &[],
            )
        });
        let (td, secrets) = task_definition(stack, t, name, res, ctr, &execution_role);
        preflight
            .secrets
            .extend(secrets.iter().map(|(n, _)| n.clone()));
        secret_arns.extend(secrets.into_iter().map(|(_, arn)| arn));
        // A private registry's credentials: the execution role reads them for ECS.
        if let Some(arn) = &ctr.packaging.properties.repository_credentials_secret_arn {
            preflight.secrets.push(arn.clone());
            secret_arns.push(format!("{arn}*"));
        }
        let mut td_deps = vec![lg, task_role_id, execution_id.clone()];
        td_deps.extend(ecr);
        td_deps.extend(
            ctr.connect_to
                .iter()
                .filter_map(|q| queue_ids.get(q).cloned()),
        );
        let td_id = b.add(td, &td_deps);
        let capacity = ctr.resources.instance_types.as_ref().map(|types| {
            let most = match res {
                Resource::WorkerService(s) => service_bounds(s).1,
                Resource::ScheduledJob(j) => j.task_count.unwrap_or(1),
                Resource::SqsQueue(_) => 1,
            };
            preflight.ec2_resources.push(name.clone());
            preflight
                .ami_parameters
                .push(ami_parameter(ctr.resources.architecture.as_deref()));
            let (instance_role, provider) = ec2_capacity(&mut b, stack, t, name, ctr, types, most);
            pending_roles.push(instance_role);
            provider
        });
        let mut deps = vec![td_id];
        deps.extend(cluster.clone());
        if let Some(provider) = &capacity {
            deps.push(provider.clone());
            deps.push((
                cluster::ClusterCapacityProviders::KIND,
                stack.cluster.clone(),
            ));
        }
        match res {
            Resource::WorkerService(s) => service(&mut b, stack, t, name, s, &deps),
            Resource::ScheduledJob(j) => scheduled.push((fam, j, deps)),
            Resource::SqsQueue(_) => {}
        }
    }
    if !preflight.ec2_resources.is_empty() {
        let mut providers: Vec<String> = cluster::FARGATE_PROVIDERS.map(String::from).to_vec();
        providers.extend(preflight.ec2_resources.iter().map(|n| family(stack, n)));
        providers.sort();
        let mut deps: Vec<Dep> = cluster.iter().cloned().collect();
        deps.extend(
            preflight
                .ec2_resources
                .iter()
                .map(|n| (capacity_provider::CapacityProvider::KIND, family(stack, n))),
        );
        b.add(
            cluster::ClusterCapacityProviders {
                cluster: stack.cluster.clone(),
                capacity_providers: providers,
            },
            &deps,
        );
        preflight.ami_parameters.sort();
        preflight.ami_parameters.dedup();
    }
    // Roles go first in creation order: everything that runs needs them.
    let mut roles: Vec<role::Role> = pending_roles;
    if has_tasks {
        let mut statements = Vec::new();
        // Pulling from ECR: a token (which has no resource of its own) and the layers
        // of the stack's own ECR repositories, nothing else.
        let mut repos: Vec<String> = stack
            .resources
            .values()
            .filter_map(|r| r.container())
            .filter_map(|c| c.packaging.properties.image.as_deref())
            .filter_map(ecr_repository_arn)
            .collect();
        if stack.registry.is_none() {
            repos.extend(
                stack
                    .resources
                    .iter()
                    .filter(|(_, r)| r.container().is_some_and(super::package::is_built))
                    .map(|(name, _)| {
                        t.arn(
                            "ecr",
                            &format!("repository/{}", super::package::ecr_repository(stack, name)),
                        )
                    }),
            );
        }
        repos.sort();
        repos.dedup();
        if !repos.is_empty() {
            statements.push(json!({ "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*" }));
            statements.push(json!({
                "Effect": "Allow",
                "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                "Resource": repos,
            }));
        }
        statements.extend([json!({
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": t.arn("logs", &format!("log-group:/bosun/{}/*", stack.stack)),
        })]);
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
    if !scheduled.is_empty() {
        let scheduler_role = format!("{}-scheduler", stack.stack);
        let statements = vec![
            json!({ "Effect": "Allow", "Action": ["ecs:RunTask"], "Resource": scheduled.iter()
                .map(|(fam, _, _)| t.arn("ecs", &format!("task-definition/{fam}:*"))).collect::<Vec<_>>() }),
            json!({ "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": format!("arn:aws:iam::{}:role{}*", t.account, role_path(&stack.stack)) }),
        ];
        roles.push(role(
            stack,
            &scheduler_role,
            "scheduler.amazonaws.com",
            statements,
        ));
        let group = b.add(
            schedule::ScheduleGroup {
                name: schedule_group(&stack.stack),
                tags: tags_kv(stack),
            },
            &[],
        );
        for (fam, j, job_deps) in &scheduled {
            let mut deps = vec![group.clone(), (role::Role::KIND, scheduler_role.clone())];
            deps.extend(job_deps.iter().cloned());
            b.add(job_schedule(stack, t, j, fam), &deps);
        }
    }
    let mut nodes: Vec<Node> = roles
        .into_iter()
        .map(|r| Node {
            spec: r.into(),
            deps: Vec::new(),
        })
        .collect();
    nodes.append(&mut b.nodes);
    // Creation order is kind order (the registry's), then the file's.
    nodes.sort_by_key(|n| KINDS.iter().position(|k| *k == n.spec.kind()));
    Rendered { nodes, preflight }
}

/// The repository ARN of an ECR image (`{account}.dkr.ecr.{region}.amazonaws.com/{repo}[:tag|@digest]`).
fn ecr_repository_arn(image: &str) -> Option<String> {
    let (host, rest) = image.split_once('/')?;
    let mut h = host.split('.');
    let (account, dkr, ecr, region) = (h.next()?, h.next()?, h.next()?, h.next()?);
    if dkr != "dkr" || ecr != "ecr" || !account.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let repo = rest.split('@').next()?;
    let repo = match repo.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => repo,
    };
    Some(format!("arn:aws:ecr:{region}:{account}:repository/{repo}"))
}

/// An IAM role with its one inline policy.
fn role(stack: &Stack, name: &str, principal: &str, statements: Vec<Value>) -> role::Role {
    role::Role {
        role_name: name.to_owned(),
        path: role_path(&stack.stack),
        assume_role_policy_document: json!({
            "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Principal": { "Service": principal }, "Action": "sts:AssumeRole" }]
        }),
        tags: tags_kv(stack),
        policy_name: (!statements.is_empty()).then(|| role::POLICY_NAME.to_owned()),
        policy_document: (!statements.is_empty())
            .then(|| json!({ "Version": "2012-10-17", "Statement": statements })),
    }
}

fn role_arn(stack: &Stack, t: &Target, name: &str) -> String {
    format!(
        "arn:aws:iam::{}:role{}{name}",
        t.account,
        role_path(&stack.stack)
    )
}

/// The task role: only what connectTo and iamRoleStatements ask for, plus what bosun
/// itself calls (metrics, task protection).
fn task_role(stack: &Stack, t: &Target, name: &str, res: &Resource, ctr: &Container) -> role::Role {
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
    if matches!(res, Resource::ScheduledJob(j) if j.singleton) {
        // bosun --singleton: the family's running tasks in the stack's cluster.
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["ecs:ListTasks"],
            "Resource": "*",
            "Condition": { "ArnEquals": { "ecs:cluster": t.arn("ecs", &format!("cluster/{}", stack.cluster)) } }
        }));
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["ecs:DescribeTasks"],
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

/// The task definition, and the secrets it reads (name, ARN pattern for IAM).
fn task_definition(
    stack: &Stack,
    t: &Target,
    name: &str,
    res: &Resource,
    ctr: &Container,
    execution_role: &str,
) -> (task_definition::TaskDefinition, Vec<(String, String)>) {
    use task_definition as td;
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
    let mut secret_refs = Vec::new();
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
    let backlog_queue = backlog_queue(stack, res);
    if let Resource::ScheduledJob(j) = res {
        if let Some(t) = j.timeout_seconds {
            env.push(("BOSUN_MAX_RUNTIME".into(), t.to_string()));
        }
        if j.singleton {
            env.push(("BOSUN_SINGLETON".into(), "true".into()));
        }
    }
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
                secret_refs.push((secret.clone(), format!("{base}*")));
                let value_from = match key {
                    Some(k) => format!("{base}:{k}::"),
                    None => base,
                };
                secrets.push(td::SecretRef {
                    name: v.name.clone(),
                    value_from,
                });
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
    let mut command: Vec<String> = ctr.entry_point.clone().unwrap_or_default();
    command.extend(ctr.command.clone().unwrap_or_default());
    let built = super::package::is_built(ctr);
    // A prebuilt image without a command of the stack's runs its own start command
    // (read from its registry by apply) under the bosun it holds.
    let own_start = !built && command.is_empty();
    let mut image_has_bosun = false;
    if own_start {
        match t.image_configs.get(name) {
            Some(cfg) if runs_bosun(&cfg.entrypoint) => image_has_bosun = true,
            Some(cfg) => {
                command = cfg.entrypoint.iter().chain(&cfg.cmd).cloned().collect();
                if let Some(sig) = &cfg.stop_signal {
                    env.push(("BOSUN_STOP_SIGNAL".into(), sig.clone()));
                }
            }
            None => command = vec![IMAGE_START.into()],
        }
    }
    env.sort();
    env.dedup_by(|a, b| a.0 == b.0);
    secrets.sort();
    let image = if built {
        t.images.get(name).cloned().unwrap_or_else(|| {
            format!(
                "{}@{}",
                super::package::repository(
                    stack,
                    name,
                    &super::package::ecr_host(&t.account, &t.region)
                ),
                super::package::UNBUILT
            )
        })
    } else {
        ctr.packaging.properties.image.clone().unwrap_or_default()
    };
    // An image bosun-deploy built has bosun as its ENTRYPOINT: without a command of
    // the stack's, the image's own start command runs under it.
    let entry_point = if (built && command.is_empty()) || image_has_bosun {
        Vec::new()
    } else {
        vec![BOSUN_PATH.into(), "--".into()]
    };
    let mut log_options = BTreeMap::new();
    log_options.insert("awslogs-group".to_owned(), log_group(stack, name));
    log_options.insert("awslogs-region".to_owned(), t.region.clone());
    log_options.insert("awslogs-stream-prefix".to_owned(), name.to_owned());
    let container = td::Container {
        name: "app".into(),
        image,
        essential: true,
        entry_point,
        command,
        environment: env
            .into_iter()
            .map(|(name, value)| td::NameValue { name, value })
            .collect(),
        secrets,
        stop_timeout: stop as i32,
        log_configuration: td::LogConfiguration {
            log_driver: "awslogs".into(),
            options: log_options,
        },
        health_check: ctr.internal_health_check.as_ref().map(|h| td::HealthCheck {
            command: vec!["CMD".into(), BOSUN_PATH.into(), "probe".into()],
            interval: h.interval_seconds.unwrap_or(30) as i32,
            timeout: h.timeout_seconds.unwrap_or(5) as i32,
            retries: h.retries.unwrap_or(3) as i32,
            start_period: h.start_period_seconds.unwrap_or(0) as i32,
        }),
        repository_credentials: ctr
            .packaging
            .properties
            .repository_credentials_secret_arn
            .as_ref()
            .map(|arn| td::RepositoryCredentials {
                credentials_parameter: arn.clone(),
            }),
    };
    let r = &ctr.resources;
    let arch = if r.architecture.as_deref() == Some("arm64") {
        "ARM64"
    } else {
        "X86_64"
    };
    let ec2 = r.instance_types.is_some();
    let (cpu, memory) = match (r.cpu, r.memory) {
        (Some(cpu), Some(mem)) => (
            Some(((cpu * 1024.0).round() as i64).to_string()),
            Some(mem.to_string()),
        ),
        // Fargate's smallest task, the documented default (validation refuses one
        // without the other).
        (None, None) if !ec2 => (Some("256".into()), Some("512".into())),
        // On EC2, one task fills one instance of the smallest listed type (validation
        // refuses a type whose size bosun-deploy does not know).
        (None, None) => r
            .instance_types
            .iter()
            .flatten()
            .filter_map(|t| instance_types::shape(t))
            .min_by_key(instance_types::Shape::task_memory)
            .map_or((None, None), |s| {
                (
                    Some(s.cpu_units().to_string()),
                    Some(s.task_memory().to_string()),
                )
            }),
        _ => (None, None),
    };
    let def = td::TaskDefinition {
        family: family(stack, name),
        network_mode: "awsvpc".into(),
        requires_compatibilities: vec![if ec2 { "EC2" } else { "FARGATE" }.into()],
        execution_role_arn: role_arn(stack, t, execution_role),
        task_role_arn: role_arn(stack, t, &format!("{}-{name}-task", stack.stack)),
        runtime_platform: td::RuntimePlatform {
            cpu_architecture: arch.into(),
            operating_system_family: "LINUX".into(),
        },
        container_definitions: vec![container],
        cpu,
        memory,
        ephemeral_storage: r
            .ephemeral_storage
            .filter(|_| !ec2)
            .map(|gib| td::EphemeralStorage {
                size_in_gib: gib as i32,
            }),
        tags: tags_ecs(stack),
    };
    (def, secret_refs)
}

fn awsvpc(stack: &Stack) -> (Vec<String>, Vec<String>, String) {
    let n = stack.network.clone();
    let (subnets, sgs, public) = n
        .map(|n| (n.subnets, n.security_groups, n.assign_public_ip))
        .unwrap_or_default();
    (
        subnets,
        sgs,
        if public { "ENABLED" } else { "DISABLED" }.into(),
    )
}

/// A service's least and most tasks.
fn service_bounds(s: &Service) -> (i64, i64) {
    let min = s
        .scaling
        .as_ref()
        .and_then(|x| x.min_instances)
        .unwrap_or(1);
    let max = s
        .scaling
        .as_ref()
        .and_then(|x| x.max_instances)
        .unwrap_or(min.max(1));
    (min, max)
}

/// An EC2 service's strategy: its own capacity provider.
fn ec2_strategy(stack: &Stack, name: &str) -> Vec<service::StrategyItem> {
    vec![service::StrategyItem {
        capacity_provider: family(stack, name),
        weight: 1,
        base: None,
    }]
}

/// The public SSM parameter of the ECS-optimized Amazon Linux 2023 AMI.
pub fn ami_parameter(architecture: Option<&str>) -> String {
    let arch = if architecture == Some("arm64") {
        "arm64/"
    } else {
        ""
    };
    format!("/aws/service/ecs/optimized-ami/amazon-linux-2023/{arch}recommended/image_id")
}

/// The instances' user data: join the cluster, keep memory for the OS and the agent,
/// keep tasks from the instance's own credentials, and (with a warm pool) wait for
/// the instance to leave the pool before registering.
fn user_data(stack: &Stack, warm_pool: bool) -> String {
    let mut config = format!(
        "ECS_CLUSTER={}\nECS_RESERVED_MEMORY={}\nECS_AWSVPC_BLOCK_IMDS=true\n",
        stack.cluster,
        instance_types::ECS_RESERVED_MEMORY
    );
    if warm_pool {
        config.push_str("ECS_WARM_POOLS_CHECK=true\n");
    }
    let script = format!("#!/bin/bash\ncat >> /etc/ecs/ecs.config <<'EOF'\n{config}EOF\n");
    aws_smithy_types::base64::encode(script)
}

/// The EC2 capacity of a resource with `instanceTypes`: the instances' role and
/// instance profile, a launch template, an Auto Scaling group and the capacity
/// provider over it. Returns the role (roles go first) and the provider's id.
fn ec2_capacity(
    b: &mut Builder,
    stack: &Stack,
    t: &Target,
    name: &str,
    ctr: &Container,
    types: &[String],
    most: i64,
) -> (role::Role, Dep) {
    let base = family(stack, name);
    let instance_name = format!("{base}-instance");
    // The ECS agent's calls, on the stack's cluster only, and the awslogs driver's
    // (on EC2 the instance writes the task's logs).
    let cluster_arn = t.arn("ecs", &format!("cluster/{}", stack.cluster));
    let instances_arn = t.arn("ecs", &format!("container-instance/{}/*", stack.cluster));
    let statements = vec![
        json!({ "Effect": "Allow", "Action": ["ecs:RegisterContainerInstance", "ecs:DeregisterContainerInstance", "ecs:SubmitContainerStateChange", "ecs:SubmitTaskStateChange", "ecs:SubmitAttachmentStateChanges"], "Resource": cluster_arn }),
        json!({ "Effect": "Allow", "Action": ["ecs:Poll", "ecs:StartTelemetrySession", "ecs:UpdateContainerInstancesState"], "Resource": instances_arn }),
        json!({ "Effect": "Allow", "Action": ["ecs:DiscoverPollEndpoint"], "Resource": "*" }),
        json!({ "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": t.arn("logs", &format!("log-group:{}:*", log_group(stack, name))) }),
    ];
    let instance_role = role(stack, &instance_name, "ec2.amazonaws.com", statements);
    let profile = b.add(
        instance_profile::InstanceProfile {
            instance_profile_name: instance_name.clone(),
            path: role_path(&stack.stack),
            role_name: instance_name.clone(),
            tags: tags_kv(stack),
        },
        &[(role::Role::KIND, instance_name.clone())],
    );
    let warm_pool = ctr.resources.enable_warm_pool == Some(true);
    let (subnets, security_groups, assign_public_ip) = awsvpc(stack);
    let template = b.add(
        launch_template::LaunchTemplate {
            launch_template_name: base.clone(),
            launch_template_data: launch_template::Data {
                image_id: format!(
                    "resolve:ssm:{}",
                    ami_parameter(ctr.resources.architecture.as_deref())
                ),
                instance_type: (types.len() == 1).then(|| types[0].clone()),
                iam_instance_profile: launch_template::Profile {
                    arn: instance_profile::arn(
                        &t.account,
                        &role_path(&stack.stack),
                        &instance_name,
                    ),
                },
                user_data: user_data(stack, warm_pool),
                network_interfaces: vec![launch_template::Nic {
                    device_index: 0,
                    associate_public_ip_address: assign_public_ip == "ENABLED",
                    groups: security_groups,
                }],
                metadata_options: launch_template::Metadata {
                    http_tokens: "required".into(),
                    http_endpoint: "enabled".into(),
                },
            },
            tags: tags_kv(stack),
        },
        &[profile],
    );
    let template_ref = asg::TemplateRef {
        launch_template_name: base.clone(),
        version: "$Latest".into(),
    };
    let (launch_template, mixed_instances_policy) = if types.len() == 1 {
        (Some(template_ref), None)
    } else {
        (
            None,
            Some(asg::Mixed {
                launch_template: asg::MixedTemplate {
                    launch_template_specification: template_ref,
                    overrides: types
                        .iter()
                        .map(|t| asg::Override {
                            instance_type: t.clone(),
                        })
                        .collect(),
                },
                instances_distribution: asg::Distribution {
                    on_demand_allocation_strategy: "prioritized".into(),
                    on_demand_percentage_above_base_capacity: 100,
                },
            }),
        )
    };
    let mut subnets = subnets;
    subnets.sort();
    let mut group_tags: Vec<asg::GroupTag> = tag_pairs(stack)
        .into_iter()
        .chain([("Name".to_owned(), base.clone())])
        .map(|(key, value)| asg::GroupTag {
            key,
            value,
            propagate_at_launch: true,
        })
        .collect();
    group_tags.sort();
    let group = b.add(
        asg::AutoScalingGroup {
            auto_scaling_group_name: base.clone(),
            min_size: 0,
            max_size: most.max(1) as i32,
            launch_template,
            mixed_instances_policy,
            vpc_zone_identifier: subnets.join(","),
            max_instance_lifetime: asg::MAX_INSTANCE_LIFETIME,
            new_instances_protected_from_scale_in: true,
            tags: group_tags,
            warm_pool: warm_pool.then(|| asg::WarmPool {
                pool_state: "Stopped".into(),
                min_size: 0,
                instance_reuse_policy: asg::ReusePolicy {
                    reuse_on_scale_in: true,
                },
            }),
        },
        &[template],
    );
    let provider = b.add(
        capacity_provider::CapacityProvider {
            name: base.clone(),
            auto_scaling_group_provider: capacity_provider::GroupProvider {
                auto_scaling_group_arn: capacity_provider::group_arn_pattern(
                    &t.region, &t.account, &base,
                ),
                managed_scaling: capacity_provider::ManagedScaling {
                    status: "ENABLED".into(),
                    target_capacity: 100,
                    minimum_scaling_step_size: 1,
                    maximum_scaling_step_size: 10,
                    instance_warmup_period: 300,
                },
                managed_termination_protection: "ENABLED".into(),
                managed_draining: "ENABLED".into(),
            },
            tags: tags_ecs(stack),
        },
        &[group],
    );
    (instance_role, provider)
}

/// A spot service's capacity provider strategy: its `onDemandBase` tasks on Fargate,
/// every other on Fargate Spot.
fn spot_strategy(s: &Service) -> Vec<service::StrategyItem> {
    let spot = service::StrategyItem {
        capacity_provider: "FARGATE_SPOT".into(),
        weight: 1,
        base: None,
    };
    match s.on_demand_base.filter(|b| *b > 0) {
        None => vec![spot],
        Some(base) => vec![
            service::StrategyItem {
                capacity_provider: "FARGATE".into(),
                weight: 0,
                base: Some(base as i32),
            },
            spot,
        ],
    }
}

/// The service, its scalable target, its scaling policies and its dashboard.
fn service(b: &mut Builder, stack: &Stack, t: &Target, name: &str, s: &Service, deps: &[Dep]) {
    use service as sv;
    let svc_name = family(stack, name);
    let (min, max) = service_bounds(s);
    let (subnets, security_groups, assign_public_ip) = awsvpc(stack);
    let res = &s.container.resources;
    let (launch_type, strategy) = if s.spot {
        (None, Some(spot_strategy(s)))
    } else if res.instance_types.is_some() {
        (None, Some(ec2_strategy(stack, name)))
    } else {
        (Some("FARGATE".to_owned()), None)
    };
    // Tasks of a given size are packed onto as few instances as hold them.
    let placement_strategy = (res.instance_types.is_some() && res.memory.is_some()).then(|| {
        vec![sv::Placement {
            kind: "binpack".into(),
            field: "memory".into(),
        }]
    });
    let svc = b.add(
        sv::Service {
            cluster: stack.cluster.clone(),
            service_name: svc_name.clone(),
            task_definition: family(stack, name),
            desired_count: min as i32,
            network_configuration: sv::NetworkConfiguration {
                awsvpc_configuration: sv::AwsVpc {
                    subnets,
                    security_groups,
                    assign_public_ip,
                },
            },
            deployment_configuration: sv::DeploymentConfiguration {
                deployment_circuit_breaker: sv::CircuitBreaker {
                    enable: true,
                    rollback: true,
                },
                minimum_healthy_percent: 100,
                maximum_percent: 200,
            },
            launch_type,
            capacity_provider_strategy: strategy,
            placement_strategy,
            enable_ecs_managed_tags: true,
            propagate_tags: "SERVICE".into(),
            tags: tags_ecs(stack),
            scaled: s.scaling.is_some(),
        },
        deps,
    );
    let resource_id = format!("service/{}/{svc_name}", stack.cluster);
    if let Some(sc) = &s.scaling {
        let target = b.add(
            scaling::ScalableTarget {
                service_namespace: "ecs".into(),
                resource_id: resource_id.clone(),
                scalable_dimension: "ecs:service:DesiredCount".into(),
                min_capacity: min as i32,
                max_capacity: max as i32,
                tags: tags_map(stack),
            },
            std::slice::from_ref(&svc),
        );
        let pol = sc.scaling_policy.clone().unwrap_or_default();
        // One target-tracking policy per metric: Application Auto Scaling scales out
        // when any is above its target and in only when all are below. Out fast (60 s
        // cooldown), in cautiously (300 s).
        let mut add = |suffix: &str,
                       value: f64,
                       predefined: Option<&str>,
                       custom: Option<scaling::Customized>| {
            b.add(
                scaling::ScalingPolicy {
                    policy_name: format!("{svc_name}-{suffix}"),
                    service_namespace: "ecs".into(),
                    resource_id: resource_id.clone(),
                    scalable_dimension: "ecs:service:DesiredCount".into(),
                    policy_type: "TargetTrackingScaling".into(),
                    step_scaling_policy_configuration: None,
                    target_tracking_scaling_policy_configuration: Some(scaling::TargetTracking {
                        target_value: value,
                        predefined_metric_specification: predefined.map(|p| scaling::Predefined {
                            predefined_metric_type: p.into(),
                        }),
                        customized_metric_specification: custom,
                        scale_out_cooldown: 60,
                        scale_in_cooldown: 300,
                        disable_scale_in: false,
                    }),
                },
                std::slice::from_ref(&target),
            );
        };
        if let Some(v) = pol.keep_avg_cpu_utilization_under {
            add("cpu", v, Some("ECSServiceAverageCPUUtilization"), None);
        }
        if let Some(v) = pol.keep_avg_memory_utilization_under {
            add(
                "memory",
                v,
                Some("ECSServiceAverageMemoryUtilization"),
                None,
            );
        }
        if let Some(v) = pol.keep_backlog_per_instance_under {
            let dim = |n: &str, v: &str| scaling::Dimension {
                name: n.into(),
                value: v.into(),
            };
            add(
                "backlog",
                v,
                None,
                Some(scaling::Customized {
                    metric_name: "BacklogPerTask".into(),
                    namespace: "Bosun".into(),
                    dimensions: vec![
                        dim("ServiceName", &svc_name),
                        dim("ClusterName", &stack.cluster),
                    ],
                    statistic: "Average".into(),
                }),
            );
        }
        if min == 0 {
            let idle = sc.idle_minutes.unwrap_or(DEFAULT_IDLE_MINUTES);
            let queues: Vec<String> = s
                .container
                .connect_to
                .iter()
                .filter_map(|q| match stack.resources.get(q) {
                    Some(Resource::SqsQueue(x)) => Some(queue_name(stack, q, x.fifo)),
                    _ => None,
                })
                .collect();
            let zero = ScaleToZero {
                stack,
                t,
                svc_name: &svc_name,
                resource_id: &resource_id,
                queues: &queues,
            };
            let wake = b.add(
                zero.policy("wake", wake_steps(pol.keep_backlog_per_instance_under, max)),
                std::slice::from_ref(&target),
            );
            b.add(zero.wake_alarm(), &[wake]);
            let to_zero = b.add(
                zero.policy(
                    "idle",
                    vec![scaling::Step {
                        metric_interval_lower_bound: None,
                        metric_interval_upper_bound: Some(0.0),
                        scaling_adjustment: 0,
                    }],
                ),
                std::slice::from_ref(&target),
            );
            b.add(zero.idle_alarm(idle), &[to_zero]);
        }
    }
    let metric =
        |ns: &str, m: &str| json!([ns, m, "ServiceName", svc_name, "ClusterName", stack.cluster]);
    let widget = |x: i64, y: i64, title: &str, m: Value| json!({ "type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": { "title": title, "region": t.region, "stat": "Average", "period": 60, "metrics": [m] } });
    let body = json!({ "widgets": [
        widget(0, 0, "CPU %", metric("AWS/ECS", "CPUUtilization")),
        widget(12, 0, "Memory %", metric("AWS/ECS", "MemoryUtilization")),
        widget(0, 6, "Backlog per task", metric("Bosun", "BacklogPerTask")),
        widget(12, 6, "Running tasks", metric("ECS/ContainerInsights", "RunningTaskCount")),
        dashboard::owner_widget(&stack.stack),
    ]});
    b.add(
        dashboard::Dashboard {
            dashboard_name: svc_name,
            dashboard_body: body,
        },
        &[svc],
    );
}

/// The alarms and step policies of a service that scales to zero: a wake alarm (on
/// the queues' own metrics, since no task runs to publish any) and an idle alarm that
/// takes it to zero once the queues have been empty for the idle time.
struct ScaleToZero<'a> {
    stack: &'a Stack,
    t: &'a Target,
    svc_name: &'a str,
    resource_id: &'a str,
    /// The connected queues' names.
    queues: &'a [String],
}

/// How many steps a wake policy has at most: beyond them, target tracking takes over
/// once the tasks publish their backlog.
const WAKE_STEPS: i64 = 10;

/// The wake policy's steps, on the alarm's metric (messages waiting, threshold 1):
/// ceil(waiting ÷ target) tasks, at least 1, at most `max` (and [`WAKE_STEPS`]).
/// Without a backlog target, one task.
fn wake_steps(target: Option<f64>, max: i64) -> Vec<scaling::Step> {
    let n = match target {
        Some(_) => max.clamp(1, WAKE_STEPS),
        None => 1,
    };
    let per = target.unwrap_or(1.0);
    (1..=n)
        .map(|k| scaling::Step {
            metric_interval_lower_bound: Some((k - 1) as f64 * per),
            metric_interval_upper_bound: (k < n).then_some(k as f64 * per),
            scaling_adjustment: k as i32,
        })
        .collect()
}

impl ScaleToZero<'_> {
    fn policy(&self, suffix: &str, steps: Vec<scaling::Step>) -> scaling::ScalingPolicy {
        scaling::ScalingPolicy {
            policy_name: format!("{}-{suffix}", self.svc_name),
            service_namespace: "ecs".into(),
            resource_id: self.resource_id.to_owned(),
            scalable_dimension: "ecs:service:DesiredCount".into(),
            policy_type: "StepScaling".into(),
            target_tracking_scaling_policy_configuration: None,
            step_scaling_policy_configuration: Some(scaling::StepScaling {
                adjustment_type: "ExactCapacity".into(),
                step_adjustments: steps,
                cooldown: 60,
                metric_aggregation_type: "Maximum".into(),
            }),
        }
    }

    /// The queues' metrics: `v0, v1, ...` visible, `f0, f1, ...` in flight (each
    /// queue's 1-minute maximum); and the sums of each.
    fn queue_metrics(&self) -> (Vec<alarm::Query>, String, String) {
        let q = |id: String, metric: &str, queue: &str| alarm::Query {
            id,
            expression: None,
            metric_stat: Some(alarm::MetricStat {
                metric: alarm::Metric {
                    namespace: "AWS/SQS".into(),
                    metric_name: metric.into(),
                    dimensions: vec![alarm::Dimension {
                        name: "QueueName".into(),
                        value: queue.into(),
                    }],
                },
                period: 60,
                stat: "Maximum".into(),
            }),
            label: None,
            return_data: false,
        };
        let mut out = Vec::new();
        for (i, queue) in self.queues.iter().enumerate() {
            out.push(q(
                format!("v{i}"),
                "ApproximateNumberOfMessagesVisible",
                queue,
            ));
            out.push(q(
                format!("f{i}"),
                "ApproximateNumberOfMessagesNotVisible",
                queue,
            ));
        }
        let sum = |p: &str| {
            (0..self.queues.len())
                .map(|i| format!("{p}{i}"))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        (out, sum("v"), sum("f"))
    }

    fn alarm(
        &self,
        suffix: &str,
        description: String,
        expression: String,
        label: &str,
        (periods, comparison): (i64, &str),
    ) -> alarm::Alarm {
        let (mut metrics, _, _) = self.queue_metrics();
        metrics.push(alarm::Query {
            id: suffix.into(),
            expression: Some(expression),
            metric_stat: None,
            label: Some(label.into()),
            return_data: true,
        });
        alarm::Alarm {
            alarm_name: format!("{}-{suffix}", self.svc_name),
            alarm_description: description,
            actions_enabled: true,
            alarm_actions: vec![alarm::policy_arn_pattern(
                &self.t.region,
                &self.t.account,
                self.resource_id,
                &format!("{}-{suffix}", self.svc_name),
            )],
            metrics,
            evaluation_periods: periods as i32,
            datapoints_to_alarm: periods as i32,
            threshold: 1.0,
            comparison_operator: comparison.into(),
            // No data is no reason to scale: neither to wake, nor to stop work.
            treat_missing_data: "notBreaching".into(),
            tags: tags_kv(self.stack),
        }
    }

    /// Messages wait and none is in flight, so nothing takes them (the service is at
    /// zero): the wake policy sets the tasks by how many wait.
    fn wake_alarm(&self) -> alarm::Alarm {
        let (_, visible, in_flight) = self.queue_metrics();
        self.alarm(
            "wake",
            format!(
                "bosun-deploy: wakes {} when messages wait in {} and none is in flight",
                self.svc_name,
                self.queues.join(", ")
            ),
            format!("IF(({in_flight}) == 0, {visible}, 0)"),
            "messages waiting with none in flight",
            (1, "GreaterThanOrEqualToThreshold"),
        )
    }

    /// Nothing visible and nothing in flight for `idle` minutes in a row: the idle
    /// policy takes the service to zero.
    fn idle_alarm(&self, idle: i64) -> alarm::Alarm {
        let (_, visible, in_flight) = self.queue_metrics();
        self.alarm(
            "idle",
            format!(
                "bosun-deploy: takes {} to zero after {idle} min with {} empty (nothing visible, nothing in flight)",
                self.svc_name,
                self.queues.join(", ")
            ),
            format!("{visible} + {in_flight}"),
            "messages visible or in flight",
            (idle, "LessThanThreshold"),
        )
    }
}

/// The schedule of a job: an ECS RunTask target.
fn job_schedule(stack: &Stack, t: &Target, j: &Job, fam: &str) -> schedule::Schedule {
    use schedule as sc;
    let (subnets, security_groups, assign_public_ip) = awsvpc(stack);
    sc::Schedule {
        name: fam.to_owned(),
        group_name: schedule_group(&stack.stack),
        schedule_expression: j.schedule.clone(),
        schedule_expression_timezone: j.timezone.clone().unwrap_or_else(|| "UTC".into()),
        flexible_time_window: sc::FlexibleTimeWindow { mode: "OFF".into() },
        state: "ENABLED".into(),
        target: sc::Target {
            arn: t.arn("ecs", &format!("cluster/{}", stack.cluster)),
            role_arn: role_arn(stack, t, &format!("{}-scheduler", stack.stack)),
            retry_policy: sc::RetryPolicy {
                maximum_event_age_in_seconds: j.max_event_age_seconds.unwrap_or(86400) as i32,
                maximum_retry_attempts: j.retry_attempts.unwrap_or(0) as i32,
            },
            ecs_parameters: sc::EcsParameters {
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
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_images_name_their_repository() {
        assert_eq!(
            ecr_repository_arn("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1.2")
                .as_deref(),
            Some("arn:aws:ecr:eu-west-1:123456789012:repository/team/app")
        );
        assert_eq!(
            ecr_repository_arn("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app@sha256:ab")
                .as_deref(),
            Some("arn:aws:ecr:eu-west-1:123456789012:repository/app")
        );
        assert_eq!(ecr_repository_arn("repo/app:1.2"), None);
        assert_eq!(ecr_repository_arn("ghcr.io/o/app:1"), None);
    }

    #[test]
    fn wake_steps_give_tasks_by_backlog() {
        let steps = |t, max| {
            super::wake_steps(t, max)
                .iter()
                .map(|s| {
                    (
                        s.metric_interval_lower_bound,
                        s.metric_interval_upper_bound,
                        s.scaling_adjustment,
                    )
                })
                .collect::<Vec<_>>()
        };
        // Without a backlog target: one task, whatever waits.
        assert_eq!(steps(None, 5), [(Some(0.0), None, 1)]);
        // With one: ceil(waiting / target) tasks (the alarm's threshold is 1, so a
        // step's bounds are waiting - 1), the last step open.
        assert_eq!(
            steps(Some(5.0), 3),
            [
                (Some(0.0), Some(5.0), 1),
                (Some(5.0), Some(10.0), 2),
                (Some(10.0), None, 3)
            ]
        );
        // At most WAKE_STEPS steps; target tracking goes on from there.
        let many = super::wake_steps(Some(1.0), 50);
        assert_eq!(many.len() as i64, super::WAKE_STEPS);
        assert_eq!(many.last().unwrap().metric_interval_upper_bound, None);
    }

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
