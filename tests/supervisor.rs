#![allow(clippy::unwrap_used)]
//! The supervisor core against real processes, as PID 1 of a new PID namespace and as
//! a child subreaper: exit codes, forwarding, reaping, the stop sequence, restarts,
//! usage errors and the worker's standard streams.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn exit_codes_are_the_workers() {
    for mode in modes() {
        for code in [0, 1, 3, 42, 255] {
            let end = run(mode, &["--", "sh", "-c", &format!("exit {code}")]);
            assert_eq!(end.code, Some(code), "{mode:?} exit {code}: {}", end.stderr);
        }
        for (sig, name) in [
            (libc::SIGUSR1, "USR1"),
            (libc::SIGKILL, "KILL"),
            (libc::SIGTERM, "TERM"),
        ] {
            let end = run(mode, &["--", "sh", "-c", &format!("kill -{name} $$")]);
            assert_eq!(
                end.code,
                Some(128 + sig),
                "{mode:?} kill -{name}: {}",
                end.stderr
            );
        }
    }
}

#[test]
fn plain_and_run_forms_agree() {
    let a = run(Mode::Subreaper, &["--", "sh", "-c", "exit 5"]);
    let b = run(Mode::Subreaper, &["run", "--", "sh", "-c", "exit 5"]);
    assert_eq!(a.code, Some(5));
    assert_eq!(b.code, Some(5));
}

#[test]
fn missing_and_unexecutable_commands() {
    for mode in modes() {
        let end = run(mode, &["--", "/no/such/worker", "x"]);
        assert_eq!(end.code, Some(127), "{}", end.stderr);
        assert!(end.stderr.contains("/no/such/worker"), "{}", end.stderr);
        let end = run(mode, &["--", "/etc/passwd"]);
        assert_eq!(end.code, Some(126), "{}", end.stderr);
        assert!(end.stderr.contains("/etc/passwd"), "{}", end.stderr);
    }
}

