//! How a process ended, and the exit code bosun reports for it.

use std::fmt;

use nix::sys::wait::WaitStatus;

/// How a reaped process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl Exit {
    /// From a `waitpid` status; `None` for stops and continues, which are not ends.
    pub fn from_wait(status: WaitStatus) -> Option<(nix::unistd::Pid, Exit)> {
        match status {
            WaitStatus::Exited(pid, code) => Some((pid, Exit::Code(code))),
            WaitStatus::Signaled(pid, sig, _) => Some((pid, Exit::Signal(sig as i32))),
            _ => None,
        }
    }

    /// The exit code bosun itself exits with: the code, or 128+N for signal N.
    pub fn code(self) -> u8 {
        match self {
            Exit::Code(c) => (c & 0xff) as u8,
            Exit::Signal(s) => (128 + s).clamp(0, 255) as u8,
        }
    }

    /// Whether this counts as a failure for `--restart on-failure`.
    pub fn failed(self) -> bool {
        self != Exit::Code(0)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "signal {}", super::signals::name(*s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Exit::Code(0).code(), 0);
        assert_eq!(Exit::Code(255).code(), 255);
        assert_eq!(Exit::Signal(libc::SIGTERM).code(), 143);
        assert_eq!(Exit::Signal(libc::SIGKILL).code(), 137);
        assert!(!Exit::Code(0).failed());
        assert!(Exit::Signal(libc::SIGTERM).failed());
    }
}
