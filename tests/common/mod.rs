//! Test harness: runs the real `bosun` binary, as PID 1 of a new PID namespace or as a
//! plain child (a subreaper), and bounds every wait: a hang kills everything and fails.

#![allow(dead_code)]

pub mod proxy;
pub mod world;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const BOSUN: &str = env!("CARGO_BIN_EXE_bosun");

/// The default bound for any wait in these tests.
pub const BOUND: Duration = Duration::from_secs(20);

/// How bosun runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// PID 1 of a new PID namespace: `unshare --pid --fork --kill-child --mount-proc`.
    Init,
    /// A plain child of the test: bosun makes itself a child subreaper.
    Subreaper,
}

pub const MODES: [Mode; 2] = [Mode::Init, Mode::Subreaper];

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Modes this machine can run: PID namespaces need root.
pub fn modes() -> Vec<Mode> {
    if is_root() {
        MODES.to_vec()
    } else {
        eprintln!("SKIP Init mode: not root, cannot unshare a PID namespace");
        vec![Mode::Subreaper]
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("bosun-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bosun run being observed.
pub struct Run {
    pub mode: Mode,
    child: Child,
    /// bosun's pid as seen from the test (outside any namespace).
    pub pid: i32,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<thread::JoinHandle<()>>,
    pub started: Instant,
}

/// How a bosun run ended.
#[derive(Debug)]
pub struct Ended {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// The command line that starts bosun in `mode`.
pub fn command<S: AsRef<std::ffi::OsStr>>(mode: Mode, args: &[S]) -> Command {
    let mut cmd = match mode {
        Mode::Init => {
            let mut c = Command::new("unshare");
            c.args(["--pid", "--fork", "--kill-child", "--mount-proc", BOSUN]);
            c
        }
        Mode::Subreaper => Command::new(BOSUN),
    };
    cmd.args(args);
    cmd.env_remove("BOSUN_LOG").env_remove("BOSUN_LOG_FORMAT");
    cmd
}

/// Start bosun with `args` (`--listen off` unless the test passes `--listen`).
pub fn start(mode: Mode, args: &[&str]) -> Run {
    let mut cmd = command(mode, &with_listen_off(args));
    cmd.stdin(Stdio::null());
    start_cmd(mode, cmd)
}

fn with_listen_off(args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let has_listen = args
        .iter()
        .take_while(|a| **a != "--")
        .any(|a| a.starts_with("--listen"));
    if !has_listen
        && !args
            .first()
            .is_some_and(|a| ["probe", "sidecar", "protect"].contains(a))
    {
        let at = if args.first() == Some(&"run") { 1 } else { 0 };
        v.extend(args[..at].iter().map(|s| s.to_string()));
        v.push("--listen".into());
        v.push("off".into());
        v.extend(args[at..].iter().map(|s| s.to_string()));
    } else {
        v.extend(args.iter().map(|s| s.to_string()));
    }
    v
}

pub fn start_cmd(mode: Mode, mut cmd: Command) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start bosun");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(pump(out, stdout.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(pump(err, stderr.clone()));
    }
    let started = Instant::now();
    let pid = match mode {
        Mode::Subreaper => child.id() as i32,
        Mode::Init => {
            let unshare = child.id() as i32;
            // A quick run may be over before it is seen: then there is no pid to signal.
            wait_until(Duration::from_secs(10), "unshare to fork bosun", || {
                children_of(unshare)
                    .first()
                    .copied()
                    .or((!alive(unshare)).then_some(-1))
            })
        }
    };
    Run {
        mode,
        child,
        pid,
        stdout,
        stderr,
        readers,
        started,
    }
}

fn pump(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 65536];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// The children of `pid`, from /proc.
pub fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Poll `f` until it returns Some, or fail after `bound`.
pub fn wait_until<T>(bound: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {bound:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next());
            state != Some("Z") && state != Some("X")
        }
        Err(_) => false,
    }
}

/// The state letter of `pid` (R, S, T, Z, ...).
pub fn state_of(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().next())
        .map(str::to_owned)
}

