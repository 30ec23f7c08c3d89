//! Command line and environment: every option of `bosun` (DESIGN.md §1), parsed and
//! range-checked once, so the rest of the program works with typed values.
//!
//! The options are one table ([`RUN_OPTIONS`]): flag, variable, default and help, from
//! which the help text, the environment fallback and the error messages all come. A
//! flag wins over its variable, the variable over the default; an empty variable counts
//! as unset. Arguments are split by `lexopt` (`--flag value`, `--flag=value`, `--`):
//! bosun does not link clap, which would be a tenth of its FROM-scratch binary.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use crate::supervise::signals::parse_signal;

/// What bosun was asked to do.
#[derive(Debug)]
pub enum Command {
    /// Start CMD and supervise it: `bosun [OPTIONS] -- CMD`, or `bosun run ...`.
    Run(RunArgs),
    /// Exit 0 when bosun's /readyz says ready, 1 otherwise (a HEALTHCHECK without curl).
    Probe(ProbeArgs),
    /// Run the health checks and the endpoint with no worker.
    Sidecar(SidecarArgs),
    /// Set ECS task scale-in protection through the ECS agent.
    Protect(ProtectArgs),
}

/// Options of `bosun run` (and of plain `bosun -- CMD`).
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub supervise: SuperviseOptions,
    pub health: HealthOptions,
    pub service: ServiceOptions,
    /// The worker: CMD [ARGS...]
    pub command: Vec<String>,
}

/// How the worker is stopped and restarted.
#[derive(Debug, Clone)]
pub struct SuperviseOptions {
    pub stop_timeout: Duration,
    pub stop_signal: i32,
    pub pre_stop: Option<String>,
    pub restart: RestartPolicy,
    /// At most this many restarts by the restart policy (`--max-restarts`), then
    /// bosun exits with the worker's last status. `None`: unlimited.
    pub max_restarts: Option<u32>,
    /// Stop the worker after this long and exit 124 (`--max-runtime`), all attempts
    /// together.
    pub max_runtime: Option<Duration>,
    /// Start the worker only when no earlier run of the same ECS task family is
    /// still running in the cluster (`--singleton`).
    pub singleton: bool,
    pub log_format: LogFormat,
}

/// The health check (at most one kind) and its timing, as ECS/Docker define them.
#[derive(Debug, Clone)]
pub struct HealthOptions {
    pub health_cmd: Option<String>,
    pub health_http: Option<String>,
    pub health_tcp: Option<String>,
    pub health_interval: Duration,
    pub health_timeout: Duration,
    pub health_start_period: Duration,
    pub health_retries: u32,
    pub on_unhealthy: OnUnhealthy,
}

/// The endpoint and the metrics.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    pub listen: Listen,
    /// The sinks as given (see [`ServiceOptions::sinks`]).
    pub metrics: Vec<MetricsSink>,
    pub metrics_interval: Duration,
    pub metrics_namespace: String,
    pub queue_url: Option<String>,
}

/// `bosun probe`
#[derive(Debug, Clone)]
pub struct ProbeArgs {
    /// The readiness URL (default: http://$BOSUN_LISTEN/readyz)
    pub url: Option<String>,
    /// Give up after this long.
    pub timeout: Duration,
    /// Where bosun listens, to build the default URL.
    pub listen: Listen,
}

/// `bosun sidecar`
#[derive(Debug, Clone)]
pub struct SidecarArgs {
    pub supervise: SuperviseOptions,
    pub health: HealthOptions,
    pub service: ServiceOptions,
}

/// `bosun protect on|off`
#[derive(Debug, Clone)]
pub struct ProtectArgs {
    pub state: ProtectState,
    /// How long the protection lasts (1..=2880 minutes), renewed by bosun.
    pub minutes: u32,
    /// Where bosun listens, to ask it (and so have the protection renewed).
    pub listen: Listen,
}

/// An option that takes a value: its flag, variable, value name, default and help.
struct Opt {
    long: &'static str,
    env: Option<&'static str>,
    value: &'static str,
    default: Option<&'static str>,
    help: &'static str,
}

