//! The user's reference (docs/reference.md) is kept in step with what the binaries
//! and the schema say: every flag and variable in `--help`, every verb, and every key
//! of the stack file's JSON Schema must be in it.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::process::Command;

const BOSUN: &str = env!("CARGO_BIN_EXE_bosun");
const DEPLOY: &str = env!("CARGO_BIN_EXE_bosun-deploy");
const REFERENCE: &str = include_str!("../docs/reference.md");
const SCHEMA: &str = include_str!("../schema/bosun-stack.schema.json");

fn help(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).arg("--help").output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `--flag` and `BOSUN_*` words of a help text.
fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|w| (w.starts_with("--") && w.len() > 2) || w.starts_with("BOSUN_"))
        .filter(|w| *w != "--help" && *w != "--version")
        .map(str::to_owned)
        .collect()
}

/// Whether `word` stands in `text` as a whole word.
fn has_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[test]
fn every_flag_and_variable_is_in_the_reference() {
    let mut missing = Vec::new();
    let mut seen = 0;
    let texts = [
        help(BOSUN, &[]),
        help(BOSUN, &["probe"]),
        help(BOSUN, &["sidecar"]),
        help(BOSUN, &["protect"]),
    ]
    .into_iter()
    .chain(
        [
            "validate", "render", "diff", "apply", "status", "delete", "inject", "logs",
        ]
        .iter()
        .map(|v| help(DEPLOY, &[v])),
    )
    .chain([help(DEPLOY, &["policy"]), help(DEPLOY, &["ci", "github"])]);
    for text in texts {
        assert!(!text.is_empty());
        for w in words(&text) {
            seen += 1;
            if !has_word(REFERENCE, &w) {
                missing.push(w);
            }
        }
    }
    assert!(seen > 40, "too few flags read from --help ({seen})");
    assert!(missing.is_empty(), "not in docs/reference.md: {missing:?}");
}

#[test]
fn every_verb_and_command_is_in_the_reference() {
    for v in [
        "validate",
        "render",
        "diff",
        "apply",
        "status",
        "delete",
        "inject",
        "logs",
        "policy",
        "ci github",
    ] {
        assert!(
            REFERENCE.contains(&format!("bosun-deploy {v}")),
            "bosun-deploy {v}"
        );
    }
    for c in ["probe", "sidecar", "protect"] {
        assert!(REFERENCE.contains(&format!("bosun {c}")), "bosun {c}");
    }
}

#[test]
fn every_stack_key_is_in_the_reference() {
    let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
    let mut keys = BTreeSet::new();
    /// Walk schema nodes: the names in `properties` are keys; their values, and the
    /// subschemas of the applicators, are schema nodes again.
    fn walk(node: &serde_json::Value, keys: &mut BTreeSet<String>) {
        let Some(m) = node.as_object() else { return };
        if let Some(props) = m.get("properties").and_then(|p| p.as_object()) {
            for (k, sub) in props {
                keys.insert(k.clone());
                walk(sub, keys);
            }
        }
        for k in ["items", "additionalProperties", "if", "then", "else"] {
            if let Some(sub) = m.get(k) {
                walk(sub, keys);
            }
        }
        for k in ["allOf", "anyOf", "oneOf"] {
            for sub in m.get(k).and_then(|a| a.as_array()).into_iter().flatten() {
                walk(sub, keys);
            }
        }
        for sub in m
            .get("$defs")
            .and_then(|d| d.as_object())
            .into_iter()
            .flatten()
        {
            walk(sub.1, keys);
        }
    }
    walk(&schema, &mut keys);
    assert!(keys.len() > 40, "{keys:?}");
    let missing: Vec<&String> = keys.iter().filter(|k| !has_word(REFERENCE, k)).collect();
    assert!(
        missing.is_empty(),
        "stack keys not in docs/reference.md: {missing:?}"
    );
}