#[test]
fn usage_errors_exit_2_name_the_option_and_start_nothing() {
    let dir = TempDir::new("usage");
    let marker = dir.path("started");
    let worker = format!("touch {}", marker.display());
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a [&'a str]);
    let cases: Vec<Case> = vec![
        (
            vec!["--stop-timeout", "5000"],
            vec![],
            &["--stop-timeout", "0..=3600"],
        ),
        (vec!["--stop-timeout", "-1"], vec![], &["--stop-timeout"]),
        (
            vec![],
            vec![("BOSUN_STOP_TIMEOUT", "abc")],
            &["--stop-timeout", "'abc'"],
        ),
        (
            vec!["--stop-signal", "BOGUS"],
            vec![],
            &["--stop-signal", "BOGUS"],
        ),
        (
            vec!["--restart", "sometimes"],
            vec![],
            &["--restart", "on-failure"],
        ),
        (
            vec!["--health-retries", "0"],
            vec![],
            &["--health-retries", "1..=10"],
        ),
        (
            vec!["--listen", "nowhere"],
            vec![],
            &["--listen", "nowhere"],
        ),
        (
            vec!["--metrics", "graphite"],
            vec![],
            &["--metrics", "graphite"],
        ),
        (
            vec![],
            vec![("BOSUN_ON_UNHEALTHY", "panic")],
            &["--on-unhealthy", "panic"],
        ),
    ];
    for (flags, env, needles) in cases {
        let mut args: Vec<&str> = flags.clone();
        args.extend(["--", "sh", "-c", &worker]);
        let mut cmd = command(Mode::Subreaper, &args);
        cmd.envs(env.iter().copied());
        let out = cmd.output().expect("run bosun");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?} {env:?}: {stderr}");
        for n in needles {
            assert!(
                stderr.contains(n),
                "{flags:?} {env:?}: {n:?} missing in {stderr}"
            );
        }
        assert!(!marker.exists(), "{flags:?}: the worker was started");
    }
    // No command at all.
    let out = command::<&str>(Mode::Subreaper, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CMD"));
}

#[test]
fn flag_wins_over_environment() {
    let script = "trap 'echo got USR1; exit 0' USR1; trap 'echo got USR2; exit 0' USR2; echo ready; while :; do sleep 0.05; done";
    let mut cmd = command(
        Mode::Subreaper,
        &[
            "--listen",
            "off",
            "--stop-signal",
            "USR1",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    cmd.env("BOSUN_STOP_SIGNAL", "USR2").stdin(Stdio::null());
    let run = start_cmd(Mode::Subreaper, cmd);
    run.wait_stdout("ready");
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    assert!(end.stdout.contains("got USR1"), "{}", end.stdout);
    // And the environment alone is honoured.
    let mut cmd = command(
        Mode::Subreaper,
        &["--listen", "off", "--", "sh", "-c", script],
    );
    cmd.env("BOSUN_STOP_SIGNAL", "USR2").stdin(Stdio::null());
    let run = start_cmd(Mode::Subreaper, cmd);
    run.wait_stdout("ready");
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    assert!(end.stdout.contains("got USR2"), "{}", end.stdout);
}

/// A worker that reports each signal it gets on stdout.
const TRAPPER: &str = r#"
for s in HUP USR1 USR2 QUIT WINCH TSTP TTIN TTOU URG CONT ALRM; do trap "echo got $s" $s; done
trap 'echo got TERM; exit 0' TERM
echo ready
while :; do sleep 0.02; done
"#;

#[test]
fn signals_are_forwarded_to_the_worker() {
    for mode in modes() {
        let run = start(mode, &["--", "sh", "-c", TRAPPER]);
        run.wait_stdout("ready");
        for (sig, name) in [
            (libc::SIGHUP, "HUP"),
            (libc::SIGUSR1, "USR1"),
            (libc::SIGUSR2, "USR2"),
            (libc::SIGQUIT, "QUIT"),
            (libc::SIGWINCH, "WINCH"),
            (libc::SIGALRM, "ALRM"),
        ] {
            run.signal(sig);
            run.wait_stdout(&format!("got {name}"));
        }
        run.signal(libc::SIGTERM);
        let end = run.wait(BOUND);
        assert_eq!(end.code, Some(0), "{mode:?}: {}", end.stderr);
        assert!(end.stderr.contains("signal forwarded"), "{}", end.stderr);
    }
}

#[test]
fn job_control_signals_and_noise_do_not_stop_or_kill_bosun() {
    for mode in modes() {
        let run = start(mode, &["--", "sh", "-c", TRAPPER]);
        run.wait_stdout("ready");
        for (sig, name) in [
            (libc::SIGTSTP, "TSTP"),
            (libc::SIGTTIN, "TTIN"),
            (libc::SIGTTOU, "TTOU"),
            (libc::SIGURG, "URG"),
        ] {
            run.signal(sig);
            run.wait_stdout(&format!("got {name}"));
            let state = state_of(run.pid).expect("bosun is alive");
            assert_ne!(state, "T", "{mode:?}: bosun stopped by SIG{name}");
        }
        // bosun still works after them.
        run.signal(libc::SIGHUP);
        run.wait_stdout("got HUP");
        run.signal(libc::SIGTERM);
        let end = run.wait(BOUND);
        assert_eq!(end.code, Some(0), "{mode:?}: {}", end.stderr);
    }
}

#[test]
fn a_real_time_signal_is_forwarded() {
    let rt = libc::SIGRTMIN() + 3;
    let run = start(
        Mode::Subreaper,
        &["--", "python3", "-c", &format!(
            "import signal,sys,time\nsignal.signal({rt}, lambda *a: (print('got RT', flush=True), sys.exit(0)))\nprint('ready', flush=True)\nwhile True: time.sleep(0.02)"
        )],
    );
    run.wait_stdout("ready");
    run.signal(rt);
    let end = run.wait(BOUND);
    assert!(end.stdout.contains("got RT"), "{}", end.stderr);
    assert_eq!(end.code, Some(0));
}

#[test]
fn the_worker_starts_clean() {
    let dir = TempDir::new("clean");
    for mode in modes() {
        let mut cmd = command(
            mode,
            &["--listen", "off", "--", "sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status; pwd; echo \"x=$BOSUN_TEST_X\"; readlink /proc/self/fd/1"],
        );
        cmd.current_dir(&dir.0)
            .env("BOSUN_TEST_X", "kept")
            .stdin(Stdio::null());
        let end = start_cmd(mode, cmd).wait(BOUND);
        assert_eq!(end.code, Some(0), "{}", end.stderr);
        assert!(
            end.stdout.contains("SigBlk:\t0000000000000000"),
            "{mode:?}: {}",
            end.stdout
        );
        assert!(
            end.stdout.contains("SigIgn:\t0000000000000000"),
            "{mode:?}: {}",
            end.stdout
        );
        assert!(
            end.stdout.contains(&dir.0.display().to_string()),
            "{}",
            end.stdout
        );
        assert!(end.stdout.contains("x=kept"), "{}", end.stdout);
        assert!(
            end.stdout.contains("pipe:"),
            "stdout should be the test's pipe: {}",
            end.stdout
        );
    }
}

#[test]
fn stdin_stdout_stderr_pass_through_with_nothing_lost() {
    // 16 MiB in through stdin, out through stdout; 4 MiB to stderr.
    let payload: Vec<u8> = (0..16 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    for mode in modes() {
        let mut cmd = command(
            mode,
            &[
                "--listen",
                "off",
                "--",
                "sh",
                "-c",
                "cat; head -c 4194304 /dev/zero >&2",
            ],
        );
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = payload.clone();
        let writer = std::thread::spawn(move || {
            stdin.write_all(&data).unwrap();
        });
        let out = wait_output(child, BOUND);
        writer.join().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(out.stdout.len(), payload.len(), "{mode:?}");
        assert!(out.stdout == payload, "{mode:?}: stdout differs");
        let zeros = out.stderr.iter().filter(|b| **b == 0).count();
        assert_eq!(zeros, 4 * 1024 * 1024, "{mode:?}: stderr bytes lost");
    }
}

#[test]
fn orphan_storm_is_reaped() {
    // An intermediate process starts N grandchildren and exits at once: they become
    // orphans of bosun and all exit together, their SIGCHLDs coalescing.
    const N: usize = 3000;
    let script = format!(
        r#"
import os, sys, time
r, w = os.pipe()
if os.fork() == 0:
    for _ in range({N}):
        if os.fork() == 0:
            os.close(w)
            os.read(r, 1)
            os._exit(0)
    os._exit(0)
os.close(r)
os.wait()
print("orphans ready", flush=True)
sys.stdin.readline() if False else None
time.sleep(0.2)
os.close(w)
print("released", flush=True)
time.sleep(60)
"#
    );
    for mode in modes() {
        let run = start(
            mode,
            &["--stop-timeout", "1", "--", "python3", "-c", &script],
        );
        run.wait_stdout("released");
        // All N must be reaped by bosun: no zombie left among its children.
        let bosun = run.pid;
        wait_until(BOUND, "every orphan reaped", || {
            let zombies = children_of(bosun)
                .into_iter()
                .filter(|p| state_of(*p).as_deref() == Some("Z"))
                .count();
            let kids = children_of(bosun).len();
            (zombies == 0 && kids == 1).then_some(())
        });
        run.signal(libc::SIGTERM);
        let end = run.wait(BOUND);
        let reaped: usize = end
            .stderr
            .split("orphans_reaped=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no orphans_reaped in {}", end.stderr));
        assert!(reaped >= N, "{mode:?}: reaped {reaped} of {N}");
    }
}

#[test]
fn grace_then_sigkill() {
    for mode in modes() {
        let run = start(
            mode,
            &[
                "--stop-timeout",
                "1",
                "--",
                "sh",
                "-c",
                "trap 'echo ignoring' TERM; echo ready; while :; do sleep 0.02; done",
            ],
        );
        run.wait_stdout("ready");
        run.signal(libc::SIGTERM);
        let end = run.wait(BOUND);
        assert_eq!(end.code, Some(137), "{mode:?}: {}", end.stderr);
        assert!(end.stdout.contains("ignoring"));
        assert!(
            end.elapsed >= Duration::from_secs(1),
            "{mode:?}: grace not given: {:?}",
            end.elapsed
        );
        assert!(end.stderr.contains("SIGKILL sent"), "{}", end.stderr);
    }
}

#[test]
fn fractional_grace_is_honoured() {
    let run = start(
        Mode::Subreaper,
        &[
            "--stop-timeout",
            "0.3",
            "--",
            "sh",
            "-c",
            "trap '' TERM; echo ready; while :; do sleep 0.02; done",
        ],
    );
    run.wait_stdout("ready");
    let t = std::time::Instant::now();
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    assert_eq!(end.code, Some(137));
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    assert!(end.stderr.contains("grace_secs=0.3"), "{}", end.stderr);
}

#[test]
fn escaped_descendants_are_gone_after_bosun_exits() {
    let dir = TempDir::new("escape");
    for mode in modes() {
        let pids = dir.path(&format!("pids-{mode:?}"));
        // One escapee that dies on TERM, one in its own session that ignores it; the
        // worker exits at once.
        let script = format!(
            "setsid sleep 1000 & echo $! >> {p}; setsid sh -c 'trap \"\" TERM; echo $$ >> {p}; while :; do sleep 0.05; done' & sleep 0.3; exit 4",
            p = pids.display()
        );
        let end = run(mode, &["--stop-timeout", "0.5", "--", "sh", "-c", &script]);
        assert_eq!(end.code, Some(4), "{mode:?}: {}", end.stderr);
        assert!(
            end.stderr.contains("stopping what it left behind"),
            "{}",
            end.stderr
        );
        assert!(end.stderr.contains("SIGKILL sent"), "{}", end.stderr);
        if mode == Mode::Subreaper {
            for pid in std::fs::read_to_string(&pids).unwrap().split_whitespace() {
                let pid: i32 = pid.parse().unwrap();
                assert!(!alive(pid), "escaped process {pid} survived bosun");
            }
        }
    }
}

#[test]
fn stopping_kills_escapees_too() {
    let dir = TempDir::new("stop-escape");
    let pids = dir.path("pids");
    let script = format!(
        "setsid sh -c 'trap \"\" TERM; echo $$ >> {p}; while :; do sleep 0.05; done' & trap 'exit 0' TERM; echo ready; while :; do sleep 0.02; done",
        p = pids.display()
    );
    let run = start(
        Mode::Subreaper,
        &["--stop-timeout", "0.5", "--", "sh", "-c", &script],
    );
    run.wait_stdout("ready");
    run.wait_file(&pids);
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    assert_eq!(end.code, Some(0), "{}", end.stderr);
    let pid: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(pid), "escapee {pid} survived");
}

#[test]
fn stop_signal_option() {
    for mode in modes() {
        let run = start(mode, &["--stop-signal", "QUIT", "--", "sh", "-c", "trap 'echo got QUIT; exit 9' QUIT; trap 'echo got TERM; exit 1' TERM; echo ready; while :; do sleep 0.02; done"]);
        run.wait_stdout("ready");
        run.signal(libc::SIGTERM);
        let end = run.wait(BOUND);
        assert!(
            end.stdout.contains("got QUIT") && !end.stdout.contains("got TERM"),
            "{}",
            end.stdout
        );
        assert_eq!(end.code, Some(9));
    }
}

#[test]
fn pre_stop_runs_before_the_stop_signal() {
    let dir = TempDir::new("prestop");
    for mode in modes() {
        let log = dir.path(&format!("order-{mode:?}"));
        let pre = format!("echo pre-stop >> {}; sleep 0.2", log.display());
        let worker = format!(
            "trap 'echo worker-term >> {}; exit 0' TERM; echo ready; while :; do sleep 0.02; done",
            log.display()
        );
        let run = start(
            mode,
            &[
                "--stop-timeout",
                "5",
                "--pre-stop",
                &pre,
                "--",
                "sh",
                "-c",
                &worker,
            ],
        );
        run.wait_stdout("ready");
        run.signal(libc::SIGTERM);
        let end = run.wait(BOUND);
        assert_eq!(end.code, Some(0), "{}", end.stderr);
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "pre-stop\nworker-term\n"
        );
    }
}

#[test]
fn pre_stop_is_bounded_by_the_grace() {
    let run = start(
        Mode::Subreaper,
        &[
            "--stop-timeout",
            "0.5",
            "--pre-stop",
            "sleep 100",
            "--",
            "sh",
            "-c",
            "echo ready; while :; do sleep 0.02; done",
        ],
    );
    run.wait_stdout("ready");
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    assert!(
        end.stderr.contains("pre-stop hook still running"),
        "{}",
        end.stderr
    );
    // The shell worker dies of the TERM that follows, or of the SIGKILL.
    assert!(matches!(end.code, Some(143) | Some(137)), "{:?}", end.code);
    assert!(end.elapsed < Duration::from_secs(10));
}

#[test]
fn a_second_term_cuts_the_grace_short() {
    for mode in modes() {
        let run = start(
            mode,
            &[
                "--stop-timeout",
                "60",
                "--",
                "sh",
                "-c",
                "trap 'echo ignoring' TERM; echo ready; while :; do sleep 0.02; done",
            ],
        );
        run.wait_stdout("ready");
        run.signal(libc::SIGTERM);
        run.wait_stderr("stop signal sent");
        run.signal(libc::SIGTERM);
        // With a 60 s grace, only the cut can end it within the bound.
        let end = run.wait(BOUND);
        assert_eq!(end.code, Some(137), "{mode:?}: {}", end.stderr);
        assert!(end.stderr.contains("grace cut short"), "{}", end.stderr);
    }
}

#[test]
fn restart_on_failure_until_success() {
    let dir = TempDir::new("restart");
    for mode in modes() {
        let runs = dir.path(&format!("runs-{mode:?}"));
        let script = format!(
            "echo run >> {r}; [ $(wc -l < {r}) -ge 3 ] && exit 0; exit 1",
            r = runs.display()
        );
        let end = run(
            mode,
            &["--restart", "on-failure", "--", "sh", "-c", &script],
        );
        assert_eq!(end.code, Some(0), "{mode:?}: {}", end.stderr);
        assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 3);
        assert_eq!(
            end.stderr.matches("restarting the worker").count(),
            2,
            "{}",
            end.stderr
        );
    }
}

