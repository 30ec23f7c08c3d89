//! CloudWatch Logs groups (`/bosun/{stack}/{resource}`) with their retention.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::deploy::engine::error::{absent_on, failed, Result};
use crate::deploy::engine::{keep_owned, Ctx, Kind, Observed, Owned};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroup {
    pub log_group_name: String,
    pub retention_in_days: i32,
    pub tags: BTreeMap<String, String>,
}

/// The group's ARN without the `:*` DescribeLogGroups puts at its end.
fn arn(ctx: &Ctx, name: &str) -> String {
    format!(
        "arn:aws:logs:{}:{}:log-group:{name}",
        ctx.region, ctx.account
    )
}

async fn tags(ctx: &Ctx, name: &str) -> Result<Option<BTreeMap<String, String>>> {
    let out = ctx
        .aws
        .logs
        .list_tags_for_resource()
        .resource_arn(arn(ctx, name))
        .send()
        .await;
    Ok(absent_on(
        out,
        &["ResourceNotFoundException"],
        "Logs ListTagsForResource",
        name,
    )?
    .map(|o| o.tags().cloned().unwrap_or_default().into_iter().collect()))
}

/// Every group under `prefix`, paged: (name, retention).
async fn groups(ctx: &Ctx, prefix: &str) -> Result<Vec<(String, Option<i32>)>> {
    let mut pages = ctx
        .aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(prefix)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(failed("Logs DescribeLogGroups", prefix))?;
        out.extend(page.log_groups().iter().filter_map(|g| {
            g.log_group_name()
                .map(|n| (n.to_owned(), g.retention_in_days()))
        }));
    }
    Ok(out)
}

/// Every group under the stack's prefix `/bosun/{stack}/` (where all of its groups
/// are), listed once a run.
async fn stack_groups(ctx: &Ctx) -> Result<std::sync::Arc<Vec<(String, Option<i32>)>>> {
    let prefix = format!("/bosun/{}/", ctx.stack);
    ctx.once(format!("log-groups:{prefix}"), || groups(ctx, &prefix))
        .await
}

impl Kind for LogGroup {
    const KIND: &'static str = "log group";
    const PLURAL: &'static str = "logGroups";

    fn name(&self) -> String {
        self.log_group_name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let name = &self.log_group_name;
        let (found, tags) = futures_util::join!(stack_groups(ctx), tags(ctx, name));
        let found = found?.iter().find(|(n, _)| n == name).cloned();
        let Some((_, retention)) = found else {
            return Ok(Observed::Absent);
        };
        let Some(tags) = tags? else {
            return Ok(Observed::Absent);
        };
        let it = tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        if !ctx.owns(it.clone()) {
            return Ok(Observed::Foreign(ctx.why_not(it)));
        }
        let want: Vec<(String, String)> = self.tags.clone().into_iter().collect();
        Ok(Observed::Present(LogGroup {
            log_group_name: name.clone(),
            retention_in_days: retention.unwrap_or(0),
            tags: super::keep_tags(it, &want).into_iter().collect(),
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let name = &self.log_group_name;
        let out = ctx
            .aws
            .logs
            .create_log_group()
            .log_group_name(name)
            .set_tags(Some(self.tags.clone().into_iter().collect()))
            .send()
            .await;
        // Created before a crash (tagged in the same call): go on to the retention.
        absent_on(
            out,
            &["ResourceAlreadyExistsException"],
            "Logs CreateLogGroup",
            name,
        )?;
        self.put_retention(ctx).await
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        let name = &self.log_group_name;
        if self.tags != have.tags {
            ctx.aws
                .logs
                .tag_resource()
                .resource_arn(arn(ctx, name))
                .set_tags(Some(self.tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(failed("Logs TagResource", name))?;
        }
        if self.retention_in_days != have.retention_in_days {
            self.put_retention(ctx).await?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let names = stack_groups(ctx).await?;
        let candidates = names.iter().map(|(n, _)| (n.clone(), String::new()));
        keep_owned(candidates, wanted, |name, _| async move {
            Ok(tags(ctx, &name)
                .await?
                .is_some_and(|t| ctx.owns(t.iter().map(|(k, v)| (k.as_str(), v.as_str())))))
        })
        .await
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .logs
            .delete_log_group()
            .log_group_name(&owned.name)
            .send()
            .await;
        absent_on(
            out,
            &["ResourceNotFoundException"],
            "Logs DeleteLogGroup",
            &owned.name,
        )?;
        Ok(())
    }
}

impl LogGroup {
    async fn put_retention(&self, ctx: &Ctx) -> Result<()> {
        ctx.aws
            .logs
            .put_retention_policy()
            .log_group_name(&self.log_group_name)
            .retention_in_days(self.retention_in_days)
            .send()
            .await
            .map_err(failed("Logs PutRetentionPolicy", &self.log_group_name))?;
        Ok(())
    }
}