pub fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) };
}

impl Run {
    pub fn signal(&self, sig: i32) {
        assert!(self.pid > 0, "bosun exited before it could be signalled");
        kill(self.pid, sig);
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Wait until stdout contains `needle`.
    pub fn wait_stdout(&self, needle: &str) {
        let what = format!("{needle:?} on stdout");
        wait_until(BOUND, &what, || {
            self.stdout().contains(needle).then_some(())
        });
    }

    /// Wait until stderr (bosun's log) contains `needle`.
    pub fn wait_stderr(&self, needle: &str) {
        let what = format!("{needle:?} on stderr");
        wait_until(BOUND, &what, || {
            self.stderr().contains(needle).then_some(())
        });
    }

    /// Wait for `path` to exist.
    pub fn wait_file(&self, path: &Path) {
        let what = format!("file {}", path.display());
        wait_until(BOUND, &what, || path.exists().then_some(()));
    }

    /// Wait for bosun to exit (at most `bound`; past it, kill everything and fail).
    pub fn wait(mut self, bound: Duration) -> Ended {
        let deadline = Instant::now() + bound;
        loop {
            match self.child.try_wait().expect("try_wait") {
                Some(status) => {
                    let elapsed = self.started.elapsed();
                    for r in self.readers.drain(..) {
                        let _ = r.join();
                    }
                    return Ended {
                        code: status.code(),
                        stdout: self.stdout(),
                        stderr: self.stderr(),
                        elapsed,
                    };
                }
                None if Instant::now() > deadline => {
                    if self.pid > 0 {
                        kill(self.pid, libc::SIGKILL);
                    }
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "bosun did not exit within {bound:?}\nstdout:\n{}\nstderr:\n{}",
                        self.stdout(),
                        self.stderr()
                    );
                }
                None => thread::sleep(Duration::from_millis(2)),
            }
        }
    }
}