#[test]
fn restart_never_and_on_failure_with_success() {
    let end = run(
        Mode::Subreaper,
        &["--restart", "never", "--", "sh", "-c", "exit 1"],
    );
    assert_eq!(end.code, Some(1));
    assert!(!end.stderr.contains("restarting"));
    let end = run(
        Mode::Subreaper,
        &["--restart", "on-failure", "--", "sh", "-c", "exit 0"],
    );
    assert_eq!(end.code, Some(0));
    assert!(!end.stderr.contains("restarting"));
}

#[test]
fn restart_always_and_stop_during_back_off() {
    let dir = TempDir::new("always");
    let runs = dir.path("runs");
    // Quick successful runs: the back-off doubles (0.1, 0.2, 0.4, 0.8, 1.6 s ...).
    let script = format!("echo run >> {}; exit 0", runs.display());
    let run = start(
        Mode::Subreaper,
        &["--restart", "always", "--", "sh", "-c", &script],
    );
    let count = || {
        std::fs::read_to_string(&runs)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    wait_until(BOUND, "five runs", || (count() >= 5).then_some(()));
    // Now in a back-off of at least 1.6 s: a stop ends it at once, no new run.
    run.wait_stderr("restarting the worker delay_secs=1.6");
    let before = count();
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    assert!(
        end.stderr
            .contains("stop requested during restart back-off"),
        "{}",
        end.stderr
    );
    assert_eq!(count(), before, "a run started after the stop request");
    assert_eq!(end.code, Some(0));
}

#[test]
fn worker_exit_stops_leftovers_even_when_they_ignore_term() {
    let run = start(
        Mode::Subreaper,
        &[
            "--stop-timeout",
            "0.5",
            "--",
            "sh",
            "-c",
            "sh -c 'trap \"\" TERM; while :; do sleep 0.05; done' & sleep 0.2; exit 6",
        ],
    );
    let end = run.wait(BOUND);
    assert_eq!(end.code, Some(6));
    assert!(
        end.elapsed >= Duration::from_millis(500),
        "{:?}",
        end.elapsed
    );
}

#[test]
fn log_format_json_and_filter() {
    let mut cmd = command(
        Mode::Subreaper,
        &["--listen", "off", "--log-format", "json", "--", "true"],
    );
    cmd.stdin(Stdio::null());
    let end = start_cmd(Mode::Subreaper, cmd).wait(BOUND);
    let lines: Vec<&str> = end.stderr.lines().collect();
    assert!(lines.len() >= 2, "{}", end.stderr);
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v.get("level").is_some() && v.get("message").is_some(),
            "{line}"
        );
    }
    let mut cmd = command(Mode::Subreaper, &["--listen", "off", "--", "true"]);
    cmd.env("BOSUN_LOG", "warn").stdin(Stdio::null());
    let end = start_cmd(Mode::Subreaper, cmd).wait(BOUND);
    // No info line: only the run-summary line, which no filter takes away.
    let lines: Vec<&str> = end.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "info lines despite BOSUN_LOG=warn: {}",
        end.stderr
    );
    assert!(
        lines[0].contains(" INFO run ended outcome=succeeded "),
        "{}",
        lines[0]
    );
}

