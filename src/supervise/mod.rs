//! The supervisor: starts the worker, forwards signals, reaps, restarts, and runs the
//! stop sequence (pre-stop hook, stop signal to the worker's group, grace, SIGKILL of
//! every remaining descendant). Everything happens on one thread, in one loop over
//! [`events::Events`]; that thread is the only caller of `waitpid`.

pub mod events;
pub mod reaper;
pub mod restart;
pub mod signals;
pub mod spawn;
pub mod status;
pub mod summary;
pub mod tree;

use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;
use tracing::{debug, info, warn};

use crate::config::SuperviseOptions;
use crate::state::{Phase, Shared};
use events::{Event, Events, Request, Requests};
use reaper::{Children, Reaper, Watches};
use restart::Backoff;
use spawn::SpawnError;
use status::Exit;
use summary::{Cause, Reason, RunEnd};

/// How long bosun keeps killing and reaping after the grace before it gives up on
/// processes that will not die (stuck in uninterruptible sleep).
const KILL_PATIENCE: Duration = Duration::from_secs(5);

/// The least time bosun waits to reap what it has just sent SIGKILL, even when the
/// grace's reserve is already spent (a late wake-up on a busy machine): a killed
/// worker that is not reaped would leave bosun without its exit status.
const KILL_FLOOR: Duration = Duration::from_millis(250);

/// What bosun keeps after a stop's grace for its own end (SIGKILL of what is left,
/// then the final metrics flush): a third of the grace, at most 2 s. bosun-deploy sets
/// the grace that much shorter than ECS's stopTimeout (by a quarter of it, at most
/// 2 s), so the flush ends before ECS sends SIGKILL (ECS API reference,
/// ContainerDefinition: stopTimeout, "the container is forcefully killed").
pub fn reserve(grace: Duration) -> Duration {
    (grace / 3).min(Duration::from_secs(2))
}

/// The running worker.
#[derive(Debug, Clone, Copy)]
pub struct Worker {
    pub pid: Pid,
    started: Instant,
    exit: Option<Exit>,
}

/// How watching the worker ended.
enum Watch {
    Exited(Exit),
    Stop { reason: String },
    Restart { reason: String },
}

/// How waiting for descendants to leave ended.
#[derive(Debug, PartialEq, Eq)]
enum Wait {
    AllGone,
    Deadline,
    /// A second TERM/INT: kill now. `stop_requested` tells the caller a stop was asked.
    CutShort,
}

/// What an event means: one classification, the same in every phase (each phase only
/// decides what to do about it).
#[derive(Debug)]
enum Action {
    /// SIGCHLD: something to reap.
    Reap,
    /// TERM/INT (`by_signal`), a stop request from another thread, or `--max-runtime`
    /// running out; `code` is the exit code asked for.
    Stop {
        reason: String,
        code: Option<u8>,
        by_signal: bool,
    },
    /// Restart the worker in place (`--on-unhealthy restart`).
    Restart { reason: String },
    /// Any other signal: the worker's.
    Forward { signo: i32, sender: i32 },
    /// The phase's own deadline passed.
    Deadline,
}

/// See the module documentation.
pub struct Supervisor {
    opts: SuperviseOptions,
    argv: Vec<String>,
    events: Events,
    reaper: Reaper,
    watches: Watches,
    shared: Arc<Shared>,
    me: Pid,
    is_init: bool,
    stop_requested: bool,
    /// The exit code a stop request asked for (the first one wins): 1 for unhealthy,
    /// 124 for `--max-runtime`.
    stop_code: Option<u8>,
    /// When `--max-runtime` runs out (cleared once it has).
    runtime_ends: Option<Instant>,
    /// When the current stop's grace ends.
    grace_ends: Option<Instant>,
    /// Run just before bosun exits, with the end of the grace (the final metrics flush).
    before_exit: Option<Box<dyn FnOnce(Instant) + Send>>,
    /// When the worker first started (the run's duration counts from there).
    first_start: Option<Instant>,
    /// Restarts made by the restart policy (`--max-restarts` bounds them).
    policy_restarts: u32,
    /// Why the first stop was asked for, if one was.
    cause: Option<Cause>,
}

