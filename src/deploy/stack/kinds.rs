//! The newer resource kinds' own parts of the model: a bucket, a service's ports.

use serde::Deserialize;

/// An S3 bucket of the stack's: private (public access blocked), encrypted, tagged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Bucket {
    #[serde(default)]
    pub versioning: bool,
    #[serde(default)]
    pub lifecycle_rules: Vec<LifecycleRule>,
    /// Deleting the bucket (from the file, or the stack) deletes what it holds;
    /// without it a bucket that holds objects is never deleted.
    #[serde(default)]
    pub delete_with_objects: bool,
}

/// Stacktape's lifecycle rule: `{ type, properties }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LifecycleRule {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub properties: LifecycleProps,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LifecycleProps {
    pub days_after_upload: Option<i64>,
    pub days_after_versioned: Option<i64>,
    pub days_after_initiation: Option<i64>,
    pub prefix: Option<String>,
}

/// A port a service's tasks listen on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Port {
    pub container_port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
}

fn tcp() -> String {
    "tcp".into()
}
