//! Validation of a stack file: every problem at once, each with `file:line:column`,
//! the path of the field and what is allowed. First the structure (the published JSON
//! Schema: unknown keys, types, required fields), then the rules AWS applies but
//! moto does not (Fargate CPU/memory pairs, health check and timeout ranges, schedule
//! expressions, log retention values, scaling bounds), then the references between
//! resources (directives, connectTo, dead-letter targets), then warnings.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde_json::Value;

mod container;
mod repair;
mod rules;
mod stages;

use super::directive::{directive, Directive};
use super::limits::*;
use super::schedule;
use super::yaml::{self, Pos, Positions};
use super::{Container, Resource, Resources, Stack};
pub(crate) use repair::suggest;
use repair::{repair, Quiet};
use rules::{rules, Kinds};

pub use container::check_registry;
pub use stages::{stage_name_ok, STAGE_MAX};

/// The stack file's JSON Schema (published in the repository for editors).
pub const SCHEMA: &str = include_str!("../../../../schema/bosun-stack.schema.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// JSON pointer of the field (`/resources/worker/properties/stopTimeout`).
    pub pointer: String,
    pub message: String,
    pub pos: Option<Pos>,
}

impl Diagnostic {
    /// The field as users write it: `resources.worker.properties.stopTimeout`.
    pub fn path(&self) -> String {
        let p = self
            .pointer
            .trim_start_matches('/')
            .replace('/', ".")
            .replace("~1", "/")
            .replace("~0", "~");
        if p.is_empty() {
            "(file)".into()
        } else {
            p
        }
    }
}

/// All diagnostics of one file.
#[derive(Debug, Clone)]
pub struct Report {
    pub file: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            let (line, col) = d.pos.map_or((0, 0), |p| (p.line, p.col));
            let sev = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            writeln!(
                f,
                "{}:{line}:{col}: {sev}: {}: {}",
                self.file,
                d.path(),
                d.message
            )?;
        }
        Ok(())
    }
}

struct Collector<'a> {
    positions: &'a Positions,
    out: Vec<Diagnostic>,
}

impl Collector<'_> {
    /// The position of `pointer`, or of its nearest ancestor that has one.
    fn pos(&self, pointer: &str) -> Option<Pos> {
        let mut p = pointer.to_owned();
        loop {
            if let Some(pos) = self.positions.get(&p) {
                return Some(*pos);
            }
            match p.rfind('/') {
                Some(i) => p.truncate(i),
                None => return self.positions.get("").copied(),
            }
        }
    }

    fn push(&mut self, severity: Severity, pointer: String, message: String) {
        let pos = self.pos(&pointer);
        self.out.push(Diagnostic {
            severity,
            pointer,
            message,
            pos,
        });
    }

    fn error(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, pointer.into(), message.into());
    }

    fn warn(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, pointer.into(), message.into());
    }

    fn range(&mut self, pointer: String, value: Option<i64>, min: i64, max: i64) {
        if let Some(v) = value {
            if v < min || v > max {
                self.error(
                    pointer,
                    format!("{v} is out of range: allowed {min}..={max}"),
                );
            }
        }
    }
}

/// Read and check `path`: the stack, or the report of what is wrong. Warnings come
/// back with the stack.
pub fn load(path: &Path) -> Result<(Stack, Report), Report> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Report {
        file: file.clone(),
        diagnostics: vec![Diagnostic {
            severity: Severity::Error,
            pointer: String::new(),
            message: format!("cannot read: {e}"),
            pos: None,
        }],
    })?;
    check(&file, &text)
}

/// Check the text of a stack file named `file` (no stage).
pub fn check(file: &str, text: &str) -> Result<(Stack, Report), Report> {
    check_stage(file, text, None)
}

/// Check the text of a stack file named `file` for `stage`: its overrides merged over
/// the base, and the stack's names carrying the stage. Without a stage, a file that
/// lists stages is checked as each of them too, so one `validate` finds a mistake in
/// any stage.
pub fn check_stage(file: &str, text: &str, stage: Option<&str>) -> Result<(Stack, Report), Report> {
    let one_error = |message: String, pos: Option<Pos>| Report {
        file: file.into(),
        diagnostics: vec![Diagnostic {
            severity: Severity::Error,
            pointer: String::new(),
            message,
            pos,
        }],
    };
    let (mut value, positions) = match yaml::parse(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(one_error(
                format!("not valid YAML: {}", e.message),
                Some(Pos {
                    line: e.line,
                    col: e.col,
                }),
            ))
        }
    };
    if value.is_null() {
        return Err(one_error(
            "the file is empty: a stack file names its stack and resources (`bosun-deploy init` writes a starter)".into(),
            None,
        ));
    }
    account_as_written(&mut value, &positions, text);
    let base = one(file, value.clone(), positions.clone(), stage);
    if stage.is_some() {
        return base;
    }
    let listed = stages::listed(&value);
    if listed.is_empty() {
        return base;
    }
    let mut report = match &base {
        Ok((_, r)) | Err(r) => r.clone(),
    };
    for st in &listed {
        if !stages::stage_name_ok(st) {
            continue; // the base check reported the name
        }
        let other = match one(file, value.clone(), positions.clone(), Some(st)) {
            Ok((_, r)) | Err(r) => r,
        };
        for d in other.diagnostics {
            if !report.diagnostics.contains(&d) {
                report.diagnostics.push(d);
            }
        }
    }
    sort(&mut report.diagnostics);
    match base {
        Ok((s, _)) if !report.has_errors() => Ok((s, report)),
        _ => Err(report),
    }
}