/// A worker that reports each fault signal it is sent.
const FAULT_TRAPPER: &str = "for s in ILL TRAP ABRT BUS FPE SEGV SYS; do trap \"echo got $s\" $s; done; trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done";

#[test]
fn fault_signals_sent_with_kill_are_forwarded() {
    for mode in modes() {
        let run = start(mode, &["--", "sh", "-c", FAULT_TRAPPER]);
        run.wait_stdout("ready");
        for (sig, name) in [
            (libc::SIGILL, "ILL"),
            (libc::SIGTRAP, "TRAP"),
            (libc::SIGABRT, "ABRT"),
            (libc::SIGBUS, "BUS"),
            (libc::SIGFPE, "FPE"),
            (libc::SIGSEGV, "SEGV"),
            (libc::SIGSYS, "SYS"),
        ] {
            // Twice: a first one must not be swallowed, a second must not kill bosun
            // (one at a time: a standard signal sent again while pending is merged).
            for n in 1..=2 {
                run.signal(sig);
                let what = format!("got {name} x{n}");
                wait_until(BOUND, &what, || {
                    (run.stdout().matches(&format!("got {name}\n")).count() >= n).then_some(())
                });
            }
            assert!(alive(run.pid), "{mode:?}: bosun died of SIG{name}");
        }
        run.signal(libc::SIGTERM);
        let end = run.wait(BOUND);
        assert_eq!(end.code, Some(0), "{mode:?}: {}", end.stderr);
        assert!(
            end.stdout.contains("bye"),
            "{mode:?}: a clean stop: {}",
            end.stdout
        );
    }
}

