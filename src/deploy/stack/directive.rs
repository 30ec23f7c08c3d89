//! Directives in environment values: `$Secret('name.key')`, `$ResourceParam('r', 'p')`.

/// A directive in an environment value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `$Secret('name')` or `$Secret('name.key')`.
    Secret { name: String, key: Option<String> },
    /// `$ResourceParam('resource', 'param')`.
    ResourceParam { resource: String, param: String },
}

/// Parse a directive; `Ok(None)` for a plain value.
pub fn directive(value: &str) -> Result<Option<Directive>, String> {
    let v = value.trim();
    if !v.starts_with('$') {
        return Ok(None);
    }
    let args = |rest: &str| -> Option<Vec<String>> {
        let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
        inner
            .split(',')
            .map(|a| {
                let a = a.trim();
                let q = a.chars().next()?;
                if (q == '\'' || q == '"') && a.len() >= 2 && a.ends_with(q) {
                    Some(a[1..a.len() - 1].to_owned())
                } else {
                    None
                }
            })
            .collect()
    };
    if let Some(rest) = v.strip_prefix("$Secret") {
        let a = args(rest).filter(|a| a.len() == 1 && !a[0].is_empty());
        let a =
            a.ok_or_else(|| format!("'{value}': expected $Secret('name') or $Secret('name.key')"))?;
        let (name, key) = match a[0].split_once('.') {
            Some((n, k)) => (n.to_owned(), Some(k.to_owned())),
            None => (a[0].clone(), None),
        };
        return Ok(Some(Directive::Secret { name, key }));
    }
    if let Some(rest) = v.strip_prefix("$ResourceParam") {
        let a = args(rest).filter(|a| a.len() == 2);
        let a =
            a.ok_or_else(|| format!("'{value}': expected $ResourceParam('resource', 'param')"))?;
        return Ok(Some(Directive::ResourceParam {
            resource: a[0].clone(),
            param: a[1].clone(),
        }));
    }
    Err(format!(
        "'{value}': unknown directive (known: $Secret, $ResourceParam)"
    ))
}
