//! Registries, through the OCI distribution API (v2) and ORAS's client (`oci-client`):
//! a prebuilt image's config read without pulling it (the manifest, for a
//! multi-platform image the task's platform's, then the config blob), and the image
//! with bosun added pushed to the stack's repository. Access as registries grant it:
//! none, an anonymous bearer token (Docker Hub, GHCR and the like answer 401 with
//! where to get one), or basic credentials (ECR's token).

use std::time::Duration;

use futures_util::TryStreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::{Client, Reference as OciRef, RegistryOperation};
use serde_json::Value;

use crate::deploy::naming::BOSUN_PATH;

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

/// The manifest types bosun-deploy reads: an index (OCI's or Docker's list), or one
/// image's manifest (OCI's or Docker's schema 2).
const MANIFESTS: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A registry's access: none, or a user and password (ECR's token, or a secret's).
pub type Auth = oci_client::secrets::RegistryAuth;

/// The access for `basic` credentials, when there are any.
pub fn auth(basic: Option<(&str, &str)>) -> Auth {
    match basic {
        Some((u, p)) => Auth::Basic(u.to_owned(), p.to_owned()),
        None => Auth::Anonymous,
    }
}

/// Loopback registries speak plain HTTP (as Docker lets them); any other, HTTPS.
fn is_loopback(host: &str) -> bool {
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

/// A client for the registries of `images`. A 401 is answered with the token or
/// credentials the registry asks for. Blobs are pushed in one request each (the
/// distribution spec's monolithic POST then PUT): ECR's chunked upload wants parts of
/// at least 5 MiB but for the last (ECR API reference, UploadLayerPart; oci-client
/// cuts 4 MiB chunks) and answers a PATCH with 201, dropping later chunks
/// (aws/containers-roadmap#2831), while a monolithic PUT takes a layer of any size.
fn client(images: &[&str]) -> Client {
    let local = images
        .iter()
        .filter_map(|i| parse(i).ok())
        .map(|r| r.host)
        .filter(|h| is_loopback(h))
        .collect();
    Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(local),
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        use_monolithic_push: true,
        platform_resolver: None,
        ..ClientConfig::default()
    })
}

fn oci_reference(image: &str) -> Result<OciRef, String> {
    let r = parse(image)?;
    let text = if r.reference.starts_with("sha256:") {
        format!("{}/{}@{}", r.host, r.repository, r.reference)
    } else {
        format!("{}/{}:{}", r.host, r.repository, r.reference)
    };
    text.parse()
        .map_err(|e| format!("{image:?} is not an image reference: {e}"))
}

/// One image of one platform as its registry holds it: its manifest and config.
pub struct Source {
    /// Where it was read (by digest, once an index was resolved).
    reference: OciRef,
    manifest: Value,
    /// The config blob, as it is.
    config: Value,
}

impl Source {
    /// The manifest's media type (an OCI manifest may leave it out).
    fn media_type(&self) -> &str {
        self.manifest["mediaType"]
            .as_str()
            .unwrap_or("application/vnd.oci.image.manifest.v1+json")
    }

    /// What bosun-deploy needs of the image's config.
    pub fn image_config(&self) -> ImageConfig {
        image_config(&self.config["config"])
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Read `image`'s manifest for linux/`arch` (through its index when it has one) and
/// its config.
async fn read(client: &Client, image: &str, arch: &str, auth: &Auth) -> Result<Source, String> {
    let mut reference = oci_reference(image)?;
    let fail = |e: oci_client::errors::OciDistributionError| format!("{image}: {e}");
    let (body, _) = client
        .pull_manifest_raw(&reference, auth, &MANIFESTS)
        .await
        .map_err(fail)?;
    let mut manifest: Value =
        serde_json::from_slice(&body).map_err(|e| format!("{image}: manifest: {e}"))?;
    if let Some(list) = manifest["manifests"].as_array() {
        let pick = list
            .iter()
            .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == arch)
            .ok_or_else(|| format!("{image} has no linux/{arch} image"))?;
        let digest = pick["digest"].as_str().unwrap_or_default().to_owned();
        reference = oci_reference(&format!(
            "{}/{}@{digest}",
            reference.resolve_registry(),
            reference.repository()
        ))?;
        let (body, _) = client
            .pull_manifest_raw(&reference, auth, &MANIFESTS)
            .await
            .map_err(fail)?;
        manifest = serde_json::from_slice(&body).map_err(|e| format!("{image}: manifest: {e}"))?;
    }
    let digest = manifest["config"]["digest"]
        .as_str()
        .ok_or_else(|| format!("{image}: a manifest with no config (schema 1 is not read)"))?
        .to_owned();
    let mut blob = Vec::new();
    client
        .pull_blob(&reference, digest.as_str(), &mut blob)
        .await
        .map_err(fail)?;
    let config: Value =
        serde_json::from_slice(&blob).map_err(|e| format!("{image}: config: {e}"))?;
    if let Some(a) = config["architecture"].as_str() {
        if a != arch {
            return Err(format!(
                "{image} is a linux/{a} image and the task's architecture is {arch}"
            ));
        }
    }
    Ok(Source {
        reference,
        manifest,
        config,
    })
}

/// Read the config of `image` for `arch` (`amd64`, `arm64`).
pub async fn config(image: &str, arch: &str, auth: &Auth) -> Result<ImageConfig, String> {
    read(&client(&[image]), image, arch, auth)
        .await
        .map(|s| s.image_config())
}

/// The layer that adds bosun to an image: a gzipped tar of fixed times and owners
/// ([`super::inject::layer_bytes`]), so the same bosun is the same blob every time.
pub struct BosunLayer {
    gz: Vec<u8>,
    digest: String,
    diff_id: String,
}

impl BosunLayer {
    /// The layer of `files` (path in the image → file here).
    pub fn new(files: &[(String, std::path::PathBuf)]) -> Result<Self, String> {
        use std::io::Write;
        let tar = super::inject::layer_bytes(files)?;
        // No name and time 0 in the gzip header: the same tar gives the same bytes.
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).map_err(|e| format!("gzip: {e}"))?;
        let gz = gz.finish().map_err(|e| format!("gzip: {e}"))?;
        Ok(Self {
            digest: sha256(&gz),
            diff_id: sha256(&tar),
            gz,
        })
    }
}

