//! `bosun`: parse options, set up logging, run, and map the outcome to an exit code.

use std::process::ExitCode;
use std::sync::Arc;

use bosun::config::{Command, RunArgs};
use bosun::logging;
use bosun::state::Shared;
use bosun::supervise::{signals, Supervisor};

/// Exit code for usage errors (clap uses the same).
const USAGE: u8 = 2;

fn main() -> ExitCode {
    // First of all: from here on a TERM waits for the supervisor loop instead of
    // killing bosun before it could pass it on.
    let signals = match signals::take_over() {
        Ok(fd) => fd,
        Err(errno) => {
            eprintln!("bosun: cannot take over signals: {errno}");
            return ExitCode::from(1);
        }
    };
    let cli = bosun::config::parse();
    let code = match cli.command {
        None => run(signals, cli.run),
        Some(Command::Run(args)) => run(signals, args),
        Some(Command::Probe(_)) | Some(Command::Sidecar(_)) | Some(Command::Protect(_)) => {
            eprintln!("bosun: this subcommand is not available yet");
            USAGE
        }
    };
    ExitCode::from(code)
}

fn run(signals: nix::sys::signalfd::SignalFd, args: RunArgs) -> u8 {
    logging::init(args.supervise.log_format);
    let shared = Arc::new(Shared::default());
    let (mut sup, _requests) = match Supervisor::new(signals, args.supervise, args.command, shared)
    {
        Ok(s) => s,
        Err(errno) => {
            tracing::error!(%errno, "cannot set up the supervisor");
            return 1;
        }
    };
    let worker = match sup.start() {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("{e}");
            return e.exit_code();
        }
    };
    sup.run(worker)
}
