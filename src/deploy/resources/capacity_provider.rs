//! ECS capacity providers (`{stack}-{resource}`) over the stack's Auto Scaling groups,
//! with managed scaling (ECS sizes the group to the tasks it must place), managed
//! termination protection (an instance with tasks is not scaled in) and managed
//! draining (an instance leaving the group has its tasks moved first).

use std::collections::BTreeSet;

use aws_sdk_ecs::types as t;
use serde::Serialize;

use super::cluster::{from_sdk, to_sdk};
use super::EcsTag;
use crate::deploy::engine::error::{failed, DeployError, Result};
use crate::deploy::engine::{Ctx, Kind, Observed, Owned};

/// How long `delete` waits for ECS to finish deleting a capacity provider (the group
/// under it can go only then), and how often it asks.
const DELETE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(600);
const DELETE_POLL: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProvider {
    pub name: String,
    pub auto_scaling_group_provider: GroupProvider,
    pub tags: Vec<EcsTag>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GroupProvider {
    /// The group's ARN, its id written `*` (AWS gives it at the group's creation):
    /// apply puts the real one in.
    pub auto_scaling_group_arn: String,
    pub managed_scaling: ManagedScaling,
    pub managed_termination_protection: String,
    pub managed_draining: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedScaling {
    pub status: String,
    pub target_capacity: i32,
    pub minimum_scaling_step_size: i32,
    pub maximum_scaling_step_size: i32,
    pub instance_warmup_period: i32,
}

/// `arn:…:autoScalingGroup:UUID:autoScalingGroupName/N` with the UUID written `*`.
pub fn group_arn_pattern(region: &str, account: &str, group: &str) -> String {
    format!(
        "arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{group}"
    )
}

fn without_id(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(8, ':').collect();
    if parts.len() == 8 && parts[5] == "autoScalingGroup" {
        format!(
            "{}:{}:{}:{}:{}:{}:*:{}",
            parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[7]
        )
    } else {
        arn.to_owned()
    }
}

fn group_name(arn: &str) -> &str {
    arn.rsplit("autoScalingGroupName/").next().unwrap_or(arn)
}

fn tags_of(p: &t::CapacityProvider) -> impl Iterator<Item = (&str, &str)> + Clone {
    p.tags()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
}

impl ManagedScaling {
    fn sdk(&self) -> t::ManagedScaling {
        t::ManagedScaling::builder()
            .status(t::ManagedScalingStatus::from(self.status.as_str()))
            .target_capacity(self.target_capacity)
            .minimum_scaling_step_size(self.minimum_scaling_step_size)
            .maximum_scaling_step_size(self.maximum_scaling_step_size)
            .instance_warmup_period(self.instance_warmup_period)
            .build()
    }
}

impl CapacityProvider {
    fn observe(&self, p: &t::CapacityProvider) -> CapacityProvider {
        let g = p.auto_scaling_group_provider();
        let want = &self.auto_scaling_group_provider;
        let ms = g.and_then(|g| g.managed_scaling());
        CapacityProvider {
            name: self.name.clone(),
            auto_scaling_group_provider: GroupProvider {
                auto_scaling_group_arn: without_id(
                    g.map(|g| g.auto_scaling_group_arn()).unwrap_or_default(),
                ),
                managed_scaling: ManagedScaling {
                    status: ms
                        .and_then(|m| m.status())
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_else(|| "DISABLED".into()),
                    target_capacity: ms.and_then(|m| m.target_capacity()).unwrap_or(100),
                    minimum_scaling_step_size: ms
                        .and_then(|m| m.minimum_scaling_step_size())
                        .unwrap_or(1),
                    maximum_scaling_step_size: ms
                        .and_then(|m| m.maximum_scaling_step_size())
                        .unwrap_or(10_000),
                    instance_warmup_period: ms
                        .and_then(|m| m.instance_warmup_period())
                        .unwrap_or(300),
                },
                managed_termination_protection: g
                    .and_then(|g| g.managed_termination_protection())
                    .map(|m| m.as_str().to_owned())
                    .unwrap_or_else(|| "DISABLED".into()),
                // AWS returns it; an emulator that does not is taken at its word.
                managed_draining: g
                    .and_then(|g| g.managed_draining())
                    .map(|m| m.as_str().to_owned())
                    .unwrap_or_else(|| want.managed_draining.clone()),
            },
            tags: from_sdk(p.tags(), &self.tags),
        }
    }
}

/// DescribeCapacityProviders of some names, tags included; missing ones are left out.
async fn describe(ctx: &Ctx, names: &[String]) -> Result<Vec<t::CapacityProvider>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let out = ctx
        .aws
        .ecs
        .describe_capacity_providers()
        .set_capacity_providers(Some(names.to_vec()))
        .include(t::CapacityProviderField::Tags)
        .send()
        .await
        .map_err(failed("ECS DescribeCapacityProviders", names.join(",")))?;
    Ok(out
        .capacity_providers()
        .iter()
        .filter(|p| p.status() != Some(&t::CapacityProviderStatus::Inactive))
        .cloned()
        .collect())
}

impl Kind for CapacityProvider {
    const KIND: &'static str = "ECS capacity provider";
    const PLURAL: &'static str = "capacityProviders";
    const DEPENDS_ON: &'static [&'static str] =
        &[super::auto_scaling_group::AutoScalingGroup::KIND];

    fn name(&self) -> String {
        self.name.clone()
    }

    /// UpdateCapacityProvider changes a provider's scaling, protection and draining,
    /// never its Auto Scaling group (ECS API reference, UpdateCapacityProvider and
    /// AutoScalingGroupProviderUpdate): another group is another provider.
    fn replace_reason(&self, have: &Self) -> Option<String> {
        let (g, h) = (
            &self.auto_scaling_group_provider,
            &have.auto_scaling_group_provider,
        );
        (g.auto_scaling_group_arn != h.auto_scaling_group_arn).then(|| {
            "autoScalingGroupProvider.autoScalingGroupArn: a provider cannot change its group"
                .to_owned()
        })
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let found = describe(ctx, std::slice::from_ref(&self.name)).await?;
        let Some(p) = found.iter().find(|p| p.name() == Some(&self.name)) else {
            return Ok(Observed::Absent);
        };
        if !ctx.owns(tags_of(p)) {
            return Ok(Observed::Foreign(ctx.why_not(tags_of(p))));
        }
        if p.status() == Some(&t::CapacityProviderStatus::Deprovisioning)
            || p.update_status() == Some(&t::CapacityProviderUpdateStatus::DeleteInProgress)
        {
            return Err(DeployError::Refused(format!(
                "ECS capacity provider {} is still being deleted: apply again once it is gone (a few minutes)",
                self.name
            )));
        }
        Ok(Observed::Present(self.observe(p)))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let g = &self.auto_scaling_group_provider;
        let arn =
            super::auto_scaling_group::arn(ctx, group_name(&g.auto_scaling_group_arn)).await?;
        let provider = t::AutoScalingGroupProvider::builder()
            .auto_scaling_group_arn(arn)
            .managed_scaling(g.managed_scaling.sdk())
            .managed_termination_protection(t::ManagedTerminationProtection::from(
                g.managed_termination_protection.as_str(),
            ))
            .managed_draining(t::ManagedDraining::from(g.managed_draining.as_str()))
            .build()
            .map_err(|e| DeployError::Request {
                what: format!("capacity provider {}", self.name),
                why: e.to_string(),
            })?;
        ctx.aws
            .ecs
            .create_capacity_provider()
            .name(&self.name)
            .auto_scaling_group_provider(provider)
            .set_tags(Some(to_sdk(&self.tags)))
            .send()
            .await
            .map_err(failed("ECS CreateCapacityProvider", &self.name))?;
        Ok(())
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        let (g, h) = (
            &self.auto_scaling_group_provider,
            &have.auto_scaling_group_provider,
        );
        if g != h {
            ctx.aws
                .ecs
                .update_capacity_provider()
                .name(&self.name)
                .auto_scaling_group_provider(
                    t::AutoScalingGroupProviderUpdate::builder()
                        .managed_scaling(g.managed_scaling.sdk())
                        .managed_termination_protection(t::ManagedTerminationProtection::from(
                            g.managed_termination_protection.as_str(),
                        ))
                        .managed_draining(t::ManagedDraining::from(g.managed_draining.as_str()))
                        .build(),
                )
                .send()
                .await
                .map_err(failed("ECS UpdateCapacityProvider", &self.name))?;
        }
        if have.tags != self.tags {
            super::cluster::tag(ctx, &format!("capacity-provider/{}", self.name), &self.tags)
                .await?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        // A provider is named after its group and is deleted before it: the candidates
        // are the names of the stack's groups and the providers on the stack's cluster.
        let groups = <super::auto_scaling_group::AutoScalingGroup as Kind>::list_owned(ctx, wanted);
        let cluster = ctx
            .aws
            .ecs
            .describe_clusters()
            .clusters(&ctx.cluster)
            .send();
        let (groups, cluster) = futures_util::join!(groups, cluster);
        let cluster = cluster.map_err(failed("ECS DescribeClusters", &ctx.cluster))?;
        let mut names: BTreeSet<String> = groups?.into_iter().map(|o| o.name).collect();
        names.extend(
            cluster
                .clusters()
                .iter()
                .flat_map(|c| c.capacity_providers())
                .filter(|p| !super::cluster::FARGATE_PROVIDERS.contains(&p.as_str()))
                .cloned(),
        );
        names.retain(|n| !wanted.contains(n));
        let names: Vec<String> = names.into_iter().collect();
        Ok(describe(ctx, &names)
            .await?
            .iter()
            .filter(|p| ctx.owns(tags_of(p)))
            .map(|p| Owned {
                name: p.name().unwrap_or_default().to_owned(),
                handle: String::new(),
            })
            .collect())
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        // Only a provider on no cluster can be deleted: take it off the stack's. ECS
        // refuses while tasks placed through it still run (its services were just
        // deleted, and their tasks stop within their stopTimeout): wait for them.
        let give_up = std::time::Instant::now() + DELETE_PATIENCE;
        loop {
            let err = match super::cluster::detach_provider(ctx, &owned.name).await {
                Ok(()) => break,
                Err(e) => e,
            };
            let in_use = matches!(
                err.code(),
                Some("ResourceInUseException" | "UpdateInProgressException")
            );
            if !in_use || std::time::Instant::now() >= give_up {
                return Err(err);
            }
            tokio::time::sleep(DELETE_POLL).await;
        }
        ctx.aws
            .ecs
            .delete_capacity_provider()
            .capacity_provider(&owned.name)
            .send()
            .await
            .map_err(failed("ECS DeleteCapacityProvider", &owned.name))?;
        // Deletion goes on in the background; the group under it can go only after.
        loop {
            let left = describe(ctx, std::slice::from_ref(&owned.name)).await?;
            if left.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() >= give_up {
                return Err(DeployError::Refused(format!(
                    "ECS capacity provider {} is still being deleted after {} s: run delete again later",
                    owned.name,
                    DELETE_PATIENCE.as_secs()
                )));
            }
            tokio::time::sleep(DELETE_POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn group_arns_compare_without_their_id() {
        let real = "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:0f1e2d3c-aaaa-bbbb-cccc-001122334455:autoScalingGroupName/shop-worker";
        assert_eq!(
            super::without_id(real),
            super::group_arn_pattern("eu-west-1", "123456789012", "shop-worker")
        );
        assert_eq!(super::group_name(real), "shop-worker");
    }
}
