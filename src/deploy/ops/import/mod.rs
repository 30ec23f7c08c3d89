//! `bosun-deploy import copilot [DIR] [--out FILE]`: an AWS Copilot workspace's worker
//! services and scheduled jobs (`copilot/*/manifest.yml`) as one stack file. Each
//! manifest's `environments.NAME` becomes `stages.NAME`; every key that has no place in
//! a stack file is a warning naming the manifest, line and key, and a comment at the
//! top of the file written: nothing is dropped silently. The file is checked as
//! `validate` checks it, and never written over an existing one.

mod convert;
mod parts;

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::deploy::naming;
use crate::deploy::stack::{validate, yaml};
use convert::{changes, convert, merge, removed, Sink};

/// What was written.
pub struct Imported {
    pub file: PathBuf,
    /// The resources made, by manifest (`copilot/NAME/manifest.yml → name`).
    pub made: Vec<String>,
    pub warnings: Vec<String>,
    /// `validate`'s report when the file written does not validate (the manifests'
    /// own values out of AWS's ranges, say): the file is written all the same, so
    /// nothing is lost, and the report says what to fix.
    pub invalid: Option<String>,
}

/// A usage error (exit 2): no workspace, an unreadable manifest, an existing output.
#[derive(Debug)]
pub struct ImportError(pub String);

