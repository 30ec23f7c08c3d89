//! Every name, tag and ARN the deployer makes, in one place at the bottom of the
//! deployer's layers (it imports nothing of theirs), so a create retried after a crash
//! finds what the first one made, and a listing by prefix or tag finds the stack's own.
//!
//! Names: queue `{stack}-{name}` (dead-letter `{stack}-{name}-dlq`, `.fifo` for FIFO
//! queues), log group `/bosun/{stack}/{name}`, roles under the IAM path
//! `/bosun/{stack}/`, task family, service, schedule, dashboard, capacity provider,
//! Auto Scaling group and launch template `{stack}-{name}`, schedule group
//! `bosun-{stack}`, ECR repository `{stack}-{name}` in lowercase. Everything is tagged
//! [`STACK_TAG`]` = {stack}`.

/// AWS's longest names, each stated once (where a derived name can reach it: a
/// 32-character stack and a 40-character resource key make names of up to 82).
/// IAM: role names 64 characters (IAM User Guide, IAM and AWS STS quotas).
pub const MAX_ROLE: usize = 64;
/// EventBridge Scheduler: schedule names 64 (Scheduler API reference, CreateSchedule).
pub const MAX_SCHEDULE: usize = 64;
/// SQS: queue names 80, `.fifo` included (SQS API reference, CreateQueue).
pub const MAX_QUEUE: usize = 80;

/// `raw` (a folder's, an application's or an environment's name) as lowercase letters,
/// digits and single `-`, starting with a letter, at most `max` characters: the form
/// of a stack's and a stage's name. Empty when nothing of it is left.
pub fn kebab(raw: &str, max: usize) -> String {
    let mut s = String::new();
    for ch in raw.chars() {
        let c = ch.to_ascii_lowercase();
        if c.is_ascii_lowercase() || (c.is_ascii_digit() && !s.is_empty()) {
            s.push(c);
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
    }
    s.truncate(max);
    s.trim_end_matches('-').to_owned()
}

/// A stack's name made from `raw` (at most 32 characters), `app` when nothing is left.
pub fn stack_name_from(raw: &str) -> String {
    match kebab(raw, 32) {
        s if s.is_empty() => "app".into(),
        s => s,
    }
}

/// `name` as it is when it fits in `max` characters, else shortened stably: its first
/// characters and a hash of all of it (`…-1a2b3c4d`), so a long stack and resource
/// key still make a name AWS takes, the same at every run.
pub fn fit(name: String, max: usize) -> String {
    if name.chars().count() <= max {
        return name;
    }
    let hash = &short_hash(&name)[..8];
    let keep: String = name.chars().take(max - hash.len() - 1).collect();
    format!("{}-{hash}", keep.trim_end_matches('-'))
}

/// The tag that marks what a stack created.
pub const STACK_TAG: &str = "bosun:stack";
/// The stage a stack was deployed for (its `STACK_TAG` already ends with it; this
/// says which part is the stage).
pub const STAGE_TAG: &str = "bosun:stage";

/// The tag naming the resource of the file a task `run` started runs.
pub const RESOURCE_TAG: &str = "bosun:resource";

/// RunTask's `startedBy` for the tasks `run` starts (up to 128 letters, digits, `-`,
/// `_` and `/`: ECS API reference, RunTask).
pub const RUN_STARTED_BY: &str = "bosun-deploy-run";

/// Where bosun lives in the image (`bosun-deploy inject` and the buildpack put it there).
pub const BOSUN_PATH: &str = "/usr/local/bin/bosun";

/// What `render` (which builds nothing) writes where a built image's digest goes.
pub const UNBUILT: &str = "sha256:BUILT_BY_APPLY";

/// The name of a resource's task family, service, schedule, dashboard, and of its EC2
/// capacity (capacity provider, Auto Scaling group, launch template).
pub fn family(stack: &str, name: &str) -> String {
    format!("{stack}-{name}")
}

/// An sqs-queue's name.
pub fn queue(stack: &str, name: &str, fifo: bool) -> String {
    let suffix = fifo_suffix(fifo);
    format!(
        "{}{suffix}",
        fit(format!("{stack}-{name}"), MAX_QUEUE - suffix.len())
    )
}

/// The dead-letter queue the stack makes for an sqs-queue without a target.
pub fn dead_letter_queue(stack: &str, name: &str, fifo: bool) -> String {
    let suffix = fifo_suffix(fifo);
    format!(
        "{}{suffix}",
        fit(format!("{stack}-{name}-dlq"), MAX_QUEUE - suffix.len())
    )
}

fn fifo_suffix(fifo: bool) -> &'static str {
    if fifo {
        ".fifo"
    } else {
        ""
    }
}

/// A resource's CloudWatch Logs group.
pub fn log_group(stack: &str, name: &str) -> String {
    format!("/bosun/{stack}/{name}")
}

/// The IAM path of the stack's roles and instance profiles.
pub fn role_path(stack: &str) -> String {
    format!("/bosun/{stack}/")
}

