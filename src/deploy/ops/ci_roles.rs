//! The CI roles in IAM: made, or brought to their trust and policies; what is not the
//! stack's is never changed.

use serde_json::Value;

use super::ci::{CI_TAG, ROLE_PATH};
use crate::deploy::engine::error::{absent_on, failed, DeployError, Result};
use crate::deploy::engine::Ctx;
use crate::deploy::naming;
use crate::deploy::stack::Stack;

/// A managed policy's name: the role's and a hash of its text, so a new text is a new
/// policy (IAM keeps at most five versions of one: naming by content needs none).
fn policy_name(role: &str, doc: &Value) -> String {
    let hash = naming::short_hash(&doc.to_string());
    format!("{role}-{}", &hash[..8])
}

/// The tag that makes a CI role, its policies and the provider it made the stack's.
pub fn ci_tag(stack: &str) -> Result<aws_sdk_iam::types::Tag> {
    aws_sdk_iam::types::Tag::builder()
        .key(CI_TAG)
        .value(stack)
        .build()
        .map_err(DeployError::request("the CI tag"))
}

/// One role: made with `trust`, or its trust brought to it; `policies` attached, what
/// it had of its own before detached and deleted. Each change said on stderr first.
pub async fn ensure_role(
    ctx: &Ctx,
    stack: &Stack,
    role: &str,
    trust: &Value,
    policies: &[Value],
    said: &mut Vec<String>,
) -> Result<()> {
    let iam = &ctx.aws.iam;
    let have = iam.get_role().role_name(role).send().await;
    match absent_on(have, &["NoSuchEntity"], "IAM GetRole", role)? {
        None => {
            eprintln!("+ create IAM role {ROLE_PATH}{role}");
            iam.create_role()
                .role_name(role)
                .path(ROLE_PATH)
                .assume_role_policy_document(trust.to_string())
                .description("bosun-deploy ci github: assumed by GitHub Actions")
                .tags(ci_tag(&stack.stack)?)
                .send()
                .await
                .map_err(failed("IAM CreateRole", role))?;
        }
        Some(out) => {
            let r = out.role();
            let ours = r.is_some_and(|r| {
                r.tags()
                    .iter()
                    .any(|t| t.key() == CI_TAG && t.value() == stack.stack)
                    && r.path() == ROLE_PATH
            });
            if !ours {
                return Err(DeployError::NotOwned {
                    kind: "IAM role",
                    name: role.to_owned(),
                    why: format!("no {CI_TAG}={} tag under {ROLE_PATH}", stack.stack),
                });
            }
            let current = r
                .and_then(|r| r.assume_role_policy_document())
                .map(crate::deploy::resources::policy_json);
            if current.as_ref() != Some(trust) {
                eprintln!("~ update IAM role {role}: its trust policy");
                iam.update_assume_role_policy()
                    .role_name(role)
                    .policy_document(trust.to_string())
                    .send()
                    .await
                    .map_err(failed("IAM UpdateAssumeRolePolicy", role))?;
            }
        }
    }
    let attached = iam
        .list_attached_role_policies()
        .role_name(role)
        .path_prefix(ROLE_PATH)
        .send()
        .await
        .map_err(failed("IAM ListAttachedRolePolicies", role))?;
    let attached: Vec<(String, String)> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| Some((p.policy_name()?.to_owned(), p.policy_arn()?.to_owned())))
        .filter(|(n, _)| n.starts_with(&format!("{role}-")))
        .collect();
    let account = &ctx.account;
    let mut want = Vec::new();
    for doc in policies {
        let name = policy_name(role, doc);
        let arn = format!("arn:aws:iam::{account}:policy{ROLE_PATH}{name}");
        want.push(name.clone());
        if attached.iter().any(|(n, _)| *n == name) {
            continue;
        }
        eprintln!("+ attach policy {name} to IAM role {role}");
        let made = iam
            .create_policy()
            .policy_name(&name)
            .path(ROLE_PATH)
            .policy_document(doc.to_string())
            .description(format!("bosun-deploy: what {role} may do"))
            .tags(ci_tag(&stack.stack)?)
            .send()
            .await;
        // Made by a run that stopped before attaching it: the same name is the same
        // text.
        absent_on(made, &["EntityAlreadyExists"], "IAM CreatePolicy", &name)?;
        iam.attach_role_policy()
            .role_name(role)
            .policy_arn(&arn)
            .send()
            .await
            .map_err(failed("IAM AttachRolePolicy", role))?;
    }
    for (name, arn) in attached.iter().filter(|(n, _)| !want.contains(n)) {
        eprintln!("- detach and delete policy {name} of IAM role {role}");
        iam.detach_role_policy()
            .role_name(role)
            .policy_arn(arn)
            .send()
            .await
            .map_err(failed("IAM DetachRolePolicy", role))?;
        let gone = iam.delete_policy().policy_arn(arn).send().await;
        absent_on(gone, &["NoSuchEntity"], "IAM DeletePolicy", name)?;
    }
    said.push(format!("arn:aws:iam::{account}:role{ROLE_PATH}{role}"));
    Ok(())
}

