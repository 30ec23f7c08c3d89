//! `run RESOURCE --local`: the resource in the local Docker engine, as its task
//! definition runs it in ECS: the image built as apply builds it (bosun inside as
//! PID 1), the same entry point, command and environment (the `BOSUN_*` variables
//! included), its `$Secret` values read with the caller's credentials (handed to
//! Docker through its environment, never on a command line or printed), cpu and
//! memory as Docker's limits, and its stop timeout. Its exit code is `run`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::lock::Interrupts;
use super::{connect, runnable, Runs};
use crate::deploy::components::{self, ImageConfig, Target};
use crate::deploy::engine::error::{failed, DeployError, Result};
use crate::deploy::engine::{Ctx, Kind};
use crate::deploy::images::{self, build, ecr, inject, registry};
use crate::deploy::naming;
use crate::deploy::resources::Spec;
use crate::deploy::stack::directive::{directive, Directive};
use crate::deploy::stack::Stack;

/// What `run --local` was asked.
#[derive(Debug, Clone)]
pub struct LocalArgs {
    pub resource: String,
    pub env: Vec<(String, String)>,
    pub command: Vec<String>,
    pub bosun: PathBuf,
    /// Run with the task role's temporary credentials (STS AssumeRole).
    pub task_role: bool,
}

/// The account and region without AWS: the file's, the environment's, or
/// placeholders (a stack without secrets runs with no account at all).
fn offline_target(stack: &Stack) -> Target {
    Target::offline(&crate::deploy::naming::Where {
        region: super::region_of(stack).unwrap_or_else(|| "us-east-1".into()),
        account: stack
            .account
            .clone()
            .or_else(|| std::env::var("AWS_ACCOUNT_ID").ok())
            .unwrap_or_else(|| "ACCOUNT_ID".into()),
    })
}