/// Read DIR's Copilot workspace and write the stack file.
pub fn copilot(dir: &Path, out: Option<&Path>) -> Result<Imported, ImportError> {
    let root = dir.join("copilot");
    if !root.is_dir() {
        return Err(ImportError(format!(
            "{}: no copilot/ folder (run it in a Copilot workspace, or give its folder)",
            dir.display()
        )));
    }
    let out = out.map_or_else(|| dir.join("bosun.yaml"), Path::to_path_buf);
    if out.exists() {
        return Err(ImportError(format!(
            "{} exists: import never overwrites a file (--out FILE names another)",
            out.display()
        )));
    }
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&root)
        .map_err(|e| ImportError(format!("{}: {e}", root.display())))?
        .flatten()
        .map(|e| e.path().join("manifest.yml"))
        .filter(|p| p.is_file())
        .collect();
    manifests.sort();
    if manifests.is_empty() {
        return Err(ImportError(format!(
            "{}: no */manifest.yml",
            root.display()
        )));
    }
    let ws_to_out = relative_dir(dir, out.parent().unwrap_or(Path::new(".")))?;
    let mut resources = Map::new();
    let mut stages: Map<String, Value> = Map::new();
    let mut warnings = Vec::new();
    let mut made = Vec::new();
    for path in &manifests {
        let shown = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ImportError(format!("{}: {e}", path.display())))?;
        let (value, positions) = yaml::parse(&text).map_err(|e| {
            ImportError(format!(
                "{shown}:{}:{}: not valid YAML: {}",
                e.line, e.col, e.message
            ))
        })?;
        let mut sink = Sink {
            file: &shown,
            positions: &positions,
            warnings: Vec::new(),
        };
        let kind = value["type"].as_str().unwrap_or_default();
        if !["Worker Service", "Backend Service", "Scheduled Job"].contains(&kind) {
            sink.warn(
                "/type",
                format!("'{kind}' is not carried over: bosun deploys worker services, backend services and scheduled jobs"),
            );
            warnings.append(&mut sink.warnings);
            continue;
        }
        let base = convert(&value, &ws_to_out, &mut sink)
            .map_err(|e| ImportError(format!("{shown}: {e}")))?;
        if resources.contains_key(&base.name) {
            return Err(ImportError(format!(
                "{shown}: a second resource named {} (from another manifest's name)",
                base.name
            )));
        }
        made.push(format!("{shown} → {}", base.name));
        // Each environment: the manifest with its overrides merged in, converted,
        // and what differs from the base kept as the stage's overrides.
        if let Some(envs) = value["environments"].as_object() {
            for (env, over) in envs {
                let stage = stage_name(env);
                if stage != *env {
                    sink.warn(
                        &format!("/environments/{env}"),
                        format!("written as stage '{stage}' (lowercase letters, digits and '-', at most 16)"),
                    );
                }
                if over.get("type").is_some() || over.get("name").is_some() {
                    sink.warn(
                        &format!("/environments/{env}"),
                        "name and type are not overridden",
                    );
                }
                let merged = merge(&value, over);
                let mut quiet = Sink {
                    file: &shown,
                    positions: &positions,
                    warnings: Vec::new(),
                };
                let env_conv = convert(&merged, &ws_to_out, &mut quiet)
                    .map_err(|e| ImportError(format!("{shown}: environments.{env}: {e}")))?;
                // Warnings that only the environment's values raise are its own.
                for w in quiet.warnings {
                    if !sink.warnings.contains(&w) {
                        sink.warnings.push(format!("{w} (environment {env})"));
                    }
                }
                let mut overrides = Map::new();
                if let Some(c) = changes(
                    &base.resource["properties"],
                    &env_conv.resource["properties"],
                ) {
                    overrides.insert(base.name.clone(), json!({ "properties": c }));
                }
                if let (Some((qn, q)), Some((_, eq))) = (&base.queue, &env_conv.queue) {
                    if let Some(c) = changes(&q["properties"], &eq["properties"]) {
                        overrides.insert(qn.clone(), json!({ "properties": c }));
                    }
                }
                let mut gone = Vec::new();
                removed(
                    &base.resource["properties"],
                    &env_conv.resource["properties"],
                    "",
                    &mut gone,
                );
                for g in gone {
                    // A switch the environment leaves at its default is written so.
                    let neutral = match g.as_str() {
                        "/enabled" => Some(json!(true)),
                        "/enableExecuteCommand" => Some(json!(false)),
                        _ => None,
                    };
                    if let Some(v) = neutral {
                        let props = overrides
                            .entry(base.name.clone())
                            .or_insert_with(|| json!({ "properties": {} }));
                        props["properties"][g.trim_start_matches('/')] = v;
                        continue;
                    }
                    sink.warn(
                        &format!("/environments/{env}"),
                        format!(
                            "drops {} of the base ({}), which a stage cannot take away: stage {stage} keeps it",
                            g.trim_start_matches('/').replace('/', "."),
                            base.name
                        ),
                    );
                }
                // A stage with no override is still listed: `--stage NAME` then works.
                let st = stages.entry(stage).or_insert_with(|| json!({}));
                if !overrides.is_empty() {
                    let res = st
                        .as_object_mut()
                        .map(|o| o.entry("resources").or_insert_with(|| json!({})));
                    if let Some(Value::Object(r)) = res {
                        r.extend(overrides);
                    }
                }
            }
        }
        // In the order of the manifest's lines.
        sink.warnings.sort_by_key(|w| {
            w[shown.len() + 1..]
                .split(':')
                .next()
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(0)
        });
        resources.insert(base.name.clone(), base.resource);
        if let Some((qn, q)) = base.queue {
            resources.insert(qn, q);
        }
        warnings.append(&mut sink.warnings);
    }
    if resources.is_empty() {
        return Err(ImportError(format!(
            "{}: no Worker Service, Backend Service or Scheduled Job manifest",
            root.display()
        )));
    }
    let stack = stack_name(dir);
    let text = write_stack(&stack, &resources, &stages, &warnings);
    let invalid = validate::check(&out.display().to_string(), &text)
        .err()
        .map(|r| r.to_string());
    super::init::write_new(&out, &text)
        .map_err(|e| ImportError(format!("{}: {e}", out.display())))?;
    Ok(Imported {
        file: out,
        made,
        warnings,
        invalid,
    })
}