impl Supervisor {
    /// Take over the signals in `signals` and become a child subreaper unless PID 1.
    pub fn new(
        signals: SignalFd,
        opts: SuperviseOptions,
        argv: Vec<String>,
        shared: Arc<Shared>,
    ) -> nix::Result<(Supervisor, Requests)> {
        let me = nix::unistd::getpid();
        let is_init = me.as_raw() == 1;
        if !is_init {
            nix::sys::prctl::set_child_subreaper(true)?;
        }
        let (events, requests) = Events::new(signals)?;
        let watches = Watches::default();
        let runtime_ends = opts.max_runtime.map(|d| Instant::now() + d);
        let sup = Supervisor {
            opts,
            argv,
            events,
            reaper: Reaper::new(watches.clone()),
            watches,
            shared,
            me,
            is_init,
            stop_requested: false,
            stop_code: None,
            runtime_ends,
            grace_ends: None,
            before_exit: None,
            first_start: None,
            policy_restarts: 0,
            cause: None,
        };
        Ok((sup, requests))
    }

    /// Have `f` run just before bosun exits, given the end of the grace.
    pub fn before_exit(&mut self, f: Box<dyn FnOnce(Instant) + Send>) {
        self.before_exit = Some(f);
    }

    /// The final flush, then the companions (the AWS helper) go too: nothing bosun
    /// started outlives it.
    fn finish(&mut self) {
        if let Some(f) = self.before_exit.take() {
            // After a stop, the grace and its reserve, even when the worker used all
            // of the grace; otherwise (the worker ended on its own) a grace's worth.
            let deadline = self.grace_ends.map_or_else(
                || Instant::now() + self.opts.stop_timeout,
                |g| g + reserve(self.opts.stop_timeout),
            );
            f(deadline);
        }
        self.kill_all(None, Scope::Everything);
    }

    /// For threads that start processes of their own (health checks).
    pub fn watches(&self) -> Watches {
        self.watches.clone()
    }

    /// Start the worker.
    pub fn start(&mut self) -> Result<Worker, SpawnError> {
        let pid = spawn::worker(&self.argv)?;
        self.first_start.get_or_insert_with(Instant::now);
        info!(pid = pid.as_raw(), command = ?self.argv, "worker started");
        self.shared.update(|s| {
            s.phase = Phase::Running;
            s.worker_pid = Some(pid.as_raw());
        });
        Ok(Worker {
            pid,
            started: Instant::now(),
            exit: None,
        })
    }

    /// Wait for the next event (at most until `deadline`) and say what it means.
    fn next_action(&mut self, deadline: Option<Instant>) -> Action {
        let wake = match (deadline, self.runtime_ends) {
            (Some(d), Some(r)) => Some(d.min(r)),
            (d, r) => d.or(r),
        };
        match self.events.next(wake) {
            Event::Signal {
                signo: libc::SIGCHLD,
                ..
            } => Action::Reap,
            Event::Signal { signo, code, .. } if signals::is_own_fault(signo, code) => {
                tracing::error!(signal = signals::name(signo), code, "fault in bosun itself");
                signals::die_of(signo)
            }
            Event::Signal { signo, sender, .. } if is_stop_signal(signo) => Action::Stop {
                reason: format!("received {} from pid {sender}", signals::name(signo)),
                code: None,
                by_signal: true,
            },
            Event::Signal { signo, sender, .. } => Action::Forward { signo, sender },
            Event::Request(Request::Stop { reason, code }) => Action::Stop {
                reason,
                code,
                by_signal: false,
            },
            Event::Request(Request::Restart { reason }) => Action::Restart { reason },
            Event::Timeout if self.runtime_ends.is_some_and(|r| Instant::now() >= r) => {
                self.runtime_ends = None;
                Action::Stop {
                    reason: "max runtime reached".into(),
                    code: Some(124),
                    by_signal: false,
                }
            }
            Event::Timeout => Action::Deadline,
        }
    }

