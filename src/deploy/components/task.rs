//! What a worker service or a scheduled job runs: its log group, task role, ECR
//! repository (for an image bosun-deploy builds) and task definition, with bosun wired
//! in as the container's entry point, its health check as `bosun probe`, and the
//! `BOSUN_*` variables the stack file sets.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{roles, Builder, Cx, Dep};
use crate::deploy::engine::Kind;
use crate::deploy::naming::{self, BOSUN_PATH};
use crate::deploy::resources::{
    log_group::LogGroup, repository, role::Role, task_definition as td,
};
use crate::deploy::stack::directive::{directive, is_version_id, Directive};
use crate::deploy::stack::limits::DEFAULT_LOG_RETENTION;
use crate::deploy::stack::{instance_types, Container, Resource};

/// What `render` (which reads no registry) writes for the start command of a
/// prebuilt image without a command: apply reads it from the image's config.
pub const IMAGE_START: &str = "(the image's ENTRYPOINT and CMD, read from its registry by apply)";

/// What of an image's config bosun-deploy needs to run it under bosun.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub stop_signal: Option<String>,
    pub user: Option<String>,
    /// It carries the label of an image bosun-deploy added bosun to.
    pub bosun_label: bool,
}

impl ImageConfig {
    /// Whether the image holds bosun: its ENTRYPOINT starts with it, or bosun-deploy
    /// added it (the label). Any other image gets bosun added by apply.
    pub fn holds_bosun(&self) -> bool {
        self.bosun_label || runs_bosun(&self.entrypoint)
    }
}

/// Add a container's log group, task role, repository and task definition; returns
/// the task definition's id.
pub fn add(
    cx: &Cx<'_>,
    b: &mut Builder,
    name: &str,
    res: &Resource,
    ctr: &Container,
    queues: &BTreeMap<String, Dep>,
) -> Dep {
    let lg = b.add(
        LogGroup {
            log_group_name: cx.log_group(name),
            retention_in_days: ctr.logging.retention_days.unwrap_or(DEFAULT_LOG_RETENTION) as i32,
            tags: cx.tags_map(),
        },
        &[],
    );
    let task_role = b.add(roles::task_role(cx, name, res, ctr), &[]);
    let execution = (Role::KIND, naming::execution_role(cx.name()));
    // A built image (or one bosun was added to) without the stack's registry goes to
    // its ECR repository.
    let owned = cx.t.owns_image(name, ctr);
    let ecr = (owned && cx.stack.registry.is_none()).then(|| {
        b.add(
            repository::Repository {
                repository_name: naming::ecr_repository(cx.name(), name),
                image_scanning_configuration: repository::Scanning { scan_on_push: true },
                image_tag_mutability: "MUTABLE".into(),
                lifecycle_policy_text: repository::lifecycle_policy(),
                tags: cx.tags_kv(),
            },
            &[],
        )
    });
    let (def, grants) = task_definition(cx, name, res, ctr);
    for g in grants {
        let at = (g.name.clone(), cx.stack.locate(&g.pointer));
        if let Some(k) = &g.key {
            b.preflight
                .secret_keys
                .push((g.name.clone(), k.clone(), at.1.clone()));
        }
        if g.arn.contains(":ssm:") {
            b.preflight.params.push(at);
        } else {
            b.preflight.secrets.push(at);
        }
        b.secret_arns.push(g.arn);
    }
    // A private registry's credentials: the execution role reads them for ECS (unless
    // ECS pulls the image with bosun added from the stack's repository instead).
    if let Some(arn) = &ctr.packaging.properties.repository_credentials_secret_arn {
        b.preflight.secrets.push((
            arn.clone(),
            cx.stack.locate(&format!(
                "/resources/{name}/properties/packaging/properties/repositoryCredentialsSecretArn"
            )),
        ));
        if !owned {
            // The ARN as given (complete), or, given without its suffix, that secret's.
            b.secret_arns.push(arn.clone());
            b.secret_arns.push(format!("{arn}-??????"));
        }
    }
    let mut deps = vec![lg, task_role, execution];
    deps.extend(ecr);
    deps.extend(ctr.connect_to.iter().filter_map(|q| queues.get(q).cloned()));
    b.add(def, &deps)
}

