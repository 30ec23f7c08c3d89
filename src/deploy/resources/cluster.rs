//! The ECS cluster, with the Fargate capacity providers (`FARGATE`, `FARGATE_SPOT`)
//! associated so services can use a capacity provider strategy. An existing cluster
//! that is not the stack's (`default`, a team's shared one) is used as it is: never
//! changed, never deleted (preflight checks it has the providers the services use).
//! The stack's own cluster is never deleted while other stacks' services or tasks run
//! there: the stack lets go of it (removes its tag) and says so.

use std::collections::BTreeSet;

use serde::Serialize;

use super::EcsTag;
use crate::deploy::engine::error::{failed, Result};
use crate::deploy::engine::{Ctx, Kind, Observed, Owned};
use crate::deploy::naming::STACK_TAG;

/// How long `delete` waits for the stack's services and tasks to drain from its
/// cluster before giving up (a next `delete` goes on), and how often it asks.
const DRAIN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(600);
const DRAIN_POLL: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub cluster_name: String,
    /// Sorted.
    pub capacity_providers: Vec<String>,
    /// Container Insights, on: the dashboard's running-task count is one of its
    /// metrics (`ECS/ContainerInsights`), which a cluster without it has none of (ECS
    /// Developer Guide, "Amazon ECS Container Insights metrics"). Billed as CloudWatch
    /// custom metrics and performance log events (CloudWatch pricing).
    pub settings: Vec<Setting>,
    pub tags: Vec<EcsTag>,
}

/// A cluster setting as ECS names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub name: String,
    pub value: String,
}

impl Setting {
    fn sdk(&self) -> aws_sdk_ecs::types::ClusterSetting {
        aws_sdk_ecs::types::ClusterSetting::builder()
            .name(aws_sdk_ecs::types::ClusterSettingName::from(
                self.name.as_str(),
            ))
            .value(&self.value)
            .build()
    }
}

/// The capacity providers every cluster of a stack gets.
pub const FARGATE_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

fn tags(t: &[aws_sdk_ecs::types::Tag]) -> impl Iterator<Item = (&str, &str)> {
    t.iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
}

pub(crate) fn to_sdk(t: &[EcsTag]) -> Vec<aws_sdk_ecs::types::Tag> {
    t.iter()
        .map(|t| {
            aws_sdk_ecs::types::Tag::builder()
                .key(&t.key)
                .value(&t.value)
                .build()
        })
        .collect()
}

/// Set `tags` on the ECS resource `path` (`cluster/NAME`, `service/CLUSTER/NAME`).
pub(crate) async fn tag(ctx: &Ctx, path: &str, tags: &[EcsTag]) -> Result<()> {
    let arn = format!("arn:aws:ecs:{}:{}:{path}", ctx.region, ctx.account);
    ctx.aws
        .ecs
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(to_sdk(tags)))
        .send()
        .await
        .map_err(failed("ECS TagResource", path))?;
    Ok(())
}

pub(crate) fn from_sdk(have: &[aws_sdk_ecs::types::Tag], want: &[EcsTag]) -> Vec<EcsTag> {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    super::keep_tags(tags(have), &want)
        .into_iter()
        .map(|(key, value)| EcsTag { key, value })
        .collect()
}

impl Kind for Cluster {
    const KIND: &'static str = "ECS cluster";
    const PLURAL: &'static str = "clusters";
    const SHARED_OK: bool = true;

