//! `bosun`: parse options, set up logging, run, and map the outcome to an exit code.
//!
//! bosun starts from C's `main`, not through Rust's runtime start: PID 1 of every
//! container starts with it, and that start reads `/proc/self/maps` (to find the main
//! thread's stack for its overflow message) and sets up an alternate signal stack,
//! which is most of what bosun spends before its worker runs. Of what that start does,
//! bosun keeps what it needs ([`start`]): SIGPIPE ignored and the standard descriptors
//! open. Arguments and environment come from glibc as always.

// The test harness brings its own `main`.
#![cfg_attr(not(test), no_main)]

use std::sync::Arc;

use bosun::config::{self, Command, HealthOptions, ProbeArgs, ServiceOptions, SuperviseOptions};
use bosun::services::{self, Services};
use bosun::singleton::Verdict;
use bosun::state::Shared;
use bosun::supervise::summary::{Cause, Reason, RunEnd};
use bosun::supervise::{signals, Supervisor};
use bosun::{health, http, logging, metrics};

/// Exit code for usage errors (the command line's own, DESIGN.md §1).
const USAGE: u8 = 2;

/// C's entry point: the start bosun keeps of Rust's, then [`run`].
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    start();
    let code = run();
    // Rust's runtime would flush stdout at exit; its line buffer may hold a partial line.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    libc::c_int::from(code)
}

/// What Rust's runtime start does that bosun relies on: a closed log stream must not
/// kill bosun (SIGPIPE ignored: writes fail with EPIPE instead), and descriptors 0-2
/// are open (on `/dev/null` when bosun was started without them), so that no file or
/// socket bosun opens later takes their place.
fn start() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll(2) on a valid array of three pollfd; open(2) with a NUL-terminated
    // path; signal(2) installing SIG_IGN (no handler code) for SIGPIPE; mallopt(3)
    // before any thread exists.
    unsafe {
        if libc::poll(fds.as_mut_ptr(), 3, 0) != -1 {
            for p in &fds {
                if p.revents & libc::POLLNVAL != 0
                    && libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) == -1
                {
                    libc::abort();
                }
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        // One malloc arena: glibc gives each thread that allocates an arena of its own
        // (64 MiB reserved, its first pages touched: 84 KiB resident for the endpoint's
        // thread), and bosun's two threads allocate little and seldom.
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn run() -> u8 {
    // `bosun probe` runs every few seconds in every container: straight to it, and
    // neither it nor `protect` supervises anything.
    match std::env::args_os().nth(1) {
        Some(a) if a == "probe" || a == "protect" => match config::parse() {
            Command::Probe(args) => return probe(&args),
            Command::Protect(args) => return protect(&args),
            _ => {}
        },
        _ => {}
    }
    // First of all: from here on a TERM waits for the supervisor loop instead of
    // killing bosun before it could pass it on.
    let signals = match signals::take_over() {
        Ok(fd) => fd,
        Err(errno) => {
            eprintln!("bosun: cannot take over signals: {errno}");
            return 1;
        }
    };
    match config::parse() {
        Command::Run(a) => supervise(signals, a.supervise, a.health, a.service, Some(a.command)),
        Command::Sidecar(a) => supervise(signals, a.supervise, a.health, a.service, None),
        Command::Probe(args) => probe(&args),
        Command::Protect(args) => protect(&args),
    }
}

/// Run a worker (or, with no command, the sidecar) under supervision.
fn supervise(
    signals: nix::sys::signalfd::SignalFd,
    opts: SuperviseOptions,
    health_opts: HealthOptions,
    service: ServiceOptions,
    command: Option<Vec<String>>,
) -> u8 {
    let log_format = opts.log_format;
    logging::init(log_format);
    let singleton = opts.singleton;
    if singleton && command.is_none() {
        eprintln!("bosun: --singleton is for a worker (`bosun run`), not the sidecar");
        return USAGE;
    }
    let helper = match aws_helper(&service, singleton) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("bosun: {e}");
            return USAGE;
        }
    };
    let listener = match services::bind(service.listen) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{e}");
            return USAGE;
        }
    };
    let shared = Arc::new(Shared::default());
    let sidecar = command.is_none();
    let (mut sup, requests) =
        match Supervisor::new(signals, opts, command.unwrap_or_default(), shared.clone()) {
            Ok(s) => s,
            Err(errno) => {
                tracing::error!(%errno, "cannot set up the supervisor");
                return 1;
            }
        };
    if singleton {
        if let Some(code) = singleton_ends(helper.clone(), log_format, &sup) {
            let mut end = RunEnd::new(code, None, Cause::Ended, false);
            end.reason = if code == 0 {
                Reason::Skipped
            } else {
                Reason::NotStarted
            };
            end.write(log_format, None);
            return code;
        }
    }
    let worker = if sidecar {
        None
    } else {
        match sup.start() {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::error!("{e}");
                let mut end = RunEnd::new(e.exit_code(), None, Cause::Ended, false);
                end.reason = Reason::NotStarted;
                end.write(log_format, None);
                return e.exit_code();
            }
        }
    };
    let sinks = service.sinks();
    let metrics = (!sinks.is_empty() || listener.is_some()).then(|| metrics::Config {
        sinks,
        interval: service.metrics_interval,
        namespace: service.metrics_namespace.clone(),
        queue_url: service.queue_url.clone(),
        helper,
        log_format,
    });
    let services = Services {
        listener,
        health: health::Config::from_options(&health_opts),
        sidecar,
        on_unhealthy: health_opts.on_unhealthy,
        shared,
        requests,
        watches: sup.watches(),
        metrics,
    };
    match services.start() {
        Ok(at_exit) => sup.before_exit(Box::new(move |deadline| at_exit.run(deadline))),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the endpoint, health checks and metrics")
        }
    }
    match worker {
        Some(w) => sup.run(w),
        None => sup.run_without_worker(),
    }
}

