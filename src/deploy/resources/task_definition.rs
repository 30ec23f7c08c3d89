//! ECS task definitions (family `{stack}-{name}`). They are immutable: a change is a
//! new revision; delete deregisters every active revision.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::types as t;
use serde::Serialize;

use super::cluster::{from_sdk, to_sdk};
use super::EcsTag;
use crate::deploy::engine::error::{failed, DeployError, Result};
use crate::deploy::engine::{keep_owned, Ctx, Kind, Observed, Owned};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    pub family: String,
    pub network_mode: String,
    pub requires_compatibilities: Vec<String>,
    pub execution_role_arn: String,
    pub task_role_arn: String,
    pub runtime_platform: RuntimePlatform,
    pub container_definitions: Vec<Container>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Fargate's task storage beyond its 20 GiB (none: those 20).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    pub tags: Vec<EcsTag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EphemeralStorage {
    #[serde(rename = "sizeInGiB")]
    pub size_in_gib: i32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimePlatform {
    pub cpu_architecture: String,
    pub operating_system_family: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    pub image: String,
    pub essential: bool,
    /// Empty for an image bosun-deploy built: bosun is its ENTRYPOINT already, and
    /// without a `command` its own start command runs under bosun.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entry_point: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    pub environment: Vec<NameValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretRef>,
    pub stop_timeout: i32,
    pub log_configuration: LogConfiguration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// The Secrets Manager secret ECS pulls a private registry's image with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_credentials: Option<RepositoryCredentials>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryCredentials {
    pub credentials_parameter: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    pub name: String,
    pub value_from: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfiguration {
    pub log_driver: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub command: Vec<String>,
    pub interval: i32,
    pub timeout: i32,
    pub retries: i32,
    pub start_period: i32,
}

/// The active revisions' ARNs of exactly `family` (ListTaskDefinitions matches a
/// prefix), newest last; paged.
async fn revisions(ctx: &Ctx, family: &str) -> Result<Vec<String>> {
    let mut pages = ctx
        .aws
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(t::TaskDefinitionStatus::Active)
        .into_paginator()
        .send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(failed("ECS ListTaskDefinitions", family))?;
        arns.extend(
            page.task_definition_arns()
                .iter()
                .filter(|a| family_of(a) == family)
                .cloned(),
        );
    }
    arns.sort_by_key(|a| revision_of(a));
    Ok(arns)
}

