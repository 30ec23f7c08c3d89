//! Images the deployer builds: `custom-dockerfile` packaging, built with the local
//! Docker engine (its CLI) for the task's architecture, with bosun put in as
//! ENTRYPOINT around the image's own (as `inject` does), pushed to the stack's
//! `registry:` with the engine's own credentials, and pinned by digest.
//!
//! The build is reproducible as Docker's cache makes it: an unchanged context builds
//! to the same image, bosun goes in as the same layer, and the same image pushes to
//! the same digest, so re-applying an unchanged stack changes no task definition.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::inject::docker;
use crate::deploy::naming;
use crate::deploy::stack::{Container, Stack};

/// Build with Cloud Native Buildpacks through the `pack` CLI, into the local engine
/// as `tag`.
fn pack(stack_dir: &Path, name: &str, ctr: &Container, tag: &str) -> Result<(), String> {
    let props = &ctr.packaging.properties;
    let source = stack_dir.join(props.source_directory_path.as_deref().unwrap_or("."));
    if !source.is_dir() {
        return Err(format!(
            "{name}: source directory {} is not a folder",
            source.display()
        ));
    }
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("pack").is_file()))
        .unwrap_or(false);
    if !found {
        return Err(format!(
            "{name}: external-buildpack builds with the pack CLI (Cloud Native Buildpacks), and no `pack` is on PATH: install it (https://buildpacks.io/docs/for-platform-operators/how-to/integrate-ci/pack/), or package the worker with image-buildpack or custom-dockerfile"
        ));
    }
    let mut args: Vec<String> = vec![
        "build".into(),
        tag.into(),
        "--builder".into(),
        props.builder.clone().unwrap_or_default(),
        "--path".into(),
        source.display().to_string(),
        "--platform".into(),
        platform(ctr).into(),
        "--pull-policy".into(),
        "if-not-present".into(),
    ];
    for b in &props.buildpacks {
        args.push("--buildpack".into());
        args.push(b.clone());
    }
    eprintln!(
        "building {name} ({}) with pack from {}",
        platform(ctr),
        source.display()
    );
    let status = super::tool("pack")
        .args(&args)
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot run pack: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the build of {name} with pack failed (its output is above)"
        ))
    }
}

/// Run docker with its progress on our stderr (stdout is the deployer's plan).
fn docker_shown(args: &[String], what: &str) -> Result<(), String> {
    let status = super::tool("docker")
        .args(args)
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed (docker's output is above)"))
    }
}

/// Whether the local Docker engine answers (`docker info`).
pub fn engine_answers() -> bool {
    super::tool("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Docker platform of a task architecture.
fn platform(ctr: &Container) -> &'static str {
    match ctr.docker_arch() {
        "arm64" => "linux/arm64",
        _ => "linux/amd64",
    }
}

/// One resource's image, built with bosun in, tagged `REPO:ID12` (not pushed yet).
#[derive(Debug, Clone)]
pub struct Built {
    pub name: String,
    pub repo: String,
    pub id: String,
    pub tag: String,
}

/// The bosun put into an image, and why `bosun-aws` goes beside it (when the
/// resource uses what needs it; left out otherwise).
#[derive(Debug, Clone, Copy)]
pub struct BosunIn<'a> {
    pub path: &'a Path,
    pub helper: Option<&'static str>,
}

/// Build one resource's image and put bosun in; `repo` is where it goes.
pub fn build(
    stack_dir: &Path,
    name: &str,
    ctr: &Container,
    repo: &str,
    bosun: BosunIn<'_>,
) -> Result<Built, String> {
    let props = &ctr.packaging.properties;
    if ctr.packaging.kind == "external-buildpack" {
        // The bosun to put in is checked before anything is built.
        check_bosun(name, ctr, bosun)?;
        let built_tag = format!("{repo}:build");
        pack(stack_dir, name, ctr, &built_tag)?;
        return wrap(name, repo, &built_tag, bosun);
    }
    // Auto-packaging: the generated Dockerfile, in a file of its own for the build.
    let generated = if ctr.packaging.is_buildpack() {
        let g = super::buildpack::generate(stack_dir, ctr).map_err(|e| format!("{name}: {e}"))?;
        let file = std::env::temp_dir().join(format!(
            "bosun-deploy-{}-{name}.Dockerfile",
            std::process::id()
        ));
        std::fs::write(&file, &g.dockerfile).map_err(|e| format!("{}: {e}", file.display()))?;
        eprintln!("{name}: {} project in {}", g.language, g.context.display());
        Some((g.context, file))
    } else {
        None
    };
    let (context, dockerfile) = match &generated {
        Some((context, file)) => (context.clone(), file.clone()),
        None => {
            let context: PathBuf =
                stack_dir.join(props.build_context_path.as_deref().unwrap_or("."));
            let dockerfile = context.join(props.dockerfile_path.as_deref().unwrap_or("Dockerfile"));
            (context, dockerfile)
        }
    };
    let built = build_context(name, ctr, &context, &dockerfile, repo, bosun);
    if let Some((_, file)) = &generated {
        let _ = std::fs::remove_file(file);
    }
    built
}

