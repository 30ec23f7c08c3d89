//! Images the deployer builds: `custom-dockerfile` packaging, built with the local
//! Docker engine (its CLI) for the task's architecture, with bosun put in as
//! ENTRYPOINT around the image's own (as `inject` does), pushed to the stack's
//! `registry:` with the engine's own credentials, and pinned by digest.
//!
//! The build is reproducible as Docker's cache makes it: an unchanged context builds
//! to the same image, bosun goes in as the same layer, and the same image pushes to
//! the same digest, so re-applying an unchanged stack changes no task definition.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::inject::docker;
use super::stack::{Container, Stack};

/// What `render` (which builds nothing) writes where a built image's digest goes.
pub const UNBUILT: &str = "sha256:BUILT_BY_APPLY";

/// The repository of a resource's built image: `{registry}/{stack}-{name}`, in
/// lowercase as registries name them.
pub fn repository(stack: &Stack, name: &str) -> Option<String> {
    let registry = stack.registry.as_deref()?;
    Some(format!("{registry}/{}-{name}", stack.stack).to_ascii_lowercase())
}

/// Whether a container's image is built by the deployer.
pub fn is_built(ctr: &Container) -> bool {
    ctr.packaging.kind == "custom-dockerfile"
}

/// Run docker with its progress on our stderr (stdout is the deployer's plan).
fn docker_shown(args: &[String], what: &str) -> Result<(), String> {
    let status = Command::new("docker")
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

/// The Docker platform of a task architecture.
fn platform(ctr: &Container) -> &'static str {
    match ctr.resources.architecture.as_deref() {
        Some("arm64") => "linux/arm64",
        _ => "linux/amd64",
    }
}

/// Build one resource's image, put bosun in, and (when `push`) push it. Returns the
/// image reference for the task definition: `REPO@sha256:…` once the registry has
/// it, else `REPO:ID` (a `diff` before the first push).
pub fn package(
    stack_dir: &Path,
    stack: &Stack,
    name: &str,
    ctr: &Container,
    bosun: &Path,
    push: bool,
) -> Result<String, String> {
    let repo = repository(stack, name)
        .ok_or_else(|| format!("{name}: a built image needs the stack's registry"))?;
    let props = &ctr.packaging.properties;
    let context: PathBuf = stack_dir.join(props.build_context_path.as_deref().unwrap_or("."));
    if !context.is_dir() {
        return Err(format!(
            "{name}: build context {} is not a folder",
            context.display()
        ));
    }
    let dockerfile = context.join(props.dockerfile_path.as_deref().unwrap_or("Dockerfile"));
    if !dockerfile.is_file() {
        return Err(format!("{name}: no Dockerfile at {}", dockerfile.display()));
    }
    // The bosun to put in is checked before anything is built.
    let arch = if platform(ctr) == "linux/arm64" {
        "arm64"
    } else {
        "amd64"
    };
    super::inject::check_binary(bosun, arch)?;
    let helper = bosun.with_file_name(crate::metrics::helper::HELPER);
    if helper.is_file() {
        super::inject::check_binary(&helper, arch)?;
    }
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
    let id = super::inject::inject(&built_tag, &format!("{repo}:bosun"), bosun)
        .map_err(|e| format!("{name}: {e}"))?;
    let short = id.trim_start_matches("sha256:");
    let tag = format!("{repo}:{}", &short[..short.len().min(12)]);
    docker(&["tag", &id, &tag])?;
    if push {
        eprintln!("pushing {tag}");
        docker_shown(&["push".into(), tag.clone()], &format!("the push of {tag}"))?;
    }
    let digests = docker(&["image", "inspect", &id, "--format", "{{json .RepoDigests}}"])?;
    let digests: Vec<String> = serde_json::from_str(digests.trim()).unwrap_or_default();
    let prefix = format!("{repo}@");
    Ok(digests
        .into_iter()
        .find(|d| d.starts_with(&prefix))
        .unwrap_or(tag))
}

/// Every built image of the stack: resource name → image reference.
pub fn package_all(
    stack_file: &Path,
    stack: &Stack,
    bosun: &Path,
    push: bool,
) -> Result<BTreeMap<String, String>, String> {
    let dir = stack_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut out = BTreeMap::new();
    for (name, res) in &stack.resources {
        if let Some(ctr) = res.container().filter(|c| is_built(c)) {
            out.insert(name.clone(), package(dir, stack, name, ctr, bosun, push)?);
        }
    }
    Ok(out)
}