/// The image with bosun added: `source`'s layers and one more, its config wrapping the
/// start command as `bosun-deploy inject` does (`bosun -- ENTRYPOINT`, the CMD kept;
/// a STOPSIGNAL becomes `BOSUN_STOP_SIGNAL`, with SIGTERM for bosun) and labelled
/// `dev.bosun.injected`. Returns the config's and the manifest's bytes.
fn with_bosun(source: &Source, layer: &BosunLayer) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut cfg = source.config.clone();
    cfg["rootfs"]["diff_ids"]
        .as_array_mut()
        .ok_or_else(|| "the image's config has no rootfs.diff_ids".to_owned())?
        .push(Value::from(layer.diff_id.clone()));
    // History, where there is one, has an entry per layer (and the empty ones).
    if let Some(h) = cfg["history"].as_array_mut() {
        h.push(serde_json::json!({ "created_by": format!("bosun-deploy: bosun added at {BOSUN_PATH}") }));
    }
    if !cfg["config"].is_object() {
        cfg["config"] = serde_json::json!({});
    }
    let c = &mut cfg["config"];
    let own = c["Entrypoint"].as_array().cloned().unwrap_or_default();
    if own.first().and_then(Value::as_str) != Some(BOSUN_PATH) {
        let mut entry = vec![Value::from(BOSUN_PATH), Value::from("--")];
        entry.extend(own);
        c["Entrypoint"] = Value::from(entry);
    }
    if !c["Labels"].is_object() {
        c["Labels"] = serde_json::json!({});
    }
    c["Labels"][INJECTED_LABEL] = Value::from("true");
    if let Some(sig) = c["StopSignal"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
    {
        if !c["Env"].is_array() {
            c["Env"] = serde_json::json!([]);
        }
        if let Some(env) = c["Env"].as_array_mut() {
            env.push(Value::from(format!("BOSUN_STOP_SIGNAL={sig}")));
        }
        c["StopSignal"] = Value::from("SIGTERM");
    }
    let config = serde_json::to_vec(&cfg).map_err(|e| e.to_string())?;
    let mut m = source.manifest.clone();
    m["config"]["digest"] = Value::from(sha256(&config));
    m["config"]["size"] = Value::from(config.len());
    let layer_type = if source.media_type().contains("docker") {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    } else {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    };
    m["layers"]
        .as_array_mut()
        .ok_or_else(|| "the image's manifest has no layers".to_owned())?
        .push(serde_json::json!({
            "mediaType": layer_type,
            "digest": layer.digest,
            "size": layer.gz.len(),
        }));
    let manifest = serde_json::to_vec(&m).map_err(|e| e.to_string())?;
    Ok((config, manifest))
}

/// Where the image with bosun added goes, and with what access.
pub struct Destination<'a> {
    /// `HOST/REPOSITORY`.
    pub repository: &'a str,
    pub auth: &'a Auth,
}