const fn opt(
    long: &'static str,
    env: Option<&'static str>,
    value: &'static str,
    default: Option<&'static str>,
    help: &'static str,
) -> Opt {
    Opt {
        long,
        env,
        value,
        default,
        help,
    }
}

/// Every option of `bosun run` and `bosun sidecar` (DESIGN.md §1).
const RUN_OPTIONS: &[Opt] = &[
    opt(
        "stop-timeout",
        Some("BOSUN_STOP_TIMEOUT"),
        "SECS",
        Some("2"),
        "Grace between the stop signal and SIGKILL of the whole process tree (0..=3600 s)",
    ),
    opt(
        "stop-signal",
        Some("BOSUN_STOP_SIGNAL"),
        "SIG",
        Some("TERM"),
        "Signal sent to the worker's process group when bosun is asked to stop",
    ),
    opt(
        "pre-stop",
        Some("BOSUN_PRE_STOP"),
        "CMD",
        None,
        "Shell command run (bounded by the grace) before the stop signal",
    ),
    opt(
        "restart",
        Some("BOSUN_RESTART"),
        "POLICY",
        Some("never"),
        "When to restart the worker: never, on-failure, always",
    ),
    opt(
        "max-runtime",
        Some("BOSUN_MAX_RUNTIME"),
        "SECS",
        None,
        "Stop the worker with the stop sequence after this long and exit 124: a time limit for jobs (all attempts together)",
    ),
    opt(
        "max-restarts",
        Some("BOSUN_MAX_RESTARTS"),
        "N",
        None,
        "With --restart on-failure or always: at most N restarts (0..=1000), then exit with the worker's last status [default: unlimited]",
    ),
    opt(
        "singleton",
        Some("BOSUN_SINGLETON"),
        "BOOL",
        Some("false"),
        "true: exit 0 at once, without starting the worker, when an earlier task of the same ECS task family is still running in the cluster (needs bosun-aws)",
    ),
    opt(
        "log-format",
        Some("BOSUN_LOG_FORMAT"),
        "FMT",
        Some("text"),
        "bosun's own log lines: text or json",
    ),
    opt(
        "health-cmd",
        Some("BOSUN_HEALTH_CMD"),
        "CMD",
        None,
        "Shell command; exit 0 = healthy",
    ),
    opt(
        "health-http",
        Some("BOSUN_HEALTH_HTTP"),
        "URL",
        None,
        "HTTP GET; 2xx/3xx = healthy",
    ),
    opt(
        "health-tcp",
        Some("BOSUN_HEALTH_TCP"),
        "HOST:PORT",
        None,
        "A TCP connect = healthy",
    ),
    opt(
        "health-interval",
        Some("BOSUN_HEALTH_INTERVAL"),
        "SECS",
        Some("30"),
        "Time between checks (1..=300 s)",
    ),
    opt(
        "health-timeout",
        Some("BOSUN_HEALTH_TIMEOUT"),
        "SECS",
        Some("5"),
        "Time a check may take before it counts as failed (1..=120 s)",
    ),
    opt(
        "health-start-period",
        Some("BOSUN_HEALTH_START_PERIOD"),
        "SECS",
        Some("0"),
        "Failures in this window after start don't count (0..=300 s)",
    ),
    opt(
        "health-retries",
        Some("BOSUN_HEALTH_RETRIES"),
        "N",
        Some("3"),
        "Consecutive failures before unhealthy (1..=10)",
    ),
    opt(
        "on-unhealthy",
        Some("BOSUN_ON_UNHEALTHY"),
        "ACTION",
        Some("exit"),
        "What to do when the worker turns unhealthy: exit, restart, ignore",
    ),
    opt(
        "listen",
        Some("BOSUN_LISTEN"),
        "ADDR",
        Some("127.0.0.1:9901"),
        "Health and metrics endpoint address, or `off`",
    ),
    opt(
        "metrics",
        Some("BOSUN_METRICS"),
        "SINK",
        Some("off"),
        "Comma list of metric sinks: prometheus, emf, cloudwatch (or off)",
    ),
    opt(
        "metrics-interval",
        Some("BOSUN_METRICS_INTERVAL"),
        "SECS",
        Some("60"),
        "Sampling and publishing period (1..=3600 s)",
    ),
    opt(
        "metrics-namespace",
        Some("BOSUN_METRICS_NAMESPACE"),
        "NS",
        Some("Bosun"),
        "CloudWatch namespace",
    ),
    opt(
        "queue-url",
        Some("BOSUN_QUEUE_URL"),
        "URL",
        None,
        "SQS queue whose depth is published",
    ),
];

