//! ECS services (`{stack}-{name}`), read ten at a time (DescribeServices' batch).

use std::collections::BTreeSet;

use aws_sdk_ecs::types as t;
use serde::Serialize;

use super::cluster::{from_sdk, to_sdk};
use super::task_definition::family_of;
use super::EcsTag;
use crate::deploy::engine::error::{absent_on, failed, DeployError, Result};
use crate::deploy::engine::{bounded, differs_besides, Ctx, Kind, Observed, Owned};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub cluster: String,
    pub service_name: String,
    /// The family: the latest revision. What AWS runs is compared as
    /// `family` when it is the latest revision, `family:N` otherwise.
    pub task_definition: String,
    pub desired_count: i32,
    pub network_configuration: NetworkConfiguration,
    pub deployment_configuration: DeploymentConfiguration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_provider_strategy: Option<Vec<StrategyItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement_strategy: Option<Vec<Placement>>,
    #[serde(rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: bool,
    pub propagate_tags: String,
    /// ECS Exec into the service's tasks.
    pub enable_execute_command: bool,
    /// Its Cloud Map service, where it has ports (one at most: ECS API reference,
    /// ServiceRegistry, "Multiple service registries for each service are not
    /// supported").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_registries: Vec<ServiceRegistry>,
    pub tags: Vec<EcsTag>,
    /// Autoscaling owns the desired count once the service exists: not compared.
    #[serde(skip)]
    pub scaled: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfiguration {
    pub awsvpc_configuration: AwsVpc,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsVpc {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    pub deployment_circuit_breaker: CircuitBreaker,
    pub minimum_healthy_percent: i32,
    pub maximum_percent: i32,
    /// CloudWatch alarms that fail (and roll back) a deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarms: Option<DeploymentAlarms>,
}

/// ECS's deployment alarms: a deployment fails when one of them goes into ALARM while
/// it runs, and with `rollback` goes back to the last completed deployment (ECS
/// Developer Guide, "How CloudWatch alarms detect Amazon ECS deployment failures").
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentAlarms {
    pub alarm_names: Vec<String>,
    pub enable: bool,
    pub rollback: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRegistry {
    pub registry_arn: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyItem {
    pub capacity_provider: String,
    pub weight: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<i32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Placement {
    #[serde(rename = "type")]
    pub kind: String,
    pub field: String,
}

/// DescribeServices, ten names a call (its limit), tags included; a missing cluster
/// means no service.
async fn describe(ctx: &Ctx, cluster: &str, names: &[String]) -> Result<Vec<t::Service>> {
    let chunks: Vec<Vec<String>> = names.chunks(10).map(<[String]>::to_vec).collect();
    let pages = bounded(chunks.into_iter().map(|chunk| async move {
        let out = ctx
            .aws
            .ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.clone()))
            .include(t::ServiceField::Tags)
            .send()
            .await;
        let what = chunk.join(",");
        Ok(absent_on(
            out,
            &["ClusterNotFoundException"],
            "ECS DescribeServices",
            &what,
        )?
        .map(|o| o.services().to_vec())
        .unwrap_or_default())
    }))
    .await?;
    Ok(pages.into_iter().flatten().collect())
}

fn tags(s: &t::Service) -> impl Iterator<Item = (&str, &str)> + Clone {
    s.tags()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
}

/// The names of the services in the stack's cluster that are the stack's (paged).
/// The names of the ECS services in the stack's cluster that carry this stack's tag,
/// read once a run (scaling targets and policies follow their service).
pub async fn owned_names(ctx: &Ctx) -> Result<std::sync::Arc<BTreeSet<String>>> {
    ctx.once("owned-services".into(), || list_owned_names(ctx))
        .await
}

async fn list_owned_names(ctx: &Ctx) -> Result<BTreeSet<String>> {
    let mut pages = ctx
        .aws
        .ecs
        .list_services()
        .cluster(&ctx.cluster)
        .into_paginator()
        .send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match absent_on(
            page,
            &["ClusterNotFoundException"],
            "ECS ListServices",
            &ctx.cluster,
        )? {
            Some(p) => p,
            None => return Ok(BTreeSet::new()),
        };
        names.extend(
            page.service_arns()
                .iter()
                .map(|a| a.rsplit('/').next().unwrap_or_default().to_owned()),
        );
    }
    Ok(describe(ctx, &ctx.cluster, &names)
        .await?
        .iter()
        .filter(|s| s.status() == Some("ACTIVE") && ctx.owns(tags(s)))
        .filter_map(|s| s.service_name().map(str::to_owned))
        .collect())
}

impl Service {
    fn observe(&self, s: &t::Service, latest: Option<&str>) -> Service {
        let running = s.task_definition().unwrap_or_default();
        // The family when AWS runs its latest revision (an emulator may echo the bare
        // family it was given).
        let task_definition = if latest == Some(running) || !running.contains(':') {
            family_of(running).to_owned()
        } else {
            running.rsplit('/').next().unwrap_or(running).to_owned()
        };
        let vpc = s
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration());
        let strategy: Vec<StrategyItem> = s
            .capacity_provider_strategy()
            .iter()
            .map(|i| StrategyItem {
                capacity_provider: i.capacity_provider().to_owned(),
                weight: i.weight(),
                base: (i.base() != 0).then_some(i.base()),
            })
            .collect();
        let dc = s.deployment_configuration();
        Service {
            cluster: self.cluster.clone(),
            service_name: self.service_name.clone(),
            task_definition,
            desired_count: if self.scaled {
                self.desired_count
            } else {
                s.desired_count()
            },
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
            // AWS always returns it; an emulator that does not is taken at its word
            // for what it was sent.
            deployment_configuration: match dc {
                Some(d) => DeploymentConfiguration {
                    deployment_circuit_breaker: CircuitBreaker {
                        enable: d.deployment_circuit_breaker().is_some_and(|c| c.enable()),
                        rollback: d.deployment_circuit_breaker().is_some_and(|c| c.rollback()),
                    },
                    minimum_healthy_percent: d.minimum_healthy_percent().unwrap_or(100),
                    maximum_percent: d.maximum_percent().unwrap_or(200),
                    // Alarms turned off (how an update takes them away) are none.
                    alarms: d
                        .alarms()
                        .filter(|a| a.enable() || !a.alarm_names().is_empty())
                        .map(|a| DeploymentAlarms {
                            alarm_names: a.alarm_names().to_vec(),
                            enable: a.enable(),
                            rollback: a.rollback(),
                        }),
                },
                None => self.deployment_configuration.clone(),
            },
            launch_type: if strategy.is_empty() {
                s.launch_type().map(|l| l.as_str().to_owned())
            } else {
                None
            },
            capacity_provider_strategy: (!strategy.is_empty()).then_some(strategy),
            placement_strategy: Some(
                s.placement_strategy()
                    .iter()
                    .map(|p| Placement {
                        kind: p
                            .r#type()
                            .map(|t| t.as_str().to_owned())
                            .unwrap_or_default(),
                        field: p.field().unwrap_or_default().to_owned(),
                    })
                    .collect::<Vec<_>>(),
            )
            .filter(|p| !p.is_empty()),
            // Set at creation, not compared (the API gives no way to tell "false"
            // from "not returned").
            enable_ecs_managed_tags: self.enable_ecs_managed_tags,
            propagate_tags: self.propagate_tags.clone(),
            enable_execute_command: s.enable_execute_command(),
            service_registries: s
                .service_registries()
                .iter()
                .filter_map(|r| {
                    Some(ServiceRegistry {
                        registry_arn: r.registry_arn()?.to_owned(),
                    })
                })
                .collect(),
            tags: from_sdk(s.tags(), &self.tags),
            scaled: self.scaled,
        }
    }

    fn network(&self) -> Result<t::NetworkConfiguration> {
        let v = &self.network_configuration.awsvpc_configuration;
        Ok(t::NetworkConfiguration::builder()
            .awsvpc_configuration(
                t::AwsVpcConfiguration::builder()
                    .set_subnets(Some(v.subnets.clone()))
                    .set_security_groups(Some(v.security_groups.clone()))
                    .assign_public_ip(t::AssignPublicIp::from(v.assign_public_ip.as_str()))
                    .build()
                    .map_err(|e| DeployError::Request {
                        what: "network configuration".into(),
                        why: e.to_string(),
                    })?,
            )
            .build())
    }

    fn deployment(&self) -> t::DeploymentConfiguration {
        let d = &self.deployment_configuration;
        t::DeploymentConfiguration::builder()
            .deployment_circuit_breaker(
                t::DeploymentCircuitBreaker::builder()
                    .enable(d.deployment_circuit_breaker.enable)
                    .rollback(d.deployment_circuit_breaker.rollback)
                    .build(),
            )
            .minimum_healthy_percent(d.minimum_healthy_percent)
            .maximum_percent(d.maximum_percent)
            .set_alarms(
                d.alarms
                    .as_ref()
                    .map(|a| {
                        t::DeploymentAlarms::builder()
                            .set_alarm_names(Some(a.alarm_names.clone()))
                            .enable(a.enable)
                            .rollback(a.rollback)
                            .build()
                    })
                    .and_then(|a| a.ok()),
            )
            .build()
    }

    fn strategy(&self) -> Option<Vec<t::CapacityProviderStrategyItem>> {
        self.capacity_provider_strategy.as_ref().map(|s| {
            s.iter()
                .filter_map(|i| {
                    t::CapacityProviderStrategyItem::builder()
                        .capacity_provider(&i.capacity_provider)
                        .weight(i.weight)
                        .set_base(i.base)
                        .build()
                        .ok()
                })
                .collect()
        })
    }

    fn placement(&self) -> Option<Vec<t::PlacementStrategy>> {
        self.placement_strategy.as_ref().map(|p| {
            p.iter()
                .map(|p| {
                    t::PlacementStrategy::builder()
                        .r#type(t::PlacementStrategyType::from(p.kind.as_str()))
                        .field(&p.field)
                        .build()
                })
                .collect()
        })
    }

    fn registries(&self) -> Vec<t::ServiceRegistry> {
        self.service_registries
            .iter()
            .map(|r| {
                t::ServiceRegistry::builder()
                    .registry_arn(&r.registry_arn)
                    .build()
            })
            .collect()
    }

    /// A client token that makes a create retried after a crash the same create.
    fn client_token(&self) -> String {
        let text = format!("{}/{}", self.cluster, self.service_name);
        format!("bosun-{}", crate::deploy::naming::short_hash(&text))
    }
}

