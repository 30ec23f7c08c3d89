//! Cloud Map: the stack's private DNS namespace (`{stack}.internal`, in the tasks'
//! VPC) and one Cloud Map service per worker service with ports, where ECS registers
//! the service's tasks (A records: the tasks run with `awsvpc`) and keeps their
//! health (ECS Developer Guide, "Use service discovery to connect Amazon ECS services
//! with DNS names": with `awsvpc` any combination of A and SRV records; Cloud Map's
//! custom health checks, which ECS updates from the tasks' state).
//!
//! Both are tagged with the stack's tag; only a tagged one is the stack's. Namespace
//! creation and deletion are asynchronous (an operation to wait for: Cloud Map API
//! reference, CreatePrivateDnsNamespace, GetOperation); a namespace holding services
//! and a service holding instances cannot be deleted (DeleteNamespace, DeleteService:
//! `ResourceInUse`), so a delete waits, bounded, for ECS to deregister the tasks of
//! a service it just stopped.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_servicediscovery::types as t;
use serde::Serialize;

use super::{keep_kv_tags, KvTag};
use crate::deploy::engine::error::{absent_on, failed, DeployError, Result};
use crate::deploy::engine::{bounded, Ctx, Kind, Observed, Owned};

/// What `render` and a plan before the first apply show for the namespace's id and
/// a Cloud Map service's ARN.
pub const PENDING_NAMESPACE: &str = "(the stack's namespace, made by apply)";
pub const PENDING_SERVICE: &str = "(the Cloud Map service, made by apply)";

/// How long a delete waits for what still uses the namespace or the service (tasks
/// being stopped and deregistered), and a namespace operation to finish.
const WAIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_secs(5);

/// A private DNS namespace: CreatePrivateDnsNamespace's input.
///
/// The namespace's VPC cannot be read back from Cloud Map (it is the hosted zone's),
/// so the description names it: a namespace in another VPC differs in its
/// description, which cannot change in place either, and is replaced.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Namespace {
    pub name: String,
    pub vpc: String,
    pub description: String,
    pub tags: Vec<KvTag>,
}

/// A Cloud Map service: CreateService's input.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Service {
    pub name: String,
    pub namespace_id: String,
    pub description: String,
    pub dns_config: DnsConfig,
    pub health_check_custom_config: CustomHealth,
    pub tags: Vec<KvTag>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnsConfig {
    pub routing_policy: String,
    pub dns_records: Vec<DnsRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsRecord {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "TTL")]
    pub ttl: i64,
}

/// Health from ECS (FailureThreshold is no longer used and always 1: Cloud Map API
/// reference, HealthCheckCustomConfig).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomHealth {}

fn sdk_tags(tags: &[KvTag]) -> Vec<t::Tag> {
    tags.iter()
        .filter_map(|x| t::Tag::builder().key(&x.key).value(&x.value).build().ok())
        .collect()
}

async fn tags_of(ctx: &Ctx, arn: &str) -> Result<Option<Vec<(String, String)>>> {
    let out = ctx
        .aws
        .sd
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await;
    Ok(absent_on(
        out,
        &["ResourceNotFoundException"],
        "Cloud Map ListTagsForResource",
        arn,
    )?
    .map(|o| {
        o.tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect()
    }))
}

/// Set the tags the file gives (others are left alone).
async fn tag(ctx: &Ctx, arn: &str, tags: &[KvTag]) -> Result<()> {
    ctx.aws
        .sd
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .map_err(failed("Cloud Map TagResource", arn))?;
    Ok(())
}

/// The account's private DNS namespaces named `name` (a name may be in several
/// VPCs): (id, ARN, description). Read once a run.
pub async fn namespaces_named(
    ctx: &Ctx,
    name: &str,
) -> Result<std::sync::Arc<Vec<(String, String, String)>>> {
    ctx.once(format!("cloud-map-namespaces:{name}"), || async {
        let filter = t::NamespaceFilter::builder()
            .name(t::NamespaceFilterName::Type)
            .values("DNS_PRIVATE")
            .condition(t::FilterCondition::Eq)
            .build()
            .map_err(DeployError::request("Cloud Map namespace filter"))?;
        let mut pages = ctx
            .aws
            .sd
            .list_namespaces()
            .filters(filter)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("Cloud Map ListNamespaces", name))?;
            out.extend(page.namespaces().iter().filter_map(|n| {
                if n.name() != Some(name) || n.r#type() != Some(&t::NamespaceType::DnsPrivate) {
                    return None;
                }
                Some((
                    n.id()?.to_owned(),
                    n.arn()?.to_owned(),
                    n.description().unwrap_or_default().to_owned(),
                ))
            }));
        }
        Ok(out)
    })
    .await
}

