//! The stack's images: built with the local Docker engine ([`build`], [`buildpack`]),
//! bosun put in ([`inject`]), pushed and pinned by digest; the start command of a
//! prebuilt image read from its registry ([`registry`]); and the logins both need
//! ([`ecr`]). [`prepare`] does all of it for a verb, before anything is planned, so the
//! plan pins what was built and a build that fails changes nothing in AWS.

pub mod build;
pub mod buildpack;
pub mod ecr;
pub mod inject;
pub mod registry;

use std::collections::BTreeMap;
use std::path::Path;

use super::components::ImageConfig;
use super::engine::error::{DeployError, Result};
use super::engine::Ctx;
use super::stack::Stack;

/// A command of a local tool (docker, pack) whose child starts with SIGINT and SIGTERM
/// unblocked again: `apply` and `delete` block them to read them themselves (to
/// release the stack's lock), and a child would inherit the mask, so a Ctrl-C would no
/// longer reach a build.
pub(crate) fn tool(program: &str) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(program);
    // SAFETY: pre_exec runs in the forked child before exec; it builds a signal set
    // on the stack and calls sigprocmask, both async-signal-safe, and touches nothing
    // but the child's own mask.
    unsafe {
        cmd.pre_exec(|| {
            use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
            let mut set = SigSet::empty();
            set.add(Signal::SIGINT);
            set.add(Signal::SIGTERM);
            sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None).map_err(std::io::Error::from)
        });
    }
    cmd
}

/// What a verb does with the images bosun-deploy builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `apply`: build, push, pin.
    Push,
    /// `diff`: build (not push) to compare; without a Docker engine, the deployed
    /// images stand in and the verb says which it could not compare.
    Build,
    /// `status`: never build; the deployed images stand in.
    Deployed,
}

/// What a verb learnt of the stack's images.
#[derive(Debug, Clone, Default)]
pub struct Images {
    /// The images built (resource → `REPO@sha256:…`, or `REPO:ID` when not pushed).
    pub built: BTreeMap<String, String>,
    /// The configs of the prebuilt images run without a command (resource → config).
    pub configs: BTreeMap<String, ImageConfig>,
}

