//! One Copilot manifest (a "Worker Service" or a "Scheduled Job") as bosun resources.
//! What has no place in a stack file is a warning naming the manifest, line and key.
//!
//! Copilot's manifest reference: <https://aws.github.io/copilot-cli/docs/manifest/worker-service/>
//! and <https://aws.github.io/copilot-cli/docs/manifest/scheduled-job/>.

use serde_json::{json, Map, Value};

use super::parts::{health_check, packaging, platform, seconds, secret, split_words};
use crate::deploy::stack::copilot::{self, duration_ms};
use crate::deploy::stack::yaml::Positions;

/// Where warnings go: `manifest:line: key: why`.
pub struct Sink<'a> {
    pub file: &'a str,
    pub positions: &'a Positions,
    pub warnings: Vec<String>,
}

impl Sink<'_> {
    pub fn warn(&mut self, pointer: &str, why: impl AsRef<str>) {
        let mut p = pointer.to_owned();
        let line = loop {
            if let Some(pos) = self.positions.get(&p) {
                break pos.line;
            }
            match p.rfind('/') {
                Some(i) => p.truncate(i),
                None => break 0,
            }
        };
        let key = pointer.trim_start_matches('/').replace('/', ".");
        self.warnings
            .push(format!("{}:{line}: {key}: {}", self.file, why.as_ref()));
    }
}

/// A converted manifest: its resource, and its queue (a worker's `subscribe.queue`).
pub struct Converted {
    pub name: String,
    pub resource: Value,
    pub queue: Option<(String, Value)>,
}

/// Copilot's name (`cost-analyzer`) as a bosun resource name (`costAnalyzer`).
pub fn resource_name(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for ch in name.chars() {
        if ch.is_ascii_alphanumeric() {
            if out.is_empty() && !ch.is_ascii_alphabetic() {
                continue;
            }
            out.push(if upper { ch.to_ascii_uppercase() } else { ch });
            upper = false;
        } else {
            upper = !out.is_empty();
        }
    }
    out.truncate(40);
    if out.is_empty() {
        "app".into()
    } else {
        out
    }
}

/// The keys a manifest may have that are carried over, by type.
const COMMON: &[&str] = &[
    "name",
    "type",
    "image",
    "entrypoint",
    "command",
    "cpu",
    "memory",
    "platform",
    "variables",
    "secrets",
    "exec",
    "environments",
];
const WORKER: &[&str] = &["count", "subscribe"];
const BACKEND: &[&str] = &["count", "http"];
const JOB: &[&str] = &["on", "retries", "timeout"];

/// Why a known key is left behind.
pub(super) fn left_behind(key: &str) -> &'static str {
    match key {
        "sidecars" => "sidecar containers are not carried over: bosun runs one worker container per task",
        "logging" => "FireLens log routing is not carried over: logs go to CloudWatch Logs (/bosun/STACK/NAME)",
        "network" => "not carried over: the network is the stack's (top-level `network:`, else the default VPC)",
        "storage" => "volumes (EFS, ephemeral) are not carried over",
        "taskdef_overrides" => "task definition overrides are not carried over",
        "observability" => "tracing (X-Ray) is not carried over",
        "publish" => "SNS topics are not carried over",
        "deployment" => "Copilot's rolling settings are not carried over: bosun deploys with the circuit breaker",
        "env_file" => "an env file in S3 is not carried over: write its variables under environment",
        "depends_on" => "container dependencies are not carried over",
        _ => "not carried over",
    }
}

