//! IAM instance profiles (under the stack's IAM path), each holding the one role the
//! stack's EC2 instances run with (the ECS agent's permissions).

use std::collections::BTreeSet;

use serde::Serialize;

use super::role::sdk_tags;
use super::KvTag;
use crate::deploy::engine::error::{absent_on, failed, Result};
use crate::deploy::engine::{keep_owned, Ctx, Kind, Observed, Owned};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceProfile {
    pub instance_profile_name: String,
    pub path: String,
    /// The role in it (an instance profile holds at most one).
    pub role_name: String,
    pub tags: Vec<KvTag>,
}

/// The ARN of the stack's instance profile `name`.
pub fn arn(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:instance-profile{path}{name}")
}

impl InstanceProfile {
    async fn set_role(&self, have: Option<&str>, ctx: &Ctx) -> Result<()> {
        let name = &self.instance_profile_name;
        if let Some(old) = have {
            ctx.aws
                .iam
                .remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(old)
                .send()
                .await
                .map_err(failed("IAM RemoveRoleFromInstanceProfile", name))?;
        }
        ctx.aws
            .iam
            .add_role_to_instance_profile()
            .instance_profile_name(name)
            .role_name(&self.role_name)
            .send()
            .await
            .map_err(failed("IAM AddRoleToInstanceProfile", name))?;
        Ok(())
    }
}

impl Kind for InstanceProfile {
    const KIND: &'static str = "IAM instance profile";
    const PLURAL: &'static str = "instanceProfiles";
    const DEPENDS_ON: &'static [&'static str] = &[super::role::Role::KIND];

    fn name(&self) -> String {
        self.instance_profile_name.clone()
    }

    /// Deleting it needs the role it holds (taken out first).
    fn owned(&self) -> Owned {
        Owned {
            name: self.instance_profile_name.clone(),
            handle: self.role_name.clone(),
        }
    }

    /// IAM has no call that changes an instance profile's path (IAM API reference,
    /// CreateInstanceProfile; there is no UpdateInstanceProfile): another path is
    /// another profile.
    fn replace_reason(&self, have: &Self) -> Option<String> {
        (self.path != have.path)
            .then(|| "Path: IAM cannot move an instance profile to another path".to_owned())
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let name = &self.instance_profile_name;
        let out = ctx
            .aws
            .iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await;
        let Some(out) = absent_on(out, &["NoSuchEntity"], "IAM GetInstanceProfile", name)? else {
            return Ok(Observed::Absent);
        };
        let Some(p) = out.instance_profile() else {
            return Ok(Observed::Absent);
        };
        let tags = p.tags().iter().map(|t| (t.key(), t.value()));
        if !ctx.owns(tags.clone()) {
            return Ok(Observed::Foreign(ctx.why_not(tags)));
        }
        Ok(Observed::Present(InstanceProfile {
            instance_profile_name: p.instance_profile_name().to_owned(),
            path: p.path().to_owned(),
            role_name: p
                .roles()
                .first()
                .map(|r| r.role_name().to_owned())
                .unwrap_or_default(),
            tags: super::keep_kv_tags(tags, &self.tags),
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let name = &self.instance_profile_name;
        let out = ctx
            .aws
            .iam
            .create_instance_profile()
            .instance_profile_name(name)
            .path(&self.path)
            .set_tags(Some(sdk_tags(&self.tags)))
            .send()
            .await;
        // Made by an apply that stopped before adding the role: go on from there.
        absent_on(
            out,
            &["EntityAlreadyExists"],
            "IAM CreateInstanceProfile",
            name,
        )?;
        self.set_role(None, ctx).await
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        let name = &self.instance_profile_name;
        if self.role_name != have.role_name {
            self.set_role(
                Some(&have.role_name)
                    .filter(|r| !r.is_empty())
                    .map(String::as_str),
                ctx,
            )
            .await?;
        }
        if self.tags != have.tags {
            ctx.aws
                .iam
                .tag_instance_profile()
                .instance_profile_name(name)
                .set_tags(Some(sdk_tags(&self.tags)))
                .send()
                .await
                .map_err(failed("IAM TagInstanceProfile", name))?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let path = crate::deploy::naming::role_path(&ctx.stack);
        let mut pages = ctx
            .aws
            .iam
            .list_instance_profiles()
            .path_prefix(&path)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("IAM ListInstanceProfiles", &path))?;
            found.extend(page.instance_profiles().iter().map(|p| {
                let roles: Vec<&str> = p.roles().iter().map(|r| r.role_name()).collect();
                (p.instance_profile_name().to_owned(), roles.join(","))
            }));
        }
        keep_owned(found, wanted, |name, _| async move {
            let out = ctx
                .aws
                .iam
                .get_instance_profile()
                .instance_profile_name(&name)
                .send()
                .await;
            Ok(
                absent_on(out, &["NoSuchEntity"], "IAM GetInstanceProfile", &name)?
                    .and_then(|o| o.instance_profile)
                    .is_some_and(|p| ctx.owns(p.tags().iter().map(|t| (t.key(), t.value())))),
            )
        })
        .await
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        // IAM refuses to delete a profile that still holds a role.
        for role in owned.handle.split(',').filter(|r| !r.is_empty()) {
            let out = ctx
                .aws
                .iam
                .remove_role_from_instance_profile()
                .instance_profile_name(&owned.name)
                .role_name(role)
                .send()
                .await;
            absent_on(
                out,
                &["NoSuchEntity"],
                "IAM RemoveRoleFromInstanceProfile",
                &owned.name,
            )?;
        }
        let out = ctx
            .aws
            .iam
            .delete_instance_profile()
            .instance_profile_name(&owned.name)
            .send()
            .await;
        absent_on(
            out,
            &["NoSuchEntity"],
            "IAM DeleteInstanceProfile",
            &owned.name,
        )?;
        Ok(())
    }
}
