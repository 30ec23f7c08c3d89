//! What wakes the supervisor loop: a signal (read from the `signalfd`), a request from
//! another thread (the health checker asking for a stop or a restart), or a deadline.
//! One `poll` waits on both descriptors, so nothing is missed and nothing spins.

use std::os::fd::AsFd;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::signalfd::SignalFd;

/// A request to the supervisor from another thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Run the stop sequence and exit with `code` (or the worker's own status).
    Stop { reason: String, code: Option<u8> },
    /// Run the stop sequence on the worker and start it again.
    Restart { reason: String },
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `code` is the signal's `si_code`: > 0 from the kernel (a fault of bosun's own),
    /// <= 0 sent by a process (`SI_USER`, `SI_QUEUE`, `SI_TKILL`).
    Signal {
        signo: i32,
        sender: i32,
        code: i32,
    },
    Request(Request),
    Timeout,
}

/// Sends requests to the supervisor loop from any thread.
#[derive(Clone)]
pub struct Requests {
    tx: mpsc::Sender<Request>,
    wake: Arc<EventFd>,
}

impl Requests {
    /// Queue `request` and wake the loop. False when the supervisor is gone.
    pub fn send(&self, request: Request) -> bool {
        if self.tx.send(request).is_err() {
            return false;
        }
        self.wake.write(1).is_ok()
    }
}

/// The supervisor's event source.
pub struct Events {
    signals: SignalFd,
    wake: Arc<EventFd>,
    rx: mpsc::Receiver<Request>,
    pending: Vec<libc::signalfd_siginfo>,
}

impl Events {
    pub fn new(signals: SignalFd) -> nix::Result<(Events, Requests)> {
        let wake = Arc::new(EventFd::from_flags(
            EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK,
        )?);
        let (tx, rx) = mpsc::channel();
        let events = Events {
            signals,
            wake: wake.clone(),
            rx,
            pending: Vec::new(),
        };
        Ok((events, Requests { tx, wake }))
    }

    /// The next event, waiting at most until `deadline` (forever when `None`).
    pub fn next(&mut self, deadline: Option<Instant>) -> Event {
        loop {
            if let Some(info) = self.pending.pop() {
                return Event::Signal {
                    signo: info.ssi_signo as i32,
                    sender: info.ssi_pid as i32,
                    code: info.ssi_code,
                };
            }
            if let Ok(request) = self.rx.try_recv() {
                return Event::Request(request);
            }
            self.read_signals();
            if !self.pending.is_empty() {
                continue;
            }
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Event::Timeout;
                    }
                    // Round up, so a wake-up never comes a little early and spins.
                    let ms = left.as_micros().div_ceil(1000);
                    PollTimeout::try_from(ms.min(i32::MAX as u128) as i32)
                        .unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [
                PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, timeout) {
                Ok(0) if deadline.is_some_and(|d| Instant::now() >= d) => return Event::Timeout,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => {
                    tracing::error!(%errno, "poll failed");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
            if fds[1]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN))
            {
                let _ = self.wake.read();
            }
        }
    }

    /// Drain the signalfd into `pending` (oldest last, so `pop` returns it first).
    fn read_signals(&mut self) {
        let mut batch = Vec::new();
        while let Ok(Some(info)) = self.signals.read_signal() {
            batch.push(info);
        }
        batch.reverse();
        self.pending = batch;
    }
}
