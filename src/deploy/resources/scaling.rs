//! Application Auto Scaling: a service's scalable target, its target-tracking
//! policies and the step policies a scale-to-zero service's alarms trigger. They carry no tags AWS returns: they are the stack's when their service
//! is (its tag), and go with it.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_applicationautoscaling::types as t;
use serde::Serialize;

use crate::deploy::engine::error::{failed, DeployError, Result};
use crate::deploy::engine::{Ctx, Kind, Observed, Owned};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalableTarget {
    pub service_namespace: String,
    pub resource_id: String,
    pub scalable_dimension: String,
    pub min_capacity: i32,
    pub max_capacity: i32,
    /// Sent when the target is registered; AWS does not return them here.
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingPolicy {
    pub policy_name: String,
    pub service_namespace: String,
    pub resource_id: String,
    pub scalable_dimension: String,
    pub policy_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_tracking_scaling_policy_configuration: Option<TargetTracking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_scaling_policy_configuration: Option<StepScaling>,
}

/// A step policy: what to do when its alarm fires, by how far the alarm's metric is
/// from the alarm's threshold.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepScaling {
    pub adjustment_type: String,
    pub step_adjustments: Vec<Step>,
    pub cooldown: i32,
    pub metric_aggregation_type: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Step {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_interval_lower_bound: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_interval_upper_bound: Option<f64>,
    pub scaling_adjustment: i32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetTracking {
    pub target_value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predefined_metric_specification: Option<Predefined>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customized_metric_specification: Option<Customized>,
    pub scale_out_cooldown: i32,
    pub scale_in_cooldown: i32,
    pub disable_scale_in: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Predefined {
    pub predefined_metric_type: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Customized {
    pub metric_name: String,
    pub namespace: String,
    pub dimensions: Vec<Dimension>,
    pub statistic: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dimension {
    pub name: String,
    pub value: String,
}

/// `service/{cluster}/{service}` → the service's name.
fn service_of(resource_id: &str) -> &str {
    resource_id.rsplit('/').next().unwrap_or(resource_id)
}

/// The scalable targets of the stack's services (id, min, max), read once a run by
/// their resource ids, 50 at a time as DescribeScalableTargets takes them
/// (Application Auto Scaling API reference, DescribeScalableTargets: ResourceIds, at
/// most 50): what is read scales with the stack, not with the account.
async fn all_targets(ctx: &Ctx) -> Result<std::sync::Arc<Vec<(String, i32, i32)>>> {
    ctx.once("scalable-targets:stack".into(), || async {
        let services = super::service::owned_names(ctx).await?;
        let ids: Vec<String> = services
            .iter()
            .map(|s| format!("service/{}/{s}", ctx.cluster))
            .collect();
        let mut out = Vec::new();
        for batch in ids.chunks(50) {
            let mut pages = ctx
                .aws
                .scaling
                .describe_scalable_targets()
                .service_namespace(t::ServiceNamespace::Ecs)
                .set_resource_ids(Some(batch.to_vec()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(failed("AutoScaling DescribeScalableTargets", "ecs"))?;
                out.extend(
                    page.scalable_targets()
                        .iter()
                        .filter(|x| batch.iter().any(|id| id == x.resource_id()))
                        .map(|x| {
                            (
                                x.resource_id().to_owned(),
                                x.min_capacity(),
                                x.max_capacity(),
                            )
                        }),
                );
            }
        }
        Ok(out)
    })
    .await
}

/// The targets whose service is the stack's.
async fn owned_targets(ctx: &Ctx) -> Result<Vec<String>> {
    let services = super::service::owned_names(ctx).await?;
    let prefix = format!("service/{}/", ctx.cluster);
    Ok(all_targets(ctx)
        .await?
        .iter()
        .map(|(id, _, _)| id.clone())
        .filter(|id| id.starts_with(&prefix) && services.contains(service_of(id)))
        .collect())
}

/// The policies of one scalable target (paged), read once a run.
async fn policies_of(ctx: &Ctx, id: &str) -> Result<std::sync::Arc<Vec<t::ScalingPolicy>>> {
    ctx.once(format!("scaling-policies:{id}"), || async {
        let mut pages = ctx
            .aws
            .scaling
            .describe_scaling_policies()
            .service_namespace(t::ServiceNamespace::Ecs)
            .resource_id(id)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("AutoScaling DescribeScalingPolicies", id))?;
            // Filter here too: an emulator may not filter by resource id.
            out.extend(
                page.scaling_policies()
                    .iter()
                    .filter(|p| p.resource_id() == id)
                    .cloned(),
            );
        }
        Ok(out)
    })
    .await
}

impl Kind for ScalableTarget {
    const KIND: &'static str = "scalable target";
    const PLURAL: &'static str = "scalableTargets";
    const DEPENDS_ON: &'static [&'static str] = &[super::service::Service::KIND];

    fn name(&self) -> String {
        self.resource_id.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        Ok(
            match all_targets(ctx)
                .await?
                .iter()
                .find(|(id, _, _)| *id == self.resource_id)
            {
                None => Observed::Absent,
                Some((_, min, max)) => Observed::Present(ScalableTarget {
                    min_capacity: *min,
                    max_capacity: *max,
                    ..self.clone()
                }),
            },
        )
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        ctx.aws
            .scaling
            .register_scalable_target()
            .service_namespace(t::ServiceNamespace::Ecs)
            .resource_id(&self.resource_id)
            .scalable_dimension(t::ScalableDimension::EcsServiceDesiredCount)
            .min_capacity(self.min_capacity)
            .max_capacity(self.max_capacity)
            .set_tags(Some(self.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(failed(
                "AutoScaling RegisterScalableTarget",
                &self.resource_id,
            ))?;
        Ok(())
    }

    async fn update(&self, _have: &Self, ctx: &Ctx) -> Result<()> {
        // Registering again updates the bounds (tags apply only to a new target).
        ctx.aws
            .scaling
            .register_scalable_target()
            .service_namespace(t::ServiceNamespace::Ecs)
            .resource_id(&self.resource_id)
            .scalable_dimension(t::ScalableDimension::EcsServiceDesiredCount)
            .min_capacity(self.min_capacity)
            .max_capacity(self.max_capacity)
            .send()
            .await
            .map_err(failed(
                "AutoScaling RegisterScalableTarget",
                &self.resource_id,
            ))?;
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, _wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        Ok(owned_targets(ctx)
            .await?
            .into_iter()
            .map(|id| Owned {
                name: id,
                handle: String::new(),
            })
            .collect())
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .scaling
            .deregister_scalable_target()
            .service_namespace(t::ServiceNamespace::Ecs)
            .resource_id(&owned.name)
            .scalable_dimension(t::ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await;
        crate::deploy::engine::error::absent_on(
            out,
            &["ObjectNotFoundException"],
            "AutoScaling DeregisterScalableTarget",
            &owned.name,
        )?;
        Ok(())
    }
}

fn observe_policy(want: &ScalingPolicy, p: &t::ScalingPolicy) -> ScalingPolicy {
    let tracking = p
        .target_tracking_scaling_policy_configuration()
        .map(|c| TargetTracking {
            target_value: c.target_value(),
            predefined_metric_specification: c.predefined_metric_specification().map(|p| {
                Predefined {
                    predefined_metric_type: p.predefined_metric_type().as_str().to_owned(),
                }
            }),
            customized_metric_specification: c.customized_metric_specification().map(|m| {
                Customized {
                    metric_name: m.metric_name().unwrap_or_default().to_owned(),
                    namespace: m.namespace().unwrap_or_default().to_owned(),
                    dimensions: m
                        .dimensions()
                        .iter()
                        .map(|d| Dimension {
                            name: d.name().to_owned(),
                            value: d.value().to_owned(),
                        })
                        .collect(),
                    statistic: m
                        .statistic()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                }
            }),
            scale_out_cooldown: c.scale_out_cooldown().unwrap_or(0),
            scale_in_cooldown: c.scale_in_cooldown().unwrap_or(0),
            disable_scale_in: c.disable_scale_in().unwrap_or(
                want.target_tracking_scaling_policy_configuration
                    .as_ref()
                    .is_some_and(|w| w.disable_scale_in),
            ),
        });
    let step = p.step_scaling_policy_configuration().map(|c| StepScaling {
        adjustment_type: c
            .adjustment_type()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
        step_adjustments: c
            .step_adjustments()
            .iter()
            .map(|s| Step {
                metric_interval_lower_bound: s.metric_interval_lower_bound(),
                metric_interval_upper_bound: s.metric_interval_upper_bound(),
                scaling_adjustment: s.scaling_adjustment(),
            })
            .collect(),
        cooldown: c.cooldown().unwrap_or(0),
        metric_aggregation_type: c
            .metric_aggregation_type()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
    });
    ScalingPolicy {
        policy_name: p.policy_name().to_owned(),
        service_namespace: p.service_namespace().as_str().to_owned(),
        resource_id: p.resource_id().to_owned(),
        scalable_dimension: p.scalable_dimension().as_str().to_owned(),
        policy_type: p.policy_type().as_str().to_owned(),
        target_tracking_scaling_policy_configuration: tracking,
        step_scaling_policy_configuration: step,
    }
}

impl Kind for ScalingPolicy {
    const KIND: &'static str = "scaling policy";
    const PLURAL: &'static str = "scalingPolicies";
    const DEPENDS_ON: &'static [&'static str] = &[ScalableTarget::KIND];

    fn name(&self) -> String {
        self.policy_name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        Ok(
            match policies_of(ctx, &self.resource_id)
                .await?
                .iter()
                .find(|p| p.policy_name() == self.policy_name)
            {
                None => Observed::Absent,
                Some(p) => Observed::Present(observe_policy(self, p)),
            },
        )
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let bad = |e: aws_sdk_applicationautoscaling::error::BuildError| DeployError::Request {
            what: format!("scaling policy {}", self.policy_name),
            why: e.to_string(),
        };
        let mut req = ctx
            .aws
            .scaling
            .put_scaling_policy()
            .policy_name(&self.policy_name)
            .service_namespace(t::ServiceNamespace::Ecs)
            .resource_id(&self.resource_id)
            .scalable_dimension(t::ScalableDimension::EcsServiceDesiredCount)
            .policy_type(t::PolicyType::from(self.policy_type.as_str()));
        if let Some(c) = &self.target_tracking_scaling_policy_configuration {
            let mut tt = t::TargetTrackingScalingPolicyConfiguration::builder()
                .target_value(c.target_value)
                .scale_out_cooldown(c.scale_out_cooldown)
                .scale_in_cooldown(c.scale_in_cooldown)
                .disable_scale_in(c.disable_scale_in);
            if let Some(p) = &c.predefined_metric_specification {
                tt = tt.predefined_metric_specification(
                    t::PredefinedMetricSpecification::builder()
                        .predefined_metric_type(t::MetricType::from(
                            p.predefined_metric_type.as_str(),
                        ))
                        .build()
                        .map_err(bad)?,
                );
            }
            if let Some(m) = &c.customized_metric_specification {
                let mut spec = t::CustomizedMetricSpecification::builder()
                    .metric_name(&m.metric_name)
                    .namespace(&m.namespace)
                    .statistic(t::MetricStatistic::from(m.statistic.as_str()));
                for d in &m.dimensions {
                    spec = spec.dimensions(
                        t::MetricDimension::builder()
                            .name(&d.name)
                            .value(&d.value)
                            .build()
                            .map_err(bad)?,
                    );
                }
                tt = tt.customized_metric_specification(spec.build());
            }
            req = req.target_tracking_scaling_policy_configuration(tt.build().map_err(bad)?);
        }
        if let Some(c) = &self.step_scaling_policy_configuration {
            let mut st = t::StepScalingPolicyConfiguration::builder()
                .adjustment_type(t::AdjustmentType::from(c.adjustment_type.as_str()))
                .cooldown(c.cooldown)
                .metric_aggregation_type(t::MetricAggregationType::from(
                    c.metric_aggregation_type.as_str(),
                ));
            for s in &c.step_adjustments {
                st = st.step_adjustments(
                    t::StepAdjustment::builder()
                        .set_metric_interval_lower_bound(s.metric_interval_lower_bound)
                        .set_metric_interval_upper_bound(s.metric_interval_upper_bound)
                        .scaling_adjustment(s.scaling_adjustment)
                        .build()
                        .map_err(bad)?,
                );
            }
            req = req.step_scaling_policy_configuration(st.build());
        }
        req.send()
            .await
            .map_err(failed("AutoScaling PutScalingPolicy", &self.policy_name))?;
        Ok(())
    }

    async fn update(&self, _have: &Self, ctx: &Ctx) -> Result<()> {
        self.create(ctx).await
    }

    async fn list_owned(ctx: &Ctx, _wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let targets = owned_targets(ctx).await?;
        let per = crate::deploy::engine::bounded(targets.into_iter().map(|id| async move {
            Ok(policies_of(ctx, &id)
                .await?
                .iter()
                .map(|p| Owned {
                    name: p.policy_name().to_owned(),
                    handle: id.clone(),
                })
                .collect::<Vec<_>>())
        }))
        .await?;
        Ok(per.into_iter().flatten().collect())
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .scaling
            .delete_scaling_policy()
            .policy_name(&owned.name)
            .service_namespace(t::ServiceNamespace::Ecs)
            .resource_id(&owned.handle)
            .scalable_dimension(t::ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await;
        crate::deploy::engine::error::absent_on(
            out,
            &["ObjectNotFoundException"],
            "AutoScaling DeleteScalingPolicy",
            &owned.name,
        )?;
        Ok(())
    }
}