const PROBE_OPTIONS: &[Opt] = &[
    opt(
        "url",
        None,
        "URL",
        None,
        "The readiness URL (default: http://$BOSUN_LISTEN/readyz)",
    ),
    opt(
        "timeout",
        None,
        "SECS",
        Some("3"),
        "Give up after this long (seconds)",
    ),
    opt(
        "listen",
        Some("BOSUN_LISTEN"),
        "ADDR",
        Some("127.0.0.1:9901"),
        "Where bosun listens, to build the default URL",
    ),
];

const PROTECT_OPTIONS: &[Opt] = &[
    opt(
        "minutes",
        None,
        "N",
        Some("60"),
        "How long the protection lasts (1..=2880 minutes); bosun renews it until `off`",
    ),
    opt(
        "listen",
        Some("BOSUN_LISTEN"),
        "ADDR",
        Some("127.0.0.1:9901"),
        "Where bosun listens, to ask it",
    ),
];

const ABOUT: &str = "A small PID-1 supervisor for background workers";

/// The subcommands: the word, its form and what it does.
const COMMANDS: &[(&str, Form, &str)] = &[
    (
        "run",
        Form::Run,
        "Start CMD and supervise it (the same as `bosun [OPTIONS] -- CMD`)",
    ),
    (
        "probe",
        Form::Probe,
        "Exit 0 when bosun's /readyz says ready, 1 otherwise (a HEALTHCHECK without curl)",
    ),
    (
        "sidecar",
        Form::Sidecar,
        "Run the health checks and the endpoint with no worker",
    ),
    (
        "protect",
        Form::Protect,
        "Set ECS task scale-in protection through the ECS agent",
    ),
];

/// Why parsing did not give a [`Command`]: help or version asked for (stdout, exit 0), or
/// a usage error (stderr, exit 2). Its text is ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    Help(String),
    Usage(String),
}

/// Parse bosun's command line (and `BOSUN_*` variables); prints help or version and
/// exits 0 when asked, prints the error and exits 2 on a usage error.
pub fn parse() -> Command {
    let env = |name: &str| std::env::var(name).ok();
    match parse_from(std::env::args_os(), env) {
        Ok(cli) => cli,
        Err(Stop::Help(text)) => {
            print!("{text}");
            std::process::exit(0)
        }
        Err(Stop::Usage(text)) => {
            eprint!("{text}");
            std::process::exit(2)
        }
    }
}

impl Command {
    /// [`parse`] from the given arguments (the first is the program), with no
    /// environment.
    pub fn try_parse_from<I, T>(args: I) -> Result<Command, Stop>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        parse_from(args, |_| None)
    }
}

/// Which command line is being parsed: for usage lines and help.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Main,
    Run,
    Sidecar,
    Probe,
    Protect,
}

