//! `bosun protect` and `PUT /protection` against a local HTTP server implementing the
//! ECS agent's documented task protection API: passed on, renewed before it expires,
//! cleared when turned off, at a restart of the worker and when bosun exits.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::*;

type Seen = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// The agent: records each request (request line, JSON body) and answers as the
/// agent documents, with a failure for a task that cannot be protected when `fail`.
fn agent(fail: bool) -> (SocketAddr, Seen) {
    let a = Agent::default();
    if fail {
        a.fail_next.store(usize::MAX, Ordering::SeqCst);
    }
    a.serve()
}

/// How the agent answers: `lease_secs` after now as the `ExpirationDate` (a fixed date
/// in the past when 0), and a failure for the next `fail_next` requests.
#[derive(Default, Clone)]
struct Agent {
    lease_secs: u64,
    fail_next: Arc<AtomicUsize>,
}

impl Agent {
    fn serve(self) -> (SocketAddr, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Seen = Arc::default();
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then the body by Content-Length.
                let (head, mut body) = loop {
                    let n = s.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break (String::new(), Vec::new());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (
                            String::from_utf8_lossy(&buf[..i]).into_owned(),
                            buf[i + 4..].to_vec(),
                        );
                    }
                };
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                while body.len() < len {
                    let n = s.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                let line = head.lines().next().unwrap_or("").to_owned();
                let json: serde_json::Value =
                    serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                log.lock().unwrap().push((line.clone(), json.clone()));
                let arn =
                "arn:aws:ecs:us-west-2:111122223333:task/default/158d1c8083dd49d6b527399fd6414f5c";
                let reply = if !line.starts_with("PUT /api/task-1/task-protection/v1/state ") {
                    serde_json::json!({ "error": { "Arn": arn, "Code": "InvalidRequest", "Message": "not found" } })
                } else if self
                    .fail_next
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    serde_json::json!({ "failure": { "Arn": arn, "Reason": "TASK_NOT_VALID", "Detail": null } })
                } else {
                    let on = json["ProtectionEnabled"].as_bool().unwrap_or(false);
                    let mut p = serde_json::json!({ "ProtectionEnabled": on, "TaskArn": arn });
                    if on {
                        p["ExpirationDate"] = serde_json::json!(expiration(self.lease_secs));
                    }
                    serde_json::json!({ "protection": p })
                };
                let text = reply.to_string();
                let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
            }
        });
        (addr, seen)
    }
}

/// The agent's `ExpirationDate` `secs` from now; a fixed past date for 0.
fn expiration(secs: u64) -> String {
    if secs == 0 {
        return "2026-11-24T12:00:00.000Z".into();
    }
    let at = SystemTime::now() + Duration::from_secs(secs);
    let at = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    aws_sdk_sqs::primitives::DateTime::from_secs(at as i64)
        .fmt(aws_sdk_sqs::primitives::DateTimeFormat::DateTime)
        .unwrap()
}

fn protect(args: &[&str], agent: Option<SocketAddr>) -> (Option<i32>, String, String) {
    let mut cmd = std::process::Command::new(BOSUN);
    // Straight to the agent: no bosun of another test is asked.
    cmd.arg("protect")
        .args(args)
        .env_remove("ECS_AGENT_URI")
        .env("BOSUN_LISTEN", "off");
    if let Some(a) = agent {
        cmd.env("ECS_AGENT_URI", format!("http://{a}/api/task-1"));
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn protect_on_and_off_call_the_agent() {
    let (addr, seen) = agent(false);
    let (code, out, err) = protect(&["on", "--minutes", "30"], Some(addr));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "protected until 2026-11-24T12:00:00.000Z");
    let (code, out, _) = protect(&["off"], Some(addr));
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), "not protected");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].1,
        serde_json::json!({ "ProtectionEnabled": true, "ExpiresInMinutes": 30 })
    );
    assert_eq!(seen[1].1, serde_json::json!({ "ProtectionEnabled": false }));
}

#[test]
fn protect_reports_failures_and_missing_agent() {
    let (addr, _) = agent(true);
    let (code, _, err) = protect(&["on"], Some(addr));
    assert_eq!(code, Some(1));
    assert!(err.contains("TASK_NOT_VALID"), "{err}");
    let (code, _, err) = protect(&["on"], None);
    assert_eq!(code, Some(1));
    assert!(err.contains("ECS_AGENT_URI is not set"), "{err}");
    let (code, _, err) = protect(&["on", "--minutes", "0"], None);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, _) = protect(&["maybe"], None);
    assert_eq!(code, Some(2));
}

