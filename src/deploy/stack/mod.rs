//! The stack file's model (Stacktape / FlexStack shape). Unknown keys are rejected by
//! the JSON Schema (`schema/bosun-stack.schema.json`) before this is built, and again
//! here (`deny_unknown_fields`).

pub mod copilot;
pub mod directive;
pub mod instance_types;
pub mod kinds;
pub mod limits;
pub mod schedule;
pub mod validate;
pub mod when;
pub mod yaml;

use std::collections::BTreeMap;

use serde::Deserialize;

pub use kinds::{Bucket, Forwarding, ForwardingProps, LifecycleProps, LifecycleRule, Port};

/// Amazon SES, as `connectTo` names it (Stacktape's `aws:ses`): the task role may send
/// email.
pub const SES: &str = "aws:ses";

/// The AWS services `connectTo` knows.
pub const AWS_SERVICES: &[&str] = &[SES];

/// The resource types a stack file may declare (the schema's `type` enum).
pub const RESOURCE_TYPES: &[&str] = &[
    "sqs-queue",
    "worker-service",
    "private-service",
    "scheduled-job",
    "bucket",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Stack {
    pub stack: String,
    #[serde(default = "default_cluster")]
    pub cluster: String,
    pub region: Option<String>,
    pub account: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub network: Option<Network>,
    /// Where built images go: `HOST[:PORT]/NAMESPACE` of an OCI registry, pushed to
    /// with the Docker engine's own credentials.
    pub registry: Option<String>,
    pub resources: BTreeMap<String, Resource>,
    /// The stage it was loaded for (`--stage`); `stack` then ends with `-{stage}`, so
    /// every name and tag the stack makes carries it.
    #[serde(skip)]
    pub stage: Option<String>,
    /// Where each value came from (filled in by validation), for messages found after
    /// it: a missing secret names the line that references it.
    #[serde(skip)]
    pub origin: Origin,
}

/// The stack file's name and where each of its values starts.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub file: String,
    pub positions: yaml::Positions,
}

impl Stack {
    /// `file:line:column (path)` of the value at `pointer` (or its nearest ancestor).
    pub fn locate(&self, pointer: &str) -> String {
        let mut p = pointer.to_owned();
        let pos = loop {
            if let Some(pos) = self.origin.positions.get(&p) {
                break Some(*pos);
            }
            match p.rfind('/') {
                Some(i) => p.truncate(i),
                None => break None,
            }
        };
        let path = pointer.trim_start_matches('/').replace('/', ".");
        match pos {
            Some(pos) => format!("{}:{}:{} ({path})", self.origin.file, pos.line, pos.col),
            None => format!("{} ({path})", self.origin.file),
        }
    }
}

