//! The parts of a Copilot manifest that describe the container: its image (build or
//! location), command words, platform, secrets and health check.

use serde_json::{json, Value};

use super::convert::{left_behind, Sink};
use crate::deploy::stack::copilot::duration_ms;

/// `image.build` (a Dockerfile's path, or `{dockerfile, context, target, args}`) as
/// custom-dockerfile; `image.location` as prebuilt-image. Paths are the workspace's,
/// made relative to the output file's folder (`ws_to_out`: the workspace from there).
pub(super) fn packaging(m: &Value, ws_to_out: &str, sink: &mut Sink<'_>) -> Result<Value, String> {
    let image = &m["image"];
    // A Backend Service's port becomes its `ports` (convert.rs).
    let port = m["type"].as_str() == Some("Backend Service");
    if let Some(o) = image.as_object() {
        for k in o.keys() {
            let carried = ["build", "location", "credentials", "healthcheck"].contains(&k.as_str())
                || (port && k == "port");
            if !carried {
                sink.warn(&format!("/image/{k}"), left_behind(k));
            }
        }
    }
    let join = |p: &str| -> String {
        let p = p.trim_start_matches("./").trim_end_matches('/');
        let p = if p == "." { "" } else { p };
        match (ws_to_out, p) {
            ("" | ".", "") => ".".into(),
            ("" | ".", p) => p.into(),
            (w, "") => w.into(),
            (w, p) => format!("{w}/{p}"),
        }
    };
    if let Some(loc) = image["location"].as_str() {
        let mut props = json!({ "image": loc });
        if let Some(c) = image["credentials"].as_str() {
            props["repositoryCredentialsSecretArn"] = json!(c);
        }
        return Ok(json!({ "type": "prebuilt-image", "properties": props }));
    }
    let (dockerfile, context, target, args) = match &image["build"] {
        Value::String(d) => (d.clone(), parent(d), None, None),
        Value::Object(b) => {
            if b.contains_key("cache_from") {
                sink.warn("/image/build/cache_from", "not carried over");
            }
            let context = b.get("context").and_then(Value::as_str);
            let dockerfile = b.get("dockerfile").and_then(Value::as_str);
            let (d, c) = match (dockerfile, context) {
                (Some(d), Some(c)) => (d.to_owned(), c.to_owned()),
                (Some(d), None) => (d.to_owned(), parent(d)),
                (None, Some(c)) => (
                    format!("{}/Dockerfile", c.trim_end_matches('/')),
                    c.to_owned(),
                ),
                (None, None) => {
                    return Err("image.build names neither a dockerfile nor a context".into())
                }
            };
            (
                d,
                c,
                b.get("target").and_then(Value::as_str).map(str::to_owned),
                b.get("args").and_then(Value::as_object).cloned(),
            )
        }
        _ => return Err("image: neither build nor location".into()),
    };
    let in_context = relative_to(&dockerfile, &context);
    let mut props = json!({ "buildContextPath": join(&context) });
    if in_context != "Dockerfile" {
        props["dockerfilePath"] = json!(in_context);
    }
    if let Some(t) = target {
        props["buildTarget"] = json!(t);
    }
    if let Some(args) = args {
        props["buildArgs"] = Value::Array(
            args.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    json!({ "argName": k, "value": v })
                })
                .collect(),
        );
    }
    Ok(json!({ "type": "custom-dockerfile", "properties": props }))
}

fn parent(path: &str) -> String {
    let p = path.trim_start_matches("./");
    p.rfind('/')
        .map_or_else(|| ".".to_owned(), |i| p[..i].to_owned())
}

/// `path` seen from inside `dir`, lexically (both the workspace's, or both absolute).
pub(super) fn relative_to(path: &str, dir: &str) -> String {
    let norm = |s: &str| -> Vec<String> {
        s.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_owned)
            .collect()
    };
    let (p, d) = (norm(path), norm(dir));
    let common = p.iter().zip(&d).take_while(|(a, b)| a == b).count();
    let mut out: Vec<String> = vec!["..".into(); d.len() - common];
    out.extend(p[common..].iter().cloned());
    out.join("/")
}

