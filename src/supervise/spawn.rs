//! Starting the worker (and the pre-stop hook): its own process group, bosun's cwd,
//! environment and standard streams, a clean signal state, and the terminal's
//! foreground when bosun has it; by `clone(CLONE_VM | CLONE_VFORK)`, the cheapest way
//! to start a process, since it runs in every container start.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

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
/// The program is looked up in `PATH` as `execvp` does.
pub fn worker(argv: &[String]) -> Result<Pid, SpawnError> {
    let (program, _) = argv.split_first().ok_or_else(|| SpawnError::NotFound {
        path: String::new(),
    })?;
    vfork_exec(program, argv, holds_terminal_foreground())
}

/// Start `sh -c script` in its own process group (the pre-stop hook).
pub fn shell(script: &str) -> Result<Pid, SpawnError> {
    vfork_exec(
        "/bin/sh",
        &["/bin/sh".into(), "-c".into(), script.into()],
        false,
    )
}

/// What the child of [`vfork_exec`] needs, all prepared by the parent: the child
/// shares bosun's memory and must not allocate.
struct Plan {
    /// Full paths to try, in `PATH` order (one when the program names a path).
    candidates: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: *const *const libc::c_char,
    take_foreground: bool,
    /// Set by the child when no candidate could be executed.
    errno: AtomicI32,
}

/// The hot path of every container start: `clone(CLONE_VM | CLONE_VFORK)`, as
/// `posix_spawn` does, so nothing of bosun's memory is copied and bosun resumes as
/// soon as the worker has been executed. Unlike glibc's `posix_spawn` the child resets
/// every signal, glibc's own 32 and 33 included, to its default.
fn vfork_exec(program: &str, argv: &[String], take_foreground: bool) -> Result<Pid, SpawnError> {
    let not_found = || SpawnError::NotFound {
        path: program.to_owned(),
    };
    let cstr = |s: &[u8]| CString::new(s).map_err(|_| not_found());
    let args: Vec<CString> = argv
        .iter()
        .map(|a| cstr(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let candidates = if program.contains('/') {
        vec![cstr(program.as_bytes())?]
    } else {
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
        path.as_bytes()
            .split(|b| *b == b':')
            .map(|dir| {
                let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
                cstr(&[dir, b"/", program.as_bytes()].concat())
            })
            .collect::<Result<_, _>>()?
    };
    let mut argv_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    extern "C" {
        static environ: *const *const libc::c_char;
    }
    let plan = Plan {
        candidates,
        argv: argv_ptrs,
        // SAFETY: reading the `environ` pointer; bosun never changes its environment.
        envp: unsafe { environ },
        take_foreground,
        errno: AtomicI32::new(0),
    };
    let mut stack = vec![0u8; CHILD_STACK];
    // SAFETY: the stack grows down from the end of `stack`, which outlives the child's
    // use of it: with CLONE_VFORK, clone returns only once the child has executed the
    // worker or exited. `plan` likewise. The child only makes system calls.
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(CHILD_STACK & !15);
        libc::clone(
            child,
            top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::addr_of!(plan) as *mut libc::c_void,
        )
    };
    if pid < 0 {
        return Err(SpawnError::Failed {
            path: program.to_owned(),
            source: io::Error::last_os_error(),
        });
    }
    let pid = Pid::from_raw(pid);
    match plan.errno.load(Ordering::Acquire) {
        0 => Ok(pid),
        errno => {
            // It never ran: reap it here, on the supervisor thread (waitpid's owner),
            // so that it is not counted as an orphan.
            let _ = nix::sys::wait::waitpid(pid, None);
            Err(SpawnError::from_io(
                program,
                io::Error::from_raw_os_error(errno),
            ))
        }
    }
}

/// The child's stack: it makes system calls only.
const CHILD_STACK: usize = 32 * 1024;

/// In the child of [`vfork_exec`], sharing bosun's memory: clean signal state, own
/// process group, the terminal's foreground if bosun had it, then exec as `execvp`
/// would (on to the next `PATH` entry after ENOENT or EACCES, EACCES reported if no
/// entry could be run).
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `Plan`, alive until this child execs or exits.
    let plan = unsafe { &*(arg as *const Plan) };
    // Signals stay blocked (bosun's mask, inherited) until the dispositions are reset.
    reset_dispositions();
    // SAFETY: setpgid, ioctl and getpid are plain system calls with valid arguments.
    unsafe {
        libc::setpgid(0, 0);
        if plan.take_foreground {
            let me = libc::getpid();
            libc::ioctl(libc::STDIN_FILENO, libc::TIOCSPGRP, &me);
        }
    }
    unblock_all();
    let mut denied = false;
    let mut errno = libc::ENOENT;
    for path in &plan.candidates {
        // SAFETY: NUL-terminated path, NULL-terminated argv and envp arrays, all alive.
        unsafe { libc::execve(path.as_ptr(), plan.argv.as_ptr(), plan.envp) };
        errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::ENOENT);
        match errno {
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            _ => break,
        }
    }
    let errno = if denied && errno == libc::ENOENT {
        libc::EACCES
    } else {
        errno
    };
    plan.errno.store(errno, Ordering::Release);
    // SAFETY: _exit ends this child at once, running nothing of bosun's.
    unsafe { libc::_exit(127) }
}

/// Prepare `cmd` to start in a process group of its own, with a clean signal state:
/// nothing blocked (bosun blocks every signal it takes) and nothing ignored (the Rust
/// runtime ignores SIGPIPE). For the processes other threads start with pipes (health
/// checks, the AWS helper); the worker and the pre-stop hook go through `vfork_exec`.
pub fn in_own_group(cmd: &mut Command) -> &mut Command {
    cmd.process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // async-signal-safe functions (rt_sigaction, sigemptyset, sigprocmask).
    unsafe { cmd.pre_exec(reset_signals) }
}

/// In the child: every signal back to its default disposition and nothing blocked, so
/// the worker starts as if from a fresh shell, whatever bosun (or whoever started
/// bosun) blocked or ignored.
fn reset_signals() -> io::Result<()> {
    reset_dispositions();
    unblock_all();
    Ok(())
}

/// Every signal to SIG_DFL. The raw system call reaches the signals glibc keeps for
/// itself (32, 33), which its own posix_spawn leaves ignored. Async-signal-safe.
fn reset_dispositions() {
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
}

/// Nothing blocked. Async-signal-safe.
fn unblock_all() {
    let empty: u64 = 0;
    // SAFETY: rt_sigprocmask with a valid pointer to an empty 8-byte kernel sigset and
    // no old-set pointer.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        );
    }
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