    /// Record a stop request: bosun exits once the stop is done, with the first code
    /// asked for.
    fn note_stop(&mut self, reason: &str, code: Option<u8>) {
        if !self.stop_requested {
            debug!(reason, "stop requested");
        }
        self.stop_requested = true;
        if self.stop_code.is_none() {
            self.stop_code = code;
        }
        self.cause.get_or_insert(match code {
            None => Cause::Stopped,
            Some(124) => Cause::TimeLimit,
            Some(_) => Cause::Unhealthy,
        });
    }

    /// bosun's exit code: what a stop asked for, else the worker's.
    fn exit_code(&self, worker: Option<Exit>) -> u8 {
        self.stop_code
            .unwrap_or_else(|| worker.map_or(0, Exit::code))
    }

    /// Supervise `worker` until bosun should exit; returns bosun's exit code.
    pub fn run(mut self, mut worker: Worker) -> u8 {
        let mut backoff = Backoff::default();
        loop {
            let delay = match self.watch(&mut worker) {
                Watch::Stop { reason } => {
                    self.stop(&mut worker, &reason);
                    None
                }
                Watch::Restart { reason } => {
                    self.stop(&mut worker, &reason);
                    (!self.stop_requested).then_some(Duration::ZERO)
                }
                Watch::Exited(exit) => {
                    self.clean_up_after(exit);
                    let wanted = !self.stop_requested && restart::wanted(self.opts.restart, exit);
                    let limit = self.opts.max_restarts;
                    if wanted && limit.is_some_and(|m| self.policy_restarts >= m) {
                        info!(
                            max_restarts = limit,
                            %exit,
                            "restart limit reached: not restarting"
                        );
                    }
                    (wanted && limit.is_none_or(|m| self.policy_restarts < m)).then(|| {
                        self.policy_restarts += 1;
                        backoff.delay(worker.started.elapsed())
                    })
                }
            };
            let (code, started) = match delay.map(|d| self.restart(d)) {
                Some(Ok(Some(w))) => {
                    worker = w;
                    continue;
                }
                Some(Err(e)) => (e.exit_code(), false),
                Some(Ok(None)) | None => (self.exit_code(worker.exit), true),
            };
            self.shared.update(|s| s.phase = Phase::Exited);
            self.summarize(code, started.then_some(worker.exit).flatten());
            self.finish();
            info!(
                code,
                orphans_reaped = self.reaper.orphans_reaped(),
                "bosun exiting"
            );
            return code;
        }
    }

    /// The run-summary line, and the run's end for the final metrics flush.
    fn summarize(&mut self, code: u8, last: Option<Exit>) {
        let oom = matches!(last, Some(Exit::Signal(libc::SIGKILL)))
            && self.cause.is_none()
            && crate::metrics::cgroup::Cgroup::detect(std::path::Path::new("/"))
                .oom_kills()
                .is_some_and(|n| n > 0);
        let mut end = RunEnd::new(code, last, self.cause.unwrap_or(Cause::Ended), oom);
        if last.is_none() && code >= 126 {
            end.reason = Reason::NotStarted;
        }
        end.duration = self.first_start.map_or(Duration::ZERO, |t| t.elapsed());
        let state = self.shared.snapshot();
        end.restarts = state.restarts;
        let task = state.task_arn.as_deref().map(summary::task_id);
        end.write(self.opts.log_format, task);
        self.shared.update(|s| s.run_end = Some(end));
    }

    /// Sidecar mode: no worker. Reap the health checks' processes until TERM/INT (exit
    /// 0) or a stop request (an unhealthy check with `--on-unhealthy exit`).
    pub fn run_without_worker(mut self) -> u8 {
        self.shared.update(|s| {
            s.phase = Phase::Running;
            s.has_worker = false;
        });
        loop {
            match self.next_action(None) {
                Action::Reap => {
                    self.reap(None, None);
                }
                Action::Stop { reason, code, .. } => {
                    info!(reason, "sidecar stopping");
                    self.note_stop(&reason, code);
                    break;
                }
                Action::Forward { signo, .. } => {
                    debug!(signal = signals::name(signo), "ignored: no worker")
                }
                Action::Restart { .. } | Action::Deadline => {}
            }
        }
        self.shared.update(|s| s.phase = Phase::Stopping);
        let deadline = Instant::now() + self.opts.stop_timeout;
        let left = self.descendants();
        tree::signal_each(&left, self.opts.stop_signal);
        self.wait_for_descendants(None, deadline);
        self.kill_all(None, Scope::ButCompanions);
        self.shared.update(|s| s.phase = Phase::Exited);
        self.finish();
        self.exit_code(None)
    }