/// After `delete`: the stack's CI roles and their policies go too, unless the caller
/// is one of them (the deploy policy may not change its own role, by design: it is
/// left, and said). A role another made of that name is not the stack's and stays.
pub async fn remove_roles(ctx: &Ctx, stack: &Stack) -> Result<()> {
    let (deploy, diff) = super::ci::role_names(stack);
    let caller = ctx
        .aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(failed("STS GetCallerIdentity", "the caller"))?;
    let caller = caller.arn().unwrap_or_default().to_owned();
    let iam = &ctx.aws.iam;
    for role in [deploy, diff] {
        let have = iam.get_role().role_name(&role).send().await;
        let have = match absent_on(have, &["NoSuchEntity"], "IAM GetRole", &role) {
            Ok(h) => h,
            // The deploy role itself may not read the CI roles.
            Err(e) if e.code().is_some_and(|c| c.starts_with("AccessDenied")) => {
                eprintln!("bosun-deploy: CI role {role} not checked: the caller may not read it (run `delete` as an administrator to remove the CI roles)");
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(r) = have.as_ref().and_then(|o| o.role()) else {
            continue;
        };
        let ours = r.path() == ROLE_PATH
            && r.tags()
                .iter()
                .any(|t| t.key() == CI_TAG && t.value() == stack.stack);
        if !ours {
            continue;
        }
        if caller.contains(&format!(":assumed-role/{role}/")) {
            eprintln!("bosun-deploy: CI role {role} left: it is the role this delete runs as (delete again as an administrator to remove it)");
            continue;
        }
        eprintln!("- delete IAM role {ROLE_PATH}{role} and its policies (bosun-deploy ci github made them)");
        let attached = iam
            .list_attached_role_policies()
            .role_name(&role)
            .send()
            .await
            .map_err(failed("IAM ListAttachedRolePolicies", &role))?;
        for p in attached.attached_policies() {
            let (Some(name), Some(arn)) = (p.policy_name(), p.policy_arn()) else {
                continue;
            };
            iam.detach_role_policy()
                .role_name(&role)
                .policy_arn(arn)
                .send()
                .await
                .map_err(failed("IAM DetachRolePolicy", &role))?;
            // Only the policies `ci github` made (its path, the role's name).
            if arn.contains(&format!(":policy{ROLE_PATH}")) && name.starts_with(&format!("{role}-"))
            {
                let gone = iam.delete_policy().policy_arn(arn).send().await;
                absent_on(gone, &["NoSuchEntity"], "IAM DeletePolicy", name)?;
            }
        }
        let gone = iam.delete_role().role_name(&role).send().await;
        absent_on(gone, &["NoSuchEntity"], "IAM DeleteRole", &role)?;
    }
    Ok(())
}