    fn name(&self) -> String {
        self.cluster_name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let Some(c) = active(ctx, &self.cluster_name).await? else {
            return Ok(Observed::Absent);
        };
        if !ctx.owns(tags(c.tags())) {
            return Ok(Observed::Foreign(ctx.why_not(tags(c.tags()))));
        }
        // The Fargate ones: the stack's EC2 providers are its capacity providers'
        // (`ClusterCapacityProviders`).
        let mut providers: Vec<String> = c
            .capacity_providers()
            .iter()
            .filter(|p| FARGATE_PROVIDERS.contains(&p.as_str()))
            .cloned()
            .collect();
        providers.sort();
        let settings = c
            .settings()
            .iter()
            .filter(|s| {
                self.settings
                    .iter()
                    .any(|w| Some(w.name.as_str()) == s.name().map(|n| n.as_str()))
            })
            .map(|s| Setting {
                name: s.name().map(|n| n.as_str().to_owned()).unwrap_or_default(),
                value: s.value().unwrap_or_default().to_owned(),
            })
            .collect();
        Ok(Observed::Present(Cluster {
            cluster_name: self.cluster_name.clone(),
            capacity_providers: providers,
            settings,
            tags: from_sdk(c.tags(), &self.tags),
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        ctx.aws
            .ecs
            .create_cluster()
            .cluster_name(&self.cluster_name)
            .set_capacity_providers(Some(self.capacity_providers.clone()))
            .set_settings(Some(self.settings.iter().map(Setting::sdk).collect()))
            .set_tags(Some(to_sdk(&self.tags)))
            .send()
            .await
            .map_err(failed("ECS CreateCluster", &self.cluster_name))?;
        Ok(())
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        if have.capacity_providers != self.capacity_providers {
            // The Fargate ones added to what the cluster has (EC2 ones stay).
            let mut all = self.capacity_providers.clone();
            all.extend(
                attached(ctx, &self.cluster_name)
                    .await?
                    .into_iter()
                    .filter(|p| !FARGATE_PROVIDERS.contains(&p.as_str())),
            );
            put_providers(ctx, &self.cluster_name, all).await?;
        }
        if have.settings != self.settings {
            ctx.aws
                .ecs
                .update_cluster()
                .cluster(&self.cluster_name)
                .set_settings(Some(self.settings.iter().map(Setting::sdk).collect()))
                .send()
                .await
                .map_err(failed("ECS UpdateCluster", &self.cluster_name))?;
        }
        if have.tags != self.tags {
            tag(ctx, &format!("cluster/{}", self.cluster_name), &self.tags).await?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, _wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        // Only the stack's own cluster can be its: look at that one.
        Ok(active(ctx, &ctx.cluster)
            .await?
            .filter(|c| ctx.owns(tags(c.tags())))
            .map(|c| Owned {
                name: c.cluster_name().unwrap_or_default().to_owned(),
                handle: String::new(),
            })
            .into_iter()
            .collect())
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        // Other stacks' services or tasks run there (a stack that names this cluster
        // uses it as it is): the stack lets go of it instead, and says so.
        let others = other_work(ctx, &owned.name).await?;
        if !others.is_empty() {
            ctx.aws
                .ecs
                .untag_resource()
                .resource_arn(format!(
                    "arn:aws:ecs:{}:{}:cluster/{}",
                    ctx.region, ctx.account, owned.name
                ))
                .tag_keys(STACK_TAG)
                .send()
                .await
                .map_err(failed("ECS UntagResource", &owned.name))?;
            eprintln!(
                "  ECS cluster {}: not deleted, other work runs there ({}); it is no longer this stack's (tag {STACK_TAG} removed)",
                owned.name,
                others.join(", ")
            );
            return Ok(());
        }
        // The stack's services were just deleted: ECS refuses to delete the cluster
        // until they and their tasks have drained. Wait for that, bounded.
        let give_up = std::time::Instant::now() + DRAIN_PATIENCE;
        loop {
            let out = ctx
                .aws
                .ecs
                .delete_cluster()
                .cluster(&owned.name)
                .send()
                .await;
            let err = match out {
                Ok(_) => return Ok(()),
                Err(e) => failed("ECS DeleteCluster", &owned.name)(e),
            };
            let draining = matches!(
                err.code(),
                Some(
                    "ClusterContainsServicesException"
                        | "ClusterContainsTasksException"
                        | "ClusterContainsContainerInstancesException"
                )
            );
            if !draining || std::time::Instant::now() >= give_up {
                return Err(err);
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
    }
}

/// What runs in cluster `name` and is not this stack's: ACTIVE services without the
/// stack's tag, and running tasks tagged as another stack's (every list paged; the
/// services described ten at a time, the tasks a hundred, as ECS allows: ECS API
/// reference, DescribeServices and DescribeTasks).
async fn other_work(ctx: &Ctx, name: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut arns = Vec::new();
    let mut pages = ctx
        .aws
        .ecs
        .list_services()
        .cluster(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(failed("ECS ListServices", name))?;
        arns.extend(page.service_arns().iter().cloned());
    }
    for batch in arns.chunks(10) {
        let d = ctx
            .aws
            .ecs
            .describe_services()
            .cluster(name)
            .set_services(Some(batch.to_vec()))
            .include(aws_sdk_ecs::types::ServiceField::Tags)
            .send()
            .await
            .map_err(failed("ECS DescribeServices", name))?;
        out.extend(
            d.services()
                .iter()
                .filter(|s| s.status() == Some("ACTIVE") && !ctx.owns(tags(s.tags())))
                .map(|s| format!("service {}", s.service_name().unwrap_or("?"))),
        );
    }
    let mut tasks = Vec::new();
    let mut pages = ctx
        .aws
        .ecs
        .list_tasks()
        .cluster(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(failed("ECS ListTasks", name))?;
        tasks.extend(page.task_arns().iter().cloned());
    }
    for batch in tasks.chunks(100) {
        let d = ctx
            .aws
            .ecs
            .describe_tasks()
            .cluster(name)
            .set_tasks(Some(batch.to_vec()))
            .include(aws_sdk_ecs::types::TaskField::Tags)
            .send()
            .await
            .map_err(failed("ECS DescribeTasks", name))?;
        out.extend(
            d.tasks()
                .iter()
                .filter(|t| {
                    tags(t.tags()).any(|(k, v)| k == STACK_TAG && v != ctx.stack)
                        && t.last_status() != Some("STOPPED")
                })
                .map(|t| format!("task {}", t.task_arn().unwrap_or("?"))),
        );
    }
    Ok(out)
}

/// Cluster `name` as DescribeClusters gives it (with its tags), if it is there: ACTIVE
/// or PROVISIONING (a missing cluster is a failure with reason MISSING; a deleted one
/// is INACTIVE).
async fn active(ctx: &Ctx, name: &str) -> Result<Option<aws_sdk_ecs::types::Cluster>> {
    let out = ctx
        .aws
        .ecs
        .describe_clusters()
        .clusters(name)
        .include(aws_sdk_ecs::types::ClusterField::Tags)
        .include(aws_sdk_ecs::types::ClusterField::Settings)
        .send()
        .await
        .map_err(failed("ECS DescribeClusters", name))?;
    Ok(out
        .clusters()
        .iter()
        .find(|c| c.status() == Some("ACTIVE") || c.status() == Some("PROVISIONING"))
        .cloned())
}

/// The capacity providers of a cluster that exists and is not the stack's, or `None`
/// (absent, or the stack's own).
pub async fn foreign_providers(ctx: &Ctx, name: &str) -> Result<Option<Vec<String>>> {
    Ok(active(ctx, name)
        .await?
        .filter(|c| !ctx.owns(tags(c.tags())))
        .map(|c| c.capacity_providers().to_vec()))
}

/// The capacity providers on cluster `name` (none when it does not exist).
async fn attached(ctx: &Ctx, name: &str) -> Result<Vec<String>> {
    Ok(active(ctx, name)
        .await?
        .map(|c| c.capacity_providers().to_vec())
        .unwrap_or_default())
}

/// Set the capacity providers of the stack's own cluster. Its default strategy is
/// the stack's too: none (every service names its launch type or strategy).
async fn put_providers(ctx: &Ctx, cluster: &str, mut providers: Vec<String>) -> Result<()> {
    providers.sort();
    providers.dedup();
    ctx.aws
        .ecs
        .put_cluster_capacity_providers()
        .cluster(cluster)
        .set_capacity_providers(Some(providers))
        .set_default_capacity_provider_strategy(Some(Vec::new()))
        .send()
        .await
        .map_err(failed("ECS PutClusterCapacityProviders", cluster))?;
    Ok(())
}

/// Take the capacity provider `provider` off the stack's cluster, if it is there and
/// the cluster is the stack's (a provider is deleted only once on no cluster).
pub async fn detach_provider(ctx: &Ctx, provider: &str) -> Result<()> {
    let Some(c) = active(ctx, &ctx.cluster)
        .await?
        .filter(|c| ctx.owns(tags(c.tags())))
    else {
        return Ok(());
    };
    if !c.capacity_providers().iter().any(|p| p == provider) {
        return Ok(());
    }
    let rest = c
        .capacity_providers()
        .iter()
        .filter(|p| *p != provider)
        .cloned()
        .collect();
    put_providers(ctx, &ctx.cluster, rest).await
}

/// The stack's EC2 capacity providers on its cluster (beside the Fargate ones). A
/// provider the file no longer has is left on it here: its own deletion takes it off,
/// after the services that use it are gone.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCapacityProviders {
    pub cluster: String,
    /// Sorted: the Fargate ones and the stack's EC2 ones.
    pub capacity_providers: Vec<String>,
}

impl ClusterCapacityProviders {
    /// Of the providers on the cluster, the stack's that the file no longer has.
    fn leaving(&self, ctx: &Ctx, on: &[String]) -> Vec<String> {
        let prefix = format!("{}-", ctx.stack);
        on.iter()
            .filter(|p| p.starts_with(&prefix) && !self.capacity_providers.contains(p))
            .cloned()
            .collect()
    }
}

impl Kind for ClusterCapacityProviders {
    const KIND: &'static str = "ECS cluster capacity providers";
    const PLURAL: &'static str = "clusterCapacityProviders";
    const DEPENDS_ON: &'static [&'static str] = &[
        Cluster::KIND,
        super::capacity_provider::CapacityProvider::KIND,
    ];
    const SHARED_OK: bool = true;

    fn name(&self) -> String {
        self.cluster.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let Some(c) = active(ctx, &self.cluster).await? else {
            return Ok(Observed::Absent);
        };
        if !ctx.owns(tags(c.tags())) {
            return Ok(Observed::Foreign(ctx.why_not(tags(c.tags()))));
        }
        let leaving = self.leaving(ctx, c.capacity_providers());
        let mut providers: Vec<String> = c
            .capacity_providers()
            .iter()
            .filter(|p| !leaving.contains(p))
            .cloned()
            .collect();
        providers.sort();
        Ok(Observed::Present(ClusterCapacityProviders {
            cluster: self.cluster.clone(),
            capacity_providers: providers,
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        self.update(self, ctx).await
    }

    async fn update(&self, _: &Self, ctx: &Ctx) -> Result<()> {
        let on = attached(ctx, &self.cluster).await?;
        let mut all = self.capacity_providers.clone();
        all.extend(self.leaving(ctx, &on));
        put_providers(ctx, &self.cluster, all).await
    }

    /// The cluster's: nothing of its own to delete.
    async fn list_owned(_: &Ctx, _: &BTreeSet<String>) -> Result<Vec<Owned>> {
        Ok(Vec::new())
    }

    async fn delete(_: &Owned, _: &Ctx) -> Result<()> {
        Ok(())
    }
}