/// One revision, with its tags.
async fn describe(
    ctx: &Ctx,
    arn: &str,
) -> Result<aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput> {
    ctx.aws
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .include(t::TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(failed("ECS DescribeTaskDefinition", arn))
}

/// `arn:...:task-definition/fam:3` → `fam`.
pub fn family_of(arn: &str) -> &str {
    let last = arn.rsplit('/').next().unwrap_or(arn);
    last.split(':').next().unwrap_or(last)
}

pub fn revision_of(arn: &str) -> u64 {
    arn.rsplit(':')
        .next()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn from_container(c: &t::ContainerDefinition) -> Container {
    let mut environment: Vec<NameValue> = c
        .environment()
        .iter()
        .map(|e| NameValue {
            name: e.name().unwrap_or_default().to_owned(),
            value: e.value().unwrap_or_default().to_owned(),
        })
        .collect();
    environment.sort();
    let mut secrets: Vec<SecretRef> = c
        .secrets()
        .iter()
        .map(|s| SecretRef {
            name: s.name().to_owned(),
            value_from: s.value_from().to_owned(),
        })
        .collect();
    secrets.sort();
    let log = c.log_configuration();
    Container {
        name: c.name().unwrap_or_default().to_owned(),
        image: c.image().unwrap_or_default().to_owned(),
        essential: c.essential().unwrap_or(true),
        entry_point: c.entry_point().to_vec(),
        command: c.command().to_vec(),
        environment,
        secrets,
        stop_timeout: c.stop_timeout().unwrap_or(0),
        log_configuration: LogConfiguration {
            log_driver: log
                .map(|l| l.log_driver().as_str().to_owned())
                .unwrap_or_default(),
            options: log
                .and_then(|l| l.options())
                .map(|o| o.clone().into_iter().collect())
                .unwrap_or_default(),
        },
        health_check: c.health_check().map(|h| HealthCheck {
            command: h.command().to_vec(),
            interval: h.interval().unwrap_or(30),
            timeout: h.timeout().unwrap_or(5),
            retries: h.retries().unwrap_or(3),
            start_period: h.start_period().unwrap_or(0),
        }),
        repository_credentials: c.repository_credentials().map(|r| RepositoryCredentials {
            credentials_parameter: r.credentials_parameter().to_owned(),
        }),
    }
}

fn to_container(c: &Container) -> Result<t::ContainerDefinition> {
    let built = |what: &str, e: aws_sdk_ecs::error::BuildError| DeployError::Request {
        what: format!("container {}: {what}", c.name),
        why: e.to_string(),
    };
    let mut b = t::ContainerDefinition::builder()
        .name(&c.name)
        .image(&c.image)
        .essential(c.essential)
        .set_entry_point((!c.entry_point.is_empty()).then(|| c.entry_point.clone()))
        .set_command((!c.command.is_empty()).then(|| c.command.clone()))
        .set_environment(Some(
            c.environment
                .iter()
                .map(|e| {
                    t::KeyValuePair::builder()
                        .name(&e.name)
                        .value(&e.value)
                        .build()
                })
                .collect(),
        ))
        .stop_timeout(c.stop_timeout)
        .log_configuration(
            t::LogConfiguration::builder()
                .log_driver(t::LogDriver::from(c.log_configuration.log_driver.as_str()))
                .set_options(Some(
                    c.log_configuration.options.clone().into_iter().collect(),
                ))
                .build()
                .map_err(|e| built("log configuration", e))?,
        );
    for s in &c.secrets {
        b = b.secrets(
            t::Secret::builder()
                .name(&s.name)
                .value_from(&s.value_from)
                .build()
                .map_err(|e| built("secret", e))?,
        );
    }
    if let Some(h) = &c.health_check {
        b = b.health_check(
            t::HealthCheck::builder()
                .set_command(Some(h.command.clone()))
                .interval(h.interval)
                .timeout(h.timeout)
                .retries(h.retries)
                .start_period(h.start_period)
                .build()
                .map_err(|e| built("health check", e))?,
        );
    }
    if let Some(r) = &c.repository_credentials {
        b = b.repository_credentials(
            t::RepositoryCredentials::builder()
                .credentials_parameter(&r.credentials_parameter)
                .build()
                .map_err(|e| built("repository credentials", e))?,
        );
    }
    Ok(b.build())
}

impl Kind for TaskDefinition {
    const KIND: &'static str = "task definition";
    const PLURAL: &'static str = "taskDefinitions";
    const DEPENDS_ON: &'static [&'static str] = &[
        super::log_group::LogGroup::KIND,
        super::role::Role::KIND,
        super::repository::Repository::KIND,
        super::queue::Queue::KIND,
    ];

    fn name(&self) -> String {
        self.family.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let fam = &self.family;
        let described = latest_described(ctx, fam).await?;
        let Some(out) = described.as_ref().as_ref() else {
            return Ok(Observed::Absent);
        };
        let Some(td) = out.task_definition() else {
            return Ok(Observed::Absent);
        };
        let tags = out.tags();
        let it = tags
            .iter()
            .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")));
        if !ctx.owns(it.clone()) {
            return Ok(Observed::Foreign(ctx.why_not(it)));
        }
        let platform = td.runtime_platform();
        Ok(Observed::Present(TaskDefinition {
            family: fam.clone(),
            network_mode: td
                .network_mode()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default(),
            requires_compatibilities: td
                .requires_compatibilities()
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            execution_role_arn: td.execution_role_arn().unwrap_or_default().to_owned(),
            task_role_arn: td.task_role_arn().unwrap_or_default().to_owned(),
            runtime_platform: RuntimePlatform {
                cpu_architecture: platform
                    .and_then(|p| p.cpu_architecture())
                    .map(|a| a.as_str().to_owned())
                    .unwrap_or_else(|| "X86_64".into()),
                operating_system_family: platform
                    .and_then(|p| p.operating_system_family())
                    .map(|a| a.as_str().to_owned())
                    .unwrap_or_else(|| "LINUX".into()),
            },
            container_definitions: td
                .container_definitions()
                .iter()
                .map(from_container)
                .collect(),
            cpu: td.cpu().map(str::to_owned),
            memory: td.memory().map(str::to_owned),
            ephemeral_storage: td.ephemeral_storage().map(|e| EphemeralStorage {
                size_in_gib: e.size_in_gib(),
            }),
            tags: from_sdk(tags, &self.tags),
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let containers = self
            .container_definitions
            .iter()
            .map(to_container)
            .collect::<Result<Vec<_>>>()?;
        ctx.aws
            .ecs
            .register_task_definition()
            .family(&self.family)
            .network_mode(t::NetworkMode::from(self.network_mode.as_str()))
            .set_requires_compatibilities(Some(
                self.requires_compatibilities
                    .iter()
                    .map(|c| t::Compatibility::from(c.as_str()))
                    .collect(),
            ))
            .execution_role_arn(&self.execution_role_arn)
            .task_role_arn(&self.task_role_arn)
            .runtime_platform(
                t::RuntimePlatform::builder()
                    .cpu_architecture(t::CpuArchitecture::from(
                        self.runtime_platform.cpu_architecture.as_str(),
                    ))
                    .operating_system_family(t::OsFamily::from(
                        self.runtime_platform.operating_system_family.as_str(),
                    ))
                    .build(),
            )
            .set_container_definitions(Some(containers))
            .set_cpu(self.cpu.clone())
            .set_memory(self.memory.clone())
            .set_ephemeral_storage(self.ephemeral_storage.as_ref().map(|e| {
                t::EphemeralStorage::builder()
                    .size_in_gib(e.size_in_gib)
                    .build()
            }))
            .set_tags(Some(to_sdk(&self.tags)))
            .send()
            .await
            .map_err(failed("ECS RegisterTaskDefinition", &self.family))?;
        Ok(())
    }

    async fn update(&self, _have: &Self, ctx: &Ctx) -> Result<()> {
        self.create(ctx).await
    }

    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let prefix = format!("{}-", ctx.stack);
        let mut pages = ctx
            .aws
            .ecs
            .list_task_definition_families()
            .family_prefix(&prefix)
            .status(t::TaskDefinitionFamilyStatus::Active)
            .into_paginator()
            .send();
        let mut families = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("ECS ListTaskDefinitionFamilies", &prefix))?;
            families.extend(page.families().iter().cloned());
        }
        let candidates = families.into_iter().map(|f| (f, String::new()));
        keep_owned(candidates, wanted, |fam, _| async move {
            let Some(latest) = revisions(ctx, &fam).await?.pop() else {
                return Ok(false);
            };
            let out = describe(ctx, &latest).await?;
            Ok(ctx.owns(
                out.tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or(""))),
            ))
        })
        .await
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        for arn in revisions(ctx, &owned.name).await? {
            ctx.aws
                .ecs
                .deregister_task_definition()
                .task_definition(&arn)
                .send()
                .await
                .map_err(failed("ECS DeregisterTaskDefinition", &arn))?;
        }
        Ok(())
    }
}

