//! Command line and environment: every option of `bosun` (DESIGN.md §1), parsed and
//! range-checked once, so the rest of the program works with typed values.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::supervise::signals::parse_signal;

/// `bosun [OPTIONS] -- CMD [ARGS...]`, or one of the subcommands.
#[derive(Debug, Parser)]
#[command(
    name = "bosun",
    version,
    about = "A small PID-1 supervisor for background workers",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start CMD and supervise it (the same as `bosun [OPTIONS] -- CMD`).
    Run(RunArgs),
    /// Exit 0 when bosun's /readyz says ready, 1 otherwise (a HEALTHCHECK without curl).
    Probe(ProbeArgs),
    /// Run the health checks and the endpoint with no worker.
    Sidecar(SidecarArgs),
    /// Set ECS task scale-in protection through the ECS agent.
    Protect(ProtectArgs),
}

/// `bosun [OPTIONS] -- CMD`: the same options as [`Cli`] without the subcommands, so
/// the common case (every container start) does not build the whole command tree.
#[derive(Debug, Parser)]
#[command(
    name = "bosun",
    version,
    about = "A small PID-1 supervisor for background workers"
)]
struct RunOnly {
    #[command(flatten)]
    run: RunArgs,
}

/// Parse bosun's command line (and `BOSUN_*` variables); exits 2 on a usage error.
pub fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let first = args.get(1).and_then(|a| a.to_str());
    let needs_tree = match first {
        None => true,
        Some(a) => [
            "run",
            "probe",
            "sidecar",
            "protect",
            "help",
            "-h",
            "--help",
            "-V",
            "--version",
        ]
        .contains(&a),
    };
    if needs_tree {
        Cli::parse_from(args)
    } else {
        Cli {
            command: None,
            run: RunOnly::parse_from(args).run,
        }
    }
}

/// Options of `bosun run` (and of plain `bosun -- CMD`).
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub supervise: SuperviseOptions,

    #[command(flatten)]
    pub health: HealthOptions,

    #[command(flatten)]
    pub service: ServiceOptions,

    /// The worker: CMD [ARGS...]
    #[arg(
        value_name = "CMD",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        num_args = 1..
    )]
    pub command: Vec<String>,
}

/// How the worker is stopped and restarted.
#[derive(Debug, Args, Clone)]
pub struct SuperviseOptions {
    /// Grace between the stop signal and SIGKILL of the whole process tree (0..=120 s)
    #[arg(long, env = "BOSUN_STOP_TIMEOUT", value_name = "SECS", default_value = "2",
          value_parser = parse_stop_timeout)]
    pub stop_timeout: Duration,

    /// Signal sent to the worker's process group when bosun is asked to stop
    #[arg(long, env = "BOSUN_STOP_SIGNAL", value_name = "SIG", default_value = "TERM",
          value_parser = parse_signal)]
    pub stop_signal: i32,

    /// Shell command run (bounded by the grace) before the stop signal
    #[arg(long, env = "BOSUN_PRE_STOP", value_name = "CMD")]
    pub pre_stop: Option<String>,

    /// When to restart the worker: never, on-failure, always
    #[arg(
        long,
        env = "BOSUN_RESTART",
        value_name = "POLICY",
        default_value = "never"
    )]
    pub restart: RestartPolicy,

    /// bosun's own log lines: text or json
    #[arg(
        long,
        env = "BOSUN_LOG_FORMAT",
        value_name = "FMT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// The health check (at most one kind) and its timing, as ECS/Docker define them.