#[test]
fn the_endpoint_passes_protection_on_to_the_agent() {
    let (agent_addr, seen) = agent(false);
    let mut cmd = command(
        Mode::Subreaper,
        &[
            "--listen",
            "127.0.0.1:0",
            "--",
            "sh",
            "-c",
            "trap 'exit 0' TERM; while :; do sleep 0.05; done",
        ],
    );
    cmd.env("ECS_AGENT_URI", format!("http://{agent_addr}/api/task-1"))
        .stdin(std::process::Stdio::null());
    let run = start_cmd(Mode::Subreaper, cmd);
    let addr = endpoint_addr(&run);
    let body = r#"{"ProtectionEnabled":true,"ExpiresInMinutes":5}"#;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(s, "PUT /protection HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains(r#""ProtectionEnabled":true"#), "{resp}");
    assert_eq!(
        seen.lock().unwrap()[0].1,
        serde_json::json!({ "ProtectionEnabled": true, "ExpiresInMinutes": 5 })
    );
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(BOUND).code, Some(0));
}

/// bosun with its endpoint, the agent at `agent`, and `worker` as its worker.
fn bosun_with_agent(agent: SocketAddr, extra: &[&str], worker: &str) -> (Run, SocketAddr) {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", worker]);
    let mut cmd = command(Mode::Subreaper, &args);
    cmd.env("ECS_AGENT_URI", format!("http://{agent}/api/task-1"))
        .env("BOSUN_LOG", "bosun=debug")
        .stdin(std::process::Stdio::null());
    let run = start_cmd(Mode::Subreaper, cmd);
    let addr = endpoint_addr(&run);
    (run, addr)
}

/// `bosun protect` as a worker runs it: through the bosun listening at `bosun`.
fn protect_via(bosun: SocketAddr, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = std::process::Command::new(BOSUN);
    cmd.arg("protect")
        .args(args)
        .env_remove("ECS_AGENT_URI")
        .env("BOSUN_LISTEN", bosun.to_string());
    let out = run_bounded(&mut cmd, BOUND);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The bodies the agent was sent, in order.
fn bodies(seen: &Seen) -> Vec<serde_json::Value> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(_, b)| b.clone())
        .collect()
}

const LOOP: &str = "trap 'exit 0' TERM; while :; do sleep 0.05; done";

