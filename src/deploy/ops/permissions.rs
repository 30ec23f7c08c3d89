//! Before any change: whether the caller may make the calls a run needs, asked of
//! IAM's policy simulator (IAM API Reference, SimulatePrincipalPolicy: the caller's
//! identity policies, permissions boundary and the organization's service control
//! policies, each action on each resource) where the caller may ask it. What it says
//! is denied stops the run before its first mutating call, naming each action and
//! resource; a caller that may not simulate, or a simulator that cannot decide (a
//! condition of the caller's own policies whose value the request alone would carry),
//! leaves the check to AWS's answers to the calls themselves.

use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum};

use crate::deploy::engine::error::{DeployError, Result};
use crate::deploy::engine::{bounded, Ctx};
use crate::deploy::resources::access::{Grant, When};
use crate::deploy::stack::Stack;

/// What a run is to be checked for: the grants it needs, and the names of the
/// stack's CI roles (an assumed one's path is known).
pub struct Check {
    grants: Vec<Grant>,
    ci_roles: (String, String),
}

impl Check {
    /// What `apply` (or, `deleting`, `delete`) of `stack` needs.
    pub fn new(stack: &Stack, ctx: &Ctx, deleting: bool) -> Check {
        let needs = super::policy::needs(stack, &ctx.at());
        Check {
            grants: needs
                .grants
                .into_iter()
                .map(|(_, g)| g)
                .filter(|g| !deleting || g.when == When::Always)
                .collect(),
            ci_roles: super::ci::role_names(stack),
        }
    }
}

/// Ask the simulator, once a run, just before its first change (the lock is taken
/// first: [`super::lock::Slot::take`]), so a run that changes nothing asks nothing.
pub async fn check(ctx: &Ctx, c: &Check) -> Result<()> {
    let Some(source) = principal(ctx, &c.ci_roles).await else {
        return Ok(());
    };
    let grants: Vec<&Grant> = c.grants.iter().collect();
    let Some((first, rest)) = grants.split_first() else {
        return Ok(());
    };
    // One call first: a caller that may not simulate is not asked again.
    let Some(mut denied) = simulate(ctx, &source, first).await else {
        return Ok(());
    };
    let answers = bounded(
        rest.iter()
            .map(|g| async { Ok(simulate(ctx, &source, g).await) }),
    )
    .await?;
    for a in answers {
        match a {
            Some(d) => denied.extend(d),
            None => return Ok(()),
        }
    }
    denied.sort();
    denied.dedup();
    if denied.is_empty() {
        return Ok(());
    }
    Err(DeployError::Preflight(format!(
        "the credentials ({source}) may not make {} call{} this run needs, says IAM's policy simulator; nothing was changed:\n  {}\n`bosun-deploy policy` prints the IAM policy this stack's verbs need",
        denied.len(),
        if denied.len() == 1 { "" } else { "s" },
        denied.join("\n  ")
    )))
}

/// The IAM user or role whose policies the caller holds: an assumed role's ARN with
/// its path (the CI roles' is known; another's is read, GetRole); `None` for the
/// account's root or what cannot be told.
async fn principal(ctx: &Ctx, (deploy, diff): &(String, String)) -> Option<String> {
    let me = ctx.aws.sts.get_caller_identity().send().await.ok()?;
    let arn = me.arn()?.to_owned();
    if arn.contains(":user/") {
        return Some(arn);
    }
    let role = arn
        .split(":assumed-role/")
        .nth(1)?
        .split('/')
        .next()?
        .to_owned();
    if role == *deploy || role == *diff {
        return Some(super::ci::role_arn(&ctx.at(), &role));
    }
    let got = ctx.aws.iam.get_role().role_name(&role).send().await.ok()?;
    Some(got.role()?.arn().to_owned())
}

/// The calls of one grant that the simulator denies (`action on resource`), or `None`
/// when the simulator did not answer.
async fn simulate(ctx: &Ctx, source: &str, g: &Grant) -> Option<Vec<String>> {
    let mut call = ctx
        .aws
        .iam
        .simulate_principal_policy()
        .policy_source_arn(source)
        .set_action_names(Some(g.actions.iter().map(|a| a.to_string()).collect()));
    if g.on.iter().any(|r| r != "*") {
        call = call.set_resource_arns(Some(g.on.clone()));
    }
    if let Some(c) = &g.condition {
        // The values the request will carry: the grant's own condition.
        let entry = ContextEntry::builder()
            .context_key_name(&c.key)
            .set_context_key_values(Some(c.values.clone()))
            .context_key_type(if c.values.len() == 1 {
                ContextKeyTypeEnum::String
            } else {
                ContextKeyTypeEnum::StringList
            })
            .build();
        call = call.context_entries(entry);
    }
    // Advisory: one attempt, bounded short; an error (throttling too) leaves the
    // check to the calls themselves.
    let once = aws_sdk_iam::config::Builder::default()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(std::time::Duration::from_secs(10))
                .build(),
        );
    let mut denied = Vec::new();
    let mut marker = None;
    loop {
        let out = call
            .clone()
            .set_marker(marker)
            .customize()
            .config_override(once.clone())
            .send()
            .await
            .ok()?;
        for r in out.evaluation_results() {
            let per_resource = r.resource_specific_results();
            let decisions: Vec<(&str, &str, bool)> = if per_resource.is_empty() {
                vec![(
                    r.eval_resource_name().unwrap_or("*"),
                    r.eval_decision().as_str(),
                    !r.missing_context_values().is_empty(),
                )]
            } else {
                per_resource
                    .iter()
                    .map(|p| {
                        (
                            p.eval_resource_name(),
                            p.eval_resource_decision().as_str(),
                            !p.missing_context_values().is_empty(),
                        )
                    })
                    .collect()
            };
            for (resource, decision, undecided) in decisions {
                // A condition the simulator had no value for: it cannot tell.
                if decision != "allowed" && !undecided {
                    denied.push(format!(
                        "{} on {resource} ({decision})",
                        r.eval_action_name()
                    ));
                }
            }
        }
        if !out.is_truncated() {
            break;
        }
        marker = out.marker().map(str::to_owned);
    }
    Some(denied)
}