impl Drop for Run {
    /// A test that failed midway: bosun and everything under it go (a SIGKILLed bosun
    /// outside a PID namespace cannot take its worker with it).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if self.pid > 0 {
                // Stopped first, so that it starts nothing new meanwhile.
                kill(self.pid, libc::SIGSTOP);
                let mut tree = vec![self.pid];
                let mut i = 0;
                while i < tree.len() {
                    let more = children_of(tree[i]);
                    tree.extend(more);
                    i += 1;
                }
                for pid in tree {
                    kill(pid, libc::SIGKILL);
                }
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run bosun to completion with `args`, bounded.
pub fn run(mode: Mode, args: &[&str]) -> Ended {
    start(mode, args).wait(BOUND)
}

/// Start bosun with its endpoint on an ephemeral loopback port; returns the run and
/// the address it listens on (read from its log).
pub fn start_with_endpoint(mode: Mode, args: &[&str]) -> (Run, std::net::SocketAddr) {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    let at = if args.first() == Some(&"sidecar") || args.first() == Some(&"run") {
        1
    } else {
        0
    };
    let mut v: Vec<&str> = args[..at].to_vec();
    v.append(&mut all);
    v.extend_from_slice(&args[at..]);
    let mut cmd = command(mode, &v);
    cmd.stdin(Stdio::null());
    let run = start_cmd(mode, cmd);
    let addr = endpoint_addr(&run);
    (run, addr)
}

/// Where a running bosun's endpoint listens (read from its log).
pub fn endpoint_addr(run: &Run) -> std::net::SocketAddr {
    wait_until(BOUND, "endpoint listening", || {
        let err = run.stderr();
        let line = err.lines().find(|l| l.contains("endpoint listening"))?;
        line.split("addr=")
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// Run a command to completion with its output captured; past `bound`, kill it and
/// fail.
pub fn run_bounded(cmd: &mut Command, bound: Duration) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_output(child, bound)
}

/// `Child::wait_with_output`, bounded.
pub fn wait_output(child: Child, bound: Duration) -> std::process::Output {
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(bound) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            kill(pid, libc::SIGKILL);
            panic!("did not finish within {bound:?}");
        }
    }
}

/// A plain HTTP/1.1 GET with a blocking socket: (status, body). Bounded.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// Wait until GET `path` answers `code`; returns the body.
pub fn wait_http(addr: std::net::SocketAddr, path: &str, code: u16) -> String {
    let what = format!("GET {path} -> {code}");
    wait_until(BOUND, &what, || match http_get(addr, path) {
        Ok((c, body)) if c == code => Some(body),
        _ => None,
    })
}

/// A tiny HTTP server for checks to hit: answers every request with the status in
/// `status` (and `Location: /elsewhere` on 3xx). Runs until the test process ends.
pub fn status_server(status: Arc<std::sync::atomic::AtomicU16>) -> std::net::SocketAddr {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let code = status.load(std::sync::atomic::Ordering::SeqCst);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let extra = if (300..400).contains(&code) {
                "Location: /elsewhere\r\n"
            } else {
                ""
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    addr
}

/// `$MOTO_SERVER`, else the one `.ci/setup` puts in `.venv`.
fn moto_bin() -> PathBuf {
    std::env::var("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server"))
}

/// A `moto_server` on a free loopback port, killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        let bin = moto_bin();
        assert!(
            bin.exists(),
            "moto_server not found at {}: run `bash .ci/setup` first",
            bin.display()
        );
        let port = free_port();
        Moto::start_on(&bin, port, &[])
    }

    /// Start one with extra environment (`MOTO_ACCOUNT_ID`, ...).
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let port = free_port();
        Moto::start_on(&moto_bin(), port, env)
    }

    /// One that authorizes each request against the caller's IAM policies once
    /// [`Moto::enforce_iam`] is called (tests/moto_authorizing.py: signatures are
    /// not re-checked), logging each decision ([`Moto::decisions`]).
    pub fn start_authorizing() -> Moto {
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moto_authorizing.py");
        let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        Moto::spawn(&py, &[script.display().to_string()], port, &[])
    }

    /// From now on every request is authorized (moto's `/moto-api/reset-auth`).
    pub fn enforce_iam(&self) {
        self.post_body("/moto-api/reset-auth", "0");
    }

    /// The authorization decisions since the start, in order: (allowed, action).
    pub fn decisions(&self) -> Vec<(bool, String)> {
        let log = std::fs::read(self.dir().join("moto.err")).unwrap_or_default();
        String::from_utf8_lossy(&log)
            .lines()
            .filter_map(|l| {
                let (verdict, rest) = l.split_once(' ')?;
                let action = rest.split(' ').next()?.to_owned();
                match verdict {
                    "allowed" => Some((true, action)),
                    "denied" => Some((false, action)),
                    _ => None,
                }
            })
            .collect()
    }

    fn dir(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("bosun-moto-{}-{}", std::process::id(), self.port))
    }

    fn start_on(bin: &Path, port: u16, env: &[(&str, &str)]) -> Moto {
        Moto::spawn(bin, &[], port, env)
    }

    fn spawn(bin: &Path, pre: &[String], port: u16, env: &[(&str, &str)]) -> Moto {
        // moto's request recorder writes to a file in its working directory.
        let cwd = std::env::temp_dir().join(format!("bosun-moto-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cwd);
        std::fs::create_dir_all(&cwd).unwrap();
        let err = std::fs::File::create(cwd.join("moto.err")).unwrap();
        let child = Command::new(bin)
            .current_dir(&cwd)
            .args(pre)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start moto_server");
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_until(Duration::from_secs(60), "moto_server to answer", || {
            http_get(addr, "/moto-api/")
                .ok()
                .filter(|(c, _)| *c == 200)
                .map(|_| ())
        });
        Moto { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn post(&self, path: &str) {
        self.post_body(path, "");
    }

    fn post_body(&self, path: &str, body: &str) {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }

    /// Start recording requests (and forget earlier ones).
    pub fn record(&self) {
        self.post("/moto-api/recorder/reset-recording");
        self.post("/moto-api/recorder/start-recording");
    }

    /// The AWS actions recorded since `record`, in order.
    pub fn recorded_actions(&self) -> Vec<String> {
        self.recorded().into_iter().map(|(a, _)| a).collect()
    }

    /// The requests recorded since `record`: (action, body), in order.
    pub fn recorded(&self) -> Vec<(String, String)> {
        self.post("/moto-api/recorder/stop-recording");
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let (_, body) = http_get(addr, "/moto-api/recorder/download-recording").unwrap();
        let mut out = Vec::new();
        for line in body.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let target = v["headers"]["X-Amz-Target"]
                .as_str()
                .or(v["headers"]["x-amz-target"].as_str())
                .unwrap_or("");
            let mut body = v["body"].as_str().unwrap_or("").to_owned();
            if v["body_encoded"].as_bool() == Some(true) {
                body = String::from_utf8_lossy(&base64_decode(&body)).into_owned();
            }
            if let Some(a) = target.rsplit('.').next().filter(|a| !a.is_empty()) {
                out.push((a.to_owned(), body));
                continue;
            }
            if let Some(a) = body
                .split("Action=")
                .nth(1)
                .and_then(|r| r.split('&').next())
            {
                out.push((a.to_owned(), body));
                continue;
            }
            // REST APIs (Scheduler): method + path.
            let action = format!(
                "{} {}",
                v["method"].as_str().unwrap_or("?"),
                v["url"].as_str().unwrap_or("?")
            );
            out.push((action, body));
        }
        self.post("/moto-api/recorder/start-recording");
        out
    }

    /// Kill it (the port stays reserved for `restart`).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Start it again on the same port (empty, as moto keeps nothing).
    pub fn restart(&mut self) {
        let bin = moto_bin();
        let port = self.port;
        *self = Moto::start_on(&bin, port, &[]);
    }

    /// The environment that points the AWS SDK (bosun's and the test's) at it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        sdk_env(self.url())
    }

    /// An SDK config for the test's own calls.
    pub fn sdk_config(&self, rt: &tokio::runtime::Runtime) -> aws_config::SdkConfig {
        let url = self.url();
        rt.block_on(async move {
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(url)
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    "testing", "testing", None, None, "test",
                ))
                .load()
                .await
        })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The environment that points the AWS SDK at `endpoint` (moto, or a proxy before it).
pub fn sdk_env(endpoint: String) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The EMF documents bosun printed so far (lines of stdout that parse as JSON with
/// an `_aws` member).
pub fn emf_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect()
}

/// Standard base64 (moto's recorder encodes request bodies with it).
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter_map(val) {
        buf = (buf << 6) | u32::from(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

/// A distribution registry (Debian's `docker-registry`) on a free loopback port,
/// storing in a folder of its own; killed on drop. Docker trusts 127.0.0.0/8
/// registries over plain HTTP.
pub struct Registry {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = TempDir::new("registry");
        let port = free_port();
        let config = dir.path("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (apt-get install docker-registry; bash .ci/setup)");
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_until(Duration::from_secs(30), "the registry to answer", || {
            http_get(addr, "/v2/").ok().filter(|(c, _)| *c == 200)
        });
        Registry {
            child,
            port,
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Check recorded requests against botocore's models of the real APIs.
pub fn check_with_models(dir: &TempDir, recorded: &[proxy::Request]) {
    let lines: Vec<String> = recorded
        .iter()
        .map(|r| {
            serde_json::json!({
                "protocol": match r.protocol { proxy::Protocol::Json => "json", proxy::Protocol::Query => "query", proxy::Protocol::Rest => "rest" },
                "service": r.service, "action": r.action, "method": r.method, "path": r.path, "body": r.body,
            })
            .to_string()
        })
        .collect();
    let file = dir.path("requests.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws_models.py");
    let mut cmd = Command::new(py);
    cmd.arg(checker).arg(&file);
    let out = run_bounded(&mut cmd, std::time::Duration::from_secs(120));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report.contains(&format!("checked {} requests", recorded.len())),
        "{report}"
    );
}
