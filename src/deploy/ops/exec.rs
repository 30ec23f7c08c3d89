//! `exec RESOURCE [--task ID] [--container NAME] [-- COMMAND...]`: ECS Exec into a
//! running task, through the `session-manager-plugin` on PATH, handed the session as
//! the AWS CLI hands it (`aws ecs execute-command`).

use std::process::{Command, Stdio};

use super::{connect, ecs_endpoint, runnable, task_id, tasks, Runs};
use crate::deploy::engine::error::{failed, DeployError, Result};
use crate::deploy::stack::Stack;

/// The plugin's program name.
pub const PLUGIN: &str = "session-manager-plugin";

/// Where AWS says how to install the plugin.
const INSTALL: &str = "https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html";

/// From this version on the plugin takes the session from an environment variable
/// named in its first argument, so the session's token is not in the process list
/// (the AWS CLI's `ExecuteCommandCaller`: LAST_PLUGIN_VERSION_WITHOUT_ENV_VAR).
const LAST_WITHOUT_ENV: [u64; 4] = [1, 2, 497, 0];
const SESSION_ENV: &str = "AWS_SSM_START_SESSION_RESPONSE";

/// What `exec` was asked.
#[derive(Debug, Clone)]
pub struct ExecArgs {
    pub resource: String,
    pub task: Option<String>,
    pub container: Option<String>,
    pub command: Vec<String>,
}

