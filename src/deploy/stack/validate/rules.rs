//! The rules between and inside resources that the schema cannot say.

use super::container::container;
use super::*;

/// Every resource of the file and its `type`, structurally valid or not.
pub(super) type Kinds = std::collections::BTreeMap<String, String>;

/// Whether `target` names a resource of the file; its kind.
pub(super) fn kind_of<'k>(kinds: &'k Kinds, target: &str) -> Option<&'k str> {
    kinds.get(target).map(String::as_str)
}

pub(super) fn rules(stack: &Stack, kinds: &Kinds, c: &mut Collector<'_>) {
    let name_ok = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.chars().next().is_some_and(|ch| ch.is_ascii_alphabetic())
            && s.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    };
    // The stack's name starts every name it makes, ECR repositories included, whose
    // names AWS takes only as lowercase words joined by single separators
    // (`[a-z0-9]+(?:[._-][a-z0-9]+)*`, ECR API reference, CreateRepository): no
    // `--`, no trailing `-`.
    if !name_ok(&stack.stack, 32) || stack.stack.contains("--") || stack.stack.ends_with('-') {
        let with_stage = match &stack.stage {
            Some(st) => format!(" (the stack's name with its stage '{st}')"),
            None => String::new(),
        };
        c.error(
            "/stack",
            format!(
                "'{}'{with_stage} must be 1..32 letters, digits or single '-' between them, starting with a letter",
                stack.stack
            ),
        );
    }
    tags(&stack.tags, c);
    if let Some(r) = &stack.registry {
        if let Err(e) = check_registry(r) {
            c.error("/registry", e);
        }
    }
    // No `network`: the tasks run in the region's default VPC (found by apply).
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
                for (i, p) in s.ports.iter().enumerate() {
                    if s.ports[..i].contains(p) {
                        c.error(
                            format!("{props}/ports/{i}"),
                            format!("port {}/{} is given twice", p.container_port, p.protocol),
                        );
                    }
                }
                // Its DNS name is its lowercased name (naming::discovery_service): two
                // that differ in case alone would be one name.
                if !s.ports.is_empty() {
                    let lower = name.to_ascii_lowercase();
                    if let Some((other, _)) = stack
                        .private_services()
                        .into_iter()
                        .find(|(o, _)| *o < name.as_str() && o.to_ascii_lowercase() == lower)
                    {
                        c.error(
                            format!("{props}/ports"),
                            format!("'{name}' and '{other}' would have the same private DNS name {lower}: rename one"),
                        );
                    }
                }
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
            Resource::Bucket(bk) => bucket(bk, &props, c),
            Resource::ScheduledJob(j) => {
                container(stack, kinds, name, &j.container, &props, c);
                job(stack, kinds, j, &props, c);
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

/// A scheduled job's own keys: its schedules, retries, window, dates, dead-letter
/// queue, capacity and alerts.
fn job(
    stack: &Stack,
    kinds: &Kinds,
    j: &crate::deploy::stack::Job,
    props: &str,
    c: &mut Collector<'_>,
) {
    use super::schedule::{duration_secs, iso_secs};
    let exprs = j.schedule.all();
    if exprs.is_empty() {
        c.error(
            format!("{props}/schedule"),
            "an empty list: give at least one expression",
        );
    }
    for (i, e) in exprs.iter().enumerate() {
        let at = format!("{props}{}", j.schedule.pointer(i));
        if let Err(why) = schedule::check(e) {
            // Copilot's `@daily`, `@every 1h` or a five-field cron: its equivalent.
            let hint = match super::super::copilot::schedule(e) {
                Some(Ok(x)) => format!(" (Copilot's form: write {x})"),
                Some(Err(why)) => format!(" (Copilot's form: {why})"),
                None => String::new(),
            };
            c.error(at, format!("{why}{hint}"));
        } else if exprs[..i].iter().any(|x| x.trim() == e.trim()) {
            c.error(at, format!("'{e}' is listed twice"));
        }
    }
    // The Scheduler schedules of a job: 1 + those past the first (each a hash of its
    // expression); a long list of them is a mistake more likely than a need.
    if exprs.len() > 20 {
        c.error(
            format!("{props}/schedule"),
            format!("{} expressions: at most 20", exprs.len()),
        );
    }
    c.range(format!("{props}/retryOnFailure"), j.retry_on_failure, 0, 10);
    c.range(
        format!("{props}/flexibleTimeWindowMinutes"),
        j.flexible_time_window_minutes,
        1,
        1440,
    );
    let date = |key: &str, v: &Option<String>, c: &mut Collector<'_>| -> Option<i64> {
        let v = v.as_deref()?;
        let secs = iso_secs(v);
        if secs.is_none() {
            c.error(
                format!("{props}/{key}"),
                format!("'{v}' is not an ISO 8601 date: 2027-01-01 or 2027-01-01T06:00:00Z"),
            );
        }
        secs
    };
    let start = date("startDate", &j.start_date, c);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if let (Some(s), Some(v)) = (start, &j.start_date) {
        if s <= now + 60 {
            c.warn(
                format!("{props}/startDate"),
                format!("'{v}' has passed: the Scheduler refuses a start date more than 5 minutes ago, so it is not sent (the schedule runs from now)"),
            );
        }
    }
    let end = date("endDate", &j.end_date, c);
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            c.error(
                format!("{props}/endDate"),
                "endDate must be after startDate",
            );
        }
    }
    if let Some(q) = &j.dead_letter_queue {
        match kind_of(kinds, q) {
            Some("sqs-queue") if stack.is_fifo(q) => c.error(
                format!("{props}/deadLetterQueue"),
                format!("'{q}' is a FIFO queue: the Scheduler's dead-letter queue must be a standard queue"),
            ),
            Some("sqs-queue") => {}
            Some(other) => c.error(
                format!("{props}/deadLetterQueue"),
                format!("'{q}' is a {other}, not an sqs-queue"),
            ),
            None => c.error(
                format!("{props}/deadLetterQueue"),
                format!("'{q}' is not a resource of this file (an sqs-queue of the stack is expected)"),
            ),
        }
    }
    if j.spot && j.container.resources.instance_types.is_some() {
        c.error(
            format!("{props}/spot"),
            "spot (FARGATE_SPOT) cannot go with resources.instanceTypes (EC2)",
        );
    }
    let Some(a) = &j.alerts else { return };
    let ap = format!("{props}/alerts");
    if !a.on_failure && a.not_succeeded_within.is_none() {
        c.error(
            ap.clone(),
            "alerts on nothing: set onFailure: true and/or notSucceededWithin",
        );
    }
    if a.email.is_empty() && a.sns_topic_arn.is_none() {
        c.error(
            ap.clone(),
            "alerts to nobody: give email and/or snsTopicArn",
        );
    }
    for (i, e) in a.email.iter().enumerate() {
        let ok = e.split_once('@').is_some_and(|(u, d)| {
            !u.is_empty() && d.contains('.') && !e.contains(char::is_whitespace)
        });
        if !ok {
            c.error(
                format!("{ap}/email/{i}"),
                format!("'{e}' is not an email address"),
            );
        }
    }
    if let Some(arn) = &a.sns_topic_arn {
        let parts: Vec<&str> = arn.split(':').collect();
        if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" || parts[5].is_empty() {
            c.error(
                format!("{ap}/snsTopicArn"),
                format!("'{arn}' is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
            );
        }
    }
    if let Some(w) = &a.not_succeeded_within {
        let at = format!("{ap}/notSucceededWithin");
        match duration_secs(w) {
            None => c.error(
                at,
                format!("'{w}' is not a duration: minutes, hours or days, as 90m, 26h, 2d"),
            ),
            // CloudWatch evaluates at most 7 days of periods, at most a day of periods
            // shorter than an hour (CloudWatch API reference, PutMetricAlarm: Period).
            Some(secs) if secs > 7 * 86_400 => c.error(
                at,
                format!("'{w}' is over 7 days, the longest time a CloudWatch alarm looks back"),
            ),
            Some(secs) => {
                // The longest time between two runs of the job (of its schedule
                // with the shortest such gap, where there are several).
                let gap = exprs
                    .iter()
                    .filter_map(|e| schedule::longest_gap(e, now))
                    .min();
                if let Some(gap) = gap.filter(|g| secs < *g) {
                    c.error(
                        at,
                        format!(
                            "'{w}' is shorter than the time between two runs of the schedule ({}): the alarm would fire between runs that all succeed",
                            human_secs(gap)
                        ),
                    );
                }
            }
        }
    }
}

