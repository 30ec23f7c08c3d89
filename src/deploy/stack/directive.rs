//! Directives in environment values: `$Secret('name.key')`, `$Param('/path/name')`,
//! `$ResourceParam('r', 'p')`.

/// A directive in an environment value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `$Secret('name')`, `$Secret('name.key')`, or a secret's ARN (`arn:…:secret:…`,
    /// with `.key` after it); with a second argument, the version stage
    /// (`AWSPREVIOUS`) or version id (a UUID) to read.
    Secret {
        name: String,
        key: Option<String>,
        version: Option<String>,
    },
    /// `$Param('/path/name')`: an SSM Parameter Store parameter (String or
    /// SecureString), by name or ARN.
    Param { name: String },
    /// `$ResourceParam('resource', 'param')`.
    ResourceParam { resource: String, param: String },
}

/// Whether `name` is an ARN (taken as it is, never wrapped in another).
pub fn is_arn(name: &str) -> bool {
    name.starts_with("arn:")
}

/// Whether a secret version argument is a version id (a UUID) rather than a stage.
pub fn is_version_id(v: &str) -> bool {
    v.len() == 36
        && v.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
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
        let a =
            args(rest).filter(|a| (1..=2).contains(&a.len()) && a.iter().all(|x| !x.is_empty()));
        let a = a.ok_or_else(|| {
            format!("'{value}': expected $Secret('name'), $Secret('name.key') or $Secret('name.key', 'VERSION')")
        })?;
        // A name's key follows its first `.`; an ARN's, the first `.` after `secret:`
        // (names hold no `:`, and the region and account no `.`).
        let (name, key) = if is_arn(&a[0]) {
            let at = a[0].find(":secret:").map_or(0, |i| i + ":secret:".len());
            match a[0][at..].find('.') {
                Some(i) => (
                    a[0][..at + i].to_owned(),
                    Some(a[0][at + i + 1..].to_owned()),
                ),
                None => (a[0].clone(), None),
            }
        } else {
            match a[0].split_once('.') {
                Some((n, k)) => (n.to_owned(), Some(k.to_owned())),
                None => (a[0].clone(), None),
            }
        };
        if key.as_deref() == Some("") {
            return Err(format!("'{value}': the key after '.' is empty"));
        }
        if is_arn(&name) && !name.starts_with("arn:aws") {
            return Err(format!("'{value}': not an ARN"));
        }
        if is_arn(&name) && !name.contains(":secretsmanager:") {
            return Err(format!(
                "'{value}': not a Secrets Manager secret's ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX); an SSM parameter is $Param('…')"
            ));
        }
        return Ok(Some(Directive::Secret {
            name,
            key,
            version: a.get(1).cloned(),
        }));
    }
    if let Some(rest) = v.strip_prefix("$Param") {
        let a = args(rest).filter(|a| a.len() == 1 && !a[0].is_empty());
        let a = a.ok_or_else(|| format!("'{value}': expected $Param('/path/name')"))?;
        let name = a[0].clone();
        if is_arn(&name) && !name.contains(":ssm:") {
            return Err(format!(
                "'{value}': not an SSM parameter's ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME); a Secrets Manager secret is $Secret('…')"
            ));
        }
        if !is_arn(&name)
            && !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        {
            return Err(format!(
                "'{value}': an SSM parameter name holds only letters, digits and _ . - / (Systems Manager User Guide, \"Parameter naming\")"
            ));
        }
        return Ok(Some(Directive::Param { name }));
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
        "'{value}': unknown directive (known: $Secret, $Param, $ResourceParam, $Stage)"
    ))
}
