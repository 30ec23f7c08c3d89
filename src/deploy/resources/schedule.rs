//! EventBridge Scheduler: the stack's schedule group (`bosun-{stack}`) and its
//! schedules: one per scheduled job, running its task with ECS RunTask, and one per
//! EC2 capacity calling Auto Scaling's StartInstanceRefresh through a universal
//! target (its input the call's JSON). Schedules carry no tags: they are the stack's
//! because their group is.

use aws_sdk_scheduler::types as t;
use std::collections::BTreeSet;

use serde::Serialize;

use super::KvTag;
use crate::deploy::engine::error::{absent_on, failed, DeployError, Result};
use crate::deploy::engine::{Ctx, Kind, Observed, Owned};

const NOT_FOUND: &[&str] = &["ResourceNotFoundException"];

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleGroup {
    pub name: String,
    pub tags: Vec<KvTag>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Schedule {
    pub name: String,
    pub group_name: String,
    pub schedule_expression: String,
    pub schedule_expression_timezone: String,
    pub flexible_time_window: FlexibleTimeWindow,
    pub state: String,
    /// ISO 8601 in UTC (`2027-01-01T00:00:00Z`): when the schedule starts and ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    pub target: Target,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FlexibleTimeWindow {
    pub mode: String,
    /// With mode `FLEXIBLE`: the window, 1..=1440 minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_window_in_minutes: Option<i32>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Target {
    pub arn: String,
    pub role_arn: String,
    pub retry_policy: RetryPolicy,
    /// An ECS RunTask target's parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecs_parameters: Option<EcsParameters>,
    /// A universal target's input: the API call's parameters, as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The SQS queue the Scheduler sends the invocations it could not make.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_config: Option<DeadLetterConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterConfig {
    pub arn: String,
}

/// A date of the spec (`2027-01-01T00:00:00Z`) as the SDK's.
fn sdk_date(s: &Option<String>) -> Option<aws_smithy_types::DateTime> {
    s.as_deref().and_then(|d| {
        aws_smithy_types::DateTime::from_str(d, aws_smithy_types::date_time::Format::DateTime).ok()
    })
}

/// Whether a start date (Unix seconds) is one Scheduler still takes: not more than 5
/// minutes ago (with a minute to spare for the time the apply takes). A start date
/// that has passed means what no start date means: the schedule runs.
pub fn start_date_ahead(secs: i64) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    secs > now + 60
}