/// `3d`, `26h`, `90m` for a number of seconds (the largest unit that divides it).
fn human_secs(s: u64) -> String {
    if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else {
        format!("{}m", s.div_ceil(60))
    }
}

/// How many tags of the file's a resource can take: AWS allows 50 a resource (Tag
/// Editor user guide, "Tag naming limits and requirements"), and bosun-deploy adds
/// its own `bosun:stack` and, on Auto Scaling groups, `Name`.
pub const MAX_TAGS: usize = 48;

/// The stack's `tags`: as many as a resource can take beside bosun-deploy's own, keys
/// of 1..=128 and values of at most 256 characters of the set AWS allows (letters,
/// digits, spaces and `_ . : / = + - @`), no key AWS or bosun-deploy reserves.
fn tags(tags: &std::collections::BTreeMap<String, String>, c: &mut Collector<'_>) {
    if tags.len() > MAX_TAGS {
        c.error(
            "/tags",
            format!(
                "{} tags: at most {MAX_TAGS} (AWS allows 50 a resource, and bosun-deploy adds bosun:stack and, on Auto Scaling groups, Name)",
                tags.len()
            ),
        );
    }
    let allowed = |s: &str| {
        s.chars()
            .all(|ch| ch.is_alphanumeric() || ch.is_whitespace() || "_.:/=+-@".contains(ch))
    };
    for (k, v) in tags {
        let at = format!("/tags/{k}");
        if k.is_empty() || k.chars().count() > 128 {
            c.error(
                at.clone(),
                format!("tag key '{k}' must be 1..=128 characters"),
            );
        } else if k.to_ascii_lowercase().starts_with("aws:") {
            c.error(
                at.clone(),
                format!("tag key '{k}': the prefix aws: is AWS's own"),
            );
        } else if k.starts_with("bosun:") {
            c.error(
                at.clone(),
                format!("tag key '{k}': the prefix bosun: is bosun-deploy's own"),
            );
        } else if !allowed(k) {
            c.error(
                at.clone(),
                format!("tag key '{k}': only letters, digits, spaces and _ . : / = + - @"),
            );
        }
        if v.chars().count() > 256 {
            c.error(
                at,
                format!(
                    "tag value of '{k}' is {} characters: at most 256",
                    v.chars().count()
                ),
            );
        } else if !allowed(v) {
            c.error(
                at,
                format!("tag value of '{k}': only letters, digits, spaces and _ . : / = + - @"),
            );
        }
    }
}

