//! A bucket of the stack's: private (every public access blocked), encrypted with
//! S3-managed keys, versioned and with lifecycle rules as the file says, tagged.
//!
//! Only a bucket tagged `bosun:stack` with the stack's name is the stack's. A bucket
//! that holds objects is deleted only when its tag `bosun:delete-with-objects` (set
//! from the file's `deleteWithObjects`) says so; otherwise the plan that would delete
//! it is refused before any change, naming it. PutBucketTagging replaces the whole tag
//! set (S3 API reference, PutBucketTagging), so the tags the file does not set are
//! read and sent back with the stack's.

use std::collections::BTreeSet;

use aws_sdk_s3::types as t;
use serde::Serialize;

use super::{keep_kv_tags, KvTag};
use crate::deploy::engine::error::{absent_on, code_of, failed, DeployError, Result};
use crate::deploy::engine::{bounded, Ctx, Kind, Observed, Owned};
use crate::deploy::naming::STACK_TAG;

/// The tag that lets a delete take the bucket's objects with it.
pub const DELETE_WITH_OBJECTS: &str = "bosun:delete-with-objects";

/// CreateBucket's input and the bucket's settings, each as its Put call names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Bucket {
    pub bucket: String,
    /// Outside us-east-1, the region (S3 API reference, CreateBucket:
    /// LocationConstraint; us-east-1 takes none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_bucket_configuration: Option<Location>,
    pub public_access_block_configuration: PublicAccessBlock,
    pub server_side_encryption_configuration: Encryption,
    /// `Enabled`, `Suspended` (versioning once on can only be suspended), or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versioning_configuration: Option<Versioning>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_configuration: Option<Lifecycle>,
    pub tags: Vec<KvTag>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Location {
    pub location_constraint: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    pub const ALL: PublicAccessBlock = PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };
}

/// `AES256`: S3-managed keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Encryption {
    pub sse_algorithm: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Versioning {
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Lifecycle {
    pub rules: Vec<Rule>,
}

/// One lifecycle rule: what expires after how many days, under a prefix.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Rule {
    #[serde(rename = "ID")]
    pub id: String,
    pub prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noncurrent_days: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_multipart_days: Option<i32>,
}

/// The bucket's tags, or `None` when it has none (S3's NoSuchTagSet).
async fn tags_of(ctx: &Ctx, bucket: &str) -> Result<Option<Vec<(String, String)>>> {
    let out = ctx.aws.s3.get_bucket_tagging().bucket(bucket).send().await;
    Ok(
        absent_on(out, &["NoSuchTagSet"], "S3 GetBucketTagging", bucket)?.map(|o| {
            o.tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect()
        }),
    )
}

/// Whether the bucket holds any object or version (or delete marker).
async fn holds_objects(ctx: &Ctx, bucket: &str) -> Result<bool> {
    let out = ctx
        .aws
        .s3
        .list_object_versions()
        .bucket(bucket)
        .max_keys(1)
        .send()
        .await
        .map_err(failed("S3 ListObjectVersions", bucket))?;
    Ok(!out.versions().is_empty() || !out.delete_markers().is_empty())
}

impl Bucket {
    fn sdk_tags(&self, others: &[(String, String)]) -> Result<Vec<t::Tag>> {
        let mut all: Vec<(String, String)> = others
            .iter()
            .filter(|(k, _)| !self.tags.iter().any(|x| &x.key == k))
            .filter(|(k, _)| k != DELETE_WITH_OBJECTS)
            .cloned()
            .collect();
        all.extend(self.tags.iter().map(|x| (x.key.clone(), x.value.clone())));
        all.iter()
            .map(|(k, v)| {
                t::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(DeployError::request("S3 tag"))
            })
            .collect()
    }

    async fn put_tags(&self, ctx: &Ctx) -> Result<()> {
        let others = tags_of(ctx, &self.bucket).await?.unwrap_or_default();
        let tagging = t::Tagging::builder()
            .set_tag_set(Some(self.sdk_tags(&others)?))
            .build()
            .map_err(DeployError::request("S3 tagging"))?;
        ctx.aws
            .s3
            .put_bucket_tagging()
            .bucket(&self.bucket)
            .tagging(tagging)
            .send()
            .await
            .map_err(failed("S3 PutBucketTagging", &self.bucket))?;
        Ok(())
    }

