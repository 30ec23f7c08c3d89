//! After a structural error, the rest of a resource is still checked: the wrong
//! fields are taken out, and what the rules then find where they were is left out
//! (it may follow from them). And the nearest known name for a typo.

use serde_json::Value;

use super::Resource;

/// `resource` (at pointer `root`) without the fields that `errors` point at, if it can
/// then be read; the objects that held them are added to `quiet`.
pub(super) fn repair(
    resource: &Value,
    root: &str,
    errors: &[(String, String)],
    quiet: &mut Quiet,
) -> Option<Value> {
    let mut r = resource.clone();
    let mut found = Quiet::default();
    for (e, message) in errors {
        let Some(rel) = e.strip_prefix(root).filter(|rel| rel.starts_with('/')) else {
            continue;
        };
        let (parent, key) = rel.rsplit_once('/')?;
        // An error at the resource's own `type` or `properties`, or in a list (removing
        // an item would renumber the rest): nothing to check without it.
        if parent.is_empty() {
            return None;
        }
        let key = key.replace("~1", "/").replace("~0", "~");
        r.pointer_mut(parent)?.as_object_mut()?.remove(&key);
        found.add(
            &format!("{root}{parent}"),
            e,
            message,
            parent == "/properties",
        );
    }
    serde_json::from_value::<Resource>(r.clone()).ok()?;
    quiet.0.extend(found.0);
    Some(r)
}

/// The rules' findings left out after a repair: those that may follow from a
/// structural error. Each entry is a pointer and whether its whole subtree is meant.
#[derive(Default)]
pub(super) struct Quiet(Vec<(String, bool)>);

impl Quiet {
    /// A structural error at `pointer` (in the object at `parent`). In a resource's
    /// `properties` or at the top level (`wide`), the finding at the object itself and
    /// at the key meant (`did you mean`) are left out, not the rest; deeper, the whole
    /// object (a typo'd `memroy` is a missing `memory` beside `cpu`).
    pub(super) fn add(&mut self, parent: &str, pointer: &str, message: &str, wide: bool) {
        if !wide {
            self.0.push((parent.to_owned(), true));
            return;
        }
        self.0.push((parent.to_owned(), false));
        self.0.push((pointer.to_owned(), true));
        if let Some(meant) = message
            .split_once("did you mean '")
            .and_then(|(_, r)| r.split_once('\''))
            .map(|(k, _)| k)
        {
            self.0.push((format!("{parent}/{meant}"), true));
        }
    }

    pub(super) fn covers(&self, pointer: &str) -> bool {
        self.0
            .iter()
            .any(|(q, subtree)| pointer == q || (*subtree && pointer.starts_with(&format!("{q}/"))))
    }
}

/// The nearest of `candidates` to `word` (a typo's likely meaning): at most a third of
/// its letters apart, and at least one.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .filter(|c| *c != word)
        .map(|c| (distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
