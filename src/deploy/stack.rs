//! The stack file's model (Stacktape / FlexStack shape). Unknown keys are rejected by
//! the JSON Schema (`schema/bosun-stack.schema.json`) before this is built, and again
//! here (`deny_unknown_fields`).

use std::collections::BTreeMap;

use serde::Deserialize;

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
}

fn default_cluster() -> String {
    "default".into()
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
    WorkerService(Box<Service>),
    ScheduledJob(Box<Job>),
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
    pub schedule: String,
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
}

impl Resource {
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::SqsQueue(_) => "sqs-queue",
            Resource::WorkerService(_) => "worker-service",
            Resource::ScheduledJob(_) => "scheduled-job",
        }
    }

    pub fn container(&self) -> Option<&Container> {
        match self {
            Resource::SqsQueue(_) => None,
            Resource::WorkerService(s) => Some(&s.container),
            Resource::ScheduledJob(j) => Some(&j.container),
        }
    }
}