#[test]
fn an_unhealthy_stop_during_restart_back_off_exits_1() {
    for mode in modes() {
        // The worker ends at once, so bosun spends its time in the back-off; the check
        // fails, and the stop it asks for must keep its code.
        let end = run(
            mode,
            &[
                "--restart",
                "always",
                "--health-cmd",
                "false",
                "--health-interval",
                "0.3",
                "--health-retries",
                "1",
                "--on-unhealthy",
                "exit",
                "--",
                "sh",
                "-c",
                "exit 0",
            ],
        );
        assert_eq!(end.code, Some(1), "{mode:?}: {}", end.stderr);
        assert!(end.stderr.contains("unhealthy"), "{}", end.stderr);
    }
}

#[test]
fn a_stop_during_the_pre_stop_hook_is_honoured() {
    for mode in modes() {
        // Unhealthy → restart in place → pre-stop hook (slow) → TERM: bosun must stop,
        // not start the worker again.
        let run = start(
            mode,
            &[
                "--stop-timeout",
                "10",
                "--pre-stop",
                "sleep 5",
                "--health-cmd",
                "false",
                "--health-interval",
                "0.2",
                "--health-retries",
                "1",
                "--on-unhealthy",
                "restart",
                "--",
                "sh",
                "-c",
                "echo ready; while :; do sleep 0.05; done",
            ],
        );
        run.wait_stderr("pre-stop hook started");
        run.signal(libc::SIGTERM);
        let end = run.wait(BOUND);
        assert!(
            end.elapsed < std::time::Duration::from_secs(5),
            "{mode:?}: the TERM cut the hook short"
        );
        assert_eq!(
            end.stderr.matches("worker started").count(),
            1,
            "{mode:?}: restarted after a stop: {}",
            end.stderr
        );
        assert!(end.stderr.contains("bosun exiting"), "{}", end.stderr);
    }
}

