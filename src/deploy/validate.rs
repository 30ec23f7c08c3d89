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

use super::schedule;
use super::stack::{Container, Resource, Resources, Stack};
use super::yaml::{self, Pos, Positions};

/// The stack file's JSON Schema (published in the repository for editors).
pub const SCHEMA: &str = include_str!("../../schema/bosun-stack.schema.json");

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

/// Check the text of a stack file named `file`.
pub fn check(file: &str, text: &str) -> Result<(Stack, Report), Report> {
    let (value, positions) = match yaml::parse(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(Report {
                file: file.into(),
                diagnostics: vec![Diagnostic {
                    severity: Severity::Error,
                    pointer: String::new(),
                    message: format!("not valid YAML: {}", e.message),
                    pos: Some(Pos {
                        line: e.line,
                        col: e.col,
                    }),
                }],
            })
        }
    };
    let mut c = Collector {
        positions: &positions,
        out: Vec::new(),
    };
    structure(&value, &mut c);
    // The rules still run on every resource whose structure is right, so that one
    // run reports everything; references see every resource named in the file.
    let kinds: Kinds = value["resources"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v["type"].as_str().unwrap_or("").to_owned()))
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
    let top_broken = c.out.iter().any(|d| !d.pointer.starts_with("/resources/"));
    let mut usable = value.clone();
    if let Some(res) = usable.get_mut("resources").and_then(Value::as_object_mut) {
        res.retain(|k, _| !broken.contains(k));
        // `properties` that can all default may be left out (`type: sqs-queue` alone).
        for r in res.values_mut() {
            if let Some(o) = r.as_object_mut() {
                o.entry("properties")
                    .or_insert_with(|| Value::Object(Default::default()));
            }
        }
    }
    let stack = if top_broken {
        None
    } else {
        match serde_path_to_error::deserialize::<_, Stack>(&usable) {
            Ok(s) => Some(s),
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
        rules(stack, &kinds, &mut c);
    }
    c.out.sort_by_key(|d| {
        (
            d.pos.map_or((0, 0), |p| (p.line, p.col)),
            d.severity == Severity::Warning,
        )
    });
    let report = Report {
        file: file.into(),
        diagnostics: c.out,
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
                        (
                            format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                            format!("unknown key '{k}'"),
                        )
                    })
                    .collect()
            }
            K::Required { property } => {
                vec![(at.clone(), format!("missing required key {property}"))]
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

/// Fargate's task CPU sizes (vCPU), the keys of [`fargate_memory`].
const FARGATE_CPUS: [f64; 7] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];

/// [`FARGATE_CPUS`] as a message lists them: `0.25, 0.5, 1, ...`.
fn fargate_cpus() -> String {
    FARGATE_CPUS.map(|c| c.to_string()).join(", ")
}

/// Fargate's task CPU (vCPU) and the memory (MiB) each allows.
pub fn fargate_memory(cpu: f64) -> Option<Vec<i64>> {
    let r = |a: i64, b: i64, step: i64| (a..=b).step_by(step as usize).collect::<Vec<_>>();
    Some(match cpu {
        0.25 => vec![512, 1024, 2048],
        0.5 => r(1024, 4096, 1024),
        1.0 => r(2048, 8192, 1024),
        2.0 => r(4096, 16384, 1024),
        4.0 => r(8192, 30720, 1024),
        8.0 => r(16384, 61440, 4096),
        16.0 => r(32768, 122880, 8192),
        _ => return None,
    })
}

/// CloudWatch Logs' retention values (days).
pub const RETENTION_DAYS: [i64; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

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

/// ECS's default stop timeout (Fargate) when the stack gives none.
pub const DEFAULT_STOP_TIMEOUT: i64 = 30;
/// SQS's default visibility timeout.
pub const DEFAULT_VISIBILITY: i64 = 30;

/// Every resource of the file and its `type`, structurally valid or not.
type Kinds = std::collections::BTreeMap<String, String>;

/// Whether `target` names a resource of the file; its kind.
fn kind_of<'k>(kinds: &'k Kinds, target: &str) -> Option<&'k str> {
    kinds.get(target).map(String::as_str)
}