/// An account id written without quotes is read by YAML as a number (and one with a
/// leading zero loses it): take the digits as the file has them.
fn account_as_written(value: &mut Value, positions: &Positions, text: &str) {
    if !value["account"].is_number() {
        return;
    }
    let Some(pos) = positions.get("/account") else {
        return;
    };
    // The position is the key's or the value's: read the value after `account:`.
    let raw: String = text
        .lines()
        .nth(pos.line.saturating_sub(1))
        .map(|l| {
            let rest: String = l.chars().skip(pos.col.saturating_sub(1)).collect();
            let rest = match rest.strip_prefix("account") {
                Some(r) => r
                    .trim_start()
                    .trim_start_matches(':')
                    .trim_start()
                    .to_owned(),
                None => rest,
            };
            rest.chars().take_while(char::is_ascii_digit).collect()
        })
        .unwrap_or_default();
    if !raw.is_empty() {
        value["account"] = Value::String(raw);
    }
}

fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| {
        (
            d.pos.map_or((0, 0), |p| (p.line, p.col)),
            d.severity == Severity::Warning,
        )
    });
}

/// Check one document: the base, or the base with one stage's overrides.
fn one(
    file: &str,
    mut value: Value,
    mut positions: Positions,
    stage: Option<&str>,
) -> Result<(Stack, Report), Report> {
    let mut errs = stages::Errs::default();
    let from_stage = stages::apply(&mut value, &mut positions, stage, &mut errs);
    let mut c = Collector {
        positions: &positions,
        out: Vec::new(),
    };
    for (pointer, message) in errs.0 {
        c.error(pointer, message);
    }
    structure(&value, &mut c);
    // The rules still run on every resource whose structure is right, so that one
    // run reports everything; references see every resource named in the file.
    let kinds: Kinds = value["resources"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let kind = match v["type"].as_str().unwrap_or("") {
                        // Stacktape's name for a worker service with ports.
                        "private-service" => "worker-service",
                        other => other,
                    };
                    (k.clone(), kind.to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let broken: BTreeSet<String> = c
        .out
        .iter()
        .filter_map(|d| {
            d.pointer
                .strip_prefix("/resources/")
                .map(|r| r.split('/').next().unwrap_or("").to_owned())
        })
        .collect();
    // A resource with a structural error is checked too, without the fields that are
    // wrong, so that one run reports everything; what the rules then find in an object
    // holding a structural error is left out, since it may follow from it (a typo'd
    // `memroy` is a missing `memory`). A resource that cannot be read even so is left
    // to its structural errors.
    let structural: Vec<(String, String)> = c
        .out
        .iter()
        .map(|d| (d.pointer.clone(), d.message.clone()))
        .collect();
    let mut quiet = Quiet::default();
    let mut usable = value.clone();
    if let Some(res) = usable.get_mut("resources").and_then(Value::as_object_mut) {
        // `properties` that can all default may be left out (`type: sqs-queue` alone).
        for r in res.values_mut() {
            if let Some(o) = r.as_object_mut() {
                o.entry("properties")
                    .or_insert_with(|| Value::Object(Default::default()));
            }
            // Stacktape's spelling of a prebuilt image's packaging.
            if let Some(t) = r.pointer_mut("/properties/packaging/type") {
                if t == "prebuilt-images" {
                    *t = Value::from("prebuilt-image");
                }
            }
        }
        for name in &broken {
            let root = format!("/resources/{}", name.replace('~', "~0").replace('/', "~1"));
            let repaired = res
                .get(name)
                .and_then(|r| repair(r, &root, &structural, &mut quiet));
            match repaired {
                Some(r) => {
                    res.insert(name.clone(), r);
                }
                None => {
                    res.remove(name);
                }
            }
        }
    }
    // The same for a top-level field: without it, the rest is checked.
    let mut top_errors = false;
    let mut top_broken = false;
    for (p, message) in &structural {
        if p.starts_with("/resources/") || p.starts_with("/stages/") {
            continue;
        }
        top_errors = true;
        match p.rsplit_once('/') {
            Some((parent, key)) if !key.is_empty() => {
                let key = key.replace("~1", "/").replace("~0", "~");
                match usable.pointer_mut(parent).and_then(Value::as_object_mut) {
                    Some(o) => {
                        o.remove(&key);
                        quiet.add(parent, p, message, parent.is_empty());
                    }
                    None => top_broken = true,
                }
            }
            _ => top_broken = true,
        }
    }
    let stack = if top_broken {
        None
    } else {
        match serde_path_to_error::deserialize::<_, Stack>(&usable) {
            Ok(mut s) => {
                if let Some(st) = stage {
                    s.stack = format!("{}-{st}", s.stack);
                    s.stage = Some(st.to_owned());
                }
                if s.cluster.is_empty() {
                    s.cluster = s.stack.clone();
                }
                s.origin = super::Origin {
                    file: file.to_owned(),
                    positions: positions.clone(),
                };
                Some(s)
            }
            // After a top-level repair, what cannot be read follows from the
            // errors already reported.
            Err(_) if top_errors => None,
            Err(e) => {
                let pointer = e
                    .path()
                    .iter()
                    .map(|seg| format!("/{seg}"))
                    .collect::<String>();
                c.error(pointer, e.inner().to_string());
                None
            }
        }
    };
    if let Some(stack) = &stack {
        let before = c.out.len();
        rules(stack, &kinds, &mut c);
        let found = c.out.split_off(before);
        c.out
            .extend(found.into_iter().filter(|d| !quiet.covers(&d.pointer)));
    }
    let mut diagnostics = c.out;
    if let Some(st) = stage {
        for d in &mut diagnostics {
            if let Some(p) = stages::relocate(&d.pointer, &positions, &from_stage, st) {
                d.pointer = p;
            }
        }
    }
    sort(&mut diagnostics);
    let report = Report {
        file: file.into(),
        diagnostics,
    };
    match stack {
        Some(s) if !report.has_errors() => Ok((s, report)),
        _ => Err(report),
    }
}

fn structure(value: &Value, c: &mut Collector<'_>) {
    let schema: Value = match serde_json::from_str(SCHEMA) {
        Ok(s) => s,
        Err(e) => return c.error("", format!("internal: the stack schema is not JSON: {e}")),
    };
    let validator = match jsonschema::validator_for(&schema) {
        Ok(v) => v,
        Err(e) => return c.error("", format!("internal: the stack schema is not valid: {e}")),
    };
    let mut found: Vec<(String, String)> = Vec::new();
    for err in validator.iter_errors(value) {
        let at = err.instance_path().as_str().to_owned();
        use jsonschema::error::ValidationErrorKind as K;
        let items: Vec<(String, String)> = match err.kind() {
            K::AdditionalProperties { unexpected } | K::UnevaluatedProperties { unexpected } => {
                // After a failing subschema, `unevaluatedProperties` also lists the
                // keys that subschema declares: only a key declared nowhere at this
                // place is unknown.
                let declared = declared_keys(&schema, err.schema_path().as_str());
                unexpected
                    .iter()
                    .filter(|k| !declared.contains(k.as_str()))
                    .map(|k| {
                        let hint = suggest(k, declared.iter().copied())
                            .map(|s| format!(" (did you mean '{s}'?)"))
                            .unwrap_or_default();
                        (
                            format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                            format!("unknown key '{k}'{hint}"),
                        )
                    })
                    .collect()
            }
            K::Required { property } => {
                vec![(at.clone(), format!("missing required key {property}"))]
            }
            K::Enum { .. }
                if at.starts_with("/resources/")
                    && at.ends_with("/type")
                    && at.matches('/').count() == 3 =>
            {
                let given = err.instance().as_str().unwrap_or_default().to_owned();
                let offered = crate::deploy::stack::RESOURCE_TYPES;
                let hint = suggest(&given, offered.iter().copied())
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default();
                vec![(
                    at.clone(),
                    format!(
                        "{:?} is not a resource type bosun-deploy offers{hint}: it offers {}",
                        given,
                        offered.join(", ")
                    ),
                )]
            }
            K::Enum { options } => vec![(
                at.clone(),
                format!("{} is not one of {}", err.instance(), options),
            )],
            K::Constant { .. } => continue, // the if/then on `type` reports the real problem
            K::Type { kind } => vec![(
                at.clone(),
                format!("{} is not of type {:?}", err.instance(), kind)
                    .replace("Single(", "")
                    .replace(')', ""),
            )],
            _ => vec![(at.clone(), err.to_string())],
        };
        for item in items {
            if !found.contains(&item) {
                found.push(item);
            }
        }
    }
    for (pointer, message) in found {
        c.error(pointer, message);
    }
}

/// The keys declared by the schema object holding the keyword at `keyword_path`:
/// its own `properties` and those of the (local) `$ref`s in its `allOf`.
fn declared_keys<'s>(schema: &'s Value, keyword_path: &str) -> BTreeSet<&'s str> {
    let parent = keyword_path.rsplit_once('/').map_or("", |(p, _)| p);
    let mut keys = BTreeSet::new();
    let Some(node) = schema.pointer(parent) else {
        return keys;
    };
    let mut nodes = vec![node];
    for sub in node["allOf"].as_array().into_iter().flatten() {
        if let Some(target) = sub["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
            nodes.extend(schema.pointer(target));
        }
    }
    for n in nodes {
        keys.extend(
            n["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.as_str()),
        );
    }
    keys
}
