//! `rollback SERVICE [--to REVISION]`: the service back on the revision of its task
//! definition it ran before the current one (or the one given, of its own family),
//! under the stack's lock; then the wait for the deployment, as apply waits.

use std::time::Duration;

use super::verbs::{connect_to_change, Safety};
use super::{lock, runnable, wait, Runs};
use crate::deploy::engine::error::{exit, failed, DeployError, Result};
use crate::deploy::engine::Ctx;
use crate::deploy::naming;
use crate::deploy::resources::service;
use crate::deploy::resources::task_definition::{self, family_of, revision_of};
use crate::deploy::stack::Stack;

/// Which revision `--to` names: `N`, `FAMILY:N` or a task definition ARN; refused
/// when it is of another family.
pub fn wanted_revision(family: &str, to: &str) -> Result<u64> {
    let tail = to.rsplit('/').next().unwrap_or(to);
    let (fam, rev) = match tail.rsplit_once(':') {
        Some((f, r)) => (Some(f), r),
        None => (None, tail),
    };
    if let Some(f) = fam.filter(|f| *f != family) {
        return Err(DeployError::Usage(format!(
            "--to {to}: a revision of {f}, not of the service's own family {family}"
        )));
    }
    rev.parse::<u64>().ok().filter(|r| *r > 0).ok_or_else(|| {
        DeployError::Usage(format!(
            "--to {to}: not a revision (N, {family}:N, or its task definition's ARN)"
        ))
    })
}

/// `rollback`.
pub async fn rollback(
    stack: &Stack,
    name: &str,
    to: Option<&str>,
    wait_for: Option<Duration>,
    safety: &Safety,
) -> Result<u8> {
    runnable(stack, name, Runs::Service)?;
    let family = naming::family(&stack.stack, name);
    let wanted = to.map(|t| wanted_revision(&family, t)).transpose()?;
    let (interrupts, ctx) = connect_to_change(stack, safety).await?;
    let slot = lock::Slot::new("rollback", safety.wait_lock);
    let work = async {
        // What to go back to is settled before the lock (a refusal changes nothing,
        // not even the lock), then again under it.
        let (current, target) = plan(&ctx, stack, name, &family, wanted).await?;
        let show = |arn: &str| arn.rsplit('/').next().unwrap_or(arn).to_owned();
        if target == current {
            println!(
                "{family} already runs {}: nothing to roll back",
                show(&current)
            );
            return Ok(exit::OK);
        }
        slot.take(&ctx).await?;
        ctx.forget_reads();
        let (current, target) = plan(&ctx, stack, name, &family, wanted).await?;
        if target == current {
            println!(
                "{family} already runs {}: nothing to roll back",
                show(&current)
            );
            return Ok(exit::OK);
        }
        println!(
            "~ service {family}\n    taskDefinition: {} -> {}",
            show(&current),
            show(&target)
        );
        ctx.aws
            .ecs
            .update_service()
            .cluster(&stack.cluster)
            .service(&family)
            .task_definition(&target)
            .send()
            .await
            .map_err(failed("ECS UpdateService", &family))?;
        if let Some(timeout) = wait_for {
            wait::wait_services(
                &ctx.aws,
                &[(stack.cluster.clone(), family.clone())],
                timeout,
            )
            .await?;
        }
        println!(
            "rolled back: {family} runs {}. The file now differs from what runs (bosun-deploy diff shows it); the next apply rolls forward again.",
            show(&target)
        );
        Ok(exit::OK)
    };
    slot.run(&ctx, &interrupts, work).await
}

/// The service's current revision and the one to go back to (the stack's own).
async fn plan(
    ctx: &Ctx,
    stack: &Stack,
    name: &str,
    family: &str,
    wanted: Option<u64>,
) -> Result<(String, String)> {
    let Some(svc) = service::describe_owned(ctx, family).await? else {
        return Err(DeployError::Refused(format!(
            "{name} is not deployed (no service {family} in cluster {}): nothing to roll back",
            stack.cluster
        )));
    };
    let mut current = svc.task_definition().unwrap_or_default().to_owned();
    // AWS answers the revision's ARN; an emulator may echo the bare family it was
    // given, which is its latest revision.
    if revision_of(&current) == 0 {
        if let Some(latest) = task_definition::latest_revision(ctx, family).await? {
            current = latest;
        }
    }
    let target = choose(ctx, family, &current, wanted).await?;
    if target != current {
        task_definition::describe_owned(ctx, &target).await?;
    }
    Ok((current, target))
}

/// The revision to go back to: the one asked (it must be active), else the newest
/// active revision older than the current one.
async fn choose(ctx: &Ctx, family: &str, current: &str, wanted: Option<u64>) -> Result<String> {
    if family_of(current) != family {
        return Err(DeployError::Refused(format!(
            "service {family} runs {current}, of another family: bosun-deploy does not roll it back"
        )));
    }
    let active = task_definition::active_revisions(ctx, family).await?;
    let now = revision_of(current);
    let pick = match wanted {
        Some(w) => active
            .iter()
            .find(|a| revision_of(a) == w)
            .cloned()
            .ok_or_else(|| {
                DeployError::Refused(format!(
                    "{family}:{w} is not an active revision (active: {})",
                    list(&active)
                ))
            })?,
        None => active
            .iter()
            .rev()
            .find(|a| revision_of(a) < now)
            .cloned()
            .ok_or_else(|| {
                DeployError::Refused(format!(
                    "{family} runs revision {now}, and no active revision is older (active: {})",
                    list(&active)
                ))
            })?,
    };
    Ok(pick)
}

fn list(arns: &[String]) -> String {
    if arns.is_empty() {
        return "none".into();
    }
    arns.iter()
        .map(|a| revision_of(a).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_takes_a_revision_of_the_family_only() {
        assert_eq!(wanted_revision("s-w", "3").unwrap(), 3);
        assert_eq!(wanted_revision("s-w", "s-w:4").unwrap(), 4);
        assert_eq!(
            wanted_revision("s-w", "arn:aws:ecs:us-east-1:1:task-definition/s-w:5").unwrap(),
            5
        );
        let e = wanted_revision("s-w", "other:2").unwrap_err().to_string();
        assert!(
            e.contains("a revision of other, not of the service's own family s-w"),
            "{e}"
        );
        assert!(wanted_revision("s-w", "0").is_err());
        assert!(wanted_revision("s-w", "latest").is_err());
    }
}