    async fn put_access_block(&self, ctx: &Ctx) -> Result<()> {
        let b = &self.public_access_block_configuration;
        ctx.aws
            .s3
            .put_public_access_block()
            .bucket(&self.bucket)
            .public_access_block_configuration(
                t::PublicAccessBlockConfiguration::builder()
                    .block_public_acls(b.block_public_acls)
                    .ignore_public_acls(b.ignore_public_acls)
                    .block_public_policy(b.block_public_policy)
                    .restrict_public_buckets(b.restrict_public_buckets)
                    .build(),
            )
            .send()
            .await
            .map_err(failed("S3 PutPublicAccessBlock", &self.bucket))?;
        Ok(())
    }

    async fn put_encryption(&self, ctx: &Ctx) -> Result<()> {
        let by_default = t::ServerSideEncryptionByDefault::builder()
            .sse_algorithm(t::ServerSideEncryption::from(
                self.server_side_encryption_configuration
                    .sse_algorithm
                    .as_str(),
            ))
            .build()
            .map_err(DeployError::request("S3 encryption"))?;
        let config = t::ServerSideEncryptionConfiguration::builder()
            .rules(
                t::ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(by_default)
                    .build(),
            )
            .build()
            .map_err(DeployError::request("S3 encryption"))?;
        ctx.aws
            .s3
            .put_bucket_encryption()
            .bucket(&self.bucket)
            .server_side_encryption_configuration(config)
            .send()
            .await
            .map_err(failed("S3 PutBucketEncryption", &self.bucket))?;
        Ok(())
    }

    async fn put_versioning(&self, ctx: &Ctx, status: &str) -> Result<()> {
        ctx.aws
            .s3
            .put_bucket_versioning()
            .bucket(&self.bucket)
            .versioning_configuration(
                t::VersioningConfiguration::builder()
                    .status(t::BucketVersioningStatus::from(status))
                    .build(),
            )
            .send()
            .await
            .map_err(failed("S3 PutBucketVersioning", &self.bucket))?;
        Ok(())
    }

    async fn put_lifecycle(&self, ctx: &Ctx) -> Result<()> {
        let Some(l) = &self.lifecycle_configuration else {
            ctx.aws
                .s3
                .delete_bucket_lifecycle()
                .bucket(&self.bucket)
                .send()
                .await
                .map_err(failed("S3 DeleteBucketLifecycle", &self.bucket))?;
            return Ok(());
        };
        let rules = l
            .rules
            .iter()
            .map(|r| {
                let mut b = t::LifecycleRule::builder()
                    .id(&r.id)
                    .status(t::ExpirationStatus::Enabled)
                    .filter(t::LifecycleRuleFilter::builder().prefix(&r.prefix).build());
                if let Some(d) = r.expiration_days {
                    b = b.expiration(t::LifecycleExpiration::builder().days(d).build());
                }
                if let Some(d) = r.noncurrent_days {
                    b = b.noncurrent_version_expiration(
                        t::NoncurrentVersionExpiration::builder()
                            .noncurrent_days(d)
                            .build(),
                    );
                }
                if let Some(d) = r.abort_multipart_days {
                    b = b.abort_incomplete_multipart_upload(
                        t::AbortIncompleteMultipartUpload::builder()
                            .days_after_initiation(d)
                            .build(),
                    );
                }
                b.build().map_err(DeployError::request("S3 lifecycle rule"))
            })
            .collect::<Result<Vec<_>>>()?;
        let config = t::BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(DeployError::request("S3 lifecycle"))?;
        ctx.aws
            .s3
            .put_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .lifecycle_configuration(config)
            .send()
            .await
            .map_err(failed("S3 PutBucketLifecycleConfiguration", &self.bucket))?;
        Ok(())
    }

