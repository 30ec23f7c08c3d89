//! Auto-packaging (`image-buildpack`, alias `stacktape-image-buildpack`): from an
//! entry file and the project files around it, the language and a Dockerfile, built
//! like a `custom-dockerfile` (so it gets bosun, a registry and a digest the same way).
//! `render` shows the generated Dockerfile, so a user can take it over.
//!
//! - Node.js (`.js`, `.mjs`, `.cjs`, `.ts`, `.mts`): the project is the nearest folder
//!   with a `package.json`; dependencies are installed as its lock file says
//!   (`npm ci`, `yarn`, `pnpm`; `npm install` without one), production only, and not at
//!   all when it has none. TypeScript runs with Node's type stripping.
//! - Python (`.py`): the nearest folder with `requirements.txt` or `pyproject.toml`;
//!   the requirements (or the project) installed with pip.
//! - Go (`.go`): the nearest folder with `go.mod`; a static binary (`CGO_ENABLED=0`,
//!   `-trimpath`) of the entry file's package, alone in a `scratch` image with the CA
//!   certificates.

use std::path::{Path, PathBuf};

use crate::deploy::stack::limits::ENTRY_EXTENSIONS;
use crate::deploy::stack::Container;

/// The base images, changed with `packaging.properties.baseImage`.
pub const NODE_BASE: &str = "node:22-bookworm-slim";
pub const PYTHON_BASE: &str = "python:3.12-slim-bookworm";
pub const GO_BASE: &str = "golang:1.23-bookworm";

pub use crate::deploy::stack::is_buildpack;

/// A generated build: the context (the project's folder) and the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub language: &'static str,
    pub context: PathBuf,
    pub dockerfile: String,
}

/// The nearest folder from `start` up to `top` (inclusive) holding any of `markers`.
fn project_root(start: &Path, top: &Path, markers: &[&str]) -> Option<PathBuf> {
    let mut dir = start.to_path_buf();
    loop {
        if markers.iter().any(|m| dir.join(m).is_file()) {
            return Some(dir);
        }
        if dir == top || !dir.pop() || !dir.starts_with(top) {
            return None;
        }
    }
}

fn json_words(words: &[&str]) -> String {
    serde_json::to_string(words).unwrap_or_default()
}

