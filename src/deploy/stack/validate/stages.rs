//! Stages: `stages: { NAME: { ... } }` overrides merged over the base before anything
//! else is checked, and `$Stage` in values. The merged document is validated like any
//! other; a value that came from a stage keeps its own `file:line:column`.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::super::yaml::Positions;

/// Errors found while merging, reported once the merged document's positions are
/// known (pointer, message).
#[derive(Default)]
pub(super) struct Errs(pub Vec<(String, String)>);

impl Errs {
    fn error(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.0.push((pointer.into(), message.into()));
    }
}

/// The top-level keys a stage may override (`stack` names the stack; a stage's name is
/// added to it, never replaces it).
const OVERRIDABLE: [&str; 6] = [
    "network", "account", "region", "tags", "cluster", "registry",
];

/// The longest stage name: `{stack}-{stage}` starts every name the stack makes.
pub const STAGE_MAX: usize = 16;

/// Whether `s` is a stage name: lowercase letters, digits and single `-` between them,
/// starting with a letter (the stack's names carry it, ECR's repositories included).
pub fn stage_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= STAGE_MAX
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.contains("--")
        && !s.ends_with('-')
}

/// The stage names the file lists (none without a `stages` key).
pub fn listed(value: &Value) -> Vec<String> {
    value["stages"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Take `stages` out of `value`, check its shape, and merge the chosen stage's
/// overrides over the base (objects merged key by key, anything else replaced), with
/// their positions. Then replace `$Stage` in every string. Returns the pointers whose
/// values now come from the stage (for [`relocate`]).
pub(super) fn apply(
    value: &mut Value,
    positions: &mut Positions,
    stage: Option<&str>,
    c: &mut Errs,
) -> BTreeSet<String> {
    let mut from_stage = BTreeSet::new();
    let stages = value.as_object_mut().and_then(|m| m.remove("stages"));
    let stages = match stages {
        None => None,
        Some(Value::Object(m)) => Some(m),
        Some(other) => {
            c.error(
                "/stages",
                format!("{other} is not of type object (stage name → overrides)"),
            );
            None
        }
    };
    if let Some(stages) = &stages {
        for (name, body) in stages {
            shape(value, name, body, c);
        }
    }
    if let Some(stage) = stage {
        if !stage_name_ok(stage) {
            c.error(
                "",
                format!("stage '{stage}' (--stage or BOSUN_STAGE) must be 1..{STAGE_MAX} lowercase letters, digits or single '-' between them, starting with a letter"),
            );
        } else if let Some(stages) = &stages {
            match stages.get(stage) {
                Some(Value::Object(body)) => {
                    // What [`shape`] refused is not merged (one mistake, one error).
                    let mut body = body.clone();
                    body.retain(|k, _| k == "resources" || OVERRIDABLE.contains(&k.as_str()));
                    if let Some(Value::Object(res)) = body.get_mut("resources") {
                        res.retain(|r, o| value["resources"].get(r).is_some() && o.is_object());
                        for o in res.values_mut() {
                            if let Some(m) = o.as_object_mut() {
                                m.retain(|k, _| k == "properties");
                            }
                        }
                    }
                    let at = format!("/stages/{stage}");
                    merge_object(value, &body, &at, "", positions, &mut from_stage);
                }
                Some(_) => {}
                None => c.error(
                    "/stages",
                    format!(
                        "stage '{stage}' (--stage or BOSUN_STAGE) is not listed here; the file's stages: {}{}",
                        stages.keys().cloned().collect::<Vec<_>>().join(", "),
                        super::suggest(stage, stages.keys().map(String::as_str))
                            .map(|s| format!(" (did you mean '{s}'?)"))
                            .unwrap_or_default()
                    ),
                ),
            }
        }
    }
    substitute(value, "", stage, c);
    from_stage
}

/// A stage's overrides: known top-level keys, and `resources.NAME.properties` of
/// resources the base file has.
fn shape(base: &Value, name: &str, body: &Value, c: &mut Errs) {
    let at = format!("/stages/{}", name.replace('~', "~0").replace('/', "~1"));
    if !stage_name_ok(name) {
        c.error(
            at.clone(),
            format!("stage name '{name}' must be 1..{STAGE_MAX} lowercase letters, digits or single '-' between them, starting with a letter"),
        );
    }
    let Some(body) = body.as_object() else {
        if !body.is_null() {
            c.error(
                at,
                format!("{body} is not of type object (the stage's overrides)"),
            );
        }
        return;
    };
    for (key, v) in body {
        let here = format!("{at}/{key}");
        if key == "resources" {
            let Some(res) = v.as_object() else {
                c.error(
                    here,
                    format!("{v} is not of type object (resource name → overrides)"),
                );
                continue;
            };
            for (r, o) in res {
                let rat = format!("{here}/{r}");
                if base["resources"].get(r).is_none() {
                    let names = base["resources"]
                        .as_object()
                        .map(|m| m.keys().map(String::as_str).collect::<Vec<_>>())
                        .unwrap_or_default();
                    c.error(
                        rat,
                        format!(
                            "no resource '{r}' in the file's resources to override{}",
                            super::suggest(r, names.iter().copied())
                                .map(|s| format!(" (did you mean '{s}'?)"))
                                .unwrap_or_default()
                        ),
                    );
                    continue;
                }
                match o.as_object() {
                    Some(m) => {
                        for k in m.keys().filter(|k| *k != "properties") {
                            c.error(
                                format!("{rat}/{k}"),
                                format!("unknown key '{k}': a stage overrides a resource's properties only"),
                            );
                        }
                    }
                    None => c.error(rat, format!("{o} is not of type object (properties: ...)")),
                }
            }
        } else if !OVERRIDABLE.contains(&key.as_str()) {
            c.error(
                here,
                format!(
                    "unknown key '{key}': a stage overrides {} and resources{}",
                    OVERRIDABLE.join(", "),
                    super::suggest(key, OVERRIDABLE.iter().copied().chain(["resources"]))
                        .map(|s| format!(" (did you mean '{s}'?)"))
                        .unwrap_or_default()
                ),
            );
        }
    }
}

fn merge_object(
    base: &mut Value,
    over: &Map<String, Value>,
    from: &str,
    to: &str,
    positions: &mut Positions,
    from_stage: &mut BTreeSet<String>,
) {
    if !base.is_object() {
        *base = Value::Object(Map::new());
    }
    let Some(b) = base.as_object_mut() else {
        return;
    };
    for (k, v) in over {
        let key = k.replace('~', "~0").replace('/', "~1");
        let (f, t) = (format!("{from}/{key}"), format!("{to}/{key}"));
        match (b.get_mut(k), v) {
            (Some(slot @ Value::Object(_)), Value::Object(o)) => {
                merge_object(slot, o, &f, &t, positions, from_stage)
            }
            _ => {
                b.insert(k.clone(), v.clone());
                relocate_subtree(positions, &f, &t, from_stage);
            }
        }
    }
}

/// Give the pointers under `to` the positions of those under `from`.
fn relocate_subtree(
    positions: &mut Positions,
    from: &str,
    to: &str,
    from_stage: &mut BTreeSet<String>,
) {
    let moved: Vec<(String, super::Pos)> = positions
        .iter()
        .filter(|(p, _)| *p == from || p.starts_with(&format!("{from}/")))
        .map(|(p, pos)| (format!("{to}{}", &p[from.len()..]), *pos))
        .collect();
    positions.retain(|p, _| !(p == to || p.starts_with(&format!("{to}/"))));
    for (p, pos) in moved {
        from_stage.insert(p.clone());
        positions.insert(p, pos);
    }
}

/// `$Stage` in any string becomes the stage's name; without a stage it is an error at
/// its place.
fn substitute(v: &mut Value, at: &str, stage: Option<&str>, c: &mut Errs) {
    match v {
        Value::String(s) if s.contains("$Stage") => match stage {
            Some(st) => *s = s.replace("$Stage", st),
            None => c.error(
                at.to_owned(),
                format!("'{s}' uses $Stage, which needs a stage: run with --stage NAME (or BOSUN_STAGE)"),
            ),
        },
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                substitute(x, &format!("{at}/{i}"), stage, c);
            }
        }
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let key = k.replace('~', "~0").replace('/', "~1");
                substitute(x, &format!("{at}/{key}"), stage, c);
            }
        }
        _ => {}
    }
}

/// A diagnostic at `pointer` whose value came from the stage is shown at the stage's
/// own key (`stages.dev.resources.worker.properties.cpu`).
pub(super) fn relocate(
    pointer: &str,
    positions: &Positions,
    from_stage: &BTreeSet<String>,
    stage: &str,
) -> Option<String> {
    let mut p = pointer.to_owned();
    loop {
        if positions.contains_key(&p) {
            return from_stage
                .contains(&p)
                .then(|| format!("/stages/{stage}{pointer}"));
        }
        match p.rfind('/') {
            Some(i) => p.truncate(i),
            None => return None,
        }
    }
}