/// `run --local`.
pub async fn run_local(file: &Path, stack: &Stack, a: &LocalArgs) -> Result<u8> {
    let res = runnable(stack, &a.resource, Runs::Any)?;
    let ctr = res
        .container()
        .ok_or_else(|| DeployError::Internal("no container".into()))?;
    if !build::engine_answers() {
        return Err(DeployError::LocalTool(
            "run --local needs the local Docker engine, and `docker info` does not answer".into(),
        ));
    }
    let needs_aws = a.task_role
        || ctr
            .environment
            .iter()
            .filter_map(|v| v.value.as_str())
            .any(|s| {
                matches!(
                    directive(s),
                    Ok(Some(Directive::Secret { .. } | Directive::Param { .. }))
                )
            });
    let ctx = if needs_aws {
        Some(connect(stack).await?)
    } else {
        None
    };
    let mut target = match &ctx {
        Some(ctx) => Target {
            region: ctx.region.clone(),
            account: ctx.account.clone(),
            ..offline_target(stack)
        },
        None => offline_target(stack),
    };
    let family = naming::family(&stack.stack, &a.resource);
    // The image, as apply builds it (not pushed: a local tag).
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if ctr.is_built() {
        let repo = format!("bosun-local/{family}");
        let bosun = build::BosunIn {
            path: &a.bosun,
            helper: stack.needs_helper(res),
        };
        let built =
            build::build(dir, &a.resource, ctr, &repo, bosun).map_err(DeployError::LocalTool)?;
        target.images.insert(a.resource.clone(), built.tag);
    } else {
        let image = ctr.packaging.properties.image.clone().unwrap_or_default();
        let cfg = local_config(&image)?;
        // An image without bosun runs with it added, as apply adds it (here through
        // the engine: `bosun-deploy inject`'s image).
        if crate::deploy::images::prebuilt::gets_bosun(ctr, &cfg) {
            let tag = format!("bosun-local/{family}:bosun");
            let helper = stack.needs_helper(res).is_some();
            inject::inject_with(&image, &tag, &a.bosun, helper).map_err(|e| {
                DeployError::LocalTool(format!("{}: adding bosun to {image}: {e}", a.resource))
            })?;
            target.images.insert(a.resource.clone(), tag);
            target.bosun_added.insert(a.resource.clone());
        }
        target.image_configs.insert(a.resource.clone(), cfg);
    }
    if let Some(ctx) = &ctx {
        let names = stack.secret_names();
        for n in names {
            if let Some(arn) = super::preflight::secret_arn(ctx, &n).await? {
                target.secrets.insert(n, arn);
            }
        }
    }
    let rendered = components::render(stack, &target);
    let def = rendered
        .nodes
        .iter()
        .find_map(|n| match &n.spec {
            Spec::TaskDefinition(d) if d.name() == family => Some(d.clone()),
            _ => None,
        })
        .ok_or_else(|| DeployError::Internal(format!("no task definition for {family}")))?;
    let c = def
        .container_definitions
        .first()
        .ok_or_else(|| DeployError::Internal(format!("{family}: no container")))?;
    // Values handed to docker through its environment (`-e NAME` takes the value
    // from there), so no secret is on a command line.
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for v in &c.environment {
        values.insert(v.name.clone(), v.value.clone());
    }
    if !c.secrets.is_empty() {
        let ctx = ctx
            .as_ref()
            .ok_or_else(|| DeployError::Internal("secrets without AWS".into()))?;
        for s in &c.secrets {
            values.insert(s.name.clone(), secret_value(ctx, &s.value_from).await?);
        }
    }
    if a.task_role {
        let ctx = ctx
            .as_ref()
            .ok_or_else(|| DeployError::Internal("task role without AWS".into()))?;
        values.extend(task_role_credentials(ctx, &def.task_role_arn).await?);
    }
    for (n, v) in &a.env {
        values.insert(n.clone(), v.clone());
    }
    let name = format!("bosun-run-{family}-{}", std::process::id());
    let mut args: Vec<String> = vec![
        "run".into(),
        "--rm".into(),
        "--name".into(),
        name.clone(),
        "--stop-timeout".into(),
        c.stop_timeout.to_string(),
    ];
    if let Some(cpu) = def.cpu.as_ref().and_then(|c| c.parse::<f64>().ok()) {
        args.push("--cpus".into());
        args.push(format!("{}", cpu / 1024.0));
    }
    if let Some(mem) = &def.memory {
        args.push("--memory".into());
        args.push(format!("{mem}m"));
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        args.push("--interactive".into());
    }
    for n in values.keys() {
        args.push("--env".into());
        args.push(n.clone());
    }
    // ECS's entryPoint and command are Docker's ENTRYPOINT and CMD; an override of
    // the command replaces CMD alone, as RunTask's container override does.
    let command = if a.command.is_empty() {
        c.command.clone()
    } else {
        a.command.clone()
    };
    if let Some((first, rest)) = c.entry_point.split_first() {
        args.push("--entrypoint".into());
        args.push(first.clone());
        args.push(c.image.clone());
        args.extend(rest.iter().cloned());
    } else {
        args.push(c.image.clone());
    }
    args.extend(command);
    eprintln!("run --local: {} as {name} ({})", a.resource, c.image);
    let interrupts = Interrupts::take()?;
    let mut docker = images::tool("docker");
    docker
        .args(&args)
        .env_clear()
        .envs(std::env::vars().filter(|(k, _)| !values.contains_key(k)))
        .envs(&values)
        .stdin(Stdio::inherit());
    let mut child = tokio::process::Command::from(docker)
        .spawn()
        .map_err(|e| DeployError::LocalTool(format!("cannot run docker: {e}")))?;
    let status = tokio::select! {
        s = child.wait() => s,
        sig = interrupts.wait() => {
            // As ECS stops a task: the image's stop signal, then SIGKILL after the
            // stop timeout; bosun inside gives the worker its grace.
            eprintln!("run --local: {sig}: stopping {name} (up to {}s)", c.stop_timeout);
            let _ = inject::docker(&["stop", "--time", &c.stop_timeout.to_string(), &name]);
            child.wait().await
        }
    }
    .map_err(|e| DeployError::LocalTool(format!("docker run: {e}")))?;
    let code = status.code().unwrap_or(1);
    // docker run's own failures (125: the container did not start) are not the
    // worker's.
    if code == 125 {
        return Err(DeployError::LocalTool(format!(
            "docker could not start {} (its message is above)",
            a.resource
        )));
    }
    Ok(code.clamp(0, 255) as u8)
}

/// A local image's ENTRYPOINT, CMD, STOPSIGNAL and USER (pulled first when the engine
/// does not have it).
fn local_config(image: &str) -> Result<ImageConfig> {
    if inject::docker(&["image", "inspect", image]).is_err() {
        inject::docker(&["pull", image]).map_err(DeployError::LocalTool)?;
    }
    let text = inject::docker(&["image", "inspect", image, "--format", "{{json .Config}}"])
        .map_err(DeployError::LocalTool)?;
    let cfg: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_default();
    Ok(registry::image_config(&cfg))
}

