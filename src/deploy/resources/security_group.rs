//! The stack's own security group for its tasks (`{stack}-tasks`), made when the file
//! gives no `network` and the tasks run in the region's default VPC, or beside the
//! file's groups when services have ports. Everything out; in, only the rules the
//! stack adds ([`super::ingress_rule`]): its own tasks, on its services' ports.
//!
//! A security group made by CreateSecurityGroup in a VPC has one outbound rule that
//! allows all traffic and no inbound rule (Amazon VPC User Guide, "Security group
//! rules": "Default security group rules" / "When you create a security group, it has
//! no inbound rules ... it has an outbound rule that allows all outbound traffic").

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use serde::Serialize;

use crate::deploy::engine::error::{absent_on, failed, DeployError, Result};
use crate::deploy::engine::{Ctx, Kind, Observed, Owned};

/// What `render` and a plan before the first apply show where the group's id goes.
pub const PENDING: &str = "(the stack's security group, made by apply)";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityGroup {
    pub group_name: String,
    pub description: String,
    pub vpc_id: String,
    pub tags: BTreeMap<String, String>,
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The group named `name` in `vpc`: (id, tags).
pub async fn find(
    ctx: &Ctx,
    vpc: &str,
    name: &str,
) -> Result<Option<(String, BTreeMap<String, String>)>> {
    let out = ctx
        .aws
        .ec2
        .describe_security_groups()
        .filters(filter("vpc-id", vpc))
        .filters(filter("group-name", name))
        .send()
        .await
        .map_err(failed("EC2 DescribeSecurityGroups", name))?;
    Ok(out.security_groups().first().map(|g| {
        (
            g.group_id().unwrap_or_default().to_owned(),
            g.tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect(),
        )
    }))
}

/// The stack's groups, in any VPC (name, and id as the handle): only groups tagged
/// with the stack are candidates, and the tag filter is the ownership check.
pub async fn owned_groups(ctx: &Ctx) -> Result<Vec<Owned>> {
    let mut pages = ctx
        .aws
        .ec2
        .describe_security_groups()
        .filters(filter(
            &format!("tag:{}", crate::deploy::naming::STACK_TAG),
            &ctx.stack,
        ))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(failed("EC2 DescribeSecurityGroups", &ctx.stack))?;
        for g in page.security_groups() {
            if let (Some(name), Some(id)) = (g.group_name(), g.group_id()) {
                out.push(Owned {
                    name: name.to_owned(),
                    handle: id.to_owned(),
                });
            }
        }
    }
    Ok(out)
}

impl Kind for SecurityGroup {
    const KIND: &'static str = "security group";
    const PLURAL: &'static str = "securityGroups";

    fn name(&self) -> String {
        self.group_name.clone()
    }

    fn replace_reason(&self, have: &Self) -> Option<String> {
        // Neither can change on a group (CreateSecurityGroup sets both).
        if self.vpc_id != have.vpc_id {
            return Some(format!("vpc: {} → {}", have.vpc_id, self.vpc_id));
        }
        (self.description != have.description).then(|| "description".into())
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let Some((_, tags)) = find(ctx, &self.vpc_id, &self.group_name).await? else {
            return Ok(Observed::Absent);
        };
        let it = tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        if !ctx.owns(it.clone()) {
            return Ok(Observed::Foreign(ctx.why_not(it)));
        }
        let want: Vec<(String, String)> = self.tags.clone().into_iter().collect();
        Ok(Observed::Present(SecurityGroup {
            tags: super::keep_tags(it, &want).into_iter().collect(),
            ..self.clone()
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::SecurityGroup)
            .set_tags(Some(self.ec2_tags()))
            .build();
        let out = ctx
            .aws
            .ec2
            .create_security_group()
            .group_name(&self.group_name)
            .description(&self.description)
            .vpc_id(&self.vpc_id)
            .tag_specifications(tags)
            .send()
            .await;
        // Made (and tagged, in the same call) by a run that died before it said so.
        absent_on(
            out,
            &["InvalidGroup.Duplicate"],
            "EC2 CreateSecurityGroup",
            &self.group_name,
        )?;
        Ok(())
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        if self.tags == have.tags {
            return Ok(());
        }
        let Some((id, _)) = find(ctx, &self.vpc_id, &self.group_name).await? else {
            return Err(DeployError::Internal(format!(
                "security group {} vanished",
                self.group_name
            )));
        };
        ctx.aws
            .ec2
            .create_tags()
            .resources(&id)
            .set_tags(Some(self.ec2_tags()))
            .send()
            .await
            .map_err(failed("EC2 CreateTags", &self.group_name))?;
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, _wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        owned_groups(ctx).await
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        // The network interfaces of tasks that just stopped hold the group for a few
        // minutes after their service is gone: DeleteSecurityGroup answers
        // DependencyViolation until they are released (Amazon VPC User Guide,
        // "Delete a security group": it cannot be deleted while associated with a
        // network interface). Wait for them, bounded; a second run finishes the job.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        loop {
            let out = ctx
                .aws
                .ec2
                .delete_security_group()
                .group_id(&owned.handle)
                .send()
                .await;
            match out {
                Err(e)
                    if crate::deploy::engine::error::code_of(&e) == "DependencyViolation"
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_secs(15)).await;
                }
                out => {
                    absent_on(
                        out,
                        &["InvalidGroup.NotFound"],
                        "EC2 DeleteSecurityGroup",
                        &owned.name,
                    )?;
                    return Ok(());
                }
            }
        }
    }
}

impl SecurityGroup {
    fn ec2_tags(&self) -> Vec<Tag> {
        self.tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect()
    }
}
