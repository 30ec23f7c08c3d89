//! The deployer's layers import downward only (stack ← components ← resources ←
//! engine ← naming; images and ops beside), and no source file of it runs past 600
//! lines. Read from the source, so a new import that breaks the layering fails here.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each layer (a folder or file under src/deploy) and the layers it may import.
const ALLOWED: &[(&str, &[&str])] = &[
    ("naming", &[]),
    ("stack", &[]),
    ("engine", &["naming"]),
    ("resources", &["engine", "naming"]),
    ("components", &["stack", "resources", "engine", "naming"]),
    ("images", &["components", "stack", "engine", "naming"]),
    (
        "ops",
        &[
            "images",
            "components",
            "stack",
            "resources",
            "engine",
            "naming",
        ],
    ),
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The layer a file of src/deploy belongs to.
fn layer_of(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "mod").then_some(name)
}

/// The deploy layers a file names: `crate::deploy::X`, and `super::X` in a layer's
/// top file (where `super` is `deploy`).
fn imports(root: &Path, file: &Path, text: &str) -> Vec<String> {
    let top = file.parent() == Some(root)
        || (file.file_name().is_some_and(|n| n == "mod.rs")
            && file.parent().and_then(Path::parent) == Some(root));
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (prefix, ok) in [("crate::deploy::", true), ("super::", top)] {
            if !ok {
                continue;
            }
            for (i, _) in code.match_indices(prefix) {
                let rest = &code[i + prefix.len()..];
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !word.is_empty() {
                    out.push(word);
                }
            }
        }
    }
    out
}

#[test]
fn the_deployers_layers_import_downward_only_and_files_stay_small() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/deploy");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut all = Vec::new();
    files(&root, &mut all);
    assert!(all.len() > 30, "{} files", all.len());
    let mut wrong = Vec::new();
    for f in &all {
        let text = std::fs::read_to_string(f).unwrap();
        let lines = text.lines().count();
        if lines > 600 {
            wrong.push(format!("{}: {lines} lines (at most 600)", f.display()));
        }
        let Some(layer) = layer_of(&root, f) else {
            continue;
        };
        let Some(may) = allowed.get(layer.as_str()) else {
            wrong.push(format!("{}: layer {layer} is not in ALLOWED", f.display()));
            continue;
        };
        for imp in imports(&root, f, &text) {
            let is_layer = allowed.contains_key(imp.as_str());
            if is_layer && imp != layer && !may.contains(&imp.as_str()) {
                wrong.push(format!("{}: {layer} imports {imp}", f.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