fn rules(stack: &Stack, kinds: &Kinds, c: &mut Collector<'_>) {
    let name_ok = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.chars().next().is_some_and(|ch| ch.is_ascii_alphabetic())
            && s.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    };
    if !name_ok(&stack.stack, 32) {
        c.error(
            "/stack",
            format!(
                "'{}' must be 1..32 letters, digits or '-', starting with a letter",
                stack.stack
            ),
        );
    }
    if let Some(r) = &stack.registry {
        if let Err(e) = check_registry(r) {
            c.error("/registry", e);
        }
    }
    let needs_network = stack.resources.values().any(|r| r.container().is_some());
    if needs_network && stack.network.is_none() {
        c.error("/network", "missing: worker-service and scheduled-job tasks run on Fargate (awsvpc) and need network.subnets");
    }
    for (name, res) in &stack.resources {
        let base = format!("/resources/{name}");
        let props = format!("{base}/properties");
        if !name_ok(name, 40) || name.contains('-') {
            c.error(base.clone(), format!("resource name '{name}' must be 1..40 letters and digits, starting with a letter"));
        }
        match res {
            Resource::SqsQueue(q) => {
                c.range(
                    format!("{props}/visibilityTimeoutSeconds"),
                    q.visibility_timeout_seconds,
                    0,
                    43200,
                );
                c.range(
                    format!("{props}/messageRetentionSeconds"),
                    q.message_retention_seconds,
                    60,
                    1_209_600,
                );
                c.range(format!("{props}/delaySeconds"), q.delay_seconds, 0, 900);
                if let Some(dlq) = &q.dead_letter_queue {
                    c.range(
                        format!("{props}/deadLetterQueue/maxReceiveCount"),
                        Some(dlq.max_receive_count),
                        1,
                        1000,
                    );
                    if let Some(t) = &dlq.target_queue {
                        match kind_of(kinds, t) {
                            None => c.error(
                                format!("{props}/deadLetterQueue/targetQueue"),
                                format!("no resource named '{t}'"),
                            ),
                            Some("sqs-queue") if t == name => c.error(
                                format!("{props}/deadLetterQueue/targetQueue"),
                                "a queue cannot be its own dead-letter queue",
                            ),
                            Some("sqs-queue") => {}
                            Some(other) => c.error(
                                format!("{props}/deadLetterQueue/targetQueue"),
                                format!("'{t}' is a {other}, not an sqs-queue"),
                            ),
                        }
                    }
                }
            }
            Resource::WorkerService(s) => {
                container(stack, kinds, name, &s.container, &props, c);
                if let Some(sc) = &s.scaling {
                    let p = format!("{props}/scaling");
                    let min = sc.min_instances.unwrap_or(1);
                    let max = sc.max_instances.unwrap_or(min.max(1));
                    let queues = connected_queues(kinds, &s.container);
                    if min < 0 {
                        c.error(
                            format!("{p}/minInstances"),
                            format!("{min} is out of range: allowed 0 <= minInstances <= maxInstances (0 only with a connected queue)"),
                        );
                    } else if min == 0 && queues.is_empty() {
                        c.error(
                            format!("{p}/minInstances"),
                            "0 needs a queue to wake the service: connect it to an sqs-queue (connectTo), or keep minInstances at 1 or more",
                        );
                    } else if min == 0 && queues.len() > MAX_WAKE_QUEUES {
                        c.error(
                            format!("{p}/minInstances"),
                            format!("0 works with up to {MAX_WAKE_QUEUES} connected queues (the idle alarm reads 2 metrics of each, 10 at most); this service connects to {}", queues.len()),
                        );
                    }
                    if max < min {
                        c.error(
                            format!("{p}/maxInstances"),
                            format!("{max} is less than minInstances ({min}): allowed minInstances <= maxInstances"),
                        );
                    } else if max < 1 {
                        c.error(
                            format!("{p}/maxInstances"),
                            format!("{max} is out of range: allowed 1 <= maxInstances"),
                        );
                    }
                    if let Some(idle) = sc.idle_minutes {
                        if min != 0 {
                            c.error(
                                format!("{p}/idleMinutes"),
                                format!("idleMinutes applies only to a service that scales to zero (minInstances: 0); minInstances is {min}"),
                            );
                        } else if !(1..=MAX_IDLE_MINUTES).contains(&idle) {
                            c.error(
                                format!("{p}/idleMinutes"),
                                format!("{idle} is out of range: allowed 1..={MAX_IDLE_MINUTES} (CloudWatch evaluates an alarm over at most one day)"),
                            );
                        }
                    }
                    if min == 0 {
                        for q in &queues {
                            if let Some(Resource::SqsQueue(qq)) = stack.resources.get(*q) {
                                if qq.dead_letter_queue.is_none() {
                                    c.warn(
                                        format!("/resources/{q}/properties"),
                                        format!("'{q}' has no deadLetterQueue: a message that always fails goes back to the queue and wakes {name} from zero again and again; give it a deadLetterQueue"),
                                    );
                                }
                            }
                        }
                    }
                    if let Some(pol) = &sc.scaling_policy {
                        for (key, v) in [
                            (
                                "keepAvgCpuUtilizationUnder",
                                pol.keep_avg_cpu_utilization_under,
                            ),
                            (
                                "keepAvgMemoryUtilizationUnder",
                                pol.keep_avg_memory_utilization_under,
                            ),
                        ] {
                            if let Some(v) = v {
                                if !(v > 0.0 && v <= 100.0) {
                                    c.error(format!("{p}/scalingPolicy/{key}"), format!("{v} is out of range: allowed above 0 up to 100 (percent)"));
                                }
                            }
                        }
                        if let Some(v) = pol.keep_backlog_per_instance_under {
                            if v <= 0.0 {
                                c.error(
                                    format!("{p}/scalingPolicy/keepBacklogPerInstanceUnder"),
                                    format!("{v} must be above 0 (messages per task)"),
                                );
                            }
                            if !connected_queue(kinds, &s.container) {
                                c.error(
                                    format!("{p}/scalingPolicy/keepBacklogPerInstanceUnder"),
                                    "a backlog target needs a queue: connect the service to an sqs-queue (connectTo)",
                                );
                            }
                        }
                    }
                }
                if let Some(base) = s.on_demand_base {
                    if !s.spot {
                        c.error(
                            format!("{props}/onDemandBase"),
                            "onDemandBase is the on-demand part of a spot service: it needs spot: true",
                        );
                    } else if !(0..=100_000).contains(&base) {
                        c.error(
                            format!("{props}/onDemandBase"),
                            format!("{base} is out of range: allowed 0..=100000"),
                        );
                    }
                }
                if s.spot && s.container.resources.instance_types.is_some() {
                    c.error(
                        format!("{props}/spot"),
                        "spot (FARGATE_SPOT) cannot go with resources.instanceTypes (EC2)",
                    );
                }
            }
            Resource::ScheduledJob(j) => {
                container(stack, kinds, name, &j.container, &props, c);
                if let Err(e) = schedule::check(&j.schedule) {
                    c.error(format!("{props}/schedule"), e);
                }
                if let Some(tz) = &j.timezone {
                    let ok = tz == "UTC"
                        || (tz.contains('/')
                            && tz
                                .chars()
                                .all(|ch| ch.is_ascii_alphanumeric() || "/_-+".contains(ch)));
                    if !ok {
                        c.error(format!("{props}/timezone"), format!("'{tz}' is not an IANA time zone name (for example Europe/Prague or UTC)"));
                    }
                }
                c.range(format!("{props}/taskCount"), j.task_count, 1, 10);
                match j.task_count {
                    Some(n) if j.singleton && n != 1 => c.error(
                        format!("{props}/singleton"),
                        format!("singleton: true needs taskCount 1 (it is {n}): the tasks of one run would each take the others for an earlier run"),
                    ),
                    _ => {}
                }
                c.range(
                    format!("{props}/maxEventAgeSeconds"),
                    j.max_event_age_seconds,
                    60,
                    86400,
                );
                c.range(format!("{props}/retryAttempts"), j.retry_attempts, 0, 185);
                c.range(
                    format!("{props}/timeoutSeconds"),
                    j.timeout_seconds,
                    1,
                    31_536_000,
                );
            }
        }
    }
}