#[test]
fn max_runtime_stops_the_job_and_exits_124() {
    let dir = TempDir::new("maxrt");
    for mode in modes() {
        let pids = dir.path(&format!("pids-{mode:?}"));
        let script = format!(
            "sleep 1000 & echo $! >> {p}; setsid sleep 1000 & echo $! >> {p}; trap 'echo term' TERM; echo ready; while :; do sleep 0.05; done",
            p = pids.display()
        );
        let end = run(
            mode,
            &[
                "--max-runtime",
                "0.5",
                "--stop-timeout",
                "0.5",
                "--",
                "sh",
                "-c",
                &script,
            ],
        );
        assert_eq!(end.code, Some(124), "{mode:?}: {}", end.stderr);
        assert!(end.stderr.contains("max runtime reached"), "{}", end.stderr);
        assert!(
            end.stdout.contains("term"),
            "the stop signal first: {}",
            end.stdout
        );
        assert!(
            end.stderr.contains("SIGKILL sent"),
            "then SIGKILL of the tree: {}",
            end.stderr
        );
        if mode == Mode::Subreaper {
            for pid in std::fs::read_to_string(&pids).unwrap().split_whitespace() {
                let pid: i32 = pid.parse().unwrap();
                assert!(!alive(pid), "descendant {pid} survived --max-runtime");
            }
        }
    }
    // From the environment too, and range-checked.
    let mut cmd = command(Mode::Subreaper, &["--listen", "off", "--", "sleep", "5"]);
    cmd.env("BOSUN_MAX_RUNTIME", "0.2");
    let out = run_bounded(&mut cmd, BOUND);
    assert_eq!(out.status.code(), Some(124));
    let out = run_bounded(
        &mut command(Mode::Subreaper, &["--max-runtime", "0", "--", "true"]),
        BOUND,
    );
    assert_eq!(out.status.code(), Some(2));
}