/// A `$Secret` value as ECS reads it: `ARN` (the whole string) or `ARN:KEY::` (one
/// key of its JSON).
async fn secret_value(ctx: &Ctx, value_from: &str) -> Result<String> {
    if value_from.contains(":ssm:") {
        // A `$Param`: its value, decrypted as ECS does for a SecureString.
        let out = ctx
            .aws
            .ssm
            .get_parameter()
            .name(value_from)
            .with_decryption(true)
            .send()
            .await
            .map_err(failed("SSM GetParameter", value_from))?;
        return Ok(out
            .parameter()
            .and_then(|p| p.value())
            .unwrap_or_default()
            .to_owned());
    }
    let (arn, key) = split_value_from(value_from);
    let (stage, id) = version_of(value_from);
    let text = if stage.is_none() && id.is_none() {
        ecr::secret_string(ctx, arn).await?
    } else {
        let out = ctx
            .aws
            .secrets
            .get_secret_value()
            .secret_id(arn)
            .set_version_stage(stage.map(str::to_owned))
            .set_version_id(id.map(str::to_owned))
            .send()
            .await
            .map_err(failed("SecretsManager GetSecretValue", arn))?;
        out.secret_string().unwrap_or_default().to_owned()
    };
    let text = text.as_str();
    match key {
        None => Ok(text.to_owned()),
        Some(k) => {
            let json: serde_json::Value = serde_json::from_str(text).map_err(|_| {
                DeployError::Refused(format!("secret {arn} is not JSON, so it has no key {k}"))
            })?;
            match &json[k] {
                serde_json::Value::String(s) => Ok(s.clone()),
                serde_json::Value::Null => {
                    Err(DeployError::Refused(format!("secret {arn} has no key {k}")))
                }
                other => Ok(other.to_string()),
            }
        }
    }
}

/// `ARN[:KEY:VERSION-STAGE:VERSION-ID]` → (ARN, KEY) (ECS Developer Guide, "Pass
/// Secrets Manager secrets through Amazon ECS environment variables").
fn split_value_from(v: &str) -> (&str, Option<&str>) {
    // arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME = 7 fields.
    let parts: Vec<&str> = v.splitn(8, ':').collect();
    if parts.len() < 8 {
        return (v, None);
    }
    let arn_len = parts[..7].iter().map(|p| p.len() + 1).sum::<usize>() - 1;
    let key = parts[7].split(':').next().filter(|k| !k.is_empty());
    (&v[..arn_len], key)
}

/// The version stage and id of `ARN:KEY:VERSION-STAGE:VERSION-ID`, where given.
fn version_of(v: &str) -> (Option<&str>, Option<&str>) {
    let parts: Vec<&str> = v.splitn(10, ':').collect();
    let at = |i: usize| parts.get(i).copied().filter(|s| !s.is_empty());
    (at(8), at(9))
}

/// The task role's temporary credentials, as the task would have them (STS
/// AssumeRole; the role's trust policy must allow the caller).
async fn task_role_credentials(ctx: &Ctx, role_arn: &str) -> Result<Vec<(String, String)>> {
    let out = ctx
        .aws
        .sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("bosun-deploy-run-local")
        .send()
        .await
        .map_err(|e| {
            let code = crate::deploy::engine::error::code_of(&e);
            if code == "AccessDenied" {
                DeployError::Refused(format!(
                    "--task-role: you may not assume {role_arn}: its trust policy allows ECS tasks only; add your role or user to it, or run without --task-role"
                ))
            } else {
                failed("STS AssumeRole", role_arn)(e)
            }
        })?;
    let c = out.credentials().ok_or_else(|| DeployError::Unexpected {
        call: "STS AssumeRole",
        what: "no credentials".into(),
    })?;
    Ok(vec![
        ("AWS_ACCESS_KEY_ID".into(), c.access_key_id().to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            c.secret_access_key().to_owned(),
        ),
        ("AWS_SESSION_TOKEN".into(), c.session_token().to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_from_names_the_secret_and_its_key() {
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf";
        assert_eq!(split_value_from(arn), (arn, None));
        assert_eq!(
            split_value_from(&format!("{arn}:password::")),
            (arn, Some("password"))
        );
    }
}
