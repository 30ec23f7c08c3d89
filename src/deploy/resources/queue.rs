//! SQS queues (`{stack}-{name}`, dead-letter queues `{stack}-{name}-dlq`).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_sqs::types::QueueAttributeName as A;
use serde::Serialize;

use crate::deploy::engine::error::{absent_on, failed, Result};
use crate::deploy::engine::{keep_owned, Ctx, Kind, Observed, Owned};

/// SQS's not-found codes (JSON protocol, and the query protocol's older name).
const NOT_FOUND: &[&str] = &[
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
];

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Queue {
    pub queue_name: String,
    pub attributes: BTreeMap<String, String>,
    #[serde(rename = "tags")]
    pub tags: BTreeMap<String, String>,
    /// The queue's URL, as its read found it (not part of the input).
    #[serde(skip)]
    pub url: Option<String>,
}

/// The redrive policy as one canonical string, however AWS spelled it.
pub fn redrive(target_arn: &str, max_receive_count: i64) -> String {
    serde_json::json!({ "deadLetterTargetArn": target_arn, "maxReceiveCount": max_receive_count })
        .to_string()
}

fn canonical_redrive(text: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let count = v["maxReceiveCount"]
        .as_i64()
        .or_else(|| v["maxReceiveCount"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0);
    redrive(v["deadLetterTargetArn"].as_str().unwrap_or(""), count)
}

/// The URLs of the queues named with the stack's prefix (ListQueues, paged), read once
/// a run: the reads take a queue's URL from here, and the listing of what the stack
/// owns starts from it.
async fn listed(ctx: &Ctx) -> Result<std::sync::Arc<BTreeMap<String, String>>> {
    ctx.once("sqs-list".into(), || async {
        let prefix = format!("{}-", ctx.stack);
        let mut pages = ctx
            .aws
            .sqs
            .list_queues()
            .queue_name_prefix(&prefix)
            .max_results(1000)
            .into_paginator()
            .send();
        let mut urls = BTreeMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("SQS ListQueues", &prefix))?;
            for url in page.queue_urls() {
                let name = url.rsplit('/').next().unwrap_or_default().to_owned();
                urls.insert(name, url.clone());
            }
        }
        Ok(urls)
    })
    .await
}

/// A queue's URL: from the listing, else (a queue created moments ago may not be
/// listed yet: ListQueues is eventually consistent, SQS API reference) from
/// GetQueueUrl, whose not-found answer alone means absent.
async fn listed_or_asked(ctx: &Ctx, name: &str) -> Result<Option<String>> {
    if let Some(url) = listed(ctx).await?.get(name) {
        return Ok(Some(url.clone()));
    }
    url(ctx, name).await
}

async fn url(ctx: &Ctx, name: &str) -> Result<Option<String>> {
    let out = ctx.aws.sqs.get_queue_url().queue_name(name).send().await;
    Ok(absent_on(out, NOT_FOUND, "SQS GetQueueUrl", name)?
        .and_then(|o| o.queue_url().map(str::to_owned)))
}

async fn tags(ctx: &Ctx, url: &str, name: &str) -> Result<BTreeMap<String, String>> {
    let out = ctx
        .aws
        .sqs
        .list_queue_tags()
        .queue_url(url)
        .send()
        .await
        .map_err(failed("SQS ListQueueTags", name))?;
    Ok(out
        .tags()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect())
}

impl Kind for Queue {
    const KIND: &'static str = "queue";
    const PLURAL: &'static str = "queues";
    const DEPENDS_ON: &'static [&'static str] = &[Queue::KIND];

    fn name(&self) -> String {
        self.queue_name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let name = &self.queue_name;
        let Some(url) = listed_or_asked(ctx, name).await? else {
            return Ok(Observed::Absent);
        };
        let attrs = ctx
            .aws
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(A::All)
            .send();
        let (attrs, tags) = futures_util::join!(attrs, tags(ctx, &url, name));
        let tags = tags?;
        let it = tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        if !ctx.owns(it.clone()) {
            return Ok(Observed::Foreign(ctx.why_not(it)));
        }
        let attrs = attrs.map_err(failed("SQS GetQueueAttributes", name))?;
        let mut have: BTreeMap<String, String> = attrs
            .attributes()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
            .filter(|(k, _)| self.attributes.contains_key(k) || k == "RedrivePolicy")
            .collect();
        if let Some(r) = have.get_mut("RedrivePolicy") {
            *r = canonical_redrive(r);
        }
        let want: Vec<(String, String)> = self.tags.clone().into_iter().collect();
        Ok(Observed::Present(Queue {
            queue_name: name.clone(),
            attributes: have,
            tags: super::keep_tags(it, &want).into_iter().collect(),
            url: Some(url),
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        // CreateQueue is idempotent for the same name and attributes: a create that
        // went through before a crash is simply answered again.
        ctx.aws
            .sqs
            .create_queue()
            .queue_name(&self.queue_name)
            .set_attributes(Some(
                self.attributes
                    .iter()
                    .map(|(k, v)| (A::from(k.as_str()), v.clone()))
                    .collect(),
            ))
            .set_tags(Some(self.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(failed("SQS CreateQueue", &self.queue_name))?;
        Ok(())
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        let name = &self.queue_name;
        // Read moments ago; asked again only if that read did not give it.
        let url = match &have.url {
            Some(u) => u.clone(),
            None => match url(ctx, name).await? {
                Some(u) => u,
                None => return self.create(ctx).await,
            },
        };
        let mut set: std::collections::HashMap<A, String> = self
            .attributes
            .iter()
            .filter(|(k, v)| have.attributes.get(*k) != Some(v) && k.as_str() != "FifoQueue")
            .map(|(k, v)| (A::from(k.as_str()), v.clone()))
            .collect();
        if have.attributes.contains_key("RedrivePolicy")
            && !self.attributes.contains_key("RedrivePolicy")
        {
            // An empty redrive policy removes it.
            set.insert(A::RedrivePolicy, String::new());
        }
        if !set.is_empty() {
            ctx.aws
                .sqs
                .set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(set))
                .send()
                .await
                .map_err(failed("SQS SetQueueAttributes", name))?;
        }
        if self.tags != have.tags {
            ctx.aws
                .sqs
                .tag_queue()
                .queue_url(&url)
                .set_tags(Some(self.tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(failed("SQS TagQueue", name))?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let candidates: Vec<(String, String)> = listed(ctx)
            .await?
            .iter()
            .map(|(n, u)| (n.clone(), u.clone()))
            .collect();
        keep_owned(candidates, wanted, |name, url| async move {
            let out = ctx.aws.sqs.list_queue_tags().queue_url(&url).send().await;
            // Deleted meanwhile: not there to own.
            Ok(
                absent_on(out, NOT_FOUND, "SQS ListQueueTags", &name)?.is_some_and(|t| {
                    let t = t.tags().cloned().unwrap_or_default();
                    ctx.owns(t.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                }),
            )
        })
        .await
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .sqs
            .delete_queue()
            .queue_url(&owned.handle)
            .send()
            .await;
        absent_on(out, NOT_FOUND, "SQS DeleteQueue", &owned.name)?;
        Ok(())
    }
}