fn connected_queue(kinds: &Kinds, ctr: &Container) -> bool {
    !connected_queues(kinds, ctr).is_empty()
}

/// The sqs-queues a container connects to, in file order.
fn connected_queues<'a>(kinds: &Kinds, ctr: &'a Container) -> Vec<&'a str> {
    ctr.connect_to
        .iter()
        .filter(|t| kind_of(kinds, t) == Some("sqs-queue"))
        .map(String::as_str)
        .collect()
}

/// How many queues a scale-to-zero service may connect to: its idle alarm reads two
/// metrics of each, and a CloudWatch metric-math alarm reads at most 10.
pub const MAX_WAKE_QUEUES: usize = 4;
/// The longest idle time: CloudWatch evaluates a 1-minute alarm over at most a day.
pub const MAX_IDLE_MINUTES: i64 = 1440;
/// The idle time before a scale-to-zero service goes to zero, by default.
pub const DEFAULT_IDLE_MINUTES: i64 = 15;

/// The entry file extensions auto-packaging (`image-buildpack`) knows, with their
/// language.
pub const ENTRY_EXTENSIONS: &[(&str, &str)] = &[
    ("js", "Node.js"),
    ("mjs", "Node.js"),
    ("cjs", "Node.js"),
    ("ts", "Node.js"),
    ("mts", "Node.js"),
    ("py", "Python"),
    ("go", "Go"),
];

