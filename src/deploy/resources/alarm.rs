//! CloudWatch metric alarms: the wake and idle alarms of a service that scales to
//! zero, on its queues' own metrics, each with a step scaling policy as its action.
//! They carry the stack's tag; only a tagged alarm is the stack's.
//!
//! An alarm's action is its policy's ARN, which holds an id AWS gives the policy when
//! it is made. The spec writes that id as `*` (so `render` needs no AWS call and
//! `diff` compares like with like): apply looks the policy up and sends its real ARN,
//! and a read turns the id back into `*`.

use std::collections::BTreeSet;

use aws_sdk_cloudwatch::types as t;
use serde::Serialize;

use crate::deploy::engine::error::{absent_on, failed, DeployError, Result};
use crate::deploy::engine::{differs_besides, keep_owned, Ctx, Kind, Observed, Owned};
use crate::deploy::resources::{keep_kv_tags, KvTag};

const NOT_FOUND: &[&str] = &["ResourceNotFound", "ResourceNotFoundException"];
/// DescribeAlarms takes at most 100 names.
const NAMES_PER_CALL: usize = 100;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Alarm {
    pub alarm_name: String,
    pub alarm_description: String,
    pub actions_enabled: bool,
    /// Scaling policy ARNs, each with the policy's id written `*`.
    pub alarm_actions: Vec<String>,
    pub metrics: Vec<Query>,
    pub evaluation_periods: i32,
    pub datapoints_to_alarm: i32,
    pub threshold: f64,
    pub comparison_operator: String,
    pub treat_missing_data: String,
    /// Sent when the alarm is made; compared only where the file sets them.
    pub tags: Vec<KvTag>,
}

