//! A prebuilt image's config (ENTRYPOINT, CMD, STOPSIGNAL, USER), read from its
//! registry through the OCI distribution API (v2) without pulling it: the manifest
//! (for a multi-platform image, the task's platform's), then the config blob. Access
//! as registries grant it: none, an anonymous bearer token (Docker Hub, GHCR and the
//! like answer 401 with where to get one), or basic credentials (ECR's token).

use std::time::Duration;

use serde_json::Value;

pub use crate::deploy::components::ImageConfig;

/// An image reference taken apart: registry host, repository, tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub host: String,
    pub repository: String,
    pub reference: String,
}

/// Docker Hub's registry, for names without a host.
const DOCKER_HUB: &str = "registry-1.docker.io";

/// Parse `[HOST[:PORT]/]PATH[:TAG][@DIGEST]` as Docker does: the first part is a host
/// when it has a `.` or a `:` or is `localhost`; else the image is Docker Hub's (a
/// single name is in `library/`); the tag is `latest` when none is given.
pub fn parse(image: &str) -> Result<Reference, String> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let (host, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DOCKER_HUB.to_owned(), name.to_owned()),
    };
    let (path, tag) = match path.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p.to_owned(), Some(t.to_owned())),
        _ => (path, None),
    };
    if path.is_empty() {
        return Err(format!("{image:?} names no repository"));
    }
    let repository = if host == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    let reference = match (digest, tag) {
        (Some(d), _) => d.to_owned(),
        (None, Some(t)) => t,
        (None, None) => "latest".to_owned(),
    };
    Ok(Reference {
        host,
        repository,
        reference,
    })
}

/// Whether a host is ECR's (`{account}.dkr.ecr.{region}.amazonaws.com`).
pub fn is_ecr(host: &str) -> bool {
    host.contains(".dkr.ecr.") && host.ends_with(".amazonaws.com")
}

const MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// A registry session: the base URL and what authorizes the calls.
struct Session {
    agent: ureq::Agent,
    base: String,
    basic: Option<String>,
    bearer: Option<String>,
}

fn header_params(h: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = h;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_owned();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q[..end].to_owned(), q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.push((key, value));
        rest = next;
    }
    out
}

