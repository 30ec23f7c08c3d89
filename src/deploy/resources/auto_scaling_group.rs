//! EC2 Auto Scaling groups (`{stack}-{resource}`) of the stack's container instances:
//! from 0 to the service's most tasks, sized by its ECS capacity provider (managed
//! scaling), instances protected from scale-in (managed termination protection) and
//! replaced at least weekly (`MaxInstanceLifetime`). One instance type launches from
//! the template; several make a mixed instances policy, the first preferred. A warm
//! pool (stopped, pre-initialised instances) is part of the group.

use std::collections::BTreeSet;

use aws_sdk_autoscaling::types as t;
use serde::Serialize;

use crate::deploy::engine::error::{failed, DeployError, Result};
use crate::deploy::engine::{differs_besides, Ctx, Kind, Observed, Owned};

/// A week: instances older than this are replaced (launched from the template again,
/// with the AMI of the day).
pub const MAX_INSTANCE_LIFETIME: i32 = 7 * 24 * 3600;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AutoScalingGroup {
    pub auto_scaling_group_name: String,
    pub min_size: i32,
    pub max_size: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_template: Option<TemplateRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixed_instances_policy: Option<Mixed>,
    /// The subnets, comma-separated (sorted).
    #[serde(rename = "VPCZoneIdentifier")]
    pub vpc_zone_identifier: String,
    pub max_instance_lifetime: i32,
    pub new_instances_protected_from_scale_in: bool,
    pub tags: Vec<GroupTag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_pool: Option<WarmPool>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TemplateRef {
    pub launch_template_name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Mixed {
    pub launch_template: MixedTemplate,
    pub instances_distribution: Distribution,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct MixedTemplate {
    pub launch_template_specification: TemplateRef,
    pub overrides: Vec<Override>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Override {
    pub instance_type: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Distribution {
    /// `prioritized`: the overrides' order, the first type preferred.
    pub on_demand_allocation_strategy: String,
    pub on_demand_percentage_above_base_capacity: i32,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "PascalCase")]
pub struct GroupTag {
    pub key: String,
    pub value: String,
    pub propagate_at_launch: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct WarmPool {
    pub pool_state: String,
    pub min_size: i32,
    /// None for an ECS group: "you cannot set the option that returns instances to
    /// the warm pool on scale in" (Amazon ECS Developer Guide, "Configuring
    /// pre-initialized instances for your Amazon ECS Auto Scaling group").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_reuse_policy: Option<ReusePolicy>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ReusePolicy {
    pub reuse_on_scale_in: bool,
}

fn template_spec(r: &TemplateRef) -> t::LaunchTemplateSpecification {
    t::LaunchTemplateSpecification::builder()
        .launch_template_name(&r.launch_template_name)
        .version(&r.version)
        .build()
}

fn template_ref(s: &t::LaunchTemplateSpecification) -> TemplateRef {
    TemplateRef {
        launch_template_name: s.launch_template_name().unwrap_or_default().to_owned(),
        version: s.version().unwrap_or("$Default").to_owned(),
    }
}

impl Mixed {
    fn sdk(&self) -> t::MixedInstancesPolicy {
        let lt = &self.launch_template;
        t::MixedInstancesPolicy::builder()
            .launch_template(
                t::LaunchTemplate::builder()
                    .launch_template_specification(template_spec(&lt.launch_template_specification))
                    .set_overrides(Some(
                        lt.overrides
                            .iter()
                            .map(|o| {
                                t::LaunchTemplateOverrides::builder()
                                    .instance_type(&o.instance_type)
                                    .build()
                            })
                            .collect(),
                    ))
                    .build(),
            )
            .instances_distribution(
                t::InstancesDistribution::builder()
                    .on_demand_allocation_strategy(
                        &self.instances_distribution.on_demand_allocation_strategy,
                    )
                    .on_demand_percentage_above_base_capacity(
                        self.instances_distribution
                            .on_demand_percentage_above_base_capacity,
                    )
                    .build(),
            )
            .build()
    }

    fn observed(m: &t::MixedInstancesPolicy) -> Option<Mixed> {
        let lt = m.launch_template()?;
        let d = m.instances_distribution();
        Some(Mixed {
            launch_template: MixedTemplate {
                launch_template_specification: template_ref(lt.launch_template_specification()?),
                overrides: lt
                    .overrides()
                    .iter()
                    .map(|o| Override {
                        instance_type: o.instance_type().unwrap_or_default().to_owned(),
                    })
                    .collect(),
            },
            instances_distribution: Distribution {
                on_demand_allocation_strategy: d
                    .and_then(|d| d.on_demand_allocation_strategy())
                    .unwrap_or("prioritized")
                    .to_owned(),
                on_demand_percentage_above_base_capacity: d
                    .and_then(|d| d.on_demand_percentage_above_base_capacity())
                    .unwrap_or(100),
            },
        })
    }
}

fn tags_of(g: &t::AutoScalingGroup) -> impl Iterator<Item = (&str, &str)> + Clone {
    g.tags()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
}

impl AutoScalingGroup {
    fn sdk_tags(&self) -> Vec<t::Tag> {
        self.tags
            .iter()
            .map(|g| {
                t::Tag::builder()
                    .resource_id(&self.auto_scaling_group_name)
                    .resource_type("auto-scaling-group")
                    .key(&g.key)
                    .value(&g.value)
                    .propagate_at_launch(g.propagate_at_launch)
                    .build()
            })
            .collect()
    }

    fn observe(&self, g: &t::AutoScalingGroup) -> AutoScalingGroup {
        let mut subnets: Vec<&str> = g
            .vpc_zone_identifier()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        subnets.sort();
        let mut tags: Vec<GroupTag> = g
            .tags()
            .iter()
            .filter(|t| self.tags.iter().any(|w| Some(w.key.as_str()) == t.key()))
            .map(|t| GroupTag {
                key: t.key().unwrap_or_default().to_owned(),
                value: t.value().unwrap_or_default().to_owned(),
                propagate_at_launch: t.propagate_at_launch().unwrap_or(false),
            })
            .collect();
        tags.sort();
        AutoScalingGroup {
            auto_scaling_group_name: self.auto_scaling_group_name.clone(),
            min_size: g.min_size().unwrap_or(0),
            max_size: g.max_size().unwrap_or(0),
            // A group launches from one or the other (an emulator may keep the
            // template after a mixed instances policy replaced it).
            launch_template: g
                .launch_template()
                .filter(|_| g.mixed_instances_policy().is_none())
                .map(template_ref),
            mixed_instances_policy: g.mixed_instances_policy().and_then(Mixed::observed),
            vpc_zone_identifier: subnets.join(","),
            // AWS returns it when set; an emulator that drops it is taken at its word.
            max_instance_lifetime: g
                .max_instance_lifetime()
                .unwrap_or(self.max_instance_lifetime),
            new_instances_protected_from_scale_in: g
                .new_instances_protected_from_scale_in()
                .unwrap_or(false),
            tags,
            warm_pool: g.warm_pool_configuration().map(|w| WarmPool {
                pool_state: w
                    .pool_state()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_else(|| "Stopped".into()),
                min_size: w.min_size().unwrap_or(0),
                instance_reuse_policy: w
                    .instance_reuse_policy()
                    .and_then(|r| r.reuse_on_scale_in())
                    .filter(|reuse| *reuse)
                    .map(|reuse_on_scale_in| ReusePolicy { reuse_on_scale_in }),
            }),
        }
    }

    async fn put_warm_pool(&self, ctx: &Ctx) -> Result<()> {
        let name = &self.auto_scaling_group_name;
        match &self.warm_pool {
            Some(w) => {
                ctx.aws
                    .autoscaling
                    .put_warm_pool()
                    .auto_scaling_group_name(name)
                    .pool_state(t::WarmPoolState::from(w.pool_state.as_str()))
                    .min_size(w.min_size)
                    .set_instance_reuse_policy(w.instance_reuse_policy.as_ref().map(|r| {
                        t::InstanceReusePolicy::builder()
                            .reuse_on_scale_in(r.reuse_on_scale_in)
                            .build()
                    }))
                    .send()
                    .await
                    .map_err(failed("AutoScaling PutWarmPool", name))?;
            }
            None => {
                ctx.aws
                    .autoscaling
                    .delete_warm_pool()
                    .auto_scaling_group_name(name)
                    .force_delete(true)
                    .send()
                    .await
                    .map_err(failed("AutoScaling DeleteWarmPool", name))?;
            }
        }
        Ok(())
    }
}

/// DescribeAutoScalingGroups of some names (up to 100 a call).
async fn describe(ctx: &Ctx, names: &[String]) -> Result<Vec<t::AutoScalingGroup>> {
    let mut found = Vec::new();
    for chunk in names.chunks(100) {
        let mut pages = ctx
            .aws
            .autoscaling
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(Some(chunk.to_vec()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed(
                "AutoScaling DescribeAutoScalingGroups",
                chunk.join(","),
            ))?;
            found.extend(page.auto_scaling_groups().iter().cloned());
        }
    }
    Ok(found)
}

/// The ARN of the group `name`, which holds an id AWS gives at creation.
pub async fn arn(ctx: &Ctx, name: &str) -> Result<String> {
    describe(ctx, &[name.to_owned()])
        .await?
        .iter()
        .find_map(|g| g.auto_scaling_group_arn().map(str::to_owned))
        .ok_or_else(|| DeployError::Unexpected {
            call: "AutoScaling DescribeAutoScalingGroups",
            what: format!("no group {name} right after apply made it: apply again"),
        })
}

impl Kind for AutoScalingGroup {
    const KIND: &'static str = "Auto Scaling group";
    const PLURAL: &'static str = "autoScalingGroups";
    const DEPENDS_ON: &'static [&'static str] = &[super::launch_template::LaunchTemplate::KIND];

    fn name(&self) -> String {
        self.auto_scaling_group_name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        Ok(Self::read_all(&[self], ctx)
            .await?
            .pop()
            .unwrap_or(Observed::Absent))
    }

    async fn read_all(want: &[&Self], ctx: &Ctx) -> Result<Vec<Observed<Self>>> {
        let names: Vec<String> = want
            .iter()
            .map(|w| w.auto_scaling_group_name.clone())
            .collect();
        let found = describe(ctx, &names).await?;
        want.iter()
            .map(|w| {
                let Some(g) = found
                    .iter()
                    .find(|g| g.auto_scaling_group_name() == Some(&w.auto_scaling_group_name))
                else {
                    return Ok(Observed::Absent);
                };
                if !ctx.owns(tags_of(g)) {
                    return Ok(Observed::Foreign(ctx.why_not(tags_of(g))));
                }
                if g.status().is_some_and(|s| s.starts_with("Delete")) {
                    return Err(DeployError::Refused(format!(
                        "Auto Scaling group {} is still being deleted (its instances are terminating): apply again once it is gone (a few minutes)",
                        w.auto_scaling_group_name
                    )));
                }
                Ok(Observed::Present(w.observe(g)))
            })
            .collect()
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let name = &self.auto_scaling_group_name;
        ctx.aws
            .autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .min_size(self.min_size)
            .max_size(self.max_size)
            .set_launch_template(self.launch_template.as_ref().map(template_spec))
            .set_mixed_instances_policy(self.mixed_instances_policy.as_ref().map(Mixed::sdk))
            .vpc_zone_identifier(&self.vpc_zone_identifier)
            .max_instance_lifetime(self.max_instance_lifetime)
            .new_instances_protected_from_scale_in(self.new_instances_protected_from_scale_in)
            .set_tags(Some(self.sdk_tags()))
            .send()
            .await
            .map_err(failed("AutoScaling CreateAutoScalingGroup", name))?;
        if self.warm_pool.is_some() {
            self.put_warm_pool(ctx).await?;
        }
        Ok(())
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        let name = &self.auto_scaling_group_name;
        let group_changed = differs_besides(self, have, |g| {
            g.tags.clear();
            g.warm_pool = None;
        });
        if group_changed {
            ctx.aws
                .autoscaling
                .update_auto_scaling_group()
                .auto_scaling_group_name(name)
                .min_size(self.min_size)
                .max_size(self.max_size)
                .set_launch_template(self.launch_template.as_ref().map(template_spec))
                .set_mixed_instances_policy(self.mixed_instances_policy.as_ref().map(Mixed::sdk))
                .vpc_zone_identifier(&self.vpc_zone_identifier)
                .max_instance_lifetime(self.max_instance_lifetime)
                .new_instances_protected_from_scale_in(self.new_instances_protected_from_scale_in)
                .send()
                .await
                .map_err(failed("AutoScaling UpdateAutoScalingGroup", name))?;
        }
        if have.tags != self.tags {
            ctx.aws
                .autoscaling
                .create_or_update_tags()
                .set_tags(Some(self.sdk_tags()))
                .send()
                .await
                .map_err(failed("AutoScaling CreateOrUpdateTags", name))?;
        }
        if have.warm_pool != self.warm_pool {
            self.put_warm_pool(ctx).await?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, _wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        // Read once a run: the capacity providers' listing starts from it too.
        Ok((*ctx
            .once("owned-groups".into(), || owned_groups(ctx))
            .await?)
            .clone())
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        // With its instances (scale-in protected: ECS managed termination protection)
        // and its warm pool.
        let out = ctx
            .aws
            .autoscaling
            .delete_auto_scaling_group()
            .auto_scaling_group_name(&owned.name)
            .force_delete(true)
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = failed("AutoScaling DeleteAutoScalingGroup", &owned.name)(e);
                // Gone already (ValidationError "AutoScalingGroup name not found").
                if err.code() == Some("ValidationError") && err.to_string().contains("not found") {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }
}

/// The stack's Auto Scaling groups (by their tag, paged), less those being deleted.
async fn owned_groups(ctx: &Ctx) -> Result<Vec<Owned>> {
    let mut pages = ctx
        .aws
        .autoscaling
        .describe_auto_scaling_groups()
        .filters(
            t::Filter::builder()
                .name(format!("tag:{}", crate::deploy::naming::STACK_TAG))
                .values(&ctx.stack)
                .build(),
        )
        .into_paginator()
        .send();
    let mut owned = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(failed("AutoScaling DescribeAutoScalingGroups", &ctx.stack))?;
        owned.extend(
            page.auto_scaling_groups()
                .iter()
                .filter(|g| ctx.owns(tags_of(g)))
                .filter(|g| !g.status().is_some_and(|s| s.starts_with("Delete")))
                .map(|g| Owned {
                    name: g.auto_scaling_group_name().unwrap_or_default().to_owned(),
                    handle: String::new(),
                }),
        );
    }
    Ok(owned)
}