/// A registry as the stack names it: `HOST[:PORT]/NAMESPACE`, with no scheme.
pub fn check_registry(r: &str) -> std::result::Result<(), String> {
    let bad = |why: &str| {
        Err(format!("'{r}': {why}: expected HOST[:PORT]/NAMESPACE (for example ghcr.io/acme or 127.0.0.1:5000/team)"))
    };
    if r.contains("://") {
        return bad("no scheme");
    }
    let Some((host, ns)) = r.split_once('/') else {
        return bad("no namespace");
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | ':'));
    let ns_ok = !ns.is_empty()
        && !ns.ends_with('/')
        && ns.chars().all(|ch| {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-' | '/')
        });
    if !host_ok {
        return bad("not a host name");
    }
    if !ns_ok {
        return bad("a namespace is lowercase letters, digits, '.', '_', '-' and '/'");
    }
    Ok(())
}

/// The `$ResourceParam` parameters of a resource kind.
fn params_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "sqs-queue" => &["url", "arn", "name"],
        "worker-service" => &["serviceName"],
        _ => &[],
    }
}

/// A task on EC2 instances (`resources.instanceTypes`): the types, their architecture,
/// the warm pool, and the task's size against the smallest type.
fn ec2_resources(types: &[String], res: &Resources, rp: &str, c: &mut Collector<'_>) {
    use super::instance_types as it;
    let tp = format!("{rp}/instanceTypes");
    if types.is_empty() {
        c.error(
            tp.clone(),
            "give at least one instance type (the first is preferred)",
        );
        return;
    }
    let arch = res.architecture.as_deref().unwrap_or("x86_64");
    for (i, t) in types.iter().enumerate() {
        if !it::well_formed(t) {
            c.error(
                format!("{tp}/{i}"),
                format!("{t:?} is not an EC2 instance type (family.size, as m6i.large)"),
            );
        } else if types[..i].contains(t) {
            c.error(format!("{tp}/{i}"), format!("{t} is listed twice"));
        } else if it::architecture(t) != arch {
            c.error(
                format!("{tp}/{i}"),
                format!(
                    "{t} is an {} type and the task's architecture is {arch} (resources.architecture): every type must run the image",
                    it::architecture(t)
                ),
            );
        }
    }
    if res.enable_warm_pool == Some(true) && types.len() != 1 {
        c.error(
            format!("{rp}/enableWarmPool"),
            format!(
                "a warm pool needs exactly one instance type (EC2 Auto Scaling has no warm pool for a group of mixed types); {} are listed",
                types.len()
            ),
        );
    }
    // The smallest listed type, by what a task can have of it; every type must be known
    // for a task to be sized to fill one without cpu and memory.
    let known: Vec<(usize, &String, it::Shape)> = types
        .iter()
        .enumerate()
        .filter_map(|(i, t)| it::shape(t).map(|s| (i, t, s)))
        .collect();
    let smallest = known.iter().min_by_key(|(_, _, s)| s.task_memory());
    match (res.cpu, res.memory) {
        (None, None) => {
            for (i, t) in types.iter().enumerate() {
                if it::well_formed(t) && it::shape(t).is_none() {
                    c.error(
                        format!("{tp}/{i}"),
                        format!("bosun-deploy does not know the size of {t}, so it cannot size a task to fill one: give resources.cpu and resources.memory"),
                    );
                }
            }
        }
        (Some(_), None) => c.error(
            format!("{rp}/cpu"),
            "cpu without memory: give resources.memory too (or neither: a task then fills one instance of the smallest type)",
        ),
        (None, Some(_)) => c.error(
            format!("{rp}/memory"),
            "memory without cpu: give resources.cpu too (or neither: a task then fills one instance of the smallest type)",
        ),
        (Some(cpu), Some(mem)) => {
            if cpu <= 0.0 {
                c.error(format!("{rp}/cpu"), format!("{cpu} vCPU must be above 0"));
            }
            if mem < 128 {
                c.error(
                    format!("{rp}/memory"),
                    format!("{mem} MiB is below ECS's least, 128 MiB"),
                );
            }
            if let Some((_, t, shape)) = smallest {
                if (cpu * 1024.0).round() as i64 > shape.cpu_units() {
                    c.error(
                        format!("{rp}/cpu"),
                        format!("{cpu} vCPU does not fit a {t} ({} vCPU)", shape.vcpus),
                    );
                }
                if mem > shape.task_memory() {
                    c.error(
                        format!("{rp}/memory"),
                        format!(
                            "{mem} MiB does not fit a {t}: a task can have up to {} MiB of it",
                            shape.task_memory()
                        ),
                    );
                }
            }
        }
    }
}

