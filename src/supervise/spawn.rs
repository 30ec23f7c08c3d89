//! Starting the worker (and the pre-stop hook): its own process group, bosun's cwd,
//! environment and standard streams, a clean signal mask, and the terminal's
//! foreground when bosun has it.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::unistd::Pid;

/// Why the worker could not be started. Each maps to the exit code a shell would use.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot run '{path}': command not found")]
    NotFound { path: String },
    #[error("cannot run '{path}': not executable ({source})")]
    NotExecutable { path: String, source: io::Error },
    #[error("cannot run '{path}': {source}")]
    Failed { path: String, source: io::Error },
}

impl SpawnError {
    /// 127 when the command does not exist, 126 when it cannot be executed.
    pub fn exit_code(&self) -> u8 {
        match self {
            SpawnError::NotFound { .. } => 127,
            SpawnError::NotExecutable { .. } | SpawnError::Failed { .. } => 126,
        }
    }

    fn from_io(path: &str, source: io::Error) -> SpawnError {
        let path = path.to_owned();
        match source.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => SpawnError::NotFound { path },
            Some(libc::EACCES) | Some(libc::ENOEXEC) | Some(libc::EISDIR) | Some(libc::EPERM) => {
                SpawnError::NotExecutable { path, source }
            }
            _ => SpawnError::Failed { path, source },
        }
    }
}

/// Start `argv` in a new process group of its own; returns its pid (= its group id).
pub fn worker(argv: &[String]) -> Result<Pid, SpawnError> {
    let (program, args) = argv.split_first().ok_or_else(|| SpawnError::NotFound {
        path: String::new(),
    })?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    in_own_group(&mut cmd);
    if holds_terminal_foreground() {
        // SAFETY: the closure runs in the child between fork and exec and calls only
        // async-signal-safe functions (sigprocmask, getpid, tcsetpgrp).
        unsafe { cmd.pre_exec(take_terminal_foreground) };
    }
    let child = cmd.spawn().map_err(|e| SpawnError::from_io(program, e))?;
    Ok(Pid::from_raw(child.id() as i32))
}

/// Start `sh -c script` in its own process group (the pre-stop hook).
pub fn shell(script: &str) -> Result<Pid, SpawnError> {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script]);
    in_own_group(&mut cmd);
    let child = cmd.spawn().map_err(|e| SpawnError::from_io("/bin/sh", e))?;
    Ok(Pid::from_raw(child.id() as i32))
}

/// Prepare `cmd` to start in a process group of its own, with a clean signal state:
/// nothing blocked (bosun blocks every signal it takes) and nothing ignored (the Rust
/// runtime ignores SIGPIPE). Every process bosun starts goes through here.
pub fn in_own_group(cmd: &mut Command) -> &mut Command {
    cmd.process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // async-signal-safe functions (rt_sigaction, sigemptyset, sigprocmask).
    unsafe { cmd.pre_exec(reset_signals) }
}

/// In the child: every signal back to its default disposition and nothing blocked, so
/// the worker starts as if from a fresh shell, whatever bosun (or whoever started
/// bosun) blocked or ignored. The raw system call reaches the signals glibc keeps for
/// itself (32, 33), which its own posix_spawn leaves ignored.
fn reset_signals() -> io::Result<()> {
    /// The kernel's `struct sigaction` for `rt_sigaction` (x86_64 and aarch64 layout).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signo in 1..=64 {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid pointer to a kernel sigaction installing
        // SIG_DFL (no handler code), no old-action pointer, and the kernel's 8-byte
        // sigset size; async-signal-safe. Failures (none expected) are harmless.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signo,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            );
        }
    }
    // SAFETY: a local zero-initialised sigset_t emptied by sigemptyset; sigprocmask is
    // async-signal-safe and gets valid arguments.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether stdin is a terminal whose foreground process group is bosun's: then the
/// worker, in a group of its own, must become the foreground, or reading the terminal
/// would stop it (SIGTTIN) and Ctrl-C would not reach it.
fn holds_terminal_foreground() -> bool {
    let stdin = io::stdin();
    match nix::unistd::tcgetpgrp(&stdin) {
        Ok(fg) => fg == nix::unistd::getpgrp(),
        Err(_) => false,
    }
}

/// In the child: make its own group the terminal's foreground. SIGTTOU is blocked
/// around the call, since a background group asking for the terminal would get it.
fn take_terminal_foreground() -> io::Result<()> {
    // SAFETY: sigset operations on a local, zero-initialised sigset_t; sigprocmask,
    // getpid and tcsetpgrp are async-signal-safe and take only valid arguments.
    unsafe {
        let mut ttou: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut ttou);
        libc::sigaddset(&mut ttou, libc::SIGTTOU);
        libc::sigprocmask(libc::SIG_BLOCK, &ttou, &mut old);
        libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid());
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_unexecutable_commands_map_to_126_127() {
        let e = worker(&["/nonexistent/worker".into()]).unwrap_err();
        assert_eq!(e.exit_code(), 127);
        assert!(e.to_string().contains("/nonexistent/worker"), "{e}");
        let e = worker(&["/etc/passwd".into()]).unwrap_err();
        assert_eq!(e.exit_code(), 126, "{e}");
    }
}
