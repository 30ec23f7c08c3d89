//! The stack's images: built with the local Docker engine ([`build`], [`buildpack`]),
//! bosun put in ([`inject`]), pushed and pinned by digest; a prebuilt image's config
//! read from its registry, and bosun added to one without it through the registries
//! alone ([`prebuilt`], [`registry`]); and the logins they need ([`ecr`]). [`prepare`]
//! does all of it for a verb, before anything is planned, so the plan pins what was
//! built and a build that fails changes nothing in AWS.

pub mod build;
pub mod buildpack;
pub mod ecr;
pub mod inject;
pub mod prebuilt;
pub mod registry;

use std::collections::{BTreeMap, BTreeSet};
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
    /// The images built, and the prebuilt ones with bosun added (resource →
    /// `REPO@sha256:…`, or `REPO:ID` when a build is not pushed).
    pub built: BTreeMap<String, String>,
    /// The configs of the prebuilt images (resource → config).
    pub configs: BTreeMap<String, ImageConfig>,
    /// The prebuilt images without bosun, which get it added ([`prebuilt`]).
    pub bosun_added: BTreeSet<String>,
}

/// Read the prebuilt images' configs, then build the stack's images and add bosun to
/// the prebuilt ones without it (and, with `push`, push them), so the plan pins their
/// digests; nothing in AWS is changed if a build fails. Without the stack's
/// `registry:`, images go to its ECR repositories: `before_push` makes them (after
/// preflight), and a push logs in with ECR's token. `deployed` reads what the deployed
/// task definitions of the named resources run.
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
    F: AsyncFnOnce(&BTreeSet<String>) -> Result<()>,
    D: AsyncFnOnce(&[String]) -> Result<BTreeMap<String, String>>,
{
    let configs = prebuilt::read_configs(ctx, stack).await?;
    let bosun_added = prebuilt::bosun_added(stack, &configs);
    let mut images = Images {
        configs,
        bosun_added,
        ..Images::default()
    };
    let to_build: Vec<String> = stack
        .resources
        .iter()
        .filter(|(_, r)| r.container().is_some_and(|c| c.is_built()))
        .map(|(n, _)| n.clone())
        .collect();
    if to_build.is_empty() && images.bosun_added.is_empty() {
        return Ok(images);
    }
    if mode == Mode::Deployed {
        let names: Vec<String> = to_build
            .iter()
            .chain(&images.bosun_added)
            .cloned()
            .collect();
        images.built = deployed(&names).await?;
        return Ok(images);
    }
    let push = mode == Mode::Push;
    let ecr = match &stack.registry {
        None => Some(ecr::ecr_login(ctx).await?),
        Some(_) => None,
    };
    let host = ecr.as_ref().map(|l| l.0.clone()).unwrap_or_default();
    // Every build first: a build that fails changes nothing in AWS (not even the
    // repositories are made).
    let mut built = Vec::new();
    if !to_build.is_empty() {
        if mode == Mode::Build && !build::engine_answers() {
            images.built.extend(deployed(&to_build).await?);
            eprintln!(
                "bosun-deploy: no Docker engine answers (docker info failed): the images of {} are not built, so not compared (everything else is)",
                to_build.join(", ")
            );
        } else {
            built = build::build_all(file, stack, bosun, &host)?;
        }
    }
    if push && ecr.is_some() {
        before_push(&images.bosun_added).await?;
    }
    // The prebuilt images without bosun: through the registries alone (with `push`,
    // pushed; else only their digests computed).
    let to = match (ecr.as_deref(), &stack.registry) {
        (Some((_, user, password)), _) => registry::auth(Some((user, password))),
        (None, Some(r)) => prebuilt::docker_config_auth(r),
        (None, None) => registry::auth(None),
    };
    for name in images.bosun_added.clone() {
        let image = prebuilt::add_bosun(ctx, stack, &name, bosun, &host, &to, push).await?;
        images.built.insert(name, image);
    }
    if built.is_empty() {
        return Ok(images);
    }
    if !push {
        for b in &built {
            images.built.insert(
                b.name.clone(),
                build::reference(b).map_err(DeployError::LocalTool)?,
            );
        }
        return Ok(images);
    }
    let config = ecr.as_deref().map(|(host, user, password)| {
        let dir = std::env::temp_dir().join(format!("bosun-deploy-{}", std::process::id()));
        let logged = build::login(host, user, password, &dir);
        (dir, logged)
    });
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
