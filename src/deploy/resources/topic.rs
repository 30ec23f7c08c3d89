//! A job's alert topic (`{stack}-{job}-alerts`): an SNS topic its alarms notify, with
//! the file's email addresses subscribed. Tagged with the stack's tag; only a tagged
//! topic is the stack's. No server-side encryption: CloudWatch alarms cannot publish
//! to a topic encrypted with the AWS managed key (SNS Developer Guide, "Encryption at
//! rest": a customer managed key whose policy lets CloudWatch use it is needed).

use std::collections::BTreeSet;

use aws_sdk_sns::types as t;
use serde::Serialize;

use super::{keep_kv_tags, KvTag};
use crate::deploy::engine::error::{absent_on, failed, Result};
use crate::deploy::engine::{keep_owned, Ctx, Kind, Observed, Owned};

const NOT_FOUND: &[&str] = &["NotFound", "NotFoundException"];

/// What SNS writes in place of a subscription's ARN until its endpoint confirms it.
const PENDING: &str = "PendingConfirmation";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Topic {
    pub name: String,
    /// Email subscriptions, sorted.
    pub emails: Vec<String>,
    pub tags: Vec<KvTag>,
}

pub fn arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:sns:{region}:{account}:{name}")
}

/// The topic's email subscriptions: (address, subscription ARN or `PendingConfirmation`).
async fn subscriptions(ctx: &Ctx, topic: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = ctx
            .aws
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(topic)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(failed("SNS ListSubscriptionsByTopic", topic))?;
        out.extend(
            page.subscriptions()
                .iter()
                .filter(|s| s.protocol() == Some("email"))
                .filter_map(|s| {
                    Some((
                        s.endpoint()?.to_owned(),
                        s.subscription_arn().unwrap_or(PENDING).to_owned(),
                    ))
                }),
        );
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_owned()),
            _ => return Ok(out),
        }
    }
}

async fn tags_of(ctx: &Ctx, topic: &str) -> Result<Option<Vec<(String, String)>>> {
    let out = ctx
        .aws
        .sns
        .list_tags_for_resource()
        .resource_arn(topic)
        .send()
        .await;
    Ok(
        absent_on(out, NOT_FOUND, "SNS ListTagsForResource", topic)?.map(|o| {
            o.tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect()
        }),
    )
}

impl Topic {
    fn arn(&self, ctx: &Ctx) -> String {
        arn(&ctx.region, &ctx.account, &self.name)
    }

    fn sdk_tags(&self) -> Vec<t::Tag> {
        self.tags
            .iter()
            .filter_map(|x| t::Tag::builder().key(&x.key).value(&x.value).build().ok())
            .collect()
    }

    /// Subscribe the addresses the topic lacks, unsubscribe confirmed ones the file
    /// no longer lists. A subscription still waiting for its confirmation cannot be
    /// deleted; SNS deletes it after 48 hours (SNS Developer Guide, "Deleting an
    /// Amazon SNS subscription and topic").
    async fn sync_subscriptions(&self, ctx: &Ctx) -> Result<()> {
        let topic = self.arn(ctx);
        let have = subscriptions(ctx, &topic).await?;
        for email in &self.emails {
            if !have.iter().any(|(e, _)| e == email) {
                ctx.aws
                    .sns
                    .subscribe()
                    .topic_arn(&topic)
                    .protocol("email")
                    .endpoint(email)
                    .send()
                    .await
                    .map_err(failed("SNS Subscribe", email))?;
            }
        }
        for (email, sub) in &have {
            if !self.emails.contains(email) && sub != PENDING {
                let out = ctx.aws.sns.unsubscribe().subscription_arn(sub).send().await;
                absent_on(out, NOT_FOUND, "SNS Unsubscribe", email)?;
            }
        }
        Ok(())
    }
}

impl Kind for Topic {
    const KIND: &'static str = "alert topic";
    const PLURAL: &'static str = "alertTopics";

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let topic = self.arn(ctx);
        let out = ctx
            .aws
            .sns
            .get_topic_attributes()
            .topic_arn(&topic)
            .send()
            .await;
        if absent_on(out, NOT_FOUND, "SNS GetTopicAttributes", &self.name)?.is_none() {
            return Ok(Observed::Absent);
        }
        let Some(tags) = tags_of(ctx, &topic).await? else {
            return Ok(Observed::Absent);
        };
        let it = tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        if !ctx.owns(it.clone()) {
            return Ok(Observed::Foreign(ctx.why_not(it)));
        }
        // A pending subscription the file dropped cannot be removed (see
        // `sync_subscriptions`): it is not a difference.
        let mut emails: Vec<String> = subscriptions(ctx, &topic)
            .await?
            .into_iter()
            .filter(|(e, sub)| sub != PENDING || self.emails.contains(e))
            .map(|(e, _)| e)
            .collect();
        emails.sort();
        emails.dedup();
        Ok(Observed::Present(Topic {
            name: self.name.clone(),
            emails,
            tags: keep_kv_tags(it, &self.tags),
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        // CreateTopic returns the existing topic's ARN when one of that name exists
        // with the same attributes and tags (SNS API reference, CreateTopic): a retry
        // after a crash is the same call.
        ctx.aws
            .sns
            .create_topic()
            .name(&self.name)
            .set_tags(Some(self.sdk_tags()))
            .send()
            .await
            .map_err(failed("SNS CreateTopic", &self.name))?;
        self.sync_subscriptions(ctx).await
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        if have.tags != self.tags {
            ctx.aws
                .sns
                .tag_resource()
                .resource_arn(self.arn(ctx))
                .set_tags(Some(self.sdk_tags()))
                .send()
                .await
                .map_err(failed("SNS TagResource", &self.name))?;
        }
        if have.emails != self.emails {
            self.sync_subscriptions(ctx).await?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let prefix = format!(":{}-", ctx.stack);
        let mut candidates = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = ctx
                .aws
                .sns
                .list_topics()
                .set_next_token(next.take())
                .send()
                .await
                .map_err(failed("SNS ListTopics", &ctx.stack))?;
            candidates.extend(page.topics().iter().filter_map(|t| {
                let arn = t.topic_arn()?;
                let name = arn.rsplit(':').next()?;
                (arn.contains(&prefix) && name.ends_with("-alerts"))
                    .then(|| (name.to_owned(), arn.to_owned()))
            }));
            match page.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                _ => break,
            }
        }
        keep_owned(candidates, wanted, |_, arn| async move {
            Ok(tags_of(ctx, &arn)
                .await?
                .is_some_and(|tags| ctx.owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))))
        })
        .await
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        // DeleteTopic deletes its subscriptions too, and is idempotent.
        let out = ctx
            .aws
            .sns
            .delete_topic()
            .topic_arn(&owned.handle)
            .send()
            .await;
        absent_on(out, NOT_FOUND, "SNS DeleteTopic", &owned.name)?;
        Ok(())
    }
}
