//! `bosun-aws`: bosun's AWS helper (CloudWatch, SQS, ECS), started by bosun when
//! `--metrics cloudwatch` or `--queue-url` is set. Parse options, set up logging,
//! serve requests on stdin until it ends.

use std::process::ExitCode;

use bosun::aws::helper::{serve, Options};

fn main() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bosun-aws: {e} (bosun-aws is started by bosun, not by hand)");
            return ExitCode::from(2);
        }
    };
    bosun::logging::init(opts.log_format);
    // A stop of the container is bosun's to handle: the helper ends when bosun closes
    // its input (after the final flush) or kills it.
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: installing SIG_IGN (no handler code) for a valid signal number.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_stack_size(2 * 1024 * 1024)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bosun-aws: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    ExitCode::from(rt.block_on(serve(opts)))
}