    /// Everything but the tags, as the bucket has it.
    async fn observe(&self, ctx: &Ctx, tags: Vec<KvTag>) -> Result<Bucket> {
        let s3 = &ctx.aws.s3;
        let name = self.bucket.as_str();
        let block = absent_on(
            s3.get_public_access_block().bucket(name).send().await,
            &["NoSuchPublicAccessBlockConfiguration"],
            "S3 GetPublicAccessBlock",
            name,
        )?;
        let block = block
            .as_ref()
            .and_then(|o| o.public_access_block_configuration());
        let encryption = absent_on(
            s3.get_bucket_encryption().bucket(name).send().await,
            &["ServerSideEncryptionConfigurationNotFoundError"],
            "S3 GetBucketEncryption",
            name,
        )?;
        let sse = encryption
            .as_ref()
            .and_then(|o| o.server_side_encryption_configuration())
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .map(|d| d.sse_algorithm().as_str().to_owned())
            .unwrap_or_default();
        let versioning = s3
            .get_bucket_versioning()
            .bucket(name)
            .send()
            .await
            .map_err(failed("S3 GetBucketVersioning", name))?;
        let lifecycle = absent_on(
            s3.get_bucket_lifecycle_configuration()
                .bucket(name)
                .send()
                .await,
            &["NoSuchLifecycleConfiguration"],
            "S3 GetBucketLifecycleConfiguration",
            name,
        )?;
        let rules: Vec<Rule> = lifecycle
            .as_ref()
            .map(|o| o.rules())
            .unwrap_or_default()
            .iter()
            .map(|r| Rule {
                id: r.id().unwrap_or_default().to_owned(),
                prefix: r
                    .filter()
                    .and_then(|f| f.prefix())
                    .unwrap_or_default()
                    .to_owned(),
                expiration_days: r.expiration().and_then(|e| e.days()),
                noncurrent_days: r
                    .noncurrent_version_expiration()
                    .and_then(|e| e.noncurrent_days()),
                abort_multipart_days: r
                    .abort_incomplete_multipart_upload()
                    .and_then(|a| a.days_after_initiation()),
            })
            .collect();
        Ok(Bucket {
            bucket: self.bucket.clone(),
            create_bucket_configuration: self.create_bucket_configuration.clone(),
            public_access_block_configuration: PublicAccessBlock {
                block_public_acls: block.and_then(|b| b.block_public_acls()) == Some(true),
                ignore_public_acls: block.and_then(|b| b.ignore_public_acls()) == Some(true),
                block_public_policy: block.and_then(|b| b.block_public_policy()) == Some(true),
                restrict_public_buckets: block.and_then(|b| b.restrict_public_buckets())
                    == Some(true),
            },
            server_side_encryption_configuration: Encryption { sse_algorithm: sse },
            // Suspended is what "no versioning" becomes once it has been on.
            versioning_configuration: match versioning.status() {
                Some(t::BucketVersioningStatus::Enabled) => Some(Versioning {
                    status: "Enabled".into(),
                }),
                _ => None,
            },
            lifecycle_configuration: (!rules.is_empty()).then_some(Lifecycle { rules }),
            tags,
        })
    }
}

impl Kind for Bucket {
    const KIND: &'static str = "bucket";
    const PLURAL: &'static str = "buckets";