/// The run-summary line of `stderr` (JSON), the one line whose message is "run ended".
fn summary(stderr: &str) -> serde_json::Value {
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "run ended")
        .collect();
    assert_eq!(lines.len(), 1, "one run-summary line: {stderr}");
    lines[0].clone()
}

#[test]
fn max_restarts_stops_after_n_and_exits_with_the_last_status() {
    let dir = TempDir::new("maxrestarts");
    for mode in modes() {
        let runs = dir.path(&format!("runs-{mode:?}"));
        let script = format!("echo run >> {}; exit 3", runs.display());
        let end = run(
            mode,
            &[
                "--restart",
                "on-failure",
                "--max-restarts",
                "2",
                "--log-format",
                "json",
                "--",
                "sh",
                "-c",
                &script,
            ],
        );
        assert_eq!(end.code, Some(3), "{mode:?}: {}", end.stderr);
        assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 3);
        let s = summary(&end.stderr);
        assert_eq!(s["outcome"], "failed");
        assert_eq!(s["reason"], "exit");
        assert_eq!(s["exit_code"], 3);
        assert_eq!(s["restarts"], 2);
    }
    // 0 restarts: one attempt. And a run that succeeds on its second attempt stops there.
    let once = dir.path("once");
    let end = run(
        Mode::Subreaper,
        &[
            "--restart",
            "always",
            "--max-restarts",
            "0",
            "--",
            "sh",
            "-c",
            &format!("echo run >> {}; exit 0", once.display()),
        ],
    );
    assert_eq!(end.code, Some(0), "{}", end.stderr);
    assert_eq!(std::fs::read_to_string(&once).unwrap().lines().count(), 1);
    // Without a restart policy it is a usage error, from the flag or the variable.
    let mut cmd = command(Mode::Subreaper, &["--listen", "off", "--", "true"]);
    cmd.env("BOSUN_MAX_RESTARTS", "2");
    let out = run_bounded(&mut cmd, BOUND);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BOSUN_MAX_RESTARTS") && err.contains("--restart"),
        "{err}"
    );
    let out = run_bounded(
        &mut command(
            Mode::Subreaper,
            &[
                "--restart",
                "on-failure",
                "--max-restarts",
                "1001",
                "--",
                "true",
            ],
        ),
        BOUND,
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_run_summary_line_says_how_the_run_ended() {
    for mode in modes() {
        let json = |args: &[&str]| {
            let mut all = vec!["--log-format", "json"];
            all.extend_from_slice(args);
            let end = run(mode, &all);
            (end.code, summary(&end.stderr))
        };
        let (code, s) = json(&["--", "sh", "-c", "sleep 0.3; exit 0"]);
        assert_eq!(code, Some(0));
        assert_eq!(s["outcome"], "succeeded", "{s}");
        assert_eq!(s["reason"], "exit");
        assert_eq!(s["exit_code"], 0);
        assert_eq!(s["restarts"], 0);
        assert!(s.get("signal").is_none(), "{s}");
        let d = s["duration_secs"].as_f64().unwrap();
        assert!((0.3..30.0).contains(&d), "{s}");
        assert!(s["timestamp"].as_str().unwrap().ends_with('Z'), "{s}");

        let (code, s) = json(&["--", "sh", "-c", "exit 3"]);
        assert_eq!(code, Some(3));
        assert_eq!(
            (&s["outcome"], &s["reason"]),
            (&"failed".into(), &"exit".into())
        );
        assert_eq!(s["exit_code"], 3);

        let (code, s) = json(&["--", "sh", "-c", "kill -USR1 $$"]);
        assert_eq!(code, Some(128 + libc::SIGUSR1));
        assert_eq!(s["reason"], "signal", "{s}");
        assert_eq!(s["signal"], "SIGUSR1");
        assert_eq!(s["exit_code"], 128 + libc::SIGUSR1);

        let (code, s) = json(&["--max-runtime", "0.3", "--", "sleep", "30"]);
        assert_eq!(code, Some(124));
        assert_eq!(s["reason"], "time-limit", "{s}");
        assert_eq!(s["outcome"], "failed");

        let (code, s) = json(&["--", "/no/such/worker"]);
        assert_eq!(code, Some(127));
        assert_eq!(s["reason"], "not-started", "{s}");
    }
    // A stop asked by SIGTERM; and the text form, whatever BOSUN_LOG filters.
    let mut cmd = command(Mode::Subreaper, &["--listen", "off", "--", "sleep", "30"]);
    cmd.env("BOSUN_LOG", "error");
    let r = start_cmd(Mode::Subreaper, cmd);
    std::thread::sleep(Duration::from_millis(300));
    r.signal(libc::SIGTERM);
    let end = r.wait(BOUND);
    let line: Vec<&str> = end
        .stderr
        .lines()
        .filter(|l| l.contains("run ended"))
        .collect();
    assert_eq!(line.len(), 1, "{}", end.stderr);
    assert!(
        line[0].contains(" INFO run ended outcome=failed reason=stopped exit_code=143 ")
            && line[0].contains(" signal=SIGTERM"),
        "{}",
        line[0]
    );
}
