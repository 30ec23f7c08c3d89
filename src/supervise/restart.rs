//! The restart policy and its back-off: Docker's shape (start at 100 ms, double after
//! each quick failure, capped), reset once a run lasted long enough to count as healthy.

use std::time::Duration;

use crate::config::RestartPolicy;

use super::status::Exit;

/// First delay before a restart.
pub const BASE: Duration = Duration::from_millis(100);
/// The longest delay between two restarts.
pub const CAP: Duration = Duration::from_secs(30);
/// A run at least this long resets the delay to [`BASE`].
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// Whether the policy restarts a worker that ended like this.
pub fn wanted(policy: RestartPolicy, exit: Exit) -> bool {
    match policy {
        RestartPolicy::Never => false,
        RestartPolicy::OnFailure => exit.failed(),
        RestartPolicy::Always => true,
    }
}

/// Exponential back-off between restarts.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BASE }
    }
}

impl Backoff {
    /// The delay before the next start, given how long the last run lasted.
    pub fn delay(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= RESET_AFTER {
            self.next = BASE;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(CAP);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(5);
        assert_eq!(b.delay(quick), Duration::from_millis(100));
        assert_eq!(b.delay(quick), Duration::from_millis(200));
        assert_eq!(b.delay(quick), Duration::from_millis(400));
        for _ in 0..20 {
            b.delay(quick);
        }
        assert_eq!(b.delay(quick), CAP);
        assert_eq!(b.delay(RESET_AFTER), BASE);
    }

    #[test]
    fn policies() {
        assert!(!wanted(RestartPolicy::Never, Exit::Code(1)));
        assert!(wanted(RestartPolicy::OnFailure, Exit::Code(1)));
        assert!(wanted(RestartPolicy::OnFailure, Exit::Signal(9)));
        assert!(!wanted(RestartPolicy::OnFailure, Exit::Code(0)));
        assert!(wanted(RestartPolicy::Always, Exit::Code(0)));
    }
}