/// `m` (a manifest's value, or one with an environment's overrides merged in) as
/// resources; `ws_to_out` is the workspace's folder seen from the output file's.
pub fn convert(m: &Value, ws_to_out: &str, sink: &mut Sink<'_>) -> Result<Converted, String> {
    let kind = m["type"].as_str().unwrap_or_default();
    // A Backend Service is a worker service that takes connections on its port.
    let backend = kind == "Backend Service";
    let worker = kind == "Worker Service" || backend;
    let name = resource_name(m["name"].as_str().unwrap_or("app"));
    let mut props = Map::new();
    let own = match (backend, worker) {
        (true, _) => BACKEND,
        (false, true) => WORKER,
        _ => JOB,
    };
    let allowed: Vec<&str> = COMMON.iter().chain(own).copied().collect();
    if let Some(o) = m.as_object() {
        for k in o.keys() {
            if !allowed.contains(&k.as_str()) {
                sink.warn(&format!("/{k}"), left_behind(k));
            }
        }
    }
    props.insert("packaging".into(), packaging(m, ws_to_out, sink)?);
    for (key, ours) in [("entrypoint", "entryPoint"), ("command", "command")] {
        match &m[key] {
            Value::Null => {}
            Value::String(s) => {
                props.insert(ours.into(), json!(split_words(s)));
            }
            Value::Array(a) => {
                props.insert(ours.into(), Value::Array(a.clone()));
            }
            _ => sink.warn(
                &format!("/{key}"),
                "neither a string nor a list: not carried over",
            ),
        }
    }
    let mut res = Map::new();
    if let Some(cpu) = m["cpu"].as_f64() {
        res.insert("cpu".into(), json!(cpu / 1024.0));
    }
    if let Some(mem) = m["memory"].as_i64() {
        res.insert("memory".into(), json!(mem));
    }
    if let Some(arch) = platform(&m["platform"], sink) {
        res.insert("architecture".into(), json!(arch));
    }
    if !res.is_empty() {
        props.insert("resources".into(), Value::Object(res));
    }
    let mut env = Vec::new();
    if let Some(vars) = m["variables"].as_object() {
        for (k, v) in vars {
            match v {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    env.push(json!({ "name": k, "value": s }));
                }
                _ => sink.warn(
                    &format!("/variables/{k}"),
                    "a CloudFormation import (from_cfn) is not carried over: give the value",
                ),
            }
        }
    }
    if let Some(secrets) = m["secrets"].as_object() {
        for (k, v) in secrets {
            match secret(v) {
                Some(directive) => env.push(json!({ "name": k, "value": directive })),
                None => sink.warn(
                    &format!("/secrets/{k}"),
                    "not carried over (from_cfn or an unknown form): write $Param('/name') or $Secret('name')",
                ),
            }
        }
    }
    if !env.is_empty() {
        props.insert("environment".into(), Value::Array(env));
    }
    match &m["exec"] {
        Value::Bool(true) => {
            props.insert("enableExecuteCommand".into(), json!(true));
        }
        Value::Null | Value::Bool(false) => {}
        _ => sink.warn("/exec", "only `exec: true` is carried over"),
    }
    if let Some(hc) = health_check(&m["image"]["healthcheck"], sink) {
        props.insert("internalHealthCheck".into(), hc);
    }
    if backend {
        backend_service(m, &name, &mut props, sink);
    }
    let mut queue = None;
    if worker {
        if m["subscribe"].is_object() {
            let qname = format!("{name}Queue");
            queue = Some((qname.clone(), queue_of(&m["subscribe"], sink)));
            props.insert("connectTo".into(), json!([qname]));
            // Copilot gives the worker its queue's URL as COPILOT_QUEUE_URI.
            if let Some(a) = props
                .entry("environment")
                .or_insert_with(|| json!([]))
                .as_array_mut()
            {
                a.push(json!({
                    "name": "COPILOT_QUEUE_URI",
                    "value": format!("$ResourceParam('{qname}', 'url')")
                }));
            }
        }
        if let Some(scaling) = count(&m["count"], queue.is_some(), &mut props, sink) {
            props.insert("scaling".into(), scaling);
        }
    } else {
        job(m, &mut props, sink);
    }
    Ok(Converted {
        name,
        resource: json!({
            "type": if worker { "worker-service" } else { "scheduled-job" },
            "properties": Value::Object(props),
        }),
        queue,
    })
}

/// A Backend Service's `image.port` as its `ports`: Copilot reached it through service
/// discovery as `NAME.ENV.APP.local` (or Service Connect's `NAME`); under bosun it is
/// `NAME.STACK.internal` (Cloud Map), which its clients get by connecting to it.
/// `http` (an internal load balancer) is left behind.
fn backend_service(m: &Value, name: &str, props: &mut Map<String, Value>, sink: &mut Sink<'_>) {
    match m["image"]["port"]
        .as_u64()
        .filter(|p| (1..=65535).contains(p))
    {
        Some(port) => {
            props.insert("ports".into(), json!([{ "containerPort": port }]));
            let e = crate::deploy::naming::env_name(name);
            sink.warn(
                "/image/port",
                format!("{name} is reached as {}.STACK.internal:{port} now (Copilot named it {}.ENV.APP.local): its clients connectTo it and read STP_{e}_HOST and STP_{e}_PORT", name.to_ascii_lowercase(), m["name"].as_str().unwrap_or(name)),
            );
        }
        None if m["image"]["port"].is_null() => {}
        None => sink.warn("/image/port", "not a port number: not carried over"),
    }
    if !m["http"].is_null() {
        sink.warn(
            "/http",
            "an internal load balancer is not carried over: the service is reached on its port through Cloud Map",
        );
    }
}