#[test]
fn protection_is_renewed_until_turned_off_and_cleared_when_bosun_exits() {
    // The agent grants 4 s at a time: bosun renews every 2 s or so.
    let (agent_addr, seen) = Agent {
        lease_secs: 4,
        ..Agent::default()
    }
    .serve();
    let (run, addr) = bosun_with_agent(agent_addr, &[], LOOP);
    let on = serde_json::json!({ "ProtectionEnabled": true, "ExpiresInMinutes": 5 });
    let off = serde_json::json!({ "ProtectionEnabled": false });

    let (code, out, err) = protect_via(addr, &["on", "--minutes", "5"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("protected until "), "{out}");
    // The first grant and two renewals, each for the minutes asked.
    wait_until(Duration::from_secs(15), "two renewals", || {
        (bodies(&seen).len() >= 3).then_some(())
    });
    assert!(
        bodies(&seen).iter().all(|b| *b == on),
        "{:?}",
        bodies(&seen)
    );

    let (code, out, err) = protect_via(addr, &["off"]);
    assert_eq!((code, out.trim()), (Some(0), "not protected"), "{err}");
    let after_off = bodies(&seen);
    assert_eq!(after_off.last(), Some(&off));
    // No renewal after `off`: three renewal periods pass with nothing sent.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(bodies(&seen).len(), after_off.len(), "{:?}", bodies(&seen));

    // On again, then bosun is stopped: it clears the protection before it exits.
    let (code, _, err) = protect_via(addr, &["on"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        bodies(&seen).last(),
        Some(&serde_json::json!({ "ProtectionEnabled": true, "ExpiresInMinutes": 60 }))
    );
    run.signal(libc::SIGTERM);
    let ended = run.wait(BOUND);
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    assert_eq!(bodies(&seen).last(), Some(&off), "{}", ended.stderr);
    assert!(
        ended
            .stderr
            .contains("task protection off: bosun is exiting"),
        "{}",
        ended.stderr
    );
}

#[test]
fn a_failed_renewal_is_logged_and_retried() {
    let agent = Agent {
        lease_secs: 4,
        ..Agent::default()
    };
    let fail_next = agent.fail_next.clone();
    let (agent_addr, seen) = agent.serve();
    let (run, addr) = bosun_with_agent(agent_addr, &[], LOOP);
    let (code, _, err) = protect_via(addr, &["on", "--minutes", "1"]);
    assert_eq!(code, Some(0), "{err}");
    // The next two renewals fail; the one after them goes through.
    fail_next.store(2, Ordering::SeqCst);
    wait_until(
        Duration::from_secs(20),
        "renewed after two failures",
        || (fail_next.load(Ordering::SeqCst) == 0 && bodies(&seen).len() >= 4).then_some(()),
    );
    let stderr = run.stderr();
    assert_eq!(
        stderr.matches("task protection renewal failed").count(),
        2,
        "{stderr}"
    );
    assert!(stderr.contains("TASK_NOT_VALID"), "{stderr}");
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(BOUND).code, Some(0));
}

#[test]
fn a_restart_of_the_worker_clears_its_protection() {
    let (agent_addr, seen) = Agent::default().serve();
    let dir = TempDir::new("protect-restart");
    let done = dir.0.join("done");
    // The worker fails when told to (the file appears) and is restarted.
    let worker = format!(
        "trap 'exit 0' TERM; while [ ! -e {d} ]; do sleep 0.05; done; rm {d}; exit 3",
        d = done.display()
    );
    let (run, addr) = bosun_with_agent(agent_addr, &["--restart", "on-failure"], &worker);
    let (code, _, err) = protect_via(addr, &["on"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(bodies(&seen).len(), 1);
    std::fs::write(&done, "").unwrap();
    wait_until(Duration::from_secs(10), "protection cleared", || {
        run.stderr()
            .contains("task protection off: the worker was restarted")
            .then_some(())
    });
    assert_eq!(
        bodies(&seen).last(),
        Some(&serde_json::json!({ "ProtectionEnabled": false }))
    );
    run.signal(libc::SIGTERM);
    let ended = run.wait(BOUND);
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    // Nothing held any more: nothing to clear at exit.
    assert_eq!(bodies(&seen).len(), 2, "{:?}", bodies(&seen));
}

#[test]
fn protect_goes_to_the_agent_when_no_bosun_listens() {
    let (agent_addr, seen) = agent(false);
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = free.local_addr().unwrap();
    drop(free);
    let mut cmd = std::process::Command::new(BOSUN);
    cmd.args(["protect", "on", "--minutes", "7"])
        .env("ECS_AGENT_URI", format!("http://{agent_addr}/api/task-1"))
        .env("BOSUN_LISTEN", nobody.to_string());
    let out = run_bounded(&mut cmd, BOUND);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "no bosun listens on {nobody}: asking the ECS agent directly (not renewed)"
        )),
        "{err}"
    );
    assert_eq!(
        bodies(&seen),
        [serde_json::json!({ "ProtectionEnabled": true, "ExpiresInMinutes": 7 })]
    );
}

#[test]
fn the_endpoint_refuses_minutes_out_of_range() {
    let (agent_addr, seen) = agent(false);
    let (run, addr) = bosun_with_agent(agent_addr, &[], LOOP);
    for bad in ["0", "2881", "\"ten\""] {
        let body = format!(r#"{{"ProtectionEnabled":true,"ExpiresInMinutes":{bad}}}"#);
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "PUT /protection HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
        assert!(resp.contains("ExpiresInMinutes must be 1..=2880"), "{resp}");
    }
    assert!(bodies(&seen).is_empty());
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(BOUND).code, Some(0));
}

/// Protection is renewed only within the minutes the worker asked for: a worker that
/// hangs (with no health check to stop it) does not hold its task against every
/// deployment and scale-in for as long as bosun lives. Here the agent grants 20 s at a
/// time and the worker asks for 1 minute: renewals stop once that minute is covered.
#[test]
fn renewal_stops_when_the_minutes_asked_run_out() {
    let (agent_addr, seen) = Agent {
        lease_secs: 20,
        ..Agent::default()
    }
    .serve();
    let (run, addr) = bosun_with_agent(agent_addr, &[], LOOP);
    let (code, _, err) = protect_via(addr, &["on", "--minutes", "1"]);
    assert_eq!(code, Some(0), "{err}");
    wait_until(Duration::from_secs(90), "the end of the renewals", || {
        run.stderr()
            .contains("task protection not renewed: the minutes asked have run out")
            .then_some(())
    });
    let sent = bodies(&seen);
    // The grant and its renewals, none past the minute (each asks for what is left).
    assert!((3..=5).contains(&sent.len()), "{sent:?}");
    assert!(
        sent.iter()
            .all(|b| *b == serde_json::json!({ "ProtectionEnabled": true, "ExpiresInMinutes": 1 })),
        "{sent:?}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(bodies(&seen).len(), sent.len());
    run.signal(libc::SIGTERM);
    let ended = run.wait(BOUND);
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
}