/// One metric-math query: a metric, or an expression over the others.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Query {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_stat: Option<MetricStat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub return_data: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricStat {
    pub metric: Metric,
    pub period: i32,
    pub stat: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metric {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<Dimension>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dimension {
    pub name: String,
    pub value: String,
}

/// The ARN of an Application Auto Scaling policy, its id written `*`.
pub fn policy_arn_pattern(region: &str, account: &str, resource_id: &str, name: &str) -> String {
    format!("arn:aws:autoscaling:{region}:{account}:scalingPolicy:*:resource/ecs/{resource_id}:policyName/{name}")
}

/// A policy ARN with its id turned into `*` (other ARNs as they are).
fn with_id_hidden(arn: &str) -> String {
    const MARK: &str = ":scalingPolicy:";
    match (arn.find(MARK), arn.find(":resource/")) {
        (Some(a), Some(b)) if a + MARK.len() <= b => {
            format!("{}*{}", &arn[..a + MARK.len()], &arn[b..])
        }
        _ => arn.to_owned(),
    }
}

/// `(resource id, policy name)` of a policy ARN pattern.
fn policy_of(pattern: &str) -> Option<(&str, &str)> {
    let rest = pattern.split_once(":resource/ecs/")?.1;
    rest.split_once(":policyName/")
}

/// The real ARN of the policy a pattern names, read now (the policy may have been
/// made a moment ago in this run).
async fn resolve(ctx: &Ctx, pattern: &str) -> Result<String> {
    let Some((resource_id, name)) = policy_of(pattern) else {
        return Ok(pattern.to_owned());
    };
    let out = ctx
        .aws
        .scaling
        .describe_scaling_policies()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .resource_id(resource_id)
        .policy_names(name)
        .send()
        .await
        .map_err(failed("AutoScaling DescribeScalingPolicies", name))?;
    out.scaling_policies()
        .iter()
        .find(|p| p.policy_name() == name && p.resource_id() == resource_id)
        .map(|p| p.policy_arn().to_owned())
        .ok_or_else(|| {
            DeployError::Refused(format!(
                "scaling policy {name} of {resource_id} not found: the alarm that triggers it cannot be made"
            ))
        })
}

async fn tags_of(ctx: &Ctx, arn: &str) -> Result<Option<Vec<(String, String)>>> {
    let out = ctx
        .aws
        .cloudwatch
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await;
    Ok(
        absent_on(out, NOT_FOUND, "CloudWatch ListTagsForResource", arn)?.map(|o| {
            o.tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        }),
    )
}

fn observe_query(q: &t::MetricDataQuery) -> Query {
    Query {
        id: q.id().unwrap_or_default().to_owned(),
        expression: q.expression().map(str::to_owned),
        metric_stat: q.metric_stat().map(|s| MetricStat {
            metric: s
                .metric()
                .map(|m| Metric {
                    namespace: m.namespace().unwrap_or_default().to_owned(),
                    metric_name: m.metric_name().unwrap_or_default().to_owned(),
                    dimensions: m
                        .dimensions()
                        .iter()
                        .map(|d| Dimension {
                            name: d.name().unwrap_or_default().to_owned(),
                            value: d.value().unwrap_or_default().to_owned(),
                        })
                        .collect(),
                })
                .unwrap_or(Metric {
                    namespace: String::new(),
                    metric_name: String::new(),
                    dimensions: Vec::new(),
                }),
            period: s.period().unwrap_or(0),
            stat: s.stat().unwrap_or_default().to_owned(),
        }),
        label: q.label().map(str::to_owned),
        // AWS leaves out ReturnData when it is its default (true).
        return_data: q.return_data().unwrap_or(true),
    }
}

fn observe(want: &Alarm, a: &t::MetricAlarm, tags: &[(String, String)]) -> Alarm {
    Alarm {
        alarm_name: a.alarm_name().unwrap_or_default().to_owned(),
        alarm_description: a.alarm_description().unwrap_or_default().to_owned(),
        actions_enabled: a.actions_enabled().unwrap_or(true),
        alarm_actions: a
            .alarm_actions()
            .iter()
            .map(|x| with_id_hidden(x))
            .collect(),
        metrics: a.metrics().iter().map(observe_query).collect(),
        evaluation_periods: a.evaluation_periods().unwrap_or(0),
        // AWS leaves it out when it equals EvaluationPeriods.
        datapoints_to_alarm: a
            .datapoints_to_alarm()
            .unwrap_or(a.evaluation_periods().unwrap_or(0)),
        threshold: a.threshold().unwrap_or(0.0),
        comparison_operator: a
            .comparison_operator()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        treat_missing_data: a.treat_missing_data().unwrap_or("missing").to_owned(),
        tags: keep_kv_tags(
            tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &want.tags,
        ),
    }
}

fn query_input(q: &Query) -> t::MetricDataQuery {
    let mut b = t::MetricDataQuery::builder()
        .id(&q.id)
        .set_expression(q.expression.clone())
        .set_label(q.label.clone())
        .return_data(q.return_data);
    if let Some(s) = &q.metric_stat {
        let mut m = t::Metric::builder()
            .namespace(&s.metric.namespace)
            .metric_name(&s.metric.metric_name);
        for d in &s.metric.dimensions {
            m = m.dimensions(
                t::Dimension::builder()
                    .name(&d.name)
                    .value(&d.value)
                    .build(),
            );
        }
        b = b.metric_stat(
            t::MetricStat::builder()
                .metric(m.build())
                .period(s.period)
                .stat(&s.stat)
                .build(),
        );
    }
    b.build()
}

/// Read alarms by name (DescribeAlarms, 100 names a call), then each one's tags.
async fn describe(ctx: &Ctx, names: &[String]) -> Result<Vec<t::MetricAlarm>> {
    let mut out = Vec::new();
    for chunk in names.chunks(NAMES_PER_CALL) {
        let mut pages = ctx
            .aws
            .cloudwatch
            .describe_alarms()
            .set_alarm_names(Some(chunk.to_vec()))
            .alarm_types(t::AlarmType::MetricAlarm)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("CloudWatch DescribeAlarms", &chunk.join(",")))?;
            out.extend(page.metric_alarms().iter().cloned());
        }
    }
    Ok(out)
}

/// The stack's alarms whose names `keep` takes.
pub(super) async fn list_owned_where(
    ctx: &Ctx,
    wanted: &BTreeSet<String>,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<Owned>> {
    let prefix = format!("{}-", ctx.stack);
    let mut pages = ctx
        .aws
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(&prefix)
        .alarm_types(t::AlarmType::MetricAlarm)
        .into_paginator()
        .send();
    let mut candidates = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(failed("CloudWatch DescribeAlarms", &prefix))?;
        candidates.extend(
            page.metric_alarms()
                .iter()
                .filter_map(|a| Some((a.alarm_name()?.to_owned(), a.alarm_arn()?.to_owned())))
                .filter(|(n, _)| keep(n)),
        );
    }
    keep_owned(candidates, wanted, |_, arn| async move {
        Ok(tags_of(ctx, &arn)
            .await?
            .is_some_and(|tags| ctx.owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))))
    })
    .await
}

/// Whether an alarm of the stack's is a service's deployment alarm (its name says).
pub fn is_deployment_alarm(name: &str) -> bool {
    name.ends_with(crate::deploy::naming::DEPLOYMENT_ALARM_SUFFIX)
}

