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

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::pipe;

use super::sample::Sample;
use super::{Dimensions, Quiet};
use crate::config::LogFormat;
use crate::supervise::reaper::Watches;
use crate::supervise::spawn;

/// The helper's executable name.
pub const HELPER: &str = "bosun-aws";

/// What bosun asks of the helper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Read the queue's depth (and the service's running tasks) now.
    Depth { id: u64 },
    /// Queue a sample for PutMetricData (answered at once, before it is sent).
    Publish { id: u64, sample: Sample },
    /// Send everything queued within `within_ms`; the reply says what is left.
    Flush { id: u64, within_ms: u64 },
}

impl Request {
    pub fn id(&self) -> u64 {
        match self {
            Request::Depth { id } | Request::Publish { id, .. } | Request::Flush { id, .. } => *id,
        }
    }
}

/// The queue figures of one [`Request::Depth`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Depth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
    /// The service's running tasks (ECS DescribeServices or `BOSUN_RUNNING_TASKS`).
    pub running_tasks: Option<u64>,
}

/// The helper's answer, with its CloudWatch counters as they stand.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<Depth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Samples published to CloudWatch so far.
    #[serde(default)]
    pub published: u64,
    /// Samples dropped so far (buffer full, or rejected by CloudWatch).
    #[serde(default)]
    pub dropped: u64,
    /// Samples still waiting to be sent.
    #[serde(default)]
    pub unsent: u64,
}

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
    /// The helper's command line for this configuration.
    pub fn new(
        path: PathBuf,
        cfg: &super::Config,
        dims: &Dimensions,
        ecs_service: Option<(&str, &str)>,
    ) -> Spec {
        let mut args = vec!["--namespace".to_owned(), cfg.namespace.clone()];
        if cfg.has(crate::config::MetricsSink::Cloudwatch) {
            args.push("--cloudwatch".into());
        }
        if cfg.interval < Duration::from_secs(60) {
            args.push("--high-resolution".into());
        }
        if let Some(url) = &cfg.queue_url {
            args.extend(["--queue-url".to_owned(), url.clone()]);
        }
        for (name, value) in dims {
            args.extend(["--dimension".to_owned(), format!("{name}={value}")]);
        }
        if let Some((cluster, service)) = ecs_service {
            args.extend([
                "--ecs-cluster".to_owned(),
                cluster.to_owned(),
                "--ecs-service".to_owned(),
                service.to_owned(),
            ]);
        }
        if cfg.log_format == LogFormat::Json {
            args.extend(["--log-format".to_owned(), "json".to_owned()]);
        }
        Spec { path, args }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_lines_round_trip() {
        let req = Request::Publish {
            id: 7,
            sample: Sample {
                timestamp_ms: 1,
                cpu_utilization: Some(12.5),
                ..Sample::default()
            },
        };
        let text = serde_json::to_string(&req).unwrap();
        assert!(text.starts_with(r#"{"op":"publish","id":7,"#), "{text}");
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), req);
        let reply: Reply = serde_json::from_str(r#"{"id":3,"published":2}"#).unwrap();
        assert_eq!((reply.id, reply.published, reply.depth), (3, 2, None));
    }
}
