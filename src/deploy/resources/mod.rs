//! One file per AWS resource kind, each implementing [`Kind`]. A new kind is its file
//! plus one line in the `kinds!` list below; what it may depend on is its own
//! [`Kind::DEPENDS_ON`], from which the engine orders creation and deletion.

pub mod access;
pub mod alarm;
pub mod auto_scaling_group;
pub mod bucket;
pub mod capacity_provider;
pub mod cloud_map;
pub mod cluster;
pub mod dashboard;
pub mod delivery_stream;
pub mod deployment_alarm;
pub mod ingress_rule;
pub mod instance_profile;
pub mod launch_template;
pub mod log_group;
pub mod metric_filter;
pub mod queue;
pub mod repository;
pub mod role;
pub mod scaling;
pub mod schedule;
pub mod security_group;
pub mod service;
pub mod subscription_filter;
pub mod task_definition;
pub mod topic;

use serde::Serialize;
use serde_json::Value;

use super::engine::error::{DeployError, Result};
use super::engine::{BoxFuture, Ctx, Kind, Node, Observed, Owned, Registry};

macro_rules! kinds {
    ($($variant:ident => $ty:ty),* $(,)?) => {
        /// A desired resource of any kind: the exact API input.
        #[derive(Debug, Clone, Serialize)]
        #[serde(untagged)]
        pub enum Spec { $($variant($ty)),* }

        $(impl From<$ty> for Spec {
            fn from(v: $ty) -> Spec { Spec::$variant(v) }
        })*

        /// Every kind's name, in the order `render` and the plan list them (what
        /// runs first is decided by the dependencies, never by this list).
        pub const KINDS: &[&str] = &[$(<$ty as Kind>::KIND),*];

        impl Spec {
            pub fn plural(&self) -> &'static str {
                match self { $(Spec::$variant(_) => <$ty as Kind>::PLURAL),* }
            }
        }

        impl Registry for Spec {
            fn kinds() -> Vec<(&'static str, &'static [&'static str])> {
                vec![$((<$ty as Kind>::KIND, <$ty as Kind>::DEPENDS_ON)),*]
            }
            fn kind(&self) -> &'static str {
                match self { $(Spec::$variant(_) => <$ty as Kind>::KIND),* }
            }
            fn name(&self) -> String {
                match self { $(Spec::$variant(s) => s.name()),* }
            }
            fn shared_ok(&self) -> bool {
                match self { $(Spec::$variant(_) => <$ty as Kind>::SHARED_OK),* }
            }
            fn follows_deps(&self) -> bool {
                match self { $(Spec::$variant(_) => <$ty as Kind>::FOLLOWS_DEPS),* }
            }
            fn owned(&self) -> Owned {
                match self { $(Spec::$variant(s) => s.owned()),* }
            }
            fn replace_reason(&self, have: &Spec) -> Option<String> {
                match (self, have) {
                    $((Spec::$variant(s), Spec::$variant(h)) => s.replace_reason(h),)*
                    _ => Some(format!("{} is now a {}", have.kind(), self.kind())),
                }
            }
            async fn create(&self, ctx: &Ctx) -> Result<()> {
                match self { $(Spec::$variant(s) => s.create(ctx).await),* }
            }
            async fn update(&self, have: &Spec, ctx: &Ctx) -> Result<()> {
                match (self, have) {
                    $((Spec::$variant(s), Spec::$variant(h)) => s.update(h, ctx).await,)*
                    _ => Err(DeployError::Internal(format!(
                        "{} {} compared with another kind", self.kind(), self.name()))),
                }
            }
            async fn delete(kind: &str, owned: &Owned, ctx: &Ctx) -> Result<()> {
                $(if kind == <$ty as Kind>::KIND { return <$ty>::delete(owned, ctx).await; })*
                Err(DeployError::Internal(format!("delete of {} {}: no kind {kind} is registered", kind, owned.name)))
            }

            async fn read_everything(nodes: &[Node<Spec>], ctx: &Ctx) -> Result<Vec<Observed<Spec>>> {
                let mut futs: Vec<BoxFuture<'_, Result<Vec<(usize, Observed<Spec>)>>>> = Vec::new();
                $({
                    let mine: Vec<(usize, &$ty)> = nodes.iter().enumerate()
                        .filter_map(|(i, n)| match &n.spec { Spec::$variant(s) => Some((i, s)), _ => None })
                        .collect();
                    if !mine.is_empty() {
                        futs.push(Box::pin(async move {
                            let specs: Vec<&$ty> = mine.iter().map(|(_, s)| *s).collect();
                            let seen = <$ty>::read_all(&specs, ctx).await?;
                            Ok(mine.iter().map(|(i, _)| *i)
                                .zip(seen.into_iter().map(|o| o.map(Spec::$variant)))
                                .collect())
                        }));
                    }
                })*
                let mut all: Vec<(usize, Observed<Spec>)> =
                    futures_util::future::try_join_all(futs).await?.into_iter().flatten().collect();
                all.sort_by_key(|(i, _)| *i);
                Ok(all.into_iter().map(|(_, o)| o).collect())
            }

            async fn list_everything(ctx: &Ctx, nodes: &[Node<Spec>]) -> Result<Vec<(&'static str, Vec<Owned>)>> {
                let wanted = |kind: &str| -> std::collections::BTreeSet<String> {
                    nodes.iter().filter(|n| n.spec.kind() == kind).map(|n| n.spec.name()).collect()
                };
                let futs: Vec<BoxFuture<'_, Result<(&'static str, Vec<Owned>)>>> = vec![
                    $({
                        let w = wanted(<$ty as Kind>::KIND);
                        Box::pin(async move { Ok((<$ty as Kind>::KIND, <$ty>::list_owned(ctx, &w).await?)) })
                    }),*
                ];
                futures_util::future::try_join_all(futs).await
            }
        }
    };
}