/// ECS's start period for `bosun probe`: the file's, but at least long enough for
/// bosun's first check to end (one interval, then up to its timeout), so ECS counts no
/// probe that ran before bosun knew anything; at most 300 s, ECS's limit (ECS API
/// reference, HealthCheck: startPeriod, "0 and 300 seconds"; failures within it are
/// not counted).
pub fn ecs_start_period(h: &crate::deploy::stack::HealthCheck) -> i64 {
    h.start_period().max(h.interval() + h.timeout()).min(300)
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

/// Whether an image's ENTRYPOINT starts with bosun (`bosun-deploy inject`, or a
/// Dockerfile that puts it there): it runs its start command under bosun as it is.
fn runs_bosun(entrypoint: &[String]) -> bool {
    entrypoint
        .first()
        .is_some_and(|e| e == BOSUN_PATH || e.ends_with("/bosun") || e == "bosun")
}

/// A secret or parameter a container reads: its name (or ARN) as the file gives it,
/// the ARN (pattern) IAM grants, and where the file references it.
pub struct Grant {
    pub name: String,
    pub arn: String,
    pub pointer: String,
    /// The JSON key of the secret the container reads.
    pub key: Option<String>,
}

/// A container's environment: its variables (name, value), the secrets it reads (as
/// ECS names them), and those secrets' names with the ARN patterns IAM grants.
struct Environment {
    vars: Vec<(String, String)>,
    secrets: Vec<td::SecretRef>,
    grants: Vec<Grant>,
}

/// The `BOSUN_*` variables, the `connectTo` variables and the file's own environment
/// (directives resolved); and the secrets the container reads.
fn environment(cx: &Cx<'_>, name: &str, res: &Resource, ctr: &Container) -> Environment {
    let stack = cx.stack;
    let mut env: Vec<(String, String)> = vec![
        (
            "BOSUN_STOP_TIMEOUT".into(),
            format!("{}", bosun_grace(ctr.stop_timeout())),
        ),
        ("BOSUN_SERVICE_NAME".into(), cx.family(name)),
        ("BOSUN_CLUSTER_NAME".into(), stack.cluster.clone()),
        ("BOSUN_LOG_FORMAT".into(), "json".into()),
    ];
    if let Some(h) = &ctr.internal_health_check {
        env.push((
            "BOSUN_HEALTH_CMD".into(),
            health_shell(&h.health_check_command),
        ));
        env.push(("BOSUN_HEALTH_INTERVAL".into(), h.interval().to_string()));
        env.push(("BOSUN_HEALTH_TIMEOUT".into(), h.timeout().to_string()));
        env.push(("BOSUN_HEALTH_RETRIES".into(), h.retries().to_string()));
        env.push((
            "BOSUN_HEALTH_START_PERIOD".into(),
            h.start_period().to_string(),
        ));
    }
    if let Resource::ScheduledJob(j) = res {
        if let Some(t) = j.timeout_seconds {
            env.push(("BOSUN_MAX_RUNTIME".into(), t.to_string()));
        }
        if j.singleton {
            env.push(("BOSUN_SINGLETON".into(), "true".into()));
        }
        // A run that fails is tried again inside the same task: the Scheduler's own
        // retries are of delivering the event to its target (Scheduler API reference,
        // RetryPolicy), a RunTask call, never of a container that exited non-zero.
        if let Some(n) = j.retry_on_failure.filter(|n| *n > 0) {
            env.push(("BOSUN_RESTART".into(), "on-failure".into()));
            env.push(("BOSUN_MAX_RESTARTS".into(), n.to_string()));
        }
    }
    if let Some(q) = stack.backlog_queue(res) {
        env.push(("BOSUN_METRICS".into(), "cloudwatch".into()));
        env.push(("BOSUN_QUEUE_URL".into(), cx.queue_url(q)));
    }
    for q in ctr.connect_to.iter().filter(|q| stack.is_queue(q)) {
        let e = naming::env_name(q);
        env.push((format!("STP_{e}_URL"), cx.queue_url(q)));
        env.push((format!("STP_{e}_ARN"), cx.queue_arn(q)));
        env.push((format!("STP_{e}_NAME"), cx.queue_name(q)));
    }
    for target in &ctr.connect_to {
        env.extend(super::private_network::connection(cx, target));
        env.extend(super::bucket::connection(cx, target));
    }
    let mut secrets = Vec::new();
    let mut secret_refs = Vec::new();
    for (i, v) in ctr.environment.iter().enumerate() {
        let pointer = format!("/resources/{name}/properties/environment/{i}/value");
        let text = match &v.value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match directive(&text) {
            Ok(Some(Directive::Secret {
                name: secret,
                key,
                version,
            })) => {
                // Secrets Manager ends a secret's ARN with `-` and six characters
                // (see `Cx::secret_arns`).
                let (base, grant) = cx.secret_arns(&secret);
                secret_refs.push(Grant {
                    name: secret.clone(),
                    arn: grant,
                    pointer,
                    key: key.clone(),
                });
                // `ARN:json-key:version-stage:version-id` (ECS Developer Guide, "Pass
                // Secrets Manager secrets through Amazon ECS environment variables").
                let value_from = match (key, version) {
                    (None, None) => base,
                    (key, version) => {
                        let version = version.unwrap_or_default();
                        let (stage, id) = if is_version_id(&version) {
                            ("", version.as_str())
                        } else {
                            (version.as_str(), "")
                        };
                        format!("{base}:{}:{stage}:{id}", key.unwrap_or_default())
                    }
                };
                secrets.push(td::SecretRef {
                    name: v.name.clone(),
                    value_from,
                });
            }
            Ok(Some(Directive::Param { name: param })) => {
                // By its ARN (ECS Developer Guide, "Pass Systems Manager parameters
                // through Amazon ECS environment variables").
                let arn = cx.param_arn(&param);
                secret_refs.push(Grant {
                    name: param.clone(),
                    arn: arn.clone(),
                    pointer,
                    key: None,
                });
                secrets.push(td::SecretRef {
                    name: v.name.clone(),
                    value_from: arn,
                });
            }
            Ok(Some(Directive::ResourceParam { resource, param })) => {
                let bucket = cx.stack.is_bucket(&resource);
                let value = match param.as_str() {
                    "name" if bucket => cx.bucket_name(&resource),
                    "arn" if bucket => cx.bucket_arn(&resource),
                    "url" => cx.queue_url(&resource),
                    "arn" => cx.queue_arn(&resource),
                    "name" => cx.queue_name(&resource),
                    _ => cx.family(&resource),
                };
                env.push((v.name.clone(), value));
            }
            _ => env.push((v.name.clone(), text)),
        }
    }
    // The region, for bosun-aws and the worker's SDK: ECS agents set AWS_REGION only
    // from 2026 (amazon-ecs-agent#3106), and on EC2 capacity the user data blocks
    // instance metadata (`ECS_AWSVPC_BLOCK_IMDS`), so without it bosun-aws has no
    // region (no backlog is published, a singleton check fails). The file's own
    // value, if it sets one, stands.
    for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if !ctr.environment.iter().any(|v| v.name == name) {
            env.push((name.into(), cx.t.region.clone()));
        }
    }
    Environment {
        vars: env,
        secrets,
        grants: secret_refs,
    }
}