#[derive(Debug, Args, Clone)]
pub struct HealthOptions {
    /// Shell command; exit 0 = healthy
    #[arg(long, env = "BOSUN_HEALTH_CMD", value_name = "CMD",
          conflicts_with_all = ["health_http", "health_tcp"])]
    pub health_cmd: Option<String>,

    /// HTTP GET; 2xx/3xx = healthy
    #[arg(long, env = "BOSUN_HEALTH_HTTP", value_name = "URL", conflicts_with = "health_tcp",
          value_parser = parse_http_url)]
    pub health_http: Option<String>,

    /// A TCP connect = healthy
    #[arg(long, env = "BOSUN_HEALTH_TCP", value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub health_tcp: Option<String>,

    /// Time between checks (1..=300 s)
    #[arg(long, env = "BOSUN_HEALTH_INTERVAL", value_name = "SECS", default_value = "30",
          value_parser = secs_in(0.001, 300.0))]
    pub health_interval: Duration,

    /// Time a check may take before it counts as failed (1..=120 s)
    #[arg(long, env = "BOSUN_HEALTH_TIMEOUT", value_name = "SECS", default_value = "5",
          value_parser = secs_in(0.001, 120.0))]
    pub health_timeout: Duration,

    /// Failures in this window after start don't count (0..=300 s)
    #[arg(long, env = "BOSUN_HEALTH_START_PERIOD", value_name = "SECS", default_value = "0",
          value_parser = secs_in(0.0, 300.0))]
    pub health_start_period: Duration,

    /// Consecutive failures before unhealthy (1..=10)
    #[arg(long, env = "BOSUN_HEALTH_RETRIES", value_name = "N", default_value = "3",
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub health_retries: u32,

    /// What to do when the worker turns unhealthy: exit, restart, ignore
    #[arg(
        long,
        env = "BOSUN_ON_UNHEALTHY",
        value_name = "ACTION",
        default_value = "exit"
    )]
    pub on_unhealthy: OnUnhealthy,
}

/// The endpoint and the metrics.
#[derive(Debug, Args, Clone)]
pub struct ServiceOptions {
    /// Health and metrics endpoint address, or `off`
    #[arg(long, env = "BOSUN_LISTEN", value_name = "ADDR", default_value = "127.0.0.1:9901",
          value_parser = parse_listen)]
    pub listen: Listen,

    /// Comma list of metric sinks: prometheus, emf, cloudwatch (or off)
    #[arg(
        long,
        env = "BOSUN_METRICS",
        value_name = "SINK",
        default_value = "off",
        value_delimiter = ','
    )]
    pub metrics: Vec<MetricsSink>,

    /// Sampling and publishing period (1..=3600 s)
    #[arg(long, env = "BOSUN_METRICS_INTERVAL", value_name = "SECS", default_value = "60",
          value_parser = secs_in(0.1, 3600.0))]
    pub metrics_interval: Duration,

    /// CloudWatch namespace
    #[arg(
        long,
        env = "BOSUN_METRICS_NAMESPACE",
        value_name = "NS",
        default_value = "Bosun"
    )]
    pub metrics_namespace: String,

    /// SQS queue whose depth is published
    #[arg(long, env = "BOSUN_QUEUE_URL", value_name = "URL")]
    pub queue_url: Option<String>,
}

/// `bosun probe`
#[derive(Debug, Args, Clone)]
pub struct ProbeArgs {
    /// The readiness URL (default: http://$BOSUN_LISTEN/readyz)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Give up after this long (seconds)
    #[arg(long, value_name = "SECS", default_value = "3", value_parser = secs_in(0.001, 120.0))]
    pub timeout: Duration,

    /// Where bosun listens, to build the default URL
    #[arg(long, env = "BOSUN_LISTEN", value_name = "ADDR", default_value = "127.0.0.1:9901",
          value_parser = parse_listen, hide = true)]
    pub listen: Listen,
}

/// `bosun sidecar`
#[derive(Debug, Args, Clone)]
pub struct SidecarArgs {
    #[command(flatten)]
    pub supervise: SuperviseOptions,

    #[command(flatten)]
    pub health: HealthOptions,

    #[command(flatten)]
    pub service: ServiceOptions,
}

/// `bosun protect on|off`
#[derive(Debug, Args, Clone)]
pub struct ProtectArgs {
    /// on or off
    pub state: ProtectState,