kinds! {
    Cluster => cluster::Cluster,
    SecurityGroup => security_group::SecurityGroup,
    IngressRule => ingress_rule::IngressRule,
    Namespace => cloud_map::Namespace,
    DiscoveryService => cloud_map::Service,
    Role => role::Role,
    Repository => repository::Repository,
    InstanceProfile => instance_profile::InstanceProfile,
    LaunchTemplate => launch_template::LaunchTemplate,
    AutoScalingGroup => auto_scaling_group::AutoScalingGroup,
    CapacityProvider => capacity_provider::CapacityProvider,
    ClusterCapacityProviders => cluster::ClusterCapacityProviders,
    LogGroup => log_group::LogGroup,
    MetricFilter => metric_filter::MetricFilter,
    DeliveryStream => delivery_stream::DeliveryStream,
    SubscriptionFilter => subscription_filter::SubscriptionFilter,
    AlertTopic => topic::Topic,
    Queue => queue::Queue,
    Bucket => bucket::Bucket,
    TaskDefinition => task_definition::TaskDefinition,
    DeploymentAlarm => deployment_alarm::DeploymentAlarm,
    Service => service::Service,
    ScalableTarget => scaling::ScalableTarget,
    ScalingPolicy => scaling::ScalingPolicy,
    Alarm => alarm::Alarm,
    ScheduleGroup => schedule::ScheduleGroup,
    Schedule => schedule::Schedule,
    Dashboard => dashboard::Dashboard,
}

/// A tag as ECS writes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct EcsTag {
    pub key: String,
    pub value: String,
}

/// A tag as IAM and Scheduler write it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KvTag {
    pub key: String,
    pub value: String,
}

/// Of the tags a resource has, those the file sets (others may be someone else's:
/// they are left alone and not compared), sorted.
pub fn keep_tags<'a>(
    have: impl Iterator<Item = (&'a str, &'a str)>,
    want: &[(String, String)],
) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = have
        .filter(|(k, _)| want.iter().any(|(w, _)| w == k))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    v.sort();
    v
}

/// [`keep_tags`] for the kinds whose tags are [`KvTag`]s.
pub fn keep_kv_tags<'a>(
    have: impl Iterator<Item = (&'a str, &'a str)>,
    want: &[KvTag],
) -> Vec<KvTag> {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    keep_tags(have, &want)
        .into_iter()
        .map(|(key, value)| KvTag { key, value })
        .collect()
}

/// Decode an IAM policy document as IAM returns it (URL-encoded JSON).
pub fn policy_json(text: &str) -> Value {
    let decoded = if text.trim_start().starts_with('{') {
        text.to_owned()
    } else {
        percent_decode(text)
    };
    serde_json::from_str(&decoded).unwrap_or(Value::String(decoded))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn policies_decode_as_iam_returns_them() {
        let v = super::policy_json("%7B%22Version%22%3A%222012-10-17%22%7D");
        assert_eq!(v, serde_json::json!({ "Version": "2012-10-17" }));
        assert_eq!(
            super::policy_json("{\"a\":1}"),
            serde_json::json!({ "a": 1 })
        );
    }
}