/// The role ECS pulls images, reads secrets and writes logs with.
pub fn execution_role(stack: &str) -> String {
    fit(format!("{stack}-execution"), MAX_ROLE)
}

/// A resource's task role.
/// The role Firehose delivers forwarded logs with, and the one CloudWatch Logs puts
/// them into Firehose with (one each a stack).
pub fn log_delivery_role(stack: &str) -> String {
    fit(format!("{stack}-log-delivery"), MAX_ROLE)
}

pub fn log_subscription_role(stack: &str) -> String {
    fit(format!("{stack}-log-subscription"), MAX_ROLE)
}

/// A resource's Firehose stream for its forwarded logs (at most 64 characters,
/// Firehose API reference, CreateDeliveryStream: DeliveryStreamName).
pub fn log_stream(stack: &str, name: &str) -> String {
    format!("{}-logs", fit(format!("{stack}-{name}"), 59))
}

/// The bucket where Firehose keeps the forwarded logs it could not deliver (its
/// resource part has a `-`, which no resource name has).
pub const FAILED_LOGS: &str = "failed-logs";

pub fn task_role(stack: &str, name: &str) -> String {
    fit(format!("{stack}-{name}-task"), MAX_ROLE)
}

/// The role EventBridge Scheduler runs the stack's jobs with.
pub fn scheduler_role(stack: &str) -> String {
    fit(format!("{stack}-scheduler"), MAX_ROLE)
}

/// The role and instance profile of a resource's EC2 instances (a profile takes 128
/// characters, a role 64: the role's bound serves both).
pub fn instance_role(stack: &str, name: &str) -> String {
    fit(format!("{stack}-{name}-instance"), MAX_ROLE)
}

/// The SSM parameter that is the stack's lock while a verb changes it.
pub fn lock_parameter(stack: &str) -> String {
    format!("/bosun/{stack}/lock")
}

/// The role EventBridge Scheduler refreshes the stack's EC2 instances with.
pub fn refresh_role(stack: &str) -> String {
    fit(format!("{stack}-refresh"), MAX_ROLE)
}

/// The weekly instance refresh of a resource's EC2 capacity.
pub fn refresh_schedule(stack: &str, name: &str) -> String {
    fit(format!("{stack}-{name}-refresh"), MAX_SCHEDULE)
}

/// A scheduled job's schedule (its task family keeps the whole name: ECS takes 255).
pub fn job_schedule(stack: &str, name: &str) -> String {
    fit(family(stack, name), MAX_SCHEDULE)
}

/// The schedule of a job's expression `expr`, the `index`th of its list: the first
/// keeps the job's own schedule name, the others add a hash of their expression, so
/// a name stays the same when the list grows, shrinks or is reordered.
pub fn job_schedule_of(stack: &str, name: &str, index: usize, expr: &str) -> String {
    if index == 0 {
        return job_schedule(stack, name);
    }
    let hash = &short_hash(expr.trim())[..6];
    let base = fit(family(stack, name), MAX_SCHEDULE - hash.len() - 1);
    format!("{base}-{hash}")
}

/// The names' ends of a job's run filters and alarms: a failed run, and a
/// succeeded one (its alarm: no run succeeded within the time given).
pub const RUNS_FAILED: &str = "-runs-failed";
pub const RUNS_SUCCEEDED: &str = "-runs-succeeded";
pub const NOT_SUCCEEDED: &str = "-not-succeeded";
pub const RUNS_FILTER_SUFFIXES: &[&str] = &[RUNS_FAILED, RUNS_SUCCEEDED];

/// The CloudWatch namespace of the run counts the metric filters publish.
pub const RUNS_NAMESPACE: &str = "Bosun/Runs";

/// A job's alert topic (SNS topic names take 256 characters: SNS API reference,
/// CreateTopic).
pub fn alert_topic(stack: &str, name: &str) -> String {
    fit(format!("{stack}-{name}-alerts"), 256)
}

/// The stack's EventBridge Scheduler group.
pub fn schedule_group(stack: &str) -> String {
    format!("bosun-{stack}")
}

/// The end of a service's deployment alarm's name (see [`service_part`]).
pub const DEPLOYMENT_ALARM_SUFFIX: &str = "-dead-letters";

/// A service's scaling policy or alarm (`cpu`, `memory`, `backlog`, `wake`, `idle`,
/// `dead-letters`).
pub fn service_part(service: &str, part: &str) -> String {
    format!("{service}-{part}")
}

/// The ECR repository of a resource's built image when the stack names no
/// `registry:`: `{stack}-{name}` in lowercase, as ECR names them.
pub fn ecr_repository(stack: &str, name: &str) -> String {
    format!("{stack}-{name}").to_ascii_lowercase()
}

/// The host of the account's ECR registry in a region.
pub fn ecr_host(account: &str, region: &str) -> String {
    format!("{account}.dkr.ecr.{region}.amazonaws.com")
}