/// The plugin's version, or a clear error (exit 5) saying how to install it.
pub fn plugin_version() -> Result<String> {
    let out = Command::new(PLUGIN)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            DeployError::LocalTool(format!(
                "{PLUGIN} cannot be started ({e}): exec needs AWS's Session Manager plugin on PATH; install it as {INSTALL} says"
            ))
        })?;
    if !out.status.success() {
        return Err(DeployError::LocalTool(format!(
            "{PLUGIN} --version failed ({}): reinstall it as {INSTALL} says",
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether `version` is newer than [`LAST_WITHOUT_ENV`].
fn takes_env(version: &str) -> bool {
    let parts: Vec<u64> = version
        .split('.')
        .map(|p| p.trim().parse().unwrap_or(0))
        .collect();
    let mut v = [0u64; 4];
    for (i, p) in parts.iter().take(4).enumerate() {
        v[i] = *p;
    }
    v > LAST_WITHOUT_ENV
}

/// `exec`: refused before any call when the file does not enable it or the plugin is
/// missing; several running tasks and no `--task` are listed, not guessed between.
pub async fn exec(stack: &Stack, a: &ExecArgs) -> Result<u8> {
    let res = runnable(stack, &a.resource, Runs::Any)?;
    let enabled = res.container().is_some_and(|c| c.enable_execute_command);
    if !enabled {
        return Err(DeployError::Usage(format!(
            "{} does not allow ECS Exec: set `enableExecuteCommand: true` in its properties and apply (its tasks must start with it)",
            a.resource
        )));
    }
    let version = plugin_version()?;
    let ctx = connect(stack).await?;
    // The stack's own, deployed: refused otherwise.
    super::current_task_definition(&ctx, stack, &a.resource).await?;
    let running = tasks::list(&ctx, stack, &a.resource, false).await?;
    let arn = match &a.task {
        Some(want) => running
            .iter()
            .find(|arn| task_id(arn) == want || *arn == want)
            .cloned()
            .ok_or_else(|| {
                DeployError::Usage(format!(
                    "--task {want}: not a running task of {} (running: {})",
                    a.resource,
                    ids(&running)
                ))
            })?,
        None => match running.as_slice() {
            [] => {
                return Err(DeployError::Refused(format!(
                    "{} has no running task (bosun-deploy run {} starts one)",
                    a.resource, a.resource
                )))
            }
            [one] => one.clone(),
            many => {
                return Err(DeployError::Usage(format!(
                    "{} has {} running tasks: choose one with --task ID ({})",
                    a.resource,
                    many.len(),
                    ids(many)
                )))
            }
        },
    };
    let container = a
        .container
        .clone()
        .unwrap_or_else(|| super::run::CONTAINER.into());
    let command = if a.command.is_empty() {
        "/bin/sh".to_owned()
    } else {
        a.command.join(" ")
    };
    let out = ctx
        .aws
        .ecs
        .execute_command()
        .cluster(&stack.cluster)
        .task(&arn)
        .container(&container)
        .command(&command)
        .interactive(true)
        .send()
        .await
        .map_err(failed("ECS ExecuteCommand", task_id(&arn)))?;
    let session = out.session().ok_or_else(|| DeployError::Unexpected {
        call: "ECS ExecuteCommand",
        what: "no session".into(),
    })?;
    // The SSM target: ecs:CLUSTER_TASKID_RUNTIMEID of the container.
    let task = super::run::describe(&ctx, &stack.cluster, &arn).await?;
    let runtime = task
        .containers()
        .iter()
        .find(|c| c.name() == Some(container.as_str()))
        .and_then(|c| c.runtime_id())
        .ok_or_else(|| {
            DeployError::Usage(format!(
                "task {} has no running container {container} (containers: {})",
                task_id(&arn),
                task.containers()
                    .iter()
                    .filter_map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let cluster_name = out
        .cluster_arn()
        .and_then(|c| c.rsplit('/').next())
        .unwrap_or(&stack.cluster);
    let target = format!("ecs:{cluster_name}_{}_{runtime}", task_id(&arn));
    let session_json = serde_json::json!({
        "SessionId": session.session_id(),
        "StreamUrl": session.stream_url(),
        "TokenValue": session.token_value(),
    })
    .to_string();
    let params = serde_json::json!({ "Target": target }).to_string();
    let profile = std::env::var("AWS_PROFILE").unwrap_or_default();
    let mut cmd = Command::new(PLUGIN);
    if takes_env(&version) {
        cmd.env(SESSION_ENV, &session_json).arg(SESSION_ENV);
    } else {
        cmd.arg(&session_json);
    }
    cmd.args([
        ctx.region.as_str(),
        "StartSession",
        profile.as_str(),
        params.as_str(),
        ecs_endpoint(&ctx.region).as_str(),
    ]);
    eprintln!(
        "exec: {command} in {container} of task {} (session {})",
        task_id(&arn),
        session.session_id().unwrap_or_default()
    );
    // Ctrl-C and Ctrl-Z belong to the session: the plugin passes them on, and
    // bosun-deploy waits for it (as the AWS CLI ignores them while it runs).
    let status = run_plugin(cmd).map_err(|e| DeployError::LocalTool(format!("{PLUGIN}: {e}")))?;
    Ok(status.code().map_or(1, |c| c.clamp(0, 255) as u8))
}

/// Start the plugin, then ignore SIGINT, SIGQUIT and SIGTSTP until it ends (the
/// plugin started with their default dispositions, and handles them itself).
fn run_plugin(mut cmd: Command) -> std::io::Result<std::process::ExitStatus> {
    use nix::sys::signal::{signal, SigHandler, Signal};
    let mut child = cmd.spawn()?;
    const KEYS: [Signal; 3] = [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTSTP];
    // SAFETY: SIG_IGN and SIG_DFL install no handler code; the old ones are restored.
    let old: Vec<_> = KEYS
        .iter()
        .map(|s| unsafe { signal(*s, SigHandler::SigIgn) }.unwrap_or(SigHandler::SigDfl))
        .collect();
    let status = child.wait();
    for (s, h) in KEYS.iter().zip(old) {
        // SAFETY: as above; `h` is what was installed before.
        let _ = unsafe { signal(*s, h) };
    }
    status
}

fn ids(arns: &[String]) -> String {
    if arns.is_empty() {
        return "none".into();
    }
    arns.iter()
        .map(|a| task_id(a))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_plugins_take_the_session_from_the_environment() {
        assert!(takes_env("1.2.650.0"));
        assert!(takes_env("1.3.0.0"));
        assert!(!takes_env("1.2.497.0"));
        assert!(!takes_env("1.2.312.0"));
    }
}
