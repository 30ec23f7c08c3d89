//! bosun's descendants, found in `/proc`: the processes that must be gone before bosun
//! exits, including those that left the worker's process group or session. As PID 1
//! or as a child subreaper bosun inherits every orphan below it, so the tree under its
//! own pid is exactly what it is responsible for (and nothing of a neighbouring
//! container sharing the PID namespace).

use std::collections::HashMap;
use std::fs;
use std::io;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The parent of `pid`, read from `/proc/PID/stat`.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself hold ") ".
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_ascii_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// Every live (or not yet reaped) descendant of `root`, but the processes in `skip`
/// and everything below them.
pub fn descendants(root: Pid, skip: &[i32]) -> io::Result<Vec<Pid>> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(ppid) = parent_of(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut todo = vec![root.as_raw()];
    while let Some(p) = todo.pop() {
        if let Some(kids) = children.get(&p) {
            for &k in kids.iter().filter(|k| !skip.contains(k)) {
                found.push(Pid::from_raw(k));
                todo.push(k);
            }
        }
    }
    Ok(found)
}

/// Send `signo` to each pid, ignoring those already gone. Returns how many were sent.
pub fn signal_each(pids: &[Pid], signo: i32) -> usize {
    pids.iter()
        .filter(|pid| {
            // SAFETY: kill(2) with a positive pid and a valid signal number has no
            // memory-safety preconditions; the raw form lets real-time signals through.
            unsafe { libc::kill(pid.as_raw(), signo) == 0 }
        })
        .count()
}

/// Send `signo` to the process group `pgid`; false when the group is gone.
pub fn signal_group(pgid: Pid, signo: i32) -> bool {
    // SAFETY: as in `signal_each`; a negative pid addresses the process group.
    unsafe { libc::kill(-pgid.as_raw(), signo) == 0 }
}

/// Send `signo` to one process; false when it is gone.
pub fn signal_one(pid: Pid, signo: i32) -> bool {
    // SAFETY: as in `signal_each`.
    unsafe { libc::kill(pid.as_raw(), signo) == 0 }
}

/// Last resort when `/proc` cannot be read: the worker's group, and everything in the
/// PID namespace when bosun is its init.
pub fn kill_without_proc(worker_group: Option<Pid>, is_init: bool) {
    if let Some(pgid) = worker_group {
        let _ = kill(Pid::from_raw(-pgid.as_raw()), Signal::SIGKILL);
    }
    if is_init {
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn finds_children_and_grandchildren() {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .spawn()
            .unwrap();
        let sh = Pid::from_raw(child.id() as i32);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let found = loop {
            let found = descendants(sh, &[]).unwrap();
            if found.len() >= 2 || std::time::Instant::now() > deadline {
                break found;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(found.len(), 2, "{found:?}");
        signal_each(&found, libc::SIGKILL);
        signal_one(sh, libc::SIGKILL);
        child.wait().unwrap();
    }
}
