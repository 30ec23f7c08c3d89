//! A Firehose stream (`{stack}-{name}-logs`, Direct PUT) that posts a log group's
//! events to an HTTP endpoint (Datadog, New Relic, any HTTPS URL), gzip-compressed,
//! keeping what it cannot deliver in the stack's failed-logs bucket. The endpoint's
//! API key is never sent: Firehose reads it from Secrets Manager with its role
//! (SecretsManagerConfiguration). Tagged with the stack's tag; only a tagged stream
//! is the stack's.
//!
//! A new stream is CREATING until it is ACTIVE (a subscription filter refuses it
//! until then), and a role IAM has just made may not yet be assumable by Firehose;
//! both are waited for, bounded (Firehose API reference, CreateDeliveryStream:
//! "DeliveryStreamStatus ... CREATING"; IAM User Guide, "Troubleshoot IAM": changes
//! take time to propagate).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_firehose::types as t;
use serde::Serialize;

use super::{keep_kv_tags, KvTag};
use crate::deploy::engine::error::{absent_on, code_of, failed, DeployError, Result};
use crate::deploy::engine::{bounded, Ctx, Kind, Observed, Owned};

const NOT_FOUND: &[&str] = &["ResourceNotFoundException"];
const WAIT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_secs(5);

/// CreateDeliveryStream's input.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeliveryStream {
    pub delivery_stream_name: String,
    pub delivery_stream_type: String,
    pub http_endpoint_destination_configuration: HttpDestination,
    pub tags: Vec<KvTag>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpDestination {
    pub endpoint_configuration: Endpoint,
    pub buffering_hints: Buffering,
    pub request_configuration: Request,
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
    pub retry_options: Retry,
    pub s3_backup_mode: String,
    pub s3_configuration: S3Backup,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets_manager_configuration: Option<SecretConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Endpoint {
    pub url: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Buffering {
    #[serde(rename = "SizeInMBs")]
    pub size_in_mbs: i32,
    pub interval_in_seconds: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Request {
    pub content_encoding: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Retry {
    pub duration_in_seconds: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3Backup {
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
    #[serde(rename = "BucketARN")]
    pub bucket_arn: String,
    pub prefix: String,
    pub error_output_prefix: String,
    pub compression_format: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretConfig {
    #[serde(rename = "SecretARN")]
    pub secret_arn: String,
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
    pub enabled: bool,
}

fn sdk_err(
    what: &'static str,
) -> impl Fn(aws_smithy_types::error::operation::BuildError) -> DeployError {
    move |e| DeployError::Request {
        what: what.into(),
        why: e.to_string(),
    }
}

impl HttpDestination {
    fn parts(
        &self,
    ) -> Result<(
        t::HttpEndpointConfiguration,
        t::HttpEndpointBufferingHints,
        t::HttpEndpointRequestConfiguration,
        t::HttpEndpointRetryOptions,
        Option<t::SecretsManagerConfiguration>,
    )> {
        let endpoint = t::HttpEndpointConfiguration::builder()
            .url(&self.endpoint_configuration.url)
            .name(&self.endpoint_configuration.name)
            .build()
            .map_err(sdk_err("Firehose endpoint"))?;
        let buffering = t::HttpEndpointBufferingHints::builder()
            .size_in_mbs(self.buffering_hints.size_in_mbs)
            .interval_in_seconds(self.buffering_hints.interval_in_seconds)
            .build();
        let request = t::HttpEndpointRequestConfiguration::builder()
            .content_encoding(t::ContentEncoding::from(
                self.request_configuration.content_encoding.as_str(),
            ))
            .build();
        let retry = t::HttpEndpointRetryOptions::builder()
            .duration_in_seconds(self.retry_options.duration_in_seconds)
            .build();
        let secret = match &self.secrets_manager_configuration {
            Some(s) => Some(
                t::SecretsManagerConfiguration::builder()
                    .secret_arn(&s.secret_arn)
                    .role_arn(&s.role_arn)
                    .enabled(s.enabled)
                    .build()
                    .map_err(sdk_err("Firehose secret"))?,
            ),
            None => None,
        };
        Ok((endpoint, buffering, request, retry, secret))
    }

    fn s3(&self) -> Result<t::S3DestinationConfiguration> {
        let s = &self.s3_configuration;
        t::S3DestinationConfiguration::builder()
            .role_arn(&s.role_arn)
            .bucket_arn(&s.bucket_arn)
            .prefix(&s.prefix)
            .error_output_prefix(&s.error_output_prefix)
            .compression_format(t::CompressionFormat::from(s.compression_format.as_str()))
            .build()
            .map_err(sdk_err("Firehose S3 backup"))
    }
}

async fn describe(ctx: &Ctx, name: &str) -> Result<Option<t::DeliveryStreamDescription>> {
    let out = ctx
        .aws
        .firehose
        .describe_delivery_stream()
        .delivery_stream_name(name)
        .send()
        .await;
    Ok(
        absent_on(out, NOT_FOUND, "Firehose DescribeDeliveryStream", name)?
            .and_then(|o| o.delivery_stream_description),
    )
}

async fn tags_of(ctx: &Ctx, name: &str) -> Result<Vec<(String, String)>> {
    let out = ctx
        .aws
        .firehose
        .list_tags_for_delivery_stream()
        .delivery_stream_name(name)
        .limit(50)
        .send()
        .await
        .map_err(failed("Firehose ListTagsForDeliveryStream", name))?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
        .collect())
}

/// Call `f` again while Firehose cannot yet assume a role IAM has just made.
async fn while_role_settles<T, F, Fut>(mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let started = Instant::now();
    loop {
        match f().await {
            Err(DeployError::Aws { code, message, .. })
                if code == "InvalidArgumentException"
                    && message.contains("role")
                    && started.elapsed() < Duration::from_secs(120) =>
            {
                tokio::time::sleep(POLL).await
            }
            other => return other,
        }
    }
}

impl DeliveryStream {
    fn observe(&self, d: &t::DeliveryStreamDescription, tags: Vec<KvTag>) -> DeliveryStream {
        let want = &self.http_endpoint_destination_configuration;
        let h = d
            .destinations()
            .first()
            .and_then(|x| x.http_endpoint_destination_description());
        let have = HttpDestination {
            endpoint_configuration: Endpoint {
                url: h
                    .and_then(|h| h.endpoint_configuration())
                    .and_then(|e| e.url())
                    .unwrap_or_default()
                    .to_owned(),
                name: h
                    .and_then(|h| h.endpoint_configuration())
                    .and_then(|e| e.name())
                    .unwrap_or_default()
                    .to_owned(),
            },
            buffering_hints: Buffering {
                size_in_mbs: h
                    .and_then(|h| h.buffering_hints())
                    .and_then(|b| b.size_in_mbs())
                    .unwrap_or_default(),
                interval_in_seconds: h
                    .and_then(|h| h.buffering_hints())
                    .and_then(|b| b.interval_in_seconds())
                    .unwrap_or_default(),
            },
            request_configuration: Request {
                content_encoding: h
                    .and_then(|h| h.request_configuration())
                    .and_then(|r| r.content_encoding())
                    .map_or_else(String::new, |c| c.as_str().to_owned()),
            },
            role_arn: h.and_then(|h| h.role_arn()).unwrap_or_default().to_owned(),
            retry_options: Retry {
                duration_in_seconds: h
                    .and_then(|h| h.retry_options())
                    .and_then(|r| r.duration_in_seconds())
                    .unwrap_or_default(),
            },
            s3_backup_mode: h
                .and_then(|h| h.s3_backup_mode())
                .map_or_else(String::new, |m| m.as_str().to_owned()),
            // AWS always describes it; an emulator that does not is taken at its word
            // for what it was sent.
            s3_configuration: match h.and_then(|h| h.s3_destination_description()) {
                Some(s) => S3Backup {
                    role_arn: s.role_arn().to_owned(),
                    bucket_arn: s.bucket_arn().to_owned(),
                    prefix: s.prefix().unwrap_or_default().to_owned(),
                    error_output_prefix: s.error_output_prefix().unwrap_or_default().to_owned(),
                    compression_format: s.compression_format().as_str().to_owned(),
                },
                None => want.s3_configuration.clone(),
            },
            secrets_manager_configuration: h.and_then(|h| h.secrets_manager_configuration()).map(
                |s| SecretConfig {
                    secret_arn: s.secret_arn().unwrap_or_default().to_owned(),
                    role_arn: s.role_arn().unwrap_or_default().to_owned(),
                    enabled: s.enabled(),
                },
            ),
        };
        DeliveryStream {
            http_endpoint_destination_configuration: have,
            tags,
            ..self.clone()
        }
    }

    /// Wait (bounded) for the stream to be ACTIVE.
    async fn active(&self, ctx: &Ctx) -> Result<()> {
        let name = &self.delivery_stream_name;
        let started = Instant::now();
        loop {
            let status = describe(ctx, name)
                .await?
                .map(|d| d.delivery_stream_status().clone());
            match status {
                Some(t::DeliveryStreamStatus::Active) => return Ok(()),
                Some(t::DeliveryStreamStatus::CreatingFailed) => {
                    return Err(DeployError::Unexpected {
                        call: "Firehose DescribeDeliveryStream",
                        what: format!("{name}: CREATING_FAILED"),
                    })
                }
                _ if started.elapsed() > WAIT => {
                    return Err(DeployError::TimedOut {
                        what: format!("Firehose stream {name} to become ACTIVE"),
                        secs: WAIT.as_secs(),
                    })
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }
}

impl Kind for DeliveryStream {
    const KIND: &'static str = "Firehose stream";
    const PLURAL: &'static str = "deliveryStreams";
    const DEPENDS_ON: &'static [&'static str] =
        &[super::role::Role::KIND, super::bucket::Bucket::KIND];

    fn name(&self) -> String {
        self.delivery_stream_name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let Some(d) = describe(ctx, &self.delivery_stream_name).await? else {
            return Ok(Observed::Absent);
        };
        let tags = tags_of(ctx, &self.delivery_stream_name).await?;
        let it = tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        if !ctx.owns(it.clone()) {
            return Ok(Observed::Foreign(ctx.why_not(it)));
        }
        Ok(Observed::Present(
            self.observe(&d, keep_kv_tags(it, &self.tags)),
        ))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let h = &self.http_endpoint_destination_configuration;
        let (endpoint, buffering, request, retry, secret) = h.parts()?;
        let dest = t::HttpEndpointDestinationConfiguration::builder()
            .endpoint_configuration(endpoint)
            .buffering_hints(buffering)
            .request_configuration(request)
            .role_arn(&h.role_arn)
            .retry_options(retry)
            .s3_backup_mode(t::HttpEndpointS3BackupMode::from(h.s3_backup_mode.as_str()))
            .s3_configuration(h.s3()?)
            .set_secrets_manager_configuration(secret)
            .build();
        let tags = self
            .tags
            .iter()
            .map(|x| t::Tag::builder().key(&x.key).value(&x.value).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(sdk_err("Firehose tag"))?;
        let name = &self.delivery_stream_name;
        while_role_settles(|| async {
            let out = ctx
                .aws
                .firehose
                .create_delivery_stream()
                .delivery_stream_name(name)
                .delivery_stream_type(t::DeliveryStreamType::DirectPut)
                .http_endpoint_destination_configuration(dest.clone())
                .set_tags(Some(tags.clone()))
                .send()
                .await;
            // Made by a run that died before it said so.
            absent_on(
                out,
                &["ResourceInUseException"],
                "Firehose CreateDeliveryStream",
                name,
            )
        })
        .await?;
        self.active(ctx).await
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        let name = &self.delivery_stream_name;
        let want = &self.http_endpoint_destination_configuration;
        if *want != have.http_endpoint_destination_configuration {
            let Some(d) = describe(ctx, name).await? else {
                return Err(DeployError::Internal(format!(
                    "Firehose stream {name} vanished"
                )));
            };
            let destination = d
                .destinations()
                .first()
                .map(|x| x.destination_id().to_owned())
                .unwrap_or_default();
            let (endpoint, buffering, request, retry, secret) = want.parts()?;
            let s = &want.s3_configuration;
            let s3 = t::S3DestinationUpdate::builder()
                .role_arn(&s.role_arn)
                .bucket_arn(&s.bucket_arn)
                .prefix(&s.prefix)
                .error_output_prefix(&s.error_output_prefix)
                .compression_format(t::CompressionFormat::from(s.compression_format.as_str()))
                .build();
            let update = t::HttpEndpointDestinationUpdate::builder()
                .endpoint_configuration(endpoint)
                .buffering_hints(buffering)
                .request_configuration(request)
                .role_arn(&want.role_arn)
                .retry_options(retry)
                .s3_backup_mode(t::HttpEndpointS3BackupMode::from(
                    want.s3_backup_mode.as_str(),
                ))
                .s3_update(s3)
                .set_secrets_manager_configuration(secret.or_else(|| {
                    // A key taken away: Firehose stops reading the secret.
                    have.http_endpoint_destination_configuration
                        .secrets_manager_configuration
                        .as_ref()
                        .and_then(|_| {
                            t::SecretsManagerConfiguration::builder()
                                .enabled(false)
                                .build()
                                .ok()
                        })
                }))
                .build();
            ctx.aws
                .firehose
                .update_destination()
                .delivery_stream_name(name)
                .current_delivery_stream_version_id(d.version_id())
                .destination_id(destination)
                .http_endpoint_destination_update(update)
                .send()
                .await
                .map_err(failed("Firehose UpdateDestination", name))?;
        }
        if self.tags != have.tags {
            let tags = self
                .tags
                .iter()
                .map(|x| t::Tag::builder().key(&x.key).value(&x.value).build())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(sdk_err("Firehose tag"))?;
            ctx.aws
                .firehose
                .tag_delivery_stream()
                .delivery_stream_name(name)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(failed("Firehose TagDeliveryStream", name))?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let prefix = format!("{}-", ctx.stack);
        let mut names = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let page = ctx
                .aws
                .firehose
                .list_delivery_streams()
                .limit(100)
                .set_exclusive_start_delivery_stream_name(start.take())
                .send()
                .await
                .map_err(failed("Firehose ListDeliveryStreams", &prefix))?;
            names.extend(page.delivery_stream_names().iter().cloned());
            match (page.has_more_delivery_streams(), names.last()) {
                (true, Some(last)) => start = Some(last.clone()),
                _ => break,
            }
        }
        let candidates: Vec<String> = names
            .into_iter()
            .filter(|n| n.starts_with(&prefix) && n.ends_with("-logs") && !wanted.contains(n))
            .collect();
        let owned = bounded(candidates.into_iter().map(|name| async move {
            let tags = tags_of(ctx, &name).await?;
            Ok(ctx
                .owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .then(|| Owned {
                    name: name.clone(),
                    handle: name,
                }))
        }))
        .await?;
        Ok(owned.into_iter().flatten().collect())
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .firehose
            .delete_delivery_stream()
            .delivery_stream_name(&owned.name)
            .send()
            .await;
        match out {
            Err(e) if code_of(&e) == "ResourceInUseException" => Err(DeployError::Refused(format!(
                "Firehose stream {} is still being created or changed: run the command again in a minute",
                owned.name
            ))),
            out => {
                absent_on(out, NOT_FOUND, "Firehose DeleteDeliveryStream", &owned.name)?;
                Ok(())
            }
        }
    }
}