impl Form {
    fn usage(self) -> &'static str {
        match self {
            Form::Main => "bosun [OPTIONS] -- CMD [ARGS...]\n       bosun <COMMAND>",
            Form::Run => "bosun run [OPTIONS] -- CMD [ARGS...]",
            Form::Sidecar => "bosun sidecar [OPTIONS]",
            Form::Probe => "bosun probe [OPTIONS]",
            Form::Protect => "bosun protect [OPTIONS] <on|off>",
        }
    }

    fn options(self) -> &'static [Opt] {
        match self {
            Form::Main | Form::Run | Form::Sidecar => RUN_OPTIONS,
            Form::Probe => PROBE_OPTIONS,
            Form::Protect => PROTECT_OPTIONS,
        }
    }

    /// An option's default in this form: a sidecar keeps serving (and recovers) when
    /// the app it watches turns unhealthy, so its `--on-unhealthy` is `ignore`.
    fn default_of(self, o: &Opt) -> Option<&'static str> {
        if self == Form::Sidecar && o.long == "on-unhealthy" {
            return Some("ignore");
        }
        o.default
    }

    fn help(self) -> String {
        use std::fmt::Write;
        let about = COMMANDS
            .iter()
            .find(|(_, form, _)| *form == self)
            .map_or(ABOUT, |(_, _, about)| about);
        let mut h = format!("{about}\n\nUsage: {}\n", self.usage());
        if self == Form::Main {
            h.push_str("\nCommands:\n");
            for (name, _, what) in COMMANDS {
                let _ = writeln!(h, "  {name:<9}{what}");
            }
        }
        if matches!(self, Form::Main | Form::Run) {
            h.push_str("\nArguments:\n  CMD [ARGS...]  The worker\n");
        }
        if self == Form::Protect {
            h.push_str("\nArguments:\n  <on|off>  Protection on or off\n");
        }
        h.push_str("\nOptions:\n");
        for o in self.options() {
            if matches!(self, Form::Probe | Form::Protect) && o.long == "listen" {
                continue;
            }
            let _ = writeln!(h, "      --{} <{}>\n          {}", o.long, o.value, o.help);
            let mut notes = Vec::new();
            if let Some(env) = o.env {
                notes.push(format!("[env: {env}]"));
            }
            if let Some(d) = self.default_of(o) {
                notes.push(format!("[default: {d}]"));
            }
            if !notes.is_empty() {
                let _ = writeln!(h, "          {}", notes.join(" "));
            }
        }
        h.push_str("  -h, --help\n          Print help\n");
        if self == Form::Main {
            h.push_str("  -V, --version\n          Print version\n");
        }
        h
    }

    fn error(self, message: &str) -> Stop {
        Stop::Usage(format!(
            "error: {message}\n\nUsage: {}\n\nFor more information, try '--help'.\n",
            self.usage()
        ))
    }
}

fn parse_from<I, T>(args: I, env: impl Fn(&str) -> Option<String>) -> Result<Command, Stop>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut args = args.into_iter().map(Into::into);
    let _program = args.next();
    let args: Vec<OsString> = args.collect();
    let first = args.first().and_then(|a| a.to_str());
    if first == Some("help") {
        return Err(Stop::Help(Form::Main.help()));
    }
    let form = COMMANDS
        .iter()
        .find(|(word, _, _)| Some(*word) == first)
        .map_or(Form::Main, |(_, form, _)| *form);
    let rest = if form == Form::Main {
        &args[..]
    } else {
        &args[1..]
    };
    let given = Given::lex(form, rest)?;
    let values = Values {
        form,
        given: &given,
        env: &env,
    };
    Ok(match form {
        Form::Main | Form::Run => {
            if given.positional.is_empty() {
                return Err(form.error("the worker is missing: CMD [ARGS...] is required"));
            }
            Command::Run(RunArgs {
                supervise: values.supervise()?,
                health: values.health()?,
                service: values.service()?,
                command: given.positional.clone(),
            })
        }
        Form::Sidecar => {
            if let Some(extra) = given.positional.first() {
                return Err(form.error(&format!("unexpected argument '{extra}'")));
            }
            Command::Sidecar(SidecarArgs {
                supervise: values.supervise()?,
                health: values.health()?,
                service: values.service()?,
            })
        }
        Form::Probe => {
            if let Some(extra) = given.positional.first() {
                return Err(form.error(&format!("unexpected argument '{extra}'")));
            }
            Command::Probe(ProbeArgs {
                url: values.text("url")?,
                timeout: values.get("timeout", |s| parse_secs(s, 0.001, 120.0))?,
                listen: values.get("listen", parse_listen)?,
            })
        }
        Form::Protect => {
            let state = match given.positional.as_slice() {
                [one] => parse_named(one).map_err(|e| {
                    form.error(&format!("invalid value '{one}' for '<on|off>': {e}"))
                })?,
                [] => return Err(form.error("on or off is required")),
                [_, extra, ..] => return Err(form.error(&format!("unexpected argument '{extra}'"))),
            };
            Command::Protect(ProtectArgs {
                state,
                minutes: values.get("minutes", |s| parse_number(s, 1, 2880))?,
                listen: values.get("listen", parse_listen)?,
            })
        }
    })
}

