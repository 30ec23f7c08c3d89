//! The subscription filter that sends every event of one of the stack's log groups to
//! its Firehose stream, with the role CloudWatch Logs assumes to put them there.
//!
//! A subscription filter carries no tags: the stack's is the one named
//! [`FILTER_NAME`] on a log group that is the stack's (tagged). A log group takes two
//! subscription filters at most (CloudWatch Logs User Guide, "CloudWatch Logs quotas":
//! subscription filters, 2 per log group); someone else's other filter is left alone.
//! PutSubscriptionFilter with the same name replaces the filter (CloudWatch Logs API
//! reference, PutSubscriptionFilter), so an update is the same call.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::deploy::engine::error::{absent_on, failed, DeployError, Result};
use crate::deploy::engine::{bounded, Ctx, Kind, Observed, Owned};

/// The name of the stack's filter on each log group that forwards.
pub const FILTER_NAME: &str = "bosun-forwarding";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionFilter {
    pub log_group_name: String,
    pub filter_name: String,
    /// Empty: every event.
    pub filter_pattern: String,
    pub destination_arn: String,
    pub role_arn: String,
}

fn plan_name(group: &str) -> String {
    format!("{group} {FILTER_NAME}")
}

/// The stack's filter on `group`, if it has one.
async fn find(ctx: &Ctx, group: &str) -> Result<Option<SubscriptionFilter>> {
    let out = ctx
        .aws
        .logs
        .describe_subscription_filters()
        .log_group_name(group)
        .filter_name_prefix(FILTER_NAME)
        .send()
        .await;
    let Some(out) = absent_on(
        out,
        &["ResourceNotFoundException"],
        "Logs DescribeSubscriptionFilters",
        group,
    )?
    else {
        return Ok(None);
    };
    Ok(out
        .subscription_filters()
        .iter()
        .find(|f| f.filter_name() == Some(FILTER_NAME))
        .map(|f| SubscriptionFilter {
            log_group_name: group.to_owned(),
            filter_name: FILTER_NAME.to_owned(),
            filter_pattern: f.filter_pattern().unwrap_or_default().to_owned(),
            destination_arn: f.destination_arn().unwrap_or_default().to_owned(),
            role_arn: f.role_arn().unwrap_or_default().to_owned(),
        }))
}

impl SubscriptionFilter {
    /// Put it; CloudWatch Logs sends a test message through the role to the stream,
    /// which fails while IAM has not yet propagated a role just made: tried again,
    /// bounded.
    async fn put(&self, ctx: &Ctx) -> Result<()> {
        let started = Instant::now();
        loop {
            let out = ctx
                .aws
                .logs
                .put_subscription_filter()
                .log_group_name(&self.log_group_name)
                .filter_name(&self.filter_name)
                .filter_pattern(&self.filter_pattern)
                .destination_arn(&self.destination_arn)
                .role_arn(&self.role_arn)
                .send()
                .await
                .map_err(failed("Logs PutSubscriptionFilter", &self.log_group_name));
            match out {
                Err(DeployError::Aws { code, .. })
                    if code == "InvalidParameterException"
                        && started.elapsed() < Duration::from_secs(120) =>
                {
                    tokio::time::sleep(Duration::from_secs(5)).await
                }
                other => return other.map(|_| ()),
            }
        }
    }
}

impl Kind for SubscriptionFilter {
    const KIND: &'static str = "subscription filter";
    const PLURAL: &'static str = "subscriptionFilters";
    const DEPENDS_ON: &'static [&'static str] = &[
        super::log_group::LogGroup::KIND,
        super::delivery_stream::DeliveryStream::KIND,
        super::role::Role::KIND,
    ];

    fn name(&self) -> String {
        plan_name(&self.log_group_name)
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        // Its log group is the stack's (read as such in the same plan).
        Ok(match find(ctx, &self.log_group_name).await? {
            Some(f) => Observed::Present(f),
            None => Observed::Absent,
        })
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        self.put(ctx).await
    }

    async fn update(&self, _have: &Self, ctx: &Ctx) -> Result<()> {
        self.put(ctx).await
    }

    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let groups = super::log_group::LogGroup::list_owned(ctx, &BTreeSet::new()).await?;
        let found = bounded(groups.into_iter().map(|g| async move {
            Ok(find(ctx, &g.name).await?.map(|_| Owned {
                name: plan_name(&g.name),
                handle: g.name,
            }))
        }))
        .await?;
        Ok(found
            .into_iter()
            .flatten()
            .filter(|o| !wanted.contains(&o.name))
            .collect())
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .logs
            .delete_subscription_filter()
            .log_group_name(&owned.handle)
            .filter_name(FILTER_NAME)
            .send()
            .await;
        absent_on(
            out,
            &["ResourceNotFoundException"],
            "Logs DeleteSubscriptionFilter",
            &owned.name,
        )?;
        Ok(())
    }
}