impl Session {
    /// GET `path` (relative to the registry's base, or a full URL), answering a 401
    /// once with the token or credentials it asks for, and following redirects
    /// without the registry's authorization (blobs live elsewhere: S3, a CDN).
    fn get(&mut self, path: &str, accept: &str) -> Result<String, String> {
        let mut url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut authorized_tried = false;
        for _ in 0..6 {
            let own = url.starts_with(&self.base);
            let mut req = self.agent.get(&url).set("Accept", accept);
            if own {
                if let Some(t) = &self.bearer {
                    req = req.set("Authorization", &format!("Bearer {t}"));
                } else if let Some(b) = &self.basic {
                    req = req.set("Authorization", &format!("Basic {b}"));
                }
            }
            match req.call() {
                Ok(r) if (300..400).contains(&r.status()) => {
                    let to = r
                        .header("location")
                        .ok_or_else(|| format!("{url}: a redirect with no location"))?;
                    url = if to.starts_with('/') {
                        let origin: String =
                            url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
                        format!("{origin}{to}")
                    } else {
                        to.to_owned()
                    };
                }
                Ok(r) => {
                    return r.into_string().map_err(|e| format!("{url}: {e}"));
                }
                Err(ureq::Error::Status(401, r)) if own && !authorized_tried => {
                    authorized_tried = true;
                    let challenge = r.header("www-authenticate").unwrap_or("").to_owned();
                    self.authorize(&challenge, &url)?;
                }
                Err(ureq::Error::Status(code, r)) => {
                    let body = r.into_string().unwrap_or_default();
                    let body: String = body.chars().take(300).collect();
                    return Err(format!("{url}: HTTP {code} {}", body.trim()));
                }
                // The transport error names the URL itself.
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(format!("{url}: too many redirects"))
    }

    /// Get what a 401's `WWW-Authenticate` asks for: a bearer token from its realm
    /// (with the basic credentials when there are any, else anonymous), or basic.
    fn authorize(&mut self, challenge: &str, url: &str) -> Result<(), String> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return match &self.basic {
                Some(_) => Err(format!("{url}: the registry refused the credentials")),
                None => Err(format!(
                    "{url}: the registry wants credentials, and bosun-deploy has none for it (name a Secrets Manager secret with them in packaging.properties.repositoryCredentialsSecretArn)"
                )),
            };
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(format!("{url}: unknown authentication {scheme:?}"));
        }
        let params = header_params(params);
        let get = |k: &str| params.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
        let realm =
            get("realm").ok_or_else(|| format!("{url}: a bearer challenge with no realm"))?;
        let mut req = self.agent.get(&realm);
        if let Some(s) = get("service") {
            req = req.query("service", &s);
        }
        if let Some(s) = get("scope") {
            req = req.query("scope", &s);
        }
        if let Some(b) = &self.basic {
            req = req.set("Authorization", &format!("Basic {b}"));
        }
        let body = req
            .call()
            .map_err(|e| format!("token from {realm}: {e}"))?
            .into_string()
            .map_err(|e| format!("token from {realm}: {e}"))?;
        let v: Value =
            serde_json::from_str(&body).map_err(|e| format!("token from {realm}: {e}"))?;
        let token = v["token"]
            .as_str()
            .or_else(|| v["access_token"].as_str())
            .ok_or_else(|| format!("token from {realm}: no token in the answer"))?;
        self.bearer = Some(token.to_owned());
        Ok(())
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// Read the config of `image` for `arch` (`amd64`, `arm64`). `basic` is a user and
/// password for the registry (ECR's token), if any.
pub fn config(image: &str, arch: &str, basic: Option<(&str, &str)>) -> Result<ImageConfig, String> {
    let r = parse(image)?;
    // Loopback registries speak plain HTTP (as Docker lets them); any other, HTTPS.
    let local = r.host.starts_with("127.")
        || r.host.starts_with("localhost")
        || r.host.starts_with("[::1]");
    let scheme = if local { "http" } else { "https" };
    let mut s = Session {
        agent: ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .redirects(0)
            .build(),
        base: format!("{scheme}://{}", r.host),
        basic: basic.map(|(u, p)| aws_smithy_types::base64::encode(format!("{u}:{p}"))),
        bearer: None,
    };
    let body = s.get(
        &format!("/v2/{}/manifests/{}", r.repository, r.reference),
        MANIFESTS,
    )?;
    let mut manifest: Value =
        serde_json::from_str(&body).map_err(|e| format!("{image}: manifest: {e}"))?;
    if let Some(list) = manifest["manifests"].as_array() {
        let pick = list
            .iter()
            .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == arch)
            .ok_or_else(|| format!("{image} has no linux/{arch} image"))?;
        let digest = pick["digest"].as_str().unwrap_or_default().to_owned();
        let body = s.get(
            &format!("/v2/{}/manifests/{digest}", r.repository),
            MANIFESTS,
        )?;
        manifest = serde_json::from_str(&body).map_err(|e| format!("{image}: manifest: {e}"))?;
    }
    let digest = manifest["config"]["digest"]
        .as_str()
        .ok_or_else(|| format!("{image}: a manifest with no config (schema 1 is not read)"))?
        .to_owned();
    let body = s.get(&format!("/v2/{}/blobs/{digest}", r.repository), "*/*")?;
    let blob: Value = serde_json::from_str(&body).map_err(|e| format!("{image}: config: {e}"))?;
    if let Some(a) = blob["architecture"].as_str() {
        if a != arch {
            return Err(format!(
                "{image} is a linux/{a} image and the task's architecture is {arch}"
            ));
        }
    }
    Ok(image_config(&blob["config"]))
}

/// What bosun-deploy needs of an image config (an OCI config's `config`, or `docker
/// image inspect`'s `.Config`).
pub fn image_config(c: &Value) -> ImageConfig {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    ImageConfig {
        entrypoint: strings(&c["Entrypoint"]),
        cmd: strings(&c["Cmd"]),
        stop_signal: text(&c["StopSignal"]),
        user: text(&c["User"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_docker_reads_them() {
        let r = |s: &str| {
            let p = parse(s).unwrap();
            (p.host, p.repository, p.reference)
        };
        let own = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(r("busybox"), own(DOCKER_HUB, "library/busybox", "latest"));
        assert_eq!(r("acme/app:1.2"), own(DOCKER_HUB, "acme/app", "1.2"));
        assert_eq!(r("ghcr.io/acme/app"), own("ghcr.io", "acme/app", "latest"));
        assert_eq!(
            r("127.0.0.1:5000/team/app:1"),
            own("127.0.0.1:5000", "team/app", "1")
        );
        assert_eq!(
            r("localhost/app@sha256:ab"),
            own("localhost", "app", "sha256:ab")
        );
        assert_eq!(
            r("1234.dkr.ecr.eu-west-1.amazonaws.com/app:v@sha256:cd"),
            own("1234.dkr.ecr.eu-west-1.amazonaws.com", "app", "sha256:cd")
        );
        assert!(is_ecr("1234.dkr.ecr.eu-west-1.amazonaws.com"));
        assert!(!is_ecr("ghcr.io"));
    }

    #[test]
    fn bearer_challenges_are_read() {
        let p = header_params(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            p,
            vec![
                (
                    "realm".to_owned(),
                    "https://auth.docker.io/token".to_owned()
                ),
                ("service".to_owned(), "registry.docker.io".to_owned()),
                (
                    "scope".to_owned(),
                    "repository:library/busybox:pull".to_owned()
                ),
            ]
        );
    }
}