/// `image` (linux/`arch`) with bosun added as `to.repository@DIGEST`, the same digest
/// for the same image and bosun. With `push`, pushed there (tagged with the digest's
/// first 12 hex digits): each layer mounted from the source repository when both are
/// in one registry, else copied (streamed, never whole in memory), and skipped when the
/// destination has it, so a second push of the same image sends only its manifest.
pub async fn add_bosun(
    image: &str,
    arch: &str,
    from: &Auth,
    to: Destination<'_>,
    layer: &BosunLayer,
    push: bool,
) -> Result<String, String> {
    let client = client(&[image, to.repository]);
    let source = read(&client, image, arch, from).await?;
    let (config, manifest) = with_bosun(&source, layer)?;
    let digest = sha256(&manifest);
    let pinned = format!("{}@{digest}", to.repository);
    if !push {
        return Ok(pinned);
    }
    let tagged = format!("{}:{}", to.repository, &digest[7..19]);
    let dest = oci_reference(&tagged)?;
    let fail = |e: oci_client::errors::OciDistributionError| format!("{}: {e}", to.repository);
    client
        .auth(&dest, to.auth, RegistryOperation::Push)
        .await
        .map_err(fail)?;
    let same_registry = dest.resolve_registry() == source.reference.resolve_registry();
    let layers = source.manifest["layers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for l in &layers {
        let digest = l["digest"].as_str().unwrap_or_default();
        if client.blob_exists(&dest, digest).await.map_err(fail)? {
            continue;
        }
        // A mount needs ECR's registry setting for it, and the same encryption on both
        // repositories (ECR User Guide, "Blob mounting in Amazon ECR"); refused, the
        // layer is copied.
        if same_registry
            && client
                .mount_blob(&dest, &source.reference, digest)
                .await
                .is_ok()
        {
            continue;
        }
        let size = l["size"].as_u64();
        let stream = client
            .pull_blob_stream(&source.reference, digest)
            .await
            .map_err(|e| format!("{image}: layer {digest}: {e}"))?;
        client
            .push_blob_stream(
                &dest,
                stream.stream.map_err(Into::into),
                digest,
                size.or(stream.content_length),
            )
            .await
            .map_err(|e| format!("{}: layer {digest}: {e}", to.repository))?;
    }
    if !client
        .blob_exists(&dest, &layer.digest)
        .await
        .map_err(fail)?
    {
        client
            .push_blob(&dest, layer.gz.clone(), &layer.digest)
            .await
            .map_err(fail)?;
    }
    client
        .push_blob(&dest, config.clone(), &sha256(&config))
        .await
        .map_err(fail)?;
    let content_type = source
        .media_type()
        .parse()
        .map_err(|e| format!("{image}: media type: {e}"))?;
    client
        .push_manifest_raw(&dest, manifest, content_type)
        .await
        .map_err(fail)?;
    Ok(pinned)
}

/// The label `bosun-deploy inject` and an image with bosun added carry.
pub const INJECTED_LABEL: &str = "dev.bosun.injected";

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
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
        bosun_label: c["Labels"][INJECTED_LABEL] == "true",
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

    fn source(media_type: Option<&str>) -> Source {
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:c0", "size": 10 },
            "layers": [{ "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": "sha256:l1", "size": 5 }],
        });
        if let Some(t) = media_type {
            manifest["mediaType"] = Value::from(t);
        }
        Source {
            reference: "127.0.0.1:5000/team/app:1".parse().unwrap(),
            manifest,
            config: serde_json::json!({
                "architecture": "amd64",
                "config": { "Entrypoint": ["/bin/app"], "Cmd": ["serve"], "StopSignal": "SIGQUIT", "Env": ["PATH=/bin"] },
                "rootfs": { "type": "layers", "diff_ids": ["sha256:d1"] },
                "history": [{ "created_by": "COPY app" }],
            }),
        }
    }

    #[test]
    fn bosun_is_added_as_one_more_layer_and_the_start_wraps_it() {
        let dir = std::env::temp_dir().join(format!("bosun-registry-layer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bosun"), b"\x7fELF not really").unwrap();
        let files = [(BOSUN_PATH.to_owned(), dir.join("bosun"))];
        let layer = BosunLayer::new(&files).unwrap();
        // The same bosun is the same blob, whenever it is made.
        assert_eq!(BosunLayer::new(&files).unwrap().digest, layer.digest);
        let src = source(Some("application/vnd.docker.distribution.manifest.v2+json"));
        let (config, manifest) = with_bosun(&src, &layer).unwrap();
        assert_eq!(with_bosun(&src, &layer).unwrap().1, manifest);
        let cfg: Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(
            cfg["rootfs"]["diff_ids"],
            serde_json::json!(["sha256:d1", layer.diff_id])
        );
        assert_eq!(cfg["history"].as_array().unwrap().len(), 2);
        let c = &cfg["config"];
        assert_eq!(
            c["Entrypoint"],
            serde_json::json!([BOSUN_PATH, "--", "/bin/app"])
        );
        assert_eq!(c["Cmd"], serde_json::json!(["serve"]));
        assert_eq!(c["StopSignal"], "SIGTERM");
        assert_eq!(
            c["Env"],
            serde_json::json!(["PATH=/bin", "BOSUN_STOP_SIGNAL=SIGQUIT"])
        );
        assert!(image_config(c).holds_bosun());
        let m: Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(m["config"]["digest"], Value::from(sha256(&config)));
        assert_eq!(m["config"]["size"], Value::from(config.len()));
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[1]["digest"], Value::from(layer.digest.clone()));
        assert_eq!(
            layers[1]["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        // An OCI manifest (its media type may be left out) gets an OCI layer.
        let (_, oci) = with_bosun(&source(None), &layer).unwrap();
        let oci: Value = serde_json::from_slice(&oci).unwrap();
        assert_eq!(
            oci["layers"][1]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        // The layer is the gzipped tar of the file at its path.
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&layer.gz[..]), &mut tar)
            .unwrap();
        assert_eq!(sha256(&tar), layer.diff_id);
        let names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "usr/",
                "usr/local/",
                "usr/local/bin/",
                "usr/local/bin/bosun"
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