/// The repository of a resource's built image: `{registry}/{stack}-{name}` with the
/// stack's `registry:`, else `{ecr_host}/{stack}-{name}`, in lowercase as registries
/// name them.
pub fn image_repository(registry: Option<&str>, stack: &str, name: &str, ecr_host: &str) -> String {
    match registry {
        Some(registry) => format!("{registry}/{stack}-{name}").to_ascii_lowercase(),
        None => format!("{ecr_host}/{}", ecr_repository(stack, name)),
    }
}

/// `jobsQueue` → `JOBS_QUEUE` (the `STP_…` variables of `connectTo`).
pub fn env_name(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(if ch == '-' {
            '_'
        } else {
            ch.to_ascii_uppercase()
        });
    }
    out
}

/// A short, stable hash of `text` (FNV-1a, 16 hex digits): client tokens that make a
/// create retried after a crash the same create.
pub fn short_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// The account and region ARNs are written for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Where {
    pub region: String,
    pub account: String,
}

impl Where {
    /// `arn:aws:{service}:{region}:{account}:{rest}`.
    pub fn arn(&self, service: &str, rest: &str) -> String {
        format!("arn:aws:{service}:{}:{}:{rest}", self.region, self.account)
    }

    /// The ARN of one of the stack's roles (IAM ARNs have no region).
    pub fn role_arn(&self, stack: &str, role: &str) -> String {
        format!(
            "arn:aws:iam::{}:role{}{role}",
            self.account,
            role_path(stack)
        )
    }

    /// An SQS queue's ARN, by its name.
    pub fn queue_arn(&self, queue: &str) -> String {
        self.arn("sqs", queue)
    }

    /// An SQS queue's URL, by its name.
    pub fn queue_url(&self, queue: &str) -> String {
        format!(
            "https://sqs.{}.amazonaws.com/{}/{queue}",
            self.region, self.account
        )
    }

    /// An ECS cluster's ARN.
    pub fn cluster_arn(&self, cluster: &str) -> String {
        self.arn("ecs", &format!("cluster/{cluster}"))
    }
}

/// The stack's own security group for its tasks (default network only).
pub fn security_group(stack: &str) -> String {
    format!("{stack}-tasks")
}

/// A bucket's name: S3's names are global (every account, every region), so the
/// stack's and the resource's names are followed by a hash of the account, region,
/// stack and resource; lowercase, at most 63 characters (S3 User Guide, "General
/// purpose bucket naming rules": 3..63 lowercase letters, digits, `.` and `-`,
/// starting and ending with a letter or digit).
pub fn bucket(stack: &str, resource: &str, account: &str, region: &str) -> String {
    let base = format!("{stack}-{resource}").to_ascii_lowercase();
    let base: String = base.chars().take(54).collect();
    let hash = short_hash(&format!("{account}/{region}/{stack}/{resource}"));
    format!("{}-{}", base.trim_end_matches('-'), &hash[..8])
}

/// The stack's private DNS namespace (Cloud Map), where each service with ports is
/// `{resource}.{stack}.internal` (the stack's name carries its stage).
pub fn namespace(stack: &str) -> String {
    format!("{stack}.internal")
}

/// A service's private DNS name: its resource's name, lowercased (DNS names are
/// case-insensitive and Cloud Map keeps what it is given).
pub fn private_host(stack: &str, resource: &str) -> String {
    format!("{}.{}", discovery_service(resource), namespace(stack))
}

/// The Cloud Map service of a resource with ports.
pub fn discovery_service(resource: &str) -> String {
    resource.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns() {
        assert_eq!(env_name("jobsQueue"), "JOBS_QUEUE");
        assert_eq!(env_name("q"), "Q");
        assert_eq!(queue("s", "q", true), "s-q.fifo");
        assert_eq!(dead_letter_queue("s", "q", false), "s-q-dlq");
        let w = Where {
            region: "eu-west-1".into(),
            account: "123456789012".into(),
        };
        assert_eq!(
            w.role_arn("s", "s-execution"),
            "arn:aws:iam::123456789012:role/bosun/s/s-execution"
        );
        assert_eq!(
            w.queue_url("s-q"),
            "https://sqs.eu-west-1.amazonaws.com/123456789012/s-q"
        );
        assert_eq!(ecr_repository("Orders", "Worker"), "orders-worker");
        assert_eq!(short_hash("a"), short_hash("a"));
        // The longest names validation allows fit AWS's limits, stably.
        let (stack, key) = ("s".repeat(32), "k".repeat(40));
        for n in [
            task_role(&stack, &key),
            instance_role(&stack, &key),
            refresh_schedule(&stack, &key),
            job_schedule(&stack, &key),
        ] {
            assert_eq!(n.len(), 64, "{n}");
            assert!(n.starts_with(&stack), "{n}");
        }
        assert_eq!(task_role(&stack, &key), task_role(&stack, &key));
        assert_ne!(task_role(&stack, &key), instance_role(&stack, &key));
        assert_eq!(dead_letter_queue(&stack, &key, true).len(), 80);
        assert!(dead_letter_queue(&stack, &key, true).ends_with(".fifo"));
        // Short ones are untouched.
        assert_eq!(task_role("orders", "worker"), "orders-worker-task");
        assert_ne!(short_hash("a"), short_hash("b"));
    }
}