/// Generate the build of a resource's entry file (relative to `stack_dir`).
pub fn generate(stack_dir: &Path, ctr: &Container) -> Result<Generated, String> {
    let props = &ctr.packaging.properties;
    let rel = props
        .entryfile_path
        .as_deref()
        .ok_or("image-buildpack needs properties.entryfilePath")?;
    let top = stack_dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", stack_dir.display()))?;
    let entry = top.join(rel);
    if !entry.is_file() {
        return Err(format!("entry file {} does not exist", entry.display()));
    }
    let ext = entry
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let start = entry.parent().unwrap_or(&top).to_path_buf();
    let arch = ctr.docker_arch();
    let language = ENTRY_EXTENSIONS
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, l)| *l)
        .ok_or_else(|| {
            format!(
                "entry file {}: no language for .{ext} (known: {})",
                entry.display(),
                ENTRY_EXTENSIONS
                    .iter()
                    .map(|(e, _)| format!(".{e}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    let markers: &[&str] = match language {
        "Node.js" => &["package.json"],
        "Python" => &["requirements.txt", "pyproject.toml"],
        _ => &["go.mod"],
    };
    let root = project_root(&start, &top, markers).ok_or_else(|| {
        format!(
            "entry file {}: no {} beside it or above it (up to the stack file's folder), so the {language} project cannot be found",
            entry.display(),
            markers.join(" or ")
        )
    })?;
    let in_project = entry
        .strip_prefix(&root)
        .map_err(|_| format!("{} is outside {}", entry.display(), root.display()))?
        .to_string_lossy()
        .replace('\\', "/");
    let base = |default: &str| {
        props
            .base_image
            .clone()
            .unwrap_or_else(|| default.to_owned())
    };
    let dockerfile = match language {
        "Node.js" => node(&root, &in_project, &base(NODE_BASE))?,
        "Python" => python(&root, &in_project, &base(PYTHON_BASE))?,
        _ => go(&in_project, &base(GO_BASE), arch),
    };
    Ok(Generated {
        language,
        context: root,
        dockerfile,
    })
}

fn node(root: &Path, entry: &str, base: &str) -> Result<String, String> {
    let manifest = root.join("package.json");
    let text =
        std::fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let pkg: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not JSON: {e}", manifest.display()))?;
    let has_deps = pkg["dependencies"]
        .as_object()
        .is_some_and(|d| !d.is_empty());
    let (copy, install) = if root.join("package-lock.json").is_file() {
        ("package.json package-lock.json", "npm ci --omit=dev")
    } else if root.join("yarn.lock").is_file() {
        (
            "package.json yarn.lock",
            "corepack enable && yarn install --frozen-lockfile --production",
        )
    } else if root.join("pnpm-lock.yaml").is_file() {
        (
            "package.json pnpm-lock.yaml",
            "corepack enable && pnpm install --frozen-lockfile --prod",
        )
    } else {
        ("package.json", "npm install --omit=dev")
    };
    let ts = entry.ends_with(".ts") || entry.ends_with(".mts");
    let cmd: Vec<&str> = if ts {
        vec!["node", "--experimental-strip-types", entry]
    } else {
        vec!["node", entry]
    };
    let mut out = format!(
        "# Generated by bosun-deploy (image-buildpack, Node.js)\nFROM {base}\nWORKDIR /app\nENV NODE_ENV=production\n"
    );
    if has_deps {
        out.push_str(&format!("COPY {copy} ./\nRUN {install}\n"));
    }
    out.push_str(&format!("COPY . .\nCMD {}\n", json_words(&cmd)));
    Ok(out)
}

fn python(root: &Path, entry: &str, base: &str) -> Result<String, String> {
    let mut out = format!(
        "# Generated by bosun-deploy (image-buildpack, Python)\nFROM {base}\nWORKDIR /app\nENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1\n"
    );
    let reqs = root.join("requirements.txt");
    if reqs.is_file() {
        let text =
            std::fs::read_to_string(&reqs).map_err(|e| format!("{}: {e}", reqs.display()))?;
        let any = text
            .lines()
            .map(str::trim)
            .any(|l| !l.is_empty() && !l.starts_with('#'));
        if any {
            out.push_str(
                "COPY requirements.txt ./\nRUN pip install --no-cache-dir -r requirements.txt\n",
            );
        }
        out.push_str("COPY . .\n");
    } else {
        out.push_str("COPY . .\nRUN pip install --no-cache-dir .\n");
    }
    out.push_str(&format!("CMD {}\n", json_words(&["python", entry])));
    Ok(out)
}

fn go(entry: &str, base: &str, arch: &str) -> String {
    let package = match entry.rsplit_once('/') {
        Some((dir, _)) => format!("./{dir}"),
        None => ".".to_owned(),
    };
    format!(
        "# Generated by bosun-deploy (image-buildpack, Go)\nFROM {base} AS build\nWORKDIR /src\nCOPY go.* ./\nRUN go mod download\nCOPY . .\nRUN CGO_ENABLED=0 GOOS=linux GOARCH={arch} go build -trimpath -ldflags=\"-s -w\" -o /out/app {package}\n\nFROM scratch\nCOPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/\nCOPY --from=build /out/app /app\nCMD [\"/app\"]\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctr(entry: &str, base: Option<&str>) -> Container {
        serde_json::from_value(serde_json::json!({
            "packaging": { "type": "image-buildpack", "properties": { "entryfilePath": entry, "baseImage": base } }
        }))
        .unwrap()
    }

    fn project(label: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("bosun-buildpack-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn node_projects_install_as_their_lock_file_says() {
        let dir = project(
            "node",
            &[
                ("svc/package.json", r#"{"dependencies":{"left-pad":"1"}}"#),
                ("svc/package-lock.json", "{}"),
                ("svc/src/main.ts", ""),
            ],
        );
        let g = generate(&dir, &ctr("svc/src/main.ts", None)).unwrap();
        assert_eq!(g.language, "Node.js");
        assert_eq!(g.context, dir.canonicalize().unwrap().join("svc"));
        assert_eq!(
            g.dockerfile,
            "# Generated by bosun-deploy (image-buildpack, Node.js)\nFROM node:22-bookworm-slim\nWORKDIR /app\nENV NODE_ENV=production\nCOPY package.json package-lock.json ./\nRUN npm ci --omit=dev\nCOPY . .\nCMD [\"node\",\"--experimental-strip-types\",\"src/main.ts\"]\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn python_and_go_and_what_cannot_be_found() {
        let dir = project(
            "python",
            &[
                ("requirements.txt", "# nothing yet\n"),
                ("worker.py", ""),
                ("tool/go.mod", "module x\n"),
                ("tool/cmd/run/main.go", ""),
                ("lost/a.py", ""),
                ("x.rb", ""),
            ],
        );
        let py = generate(&dir, &ctr("worker.py", Some("python:3.13-slim"))).unwrap();
        assert_eq!(
            py.dockerfile,
            "# Generated by bosun-deploy (image-buildpack, Python)\nFROM python:3.13-slim\nWORKDIR /app\nENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1\nCOPY . .\nCMD [\"python\",\"worker.py\"]\n"
        );
        let go = generate(&dir, &ctr("tool/cmd/run/main.go", None)).unwrap();
        assert!(
            go.dockerfile.contains(
                "GOARCH=amd64 go build -trimpath -ldflags=\"-s -w\" -o /out/app ./cmd/run\n"
            ),
            "{}",
            go.dockerfile
        );
        assert!(go.dockerfile.contains("FROM scratch\n"));
        // lost/a.py finds the requirements.txt above it: the project is the stack's folder.
        assert_eq!(
            generate(&dir, &ctr("lost/a.py", None)).unwrap().context,
            dir.canonicalize().unwrap()
        );
        let e = generate(&dir, &ctr("x.rb", None)).unwrap_err();
        assert!(
            e.contains("no language for .rb (known: .js, .mjs, .cjs, .ts, .mts, .py, .go)"),
            "{e}"
        );
        let e = generate(&dir, &ctr("nope.py", None)).unwrap_err();
        assert!(e.contains("nope.py does not exist"), "{e}");
        std::fs::remove_file(dir.join("requirements.txt")).unwrap();
        let e = generate(&dir, &ctr("worker.py", None)).unwrap_err();
        assert!(
            e.contains("no requirements.txt or pyproject.toml beside it or above it"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