    fn name(&self) -> String {
        self.bucket.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let out = ctx.aws.s3.head_bucket().bucket(&self.bucket).send().await;
        match out {
            Ok(_) => {}
            Err(e) if code_of(&e) == "NotFound" || code_of(&e) == "NoSuchBucket" => {
                return Ok(Observed::Absent)
            }
            // A 403: the name is another account's (S3 names are global).
            Err(e) if code_of(&e) == "Forbidden" => {
                return Ok(Observed::Foreign(
                    "the name is taken by a bucket of another account".into(),
                ))
            }
            Err(e) => return Err(failed("S3 HeadBucket", &self.bucket)(e)),
        }
        let tags = tags_of(ctx, &self.bucket).await?.unwrap_or_default();
        let it = tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        if !ctx.owns(it.clone()) {
            return Ok(Observed::Foreign(format!(
                "{} (a bucket of this name in the account; if a bosun-deploy run died while making it, tag it {STACK_TAG}={} and apply again)",
                ctx.why_not(it),
                ctx.stack
            )));
        }
        // The delete-with-objects tag is compared even when the file no longer sets
        // it, so that taking `deleteWithObjects` away takes the tag away.
        let mut compared = self.tags.clone();
        if !compared.iter().any(|x| x.key == DELETE_WITH_OBJECTS) {
            compared.push(KvTag {
                key: DELETE_WITH_OBJECTS.into(),
                value: String::new(),
            });
        }
        let kept = keep_kv_tags(it, &compared);
        Ok(Observed::Present(self.observe(ctx, kept).await?))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let mut req = ctx.aws.s3.create_bucket().bucket(&self.bucket);
        if let Some(l) = &self.create_bucket_configuration {
            req = req.create_bucket_configuration(
                t::CreateBucketConfiguration::builder()
                    .location_constraint(t::BucketLocationConstraint::from(
                        l.location_constraint.as_str(),
                    ))
                    .build(),
            );
        }
        match req.send().await {
            Err(e) if code_of(&e) == "BucketAlreadyExists" => {
                return Err(DeployError::Refused(format!(
                    "bucket name {} is taken by another account (S3 names are global): rename the resource",
                    self.bucket
                )))
            }
            // Made by this plan's earlier attempt (a retried call).
            other => {
                absent_on(
                    other,
                    &["BucketAlreadyOwnedByYou"],
                    "S3 CreateBucket",
                    &self.bucket,
                )?;
            }
        }
        // Tagged first: the tag is what makes it the stack's.
        self.put_tags(ctx).await?;
        self.put_access_block(ctx).await?;
        self.put_encryption(ctx).await?;
        if self.versioning_configuration.is_some() {
            self.put_versioning(ctx, "Enabled").await?;
        }
        if self.lifecycle_configuration.is_some() {
            self.put_lifecycle(ctx).await?;
        }
        Ok(())
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        if self.tags != have.tags {
            self.put_tags(ctx).await?;
        }
        if self.public_access_block_configuration != have.public_access_block_configuration {
            self.put_access_block(ctx).await?;
        }
        if self.server_side_encryption_configuration != have.server_side_encryption_configuration {
            self.put_encryption(ctx).await?;
        }
        if self.versioning_configuration != have.versioning_configuration {
            let status = if self.versioning_configuration.is_some() {
                "Enabled"
            } else {
                "Suspended"
            };
            self.put_versioning(ctx, status).await?;
        }
        if self.lifecycle_configuration != have.lifecycle_configuration {
            self.put_lifecycle(ctx).await?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        // Every bucket the stack names starts with its lowercased name and a `-`.
        let prefix = format!("{}-", ctx.stack.to_ascii_lowercase());
        let mut names = Vec::new();
        let mut pages = ctx
            .aws
            .s3
            .list_buckets()
            .prefix(&prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("S3 ListBuckets", &prefix))?;
            names.extend(
                page.buckets()
                    .iter()
                    .filter_map(|b| b.name())
                    .filter(|n| n.starts_with(&prefix) && !wanted.contains(*n))
                    .map(str::to_owned),
            );
        }
        let found = bounded(names.into_iter().map(|name| async move {
            let Some(tags) = tags_of(ctx, &name).await? else {
                return Ok(None);
            };
            if !ctx.owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
                return Ok(None);
            }
            let with_objects = tags.iter().any(|(k, v)| k == DELETE_WITH_OBJECTS && v == "true");
            // Refused here, before any change: a bucket that holds objects goes only
            // with the file's leave.
            if !with_objects && holds_objects(ctx, &name).await? {
                return Err(DeployError::Refused(format!(
                    "bucket {name} holds objects and would be deleted: set `deleteWithObjects: true` on it and apply (then remove it), or empty it first; nothing was changed"
                )));
            }
            Ok(Some(Owned {
                name,
                handle: if with_objects { "with-objects" } else { "" }.into(),
            }))
        }))
        .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let name = owned.name.as_str();
        if owned.handle == "with-objects" {
            empty(ctx, name).await?;
        } else if holds_objects(ctx, name).await? {
            return Err(DeployError::Refused(format!(
                "bucket {name} holds objects: set `deleteWithObjects: true` on it and apply, or empty it first"
            )));
        }
        let out = ctx.aws.s3.delete_bucket().bucket(name).send().await;
        absent_on(out, &["NoSuchBucket"], "S3 DeleteBucket", name)?;
        Ok(())
    }
}

/// Delete every object version and delete marker, a thousand a call (S3 API
/// reference, DeleteObjects: "up to 1,000 keys").
async fn empty(ctx: &Ctx, bucket: &str) -> Result<()> {
    loop {
        let page = ctx
            .aws
            .s3
            .list_object_versions()
            .bucket(bucket)
            .max_keys(1000)
            .send()
            .await;
        let Some(page) = absent_on(page, &["NoSuchBucket"], "S3 ListObjectVersions", bucket)?
        else {
            return Ok(());
        };
        let ids: Vec<t::ObjectIdentifier> = page
            .versions()
            .iter()
            .filter_map(|v| Some((v.key()?, v.version_id())))
            .chain(
                page.delete_markers()
                    .iter()
                    .filter_map(|m| Some((m.key()?, m.version_id()))),
            )
            .filter_map(|(key, version)| {
                t::ObjectIdentifier::builder()
                    .key(key)
                    .set_version_id(version.map(str::to_owned))
                    .build()
                    .ok()
            })
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let delete = t::Delete::builder()
            .set_objects(Some(ids))
            .quiet(true)
            .build()
            .map_err(DeployError::request("S3 DeleteObjects"))?;
        let out = ctx
            .aws
            .s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(failed("S3 DeleteObjects", bucket))?;
        if let Some(e) = out.errors().first() {
            return Err(DeployError::Unexpected {
                call: "S3 DeleteObjects",
                what: format!(
                    "{bucket}: {} ({})",
                    e.key().unwrap_or_default(),
                    e.message().unwrap_or_default()
                ),
            });
        }
    }
}
