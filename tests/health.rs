//! Health checks, the endpoint, `bosun probe` and sidecar mode, with real processes
//! and real HTTP.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicU16;
use std::sync::Arc;
use std::time::Duration;

use common::*;

const SLEEPER: &str = "trap 'exit 0' TERM; echo ready; while :; do sleep 0.02; done";

fn status_json(addr: std::net::SocketAddr) -> serde_json::Value {
    let (code, body) = http_get(addr, "/status").unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn starting_healthy_unhealthy_then_exit_1() {
    let dir = TempDir::new("health");
    let ok = dir.path("ok");
    let check = format!("echo checked; test -f {}", ok.display());
    for mode in modes() {
        let _ = std::fs::remove_file(&ok);
        let (run, addr) = start_with_endpoint(
            mode,
            &[
                "--health-cmd",
                &check,
                "--health-interval",
                "0.1",
                "--health-retries",
                "2",
                "--",
                "sh",
                "-c",
                SLEEPER,
            ],
        );
        let body = wait_http(addr, "/readyz", 503);
        assert!(body.contains("starting"), "{body}");
        assert_eq!(http_get(addr, "/livez").unwrap().0, 200);
        std::fs::write(&ok, "").unwrap();
        wait_http(addr, "/readyz", 200);
        let st = status_json(addr);
        assert_eq!(st["health"]["status"], "healthy");
        assert_eq!(st["health"]["last_output"], "checked\n");
        std::fs::remove_file(&ok).unwrap();
        let end = run.wait(BOUND);
        assert_eq!(end.code, Some(1), "{mode:?}: {}", end.stderr);
        assert!(end.stderr.contains("worker is unhealthy"), "{}", end.stderr);
        assert!(
            end.stderr
                .contains("stop begun reason=\"unhealthy: checked\""),
            "{}",
            end.stderr
        );
    }
}

#[test]
fn start_period_failures_do_not_count() {
    let (run, addr) = start_with_endpoint(
        Mode::Subreaper,
        &[
            "--health-cmd",
            "echo nope; exit 1",
            "--health-interval",
            "0.1",
            "--health-retries",
            "1",
            "--health-start-period",
            "1.5",
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
    );
    // Several failed checks inside the start period: still starting, streak 0.
    wait_until(BOUND, "three checks", || {
        (status_json(addr)["health"]["checks"].as_u64()? >= 3).then_some(())
    });
    let st = status_json(addr);
    assert_eq!(st["health"]["status"], "starting", "{st}");
    assert_eq!(st["health"]["failing_streak"], 0, "{st}");
    assert!(
        st["uptime_secs"].as_f64().unwrap() < 1.5,
        "start period already over: {st}"
    );
    // After it, one failure (retries 1) makes it unhealthy: exit 1.
    let end = run.wait(BOUND);
    assert_eq!(end.code, Some(1), "{}", end.stderr);
    assert!(
        end.elapsed >= Duration::from_millis(1500),
        "{:?}",
        end.elapsed
    );
}

#[test]
fn a_success_ends_the_start_period_early() {
    let dir = TempDir::new("early");
    let ok = dir.path("ok");
    std::fs::write(&ok, "").unwrap();
    let check = format!("test -f {}", ok.display());
    let (run, addr) = start_with_endpoint(
        Mode::Subreaper,
        &[
            "--health-cmd",
            &check,
            "--health-interval",
            "0.1",
            "--health-retries",
            "1",
            "--health-start-period",
            "300",
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
    );
    wait_http(addr, "/readyz", 200);
    std::fs::remove_file(&ok).unwrap();
    // Inside the 300 s start period, but after a success: the failure counts.
    let end = run.wait(BOUND);
    assert_eq!(end.code, Some(1), "{}", end.stderr);
}

#[test]
fn a_timed_out_check_is_killed_with_its_children() {
    let dir = TempDir::new("timeout");
    let pids = dir.path("pids");
    let check = format!(
        "echo $$ >> {p}; sleep 100 & echo $! >> {p}; sleep 100",
        p = pids.display()
    );
    let (run, addr) = start_with_endpoint(
        Mode::Subreaper,
        &[
            "--health-cmd",
            &check,
            "--health-interval",
            "0.1",
            "--health-timeout",
            "0.3",
            "--health-retries",
            "1",
            "--on-unhealthy",
            "ignore",
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
    );
    let body = wait_http(addr, "/readyz", 503);
    let st = wait_until(BOUND, "unhealthy", || {
        let st = status_json(addr);
        (st["health"]["status"] == "unhealthy").then_some(st)
    });
    assert!(
        st["health"]["last_output"]
            .as_str()
            .unwrap()
            .contains("exceeded timeout (0.3s)"),
        "{st} {body}"
    );
    let first_two: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .split_whitespace()
        .take(2)
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(first_two.len(), 2);
    wait_until(BOUND, "the check and its child gone", || {
        first_two.iter().all(|p| !alive(*p)).then_some(())
    });
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(BOUND).code, Some(0));
}

#[test]
fn unhealthy_restart_restarts_the_worker_in_place() {
    let dir = TempDir::new("restart");
    let ok = dir.path("ok");
    let runs = dir.path("runs");
    // The first worker never becomes healthy; the second creates the file.
    let worker = format!(
        "echo run >> {r}; [ $(wc -l < {r}) -ge 2 ] && touch {ok}; trap 'exit 0' TERM; while :; do sleep 0.02; done",
        r = runs.display(),
        ok = ok.display()
    );
    let check = format!("test -f {}", ok.display());
    for mode in modes() {
        let _ = std::fs::remove_file(&ok);
        let _ = std::fs::remove_file(&runs);
        let (run, addr) = start_with_endpoint(
            mode,
            &[
                "--health-cmd",
                &check,
                "--health-interval",
                "0.1",
                "--health-retries",
                "2",
                "--on-unhealthy",
                "restart",
                "--stop-timeout",
                "1",
                "--",
                "sh",
                "-c",
                &worker,
            ],
        );
        let st = wait_until(BOUND, "healthy after a restart", || {
            let st = status_json(addr);
            (st["health"]["status"] == "healthy").then_some(st)
        });
        assert_eq!(st["worker"]["restarts"], 1, "{st}");
        let (_, metrics) = http_get(addr, "/metrics").unwrap();
        assert!(
            metrics.contains("bosun_worker_restarts_total 1"),
            "{metrics}"
        );
        run.signal(libc::SIGTERM);
        let end = run.wait(BOUND);
        assert_eq!(end.code, Some(0), "{mode:?}: {}", end.stderr);
        assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 2);
    }
}

#[test]
fn ignore_keeps_running_and_recovery_makes_ready_again() {
    let dir = TempDir::new("recover");
    let bad = dir.path("bad");
    let check = format!(
        "if test -f {b}; then echo broken; exit 1; fi",
        b = bad.display()
    );
    let (run, addr) = start_with_endpoint(
        Mode::Subreaper,
        &[
            "--health-cmd",
            &check,
            "--health-interval",
            "0.1",
            "--health-retries",
            "1",
            "--on-unhealthy",
            "ignore",
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
    );
    wait_http(addr, "/readyz", 200);
    std::fs::write(&bad, "").unwrap();
    let body = wait_http(addr, "/readyz", 503);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ready"], false);
    assert_eq!(v["reason"], "unhealthy: broken", "{body}");
    std::fs::remove_file(&bad).unwrap();
    wait_http(addr, "/readyz", 200);
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    assert_eq!(end.code, Some(0));
    assert!(end.stderr.contains("worker is healthy"));
}

#[test]
fn http_check_follows_status_codes_without_redirects() {
    let status = Arc::new(AtomicU16::new(200));
    let server = status_server(status.clone());
    let url = format!("http://{server}/health");
    let (run, addr) = start_with_endpoint(
        Mode::Subreaper,
        &[
            "--health-http",
            &url,
            "--health-interval",
            "0.1",
            "--health-retries",
            "1",
            "--on-unhealthy",
            "ignore",
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
    );
    wait_http(addr, "/readyz", 200);
    status.store(500, std::sync::atomic::Ordering::SeqCst);
    let body = wait_http(addr, "/readyz", 503);
    assert!(body.contains("HTTP 500"), "{body}");
    // A redirect is healthy as such: not followed.
    status.store(302, std::sync::atomic::Ordering::SeqCst);
    wait_http(addr, "/readyz", 200);
    let st = status_json(addr);
    assert!(
        st["health"]["last_output"]
            .as_str()
            .unwrap()
            .contains("HTTP 302"),
        "{st}"
    );
    run.signal(libc::SIGTERM);
    run.wait(BOUND);
}

#[test]
fn tcp_check_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let (run, addr) = start_with_endpoint(
        Mode::Subreaper,
        &[
            "--health-tcp",
            &target,
            "--health-interval",
            "0.1",
            "--health-retries",
            "1",
            "--on-unhealthy",
            "ignore",
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
    );
    wait_http(addr, "/readyz", 200);
    drop(listener);
    let body = wait_http(addr, "/readyz", 503);
    assert!(body.contains(&target), "{body}");
    run.signal(libc::SIGTERM);
    run.wait(BOUND);
}

#[test]
fn probe_exit_codes() {
    let dir = TempDir::new("probe");
    let ok = dir.path("ok");
    let check = format!("test -f {}", ok.display());
    let (run, addr) = start_with_endpoint(
        Mode::Subreaper,
        &[
            "--health-cmd",
            &check,
            "--health-interval",
            "0.1",
            "--on-unhealthy",
            "ignore",
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
    );
    let probe = |env_listen: Option<String>, url: Option<String>| {
        let mut cmd = std::process::Command::new(BOSUN);
        cmd.arg("probe");
        if let Some(u) = url {
            cmd.args(["--url", &u]);
        }
        cmd.env_remove("BOSUN_LISTEN");
        if let Some(l) = env_listen {
            cmd.env("BOSUN_LISTEN", l);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    wait_http(addr, "/readyz", 503);
    let (code, err) = probe(Some(addr.to_string()), None);
    assert_eq!(code, Some(1));
    assert!(err.contains("503"), "{err}");
    std::fs::write(&ok, "").unwrap();
    wait_http(addr, "/readyz", 200);
    assert_eq!(probe(Some(addr.to_string()), None).0, Some(0));
    assert_eq!(
        probe(None, Some(format!("http://{addr}/readyz"))).0,
        Some(0)
    );
    // A wildcard listen address is probed through loopback.
    let wildcard = format!("0.0.0.0:{}", addr.port());
    assert_eq!(probe(Some(wildcard), None).0, Some(0));
    // Nothing listening.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, err) = probe(Some(free.to_string()), None);
    assert_eq!(code, Some(1));
    assert!(err.contains(&free.to_string()), "{err}");
    assert_eq!(probe(Some("off".into()), None).0, Some(1));
    run.signal(libc::SIGTERM);
    run.wait(BOUND);
}

#[test]
fn a_stop_drains_at_once() {
    // The worker takes its time to finish: /readyz must say "stopping" meanwhile.
    let worker = "trap 'sleep 1; exit 0' TERM; echo ready; while :; do sleep 0.02; done";
    for mode in modes() {
        let (run, addr) =
            start_with_endpoint(mode, &["--stop-timeout", "10", "--", "sh", "-c", worker]);
        run.wait_stdout("ready");
        wait_http(addr, "/readyz", 200);
        run.signal(libc::SIGTERM);
        let body = wait_http(addr, "/readyz", 503);
        assert!(body.contains("stopping"), "{body}");
        assert_eq!(
            http_get(addr, "/livez").unwrap().0,
            200,
            "still live while stopping"
        );
        assert_eq!(run.wait(BOUND).code, Some(0));
    }
}

#[test]
fn sidecar_serves_the_health_of_another_process() {
    let status = Arc::new(AtomicU16::new(503));
    let server = status_server(status.clone());
    let url = format!("http://{server}/");
    // No --on-unhealthy: a sidecar keeps serving through its target's outage.
    let (run, addr) = start_with_endpoint(
        Mode::Subreaper,
        &[
            "sidecar",
            "--health-http",
            &url,
            "--health-interval",
            "0.1",
            "--health-retries",
            "1",
        ],
    );
    wait_http(addr, "/readyz", 503);
    status.store(200, std::sync::atomic::Ordering::SeqCst);
    wait_http(addr, "/readyz", 200);
    let st = status_json(addr);
    assert!(st["worker"].is_null(), "{st}");
    // Unhealthy, then healthy again: seen, because the sidecar is still there.
    status.store(500, std::sync::atomic::Ordering::SeqCst);
    wait_http(addr, "/readyz", 503);
    run.wait_stderr(&format!("{url} is unhealthy"));
    status.store(200, std::sync::atomic::Ordering::SeqCst);
    wait_http(addr, "/readyz", 200);
    run.wait_stderr(&format!("{url} is healthy"));
    assert!(
        !run.stderr().contains("worker is"),
        "the log names the target: {}",
        run.stderr()
    );
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    assert_eq!(end.code, Some(0), "{}", end.stderr);
}

#[test]
fn sidecar_exits_when_asked_to() {
    let (run, _addr) = start_with_endpoint(
        Mode::Subreaper,
        &[
            "sidecar",
            "--health-cmd",
            "false",
            "--health-interval",
            "0.1",
            "--health-retries",
            "1",
            "--on-unhealthy",
            "exit",
        ],
    );
    let end = run.wait(BOUND);
    assert_eq!(end.code, Some(1), "{}", end.stderr);
    assert!(
        end.stderr.contains("command 'false' is unhealthy"),
        "{}",
        end.stderr
    );
}

#[test]
fn sidecar_with_a_command_check_reaps_it() {
    let (run, addr) = start_with_endpoint(
        Mode::Init,
        &[
            "sidecar",
            "--health-cmd",
            "true",
            "--health-interval",
            "0.05",
        ],
    );
    wait_http(addr, "/readyz", 200);
    wait_until(BOUND, "ten checks", || {
        (status_json(addr)["health"]["checks"].as_u64()? >= 10).then_some(())
    });
    // Every check process was reaped: no zombie under bosun.
    let zombies = children_of(run.pid)
        .into_iter()
        .filter(|p| state_of(*p).as_deref() == Some("Z"))
        .count();
    assert_eq!(zombies, 0);
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(BOUND).code, Some(0));
}

#[test]
fn slow_and_malformed_clients_do_not_block_livez() {
    let (run, addr) = start_with_endpoint(Mode::Subreaper, &["--", "sh", "-c", SLEEPER]);
    // 50 slowloris connections, each dribbling a never-finished header.
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    for s in &mut slow {
        s.write_all(b"a").unwrap();
    }
    assert_eq!(http_get(addr, "/livez").unwrap().0, 200);
    // Garbage gets a 400 and a closed connection.
    let mut bad = TcpStream::connect(addr).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    bad.write_all(b"\x00\x01NOT HTTP AT ALL\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    let _ = bad.read_to_end(&mut resp);
    assert!(
        String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&resp)
    );
    assert_eq!(http_get(addr, "/livez").unwrap().0, 200);
    // The slow ones are cut off after the header timeout (5 s), not held forever.
    let mut one = slow.pop().unwrap();
    one.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut sink = Vec::new();
    let _ = one.read_to_end(&mut sink);
    assert_eq!(http_get(addr, "/livez").unwrap().0, 200);
    run.signal(libc::SIGTERM);
    run.wait(BOUND);
}

#[test]
fn metrics_pass_promtool() {
    if std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: promtool not installed (run .ci/setup)");
        return;
    }
    let (run, addr) = start_with_endpoint(
        Mode::Subreaper,
        &[
            "--health-cmd",
            "true",
            "--health-interval",
            "0.1",
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
    );
    wait_http(addr, "/readyz", 200);
    let (code, body) = http_get(addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    for name in [
        "bosun_worker_restarts_total",
        "bosun_healthy 1",
        "bosun_ready 1",
        "bosun_worker_up 1",
    ] {
        assert!(body.contains(name), "{name} missing: {body}");
    }
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    run.signal(libc::SIGTERM);
    run.wait(BOUND);
}

#[test]
fn an_address_in_use_is_a_startup_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = TempDir::new("inuse");
    let marker = dir.path("started");
    let worker = format!("touch {}", marker.display());
    let out = command(
        Mode::Subreaper,
        &["--listen", &addr, "--", "sh", "-c", &worker],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr) && err.contains("in use"), "{err}");
    assert!(!marker.exists(), "the worker was started");
}

/// Host names come from /etc/hosts (bosun reads it itself; no NSS): a private
/// /etc/hosts is bind-mounted for bosun alone in a mount namespace of its own.
#[test]
fn check_hosts_resolve_through_the_hosts_file() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: not root, cannot bind-mount a private /etc/hosts");
        return;
    }
    let dir = TempDir::new("hosts");
    let hosts = dir.path("hosts");
    std::fs::write(&hosts, "# test\n127.0.0.1\tbosun-test-db other-name\n").unwrap();
    // And no nameserver: other names fail at once instead of waiting for the network.
    let resolv = dir.path("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let http = std::thread::spawn(move || {
        // Answer HTTP checks until the test ends.
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    drop(http);
    for (flag, target, ready) in [
        ("--health-tcp", format!("bosun-test-db:{port}"), true),
        (
            "--health-http",
            format!("http://other-name:{port}/health"),
            true,
        ),
        (
            "--health-tcp",
            format!("not-in-hosts.invalid.:{port}"),
            false,
        ),
    ] {
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount --bind \"$0\" /etc/hosts && mount --bind \"$1\" /etc/resolv.conf && shift && exec \"$@\"")
            .arg(&hosts)
            .arg(&resolv)
            .args([BOSUN, "--listen", "127.0.0.1:0", flag, &target])
            .args(["--health-interval", "0.1", "--health-retries", "1"])
            .args(["--on-unhealthy", "ignore", "--", "sh", "-c", SLEEPER])
            .stdin(std::process::Stdio::null());
        let run = start_cmd(Mode::Subreaper, cmd);
        let addr = endpoint_addr(&run);
        if ready {
            wait_http(addr, "/readyz", 200);
        } else {
            let status = wait_until(BOUND, "the check to fail", || {
                let s = status_json(addr).to_string();
                s.contains("\"status\":\"unhealthy\"").then_some(s)
            });
            assert!(status.contains("not-in-hosts.invalid"), "{status}");
        }
        run.signal(libc::SIGTERM);
        run.wait(BOUND);
    }
}

/// ECS gives a container one start period, at its start. A worker bosun restarts in
/// place starts again inside the same container: while it does, `/readyz` says
/// "starting", and `bosun probe` (ECS's health check) does not fail it, or ECS would
/// mark the container UNHEALTHY and replace the task. A fresh start still fails the
/// probe until the first check passes.
#[test]
fn probe_does_not_fail_a_worker_restarted_in_place_while_it_starts() {
    let dir = TempDir::new("probe-restart");
    let ok = dir.path("ok");
    let runs = dir.path("runs");
    // The first worker never becomes healthy; the second does after two seconds.
    let worker = format!(
        "echo run >> {r}; if [ $(wc -l < {r}) -ge 2 ]; then (sleep 2; touch {ok}) & fi; trap 'exit 0' TERM; while :; do sleep 0.02; done",
        r = runs.display(),
        ok = ok.display()
    );
    let check = format!("test -f {}", ok.display());
    let (run, addr) = start_with_endpoint(
        Mode::Subreaper,
        &[
            "--health-cmd",
            &check,
            "--health-interval",
            "0.1",
            "--health-retries",
            "2",
            "--health-start-period",
            "3",
            "--on-unhealthy",
            "restart",
            "--stop-timeout",
            "1",
            "--",
            "sh",
            "-c",
            &worker,
        ],
    );
    let probe = || {
        let out = std::process::Command::new(BOSUN)
            .arg("probe")
            .env("BOSUN_LISTEN", addr.to_string())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A fresh start: starting, and the probe fails.
    assert_eq!(status_json(addr)["worker"]["restarts"], 0);
    let (code, err) = probe();
    assert_eq!(code, Some(1), "{err}");
    wait_until(BOUND, "the restart in place", || {
        let st = status_json(addr);
        (st["worker"]["restarts"] == 1 && st["health"]["status"] == "starting").then_some(())
    });
    let (code, err) = probe();
    assert_eq!(code, Some(0), "{err}");
    let (code, body) = http_get(addr, "/readyz").unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("starting"), "{body}");
    wait_until(BOUND, "healthy", || {
        (status_json(addr)["health"]["status"] == "healthy").then_some(())
    });
    assert_eq!(probe().0, Some(0));
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(BOUND).code, Some(0));
}