/// The workspace folder as seen from `out_dir` (`.` when they are the same).
fn relative_dir(ws: &Path, out_dir: &Path) -> Result<String, ImportError> {
    let canon = |p: &Path| {
        let p = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        p.canonicalize()
            .map(|c| c.to_string_lossy().into_owned())
            .map_err(|e| ImportError(format!("{}: {e}", p.display())))
    };
    let rel = parts::relative_to(&canon(ws)?, &canon(out_dir)?);
    Ok(if rel.is_empty() { ".".into() } else { rel })
}

/// The stack's name: the Copilot application's (`copilot/.workspace`), else the
/// folder's.
fn stack_name(dir: &Path) -> String {
    let app = std::fs::read_to_string(dir.join("copilot/.workspace"))
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("application:")
                    .map(|a| a.trim().to_owned())
            })
        })
        .filter(|a| !a.is_empty());
    naming::stack_name_from(&app.unwrap_or_else(|| super::init::folder_name(dir)))
}

fn stage_name(env: &str) -> String {
    match naming::kebab(env, validate::STAGE_MAX) {
        s if s.is_empty() => "stage".into(),
        s => s,
    }
}

/// The stack file: the warnings as comments first, then the stack.
fn write_stack(
    stack: &str,
    resources: &Map<String, Value>,
    stages: &Map<String, Value>,
    warnings: &[String],
) -> String {
    let mut out = String::from(
        "# Written by `bosun-deploy import copilot` from the Copilot manifests below.\n\
         # Check it with `bosun-deploy validate`, see what it would make with `bosun-deploy diff`.\n",
    );
    if !warnings.is_empty() {
        out.push_str("#\n# Left behind (not in this file):\n");
        for w in warnings {
            out.push_str(&format!("#   {w}\n"));
        }
    }
    out.push_str(&format!("stack: {}\n", scalar(&json!(stack))));
    out.push_str("resources:\n");
    emit_map(resources, 1, &mut out);
    if !stages.is_empty() {
        out.push_str("stages:\n");
        emit_map(stages, 1, &mut out);
    }
    out
}

/// The order keys are written in: what a reader looks for first.
const ORDER: &[&str] = &[
    "type",
    "properties",
    "packaging",
    "image",
    "buildContextPath",
    "dockerfilePath",
    "entryPoint",
    "command",
    "schedule",
    "enabled",
    "name",
    "value",
];

fn emit_map(m: &Map<String, Value>, depth: usize, out: &mut String) {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort_by_key(|k| {
        (
            ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()),
            k.as_str(),
        )
    });
    let pad = "  ".repeat(depth);
    for k in keys {
        let v = &m[k];
        let key = scalar(&json!(k)).trim_matches('"').to_owned();
        let key = if key == *k { key } else { scalar(&json!(k)) };
        match v {
            Value::Object(o) if !o.is_empty() => {
                out.push_str(&format!("{pad}{key}:\n"));
                emit_map(o, depth + 1, out);
            }
            Value::Array(a) if a.iter().any(Value::is_object) => {
                out.push_str(&format!("{pad}{key}:\n"));
                for item in a {
                    out.push_str(&format!("{pad}  - {}\n", flow(item)));
                }
            }
            other => out.push_str(&format!("{pad}{key}: {}\n", flow(other))),
        }
    }
}

/// A value on one line (YAML flow style).
fn flow(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort_by_key(|k| {
                (
                    ORDER.iter().position(|x| x == k).unwrap_or(ORDER.len()),
                    k.as_str(),
                )
            });
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}: {}", flow(&o[*k])))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(flow).collect::<Vec<_>>().join(", ")),
        other => scalar(other),
    }
}

/// A scalar: numbers and booleans as they are, strings double-quoted (JSON's quoting
/// is YAML's) unless plain and unambiguous.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
                && s.starts_with(|c: char| c.is_ascii_alphabetic())
                && !["true", "false", "yes", "no", "on", "off", "null", "y", "n"]
                    .contains(&s.to_ascii_lowercase().as_str());
            if plain {
                s.clone()
            } else {
                serde_json::to_string(s).unwrap_or_default()
            }
        }
        // A whole number of vCPU or percent as one (`1`, not `1.0`).
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}
