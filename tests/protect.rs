//! `bosun protect` and `PUT /protection` against a local HTTP server implementing the
//! ECS agent's documented task protection API.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use common::*;

type Seen = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// The agent: records each request (request line, JSON body) and answers as the
/// agent documents, with a failure for a task that cannot be protected when `fail`.
fn agent(fail: bool) -> (SocketAddr, Seen) {
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
            } else if fail {
                serde_json::json!({ "failure": { "Arn": arn, "Reason": "TASK_NOT_VALID", "Detail": null } })
            } else {
                let on = json["ProtectionEnabled"].as_bool().unwrap_or(false);
                let mut p = serde_json::json!({ "ProtectionEnabled": on, "TaskArn": arn });
                if on {
                    p["ExpirationDate"] = serde_json::json!("2026-11-24T12:00:00.000Z");
                }
                serde_json::json!({ "protection": p })
            };
            let text = reply.to_string();
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
        }
    });
    (addr, seen)
}

fn protect(args: &[&str], agent: Option<SocketAddr>) -> (Option<i32>, String, String) {
    let mut cmd = std::process::Command::new(BOSUN);
    cmd.arg("protect").args(args).env_remove("ECS_AGENT_URI");
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