/// Read the prebuilt images' start commands, then build the stack's images (and, with
/// `push`, push them), so the plan pins their digests; nothing in AWS is changed if a
/// build fails. Without the stack's `registry:`, images go to its ECR repositories:
/// `before_push` makes them (after preflight), and the push logs in with ECR's token
/// into a docker config of its own.
pub async fn prepare<F, D>(
    ctx: &Ctx,
    file: &Path,
    stack: &Stack,
    bosun: &Path,
    mode: Mode,
    before_push: F,
    deployed: D,
) -> Result<Images>
where
    F: AsyncFnOnce() -> Result<()>,
    D: AsyncFnOnce() -> Result<BTreeMap<String, String>>,
{
    let mut images = Images {
        configs: read_image_configs(ctx, stack).await?,
        ..Images::default()
    };
    let built_any = stack
        .resources
        .values()
        .any(|r| r.container().is_some_and(|c| c.is_built()));
    if !built_any {
        return Ok(images);
    }
    let engine = mode != Mode::Deployed && build::engine_answers();
    if mode == Mode::Deployed || (mode == Mode::Build && !engine) {
        images.built = deployed().await?;
        if mode == Mode::Build {
            let names: Vec<&String> = stack
                .resources
                .iter()
                .filter(|(_, r)| r.container().is_some_and(|c| c.is_built()))
                .map(|(n, _)| n)
                .collect();
            eprintln!(
                "bosun-deploy: no Docker engine answers (docker info failed): the images of {} are not built, so not compared (everything else is)",
                names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        return Ok(images);
    }
    let push = mode == Mode::Push;
    let ecr = if stack.registry.is_none() {
        Some(ecr::ecr_login(ctx).await?)
    } else {
        None
    };
    let host = ecr.as_ref().map(|l| l.0.clone()).unwrap_or_default();
    let built = build::build_all(file, stack, bosun, &host)?;
    if !push {
        for b in &built {
            images.built.insert(
                b.name.clone(),
                build::reference(b).map_err(DeployError::LocalTool)?,
            );
        }
        return Ok(images);
    }
    let config = match ecr.as_deref() {
        Some((host, user, password)) => {
            before_push().await?;
            let dir = std::env::temp_dir().join(format!("bosun-deploy-{}", std::process::id()));
            let logged = build::login(host, user, password, &dir);
            Some((dir, logged))
        }
        None => None,
    };
    let pushed: std::result::Result<Vec<(String, String)>, String> = match &config {
        Some((_, Err(e))) => Err(e.clone()),
        _ => built
            .iter()
            .map(|b| {
                let dir = config.as_ref().map(|(d, _)| d.as_path());
                Ok((b.name.clone(), build::push(b, dir)?))
            })
            .collect(),
    };
    if let Some((dir, _)) = &config {
        let _ = std::fs::remove_dir_all(dir);
    }
    images.built.extend(pushed.map_err(DeployError::LocalTool)?);
    Ok(images)
}

/// Read the config (ENTRYPOINT, CMD, STOPSIGNAL) of each prebuilt image run without a
/// command from its registry, so the task definition runs its own start command under
/// bosun. An ECR image is read with ECR's token; others anonymously, or with the
/// credentials the packaging names.
async fn read_image_configs(ctx: &Ctx, stack: &Stack) -> Result<BTreeMap<String, ImageConfig>> {
    let mut configs = BTreeMap::new();
    for (name, c) in stack
        .resources
        .iter()
        .filter_map(|(name, r)| r.container().map(|c| (name, c)))
        .filter(|(_, c)| c.runs_image_start())
    {
        let p = &c.packaging.properties;
        let Some(image) = p.image.as_deref() else {
            continue;
        };
        let host = registry::parse(image)
            .map_err(|e| DeployError::Preflight(format!("{name}: {e}")))?
            .host;
        let creds = match &p.repository_credentials_secret_arn {
            Some(arn) => Some(ecr::registry_credentials(ctx, arn).await?),
            None if registry::is_ecr(&host) => {
                let login = ecr::ecr_login(ctx).await?;
                Some((login.1.clone(), login.2.clone()))
            }
            None => None,
        };
        let creds = creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let cfg = registry::config(image, c.docker_arch(), creds).map_err(|e| {
            DeployError::Preflight(format!(
                "{name}: its start command is read from the image's config, and that failed: {e}"
            ))
        })?;
        if let Some(sig) = &cfg.stop_signal {
            crate::supervise::signals::parse_signal(sig)
                .map_err(|e| DeployError::Preflight(format!("{name}: {image}'s STOPSIGNAL {e}")))?;
        }
        configs.insert(name.clone(), cfg);
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tool_starts_with_ctrl_c_unblocked() {
        use nix::sys::signal::{SigSet, Signal};
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        set.thread_block().unwrap();
        let blocked = |out: std::process::Output| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let hex = text
                .lines()
                .find_map(|l| l.strip_prefix("SigBlk:"))
                .unwrap()
                .trim()
                .to_owned();
            u64::from_str_radix(&hex, 16).unwrap()
        };
        let bit = |sig: i32| 1u64 << (sig - 1);
        let mask = bit(nix::libc::SIGINT) | bit(nix::libc::SIGTERM);
        // A plain command inherits the block; a tool's does not.
        let plain = std::process::Command::new("cat")
            .arg("/proc/self/status")
            .output()
            .unwrap();
        let tool = super::tool("cat")
            .arg("/proc/self/status")
            .output()
            .unwrap();
        set.thread_unblock().unwrap();
        assert_eq!(blocked(plain) & mask, mask);
        assert_eq!(blocked(tool) & mask, 0);
    }
}