/// A date as Scheduler returns it, written as the spec writes it.
fn spec_date(d: Option<&aws_smithy_types::DateTime>) -> Option<String> {
    d.and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetryPolicy {
    pub maximum_event_age_in_seconds: i32,
    pub maximum_retry_attempts: i32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EcsParameters {
    pub task_definition_arn: String,
    pub task_count: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_provider_strategy: Option<Vec<StrategyItem>>,
    pub network_configuration: NetworkConfiguration,
}

/// As Scheduler writes a capacity provider strategy item (camelCase, unlike the rest).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyItem {
    pub capacity_provider: String,
    pub weight: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct NetworkConfiguration {
    #[serde(rename = "awsvpcConfiguration")]
    pub awsvpc_configuration: AwsVpc,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AwsVpc {
    pub subnets: Vec<String>,
    /// Scheduler takes 1..=5 or none (then the VPC's default group).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    pub assign_public_ip: String,
}

fn group_arn(ctx: &Ctx, name: &str) -> String {
    format!(
        "arn:aws:scheduler:{}:{}:schedule-group/{name}",
        ctx.region, ctx.account
    )
}

async fn group_tags(ctx: &Ctx, name: &str) -> Result<Vec<(String, String)>> {
    let out = ctx
        .aws
        .scheduler
        .list_tags_for_resource()
        .resource_arn(group_arn(ctx, name))
        .send()
        .await
        .map_err(failed("Scheduler ListTagsForResource", name))?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect())
}

fn sdk_tags(t: &[KvTag]) -> Vec<t::Tag> {
    t.iter()
        .filter_map(|x| t::Tag::builder().key(&x.key).value(&x.value).build().ok())
        .collect()
}

impl Kind for ScheduleGroup {
    const KIND: &'static str = "schedule group";
    const PLURAL: &'static str = "scheduleGroups";

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let out = ctx
            .aws
            .scheduler
            .get_schedule_group()
            .name(&self.name)
            .send()
            .await;
        if absent_on(out, NOT_FOUND, "Scheduler GetScheduleGroup", &self.name)?.is_none() {
            return Ok(Observed::Absent);
        }
        let tags = group_tags(ctx, &self.name).await?;
        let it = tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        if !ctx.owns(it.clone()) {
            return Ok(Observed::Foreign(ctx.why_not(it)));
        }
        Ok(Observed::Present(ScheduleGroup {
            name: self.name.clone(),
            tags: super::keep_kv_tags(it, &self.tags),
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .scheduler
            .create_schedule_group()
            .name(&self.name)
            .set_tags(Some(sdk_tags(&self.tags)))
            .client_token(client_token(&self.name, ""))
            .send()
            .await;
        absent_on(
            out,
            &["ConflictException"],
            "Scheduler CreateScheduleGroup",
            &self.name,
        )?;
        Ok(())
    }

    async fn update(&self, _have: &Self, ctx: &Ctx) -> Result<()> {
        ctx.aws
            .scheduler
            .tag_resource()
            .resource_arn(group_arn(ctx, &self.name))
            .set_tags(Some(sdk_tags(&self.tags)))
            .send()
            .await
            .map_err(failed("Scheduler TagResource", &self.name))?;
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, _wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let name = crate::deploy::naming::schedule_group(&ctx.stack);
        let out = ctx
            .aws
            .scheduler
            .get_schedule_group()
            .name(&name)
            .send()
            .await;
        if absent_on(out, NOT_FOUND, "Scheduler GetScheduleGroup", &name)?.is_none() {
            return Ok(Vec::new());
        }
        let tags = group_tags(ctx, &name).await?;
        let ours = ctx.owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Ok(if ours {
            vec![Owned {
                name,
                handle: String::new(),
            }]
        } else {
            Vec::new()
        })
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .scheduler
            .delete_schedule_group()
            .name(&owned.name)
            .send()
            .await;
        absent_on(out, NOT_FOUND, "Scheduler DeleteScheduleGroup", &owned.name)?;
        Ok(())
    }
}

/// How long a schedule's create waits for its role to become assumable.
const ROLE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(90);

/// Scheduler checks, when a schedule is created or updated, that it can assume the
/// schedule's role, and a role made moments ago may not be assumable yet: IAM is
/// eventually consistent (IAM User Guide, "Troubleshoot IAM": changes are not always
/// immediately visible). That refusal, a ValidationException saying the role cannot
/// be assumed, is retried with back-off for at most [`ROLE_PATIENCE`], as throttling
/// is; any other answer is returned at once.
async fn while_role_settles<T, F, Fut>(mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let give_up = std::time::Instant::now() + ROLE_PATIENCE;
    let mut wait = std::time::Duration::from_millis(500);
    loop {
        match call().await {
            Err(DeployError::Aws { code, message, .. })
                if code == "ValidationException"
                    && message.to_ascii_lowercase().contains("assume")
                    && std::time::Instant::now() + wait < give_up =>
            {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(10));
            }
            other => return other,
        }
    }
}

/// The client token of a schedule's create: `bosun-` and a hash of its group and
/// name (22 characters).
pub fn client_token(group: &str, name: &str) -> String {
    format!(
        "bosun-{}",
        crate::deploy::naming::short_hash(&format!("{group}/{name}"))
    )
}

impl Schedule {
    fn target(&self) -> Result<t::Target> {
        let bad = |e: aws_sdk_scheduler::error::BuildError| DeployError::Request {
            what: format!("schedule {}", self.name),
            why: e.to_string(),
        };
        let tg = &self.target;
        let ecs = match &tg.ecs_parameters {
            None => None,
            Some(e) => Some(Self::ecs(e).map_err(bad)?),
        };
        t::Target::builder()
            .arn(&tg.arn)
            .role_arn(&tg.role_arn)
            .retry_policy(
                t::RetryPolicy::builder()
                    .maximum_event_age_in_seconds(tg.retry_policy.maximum_event_age_in_seconds)
                    .maximum_retry_attempts(tg.retry_policy.maximum_retry_attempts)
                    .build(),
            )
            .set_ecs_parameters(ecs)
            .set_input(tg.input.clone())
            .set_dead_letter_config(
                tg.dead_letter_config
                    .as_ref()
                    .map(|d| t::DeadLetterConfig::builder().arn(&d.arn).build()),
            )
            .build()
            .map_err(bad)
    }

    fn ecs(
        e: &EcsParameters,
    ) -> std::result::Result<t::EcsParameters, aws_sdk_scheduler::error::BuildError> {
        let v = &e.network_configuration.awsvpc_configuration;
        t::EcsParameters::builder()
            .task_definition_arn(&e.task_definition_arn)
            .task_count(e.task_count)
            .set_launch_type(e.launch_type.as_deref().map(t::LaunchType::from))
            .set_capacity_provider_strategy(e.capacity_provider_strategy.as_ref().map(|items| {
                items
                    .iter()
                    .filter_map(|i| {
                        t::CapacityProviderStrategyItem::builder()
                            .capacity_provider(&i.capacity_provider)
                            .weight(i.weight)
                            .build()
                            .ok()
                    })
                    .collect()
            }))
            .network_configuration(
                t::NetworkConfiguration::builder()
                    .awsvpc_configuration(
                        t::AwsVpcConfiguration::builder()
                            .set_subnets(Some(v.subnets.clone()))
                            .set_security_groups(
                                (!v.security_groups.is_empty()).then(|| v.security_groups.clone()),
                            )
                            .assign_public_ip(t::AssignPublicIp::from(v.assign_public_ip.as_str()))
                            .build()?,
                    )
                    .build(),
            )
            .build()
    }

    fn window(&self) -> Result<t::FlexibleTimeWindow> {
        t::FlexibleTimeWindow::builder()
            .mode(t::FlexibleTimeWindowMode::from(
                self.flexible_time_window.mode.as_str(),
            ))
            .set_maximum_window_in_minutes(self.flexible_time_window.maximum_window_in_minutes)
            .build()
            .map_err(|e| DeployError::Request {
                what: format!("schedule {}", self.name),
                why: e.to_string(),
            })
    }
}

impl Kind for Schedule {
    const KIND: &'static str = "schedule";
    const PLURAL: &'static str = "schedules";
    const DEPENDS_ON: &'static [&'static str] = &[
        ScheduleGroup::KIND,
        super::role::Role::KIND,
        super::task_definition::TaskDefinition::KIND,
        super::security_group::SecurityGroup::KIND,
        super::cluster::Cluster::KIND,
        super::capacity_provider::CapacityProvider::KIND,
        super::cluster::ClusterCapacityProviders::KIND,
        super::auto_scaling_group::AutoScalingGroup::KIND,
        super::queue::Queue::KIND,
    ];

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let out = ctx
            .aws
            .scheduler
            .get_schedule()
            .name(&self.name)
            .group_name(&self.group_name)
            .send()
            .await;
        let Some(s) = absent_on(out, NOT_FOUND, "Scheduler GetSchedule", &self.name)? else {
            return Ok(Observed::Absent);
        };
        let tg = s.target();
        let ecs = tg.and_then(|x| x.ecs_parameters());
        let vpc = ecs
            .and_then(|e| e.network_configuration())
            .and_then(|n| n.awsvpc_configuration());
        let retry = tg.and_then(|x| x.retry_policy());
        Ok(Observed::Present(Schedule {
            name: self.name.clone(),
            group_name: self.group_name.clone(),
            schedule_expression: s.schedule_expression().unwrap_or_default().to_owned(),
            schedule_expression_timezone: s
                .schedule_expression_timezone()
                .unwrap_or("UTC")
                .to_owned(),
            flexible_time_window: FlexibleTimeWindow {
                mode: s
                    .flexible_time_window()
                    .map(|w| w.mode().as_str().to_owned())
                    .unwrap_or_default(),
                maximum_window_in_minutes: s
                    .flexible_time_window()
                    .and_then(|w| w.maximum_window_in_minutes()),
            },
            state: s.state().map(|x| x.as_str().to_owned()).unwrap_or_default(),
            // A start date that has passed is no start date (see `start_date_ahead`).
            start_date: spec_date(s.start_date().filter(|d| start_date_ahead(d.secs()))),
            end_date: spec_date(s.end_date()),
            target: Target {
                arn: tg.map(|x| x.arn().to_owned()).unwrap_or_default(),
                role_arn: tg.map(|x| x.role_arn().to_owned()).unwrap_or_default(),
                retry_policy: RetryPolicy {
                    maximum_event_age_in_seconds: retry
                        .and_then(|r| r.maximum_event_age_in_seconds())
                        .unwrap_or(86400),
                    maximum_retry_attempts: retry
                        .and_then(|r| r.maximum_retry_attempts())
                        .unwrap_or(185),
                },
                input: tg.and_then(|x| x.input()).map(str::to_owned),
                dead_letter_config: tg
                    .and_then(|x| x.dead_letter_config())
                    .and_then(|d| d.arn())
                    .map(|arn| DeadLetterConfig {
                        arn: arn.to_owned(),
                    }),
                ecs_parameters: ecs.map(|ecs| EcsParameters {
                    task_definition_arn: ecs.task_definition_arn().to_owned(),
                    task_count: ecs.task_count().unwrap_or(1),
                    launch_type: ecs.launch_type().map(|l| l.as_str().to_owned()),
                    capacity_provider_strategy: Some(
                        ecs.capacity_provider_strategy()
                            .iter()
                            .map(|i| StrategyItem {
                                capacity_provider: i.capacity_provider().to_owned(),
                                weight: i.weight(),
                            })
                            .collect::<Vec<_>>(),
                    )
                    .filter(|v| !v.is_empty()),
                    network_configuration: NetworkConfiguration {
                        awsvpc_configuration: AwsVpc {
                            subnets: vpc.map(|v| v.subnets().to_vec()).unwrap_or_default(),
                            security_groups: vpc
                                .map(|v| v.security_groups().to_vec())
                                .unwrap_or_default(),
                            assign_public_ip: vpc
                                .and_then(|v| v.assign_public_ip())
                                .map(|a| a.as_str().to_owned())
                                .unwrap_or_else(|| "DISABLED".into()),
                        },
                    },
                }),
            },
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let out = while_role_settles(|| async {
            ctx.aws
                .scheduler
                .create_schedule()
                .name(&self.name)
                .group_name(&self.group_name)
                .schedule_expression(&self.schedule_expression)
                .schedule_expression_timezone(&self.schedule_expression_timezone)
                .flexible_time_window(self.window()?)
                .target(self.target()?)
                .state(t::ScheduleState::from(self.state.as_str()))
                .set_start_date(sdk_date(&self.start_date))
                .set_end_date(sdk_date(&self.end_date))
                // At most 64 characters of [a-zA-Z0-9-_] (Scheduler API reference,
                // CreateSchedule): a hash of the group and name fits any of them, and the
                // same schedule retried after a crash is the same create.
                .client_token(client_token(&self.group_name, &self.name))
                .send()
                .await
                .map_err(failed("Scheduler CreateSchedule", &self.name))
        })
        .await;
        // Created before a crash: make it what the file says.
        match out {
            Err(e) if e.code() == Some("ConflictException") => self.update(self, ctx).await,
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        }
    }

    async fn update(&self, _have: &Self, ctx: &Ctx) -> Result<()> {
        while_role_settles(|| async {
            ctx.aws
                .scheduler
                .update_schedule()
                .name(&self.name)
                .group_name(&self.group_name)
                .schedule_expression(&self.schedule_expression)
                .schedule_expression_timezone(&self.schedule_expression_timezone)
                .flexible_time_window(self.window()?)
                .target(self.target()?)
                .state(t::ScheduleState::from(self.state.as_str()))
                .set_start_date(sdk_date(&self.start_date))
                .set_end_date(sdk_date(&self.end_date))
                .send()
                .await
                .map_err(failed("Scheduler UpdateSchedule", &self.name))
        })
        .await?;
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, _wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let group = crate::deploy::naming::schedule_group(&ctx.stack);
        // Only a group of the stack's holds the stack's schedules.
        if ScheduleGroup::list_owned(ctx, &BTreeSet::new())
            .await?
            .is_empty()
        {
            return Ok(Vec::new());
        }
        let mut pages = ctx
            .aws
            .scheduler
            .list_schedules()
            .group_name(&group)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let Some(page) = absent_on(page, NOT_FOUND, "Scheduler ListSchedules", &group)? else {
                break;
            };
            out.extend(page.schedules().iter().filter_map(|s| {
                s.name().map(|n| Owned {
                    name: n.to_owned(),
                    handle: group.clone(),
                })
            }));
        }
        Ok(out)
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .scheduler
            .delete_schedule()
            .name(&owned.name)
            .group_name(&owned.handle)
            .send()
            .await;
        absent_on(out, NOT_FOUND, "Scheduler DeleteSchedule", &owned.name)?;
        Ok(())
    }
}
