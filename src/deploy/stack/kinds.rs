//! The newer resource kinds' own parts of the model: a bucket, a service's ports,
//! log forwarding.

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

/// Logs forwarded out of AWS: `{ type: http-endpoint | datadog | new-relic,
/// properties: { endpointUrl, apiKey, region } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Forwarding {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub properties: ForwardingProps,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForwardingProps {
    /// The HTTPS URL (the provider's for its region where not given).
    pub endpoint_url: Option<String>,
    /// `$Secret('name')` of a secret holding `{"api_key": "..."}`.
    pub api_key: Option<String>,
    /// The provider's site: `us` (default) or `eu`.
    pub region: Option<String>,
}

impl Forwarding {
    /// The URL Firehose posts to: the file's, else the provider's own for its site
    /// (Datadog's and New Relic's Firehose intake); `None` for an `http-endpoint`
    /// without one.
    pub fn url(&self) -> Option<String> {
        if let Some(u) = &self.properties.endpoint_url {
            return Some(u.clone());
        }
        let eu = self.properties.region.as_deref() == Some("eu");
        match (self.kind.as_str(), eu) {
            ("datadog", false) => {
                Some("https://aws-kinesis-http-intake.logs.datadoghq.com/v1/input".into())
            }
            ("datadog", true) => {
                Some("https://aws-kinesis-http-intake.logs.datadoghq.eu/v1/input".into())
            }
            ("new-relic", false) => Some("https://aws-api.newrelic.com/firehose/v1".into()),
            ("new-relic", true) => Some("https://aws-api.eu.newrelic.com/firehose/v1".into()),
            _ => None,
        }
    }
}
