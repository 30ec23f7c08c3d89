//! What AWS allows and what the stack file defaults to, stated once: validation
//! checks against these, and the components render with the same defaults.

/// Fargate's task CPU sizes (vCPU), the keys of [`fargate_memory`].
pub const FARGATE_CPUS: [f64; 7] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];

/// [`FARGATE_CPUS`] as a message lists them: `0.25, 0.5, 1, ...`.
pub fn fargate_cpus() -> String {
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

/// ECS's default stop timeout (Fargate) when the stack gives none.
pub const DEFAULT_STOP_TIMEOUT: i64 = 30;

/// A container's stopTimeout on Fargate: at most 120 s; on EC2 the API states no
/// maximum (the agent's ECS_CONTAINER_STOP_TIMEOUT is the default), and bosun-deploy
/// allows an hour, bosun's own limit (ECS API reference, ContainerDefinition:
/// stopTimeout).
pub const MAX_STOP_TIMEOUT_FARGATE: i64 = 120;
pub const MAX_STOP_TIMEOUT_EC2: i64 = 3600;
/// SQS's default visibility timeout (seconds).
pub const DEFAULT_VISIBILITY: i64 = 30;
/// SQS's default message retention (seconds: 4 days).
pub const DEFAULT_RETENTION: i64 = 345_600;
/// SQS's default delivery delay (seconds).
pub const DEFAULT_DELAY: i64 = 0;
/// The retention of a dead-letter queue the stack makes: SQS's longest, 14 days, so
/// a message that failed is kept as long as AWS allows.
pub const DEFAULT_DLQ_RETENTION: i64 = 1_209_600;
/// A log group's retention when the file gives none (days).
pub const DEFAULT_LOG_RETENTION: i64 = 30;

/// The health check's defaults, as ECS's and Docker's (seconds, and failures).
pub const DEFAULT_HEALTH_INTERVAL: i64 = 30;
pub const DEFAULT_HEALTH_TIMEOUT: i64 = 5;
pub const DEFAULT_HEALTH_RETRIES: i64 = 3;
pub const DEFAULT_HEALTH_START_PERIOD: i64 = 0;
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