/// `--singleton`: the exit code when this run must not start its worker (an earlier
/// run is going: 0; the check failed: 1), `None` to go on.
fn singleton_ends(
    helper: Option<std::path::PathBuf>,
    log_format: config::LogFormat,
    sup: &Supervisor,
) -> Option<u8> {
    let helper = helper?;
    match bosun::singleton::check(helper, log_format, sup.watches()) {
        Ok(Verdict::Alone) => {
            tracing::info!("singleton: no earlier run of this job is going: starting");
            None
        }
        Ok(Verdict::NotInEcs) => {
            tracing::warn!(
                "singleton: not in an ECS task (no ECS_CONTAINER_METADATA_URI_V4): nothing to compare with: starting"
            );
            None
        }
        Ok(Verdict::Earlier(arns)) => {
            tracing::info!(
                earlier = %arns.join(","),
                "singleton: an earlier run of this job is still going: this run ends without starting the worker"
            );
            Some(0)
        }
        Err(e) => {
            tracing::error!(
                "singleton: cannot tell whether an earlier run is going, so the worker is not started: {e}"
            );
            Some(1)
        }
    }
}

/// `--metrics cloudwatch`, `--queue-url` and `--singleton` need the `bosun-aws` helper
/// (built with the `aws` feature, installed beside bosun): found now, or a usage error
/// before anything starts.
fn aws_helper(
    service: &ServiceOptions,
    singleton: bool,
) -> Result<Option<std::path::PathBuf>, String> {
    let option = if singleton {
        "--singleton"
    } else if service.sinks().contains(&config::MetricsSink::Cloudwatch) {
        "--metrics cloudwatch"
    } else if service.queue_url.is_some() {
        "--queue-url"
    } else {
        return Ok(None);
    };
    match metrics::helper::locate() {
        Some(path) => Ok(Some(path)),
        None => Err(format!(
            "{option} needs the AWS helper `{}` beside bosun or on PATH, and it is not there \
             (it is built with the `aws` feature: cargo build --release --bins)",
            metrics::helper::HELPER
        )),
    }
}

/// `bosun protect on|off [--minutes N]`: 0 when the agent confirmed, 1 otherwise.
/// Asked through bosun's endpoint, which keeps the protection renewed; where no bosun
/// listens (or `--listen off`), straight to the agent, for the minutes given.
fn protect(args: &config::ProtectArgs) -> u8 {
    let enabled = args.state == config::ProtectState::On;
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bosun protect: {e}");
            return 1;
        }
    };
    let bosun_listens = args.listen.reach().is_some_and(|addr| {
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).is_ok()
    });
    let through_bosun = args
        .listen
        .local_url("/protection")
        .filter(|_| bosun_listens);
    let answer = match through_bosun {
        Some(url) => rt.block_on(bosun::protect::through_endpoint(
            &url,
            enabled,
            args.minutes,
        )),
        None => {
            if let config::Listen::On(addr) = args.listen {
                eprintln!(
                    "bosun protect: no bosun listens on {addr}: asking the ECS agent directly (not renewed)"
                );
            }
            match bosun::protect::agent_uri() {
                Ok(uri) => rt.block_on(bosun::protect::set(&uri, enabled, Some(args.minutes))),
                Err(e) => Err(e),
            }
        }
    };
    match answer {
        Ok(p) => {
            match (p.enabled, p.expiration) {
                (true, Some(until)) => println!("protected until {until}"),
                (true, None) => println!("protected"),
                (false, _) => println!("not protected"),
            }
            0
        }
        Err(e) => {
            eprintln!("bosun protect: {e}");
            1
        }
    }
}

/// `bosun probe`: 0 when `/readyz?probe` says ready, 1 otherwise (with the reason on
/// stderr).
fn probe(args: &ProbeArgs) -> u8 {
    let url = match &args.url {
        Some(u) => u.clone(),
        None => match args.listen.probe_url() {
            Some(u) => u,
            None => {
                eprintln!("bosun probe: BOSUN_LISTEN is off and no --url was given");
                return 1;
            }
        },
    };
    match http::get_status(&url, args.timeout) {
        Ok(code) if (200..300).contains(&code) => 0,
        Ok(code) => {
            eprintln!("bosun probe: {url}: HTTP {code}: not ready");
            1
        }
        Err(e) => {
            eprintln!("bosun probe: {e}");
            1
        }
    }
}
