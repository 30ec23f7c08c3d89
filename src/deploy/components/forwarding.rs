//! Logs that leave AWS: for each worker or job with `logging.forwarding`, a Firehose
//! stream posting to the endpoint and a subscription filter sending its log group's
//! every event there; shared by the stack, the bucket that keeps what Firehose could
//! not deliver (expiring) and two roles with the least they need: Firehose's (write
//! that bucket, read the API keys' secrets) and CloudWatch Logs' (put records into the
//! stack's streams). Removing `forwarding` removes all of it.

use serde_json::{json, Value};

use super::{roles, Builder, Cx, Dep};
use crate::deploy::engine::Kind;
use crate::deploy::naming;
use crate::deploy::resources::bucket as b3;
use crate::deploy::resources::delivery_stream as ds;
use crate::deploy::resources::log_group::LogGroup;
use crate::deploy::resources::subscription_filter::{SubscriptionFilter, FILTER_NAME};
use crate::deploy::stack::directive::{directive, Directive};
use crate::deploy::stack::Forwarding;

/// Days Firehose's undelivered records are kept.
const FAILED_DAYS: i32 = 14;

/// The resources that forward, with their forwarding.
fn forwarding<'a>(cx: &'a Cx<'_>) -> Vec<(&'a str, &'a Forwarding)> {
    cx.stack
        .resources
        .iter()
        .filter_map(|(n, r)| Some((n.as_str(), r.container()?.logging.forwarding.as_ref()?)))
        .collect()
}

/// The secret a forwarding's API key names, if any.
fn secret_of(f: &Forwarding) -> Option<String> {
    match directive(f.properties.api_key.as_deref()?) {
        Ok(Some(Directive::Secret { name, .. })) => Some(name),
        _ => None,
    }
}

pub fn stream_arn(cx: &Cx<'_>, name: &str) -> String {
    cx.t.arn(
        "firehose",
        &format!("deliverystream/{}", naming::log_stream(cx.name(), name)),
    )
}

/// Every forwarding's nodes.
pub fn add_all(cx: &Cx<'_>, b: &mut Builder) {
    let all = forwarding(cx);
    if all.is_empty() {
        return;
    }
    let bucket_name = naming::bucket(cx.name(), naming::FAILED_LOGS, &cx.t.account, &cx.t.region);
    let bucket_arn = format!("arn:aws:s3:::{bucket_name}");
    // Failed records are the stack's own copies, expiring: they go with it.
    let bucket = b.add(
        super::bucket::private(
            cx,
            bucket_name,
            false,
            vec![b3::Rule {
                id: "expiration".into(),
                prefix: String::new(),
                expiration_days: Some(FAILED_DAYS),
                noncurrent_days: None,
                abort_multipart_days: Some(1),
            }],
            true,
        ),
        &[],
    );
    // Firehose's role: the bucket (Firehose Developer Guide, "Grant Firehose access to
    // an Amazon S3 destination": these six actions, the bucket's on the bucket and the
    // objects' on its objects) and the API keys' secrets.
    let mut statements: Vec<Value> = vec![
        json!({
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
            "Resource": bucket_arn.clone(),
        }),
        json!({
            "Effect": "Allow",
            "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
            "Resource": format!("{bucket_arn}/*"),
        }),
    ];
    let mut secrets: Vec<String> = all
        .iter()
        .filter_map(|(_, f)| secret_of(f))
        .map(|s| cx.secret_arns(&s).1)
        .collect();
    secrets.sort();
    secrets.dedup();
    if !secrets.is_empty() {
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": secrets,
        }));
    }
    let delivery_name = naming::log_delivery_role(cx.name());
    let delivery_arn = cx.role_arn(&delivery_name);
    let delivery = b.add(
        roles::role(cx, &delivery_name, roles::Trust::Firehose, statements),
        &[],
    );
    let streams: Vec<String> = all.iter().map(|(n, _)| stream_arn(cx, n)).collect();
    let subscription_name = naming::log_subscription_role(cx.name());
    let subscription_arn = cx.role_arn(&subscription_name);
    let subscription = b.add(
        roles::role(
            cx,
            &subscription_name,
            roles::Trust::Logs,
            vec![json!({
                "Effect": "Allow",
                "Action": ["firehose:PutRecord", "firehose:PutRecordBatch"],
                "Resource": streams,
            })],
        ),
        &[],
    );
    for (name, f) in all {
        let at = format!("/resources/{name}/properties/logging/forwarding/properties/apiKey");
        let secret = secret_of(f).map(|s| {
            b.preflight.secrets.push((s.clone(), cx.stack.locate(&at)));
            b.preflight
                .secret_keys
                .push((s.clone(), "api_key".into(), cx.stack.locate(&at)));
            ds::SecretConfig {
                secret_arn: cx.secret_arns(&s).0,
                role_arn: delivery_arn.clone(),
                enabled: true,
            }
        });
        let stream = b.add(
            ds::DeliveryStream {
                delivery_stream_name: naming::log_stream(cx.name(), name),
                delivery_stream_type: "DirectPut".into(),
                http_endpoint_destination_configuration: ds::HttpDestination {
                    endpoint_configuration: ds::Endpoint {
                        url: f.url().unwrap_or_default(),
                        name: f.kind.clone(),
                    },
                    buffering_hints: ds::Buffering {
                        size_in_mbs: 1,
                        interval_in_seconds: 60,
                    },
                    request_configuration: ds::Request {
                        content_encoding: "GZIP".into(),
                    },
                    role_arn: delivery_arn.clone(),
                    retry_options: ds::Retry {
                        duration_in_seconds: 300,
                    },
                    s3_backup_mode: "FailedDataOnly".into(),
                    s3_configuration: ds::S3Backup {
                        role_arn: delivery_arn.clone(),
                        bucket_arn: bucket_arn.clone(),
                        prefix: format!("{name}/"),
                        error_output_prefix: format!("{name}-errors/"),
                        compression_format: "GZIP".into(),
                    },
                    secrets_manager_configuration: secret,
                },
                tags: cx.tags_kv(),
            },
            &[delivery.clone(), bucket.clone()],
        );
        let group: Dep = (LogGroup::KIND, cx.log_group(name));
        b.add(
            SubscriptionFilter {
                log_group_name: cx.log_group(name),
                filter_name: FILTER_NAME.into(),
                filter_pattern: String::new(),
                destination_arn: stream_arn(cx, name),
                role_arn: subscription_arn.clone(),
            },
            &[group, stream, subscription.clone()],
        );
    }
}