    /// How long the protection lasts (1..=2880 minutes)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=2880))]
    pub minutes: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtectState {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RestartPolicy {
    Never,
    OnFailure,
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnUnhealthy {
    Exit,
    Restart,
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricsSink {
    Off,
    Prometheus,
    Emf,
    Cloudwatch,
}

/// Where the endpoint listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    Off,
    On(SocketAddr),
}

impl Listen {
    /// The `/readyz` URL of an endpoint listening here (a wildcard address is reached
    /// through loopback).
    pub fn readyz_url(self) -> Option<String> {
        let Listen::On(mut addr) = self else {
            return None;
        };
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        Some(format!("http://{addr}/readyz"))
    }
}

fn parse_listen(s: &str) -> Result<Listen, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(Listen::Off);
    }
    s.parse::<SocketAddr>().map(Listen::On).map_err(|_| {
        format!("'{s}' is not an IP:PORT address (for example 127.0.0.1:9901) or 'off'")
    })
}

fn parse_http_url(s: &str) -> Result<String, String> {
    match s.strip_prefix("http://") {
        Some(rest) if !rest.is_empty() => Ok(s.to_owned()),
        _ => Err(format!("'{s}' is not an http:// URL")),
    }
}

fn parse_host_port(s: &str) -> Result<String, String> {
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(s.to_owned()),
        _ => Err(format!("'{s}' is not HOST:PORT")),
    }
}

fn parse_stop_timeout(s: &str) -> Result<Duration, String> {
    parse_secs(s, 0.0, 120.0)
}

/// A value parser for seconds (fractions allowed) within `min..=max`.
fn secs_in(min: f64, max: f64) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |s| parse_secs(s, min, max)
}

/// Seconds, fractions allowed, checked against the allowed range.
pub fn parse_secs(s: &str, min: f64, max: f64) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !secs.is_finite() || secs < min || secs > max {
        return Err(format!(
            "{s} is out of range: allowed {min}..={max} seconds"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl ServiceOptions {
    /// The sinks that are on (`off` and duplicates removed).
    pub fn sinks(&self) -> Vec<MetricsSink> {
        let mut sinks: Vec<MetricsSink> = Vec::new();
        for s in &self.metrics {
            if *s != MetricsSink::Off && !sinks.contains(s) {
                sinks.push(*s);
            }
        }
        sinks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_accept_fractions_and_reject_out_of_range() {
        assert_eq!(
            parse_secs("0.25", 0.0, 120.0),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(parse_secs("120", 0.0, 120.0), Ok(Duration::from_secs(120)));
        let err = parse_secs("121", 0.0, 120.0).unwrap_err();
        assert!(err.contains("0..=120"), "{err}");
        assert!(parse_secs("-1", 0.0, 120.0).is_err());
        assert!(parse_secs("NaN", 0.0, 120.0).is_err());
        assert!(parse_secs("ten", 0.0, 120.0).unwrap_err().contains("'ten'"));
    }

    #[test]
    fn listen_parses_off_and_addresses() {
        assert_eq!(parse_listen("off"), Ok(Listen::Off));
        assert_eq!(
            parse_listen("127.0.0.1:9901"),
            Ok(Listen::On("127.0.0.1:9901".parse().unwrap()))
        );
        assert!(parse_listen("localhost").is_err());
    }

    #[test]
    fn plain_and_run_forms_are_the_same() {
        let a =
            Cli::try_parse_from(["bosun", "--stop-timeout", "1.5", "--", "sleep", "1"]).unwrap();
        assert!(a.command.is_none());
        assert_eq!(a.run.command, ["sleep", "1"]);
        assert_eq!(a.run.supervise.stop_timeout, Duration::from_millis(1500));
        let b = Cli::try_parse_from(["bosun", "run", "--stop-timeout", "1.5", "--", "sleep", "1"])
            .unwrap();
        match b.command {
            Some(Command::Run(r)) => assert_eq!(r.command, ["sleep", "1"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn worker_flags_are_not_taken_as_bosun_flags() {
        let a = Cli::try_parse_from(["bosun", "--", "ls", "--stop-timeout", "-l"]).unwrap();
        assert_eq!(a.run.command, ["ls", "--stop-timeout", "-l"]);
    }

    #[test]
    fn metrics_list_is_deduplicated() {
        let a = Cli::try_parse_from(["bosun", "--metrics", "emf,prometheus,emf", "--", "true"])
            .unwrap();
        assert_eq!(
            a.run.service.sinks(),
            [MetricsSink::Emf, MetricsSink::Prometheus]
        );
    }
}