/// Build from a context and a Dockerfile, then put bosun in.
fn build_context(
    name: &str,
    ctr: &Container,
    context: &Path,
    dockerfile: &Path,
    repo: &str,
    bosun: BosunIn<'_>,
) -> Result<Built, String> {
    let props = &ctr.packaging.properties;
    if !context.is_dir() {
        return Err(format!(
            "{name}: build context {} is not a folder",
            context.display()
        ));
    }
    if !dockerfile.is_file() {
        return Err(format!("{name}: no Dockerfile at {}", dockerfile.display()));
    }
    // The bosun to put in is checked before anything is built.
    check_bosun(name, ctr, bosun)?;
    let built_tag = format!("{repo}:build");
    let mut args: Vec<String> = vec![
        "build".into(),
        "--platform".into(),
        platform(ctr).into(),
        "--file".into(),
        dockerfile.display().to_string(),
        "--tag".into(),
        built_tag.clone(),
    ];
    for a in &props.build_args {
        args.push("--build-arg".into());
        args.push(format!("{}={}", a.arg_name, a.value));
    }
    if let Some(t) = &props.build_target {
        args.push("--target".into());
        args.push(t.clone());
    }
    args.push(context.display().to_string());
    eprintln!(
        "building {name} ({}) from {}",
        platform(ctr),
        context.display()
    );
    docker_shown(&args, &format!("the build of {name}"))?;
    wrap(name, repo, &built_tag, bosun)
}

/// bosun (and bosun-aws, when the resource needs it) must be static executables of
/// the task's architecture.
pub(crate) fn check_bosun(name: &str, ctr: &Container, bosun: BosunIn<'_>) -> Result<(), String> {
    let arch = ctr.docker_arch();
    super::inject::check_binary(bosun.path, arch)?;
    if let Some(why) = bosun.helper {
        let helper = bosun.path.with_file_name(crate::metrics::helper::HELPER);
        if !helper.is_file() {
            return Err(format!(
                "{name} needs bosun-aws in its image ({why}), and there is none beside {}: build both with docker/build-static.sh (without --lean)",
                bosun.path.display()
            ));
        }
        super::inject::check_binary(&helper, arch)?;
    }
    Ok(())
}

/// Put bosun into the built image and tag it `REPO:ID12`.
fn wrap(name: &str, repo: &str, built_tag: &str, bosun: BosunIn<'_>) -> Result<Built, String> {
    let id = super::inject::inject_with(
        built_tag,
        &format!("{repo}:bosun"),
        bosun.path,
        bosun.helper.is_some(),
    )
    .map_err(|e| format!("{name}: {e}"))?;
    let short = id.trim_start_matches("sha256:");
    let tag = format!("{repo}:{}", &short[..short.len().min(12)]);
    docker(&["tag", &id, &tag])?;
    Ok(Built {
        name: name.to_owned(),
        repo: repo.to_owned(),
        id,
        tag,
    })
}

/// Build every image of the stack (nothing is pushed). `ecr_host` is the registry of
/// the stack's ECR repositories (used when it names no `registry:`).
pub fn build_all(
    stack_file: &Path,
    stack: &Stack,
    bosun: &Path,
    ecr_host: &str,
) -> Result<Vec<Built>, crate::deploy::engine::error::DeployError> {
    let dir = stack_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    use crate::deploy::engine::error::DeployError;
    // A missing entry or project file is the stack file's mistake: said before
    // anything is built.
    for (name, res) in &stack.resources {
        if let Some(ctr) = res.container().filter(|c| c.packaging.is_buildpack()) {
            super::buildpack::generate(dir, ctr)
                .map_err(|e| DeployError::Invalid(format!("{name}: {e}")))?;
        }
    }
    let mut out = Vec::new();
    for (name, res) in &stack.resources {
        if let Some(ctr) = res.container().filter(|c| c.is_built()) {
            let repo =
                naming::image_repository(stack.registry.as_deref(), &stack.stack, name, ecr_host);
            let bosun = BosunIn {
                path: bosun,
                helper: stack.needs_helper(res),
            };
            out.push(build(dir, name, ctr, &repo, bosun).map_err(DeployError::LocalTool)?);
        }
    }
    Ok(out)
}

/// The image reference of a built image for the task definition: `REPO@sha256:…` once
/// the registry has it, else `REPO:ID` (a `diff` before the first push).
pub fn reference(b: &Built) -> Result<String, String> {
    let digests = docker(&[
        "image",
        "inspect",
        &b.id,
        "--format",
        "{{json .RepoDigests}}",
    ])?;
    let digests: Vec<String> = serde_json::from_str(digests.trim()).unwrap_or_default();
    let prefix = format!("{}@", b.repo);
    Ok(digests
        .into_iter()
        .find(|d| d.starts_with(&prefix))
        .unwrap_or_else(|| b.tag.clone()))
}

/// Push a built image (with the login in `docker_config`, else the engine's own
/// credentials) and return its reference, pinned by digest.
pub fn push(b: &Built, docker_config: Option<&Path>) -> Result<String, String> {
    eprintln!("pushing {}", b.tag);
    let mut args: Vec<String> = Vec::new();
    if let Some(dir) = docker_config {
        args.push("--config".into());
        args.push(dir.display().to_string());
    }
    args.extend(["push".into(), b.tag.clone()]);
    docker_shown(&args, &format!("the push of {}", b.tag))?;
    reference(b)
}

/// Log in to a registry with a user and password (ECR's token) into a docker config
/// folder of its own, so the user's own docker config is left as it is.
pub fn login(host: &str, user: &str, password: &str, dir: &Path) -> Result<(), String> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut child = super::tool("docker")
        .arg("--config")
        .arg(dir)
        .args(["login", "--username", user, "--password-stdin", host])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(password.as_bytes())
            .map_err(|e| format!("docker login: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("docker login: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "docker login to {host} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
