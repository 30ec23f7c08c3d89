//! The plan: what apply will do, as data. `diff` prints it, `apply` executes it,
//! `--output json` gives it to scripts.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// One field that differs: its path in the API input, what AWS has, what the file wants.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

impl FieldChange {
    /// A line of the plan that is no field: why a resource is replaced, or rolled out
    /// again.
    pub fn note(text: String) -> FieldChange {
        FieldChange {
            path: text,
            old: None,
            new: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    /// What AWS cannot change in place: deleted, then created.
    Replace,
    Delete,
}

/// One change of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub action: Action,
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

impl Change {
    pub fn symbol(&self) -> &'static str {
        match self.action {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.action {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
        };
        write!(f, "{} {verb} {} {}", self.symbol(), self.kind, self.name)?;
        for c in &self.fields {
            if c.old.is_none() && c.new.is_none() {
                write!(f, "\n      ({})", c.path)?;
            } else {
                // Both values share what the line has left after its path.
                let room = LINE.saturating_sub(c.path.chars().count() + 12) / 2;
                write!(
                    f,
                    "\n      {}: {} → {}",
                    c.path,
                    shown(&c.old, room),
                    shown(&c.new, room)
                )?;
            }
        }
        Ok(())
    }
}

/// The whole plan of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub stack: String,
    pub account: String,
    pub region: String,
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "stack {} in account {}, region {}:",
            self.stack, self.account, self.region
        )?;
        if self.changes.is_empty() {
            return writeln!(f, "  no changes");
        }
        for c in &self.changes {
            writeln!(f, "  {c}")?;
        }
        let replaced = match self.count(Action::Replace) {
            0 => String::new(),
            n => format!(", {n} to replace"),
        };
        writeln!(
            f,
            "  {} to create, {} to update, {} to delete{replaced}",
            self.count(Action::Create),
            self.count(Action::Update),
            self.count(Action::Delete)
        )
    }
}

/// The fields in which `old` (what AWS has) and `new` (what the file wants) differ,
/// down to the leaves: objects key by key, arrays element by element (a length change
/// shows the whole array).
pub fn diff(old: &Value, new: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk("", old, new, &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<FieldChange>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = join(path, k);
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => walk(&p, x, y, out),
                    (x, y) => out.push(FieldChange {
                        path: p,
                        old: x.cloned(),
                        new: y.cloned(),
                    }),
                }
            }
        }
        // A policy's statements, as a set: each one added or removed on its own line.
        (Value::Array(a), Value::Array(b)) if path.ends_with("Statement") => {
            for x in a.iter().filter(|x| !b.contains(x)) {
                out.push(FieldChange {
                    path: format!("{path}[-]"),
                    old: Some(x.clone()),
                    new: None,
                });
            }
            for y in b.iter().filter(|y| !a.contains(y)) {
                out.push(FieldChange {
                    path: format!("{path}[+]"),
                    old: None,
                    new: Some(y.clone()),
                });
            }
        }
        // Named things (environment, secrets, tags): by name, not by position.
        (Value::Array(a), Value::Array(b)) if named_by(a, b).is_some() => {
            let key = named_by(a, b).unwrap_or("name");
            let name = |v: &Value| v[key].as_str().unwrap_or_default().to_owned();
            let names: std::collections::BTreeSet<String> = a.iter().chain(b).map(name).collect();
            for n in names {
                let x = a.iter().find(|v| name(v) == n);
                let y = b.iter().find(|v| name(v) == n);
                let p = format!("{path}[{n}]");
                match (x, y) {
                    (Some(x), Some(y)) => walk(&p, x, y, out),
                    (x, y) => out.push(FieldChange {
                        path: p,
                        old: x.cloned(),
                        new: y.cloned(),
                    }),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(FieldChange {
            path: path.to_owned(),
            old: (!a.is_null()).then(|| a.clone()),
            new: (!b.is_null()).then(|| b.clone()),
        }),
    }
}

/// The field that names each element of both lists (`name`, `key`, as ECS, IAM and
/// Scheduler name them), when every element has one and no two share it.
fn named_by(a: &[Value], b: &[Value]) -> Option<&'static str> {
    ["name", "Name", "key", "Key"].into_iter().find(|k| {
        [a, b].iter().all(|list| {
            let names: Vec<&str> = list.iter().filter_map(|v| v[*k].as_str()).collect();
            let unique: std::collections::BTreeSet<&&str> = names.iter().collect();
            names.len() == list.len() && unique.len() == names.len()
        }) && !(a.is_empty() && b.is_empty())
    })
}

/// How long a line of the text plan may run (`--output json` keeps every value
/// whole).
const LINE: usize = 200;

/// A value on one line of the text plan: strings as they are, the rest as JSON, cut
/// past `room` characters.
fn shown(v: &Option<Value>, room: usize) -> String {
    let text = match v {
        None => "(none)".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let text = text.replace('\n', "\\n");
    let count = text.chars().count();
    if count <= room {
        return text;
    }
    let keep = room.saturating_sub(12).max(8);
    let cut: String = text.chars().take(keep).collect();
    format!("{cut}… (+{} chars)", count - keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_each_changed_leaf() {
        let old = json!({ "family": "f", "memory": "512", "containerDefinitions": [{ "image": "a", "environment": [1, 2] }] });
        let new = json!({ "family": "f", "memory": "1024", "containerDefinitions": [{ "image": "b", "environment": [1, 2, 3] }], "cpu": "256" });
        let d = diff(&old, &new);
        let paths: Vec<&str> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "containerDefinitions[0].environment",
                "containerDefinitions[0].image",
                "cpu",
                "memory"
            ]
        );
        assert_eq!(d[3].old, Some(json!("512")));
        assert_eq!(d[3].new, Some(json!("1024")));
        assert_eq!(d[2].old, None);
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn named_lists_by_name_and_statements_one_by_one() {
        let old = json!({ "environment": [{ "name": "A", "value": "1" }, { "name": "B", "value": "2" }],
            "PolicyDocument": { "Statement": [{ "Effect": "Allow", "Action": ["s3:Get"] }, { "Effect": "Allow", "Action": ["sqs:Send"] }] } });
        let new = json!({ "environment": [{ "name": "B", "value": "3" }, { "name": "C", "value": "4" }],
            "PolicyDocument": { "Statement": [{ "Effect": "Allow", "Action": ["sqs:Send"] }, { "Effect": "Allow", "Action": ["logs:Put"] }] } });
        let d = diff(&old, &new);
        let paths: Vec<&str> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "PolicyDocument.Statement[-]",
                "PolicyDocument.Statement[+]",
                "environment[A]",
                "environment[B].value",
                "environment[C]"
            ]
        );
        assert_eq!(
            d[0].old,
            Some(json!({ "Effect": "Allow", "Action": ["s3:Get"] }))
        );
        // A long value is cut on its line (the JSON output keeps it).
        let c = Change {
            action: Action::Update,
            kind: "k",
            name: "n".into(),
            fields: vec![FieldChange {
                path: "p".into(),
                old: None,
                new: Some(json!("x".repeat(500))),
            }],
        };
        let text = c.to_string();
        assert!(text.lines().all(|l| l.chars().count() <= LINE), "{text}");
        assert!(text.contains("… (+419 chars)"), "{text}");
    }
}
