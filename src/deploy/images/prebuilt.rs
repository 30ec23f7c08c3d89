//! Prebuilt images: their configs read from their registries, and bosun added to those
//! that do not hold it, through the registries alone (no Docker engine, nothing
//! pulled to disk): the image's own layers, mounted or copied into the stack's
//! repository, and one layer more with bosun (and `bosun-aws` where the resource needs
//! it). An image holds bosun when its ENTRYPOINT starts with it (the README's
//! Dockerfile, `bosun-deploy inject`) or it carries the label bosun-deploy puts on an
//! image it added bosun to; such an image runs its own bosun.

use std::collections::BTreeMap;
use std::path::Path;

use super::registry::{self, Auth, BosunLayer, Destination};
use super::{build, ecr};
use crate::deploy::components::ImageConfig;
use crate::deploy::engine::error::{DeployError, Result};
use crate::deploy::engine::Ctx;
use crate::deploy::naming::{self, BOSUN_PATH};
use crate::deploy::stack::{Container, Stack};
use crate::metrics::helper::HELPER;

fn prebuilt(stack: &Stack) -> impl Iterator<Item = (&String, &Container, &str)> {
    stack.resources.iter().filter_map(|(name, r)| {
        let c = r.container().filter(|c| !c.is_built())?;
        Some((name, c, c.packaging.properties.image.as_deref()?))
    })
}

/// The access to a prebuilt image's registry: the credentials the packaging names, ECR's
/// token for an ECR image, else none.
async fn source_auth(ctx: &Ctx, name: &str, ctr: &Container, image: &str) -> Result<Auth> {
    let host = registry::parse(image)
        .map_err(|e| DeployError::Preflight(format!("{name}: {e}")))?
        .host;
    let creds = match &ctr.packaging.properties.repository_credentials_secret_arn {
        Some(arn) => Some(ecr::registry_credentials(ctx, arn).await?),
        None if registry::is_ecr(&host) => {
            let login = ecr::ecr_login(ctx).await?;
            Some((login.1.clone(), login.2.clone()))
        }
        None => None,
    };
    Ok(registry::auth(
        creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
    ))
}

/// Whether `ctr`'s prebuilt image (of config `cfg`) gets bosun added: as its
/// `includesBosun` says, else when the image does not hold it.
pub fn gets_bosun(ctr: &Container, cfg: &ImageConfig) -> bool {
    match ctr.packaging.properties.includes_bosun {
        Some(included) => !included,
        None => !cfg.holds_bosun(),
    }
}

/// The prebuilt images that get bosun added, of those whose configs were read.
pub fn bosun_added(
    stack: &Stack,
    configs: &BTreeMap<String, ImageConfig>,
) -> std::collections::BTreeSet<String> {
    prebuilt(stack)
        .filter(|(name, ctr, _)| configs.get(*name).is_some_and(|cfg| gets_bosun(ctr, cfg)))
        .map(|(name, ..)| name.clone())
        .collect()
}

/// Read the config (ENTRYPOINT, CMD, STOPSIGNAL, labels) of each prebuilt image for its
/// task's architecture: the task definition runs its own start command under bosun,
/// and an image without bosun gets it added. An image the file says holds bosun
/// (`includesBosun: true`) and gives a command for is not read.
pub async fn read_configs(ctx: &Ctx, stack: &Stack) -> Result<BTreeMap<String, ImageConfig>> {
    let mut configs = BTreeMap::new();
    for (name, c, image) in prebuilt(stack) {
        if c.packaging.properties.includes_bosun == Some(true) && !c.runs_image_start() {
            continue;
        }
        let auth = source_auth(ctx, name, c, image).await?;
        let cfg = registry::config(image, c.docker_arch(), &auth)
            .await
            .map_err(|e| {
                DeployError::Preflight(format!(
                    "{name}: its config is read from its registry, and that failed: {e} (an image that holds bosun, run with a `command`, need not be read: say so with includesBosun: true)"
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

/// The access to the stack's own `registry:`: the user's Docker login for it
/// (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, an `auths` entry), else
/// none. A credential helper's logins are not read.
pub fn docker_config_auth(registry: &str) -> Auth {
    let host = registry.split('/').next().unwrap_or(registry);
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")));
    let basic = dir
        .and_then(|d| std::fs::read(d.join("config.json")).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["auths"][host]["auth"].as_str().map(str::to_owned))
        .and_then(|a| aws_smithy_types::base64::decode(a).ok())
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())));
    registry::auth(basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str())))
}

/// `name`'s prebuilt image with bosun added, as `REPO@sha256:…` in the stack's
/// repository for it (`ecr_host`'s, or the stack's `registry:`, reached with `to`);
/// pushed there with `push`.
pub async fn add_bosun(
    ctx: &Ctx,
    stack: &Stack,
    name: &str,
    bosun: &Path,
    ecr_host: &str,
    to: &Auth,
    push: bool,
) -> Result<String> {
    let res = &stack.resources[name];
    let Some((_, ctr, image)) = prebuilt(stack).find(|(n, ..)| *n == name) else {
        return Err(DeployError::Internal(format!(
            "{name}: not a prebuilt image"
        )));
    };
    let helper = stack.needs_helper(res);
    let why = |e: String| {
        DeployError::LocalTool(format!(
            "{name}: {image} holds no bosun, so bosun-deploy adds it, and: {e}"
        ))
    };
    build::check_bosun(
        name,
        ctr,
        build::BosunIn {
            path: bosun,
            helper,
        },
    )
    .map_err(why)?;
    let mut files = vec![(BOSUN_PATH.to_owned(), bosun.to_path_buf())];
    if helper.is_some() {
        files.push((format!("{BOSUN_PATH}-aws"), bosun.with_file_name(HELPER)));
    }
    let layer = BosunLayer::new(&files).map_err(why)?;
    let from = source_auth(ctx, name, ctr, image).await?;
    let repository =
        naming::image_repository(stack.registry.as_deref(), &stack.stack, name, ecr_host);
    if push {
        eprintln!("{name}: {image} holds no bosun: adding it, as an image in {repository}");
    }
    let pinned = registry::add_bosun(
        image,
        ctr.docker_arch(),
        &from,
        Destination {
            repository: &repository,
            auth: to,
        },
        &layer,
        push,
    )
    .await
    .map_err(|e| DeployError::Preflight(format!("{name}: {e}")))?;
    if !push {
        eprintln!("{name}: {image} holds no bosun: apply adds it, as {pinned}");
    }
    Ok(pinned)
}