impl Kind for Service {
    const KIND: &'static str = "ECS service";
    const PLURAL: &'static str = "services";
    const DEPENDS_ON: &'static [&'static str] = &[
        super::task_definition::TaskDefinition::KIND,
        super::security_group::SecurityGroup::KIND,
        super::cluster::Cluster::KIND,
        super::capacity_provider::CapacityProvider::KIND,
        super::cluster::ClusterCapacityProviders::KIND,
        super::deployment_alarm::DeploymentAlarm::KIND,
        super::cloud_map::Service::KIND,
    ];
    const FOLLOWS_DEPS: bool = true;

    fn name(&self) -> String {
        self.service_name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        Ok(Self::read_all(&[self], ctx)
            .await?
            .pop()
            .unwrap_or(Observed::Absent))
    }

    async fn read_all(want: &[&Self], ctx: &Ctx) -> Result<Vec<Observed<Self>>> {
        let Some(first) = want.first() else {
            return Ok(Vec::new());
        };
        let names: Vec<String> = want.iter().map(|w| w.service_name.clone()).collect();
        let found = describe(ctx, &first.cluster, &names).await?;
        bounded(want.iter().map(|w| {
            let cur = found
                .iter()
                .find(|s| s.service_name() == Some(w.service_name.as_str()) && s.status() != Some("INACTIVE"))
                .cloned();
            async move {
                let Some(s) = cur else {
                    return Ok(Observed::Absent);
                };
                if s.status() == Some("DRAINING") {
                    return Err(DeployError::Refused(format!(
                        "ECS service {} is still draining from an earlier delete: apply again once it is gone (a few minutes)",
                        w.service_name
                    )));
                }
                if !ctx.owns(tags(&s)) {
                    return Ok(Observed::Foreign(ctx.why_not(tags(&s))));
                }
                let family = family_of(s.task_definition().unwrap_or_default()).to_owned();
                let latest = super::task_definition::latest_revision(ctx, &family).await?;
                Ok(Observed::Present(w.observe(&s, latest.as_deref())))
            }
        }))
        .await
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let mut req = ctx
            .aws
            .ecs
            .create_service()
            .cluster(&self.cluster)
            .service_name(&self.service_name)
            .task_definition(&self.task_definition)
            .desired_count(self.desired_count)
            .network_configuration(self.network()?)
            .deployment_configuration(self.deployment())
            .enable_ecs_managed_tags(self.enable_ecs_managed_tags)
            .enable_execute_command(self.enable_execute_command)
            .propagate_tags(t::PropagateTags::from(self.propagate_tags.as_str()))
            .client_token(self.client_token())
            .set_capacity_provider_strategy(self.strategy())
            .set_placement_strategy(self.placement())
            .set_service_registries(
                (!self.service_registries.is_empty()).then(|| self.registries()),
            )
            .set_tags(Some(to_sdk(&self.tags)));
        if let Some(l) = &self.launch_type {
            req = req.launch_type(t::LaunchType::from(l.as_str()));
        }
        req.send()
            .await
            .map_err(failed("ECS CreateService", &self.service_name))?;
        Ok(())
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        // Called with nothing different when its task definition changed (it
        // follows its dependencies): then it rolls out again.
        let only_tags = self.tags != have.tags && !differs_besides(self, have, |s| s.tags.clear());
        if !only_tags {
            // Where the tasks run changed (Spot taken off, EC2 capacity removed or
            // added): an empty strategy takes the service back to its launch type,
            // and the change moves no task by itself, so a new deployment is forced
            // (ECS API reference, UpdateService: capacityProviderStrategy).
            let moved = self.capacity_provider_strategy != have.capacity_provider_strategy
                || self.launch_type != have.launch_type;
            // ECS Exec turned on or off reaches only tasks started after it, so it too
            // starts a new deployment (ECS API reference, UpdateService:
            // enableExecuteCommand).
            let exec = self.enable_execute_command != have.enable_execute_command;
            // Alarms taken away are turned off: the call keeps what it is not sent.
            let mut deployment = self.deployment();
            if self.deployment_configuration.alarms.is_none()
                && have.deployment_configuration.alarms.is_some()
            {
                deployment.alarms = t::DeploymentAlarms::builder()
                    .set_alarm_names(Some(Vec::new()))
                    .enable(false)
                    .rollback(false)
                    .build()
                    .ok();
            }
            let mut req = ctx
                .aws
                .ecs
                .update_service()
                .cluster(&self.cluster)
                .service(&self.service_name)
                .task_definition(&self.task_definition)
                .network_configuration(self.network()?)
                .deployment_configuration(deployment)
                .enable_execute_command(self.enable_execute_command)
                .set_capacity_provider_strategy(self.strategy().or_else(|| moved.then(Vec::new)))
                .force_new_deployment(moved || exec)
                .set_placement_strategy(self.placement().or_else(|| {
                    // Taken off: none is ECS's default (spread over zones).
                    have.placement_strategy.as_ref().map(|_| Vec::new())
                }));
            if !self.scaled {
                req = req.desired_count(self.desired_count);
            }
            // Sent only when it changed: any change, an empty list included (how one is
            // taken away), starts a new deployment (ECS API reference, UpdateService:
            // serviceRegistries).
            if self.service_registries != have.service_registries {
                req = req.set_service_registries(Some(self.registries()));
            }
            req.send()
                .await
                .map_err(failed("ECS UpdateService", &self.service_name))?;
        }
        if self.tags != have.tags {
            let path = format!("service/{}/{}", self.cluster, self.service_name);
            super::cluster::tag(ctx, &path, &self.tags).await?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, _wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        Ok(owned_names(ctx)
            .await?
            .iter()
            .map(|n| Owned {
                name: n.clone(),
                handle: String::new(),
            })
            .collect())
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .ecs
            .delete_service()
            .cluster(&ctx.cluster)
            .service(&owned.name)
            .force(true)
            .send()
            .await;
        absent_on(
            out,
            &["ServiceNotFoundException", "ServiceNotActiveException"],
            "ECS DeleteService",
            &owned.name,
        )?;
        Ok(())
    }
}

/// One service of the stack's cluster as it runs now, if it is there (ACTIVE):
/// refused when it is not the stack's.
pub async fn describe_owned(ctx: &Ctx, name: &str) -> Result<Option<t::Service>> {
    let found = describe(ctx, &ctx.cluster, &[name.to_owned()]).await?;
    let Some(s) = found
        .into_iter()
        .find(|s| s.status() == Some("ACTIVE") && s.service_name() == Some(name))
    else {
        return Ok(None);
    };
    if !ctx.owns(tags(&s)) {
        return Err(DeployError::NotOwned {
            kind: "service",
            name: name.to_owned(),
            why: ctx.why_not(tags(&s)),
        });
    }
    Ok(Some(s))
}