/// The task definition, and the secrets it reads (name, ARN pattern for IAM).
fn task_definition(
    cx: &Cx<'_>,
    name: &str,
    res: &Resource,
    ctr: &Container,
) -> (td::TaskDefinition, Vec<Grant>) {
    let (stack, t) = (cx.stack, cx.t);
    let Environment {
        vars: mut env,
        mut secrets,
        grants: secret_refs,
    } = environment(cx, name, res, ctr);
    let mut command: Vec<String> = ctr.entry_point.clone().unwrap_or_default();
    command.extend(ctr.command.clone().unwrap_or_default());
    let built = ctr.is_built();
    let owned = t.owns_image(name, ctr);
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
    let image = if owned {
        t.images.get(name).cloned().unwrap_or_else(|| {
            let host = naming::ecr_host(&t.account, &t.region);
            let repo = naming::image_repository(stack.registry.as_deref(), cx.name(), name, &host);
            format!("{repo}@{}", naming::UNBUILT)
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
    log_options.insert("awslogs-group".to_owned(), cx.log_group(name));
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
        stop_timeout: ctr.stop_timeout() as i32,
        log_configuration: td::LogConfiguration {
            log_driver: "awslogs".into(),
            options: log_options,
        },
        health_check: ctr.internal_health_check.as_ref().map(|h| td::HealthCheck {
            command: vec!["CMD".into(), BOSUN_PATH.into(), "probe".into()],
            interval: h.interval() as i32,
            timeout: h.timeout() as i32,
            retries: h.retries() as i32,
            start_period: ecs_start_period(h) as i32,
        }),
        repository_credentials: ctr
            .packaging
            .properties
            .repository_credentials_secret_arn
            .as_ref()
            .filter(|_| !owned)
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
        family: cx.family(name),
        network_mode: "awsvpc".into(),
        requires_compatibilities: vec![if ec2 { "EC2" } else { "FARGATE" }.into()],
        execution_role_arn: cx.role_arn(&naming::execution_role(cx.name())),
        task_role_arn: cx.role_arn(&naming::task_role(cx.name(), name)),
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
        tags: cx.tags_ecs(),
    };
    (def, secret_refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_waits_for_bosuns_first_check() {
        let h =
            |start: Option<i64>, interval: i64, timeout: i64| crate::deploy::stack::HealthCheck {
                health_check_command: vec!["x".into()],
                interval_seconds: Some(interval),
                timeout_seconds: Some(timeout),
                start_period_seconds: start,
                retries: Some(1),
            };
        assert_eq!(ecs_start_period(&h(None, 30, 5)), 35);
        assert_eq!(ecs_start_period(&h(Some(150), 20, 5)), 150);
        assert_eq!(ecs_start_period(&h(Some(0), 300, 60)), 300);
    }

    #[test]
    fn grace_and_health_commands() {
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