    /// Wait for the worker to end or for a stop or restart request, forwarding signals.
    fn watch(&mut self, worker: &mut Worker) -> Watch {
        loop {
            match self.next_action(None) {
                Action::Reap => {
                    self.reap(Some(worker), None);
                    if let Some(exit) = worker.exit {
                        info!(pid = worker.pid.as_raw(), %exit, "worker exited");
                        return Watch::Exited(exit);
                    }
                }
                Action::Stop { reason, code, .. } => {
                    self.note_stop(&reason, code);
                    return Watch::Stop { reason };
                }
                Action::Forward { signo, sender } => self.forward(Some(worker), signo, sender),
                Action::Restart { reason } => return Watch::Restart { reason },
                Action::Deadline => {}
            }
        }
    }

    /// The stop sequence; returns how the worker ended.
    fn stop(&mut self, worker: &mut Worker, reason: &str) -> Option<Exit> {
        let grace = self.opts.stop_timeout;
        let deadline = Instant::now() + grace;
        self.grace_ends = Some(deadline);
        self.shared.update(|s| s.phase = Phase::Stopping);
        info!(reason, grace_secs = grace.as_secs_f64(), "stop begun");

        let mut cut_short = false;
        if let Some(script) = self.opts.pre_stop.clone() {
            cut_short = self.pre_stop(&script, worker, deadline);
        }
        if !cut_short && worker.exit.is_none() {
            let sig = self.opts.stop_signal;
            if tree::signal_group(worker.pid, sig) {
                info!(
                    pgid = worker.pid.as_raw(),
                    signal = signals::name(sig),
                    "stop signal sent to the worker's process group"
                );
                if sig != libc::SIGCONT && sig != libc::SIGKILL {
                    // A stopped worker could not act on the stop signal.
                    tree::signal_group(worker.pid, libc::SIGCONT);
                }
            }
            if self.wait_for_descendants(Some(worker), deadline) == Wait::CutShort {
                cut_short = true;
            }
        } else if !cut_short {
            self.wait_for_descendants(Some(worker), deadline);
        }
        if cut_short {
            info!("second stop request: grace cut short");
        }
        self.kill_all(Some(worker), Scope::ButCompanions);
        if worker.exit.is_none() {
            // SIGKILL was sent, but the worker could not be reaped in time (stuck in
            // uninterruptible sleep): report it killed, never as a success.
            warn!(
                pid = worker.pid.as_raw(),
                "worker not reaped after SIGKILL: reported as killed"
            );
            worker.exit = Some(Exit::Signal(libc::SIGKILL));
        }
        worker.exit
    }

    /// Run the pre-stop hook until it ends or the grace does. True when a second stop
    /// request cut the grace short.
    fn pre_stop(&mut self, script: &str, worker: &mut Worker, deadline: Instant) -> bool {
        let pid = match spawn::shell(script) {
            Ok(pid) => pid,
            Err(e) => {
                warn!(error = %e, "pre-stop hook not run");
                return false;
            }
        };
        info!(pid = pid.as_raw(), script, "pre-stop hook started");
        let mut hook_exit = None;
        loop {
            match self.next_action(Some(deadline)) {
                Action::Reap => {
                    self.reap(Some(worker), Some((pid, &mut hook_exit)));
                    if let Some(exit) = hook_exit {
                        info!(%exit, "pre-stop hook finished");
                        return false;
                    }
                }
                Action::Stop {
                    by_signal: true, ..
                } => {
                    self.stop_requested = true;
                    self.cause.get_or_insert(Cause::Stopped);
                    tree::signal_group(pid, libc::SIGKILL);
                    return true;
                }
                // A stop asked for while stopping (say, for a restart): bosun exits
                // once this stop is done, with the code asked for.
                Action::Stop { reason, code, .. } => self.note_stop(&reason, code),
                Action::Forward { signo, sender } => self.forward(Some(worker), signo, sender),
                Action::Restart { .. } => {}
                Action::Deadline => {
                    warn!("pre-stop hook still running when the grace ended: killed");
                    tree::signal_group(pid, libc::SIGKILL);
                    return false;
                }
            }
        }
    }

