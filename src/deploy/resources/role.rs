//! IAM roles (under the path `/bosun/{stack}/`) with their one inline policy, `bosun`.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::KvTag;
use crate::deploy::engine::error::{absent_on, failed, Result};
use crate::deploy::engine::{keep_owned, Ctx, Kind, Observed, Owned};

/// The name of the inline policy bosun-deploy writes.
pub const POLICY_NAME: &str = "bosun";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Role {
    pub role_name: String,
    pub path: String,
    pub assume_role_policy_document: Value,
    pub tags: Vec<KvTag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    /// IAM rejects a policy without statements: a role that needs nothing has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_document: Option<Value>,
}

/// Tags as IAM takes them (roles and instance profiles).
pub(crate) fn sdk_tags(t: &[KvTag]) -> Vec<aws_sdk_iam::types::Tag> {
    t.iter()
        .filter_map(|t| {
            aws_sdk_iam::types::Tag::builder()
                .key(&t.key)
                .value(&t.value)
                .build()
                .ok()
        })
        .collect()
}

impl Kind for Role {
    const KIND: &'static str = "IAM role";
    const PLURAL: &'static str = "roles";

    fn name(&self) -> String {
        self.role_name.clone()
    }

    /// IAM has no call that changes a role's path (UpdateRole sets its description
    /// and session length; IAM API reference, UpdateRole): another path is another
    /// role.
    fn replace_reason(&self, have: &Self) -> Option<String> {
        (self.path != have.path).then(|| "Path: IAM cannot move a role to another path".to_owned())
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let name = &self.role_name;
        let role = ctx.aws.iam.get_role().role_name(name).send();
        let policy = ctx
            .aws
            .iam
            .get_role_policy()
            .role_name(name)
            .policy_name(POLICY_NAME)
            .send();
        let (role, policy) = futures_util::join!(role, policy);
        let Some(role) = absent_on(role, &["NoSuchEntity"], "IAM GetRole", name)? else {
            return Ok(Observed::Absent);
        };
        let Some(role) = role.role() else {
            return Ok(Observed::Absent);
        };
        let tags = role.tags().iter().map(|t| (t.key(), t.value()));
        if !ctx.owns(tags.clone()) {
            return Ok(Observed::Foreign(ctx.why_not(tags)));
        }
        let policy = absent_on(policy, &["NoSuchEntity"], "IAM GetRolePolicy", name)?;
        let document = policy.map(|p| super::policy_json(p.policy_document()));
        Ok(Observed::Present(Role {
            role_name: role.role_name().to_owned(),
            path: role.path().to_owned(),
            assume_role_policy_document: role
                .assume_role_policy_document()
                .map(super::policy_json)
                .unwrap_or(Value::Null),
            tags: super::keep_kv_tags(tags, &self.tags),
            policy_name: document.as_ref().map(|_| POLICY_NAME.to_owned()),
            policy_document: document,
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let name = &self.role_name;
        let created = ctx
            .aws
            .iam
            .create_role()
            .role_name(name)
            .path(&self.path)
            .assume_role_policy_document(self.assume_role_policy_document.to_string())
            .set_tags(Some(sdk_tags(&self.tags)))
            .send()
            .await;
        // A create that went through before a crash: the role is there (with our tag,
        // set in the same call); go on to its policy.
        match absent_on(created, &["EntityAlreadyExists"], "IAM CreateRole", name)? {
            Some(_) => {}
            None => {
                if !matches!(self.read(ctx).await?, Observed::Present(_)) {
                    return Err(crate::deploy::engine::error::DeployError::NotOwned {
                        kind: Self::KIND,
                        name: name.clone(),
                        why: "created meanwhile by someone else".into(),
                    });
                }
            }
        }
        self.put_policy(ctx).await
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        let name = &self.role_name;
        if self.assume_role_policy_document != have.assume_role_policy_document {
            ctx.aws
                .iam
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(self.assume_role_policy_document.to_string())
                .send()
                .await
                .map_err(failed("IAM UpdateAssumeRolePolicy", name))?;
        }
        if self.tags != have.tags {
            ctx.aws
                .iam
                .tag_role()
                .role_name(name)
                .set_tags(Some(sdk_tags(&self.tags)))
                .send()
                .await
                .map_err(failed("IAM TagRole", name))?;
        }
        if self.policy_name != have.policy_name || self.policy_document != have.policy_document {
            if self.policy_document.is_none() && have.policy_document.is_some() {
                ctx.aws
                    .iam
                    .delete_role_policy()
                    .role_name(name)
                    .policy_name(POLICY_NAME)
                    .send()
                    .await
                    .map_err(failed("IAM DeleteRolePolicy", name))?;
            }
            self.put_policy(ctx).await?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let path = crate::deploy::naming::role_path(&ctx.stack);
        let mut pages = ctx
            .aws
            .iam
            .list_roles()
            .path_prefix(&path)
            .into_paginator()
            .send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("IAM ListRoles", &path))?;
            names.extend(
                page.roles()
                    .iter()
                    .filter(|r| r.path() == path)
                    .map(|r| r.role_name().to_owned()),
            );
        }
        // ListRoles does not return tags: each one's own say, from GetRole.
        let candidates = names.into_iter().map(|n| (n, String::new()));
        keep_owned(candidates, wanted, |name, _| async move {
            let role = ctx.aws.iam.get_role().role_name(&name).send().await;
            let role = absent_on(role, &["NoSuchEntity"], "IAM GetRole", &name)?;
            Ok(role
                .and_then(|r| r.role)
                .is_some_and(|r| ctx.owns(r.tags().iter().map(|t| (t.key(), t.value())))))
        })
        .await
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let name = &owned.name;
        let mut pages = ctx
            .aws
            .iam
            .list_role_policies()
            .role_name(name)
            .into_paginator()
            .send();
        let mut policies = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("IAM ListRolePolicies", name))?;
            policies.extend(page.policy_names().iter().cloned());
        }
        for p in policies {
            ctx.aws
                .iam
                .delete_role_policy()
                .role_name(name)
                .policy_name(&p)
                .send()
                .await
                .map_err(failed("IAM DeleteRolePolicy", name))?;
        }
        let out = ctx.aws.iam.delete_role().role_name(name).send().await;
        absent_on(out, &["NoSuchEntity"], "IAM DeleteRole", name)?;
        Ok(())
    }
}

impl Role {
    async fn put_policy(&self, ctx: &Ctx) -> Result<()> {
        let Some(doc) = &self.policy_document else {
            return Ok(());
        };
        ctx.aws
            .iam
            .put_role_policy()
            .role_name(&self.role_name)
            .policy_name(POLICY_NAME)
            .policy_document(doc.to_string())
            .send()
            .await
            .map_err(failed("IAM PutRolePolicy", &self.role_name))?;
        Ok(())
    }
}