/// What the command line gave: option values by flag, and the positional arguments.
#[derive(Default)]
struct Given {
    options: Vec<(&'static str, String)>,
    positional: Vec<String>,
}

impl Given {
    fn lex(form: Form, args: &[OsString]) -> Result<Given, Stop> {
        use lexopt::prelude::*;
        let text = |v: OsString| {
            v.into_string()
                .map_err(|v| form.error(&format!("'{}' is not valid UTF-8", v.to_string_lossy())))
        };
        let mut given = Given::default();
        let mut parser = lexopt::Parser::from_args(args.iter().cloned());
        while let Some(arg) = parser.next().map_err(|e| form.error(&e.to_string()))? {
            match arg {
                Short('h') | Long("help") => return Err(Stop::Help(form.help())),
                Short('V') | Long("version") if form == Form::Main => {
                    return Err(Stop::Help(format!("bosun {}\n", env!("CARGO_PKG_VERSION"))))
                }
                Long(name) => {
                    let Some(o) = form.options().iter().find(|o| o.long == name) else {
                        return Err(form.error(&format!("unexpected argument '--{name}'")));
                    };
                    let value = parser.value().map_err(|_| {
                        form.error(&format!(
                            "a value is required for '--{} <{}>'",
                            o.long, o.value
                        ))
                    })?;
                    let value = text(value)?;
                    match given.options.iter_mut().find(|(l, _)| *l == o.long) {
                        Some((_, old)) => *old = value,
                        None => given.options.push((o.long, value)),
                    }
                }
                Value(v) => {
                    // The worker: this and everything after it, flags included.
                    given.positional.push(text(v)?);
                    if matches!(form, Form::Main | Form::Run) {
                        for v in parser.raw_args().map_err(|e| form.error(&e.to_string()))? {
                            given.positional.push(text(v)?);
                        }
                    }
                }
                other => return Err(form.error(&other.unexpected().to_string())),
            }
        }
        Ok(given)
    }
}

/// Option values with their fallbacks: the flag, else the variable, else the default.
struct Values<'a> {
    form: Form,
    given: &'a Given,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Values<'_> {
    fn spec(&self, long: &str) -> &'static Opt {
        self.form
            .options()
            .iter()
            .find(|o| o.long == long)
            .unwrap_or_else(|| unreachable!("--{long} is in the option table"))
    }

    /// The value of `--long` and where it came from, if any.
    fn raw(&self, long: &str) -> Option<(String, Option<&'static str>)> {
        let o = self.spec(long);
        if let Some((_, v)) = self.given.options.iter().find(|(l, _)| *l == long) {
            return Some((v.clone(), None));
        }
        if let Some(var) = o.env {
            if let Some(v) = (self.env)(var).filter(|v| !v.is_empty()) {
                return Some((v, Some(var)));
            }
        }
        self.form.default_of(o).map(|d| (d.to_owned(), None))
    }

