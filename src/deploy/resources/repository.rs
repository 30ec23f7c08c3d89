//! ECR repositories (`{stack}-{resource}`, lowercase) of the images bosun-deploy
//! builds when the stack names no `registry:`: scanned on push, and a lifecycle
//! policy that keeps the last [`KEEP_IMAGES`] images. `delete` takes the images too.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::KvTag;
use crate::deploy::engine::error::{absent_on, failed, Result};
use crate::deploy::engine::{keep_owned, Ctx, Kind, Observed, Owned};

/// Images a repository keeps (older ones expire): a rollback has that many builds to
/// go back to.
pub const KEEP_IMAGES: i64 = 30;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub repository_name: String,
    pub image_scanning_configuration: Scanning,
    pub image_tag_mutability: String,
    /// The lifecycle policy (sent as its JSON text).
    pub lifecycle_policy_text: Value,
    pub tags: Vec<KvTag>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Scanning {
    pub scan_on_push: bool,
}

/// The lifecycle policy of the stack's repositories.
pub fn lifecycle_policy() -> Value {
    serde_json::json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("keep the last {KEEP_IMAGES} images"),
            "selection": { "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_IMAGES },
            "action": { "type": "expire" }
        }]
    })
}

fn sdk_tags(t: &[KvTag]) -> Vec<aws_sdk_ecr::types::Tag> {
    t.iter()
        .filter_map(|t| {
            aws_sdk_ecr::types::Tag::builder()
                .key(&t.key)
                .value(&t.value)
                .build()
                .ok()
        })
        .collect()
}

fn arn(ctx: &Ctx, name: &str) -> String {
    format!(
        "arn:aws:ecr:{}:{}:repository/{name}",
        ctx.region, ctx.account
    )
}

async fn tags_of(ctx: &Ctx, name: &str) -> Result<Option<Vec<(String, String)>>> {
    let out = ctx
        .aws
        .ecr
        .list_tags_for_resource()
        .resource_arn(arn(ctx, name))
        .send()
        .await;
    Ok(absent_on(
        out,
        &["RepositoryNotFoundException"],
        "ECR ListTagsForResource",
        name,
    )?
    .map(|o| {
        o.tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect()
    }))
}

impl Repository {
    async fn put_policy(&self, ctx: &Ctx) -> Result<()> {
        ctx.aws
            .ecr
            .put_lifecycle_policy()
            .repository_name(&self.repository_name)
            .lifecycle_policy_text(self.lifecycle_policy_text.to_string())
            .send()
            .await
            .map_err(failed("ECR PutLifecyclePolicy", &self.repository_name))?;
        Ok(())
    }
}

impl Kind for Repository {
    const KIND: &'static str = "ECR repository";
    const PLURAL: &'static str = "repositories";

    fn name(&self) -> String {
        self.repository_name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let name = &self.repository_name;
        let out = ctx
            .aws
            .ecr
            .describe_repositories()
            .repository_names(name)
            .send()
            .await;
        let Some(out) = absent_on(
            out,
            &["RepositoryNotFoundException"],
            "ECR DescribeRepositories",
            name,
        )?
        else {
            return Ok(Observed::Absent);
        };
        let Some(r) = out.repositories().first() else {
            return Ok(Observed::Absent);
        };
        let Some(tags) = tags_of(ctx, name).await? else {
            return Ok(Observed::Absent);
        };
        let pairs = tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        if !ctx.owns(pairs.clone()) {
            return Ok(Observed::Foreign(ctx.why_not(pairs)));
        }
        let policy = ctx
            .aws
            .ecr
            .get_lifecycle_policy()
            .repository_name(name)
            .send()
            .await;
        let policy = absent_on(
            policy,
            &["LifecyclePolicyNotFoundException"],
            "ECR GetLifecyclePolicy",
            name,
        )?
        .and_then(|p| p.lifecycle_policy_text().map(str::to_owned))
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
        Ok(Observed::Present(Repository {
            repository_name: name.clone(),
            image_scanning_configuration: Scanning {
                scan_on_push: r
                    .image_scanning_configuration()
                    .is_some_and(|s| s.scan_on_push()),
            },
            image_tag_mutability: r
                .image_tag_mutability()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_else(|| "MUTABLE".into()),
            lifecycle_policy_text: policy,
            tags: super::keep_kv_tags(pairs, &self.tags),
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let name = &self.repository_name;
        ctx.aws
            .ecr
            .create_repository()
            .repository_name(name)
            .image_scanning_configuration(
                aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                    .scan_on_push(self.image_scanning_configuration.scan_on_push)
                    .build(),
            )
            .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::from(
                self.image_tag_mutability.as_str(),
            ))
            .set_tags(Some(sdk_tags(&self.tags)))
            .send()
            .await
            .map_err(failed("ECR CreateRepository", name))?;
        self.put_policy(ctx).await
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        let name = &self.repository_name;
        if have.image_scanning_configuration != self.image_scanning_configuration {
            ctx.aws
                .ecr
                .put_image_scanning_configuration()
                .repository_name(name)
                .image_scanning_configuration(
                    aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                        .scan_on_push(self.image_scanning_configuration.scan_on_push)
                        .build(),
                )
                .send()
                .await
                .map_err(failed("ECR PutImageScanningConfiguration", name))?;
        }
        if have.image_tag_mutability != self.image_tag_mutability {
            ctx.aws
                .ecr
                .put_image_tag_mutability()
                .repository_name(name)
                .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::from(
                    self.image_tag_mutability.as_str(),
                ))
                .send()
                .await
                .map_err(failed("ECR PutImageTagMutability", name))?;
        }
        if have.lifecycle_policy_text != self.lifecycle_policy_text {
            self.put_policy(ctx).await?;
        }
        if have.tags != self.tags {
            ctx.aws
                .ecr
                .tag_resource()
                .resource_arn(arn(ctx, name))
                .set_tags(Some(sdk_tags(&self.tags)))
                .send()
                .await
                .map_err(failed("ECR TagResource", name))?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let prefix = format!("{}-", ctx.stack.to_ascii_lowercase());
        let mut pages = ctx.aws.ecr.describe_repositories().into_paginator().send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("ECR DescribeRepositories", &prefix))?;
            found.extend(
                page.repositories()
                    .iter()
                    .filter_map(|r| r.repository_name())
                    .filter(|n| n.starts_with(&prefix))
                    .map(|n| (n.to_owned(), String::new())),
            );
        }
        keep_owned(found, wanted, |name, _| async move {
            Ok(tags_of(ctx, &name)
                .await?
                .is_some_and(|t| ctx.owns(t.iter().map(|(k, v)| (k.as_str(), v.as_str())))))
        })
        .await
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        // With its images: the stack made them.
        let out = ctx
            .aws
            .ecr
            .delete_repository()
            .repository_name(&owned.name)
            .force(true)
            .send()
            .await;
        absent_on(
            out,
            &["RepositoryNotFoundException"],
            "ECR DeleteRepository",
            &owned.name,
        )?;
        Ok(())
    }
}