/// `subscribe.queue` (retention, timeout, delay, dead_letter.tries, fifo) as an
/// sqs-queue; topics are left behind.
fn queue_of(sub: &Value, sink: &mut Sink<'_>) -> Value {
    if sub["topics"].is_array() {
        sink.warn("/subscribe/topics", "SNS topic subscriptions are not carried over: the queue is made, nothing publishes to it");
    }
    let q = &sub["queue"];
    let mut props = Map::new();
    for (key, ours) in [
        ("retention", "messageRetentionSeconds"),
        ("timeout", "visibilityTimeoutSeconds"),
        ("delay", "delaySeconds"),
    ] {
        match (&q[key], seconds(&q[key])) {
            (Value::Null, _) => {}
            (_, Some(s)) => {
                props.insert(ours.into(), json!(s));
            }
            (_, None) => sink.warn(
                &format!("/subscribe/queue/{key}"),
                "not a duration: not carried over",
            ),
        }
    }
    if let Some(tries) = q["dead_letter"]["tries"].as_i64() {
        props.insert(
            "deadLetterQueue".into(),
            json!({ "maxReceiveCount": tries }),
        );
    }
    match &q["fifo"] {
        Value::Null | Value::Bool(false) => {}
        Value::Bool(true) => {
            props.insert("fifo".into(), json!(true));
        }
        _ => {
            props.insert("fifo".into(), json!(true));
            sink.warn(
                "/subscribe/queue/fifo",
                "a FIFO queue is made; its settings are not carried over",
            );
        }
    }
    if let Some(o) = q.as_object() {
        for k in o.keys() {
            if !["retention", "timeout", "delay", "dead_letter", "fifo"].contains(&k.as_str()) {
                sink.warn(&format!("/subscribe/queue/{k}"), "not carried over");
            }
        }
    }
    json!({ "type": "sqs-queue", "properties": Value::Object(props) })
}

/// `count` as scaling (and Spot): a number, or `{range, spot_from, cpu_percentage,
/// memory_percentage, queue_delay}`.
fn count(
    c: &Value,
    has_queue: bool,
    props: &mut Map<String, Value>,
    sink: &mut Sink<'_>,
) -> Option<Value> {
    if let Some(n) = c.as_i64() {
        return Some(json!({ "minInstances": n, "maxInstances": n }));
    }
    let o = c.as_object()?;
    let mut scaling = Map::new();
    let mut policy = Map::new();
    match &c["range"] {
        Value::String(r) => match r
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?)))
        {
            Some((a, b)) => {
                scaling.insert("minInstances".into(), json!(a));
                scaling.insert("maxInstances".into(), json!(b));
            }
            None => sink.warn("/count/range", "not MIN-MAX: not carried over"),
        },
        Value::Object(r) => {
            if let Some(a) = r.get("min").and_then(Value::as_i64) {
                scaling.insert("minInstances".into(), json!(a));
            }
            if let Some(b) = r.get("max").and_then(Value::as_i64) {
                scaling.insert("maxInstances".into(), json!(b));
            }
            if let Some(s) = r.get("spot_from").and_then(Value::as_i64) {
                // From the Nth task on, Spot: N-1 on-demand first.
                props.insert("spot".into(), json!(true));
                props.insert("onDemandBase".into(), json!((s - 1).max(0)));
            }
        }
        _ => {}
    }
    if let Some(n) = c["spot"].as_i64() {
        props.insert("spot".into(), json!(true));
        scaling.insert("minInstances".into(), json!(n));
        scaling.insert("maxInstances".into(), json!(n));
    }
    for (key, ours) in [
        ("cpu_percentage", "keepAvgCpuUtilizationUnder"),
        ("memory_percentage", "keepAvgMemoryUtilizationUnder"),
    ] {
        let v = c[key].as_f64().or_else(|| c[key]["value"].as_f64());
        if let Some(v) = v {
            policy.insert(ours.into(), json!(v));
        }
        if c[key].get("cooldown").is_some() {
            sink.warn(&format!("/count/{key}/cooldown"), "not carried over");
        }
    }
    if c["queue_delay"].is_object() {
        let latency = c["queue_delay"]["acceptable_latency"]
            .as_str()
            .and_then(duration_ms);
        let each = c["queue_delay"]["msg_processing_time"]
            .as_str()
            .and_then(duration_ms);
        match (latency, each, has_queue) {
            (Some(l), Some(e), true) if e > 0 => {
                // Copilot's backlog per task: acceptable latency ÷ processing time.
                policy.insert("keepBacklogPerInstanceUnder".into(), json!((l / e).max(1)));
            }
            (_, _, false) => sink.warn(
                "/count/queue_delay",
                "a backlog target needs the worker's queue (subscribe): not carried over",
            ),
            _ => sink.warn(
                "/count/queue_delay",
                "acceptable_latency and msg_processing_time must be durations: not carried over",
            ),
        }
    }
    for k in o.keys() {
        if ![
            "range",
            "spot",
            "cpu_percentage",
            "memory_percentage",
            "queue_delay",
            "requests",
            "response_time",
        ]
        .contains(&k.as_str())
        {
            sink.warn(&format!("/count/{k}"), "not carried over");
        }
    }
    if !policy.is_empty() {
        scaling.insert("scalingPolicy".into(), Value::Object(policy));
    }
    (!scaling.is_empty()).then_some(Value::Object(scaling))
}