    fn optional<T>(
        &self,
        long: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, Stop> {
        let Some((value, var)) = self.raw(long) else {
            return Ok(None);
        };
        parse(&value).map(Some).map_err(|e| {
            let o = self.spec(long);
            let from = var.map(|v| format!(" (from {v})")).unwrap_or_default();
            self.form.error(&format!(
                "invalid value '{value}'{from} for '--{} <{}>': {e}",
                o.long, o.value
            ))
        })
    }

    fn get<T>(&self, long: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<T, Stop> {
        Ok(self
            .optional(long, parse)?
            .unwrap_or_else(|| unreachable!("--{long} has a default")))
    }

    fn text(&self, long: &str) -> Result<Option<String>, Stop> {
        self.optional(long, |s| Ok(s.to_owned()))
    }

    fn supervise(&self) -> Result<SuperviseOptions, Stop> {
        let restart = self.get("restart", parse_named)?;
        let max_restarts = self.optional("max-restarts", |s| parse_number(s, 0, 1000))?;
        if max_restarts.is_some() && restart == RestartPolicy::Never {
            let from = match self.raw("max-restarts") {
                Some((_, Some(var))) => format!(" (from {var})"),
                _ => String::new(),
            };
            return Err(self.form.error(&format!(
                "--max-restarts{from} needs --restart on-failure or always (the restart policy is never)"
            )));
        }
        Ok(SuperviseOptions {
            stop_timeout: self.get("stop-timeout", |s| parse_secs(s, 0.0, 3600.0))?,
            stop_signal: self.get("stop-signal", parse_signal)?,
            pre_stop: self.text("pre-stop")?,
            restart,
            max_restarts,
            max_runtime: self.optional("max-runtime", |s| parse_secs(s, 0.001, 31_536_000.0))?,
            singleton: self.get("singleton", parse_bool)?,
            log_format: self.get("log-format", parse_named)?,
        })
    }

    fn health(&self) -> Result<HealthOptions, Stop> {
        // At most one kind, wherever each came from.
        let set: Vec<String> = ["health-cmd", "health-http", "health-tcp"]
            .into_iter()
            .filter_map(|k| match self.raw(k)? {
                (_, Some(var)) => Some(format!("--{k} (from {var})")),
                (_, None) => Some(format!("--{k}")),
            })
            .collect();
        if let [a, b, ..] = set.as_slice() {
            return Err(self.form.error(&format!(
                "{a} cannot be used with {b}: one health check at a time"
            )));
        }
        Ok(HealthOptions {
            health_cmd: self.text("health-cmd")?,
            health_http: self.optional("health-http", parse_http_url)?,
            health_tcp: self.optional("health-tcp", parse_host_port)?,
            health_interval: self.get("health-interval", |s| parse_secs(s, 0.001, 300.0))?,
            health_timeout: self.get("health-timeout", |s| parse_secs(s, 0.001, 120.0))?,
            health_start_period: self.get("health-start-period", |s| parse_secs(s, 0.0, 300.0))?,
            health_retries: self.get("health-retries", |s| parse_number(s, 1, 10))?,
            on_unhealthy: self.get("on-unhealthy", parse_named)?,
        })
    }

    fn service(&self) -> Result<ServiceOptions, Stop> {
        Ok(ServiceOptions {
            listen: self.get("listen", parse_listen)?,
            metrics: self.get("metrics", |s| {
                s.split(',').map(|one| parse_named(one.trim())).collect()
            })?,
            metrics_interval: self.get("metrics-interval", |s| parse_secs(s, 0.1, 3600.0))?,
            metrics_namespace: self.get("metrics-namespace", |s| Ok(s.to_owned()))?,
            queue_url: self.text("queue-url")?,
        })
    }
}

/// The enums whose values are words on the command line.
pub trait Named: Sized + Copy + 'static {
    /// Each word and its value.
    const NAMES: &'static [(&'static str, Self)];
}

/// One of `T`'s words, or an error listing them.
pub fn parse_named<T: Named>(s: &str) -> Result<T, String> {
    T::NAMES
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = T::NAMES.iter().map(|(n, _)| *n).collect();
            format!("possible values: {}", names.join(", "))
        })
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("possible values: true, false".into()),
    }
}

fn parse_number(s: &str, min: u32, max: u32) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} is not in {min}..={max}")),
        Err(_) => Err(format!("'{s}' is not a whole number in {min}..={max}")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectState {
    On,
    Off,
}

impl Named for ProtectState {
    const NAMES: &'static [(&'static str, Self)] = &[("on", Self::On), ("off", Self::Off)];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Never,
    OnFailure,
    Always,
}