impl Alarm {
    fn tags_input(&self) -> Vec<t::Tag> {
        self.tags
            .iter()
            .map(|t| t::Tag::builder().key(&t.key).value(&t.value).build())
            .collect()
    }
}

impl Kind for Alarm {
    const KIND: &'static str = "alarm";
    const PLURAL: &'static str = "alarms";
    const DEPENDS_ON: &'static [&'static str] = &[
        super::scaling::ScalingPolicy::KIND,
        super::metric_filter::MetricFilter::KIND,
    ];
    /// Put again when its policy is made again: the policy's id is in the action.
    const FOLLOWS_DEPS: bool = true;

    fn name(&self) -> String {
        self.alarm_name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        Ok(Self::read_all(&[self], ctx).await?.remove(0))
    }

    async fn read_all(want: &[&Self], ctx: &Ctx) -> Result<Vec<Observed<Self>>> {
        let names: Vec<String> = want.iter().map(|w| w.alarm_name.clone()).collect();
        let found = describe(ctx, &names).await?;
        crate::deploy::engine::bounded(want.iter().map(|w| {
            let seen = found
                .iter()
                .find(|a| a.alarm_name() == Some(w.alarm_name.as_str()));
            async move {
                let Some(a) = seen else {
                    return Ok(Observed::Absent);
                };
                let arn = a.alarm_arn().unwrap_or_default();
                let Some(tags) = tags_of(ctx, arn).await? else {
                    return Ok(Observed::Absent);
                };
                if !ctx.owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
                    return Ok(Observed::Foreign(
                        ctx.why_not(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                    ));
                }
                Ok(Observed::Present(observe(w, a, &tags)))
            }
        }))
        .await
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let mut actions = Vec::new();
        for a in &self.alarm_actions {
            actions.push(resolve(ctx, a).await?);
        }
        let metrics = self.metrics.iter().map(query_input).collect();
        ctx.aws
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&self.alarm_name)
            .alarm_description(&self.alarm_description)
            .actions_enabled(self.actions_enabled)
            .set_alarm_actions(Some(actions))
            .set_metrics(Some(metrics))
            .evaluation_periods(self.evaluation_periods)
            .datapoints_to_alarm(self.datapoints_to_alarm)
            .threshold(self.threshold)
            .comparison_operator(t::ComparisonOperator::from(
                self.comparison_operator.as_str(),
            ))
            .treat_missing_data(&self.treat_missing_data)
            .set_tags(Some(self.tags_input()))
            .send()
            .await
            .map_err(failed("CloudWatch PutMetricAlarm", &self.alarm_name))?;
        Ok(())
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        // PutMetricAlarm replaces the alarm but ignores Tags on an existing one.
        if differs_besides(self, have, |a| a.tags.clear()) {
            self.create(ctx).await?;
        }
        if have.tags != self.tags {
            let arn = describe(ctx, std::slice::from_ref(&self.alarm_name))
                .await?
                .first()
                .and_then(|a| a.alarm_arn().map(str::to_owned))
                .ok_or_else(|| DeployError::Unexpected {
                    call: "CloudWatch DescribeAlarms",
                    what: format!("no alarm {} right after apply made it", self.alarm_name),
                })?;
            ctx.aws
                .cloudwatch
                .tag_resource()
                .resource_arn(&arn)
                .set_tags(Some(self.tags_input()))
                .send()
                .await
                .map_err(failed("CloudWatch TagResource", &self.alarm_name))?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        // A deployment alarm is a kind of its own (it orders after no policy).
        list_owned_where(ctx, wanted, |name| !is_deployment_alarm(name)).await
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .cloudwatch
            .delete_alarms()
            .alarm_names(&owned.name)
            .send()
            .await;
        absent_on(out, NOT_FOUND, "CloudWatch DeleteAlarms", &owned.name)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_ids_are_hidden_and_found_again() {
        let real = "arn:aws:autoscaling:eu-west-1:123456789012:scalingPolicy:0f1e-22:resource/ecs/service/c/s-w:policyName/s-w-wake";
        let pattern = policy_arn_pattern("eu-west-1", "123456789012", "service/c/s-w", "s-w-wake");
        assert_eq!(with_id_hidden(real), pattern);
        assert_eq!(policy_of(&pattern), Some(("service/c/s-w", "s-w-wake")));
        assert_eq!(with_id_hidden("arn:aws:sns:x:1:t"), "arn:aws:sns:x:1:t");
    }
}