/// Words of a command given as one string, as a shell splits them (quotes kept
/// together; no expansion).
pub(super) fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for ch in s.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// `platform: linux/arm64` (or `{osfamily, architecture}`) as our architecture.
pub(super) fn platform(p: &Value, sink: &mut Sink<'_>) -> Option<&'static str> {
    let (os, arch) = match p {
        Value::Null => return None,
        Value::String(s) => s.split_once('/').unwrap_or(("linux", s.as_str())),
        Value::Object(o) => (
            o.get("osfamily").and_then(Value::as_str).unwrap_or("linux"),
            o.get("architecture").and_then(Value::as_str).unwrap_or(""),
        ),
        _ => ("", ""),
    };
    match (os.to_ascii_lowercase().as_str(), arch) {
        ("linux", "arm64" | "arm") => Some("arm64"),
        ("linux", "amd64" | "x86_64") => Some("x86_64"),
        _ => {
            sink.warn("/platform", "only Linux on x86_64 or arm64 is carried over");
            None
        }
    }
}

/// A Copilot secret: an SSM parameter's name, or `{secretsmanager: NAME[:KEY:STAGE:ID]}`.
pub(super) fn secret(v: &Value) -> Option<String> {
    if let Some(name) = v.as_str() {
        return Some(format!("$Param('{name}')"));
    }
    let sm = v.get("secretsmanager")?.as_str()?;
    // ECS's form: NAME-or-ARN:json-key:version-stage:version-id.
    let (base, rest) = if sm.starts_with("arn:") {
        let at = sm
            .find(":secret:")
            .map_or(sm.len(), |i| i + ":secret:".len());
        match sm[at..].find(':') {
            Some(j) => (&sm[..at + j], &sm[at + j + 1..]),
            None => (sm, ""),
        }
    } else {
        sm.split_once(':').unwrap_or((sm, ""))
    };
    let mut parts = rest.split(':');
    let key = parts.next().unwrap_or_default();
    let stage = parts.next().unwrap_or_default();
    let id = parts.next().unwrap_or_default();
    let name = if key.is_empty() {
        base.to_owned()
    } else {
        format!("{base}.{key}")
    };
    let version = if !id.is_empty() { id } else { stage };
    Some(if version.is_empty() {
        format!("$Secret('{name}')")
    } else {
        format!("$Secret('{name}', '{version}')")
    })
}

/// `image.healthcheck` (`{command, interval, retries, timeout, start_period}`, the
/// command in Docker's `CMD`/`CMD-SHELL` form) as bosun's health check.
pub(super) fn health_check(h: &Value, sink: &mut Sink<'_>) -> Option<Value> {
    if h.is_null() {
        return None;
    }
    let words: Vec<String> = match &h["command"] {
        Value::String(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
        Value::Array(a) => {
            let a: Vec<String> = a
                .iter()
                .filter_map(|w| w.as_str().map(str::to_owned))
                .collect();
            match a.split_first() {
                Some((first, rest)) if first == "CMD-SHELL" => {
                    vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
                }
                Some((first, rest)) if first == "CMD" => rest.to_vec(),
                _ => a,
            }
        }
        _ => Vec::new(),
    };
    if words.is_empty() {
        sink.warn("/image/healthcheck", "no command: not carried over");
        return None;
    }
    // Copilot's defaults where the manifest gives none (10 s, 5 s, 0 s, 2 retries),
    // not bosun's: the check behaves as it did.
    let mut out = json!({ "healthCheckCommand": words });
    for (key, ours, default) in [
        ("interval", "intervalSeconds", 10),
        ("timeout", "timeoutSeconds", 5),
        ("start_period", "startPeriodSeconds", 0),
    ] {
        out[ours] = json!(seconds(&h[key]).unwrap_or(default));
    }
    out["retries"] = json!(h["retries"].as_i64().unwrap_or(2));
    Some(out)
}

pub(super) fn seconds(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => duration_ms(s).map(|ms| (ms / 1000) as i64),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::convert::resource_name;
    use super::*;

    #[test]
    fn names_words_paths_and_secrets() {
        assert_eq!(resource_name("cost-analyzer"), "costAnalyzer");
        assert_eq!(resource_name("9-report_gen"), "reportGen");
        assert_eq!(
            split_words("python -m 'my app' \"x y\""),
            ["python", "-m", "my app", "x y"]
        );
        assert_eq!(relative_to("svc/Dockerfile", "svc"), "Dockerfile");
        assert_eq!(
            relative_to("docker/Dockerfile.w", "."),
            "docker/Dockerfile.w"
        );
        assert_eq!(
            relative_to("docker/Dockerfile", "svc"),
            "../docker/Dockerfile"
        );
        assert_eq!(
            secret(&json!("GITHUB_TOKEN")).unwrap(),
            "$Param('GITHUB_TOKEN')"
        );
        assert_eq!(
            secret(&json!({"secretsmanager": "mysql"})).unwrap(),
            "$Secret('mysql')"
        );
        assert_eq!(
            secret(&json!({"secretsmanager": "demo/mysql:password::"})).unwrap(),
            "$Secret('demo/mysql.password')"
        );
        assert_eq!(
            secret(&json!({"secretsmanager": "demo/mysql:password:AWSPREVIOUS:"})).unwrap(),
            "$Secret('demo/mysql.password', 'AWSPREVIOUS')"
        );
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
        assert_eq!(
            secret(&json!({"secretsmanager": format!("{arn}:user::")})).unwrap(),
            format!("$Secret('{arn}.user')")
        );
        assert!(secret(&json!({"from_cfn": "x"})).is_none());
    }
}