impl Named for RestartPolicy {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("never", Self::Never),
        ("on-failure", Self::OnFailure),
        ("always", Self::Always),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnhealthy {
    Exit,
    Restart,
    Ignore,
}

impl Named for OnUnhealthy {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("exit", Self::Exit),
        ("restart", Self::Restart),
        ("ignore", Self::Ignore),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl Named for LogFormat {
    const NAMES: &'static [(&'static str, Self)] = &[("text", Self::Text), ("json", Self::Json)];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsSink {
    Off,
    Prometheus,
    Emf,
    Cloudwatch,
}

impl Named for MetricsSink {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("off", Self::Off),
        ("prometheus", Self::Prometheus),
        ("emf", Self::Emf),
        ("cloudwatch", Self::Cloudwatch),
    ];
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
        self.local_url("/readyz")
    }

    /// The URL `bosun probe` asks: `/readyz?probe` (ECS's view of the worker's
    /// health: a worker restarted in place is not failed while it starts again).
    pub fn probe_url(self) -> Option<String> {
        self.local_url("/readyz?probe")
    }

    /// `http://ADDR/PATH` on this address ([`Listen::reach`]).
    pub fn local_url(self, path: &str) -> Option<String> {
        self.reach().map(|addr| format!("http://{addr}{path}"))
    }

    /// The address to connect to: a wildcard address is reached through loopback.
    pub fn reach(self) -> Option<SocketAddr> {
        let Listen::On(mut addr) = self else {
            return None;
        };
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        Some(addr)
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

    fn run(args: &[&str]) -> RunArgs {
        match Command::try_parse_from(args) {
            Ok(Command::Run(r)) => r,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn usage_error(args: &[&str], env: &[(&str, &str)]) -> String {
        let env = |name: &str| {
            env.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        };
        match parse_from(args, env) {
            Err(Stop::Usage(text)) => text,
            other => panic!("{args:?}: not a usage error: {other:?}"),
        }
    }

    #[test]
    fn plain_and_run_forms_are_the_same() {
        let a = run(&["bosun", "--stop-timeout", "1.5", "--", "sleep", "1"]);
        assert_eq!(a.command, ["sleep", "1"]);
        assert_eq!(a.supervise.stop_timeout, Duration::from_millis(1500));
        let b = run(&["bosun", "run", "--stop-timeout=1.5", "--", "sleep", "1"]);
        assert_eq!(b.command, ["sleep", "1"]);
        assert_eq!(b.supervise.stop_timeout, Duration::from_millis(1500));
        // Without `--`, the first word starts the worker.
        let c = run(&["bosun", "--listen", "off", "sleep", "--stop-timeout", "1"]);
        assert_eq!(c.command, ["sleep", "--stop-timeout", "1"]);
        assert_eq!(c.service.listen, Listen::Off);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let a = run(&["bosun", "--", "true"]);
        assert_eq!(a.supervise.stop_timeout, Duration::from_secs(2));
        assert_eq!(a.supervise.stop_signal, libc::SIGTERM);
        assert_eq!(a.supervise.restart, RestartPolicy::Never);
        assert_eq!(a.health.health_interval, Duration::from_secs(30));
        assert_eq!(a.health.health_timeout, Duration::from_secs(5));
        assert_eq!(a.health.health_retries, 3);
        assert_eq!(a.health.on_unhealthy, OnUnhealthy::Exit);
        assert_eq!(
            a.service.listen,
            Listen::On("127.0.0.1:9901".parse().unwrap())
        );
        assert_eq!(a.service.sinks(), []);
        assert_eq!(a.service.metrics_interval, Duration::from_secs(60));
        assert_eq!(a.service.metrics_namespace, "Bosun");
    }

    #[test]
    fn flag_beats_variable_beats_default() {
        let env = |name: &str| match name {
            "BOSUN_STOP_SIGNAL" => Some("USR2".to_owned()),
            "BOSUN_RESTART" => Some("always".to_owned()),
            "BOSUN_PRE_STOP" => Some(String::new()),
            _ => None,
        };
        let Ok(Command::Run(a)) = parse_from(["bosun", "--stop-signal", "USR1", "--", "true"], env)
        else {
            panic!()
        };
        assert_eq!(a.supervise.stop_signal, libc::SIGUSR1);
        assert_eq!(a.supervise.restart, RestartPolicy::Always);
        assert_eq!(a.supervise.pre_stop, None, "an empty variable is unset");
    }

    #[test]
    fn worker_flags_are_not_taken_as_bosun_flags() {
        let a = run(&["bosun", "--", "ls", "--stop-timeout", "-l"]);
        assert_eq!(a.command, ["ls", "--stop-timeout", "-l"]);
    }

    #[test]
    fn metrics_list_is_deduplicated() {
        let a = run(&["bosun", "--metrics", "emf,prometheus,emf", "--", "true"]);
        assert_eq!(
            a.service.sinks(),
            [MetricsSink::Emf, MetricsSink::Prometheus]
        );
    }

    #[test]
    fn usage_errors_name_the_option_the_value_and_the_variable() {
        let e = usage_error(&["bosun", "--health-retries", "0", "--", "true"], &[]);
        assert!(
            e.contains("'0'") && e.contains("--health-retries <N>") && e.contains("1..=10"),
            "{e}"
        );
        let e = usage_error(&["bosun", "--", "true"], &[("BOSUN_RESTART", "sometimes")]);
        assert!(
            e.contains("(from BOSUN_RESTART)") && e.contains("never, on-failure, always"),
            "{e}"
        );
        let e = usage_error(&["bosun", "--bogus", "--", "true"], &[]);
        assert!(e.contains("'--bogus'"), "{e}");
        let e = usage_error(&["bosun", "--stop-timeout"], &[]);
        assert!(
            e.contains("a value is required for '--stop-timeout <SECS>'"),
            "{e}"
        );
        let e = usage_error(&["bosun", "--listen", "off"], &[]);
        assert!(e.contains("CMD"), "{e}");
        let e = usage_error(
            &["bosun", "--health-tcp", "db:5432", "--", "true"],
            &[("BOSUN_HEALTH_CMD", "true")],
        );
        assert!(
            e.contains("--health-cmd (from BOSUN_HEALTH_CMD) cannot be used with --health-tcp"),
            "{e}"
        );
        let e = usage_error(&["bosun", "protect", "maybe"], &[]);
        assert!(e.contains("'maybe'") && e.contains("on, off"), "{e}");
        let e = usage_error(&["bosun", "protect", "on", "--minutes", "3000"], &[]);
        assert!(e.contains("1..=2880"), "{e}");
        let e = usage_error(&["bosun", "sidecar", "extra"], &[]);
        assert!(e.contains("'extra'"), "{e}");
        assert!(
            e.starts_with("error: ") && e.contains("Usage: bosun"),
            "{e}"
        );
    }

    #[test]
    fn subcommands_parse_their_own_options() {
        match Command::try_parse_from(["bosun", "probe", "--timeout", "0.5"]) {
            Ok(Command::Probe(p)) => {
                assert_eq!(p.timeout, Duration::from_millis(500));
                assert_eq!(p.url, None);
                assert_eq!(
                    p.listen.readyz_url().as_deref(),
                    Some("http://127.0.0.1:9901/readyz")
                );
            }
            other => panic!("{other:?}"),
        }
        match Command::try_parse_from(["bosun", "protect", "on", "--minutes", "30"]) {
            Ok(Command::Protect(p)) => {
                assert_eq!((p.state, p.minutes), (ProtectState::On, 30));
                assert_eq!(
                    p.listen.local_url("/protection").as_deref(),
                    Some("http://127.0.0.1:9901/protection")
                );
            }
            other => panic!("{other:?}"),
        }
        match Command::try_parse_from(["bosun", "protect", "off"]) {
            Ok(Command::Protect(p)) => assert_eq!((p.state, p.minutes), (ProtectState::Off, 60)),
            other => panic!("{other:?}"),
        }
        match Command::try_parse_from(["bosun", "sidecar", "--health-tcp", "db:5432"]) {
            Ok(Command::Sidecar(s)) => assert_eq!(s.health.health_tcp.as_deref(), Some("db:5432")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn help_lists_every_option_with_its_variable_and_default() {
        let Err(Stop::Help(h)) = Command::try_parse_from(["bosun", "--help"]) else {
            panic!()
        };
        for o in RUN_OPTIONS {
            assert!(
                h.contains(&format!("--{} <{}>", o.long, o.value)),
                "{}: {h}",
                o.long
            );
            if let Some(env) = o.env {
                assert!(h.contains(&format!("[env: {env}]")), "{env}: {h}");
            }
        }
        assert!(
            h.contains("[default: 127.0.0.1:9901]") && h.contains("protect"),
            "{h}"
        );
        let Err(Stop::Help(h)) = Command::try_parse_from(["bosun", "probe", "-h"]) else {
            panic!()
        };
        assert!(h.contains("--url <URL>") && !h.contains("--listen"), "{h}");
        let Err(Stop::Help(v)) = Command::try_parse_from(["bosun", "-V"]) else {
            panic!()
        };
        assert_eq!(v, format!("bosun {}\n", env!("CARGO_PKG_VERSION")));
    }
}
