//! A bucket: the S3 bucket with its settings; what `connectTo` gives a task that
//! connects to it (read and write of its objects, its name and ARN).

use serde_json::{json, Value};

use super::{Builder, Cx};
use crate::deploy::naming;
use crate::deploy::resources::bucket as b3;
use crate::deploy::resources::KvTag;
use crate::deploy::stack::{Bucket, Resource};

impl Cx<'_> {
    /// A bucket resource's S3 name.
    pub fn bucket_name(&self, name: &str) -> String {
        naming::bucket(&self.stack.stack, name, &self.t.account, &self.t.region)
    }

    pub fn bucket_arn(&self, name: &str) -> String {
        format!("arn:aws:s3:::{}", self.bucket_name(name))
    }
}

/// Every bucket of the stack.
pub fn add_all(cx: &Cx<'_>, b: &mut Builder) {
    for (name, res) in &cx.stack.resources {
        if let Resource::Bucket(bk) = res {
            b.add(spec(cx, name, bk), &[]);
        }
    }
}

fn spec(cx: &Cx<'_>, name: &str, bk: &Bucket) -> b3::Bucket {
    let rules: Vec<b3::Rule> = bk
        .lifecycle_rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = &r.properties;
            let days = |d: Option<i64>| d.map(|d| d.clamp(1, i64::from(i32::MAX)) as i32);
            b3::Rule {
                id: format!("{}-{i}", r.kind),
                prefix: p.prefix.clone().unwrap_or_default(),
                expiration_days: days(p.days_after_upload),
                noncurrent_days: days(p.days_after_versioned),
                abort_multipart_days: days(p.days_after_initiation),
            }
        })
        .collect();
    private(
        cx,
        cx.bucket_name(name),
        bk.versioning,
        rules,
        bk.delete_with_objects,
    )
}

/// A bucket of the stack's as every bucket it makes is (the file's, and forwarding's
/// failed-logs bucket): in the stack's region, every public access blocked, AES256,
/// tagged, with `delete_with_objects` kept as its tag.
pub fn private(
    cx: &Cx<'_>,
    bucket: String,
    versioning: bool,
    rules: Vec<b3::Rule>,
    delete_with_objects: bool,
) -> b3::Bucket {
    let mut tags = cx.tags_kv();
    if delete_with_objects {
        tags.push(KvTag {
            key: b3::DELETE_WITH_OBJECTS.into(),
            value: "true".into(),
        });
        tags.sort();
    }
    b3::Bucket {
        bucket,
        // us-east-1 takes no location constraint (S3 API reference, CreateBucket).
        create_bucket_configuration: (cx.t.region != "us-east-1").then(|| b3::Location {
            location_constraint: cx.t.region.clone(),
        }),
        public_access_block_configuration: b3::PublicAccessBlock::ALL,
        server_side_encryption_configuration: b3::Encryption {
            sse_algorithm: "AES256".into(),
        },
        versioning_configuration: versioning.then(|| b3::Versioning {
            status: "Enabled".into(),
        }),
        lifecycle_configuration: (!rules.is_empty()).then_some(b3::Lifecycle { rules }),
        tags,
    }
}

/// The task role's statement for the buckets a container connects to: list the
/// bucket, read, write and delete its objects (the bucket's ARN for ListBucket,
/// `ARN/*` for the object actions: Service Authorization Reference, "Actions,
/// resources, and condition keys for Amazon S3").
pub fn statements(cx: &Cx<'_>, connect_to: &[String]) -> Vec<Value> {
    let buckets: Vec<&String> = connect_to
        .iter()
        .filter(|c| cx.stack.is_bucket(c))
        .collect();
    if buckets.is_empty() {
        return Vec::new();
    }
    vec![
        json!({
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": buckets.iter().map(|n| cx.bucket_arn(n)).collect::<Vec<_>>(),
        }),
        json!({
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            "Resource": buckets.iter().map(|n| format!("{}/*", cx.bucket_arn(n))).collect::<Vec<_>>(),
        }),
    ]
}

/// The variables of a connection to a bucket.
pub fn connection(cx: &Cx<'_>, target: &str) -> Vec<(String, String)> {
    if !cx.stack.is_bucket(target) {
        return Vec::new();
    }
    let e = naming::env_name(target);
    vec![
        (format!("STP_{e}_BUCKET_NAME"), cx.bucket_name(target)),
        (format!("STP_{e}_ARN"), cx.bucket_arn(target)),
    ]
}