    /// After the worker exited on its own: stop whatever it left behind, the same way.
    fn clean_up_after(&mut self, exit: Exit) {
        if self.settled(None) {
            return;
        }
        let deadline = Instant::now() + self.opts.stop_timeout;
        let left = self.descendants();
        let sent = tree::signal_each(&left, self.opts.stop_signal);
        info!(%exit, processes = sent, signal = signals::name(self.opts.stop_signal), "worker exited; stopping what it left behind");
        self.wait_for_descendants(None, deadline);
        self.kill_all(None, Scope::ButCompanions);
    }

    /// Wait until no descendant is left or `deadline`. When the worker has ended but
    /// others remain (they left its process group), they get the stop signal too.
    fn wait_for_descendants(&mut self, mut worker: Option<&mut Worker>, deadline: Instant) -> Wait {
        let mut others_signalled = worker.as_ref().is_some_and(|w| w.exit.is_some());
        loop {
            if self.settled(worker.as_deref_mut()) {
                return Wait::AllGone;
            }
            if !others_signalled && worker.as_ref().is_some_and(|w| w.exit.is_some()) {
                others_signalled = true;
                let left = self.descendants();
                let sent = tree::signal_each(&left, self.opts.stop_signal);
                debug!(
                    processes = sent,
                    "stop signal sent to processes outside the worker's group"
                );
            }
            match self.next_action(Some(deadline)) {
                Action::Deadline => return Wait::Deadline,
                Action::Reap => {}
                Action::Stop {
                    by_signal: true, ..
                } => {
                    self.stop_requested = true;
                    self.cause.get_or_insert(Cause::Stopped);
                    return Wait::CutShort;
                }
                Action::Stop { reason, code, .. } => self.note_stop(&reason, code),
                Action::Forward { signo, sender } => self.forward(worker.as_deref(), signo, sender),
                Action::Restart { .. } => {}
            }
        }
    }

    /// SIGKILL every remaining descendant (in `scope`) and reap them all (bounded).
    fn kill_all(&mut self, mut worker: Option<&mut Worker>, scope: Scope) {
        // After a stop's grace, half its reserve at most: the other half is the
        // final flush's, before ECS's SIGKILL.
        let now = Instant::now();
        let give_up = match (self.grace_ends, scope) {
            (Some(g), Scope::ButCompanions) => (now + KILL_PATIENCE)
                .min(g + reserve(self.opts.stop_timeout) / 2)
                .max(now + KILL_FLOOR),
            _ => now + KILL_PATIENCE,
        };
        let mut total = 0;
        loop {
            let done = match scope {
                Scope::ButCompanions => self.settled(worker.as_deref_mut()),
                Scope::Everything => self.reap(worker.as_deref_mut(), None) == Children::None,
            };
            if done {
                break;
            }
            let skip = match scope {
                Scope::ButCompanions => self.watches.companions(),
                Scope::Everything => Vec::new(),
            };
            match tree::descendants(self.me, &skip) {
                Ok(left) => total += tree::signal_each(&left, libc::SIGKILL),
                Err(e) => {
                    warn!(error = %e, "cannot read /proc; killing the worker's group only");
                    tree::kill_without_proc(worker.as_ref().map(|w| w.pid), self.is_init);
                }
            }
            let now = Instant::now();
            if now >= give_up {
                warn!("descendants still alive after SIGKILL; exiting anyway");
                break;
            }
            // Wait for their SIGCHLD (or poll again shortly: a zombie's parent may be
            // reparenting it to us right now).
            let _ = self
                .events
                .next(Some((now + Duration::from_millis(20)).min(give_up)));
        }
        match scope {
            Scope::ButCompanions if total > 0 => {
                info!(processes = total, "SIGKILL sent to remaining processes")
            }
            // The companions' end, after the final flush, is routine.
            _ => debug!(processes = total, "SIGKILL sent to what was left at exit"),
        }
    }

