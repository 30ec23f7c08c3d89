//! bosun's side of `bosun-aws`, the helper process that holds the AWS SDK.
//!
//! bosun itself never links the SDK: it is most of the weight of a full build, and
//! PID 1 of every container would pay for it in start-up time and memory, and a
//! fault in it would take the worker down. When `--metrics cloudwatch` or
//! `--queue-url` is set, the metrics loop starts `bosun-aws` (found next to bosun's
//! own executable, else on `PATH`) and speaks to it in JSON lines over its standard
//! input and output: one [`Request`], one [`Reply`] with the same id. The helper is a
//! *companion* of the supervisor: the stop sequence does not wait for it, it is killed
//! and reaped last, after the final flush. If it dies it is started again at the next
//! interval; the worker never notices.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::pipe;

use super::wire::{Args, Reply, Request};
use super::{Dimensions, Quiet};
use crate::supervise::reaper::Watches;
use crate::supervise::spawn;

/// The helper's executable name.
pub const HELPER: &str = "bosun-aws";

/// Where `bosun-aws` is: beside bosun's own executable, else the first on `PATH`.
pub fn locate() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(HELPER)));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(HELPER));
    beside.into_iter().chain(on_path).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// How to start the helper.
#[derive(Debug, Clone)]
pub struct Spec {
    pub path: PathBuf,
    pub args: Vec<String>,
}

impl Spec {
    /// The helper for calls of its own (no metrics, no queue).
    pub fn plain(path: PathBuf, log_format: crate::config::LogFormat) -> Spec {
        let args = Args {
            log_format,
            ..Args::default()
        };
        Spec {
            path,
            args: args.to_args(),
        }
    }

    /// The helper's command line for this configuration.
    pub fn new(
        path: PathBuf,
        cfg: &super::Config,
        dims: &Dimensions,
        ecs_service: Option<(&str, &str)>,
    ) -> Spec {
        let args = Args {
            namespace: cfg.namespace.clone(),
            cloudwatch: cfg.has(crate::config::MetricsSink::Cloudwatch),
            high_resolution: cfg.interval < Duration::from_secs(60),
            queue_url: cfg.queue_url.clone(),
            dimensions: dims
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect(),
            ecs_service: ecs_service.map(|(c, s)| (c.to_owned(), s.to_owned())),
            log_format: cfg.log_format,
        };
        Spec {
            path,
            args: args.to_args(),
        }
    }
}

/// A running helper.
struct Running {
    pid: i32,
    input: pipe::Sender,
    output: Lines<BufReader<pipe::Receiver>>,
}

/// After this many calls in a row without an answer the helper is taken for hung,
/// killed and started afresh (one call may rightly take long: the SDK retries).
const UNANSWERED_LIMIT: u32 = 3;

/// The helper, started on first use and again after it died or hung.
pub struct Helper {
    spec: Spec,
    watches: Watches,
    running: Option<Running>,
    next_id: u64,
    unanswered: u32,
    quiet: Quiet,
}

impl Helper {
    pub fn new(spec: Spec, watches: Watches) -> Helper {
        Helper {
            spec,
            watches,
            running: None,
            next_id: 0,
            unanswered: 0,
            quiet: Quiet::default(),
        }
    }

    /// The pid of the running helper, if any.
    pub fn pid(&self) -> Option<i32> {
        self.running.as_ref().map(|r| r.pid)
    }

    fn start(&mut self) -> io::Result<Running> {
        let mut cmd = Command::new(&self.spec.path);
        cmd.args(&self.spec.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        spawn::in_own_group(&mut cmd);
        let mut child = self.watches.spawn_companion(
            &mut cmd,
            Box::new(|exit| tracing::debug!(%exit, "AWS helper exited")),
        )?;
        let pid = child.id() as i32;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other("the helper's pipes were not set up"));
        };
        let input = pipe::Sender::from_owned_fd(input.into())?;
        let output = pipe::Receiver::from_owned_fd(output.into())?;
        tracing::info!(pid, helper = %self.spec.path.display(), "AWS helper started");
        Ok(Running {
            pid,
            input,
            output: BufReader::new(output).lines(),
        })
    }

    /// Ask the helper, waiting at most `bound` for its reply. `None` when there was
    /// none (said once in the log while it lasts); the helper is restarted on the next
    /// call when it died, or after 3 calls in a row it left unanswered.
    pub async fn call(
        &mut self,
        make: impl FnOnce(u64) -> Request,
        bound: Duration,
    ) -> Option<Reply> {
        self.next_id += 1;
        let request = make(self.next_id);
        let answer = tokio::time::timeout(bound, self.exchange(&request)).await;
        match answer {
            Ok(Ok(reply)) => {
                self.unanswered = 0;
                self.quiet.recovered("AWS helper");
                Some(reply)
            }
            Ok(Err(e)) => {
                self.quiet.warn("AWS helper", &e.to_string());
                self.stop();
                None
            }
            Err(_) => {
                self.unanswered += 1;
                tracing::debug!(id = request.id(), "the AWS helper did not answer in time");
                if self.unanswered >= UNANSWERED_LIMIT {
                    let pid = self.pid().unwrap_or(0);
                    self.quiet.warn(
                        "AWS helper",
                        &format!("pid {pid} left {UNANSWERED_LIMIT} calls unanswered: restarted"),
                    );
                    self.stop();
                }
                None
            }
        }
    }

    async fn exchange(&mut self, request: &Request) -> io::Result<Reply> {
        if self.running.is_none() {
            self.running = Some(self.start().map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot start {}: {e}", self.spec.path.display()),
                )
            })?);
        }
        let Some(run) = self.running.as_mut() else {
            return Err(io::Error::other("not running"));
        };
        let mut line = serde_json::to_vec(request)?;
        line.push(b'\n');
        run.input.write_all(&line).await?;
        // Replies to earlier requests that timed out are passed over.
        loop {
            let Some(text) = run.output.next_line().await? else {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("pid {} ended", run.pid),
                ));
            };
            match serde_json::from_str::<Reply>(&text) {
                Ok(reply) if reply.id == request.id() => return Ok(reply),
                Ok(_) => continue,
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("pid {}: unreadable reply {text:?}: {e}", run.pid),
                    ))
                }
            }
        }
    }

    /// Kill the helper's group (the reaper reaps it); its pipes close with `Running`.
    pub fn stop(&mut self) {
        self.unanswered = 0;
        if let Some(run) = self.running.take() {
            crate::supervise::tree::signal_group(
                nix::unistd::Pid::from_raw(run.pid),
                libc::SIGKILL,
            );
        }
    }
}
