//! Signals: which ones bosun takes over, how it receives them (a `signalfd` read by the
//! supervisor loop, never a handler doing work) and how names like `TERM` are parsed.

use std::str::FromStr;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The one signal that is never blocked: a SIGPIPE from writing to a closed log stream
/// must stay ignored (a blocked SIGPIPE would queue and be mistaken for one to forward).
const NOT_TAKEN: [Signal; 1] = [Signal::SIGPIPE];

/// The synchronous faults. Blocked and read from the `signalfd` like every other
/// signal, so that one sent with kill(2) is forwarded (and, to PID 1, delivered at
/// all); a genuine fault of bosun's own is still fatal: the kernel forces a blocked
/// synchronous fault through with its default action.
pub const FAULTS: [i32; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// Every signal bosun receives through its `signalfd`: all catchable ones, real-time
/// signals and the faults included, but SIGPIPE.
pub fn taken() -> SigSet {
    let mut set = SigSet::all();
    for sig in NOT_TAKEN {
        set.remove(sig);
    }
    set
}

/// Whether a signal read from the `signalfd` is a fault the kernel raised in bosun
/// (`si_code` > 0) rather than one a process sent (`SI_USER`, `SI_QUEUE`, `SI_TKILL`
/// are <= 0).
pub fn is_own_fault(signo: i32, code: i32) -> bool {
    FAULTS.contains(&signo) && code > 0
}

/// End bosun of `signo` with its default action, as the kernel meant to.
pub fn die_of(signo: i32) -> ! {
    // SAFETY: resetting a disposition to the default, unblocking and raising are
    // async-signal-safe and touch no Rust state; `raise` does not return for a fatal
    // default action, and `abort` covers the case where it does.
    unsafe {
        libc::signal(signo, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signo);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signo);
        libc::abort()
    }
}

/// Block every taken signal in the calling thread (and so in every thread it starts
/// later) and open the `signalfd` that receives them. Call first thing in `main`,
/// before any thread or child exists: a TERM that arrives before the supervisor loop
/// runs then waits, queued, instead of killing bosun and orphaning the worker. Blocked
/// signals are queued even where bosun inherited them as ignored; the worker's
/// dispositions are reset when it is started (see `spawn`).
pub fn take_over() -> nix::Result<SignalFd> {
    let set = taken();
    set.thread_set_mask()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

fn signal_from_number(signo: i32) -> Option<Signal> {
    Signal::try_from(signo).ok()
}

/// A signal's name for log lines: `SIGTERM`, `SIGRTMIN+3`, or the number.
pub fn name(signo: i32) -> String {
    if let Some(sig) = signal_from_number(signo) {
        return sig.as_str().to_owned();
    }
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if (min..=max).contains(&signo) {
        return format!("SIGRTMIN+{}", signo - min);
    }
    signo.to_string()
}

/// Parse `TERM`, `SIGTERM`, `sigterm`, `15` or `RTMIN+2` into a signal number that can
/// be sent (1..=SIGRTMAX).
pub fn parse_signal(s: &str) -> Result<i32, String> {
    let t = s.trim();
    let max = libc::SIGRTMAX();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=max).contains(&n) {
            return Ok(n);
        }
        return Err(format!(
            "signal number {n} is out of range: allowed 1..={max}"
        ));
    }
    let upper = t.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(off) = bare.strip_prefix("RTMIN+") {
        if let Ok(k) = off.parse::<i32>() {
            let n = libc::SIGRTMIN() + k;
            if k >= 0 && n <= max {
                return Ok(n);
            }
        }
    }
    if bare == "RTMIN" {
        return Ok(libc::SIGRTMIN());
    }
    if bare == "RTMAX" {
        return Ok(max);
    }
    Signal::from_str(&format!("SIG{bare}"))
        .map(|sig| sig as i32)
        .map_err(|_| {
            format!("'{s}' is not a signal name or number (for example TERM, SIGQUIT, 15)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(parse_signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("sigquit"), Ok(libc::SIGQUIT));
        assert_eq!(parse_signal("SIGUSR1"), Ok(libc::SIGUSR1));
        assert_eq!(parse_signal("9"), Ok(libc::SIGKILL));
        assert_eq!(parse_signal("RTMIN+1"), Ok(libc::SIGRTMIN() + 1));
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").unwrap_err().contains("1..="));
        assert!(parse_signal("BOGUS").unwrap_err().contains("'BOGUS'"));
    }

    #[test]
    fn names_for_logs() {
        assert_eq!(name(libc::SIGHUP), "SIGHUP");
        assert_eq!(name(libc::SIGRTMIN() + 2), "SIGRTMIN+2");
    }

    #[test]
    fn faults_are_taken_and_pipe_is_not() {
        let set = taken();
        assert!(set.contains(Signal::SIGTERM));
        assert!(set.contains(Signal::SIGWINCH));
        assert!(set.contains(Signal::SIGCHLD));
        assert!(set.contains(Signal::SIGSEGV));
        assert!(set.contains(Signal::SIGILL));
        assert!(!set.contains(Signal::SIGPIPE));
    }

    #[test]
    fn only_kernel_raised_faults_are_bosuns_own() {
        assert!(is_own_fault(libc::SIGSEGV, 1)); // SEGV_MAPERR
        assert!(is_own_fault(libc::SIGBUS, 0x80)); // SI_KERNEL
        assert!(!is_own_fault(libc::SIGSEGV, 0)); // SI_USER: kill(2)
        assert!(!is_own_fault(libc::SIGILL, -6)); // SI_TKILL
        assert!(!is_own_fault(libc::SIGTERM, 1));
    }
}
