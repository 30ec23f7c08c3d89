//! CloudWatch Logs metric filters on a job's log group: bosun's run-summary line
//! (`{"message":"run ended","outcome":...}`) counted as a metric, one filter per
//! outcome. Filters carry no tags: they are the stack's because their log group is
//! (only the stack's own groups, under `/bosun/{stack}/`, are listed).

use std::collections::BTreeSet;

use aws_sdk_cloudwatchlogs::types as t;
use serde::Serialize;

use crate::deploy::engine::error::{absent_on, failed, Result};
use crate::deploy::engine::{Ctx, Kind, Observed, Owned};

const NOT_FOUND: &[&str] = &["ResourceNotFoundException"];

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricFilter {
    pub filter_name: String,
    pub log_group_name: String,
    pub filter_pattern: String,
    pub metric_name: String,
    pub metric_namespace: String,
    pub metric_value: String,
}

/// Whether a filter's name is one bosun-deploy gives a job's run filters.
pub fn is_runs_filter(stack: &str, name: &str) -> bool {
    name.starts_with(&format!("{stack}-"))
        && crate::deploy::naming::RUNS_FILTER_SUFFIXES
            .iter()
            .any(|s| name.ends_with(s))
}

/// The filters of a log group (paged).
async fn filters_of(ctx: &Ctx, group: &str) -> Result<Vec<t::MetricFilter>> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = ctx
            .aws
            .logs
            .describe_metric_filters()
            .log_group_name(group)
            .set_next_token(next.take())
            .send()
            .await;
        let Some(page) = absent_on(page, NOT_FOUND, "Logs DescribeMetricFilters", group)? else {
            return Ok(out);
        };
        out.extend(page.metric_filters().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_owned()),
            _ => return Ok(out),
        }
    }
}

impl Kind for MetricFilter {
    const KIND: &'static str = "metric filter";
    const PLURAL: &'static str = "metricFilters";
    const DEPENDS_ON: &'static [&'static str] =
        &[super::log_group::LogGroup::KIND, super::topic::Topic::KIND];

    fn name(&self) -> String {
        self.filter_name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let found = filters_of(ctx, &self.log_group_name).await?;
        let Some(f) = found
            .iter()
            .find(|f| f.filter_name() == Some(self.filter_name.as_str()))
        else {
            return Ok(Observed::Absent);
        };
        let m = f.metric_transformations().first();
        Ok(Observed::Present(MetricFilter {
            filter_name: self.filter_name.clone(),
            log_group_name: self.log_group_name.clone(),
            filter_pattern: f.filter_pattern().unwrap_or_default().to_owned(),
            metric_name: m.map(|m| m.metric_name().to_owned()).unwrap_or_default(),
            metric_namespace: m
                .map(|m| m.metric_namespace().to_owned())
                .unwrap_or_default(),
            metric_value: m.map(|m| m.metric_value().to_owned()).unwrap_or_default(),
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        // PutMetricFilter creates or replaces the filter of that name (CloudWatch Logs
        // API reference, PutMetricFilter): a retry after a crash is the same call.
        let transformation = t::MetricTransformation::builder()
            .metric_name(&self.metric_name)
            .metric_namespace(&self.metric_namespace)
            .metric_value(&self.metric_value)
            .unit(t::StandardUnit::Count)
            .build()
            .map_err(|e| crate::deploy::engine::error::DeployError::Request {
                what: format!("metric filter {}", self.filter_name),
                why: e.to_string(),
            })?;
        ctx.aws
            .logs
            .put_metric_filter()
            .log_group_name(&self.log_group_name)
            .filter_name(&self.filter_name)
            .filter_pattern(&self.filter_pattern)
            .metric_transformations(transformation)
            .send()
            .await
            .map_err(failed("Logs PutMetricFilter", &self.filter_name))?;
        Ok(())
    }

    async fn update(&self, _have: &Self, ctx: &Ctx) -> Result<()> {
        self.create(ctx).await
    }

    async fn list_owned(ctx: &Ctx, _wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let groups = super::log_group::LogGroup::list_owned(ctx, &BTreeSet::new()).await?;
        let mut out = Vec::new();
        for g in groups {
            for f in filters_of(ctx, &g.name).await? {
                // Only filters named as bosun-deploy names them: a filter someone else
                // put on the stack's group is theirs.
                if let Some(name) = f.filter_name().filter(|n| is_runs_filter(&ctx.stack, n)) {
                    out.push(Owned {
                        name: name.to_owned(),
                        handle: g.name.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .logs
            .delete_metric_filter()
            .log_group_name(&owned.handle)
            .filter_name(&owned.name)
            .send()
            .await;
        absent_on(out, NOT_FOUND, "Logs DeleteMetricFilter", &owned.name)?;
        Ok(())
    }
}
