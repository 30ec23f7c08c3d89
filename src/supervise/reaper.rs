//! The one owner of `waitpid` in bosun. Every child, the worker's orphans included, is
//! reaped here; a thread that starts a process of its own (a health check) registers a
//! watch and is told how it ended, instead of waiting for it itself and stealing (or
//! losing) statuses. A process started as a *companion* (the AWS helper) is bosun's own
//! machinery: the stop sequence does not wait for it, and it is killed last.

use std::collections::{HashMap, HashSet};
use std::io;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::status::Exit;

/// Called, on the supervisor thread, with how a watched process ended.
pub type OnExit = Box<dyn FnOnce(Exit) + Send>;

/// Processes started by other threads, whose end the reaper reports back.
#[derive(Clone, Default)]
pub struct Watches(Arc<Mutex<Watched>>);

#[derive(Default)]
struct Watched {
    on_exit: HashMap<i32, OnExit>,
    companions: HashSet<i32>,
}

impl Watches {
    fn lock(&self) -> MutexGuard<'_, Watched> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Spawn `cmd` and have `on_exit` called when it ends. The lock is held across the
    /// spawn, so the reaper cannot reap a quick child before its watch is in place.
    pub fn spawn(&self, cmd: &mut Command, on_exit: OnExit) -> io::Result<Child> {
        let mut watched = self.lock();
        let child = cmd.spawn()?;
        watched.on_exit.insert(child.id() as i32, on_exit);
        Ok(child)
    }

    /// As [`Watches::spawn`], for a companion: a process of bosun's own that outlives
    /// the stop sequence and is killed last.
    pub fn spawn_companion(&self, cmd: &mut Command, on_exit: OnExit) -> io::Result<Child> {
        let mut watched = self.lock();
        let child = cmd.spawn()?;
        watched.on_exit.insert(child.id() as i32, on_exit);
        watched.companions.insert(child.id() as i32);
        Ok(child)
    }

    /// The companions still running (not yet reaped).
    pub fn companions(&self) -> Vec<i32> {
        self.lock().companions.iter().copied().collect()
    }

    fn take(&self, pid: Pid) -> Option<OnExit> {
        let mut watched = self.lock();
        watched.companions.remove(&pid.as_raw());
        watched.on_exit.remove(&pid.as_raw())
    }
}

/// Whether bosun still has children after a reaping pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Children {
    Remain,
    None,
}

/// Reaps every child; see the module documentation.
#[derive(Default)]
pub struct Reaper {
    watches: Watches,
    orphans: u64,
}

impl Reaper {
    pub fn new(watches: Watches) -> Self {
        Reaper {
            watches,
            orphans: 0,
        }
    }

    /// Orphans (processes neither bosun's own nor watched) reaped so far.
    pub fn orphans_reaped(&self) -> u64 {
        self.orphans
    }

    /// Reap every child that has ended. `own` is asked about each pid that no watch
    /// claims and answers whether it is one of the supervisor's own (worker, pre-stop);
    /// the rest are counted as orphans.
    pub fn reap(&mut self, mut own: impl FnMut(Pid, Exit) -> bool) -> Children {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return Children::Remain,
                Ok(status) => {
                    let Some((pid, exit)) = Exit::from_wait(status) else {
                        continue;
                    };
                    if let Some(on_exit) = self.watches.take(pid) {
                        on_exit(exit);
                    } else if !own(pid, exit) {
                        self.orphans += 1;
                        tracing::debug!(pid = pid.as_raw(), %exit, "reaped orphan");
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => return Children::None,
                Err(errno) => {
                    tracing::warn!(%errno, "waitpid failed");
                    return Children::Remain;
                }
            }
        }
    }
}