fn container(
    stack: &Stack,
    kinds: &Kinds,
    name: &str,
    ctr: &Container,
    props: &str,
    c: &mut Collector<'_>,
) {
    let pk = format!("{props}/packaging");
    if let Some(arn) = &ctr.packaging.properties.repository_credentials_secret_arn {
        let parts: Vec<&str> = arn.splitn(7, ':').collect();
        let ok = parts.len() == 7
            && parts[0] == "arn"
            && parts[2] == "secretsmanager"
            && parts[5] == "secret"
            && !parts[6].is_empty();
        if !ok {
            c.error(
                format!("{pk}/properties/repositoryCredentialsSecretArn"),
                format!("{arn:?} is not a Secrets Manager secret's ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"),
            );
        }
    }
    match ctr.packaging.kind.as_str() {
        "prebuilt-image"
            if ctr
                .packaging
                .properties
                .image
                .as_deref()
                .is_none_or(str::is_empty) =>
        {
            c.error(
                format!("{pk}/properties"),
                "prebuilt-image needs properties.image",
            )
        }
        "image-buildpack" | "stacktape-image-buildpack" => {
            match ctr.packaging.properties.entryfile_path.as_deref() {
                None | Some("") => c.error(
                    format!("{pk}/properties"),
                    "image-buildpack needs properties.entryfilePath (the file the worker starts from)",
                ),
                Some(entry) => {
                    let ext = Path::new(entry)
                        .extension()
                        .and_then(|e| e.to_str())
                        .unwrap_or("");
                    if !ENTRY_EXTENSIONS.iter().any(|(e, _)| *e == ext) {
                        c.error(
                            format!("{pk}/properties/entryfilePath"),
                            format!(
                                "{entry}: auto-packaging knows Node.js (.js, .mjs, .cjs, .ts, .mts), Python (.py) and Go (.go) entry files; for another language, write a Dockerfile (custom-dockerfile)"
                            ),
                        );
                    }
                }
            }
        }
        "external-buildpack"
            if ctr
                .packaging
                .properties
                .builder
                .as_deref()
                .is_none_or(str::is_empty) =>
        {
            c.error(
                format!("{pk}/properties"),
                "external-buildpack needs properties.builder (a Cloud Native Buildpacks builder image, as paketobuildpacks/builder-jammy-base)",
            )
        }
        "custom-dockerfile" if ctr.packaging.properties.build_context_path.is_none() => c.error(
            format!("{pk}/properties"),
            "custom-dockerfile needs properties.buildContextPath",
        ),
        _ => {}
    }
    let res = &ctr.resources;
    let rp = format!("{props}/resources");
    let lower = stack.stack.to_ascii_lowercase();
    if res.instance_types.is_some()
        && ["aws", "ecs", "fargate"]
            .iter()
            .any(|p| lower.starts_with(p))
    {
        c.error(
            format!("{rp}/instanceTypes"),
            format!("the EC2 capacity provider would be named {}-{name}, and ECS refuses a capacity provider name that starts with aws, ecs or fargate: rename the stack", stack.stack),
        );
    }
    if res.enable_warm_pool.is_some() && res.instance_types.is_none() {
        c.error(
            format!("{rp}/enableWarmPool"),
            "a warm pool holds EC2 instances: it needs resources.instanceTypes (with exactly one type)",
        );
    }
    match (&res.instance_types, res.cpu, res.memory) {
        (Some(types), _, _) => ec2_resources(types, res, &rp, c),
        (None, Some(cpu), Some(mem)) => match fargate_memory(cpu) {
            None => c.error(
                format!("{rp}/cpu"),
                format!(
                    "{cpu} vCPU is not a Fargate size: allowed {}",
                    fargate_cpus()
                ),
            ),
            Some(allowed) if !allowed.contains(&mem) => {
                let (lo, hi) = (allowed[0], allowed[allowed.len() - 1]);
                let step = if allowed.len() > 1 {
                    allowed[1] - allowed[0]
                } else {
                    0
                };
                let list = if allowed.len() <= 3 {
                    allowed
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    format!("{lo}..={hi} in steps of {step}")
                };
                c.error(
                    format!("{rp}/memory"),
                    format!("{mem} MiB does not go with {cpu} vCPU on Fargate: allowed {list}"),
                );
            }
            Some(_) => {}
        },
        // Neither: Fargate's smallest task, the documented default.
        (None, None, None) => {}
        (None, Some(cpu), None) => {
            let allowed = fargate_memory(cpu).map_or_else(
                || {
                    format!(
                        "{cpu} vCPU is not a Fargate size either: allowed {}",
                        fargate_cpus()
                    )
                },
                |m| {
                    format!(
                        "with {cpu} vCPU, Fargate allows {}..={} MiB",
                        m[0],
                        m[m.len() - 1]
                    )
                },
            );
            c.error(
                format!("{rp}/cpu"),
                format!("cpu without memory: give resources.memory too ({allowed}); the default 0.25 vCPU / 512 MiB is for neither given"),
            );
        }
        (None, None, Some(mem)) => {
            let cpus: Vec<String> = FARGATE_CPUS
                .iter()
                .filter(|cpu| fargate_memory(**cpu).is_some_and(|m| m.contains(&mem)))
                .map(|cpu| cpu.to_string())
                .collect();
            let allowed = if cpus.is_empty() {
                format!("no Fargate size has {mem} MiB")
            } else {
                format!("for {mem} MiB, Fargate allows {} vCPU", cpus.join(", "))
            };
            c.error(
                format!("{rp}/memory"),
                format!("memory without cpu: give resources.cpu too ({allowed}); the default 0.25 vCPU / 512 MiB is for neither given"),
            );
        }
    }
    if let Some(gib) = res.ephemeral_storage {
        if res.instance_types.is_some() {
            c.error(
                format!("{rp}/ephemeralStorage"),
                "ephemeralStorage is Fargate's task storage: on EC2 (instanceTypes) a task uses the instance's disk",
            );
        } else {
            c.range(format!("{rp}/ephemeralStorage"), Some(gib), 21, 200);
        }
    }
    let hc = format!("{props}/internalHealthCheck");
    if let Some(h) = &ctr.internal_health_check {
        c.range(format!("{hc}/intervalSeconds"), h.interval_seconds, 5, 300);
        c.range(format!("{hc}/timeoutSeconds"), h.timeout_seconds, 2, 60);
        c.range(format!("{hc}/retries"), h.retries, 1, 10);
        c.range(
            format!("{hc}/startPeriodSeconds"),
            h.start_period_seconds,
            0,
            300,
        );
    }
    c.range(format!("{props}/stopTimeout"), ctr.stop_timeout, 2, 120);
    if let Some(days) = ctr.logging.retention_days {
        if !RETENTION_DAYS.contains(&days) {
            let list = RETENTION_DAYS
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            c.error(
                format!("{props}/logging/retentionDays"),
                format!("{days} is not a CloudWatch Logs retention: allowed {list}"),
            );
        }
    }
    let mut names = BTreeSet::new();
    for (i, e) in ctr.environment.iter().enumerate() {
        let ep = format!("{props}/environment/{i}");
        if !names.insert(e.name.clone()) {
            c.error(format!("{ep}/name"), format!("'{}' is set twice", e.name));
        }
        let Some(text) = e.value.as_str() else {
            continue;
        };
        match directive(text) {
            Ok(None) => {}
            Ok(Some(Directive::Secret { .. })) => {}
            Ok(Some(Directive::ResourceParam { resource, param })) => {
                match kind_of(kinds, &resource) {
                    None => c.error(
                        format!("{ep}/value"),
                        format!("$ResourceParam: no resource named '{resource}'"),
                    ),
                    Some(kind) => {
                        let allowed = params_of(kind);
                        if !allowed.contains(&param.as_str()) {
                            let list = if allowed.is_empty() {
                                "none".to_owned()
                            } else {
                                allowed.join(", ")
                            };
                            c.error(format!("{ep}/value"), format!("$ResourceParam: '{resource}' ({kind}) has no parameter '{param}': allowed {list}"));
                        }
                    }
                }
            }
            Err(msg) => c.error(format!("{ep}/value"), msg),
        }
    }
    for (i, t) in ctr.connect_to.iter().enumerate() {
        let cp = format!("{props}/connectTo/{i}");
        match kind_of(kinds, t) {
            None => c.error(cp, format!("no resource named '{t}'")),
            Some(_) if t == name => c.error(cp, "a resource cannot connect to itself"),
            Some("sqs-queue") => {
                let Some(Resource::SqsQueue(q)) = stack.resources.get(t) else {
                    continue;
                };
                let vis = q.visibility_timeout_seconds.unwrap_or(DEFAULT_VISIBILITY);
                let stop = ctr.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT);
                if vis < stop {
                    c.warn(
                        format!("/resources/{t}/properties/visibilityTimeoutSeconds"),
                        format!("visibility timeout {vis} s is shorter than {name}'s stopTimeout {stop} s: a message being finished during a stop can be delivered again meanwhile"),
                    );
                }
            }
            Some(other) => c.error(
                cp,
                format!("'{t}' is a {other}: only sqs-queue resources can be connected to"),
            ),
        }
    }
    if let (Some(h), stop) = (
        &ctr.internal_health_check,
        ctr.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
    ) {
        let timeout = h.timeout_seconds.unwrap_or(5);
        if stop < timeout {
            c.warn(
                format!("{props}/stopTimeout"),
                format!("stopTimeout {stop} s is shorter than the health check timeout {timeout} s: a stop can cut a running check and the worker's own shutdown short"),
            );
        }
    }
}