/// The stack's namespace (tagged as the stack's), if it exists: (id, ARN). Read once a
/// run (every render of the run and both kinds' listings ask).
pub async fn owned_namespace(ctx: &Ctx, name: &str) -> Result<Option<(String, String)>> {
    let found = ctx
        .once(format!("cloud-map-owned-namespace:{name}"), || async {
            for (id, arn, _) in namespaces_named(ctx, name).await?.iter() {
                if let Some(tags) = tags_of(ctx, arn).await? {
                    if ctx.owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
                        return Ok(Some((id.clone(), arn.clone())));
                    }
                }
            }
            Ok(None)
        })
        .await?;
    Ok((*found).clone())
}

/// Wait for a Cloud Map operation to end; its failure is an error.
async fn settle(ctx: &Ctx, operation: &str, what: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let out = ctx
            .aws
            .sd
            .get_operation()
            .operation_id(operation)
            .send()
            .await
            .map_err(failed("Cloud Map GetOperation", what))?;
        let op = out.operation();
        match op.and_then(|o| o.status()) {
            Some(t::OperationStatus::Success) | None => return Ok(()),
            Some(t::OperationStatus::Fail) => {
                return Err(DeployError::Unexpected {
                    call: "Cloud Map GetOperation",
                    what: format!(
                        "{what}: {} ({})",
                        op.and_then(|o| o.error_message()).unwrap_or("failed"),
                        op.and_then(|o| o.error_code()).unwrap_or("")
                    ),
                })
            }
            _ if started.elapsed() > WAIT => {
                return Err(DeployError::TimedOut {
                    what: format!("Cloud Map operation {operation} ({what})"),
                    secs: WAIT.as_secs(),
                })
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

/// Retry `call` while Cloud Map says what it deletes is still in use (bounded).
async fn while_in_use<F, Fut, T>(what: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let started = Instant::now();
    loop {
        match call().await {
            Err(e) if e.code() == Some("ResourceInUse") && started.elapsed() < WAIT => {
                tokio::time::sleep(POLL).await;
            }
            Err(e) if e.code() == Some("ResourceInUse") => {
                return Err(DeployError::Refused(format!(
                    "{what} is still in use after {} s (tasks of a stopped ECS service not yet deregistered): run the command again once they are gone",
                    WAIT.as_secs()
                )))
            }
            other => return other,
        }
    }
}

impl Kind for Namespace {
    const KIND: &'static str = "private DNS namespace";
    const PLURAL: &'static str = "namespaces";

    fn name(&self) -> String {
        self.name.clone()
    }

    fn replace_reason(&self, have: &Self) -> Option<String> {
        (self.description != have.description)
            .then(|| format!("{} → {}", have.description, self.description))
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let all = namespaces_named(ctx, &self.name).await?;
        if all.is_empty() {
            return Ok(Observed::Absent);
        }
        let mut why = String::new();
        for (_, arn, description) in all.iter() {
            let Some(tags) = tags_of(ctx, arn).await? else {
                continue;
            };
            let it = tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            if ctx.owns(it.clone()) {
                return Ok(Observed::Present(Namespace {
                    description: description.clone(),
                    tags: keep_kv_tags(it, &self.tags),
                    ..self.clone()
                }));
            }
            why = ctx.why_not(it);
        }
        // Someone else's namespace of that name: in this VPC it would clash with the
        // stack's; elsewhere it is no concern of the stack's.
        match all.iter().find(|(_, _, d)| d.contains(&self.vpc)) {
            Some(_) => Ok(Observed::Foreign(why)),
            None => Ok(Observed::Absent),
        }
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .sd
            .create_private_dns_namespace()
            .name(&self.name)
            .vpc(&self.vpc)
            .description(&self.description)
            .set_tags(Some(sdk_tags(&self.tags)))
            .send()
            .await;
        // Made by a run that died before it said so: the read finds it next time.
        match absent_on(
            out,
            &["NamespaceAlreadyExists"],
            "Cloud Map CreatePrivateDnsNamespace",
            &self.name,
        )? {
            Some(o) => match o.operation_id() {
                Some(op) => settle(ctx, op, &self.name).await,
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        if self.tags != have.tags {
            let Some((_, arn)) = owned_namespace(ctx, &self.name).await? else {
                return Err(DeployError::Internal(format!(
                    "namespace {} vanished",
                    self.name
                )));
            };
            tag(ctx, &arn, &self.tags).await?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, _wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        // The stack only ever makes the one name.
        let name = crate::deploy::naming::namespace(&ctx.stack);
        Ok(owned_namespace(ctx, &name)
            .await?
            .map(|(id, _)| Owned {
                name: name.clone(),
                handle: id,
            })
            .into_iter()
            .collect())
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let what = format!("namespace {}", owned.name);
        let op = while_in_use(&what, || async {
            let out = ctx.aws.sd.delete_namespace().id(&owned.handle).send().await;
            absent_on(
                out,
                &["NamespaceNotFound"],
                "Cloud Map DeleteNamespace",
                &owned.name,
            )
        })
        .await?;
        match op.as_ref().and_then(|o| o.operation_id()) {
            Some(id) => settle(ctx, id, &what).await,
            None => Ok(()),
        }
    }
}

/// The Cloud Map services of a namespace (read once a run), each read with GetService,
/// which names its namespace (a listing's summary does not).
async fn services_in(ctx: &Ctx, namespace: &str) -> Result<std::sync::Arc<Vec<t::Service>>> {
    ctx.once(format!("cloud-map-services:{namespace}"), || async {
        let filter = t::ServiceFilter::builder()
            .name(t::ServiceFilterName::NamespaceId)
            .values(namespace)
            .condition(t::FilterCondition::Eq)
            .build()
            .map_err(DeployError::request("Cloud Map service filter"))?;
        let mut pages = ctx
            .aws
            .sd
            .list_services()
            .filters(filter)
            .into_paginator()
            .send();
        let mut ids = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("Cloud Map ListServices", namespace))?;
            ids.extend(
                page.services()
                    .iter()
                    .filter_map(|s| s.id().map(str::to_owned)),
            );
        }
        let found = bounded(ids.iter().map(|id| async move {
            let out = ctx.aws.sd.get_service().id(id).send().await;
            Ok(
                absent_on(out, &["ServiceNotFound"], "Cloud Map GetService", id)?
                    .and_then(|o| o.service().cloned()),
            )
        }))
        .await?;
        Ok(found
            .into_iter()
            .flatten()
            .filter(|s| s.namespace_id() == Some(namespace))
            .collect())
    })
    .await
}

/// The ARN of the stack's Cloud Map service `name` in `namespace`, if it exists.
pub async fn service_arn(ctx: &Ctx, namespace: &str, name: &str) -> Result<Option<String>> {
    for s in services_in(ctx, namespace).await?.iter() {
        if s.name() != Some(name) {
            continue;
        }
        let arn = s.arn().unwrap_or_default();
        if let Some(tags) = tags_of(ctx, arn).await? {
            if ctx.owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
                return Ok(Some(arn.to_owned()));
            }
        }
    }
    Ok(None)
}

impl Service {
    fn observe(&self, s: &t::Service, tags: Vec<KvTag>) -> Service {
        let dns = s.dns_config();
        Service {
            name: self.name.clone(),
            namespace_id: self.namespace_id.clone(),
            description: s.description().unwrap_or_default().to_owned(),
            dns_config: DnsConfig {
                routing_policy: dns
                    .and_then(|d| d.routing_policy())
                    .map_or_else(String::new, |r| r.as_str().to_owned()),
                dns_records: dns
                    .map(|d| {
                        d.dns_records()
                            .iter()
                            .map(|r| DnsRecord {
                                kind: r.r#type().as_str().to_owned(),
                                ttl: r.ttl(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            health_check_custom_config: self.health_check_custom_config.clone(),
            tags,
        }
    }
}

impl Kind for Service {
    const KIND: &'static str = "Cloud Map service";
    const PLURAL: &'static str = "cloudMapServices";
    const DEPENDS_ON: &'static [&'static str] = &[Namespace::KIND];

    fn name(&self) -> String {
        self.name.clone()
    }

    fn replace_reason(&self, have: &Self) -> Option<String> {
        // Its records' type and routing and its health checking are set at creation.
        if self.dns_config != have.dns_config {
            return Some("DNS records".into());
        }
        (self.description != have.description).then(|| "description".into())
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        if self.namespace_id == PENDING_NAMESPACE {
            return Ok(Observed::Absent);
        }
        for s in services_in(ctx, &self.namespace_id).await?.iter() {
            if s.name() != Some(self.name.as_str()) {
                continue;
            }
            let Some(tags) = tags_of(ctx, s.arn().unwrap_or_default()).await? else {
                continue;
            };
            let it = tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            if !ctx.owns(it.clone()) {
                return Ok(Observed::Foreign(ctx.why_not(it)));
            }
            return Ok(Observed::Present(
                self.observe(s, keep_kv_tags(it, &self.tags)),
            ));
        }
        Ok(Observed::Absent)
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        if self.namespace_id == PENDING_NAMESPACE {
            return Err(DeployError::Internal(format!(
                "Cloud Map service {} planned before its namespace",
                self.name
            )));
        }
        let records = self
            .dns_config
            .dns_records
            .iter()
            .map(|r| {
                t::DnsRecord::builder()
                    .r#type(t::RecordType::from(r.kind.as_str()))
                    .ttl(r.ttl)
                    .build()
                    .map_err(DeployError::request("Cloud Map DNS record"))
            })
            .collect::<Result<Vec<_>>>()?;
        let dns = t::DnsConfig::builder()
            .routing_policy(t::RoutingPolicy::from(
                self.dns_config.routing_policy.as_str(),
            ))
            .set_dns_records(Some(records))
            .build()
            .map_err(DeployError::request("Cloud Map DNS config"))?;
        let out = ctx
            .aws
            .sd
            .create_service()
            .name(&self.name)
            .namespace_id(&self.namespace_id)
            .description(&self.description)
            .dns_config(dns)
            .health_check_custom_config(t::HealthCheckCustomConfig::builder().build())
            .set_tags(Some(sdk_tags(&self.tags)))
            .send()
            .await;
        absent_on(
            out,
            &["ServiceAlreadyExists"],
            "Cloud Map CreateService",
            &self.name,
        )?;
        Ok(())
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        if self.tags != have.tags {
            let Some(arn) = service_arn(ctx, &self.namespace_id, &self.name).await? else {
                return Err(DeployError::Internal(format!(
                    "Cloud Map service {} vanished",
                    self.name
                )));
            };
            tag(ctx, &arn, &self.tags).await?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, _wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let name = crate::deploy::naming::namespace(&ctx.stack);
        let Some((ns, _)) = owned_namespace(ctx, &name).await? else {
            return Ok(Vec::new());
        };
        let mut owned = Vec::new();
        for s in services_in(ctx, &ns).await?.iter() {
            let (Some(name), Some(arn), Some(id)) = (s.name(), s.arn(), s.id()) else {
                continue;
            };
            if let Some(tags) = tags_of(ctx, arn).await? {
                if ctx.owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
                    owned.push(Owned {
                        name: name.to_owned(),
                        handle: id.to_owned(),
                    });
                }
            }
        }
        Ok(owned)
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let what = format!("Cloud Map service {}", owned.name);
        while_in_use(&what, || async {
            let out = ctx.aws.sd.delete_service().id(&owned.handle).send().await;
            absent_on(
                out,
                &["ServiceNotFound"],
                "Cloud Map DeleteService",
                &owned.name,
            )
        })
        .await?;
        Ok(())
    }
}