/// The ARN of the latest active revision of `family`, if any (read through
/// [`latest_revision`], which asks once a run).
/// The ARN of the latest active revision of a task definition family, read once a
/// run (the task definition and its service both need it).
pub async fn latest_revision(ctx: &Ctx, family: &str) -> Result<Option<String>> {
    let described = latest_described(ctx, family).await?;
    Ok(described.as_ref().as_ref().and_then(|o| {
        o.task_definition()
            .and_then(|t| t.task_definition_arn())
            .map(str::to_owned)
    }))
}

type Described = aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;

/// The latest active revision of `family` with its tags, read once a run, in one
/// call: DescribeTaskDefinition of a family alone describes its latest ACTIVE
/// revision (ECS API reference, DescribeTaskDefinition). ECS answers a family with no
/// active revision with a ClientException, which names other mistakes too: only a
/// listing with no active revision makes it absent.
async fn latest_described(ctx: &Ctx, family: &str) -> Result<std::sync::Arc<Option<Described>>> {
    ctx.once(format!("task-definition:{family}"), || async {
        match describe(ctx, family).await {
            Ok(out) => Ok(Some(out)),
            Err(e) if e.code() == Some("ClientException") => {
                if revisions(ctx, family).await?.is_empty() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    })
    .await
}

/// The active revisions of a family (ARNs, oldest first): what `rollback` goes back
/// to.
pub async fn active_revisions(ctx: &Ctx, family: &str) -> Result<Vec<String>> {
    revisions(ctx, family).await
}

/// One revision of the stack's, described: refused when it is not the stack's (its
/// tags say whose it is).
pub async fn describe_owned(ctx: &Ctx, arn: &str) -> Result<t::TaskDefinition> {
    let out = describe(ctx, arn).await?;
    let tags = out
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")));
    if !ctx.owns(tags.clone()) {
        return Err(DeployError::NotOwned {
            kind: "task definition",
            name: arn.to_owned(),
            why: ctx.why_not(tags),
        });
    }
    out.task_definition()
        .cloned()
        .ok_or_else(|| DeployError::Unexpected {
            call: "ECS DescribeTaskDefinition",
            what: format!("no task definition for {arn}"),
        })
}