pub(super) fn connected_queue(kinds: &Kinds, ctr: &Container) -> bool {
    !connected_queues(kinds, ctr).is_empty()
}

/// The sqs-queues a container connects to, in file order.
pub(super) fn connected_queues<'a>(kinds: &Kinds, ctr: &'a Container) -> Vec<&'a str> {
    ctr.connect_to
        .iter()
        .filter(|t| kind_of(kinds, t) == Some("sqs-queue"))
        .map(String::as_str)
        .collect()
}

/// A bucket's lifecycle rules: each type with its own number of days.
fn bucket(b: &crate::deploy::stack::Bucket, props: &str, c: &mut Collector<'_>) {
    for (i, r) in b.lifecycle_rules.iter().enumerate() {
        let at = format!("{props}/lifecycleRules/{i}");
        let p = &r.properties;
        let given = [
            ("daysAfterUpload", p.days_after_upload),
            ("daysAfterVersioned", p.days_after_versioned),
            ("daysAfterInitiation", p.days_after_initiation),
        ];
        let wants = match r.kind.as_str() {
            "expiration" => "daysAfterUpload",
            "non-current-version-expiration" => "daysAfterVersioned",
            _ => "daysAfterInitiation",
        };
        for (key, v) in given {
            if key == wants && v.is_none() {
                c.error(
                    format!("{at}/properties"),
                    format!("type {} needs properties.{key}", r.kind),
                );
            } else if key != wants && v.is_some() {
                c.error(
                    format!("{at}/properties/{key}"),
                    format!("{key} is not for type {} (it takes {wants})", r.kind),
                );
            }
        }
        if r.kind == "non-current-version-expiration" && !b.versioning {
            c.error(
                format!("{at}/type"),
                "a bucket without versioning keeps no earlier versions to expire: set versioning: true",
            );
        }
    }
}

/// The `$ResourceParam` parameters of a resource kind.
pub(super) fn params_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "sqs-queue" => &["url", "arn", "name"],
        "bucket" => &["name", "arn"],
        "worker-service" => &["serviceName"],
        _ => &[],
    }
}