    /// Wait out the restart back-off (a stop request ends it at once) and start again.
    /// `Ok(None)` when a stop was asked for instead.
    fn restart(&mut self, delay: Duration) -> Result<Option<Worker>, SpawnError> {
        self.shared.update(|s| {
            s.phase = Phase::BackingOff;
            s.worker_pid = None;
        });
        info!(delay_secs = delay.as_secs_f64(), "restarting the worker");
        let until = Instant::now() + delay;
        loop {
            match self.next_action(Some(until)) {
                Action::Deadline => break,
                Action::Reap => {
                    self.reap(None, None);
                }
                Action::Stop { reason, code, .. } => {
                    info!(reason, "stop requested during restart back-off");
                    self.note_stop(&reason, code);
                    return Ok(None);
                }
                Action::Forward { signo, .. } => {
                    debug!(signal = signals::name(signo), "no worker to forward to");
                }
                Action::Restart { .. } => {}
            }
        }
        let worker = self.start()?;
        self.shared.worker_restarted();
        Ok(Some(worker))
    }

    /// Forward `signo` to the worker.
    fn forward(&self, worker: Option<&Worker>, signo: i32, sender: i32) {
        match worker.filter(|w| w.exit.is_none()) {
            Some(w) => {
                if tree::signal_one(w.pid, signo) {
                    info!(
                        signal = signals::name(signo),
                        sender,
                        pid = w.pid.as_raw(),
                        "signal forwarded"
                    );
                }
            }
            None => debug!(signal = signals::name(signo), "no worker to forward to"),
        }
    }

    /// One reaping pass, recording the worker's and the hook's ends.
    fn reap(
        &mut self,
        worker: Option<&mut Worker>,
        hook: Option<(Pid, &mut Option<Exit>)>,
    ) -> Children {
        let worker_pid = worker.as_ref().map(|w| w.pid);
        let mut worker_exit = None;
        let mut hook = hook;
        let children = self.reaper.reap(|pid, exit| {
            if Some(pid) == worker_pid {
                worker_exit = Some(exit);
                true
            } else if let Some((hook_pid, hook_exit)) = hook.as_mut().filter(|(p, _)| *p == pid) {
                let _ = hook_pid;
                **hook_exit = Some(exit);
                true
            } else {
                false
            }
        });
        if let (Some(w), Some(exit)) = (worker, worker_exit) {
            w.exit = Some(exit);
            self.shared.update(|s| {
                s.last_exit = Some(exit);
                s.worker_pid = None;
            });
        }
        let orphans = self.reaper.orphans_reaped();
        self.shared.update(|s| s.orphans_reaped = orphans);
        children
    }

    /// Reap, then say whether nothing is left that a stop must wait for: no child at
    /// all, or only companions (and what runs below them).
    fn settled(&mut self, worker: Option<&mut Worker>) -> bool {
        if self.reap(worker, None) == Children::None {
            return true;
        }
        let companions = self.watches.companions();
        !companions.is_empty()
            && tree::descendants(self.me, &companions).is_ok_and(|left| left.is_empty())
    }

    /// Descendants but the companions.
    fn descendants(&self) -> Vec<Pid> {
        tree::descendants(self.me, &self.watches.companions()).unwrap_or_default()
    }
}

/// Which descendants [`Supervisor::kill_all`] kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// All but the companions: the stop sequence.
    ButCompanions,
    /// Everything: the very end, after the final flush.
    Everything,
}

/// TERM and INT start the stop sequence (and, once it runs, cut its grace short).
fn is_stop_signal(signo: i32) -> bool {
    signo == libc::SIGTERM || signo == libc::SIGINT
}
