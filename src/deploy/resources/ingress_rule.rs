//! An inbound rule of the stack's security group: one port of a worker service with
//! ports, open to the stack's own tasks only (the rule's source is the group itself:
//! "the source can be ... the security group itself, which allows instances
//! associated with it to reach each other", Amazon VPC User Guide, "Security group
//! rules"). Nothing is opened to the VPC or the internet.
//!
//! Rules are tagged with the stack's tag when they are made (AuthorizeSecurityGroup-
//! Ingress takes TagSpecifications for `security-group-rule`); a rule without it,
//! someone's own, is never changed or revoked.

use std::collections::BTreeSet;

use aws_sdk_ec2::types as t;
use serde::Serialize;

use super::security_group::PENDING;
use super::KvTag;
use crate::deploy::engine::error::{absent_on, failed, DeployError, Result};
use crate::deploy::engine::{Ctx, Kind, Observed, Owned};

/// AuthorizeSecurityGroupIngress's input, for one port.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IngressRule {
    /// `{group name} {protocol}/{port}`, as the plan names it.
    #[serde(skip)]
    pub name: String,
    pub group_id: String,
    pub ip_permissions: Vec<Permission>,
    pub tag_specifications: Vec<TagSpecification>,
    /// The rule's id, as read (what an update tags).
    #[serde(skip)]
    pub rule_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Permission {
    pub ip_protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub user_id_group_pairs: Vec<GroupPair>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupPair {
    pub group_id: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagSpecification {
    pub resource_type: String,
    pub tags: Vec<KvTag>,
}

/// A rule's name in the plan.
pub fn name(group_name: &str, protocol: &str, port: u16) -> String {
    format!("{group_name} {protocol}/{port}")
}

impl IngressRule {
    /// For the stack's group `group_id`: `protocol`/`port` from the group itself.
    pub fn new(
        group_name: &str,
        group_id: &str,
        protocol: &str,
        port: u16,
        tags: Vec<KvTag>,
    ) -> Self {
        IngressRule {
            name: name(group_name, protocol, port),
            group_id: group_id.to_owned(),
            ip_permissions: vec![Permission {
                ip_protocol: protocol.to_owned(),
                from_port: port.into(),
                to_port: port.into(),
                user_id_group_pairs: vec![GroupPair {
                    group_id: group_id.to_owned(),
                    description: "bosun-deploy: the stack's own tasks".into(),
                }],
            }],
            tag_specifications: vec![TagSpecification {
                resource_type: "security-group-rule".into(),
                tags,
            }],
            rule_id: None,
        }
    }

    fn tags(&self) -> &[KvTag] {
        self.tag_specifications
            .first()
            .map_or(&[][..], |s| s.tags.as_slice())
    }

    fn sdk_tags(&self) -> Vec<t::Tag> {
        self.tags()
            .iter()
            .map(|x| t::Tag::builder().key(&x.key).value(&x.value).build())
            .collect()
    }

    /// Whether AWS's rule `r` is this one (inbound, protocol, port, from the group).
    fn is(&self, r: &t::SecurityGroupRule) -> bool {
        let p = &self.ip_permissions[0];
        r.is_egress() == Some(false)
            && r.ip_protocol() == Some(p.ip_protocol.as_str())
            && r.from_port() == Some(p.from_port)
            && r.to_port() == Some(p.to_port)
            && r.referenced_group_info().and_then(|g| g.group_id()) == Some(self.group_id.as_str())
    }
}

fn filter(name: &str, values: &[String]) -> t::Filter {
    t::Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

/// The rules of these groups (every page), read once a run.
async fn rules_of(
    ctx: &Ctx,
    groups: &[String],
) -> Result<std::sync::Arc<Vec<t::SecurityGroupRule>>> {
    ctx.once(format!("sg-rules:{}", groups.join(",")), || async {
        let mut pages = ctx
            .aws
            .ec2
            .describe_security_group_rules()
            .filters(filter("group-id", groups))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("EC2 DescribeSecurityGroupRules", groups.join(",")))?;
            out.extend(page.security_group_rules().iter().cloned());
        }
        Ok(out)
    })
    .await
}

fn tags(r: &t::SecurityGroupRule) -> impl Iterator<Item = (&str, &str)> + Clone {
    r.tags()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
}

impl Kind for IngressRule {
    const KIND: &'static str = "security group rule";
    const PLURAL: &'static str = "securityGroupIngress";
    const DEPENDS_ON: &'static [&'static str] = &[super::security_group::SecurityGroup::KIND];

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        if self.group_id == PENDING {
            return Ok(Observed::Absent);
        }
        let rules = rules_of(ctx, std::slice::from_ref(&self.group_id)).await?;
        let Some(r) = rules.iter().find(|r| self.is(r)) else {
            return Ok(Observed::Absent);
        };
        if !ctx.owns(tags(r)) {
            return Ok(Observed::Foreign(ctx.why_not(tags(r))));
        }
        let mut have = self.clone();
        have.tag_specifications[0].tags = super::keep_kv_tags(tags(r), self.tags());
        have.rule_id = r.security_group_rule_id().map(str::to_owned);
        Ok(Observed::Present(have))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        if self.group_id == PENDING {
            return Err(DeployError::Internal(format!(
                "rule {} planned before its security group",
                self.name
            )));
        }
        let p = &self.ip_permissions[0];
        let pairs = p
            .user_id_group_pairs
            .iter()
            .map(|g| {
                t::UserIdGroupPair::builder()
                    .group_id(&g.group_id)
                    .description(&g.description)
                    .build()
            })
            .collect();
        let out = ctx
            .aws
            .ec2
            .authorize_security_group_ingress()
            .group_id(&self.group_id)
            .ip_permissions(
                t::IpPermission::builder()
                    .ip_protocol(&p.ip_protocol)
                    .from_port(p.from_port)
                    .to_port(p.to_port)
                    .set_user_id_group_pairs(Some(pairs))
                    .build(),
            )
            .tag_specifications(
                t::TagSpecification::builder()
                    .resource_type(t::ResourceType::SecurityGroupRule)
                    .set_tags(Some(self.sdk_tags()))
                    .build(),
            )
            .send()
            .await;
        // Made (and tagged, in the same call) by a run that died before it said so.
        absent_on(
            out,
            &["InvalidPermission.Duplicate"],
            "EC2 AuthorizeSecurityGroupIngress",
            &self.name,
        )?;
        Ok(())
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        let Some(id) = &have.rule_id else {
            return Ok(());
        };
        ctx.aws
            .ec2
            .create_tags()
            .resources(id)
            .set_tags(Some(self.sdk_tags()))
            .send()
            .await
            .map_err(failed("EC2 CreateTags", &self.name))?;
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, _wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        // The stack's groups, then their rules that carry the stack's tag.
        let groups: Vec<(String, String)> = super::security_group::owned_groups(ctx)
            .await?
            .into_iter()
            .map(|o| (o.handle, o.name))
            .collect();
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = groups.iter().map(|(id, _)| id.clone()).collect();
        let rules = rules_of(ctx, &ids).await?;
        Ok(rules
            .iter()
            .filter(|r| r.is_egress() == Some(false) && ctx.owns(tags(r)))
            .filter_map(|r| {
                let group = r.group_id()?;
                let (_, group_name) = groups.iter().find(|(id, _)| id == group)?;
                let port = u16::try_from(r.from_port()?).ok()?;
                Some(Owned {
                    name: name(group_name, r.ip_protocol()?, port),
                    handle: format!("{group} {}", r.security_group_rule_id()?),
                })
            })
            .collect())
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let (group, rule) = owned.handle.split_once(' ').unwrap_or((&owned.handle, ""));
        let out = ctx
            .aws
            .ec2
            .revoke_security_group_ingress()
            .group_id(group)
            .security_group_rule_ids(rule)
            .send()
            .await;
        absent_on(
            out,
            &[
                "InvalidGroup.NotFound",
                "InvalidSecurityGroupRuleId.NotFound",
                "InvalidPermission.NotFound",
            ],
            "EC2 RevokeSecurityGroupIngress",
            &owned.name,
        )?;
        Ok(())
    }
}
