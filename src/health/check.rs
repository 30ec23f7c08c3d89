//! The three kinds of health check. A command runs as `/bin/sh -c` in a process group
//! of its own (killed with all its children on timeout) and is reaped by the
//! supervisor's reaper, never here; HTTP is a GET whose 2xx/3xx means healthy
//! (redirects are not followed); TCP is a connect.

use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::{truncate_keep_end, Outcome, OUTPUT_LIMIT};
use crate::supervise::reaper::Watches;
use crate::supervise::spawn;
use crate::supervise::status::Exit;
use crate::supervise::tree;

/// What to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `/bin/sh -c CMD`; exit 0 = healthy.
    Command(String),
    /// `http://host:port/path`; 2xx or 3xx = healthy.
    Http(String),
    /// `host:port`; a connect = healthy.
    Tcp(String),
}

impl std::fmt::Display for Check {
    /// What is watched, for log lines: `command 'pg_isready'`, `http://app:8080/health`, `tcp app:5432`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Command(script) => write!(f, "command '{script}'"),
            Check::Http(url) => f.write_str(url),
            Check::Tcp(addr) => write!(f, "tcp {addr}"),
        }
    }
}

impl Check {
    /// Run the check once, bounded by `timeout` (a timeout is a failure).
    pub async fn run(&self, timeout: Duration, watches: &Watches) -> Outcome {
        match self {
            Check::Command(script) => command(script, timeout, watches).await,
            Check::Http(url) => bounded(timeout, http(url)).await,
            Check::Tcp(addr) => bounded(timeout, tcp(addr)).await,
        }
    }
}

fn failed(output: impl Into<String>) -> Outcome {
    Outcome {
        ok: false,
        output: output.into(),
    }
}

fn timed_out(timeout: Duration) -> Outcome {
    failed(format!(
        "health check exceeded timeout ({}s)",
        timeout.as_secs_f64()
    ))
}

async fn bounded(timeout: Duration, check: impl std::future::Future<Output = Outcome>) -> Outcome {
    tokio::time::timeout(timeout, check)
        .await
        .unwrap_or_else(|_| timed_out(timeout))
}

async fn command(script: &str, timeout: Duration, watches: &Watches) -> Outcome {
    let (read_end, write_end) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return failed(format!("cannot create a pipe: {e}")),
    };
    let stderr_end = match write_end.try_clone() {
        Ok(fd) => fd,
        Err(e) => return failed(format!("cannot duplicate a pipe: {e}")),
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Exit>();
    let pid = {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::from(write_end))
            .stderr(Stdio::from(stderr_end));
        spawn::in_own_group(&mut cmd);
        let spawned = watches.spawn(
            &mut cmd,
            Box::new(move |exit| {
                let _ = done_tx.send(exit);
            }),
        );
        match spawned {
            Ok(child) => nix::unistd::Pid::from_raw(child.id() as i32),
            Err(e) => return failed(format!("cannot run /bin/sh -c {script:?}: {e}")),
        }
        // `cmd` (and with it bosun's copy of the pipe's write end) is dropped here, so
        // the reader sees the end of the output when the check's processes exit.
    };
    let reader = tokio::spawn(read_bounded(read_end));
    let exit = match tokio::time::timeout(timeout, done_rx).await {
        Ok(Ok(exit)) => exit,
        Ok(Err(_)) => {
            reader.abort();
            return failed("the supervisor stopped before the check ended");
        }
        Err(_) => {
            tree::signal_group(pid, libc::SIGKILL);
            reader.abort();
            return timed_out(timeout);
        }
    };
    // A background child of the check may hold the pipe open: take what is there.
    let output = match tokio::time::timeout(Duration::from_millis(100), reader).await {
        Ok(Ok(out)) => out,
        _ => String::new(),
    };
    let ok = exit == Exit::Code(0);
    let output = if ok || !output.is_empty() {
        output
    } else {
        format!("check failed: {exit}")
    };
    Outcome { ok, output }
}

/// Read a pipe to its end, keeping the last [`OUTPUT_LIMIT`] bytes.
async fn read_bounded(fd: OwnedFd) -> String {
    let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL).unwrap_or(0);
    let nonblock = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    let _ = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(nonblock));
    let Ok(mut rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rx.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * OUTPUT_LIMIT {
                    kept.drain(..kept.len() - OUTPUT_LIMIT);
                }
            }
        }
    }
    truncate_keep_end(&String::from_utf8_lossy(&kept), OUTPUT_LIMIT)
}

async fn http(url: &str) -> Outcome {
    match crate::http::get(url, 0).await {
        Ok((code, _)) => Outcome {
            ok: (200..400).contains(&code),
            output: format!("HTTP {code} from {url}"),
        },
        Err(e) => failed(format!("GET {url}: {e}")),
    }
}

async fn tcp(addr: &str) -> Outcome {
    match crate::resolve::connect(addr, crate::resolve::TIMEOUT).await {
        Ok(_) => Outcome {
            ok: true,
            output: format!("connected to {addr}"),
        },
        Err(e) => failed(format!("connect to {addr}: {e}")),
    }
}