/// No `cluster:`: the stack's own, named after the stack (filled in by validation),
/// never the account's shared `default`.
fn default_cluster() -> String {
    String::new()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Network {
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub assign_public_ip: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(
    tag = "type",
    content = "properties",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
pub enum Resource {
    SqsQueue(#[serde(default)] Queue),
    /// `private-service` (Stacktape's name) is a worker service with `ports`.
    #[serde(alias = "private-service")]
    WorkerService(Box<Service>),
    ScheduledJob(Box<Job>),
    Bucket(#[serde(default)] Bucket),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Queue {
    pub visibility_timeout_seconds: Option<i64>,
    pub message_retention_seconds: Option<i64>,
    pub delay_seconds: Option<i64>,
    #[serde(default)]
    pub fifo: bool,
    pub dead_letter_queue: Option<DeadLetter>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeadLetter {
    pub target_queue: Option<String>,
    pub max_receive_count: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Packaging {
    #[serde(rename = "type")]
    pub kind: String,
    pub properties: PackagingProps,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PackagingProps {
    pub image: Option<String>,
    /// The build context, relative to the stack file's folder.
    #[serde(alias = "buildContext")]
    pub build_context_path: Option<String>,
    /// The Dockerfile, relative to the build context (default `Dockerfile`).
    pub dockerfile_path: Option<String>,
    #[serde(default)]
    pub build_args: Vec<BuildArg>,
    pub build_target: Option<String>,
    /// image-buildpack: the entry file, relative to the stack file's folder.
    pub entryfile_path: Option<String>,
    /// image-buildpack: the base image of the generated Dockerfile.
    pub base_image: Option<String>,
    /// external-buildpack: the app's folder, relative to the stack file's (default `.`).
    pub source_directory_path: Option<String>,
    /// external-buildpack: the Cloud Native Buildpacks builder image.
    pub builder: Option<String>,
    /// external-buildpack: buildpacks to use instead of the builder's detection.
    #[serde(default)]
    pub buildpacks: Vec<String>,
    /// The ARN of a Secrets Manager secret (`username`, `password`) for a private
    /// registry's image: ECS pulls with it, and bosun-deploy reads the image's config
    /// with it.
    pub repository_credentials_secret_arn: Option<String>,
    /// prebuilt-image: whether the image holds bosun at /usr/local/bin/bosun (and
    /// bosun-aws beside it where the resource needs it). Unset: bosun-deploy reads the
    /// image's config and adds bosun where it finds none; `true`: the image's own bosun
    /// runs (its registry is read only for its start command); `false`: bosun is added.
    pub includes_bosun: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BuildArg {
    pub arg_name: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    pub health_check_command: Vec<String>,
    pub interval_seconds: Option<i64>,
    pub timeout_seconds: Option<i64>,
    pub start_period_seconds: Option<i64>,
    pub retries: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Resources {
    pub cpu: Option<f64>,
    pub memory: Option<i64>,
    pub instance_types: Option<Vec<String>>,
    pub architecture: Option<String>,
    /// Fargate's task storage, GiB (21..=200; 20 when not given).
    pub ephemeral_storage: Option<i64>,
    /// With exactly one of `instance_types`: a warm pool of stopped, pre-initialised
    /// instances.
    pub enable_warm_pool: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Logging {
    pub retention_days: Option<i64>,
    /// Where the log group's events also go (Firehose to an HTTP endpoint).
    pub forwarding: Option<Forwarding>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    #[serde(rename = "Effect", default = "allow")]
    pub effect: String,
    #[serde(rename = "Action")]
    pub action: Vec<String>,
    #[serde(rename = "Resource")]
    pub resource: Vec<String>,
}

fn allow() -> String {
    "Allow".into()
}

/// What a worker service and a scheduled job have in common: the container. (No
/// `deny_unknown_fields` here: it is flattened into both, and the schema has already
/// rejected unknown keys.)
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub packaging: Packaging,
    pub command: Option<Vec<String>>,
    pub entry_point: Option<Vec<String>>,
    #[serde(default)]
    pub environment: Vec<EnvVar>,
    #[serde(default)]
    pub connect_to: Vec<String>,
    pub internal_health_check: Option<HealthCheck>,
    pub stop_timeout: Option<i64>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub logging: Logging,
    #[serde(default)]
    pub iam_role_statements: Vec<Statement>,
    /// ECS Exec into the tasks (`bosun-deploy exec`).
    #[serde(default)]
    pub enable_execute_command: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    #[serde(flatten)]
    pub container: Container,
    #[serde(default)]
    pub spot: bool,
    /// With `spot`: how many tasks run on on-demand Fargate before any goes to Spot.
    pub on_demand_base: Option<i64>,
    pub scaling: Option<Scaling>,
    #[serde(default)]
    pub deployment: Deployment,
    /// The ports its tasks take connections on from the stack's other tasks (a
    /// private DNS name in Cloud Map, and the stack's security group's rules).
    #[serde(default)]
    pub ports: Vec<Port>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Deployment {
    /// Roll a deployment back when messages arrive in a connected queue's dead-letter
    /// queue (default: true where one has a dead-letter queue).
    pub rollback_on_dead_letters: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scaling {
    pub min_instances: Option<i64>,
    pub max_instances: Option<i64>,
    /// With `minInstances: 0`: the minutes the connected queues must stay empty
    /// (nothing visible, nothing in flight) before the service goes to zero.
    pub idle_minutes: Option<i64>,
    pub scaling_policy: Option<ScalingPolicy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScalingPolicy {
    pub keep_avg_cpu_utilization_under: Option<f64>,
    pub keep_avg_memory_utilization_under: Option<f64>,
    pub keep_backlog_per_instance_under: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    #[serde(flatten)]
    pub container: Container,
    /// One expression, or a list: a Scheduler schedule each, running the same task.
    pub schedule: Schedules,
    pub timezone: Option<String>,
    pub task_count: Option<i64>,
    pub max_event_age_seconds: Option<i64>,
    pub retry_attempts: Option<i64>,
    /// A run's time limit: bosun's `--max-runtime`.
    pub timeout_seconds: Option<i64>,
    /// A run that starts while an earlier one is still going ends at once: bosun's
    /// `--singleton`.
    #[serde(default)]
    pub singleton: bool,
    /// A run whose worker exits non-zero is retried this many times inside the same
    /// task (bosun's `--restart on-failure --max-restarts N`).
    pub retry_on_failure: Option<i64>,
    /// `false`: the schedule is kept, disabled (paused).
    pub enabled: Option<bool>,
    /// Scheduler's flexible time window (minutes); none: runs at the exact time.
    pub flexible_time_window_minutes: Option<i64>,
    /// ISO 8601: the schedule runs from (and until) these times.
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    /// An sqs-queue of the stack: the Scheduler sends it the invocations it could not
    /// make.
    pub dead_letter_queue: Option<String>,
    /// Fargate Spot.
    #[serde(default)]
    pub spot: bool,
    pub alerts: Option<Alerts>,
}

/// A job's schedule expressions, as the file gives them (one or a list).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Schedules {
    One(String),
    Many(Vec<String>),
}

impl Schedules {
    pub fn all(&self) -> Vec<&str> {
        match self {
            Schedules::One(s) => vec![s.as_str()],
            Schedules::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }

    /// The JSON pointer suffix of expression `i` (`/schedule` or `/schedule/1`).
    pub fn pointer(&self, i: usize) -> String {
        match self {
            Schedules::One(_) => "/schedule".into(),
            Schedules::Many(_) => format!("/schedule/{i}"),
        }
    }
}

/// A job's alerts: a failed run, and no successful run for a while.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Alerts {
    #[serde(default)]
    pub on_failure: bool,
    /// A duration (`26h`, `2d`, `90m`).
    pub not_succeeded_within: Option<String>,
    #[serde(default)]
    pub email: Vec<String>,
    pub sns_topic_arn: Option<String>,
}

impl Resource {
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::SqsQueue(_) => "sqs-queue",
            Resource::WorkerService(_) => "worker-service",
            Resource::ScheduledJob(_) => "scheduled-job",
            Resource::Bucket(_) => "bucket",
        }
    }

    pub fn container(&self) -> Option<&Container> {
        match self {
            Resource::SqsQueue(_) | Resource::Bucket(_) => None,
            Resource::WorkerService(s) => Some(&s.container),
            Resource::ScheduledJob(j) => Some(&j.container),
        }
    }
}

impl Packaging {
    /// Whether this is auto-packaging (a Dockerfile bosun-deploy generates).
    pub fn is_buildpack(&self) -> bool {
        is_buildpack(&self.kind)
    }
}

/// Whether a packaging type is auto-packaging.
pub fn is_buildpack(kind: &str) -> bool {
    kind == "image-buildpack" || kind == "stacktape-image-buildpack"
}

impl Container {
    /// Whether the deployer builds this container's image (else it is prebuilt).
    pub fn is_built(&self) -> bool {
        let kind = self.packaging.kind.as_str();
        kind == "custom-dockerfile" || kind == "external-buildpack" || is_buildpack(kind)
    }

    /// A prebuilt image run without a command or entry point of the file's: its own
    /// start command runs (read from its registry by apply).
    pub fn runs_image_start(&self) -> bool {
        !self.is_built()
            && self.command.as_ref().is_none_or(Vec::is_empty)
            && self.entry_point.as_ref().is_none_or(Vec::is_empty)
    }

    /// The Docker architecture of the task (`amd64`, `arm64`).
    pub fn docker_arch(&self) -> &'static str {
        match self.resources.architecture.as_deref() {
            Some("arm64") => "arm64",
            _ => "amd64",
        }
    }
}

impl Service {
    /// The least and most tasks (`maxInstances` defaults to `max(minInstances, 1)`).
    pub fn bounds(&self) -> (i64, i64) {
        let min = self
            .scaling
            .as_ref()
            .and_then(|x| x.min_instances)
            .unwrap_or(1);
        let max = self
            .scaling
            .as_ref()
            .and_then(|x| x.max_instances)
            .unwrap_or(min.max(1));
        (min, max)
    }
}

impl Stack {
    /// The names of the Secrets Manager secrets the file's `$Secret` directives read,
    /// sorted, once each.
    pub fn secret_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .resources
            .values()
            .filter_map(Resource::container)
            .flat_map(|c| {
                // The environment's, and a log forwarding's API key.
                c.environment.iter().filter_map(|v| v.value.as_str()).chain(
                    c.logging
                        .forwarding
                        .as_ref()
                        .and_then(|f| f.properties.api_key.as_deref()),
                )
            })
            .filter_map(|s| match directive::directive(s) {
                Ok(Some(directive::Directive::Secret { name, .. })) => Some(name),
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether `name` is a FIFO sqs-queue of the stack.
    pub fn is_fifo(&self, name: &str) -> bool {
        matches!(self.resources.get(name), Some(Resource::SqsQueue(q)) if q.fifo)
    }

    /// Whether `name` is an sqs-queue of the stack.
    pub fn is_queue(&self, name: &str) -> bool {
        matches!(self.resources.get(name), Some(Resource::SqsQueue(_)))
    }

    /// Whether `name` is a bucket of the stack.
    pub fn is_bucket(&self, name: &str) -> bool {
        matches!(self.resources.get(name), Some(Resource::Bucket(_)))
    }

    /// The ports of `name`, a worker service that takes connections (none else).
    pub fn ports(&self, name: &str) -> &[Port] {
        match self.resources.get(name) {
            Some(Resource::WorkerService(s)) => &s.ports,
            _ => &[],
        }
    }

    /// The worker services with ports, by name: each gets a private DNS name.
    pub fn private_services(&self) -> Vec<(&str, &[Port])> {
        self.resources
            .keys()
            .map(|n| (n.as_str(), self.ports(n)))
            .filter(|(_, p)| !p.is_empty())
            .collect()
    }

    /// Whether any service takes connections: the stack then has a private DNS
    /// namespace and its own security group, also beside a `network`'s groups.
    pub fn has_ports(&self) -> bool {
        !self.private_services().is_empty()
    }

    /// The queue whose backlog bosun publishes for a service (a backlog target and a
    /// connected queue), if any.
    pub fn backlog_queue<'a>(&'a self, res: &'a Resource) -> Option<&'a String> {
        let Resource::WorkerService(s) = res else {
            return None;
        };
        s.scaling
            .as_ref()
            .and_then(|sc| sc.scaling_policy.as_ref())
            .and_then(|p| p.keep_backlog_per_instance_under)
            .and_then(|_| s.container.connect_to.iter().find(|q| self.is_queue(q)))
    }

    /// The connected queues (of a service) whose dead letters roll its deployments
    /// back: those with a `deadLetterQueue`, unless the service turns it off.
    pub fn rollback_dead_letters<'a>(&'a self, s: &'a Service) -> Vec<&'a str> {
        if s.deployment.rollback_on_dead_letters == Some(false) {
            return Vec::new();
        }
        s.container
            .connect_to
            .iter()
            .filter(|q| {
                matches!(self.resources.get(q.as_str()), Some(Resource::SqsQueue(q)) if q.dead_letter_queue.is_some())
            })
            .map(String::as_str)
            .collect()
    }

    /// Why a resource's bosun needs `bosun-aws` (its AWS helper) in the image, if it
    /// does: publishing a queue's backlog (CloudWatch, SQS) or a singleton job's check
    /// of earlier runs (ECS).
    pub fn needs_helper(&self, res: &Resource) -> Option<&'static str> {
        if self.backlog_queue(res).is_some() {
            return Some("it publishes its queue's backlog to CloudWatch");
        }
        match res {
            Resource::ScheduledJob(j) if j.singleton => {
                Some("it is a singleton job, which asks ECS for earlier runs")
            }
            _ => None,
        }
    }
}

impl HealthCheck {
    pub fn interval(&self) -> i64 {
        self.interval_seconds
            .unwrap_or(limits::DEFAULT_HEALTH_INTERVAL)
    }
    pub fn timeout(&self) -> i64 {
        self.timeout_seconds
            .unwrap_or(limits::DEFAULT_HEALTH_TIMEOUT)
    }
    pub fn retries(&self) -> i64 {
        self.retries.unwrap_or(limits::DEFAULT_HEALTH_RETRIES)
    }
    pub fn start_period(&self) -> i64 {
        self.start_period_seconds
            .unwrap_or(limits::DEFAULT_HEALTH_START_PERIOD)
    }
}

impl Container {
    /// ECS's stopTimeout of the container (the file's, else ECS's default on Fargate).
    pub fn stop_timeout(&self) -> i64 {
        self.stop_timeout.unwrap_or(limits::DEFAULT_STOP_TIMEOUT)
    }
}