/// A job's `on.schedule`, `retries` and `timeout`.
fn job(m: &Value, props: &mut Map<String, Value>, sink: &mut Sink<'_>) {
    let schedule = m["on"]["schedule"].as_str().unwrap_or("none").trim();
    let expr = if schedule == "none" {
        // No schedule: a job run only when asked (`bosun-deploy run`).
        props.insert("enabled".into(), json!(false));
        sink.warn("/on/schedule", "'none': the job is written with a daily schedule, disabled (enabled: false); run it with `bosun-deploy run`");
        "rate(1 day)".to_owned()
    } else if crate::deploy::stack::schedule::check(schedule).is_ok() {
        schedule.to_owned()
    } else {
        match copilot::schedule(schedule) {
            Some(Ok(x)) => x,
            Some(Err(why)) => {
                sink.warn(
                    "/on/schedule",
                    format!("{why}: written as it is, to be fixed"),
                );
                schedule.to_owned()
            }
            // `rate(...)` of CloudWatch Events is the Scheduler's too; anything else
            // is written as it is, and validation says what is wrong.
            None => schedule.to_owned(),
        }
    };
    props.insert("schedule".into(), json!(expr));
    if let Some(n) = m["retries"].as_i64() {
        // Copilot retries a failed run; bosun restarts the worker in the same task on
        // a non-zero exit, as many times.
        props.insert("retryOnFailure".into(), json!(n));
    }
    match (&m["timeout"], seconds(&m["timeout"])) {
        (Value::Null, _) => {}
        (_, Some(s)) => {
            props.insert("timeoutSeconds".into(), json!(s));
        }
        (_, None) => sink.warn("/timeout", "not a duration: not carried over"),
    }
}

/// What `env` changes of `base`: the keys whose values differ (objects compared key by
/// key, anything else whole), as a stage's overrides merge back.
pub fn changes(base: &Value, env: &Value) -> Option<Value> {
    match (base, env) {
        (Value::Object(b), Value::Object(e)) => {
            let mut out = Map::new();
            for (k, v) in e {
                match b.get(k) {
                    None => {
                        out.insert(k.clone(), v.clone());
                    }
                    Some(bv) => {
                        if let Some(c) = changes(bv, v) {
                            out.insert(k.clone(), c);
                        }
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        (b, e) if b == e => None,
        (_, e) => Some(e.clone()),
    }
}

/// The keys `base` has and `env` lacks (JSON pointers): what a stage, merged over
/// the base, cannot take away.
pub fn removed(base: &Value, env: &Value, at: &str, out: &mut Vec<String>) {
    if let (Value::Object(b), Value::Object(e)) = (base, env) {
        for (k, v) in b {
            match e.get(k) {
                None => out.push(format!("{at}/{k}")),
                Some(ev) => removed(v, ev, &format!("{at}/{k}"), out),
            }
        }
    }
}

/// Copilot's merge of an environment's overrides: maps key by key, the rest replaced.
pub fn merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                let merged = match b.get(k) {
                    Some(bv) => merge(bv, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, o) => o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_holds_what_the_environment_changes() {
        let base = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1]});
        let env = json!({"a": 1, "b": {"c": 2, "d": 4}, "l": [1, 2]});
        assert_eq!(
            changes(&base, &env),
            Some(json!({"b": {"d": 4}, "l": [1, 2]}))
        );
        assert_eq!(changes(&base, &base), None);
        assert_eq!(
            merge(&base, &json!({"b": {"d": 9}})),
            json!({"a": 1, "b": {"c": 2, "d": 9}, "l": [1]})
        );
    }
}
