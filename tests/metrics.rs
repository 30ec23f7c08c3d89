//! Metrics against real peers: CloudWatch and SQS in `moto_server` through the real
//! AWS SDK, real cgroups, a local ECS task metadata server, EMF checked against the
//! specification's required fields.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

use common::*;

const SLEEPER: &str = "trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done";

fn start_env(args: &[&str], env: &[(&str, String)]) -> Run {
    let mut cmd = command(Mode::Subreaper, args);
    cmd.stdin(Stdio::null())
        .env_remove("ECS_CONTAINER_METADATA_URI_V4");
    for (k, v) in env {
        cmd.env(k, v);
    }
    start_cmd(Mode::Subreaper, cmd)
}

/// Start bosun (endpoint on a free port) pointed at `moto`, with `env` on top.
fn start_with_moto(
    moto: &Moto,
    args: &[&str],
    env: &[(&str, String)],
) -> (Run, std::net::SocketAddr) {
    let run = start_env(args, &[moto.env(), env.to_vec()].concat());
    let addr = endpoint_addr(&run);
    (run, addr)
}

/// A queue in `moto` holding `n` messages; its URL.
fn queue_with(moto: &Moto, name: &str, n: usize) -> String {
    let rt = runtime();
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config(&rt));
    rt.block_on(async {
        let url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        for i in 0..n {
            sqs.send_message()
                .queue_url(&url)
                .message_body(format!("m{i}"))
                .send()
                .await
                .unwrap();
        }
        url
    })
}

/// A counter or gauge of the endpoint's `/metrics` (0 while it is not there).
fn metric(addr: std::net::SocketAddr, name: &str) -> u64 {
    let (_, m) = http_get(addr, "/metrics").unwrap_or_default();
    m.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Check one EMF document against the specification's MUSTs.
fn assert_valid_emf(doc: &serde_json::Value) {
    let aws = doc["_aws"].as_object().expect("_aws object");
    assert!(aws["Timestamp"].as_u64().is_some(), "Timestamp: {doc}");
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics array");
    assert!(!directives.is_empty());
    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    for d in directives {
        let ns = d["Namespace"].as_str().expect("Namespace");
        assert!(!ns.is_empty() && ns.len() <= 255);
        for set in d["Dimensions"].as_array().expect("Dimensions") {
            let set = set.as_array().expect("DimensionSet");
            assert!(set.len() <= 30);
            for key in set {
                let key = key.as_str().unwrap();
                assert!(
                    doc[key].is_string(),
                    "dimension {key} must be a string member: {doc}"
                );
            }
        }
        for m in d["Metrics"].as_array().expect("Metrics") {
            let name = m["Name"].as_str().expect("Name");
            assert!(
                doc[name].is_number(),
                "metric {name} must be a number member: {doc}"
            );
            if let Some(u) = m.get("Unit") {
                assert!(UNITS.contains(&u.as_str().unwrap()), "unit {u}");
            }
            if let Some(r) = m.get("StorageResolution") {
                assert!(r == 1 || r == 60, "StorageResolution {r}");
            }
        }
    }
}

#[test]
fn emf_lines_are_valid_and_one_per_interval() {
    let run = start_env(
        &[
            "--listen",
            "off",
            "--metrics",
            "emf",
            "--metrics-interval",
            "0.3",
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
        &[
            ("BOSUN_SERVICE_NAME", "orders".into()),
            ("BOSUN_CLUSTER_NAME", "prod".into()),
        ],
    );
    wait_until(BOUND, "three EMF lines", || {
        (emf_lines(&run.stdout()).len() >= 3).then_some(())
    });
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    let docs = emf_lines(&end.stdout);
    // Every line of stdout other than the worker's is a whole EMF document.
    for line in end.stdout.lines().filter(|l| *l != "ready") {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "broken line: {line}"
        );
    }
    for d in &docs {
        assert_valid_emf(d);
        assert_eq!(d["ServiceName"], "orders");
        assert_eq!(d["ClusterName"], "prod");
        assert_eq!(d["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Bosun");
        let cpu = d["CPUUtilization"].as_f64().unwrap();
        assert!((0.0..=400.0).contains(&cpu), "{cpu}");
        assert!(d["MemoryUsed"].as_f64().unwrap() > 0.0);
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["StorageResolution"],
            1
        );
    }
    // The stop flushed one last sample.
    assert!(end.stderr.contains("bosun exiting"), "{}", end.stderr);
}

#[test]
fn cloudwatch_receives_what_bosun_publishes() {
    let moto = Moto::start();
    let mut env = moto.env();
    env.push(("BOSUN_SERVICE_NAME", "orders".into()));
    env.push(("BOSUN_CLUSTER_NAME", "prod".into()));
    let run = start_env(
        &[
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "cloudwatch,emf",
            "--metrics-interval",
            "0.5",
            "--metrics-namespace",
            "BosunTest",
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
        &env,
    );
    wait_until(BOUND, "three samples", || {
        (emf_lines(&run.stdout()).len() >= 3).then_some(())
    });
    let rt = runtime();
    let cw = aws_sdk_cloudwatch::Client::new(&moto.sdk_config(&rt));
    let points = wait_until(BOUND, "CPUUtilization in CloudWatch", || {
        rt.block_on(async {
            let now = aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64,
            );
            let out = cw
                .get_metric_statistics()
                .namespace("BosunTest")
                .metric_name("CPUUtilization")
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name("ServiceName")
                        .value("orders")
                        .build(),
                )
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name("ClusterName")
                        .value("prod")
                        .build(),
                )
                .start_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                    now.secs() - 600,
                ))
                .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                    now.secs() + 60,
                ))
                .period(60)
                .statistics(aws_sdk_cloudwatch::types::Statistic::SampleCount)
                .statistics(aws_sdk_cloudwatch::types::Statistic::Maximum)
                .send()
                .await
                .ok()?;
            let n: f64 = out
                .datapoints()
                .iter()
                .filter_map(|d| d.sample_count())
                .sum();
            (n >= 2.0).then(|| out.datapoints().to_vec())
        })
    });
    let max = points
        .iter()
        .filter_map(|d| d.maximum())
        .fold(0.0, f64::max);
    assert!((0.0..=400.0).contains(&max), "{max}");
    // Every metric of the contract that applies here is there.
    let listed = rt.block_on(async {
        cw.list_metrics()
            .namespace("BosunTest")
            .send()
            .await
            .unwrap()
    });
    let names: Vec<&str> = listed
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    for want in [
        "CPUUtilization",
        "MemoryUtilization",
        "MemoryUsed",
        "WorkerRestarts",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    assert_eq!(end.code, Some(0));
    assert!(!end.stderr.contains("WARN"), "{}", end.stderr);
}

#[test]
fn queue_depth_follows_messages_and_backlog_divides_by_running_tasks() {
    let moto = Moto::start();
    let url = queue_with(&moto, "jobs", 5);
    let rt = runtime();
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config(&rt));
    let (run, addr) = start_with_moto(
        &moto,
        &[
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "emf",
            "--metrics-interval",
            "0.3",
            "--queue-url",
            &url,
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
        &[("BOSUN_RUNNING_TASKS", "2".into())],
    );
    let latest = |run: &Run| emf_lines(&run.stdout()).last().cloned();
    wait_until(BOUND, "5 visible", || {
        latest(&run)
            .filter(|d| d["ApproximateNumberOfMessagesVisible"] == 5.0)
            .map(|_| ())
    });
    let d = latest(&run).unwrap();
    assert_eq!(d["BacklogPerTask"], 2.5, "5/2, not rounded up: {d}");
    assert_valid_emf(&d);
    // Receive two: 3 visible, 2 in flight.
    rt.block_on(async {
        let mut got = 0;
        while got < 2 {
            let out = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(2 - got)
                .visibility_timeout(600)
                .send()
                .await
                .unwrap();
            got += out.messages().len() as i32;
        }
    });
    wait_until(BOUND, "3 visible, 2 in flight", || {
        latest(&run)
            .filter(|d| {
                d["ApproximateNumberOfMessagesVisible"] == 3.0
                    && d["ApproximateNumberOfMessagesNotVisible"] == 2.0
            })
            .map(|_| ())
    });
    let (_, metrics) = http_get(addr, "/metrics").unwrap();
    assert!(
        metrics.contains("bosun_queue_messages_visible 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bosun_queue_messages_in_flight 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bosun_queue_backlog_per_task 1.5\n"),
        "{metrics}"
    );
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(BOUND).code, Some(0));
}

/// With no running count (ECS refused or throttled DescribeServices, or no service to
/// ask), the queue's depth is published and its backlog per task is not: the whole
/// queue taken as one task's backlog would scale the service out for nothing.
#[test]
fn no_running_count_no_backlog_per_task() {
    let moto = Moto::start();
    let url = queue_with(&moto, "jobs", 5);
    let (run, addr) = start_with_moto(
        &moto,
        &[
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "emf",
            "--metrics-interval",
            "0.3",
            "--queue-url",
            &url,
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
        &[],
    );
    wait_until(BOUND, "three samples with 5 visible", || {
        let lines = emf_lines(&run.stdout());
        (lines
            .iter()
            .filter(|d| d["ApproximateNumberOfMessagesVisible"] == 5.0)
            .count()
            >= 3)
            .then_some(lines)
    })
    .iter()
    .for_each(|d| assert!(d.get("BacklogPerTask").is_none(), "{d}"));
    let (_, metrics) = http_get(addr, "/metrics").unwrap();
    assert!(
        metrics.contains("bosun_queue_messages_visible 5"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("\nbosun_queue_backlog_per_task "),
        "{metrics}"
    );
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(BOUND).code, Some(0));
}

#[test]
fn a_bad_queue_url_is_one_warning_not_a_flood() {
    let moto = Moto::start();
    let url = format!("{}/123456789012/no-such-queue", moto.url());
    let run = start_env(
        &[
            "--listen",
            "off",
            "--metrics",
            "emf",
            "--metrics-interval",
            "0.1",
            "--queue-url",
            &url,
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
        &moto.env(),
    );
    wait_until(BOUND, "ten samples", || {
        (emf_lines(&run.stdout()).len() >= 10).then_some(())
    });
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    assert_eq!(end.code, Some(0));
    let warnings = end
        .stderr
        .lines()
        .filter(|l| l.contains("SQS GetQueueAttributes"))
        .count();
    assert_eq!(warnings, 1, "{}", end.stderr);
    assert!(
        end.stderr.contains("no-such-queue"),
        "the warning names the queue: {}",
        end.stderr
    );
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn cloudwatch_outage_leaves_the_worker_alone_and_publishing_resumes() {
    let mut moto = Moto::start();
    let (run, addr) = start_with_moto(
        &moto,
        &[
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "cloudwatch",
            "--metrics-interval",
            "0.1",
            "--",
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done",
        ],
        &[],
    );
    let counter = |name: &str| metric(addr, name);
    wait_until(BOUND, "first samples published", || {
        (counter("bosun_metrics_published_total") >= 3).then_some(())
    });
    let rss_before = rss_kib(run.pid);
    moto.kill();
    // The buffer holds 60 samples: at 0.1 s, 100+ samples overflow it.
    let ticks_at_kill = run.stdout().lines().count();
    wait_until(Duration::from_secs(40), "samples dropped", || {
        (counter("bosun_metrics_dropped_total") >= 20).then_some(())
    });
    let ticks_now = run.stdout().lines().count();
    assert!(
        ticks_now > ticks_at_kill + 50,
        "the worker was held up: {ticks_at_kill} -> {ticks_now}"
    );
    let rss_after = rss_kib(run.pid);
    assert!(
        rss_after < rss_before + 4096,
        "memory grew: {rss_before} KiB -> {rss_after} KiB"
    );
    moto.restart();
    let published = counter("bosun_metrics_published_total");
    wait_until(Duration::from_secs(90), "publishing resumed", || {
        (counter("bosun_metrics_published_total") > published + 5).then_some(())
    });
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    assert_eq!(end.code, Some(143), "the ticking shell dies of the TERM");
    let warned = end
        .stderr
        .lines()
        .filter(|l| l.contains("CloudWatch PutMetricData") && l.contains("WARN"))
        .count();
    assert!(
        warned <= 2,
        "a log flood: {warned} warnings\n{}",
        end.stderr
    );
    assert!(end.stderr.contains("working again"), "{}", end.stderr);
}

/// A local ECS task metadata endpoint serving the documented `/task` shape.
fn metadata_server(body: String) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let ok = req.starts_with("GET /v4/abc/task ");
            let (status, payload) = if ok {
                ("200 OK", body.as_str())
            } else {
                ("404 Not Found", "{}")
            };
            let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}", payload.len());
        }
    });
    addr
}

#[test]
fn ecs_task_metadata_gives_identity_and_limits() {
    let body = serde_json::json!({
        "Cluster": "arn:aws:ecs:us-west-2:111122223333:cluster/prod-cluster",
        "ServiceName": "orders-worker",
        "TaskARN": "arn:aws:ecs:us-west-2:111122223333:task/prod-cluster/158d1c8083dd49d6b527399fd6414f5c",
        "Family": "orders", "Revision": "3", "DesiredStatus": "RUNNING", "KnownStatus": "RUNNING",
        "Limits": { "CPU": 0.5, "Memory": 256 },
        "LaunchType": "EC2", "Containers": []
    })
    .to_string();
    let server = metadata_server(body);
    let run = start_env(
        &[
            "--listen",
            "off",
            "--metrics",
            "emf",
            "--metrics-interval",
            "0.3",
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
        &[(
            "ECS_CONTAINER_METADATA_URI_V4",
            format!("http://{server}/v4/abc"),
        )],
    );
    wait_until(BOUND, "two EMF lines", || {
        (emf_lines(&run.stdout()).len() >= 2).then_some(())
    });
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    assert!(end.stderr.contains("cpu_limit_cores=0.5"), "{}", end.stderr);
    assert!(
        end.stderr
            .contains(&format!("memory_limit_bytes={}", 256 * 1024 * 1024)),
        "{}",
        end.stderr
    );
    for d in emf_lines(&end.stdout) {
        assert_valid_emf(&d);
        assert_eq!(d["ServiceName"], "orders-worker");
        assert_eq!(d["ClusterName"], "prod-cluster");
        let used = d["MemoryUsed"].as_f64().unwrap();
        let pct = d["MemoryUtilization"].as_f64().unwrap();
        let expect = used / (256.0 * 1024.0 * 1024.0) * 100.0;
        assert!((pct - expect).abs() < 0.02, "{pct} vs {expect}");
    }
}

/// A v1 or v2 cgroup made for one test, removed on drop.
struct TestCgroup {
    dirs: Vec<std::path::PathBuf>,
}

impl TestCgroup {
    /// CPU quota (cores) and memory limit (bytes), in whichever hierarchy the machine
    /// mounts; `None` when it cannot be made here (not root, no writable controllers).
    fn new(tag: &str, cores: f64, memory: u64) -> Option<TestCgroup> {
        if !is_root() {
            return None;
        }
        let name = format!("bosun-test-{tag}-{}", std::process::id());
        let v2_root = std::path::Path::new("/sys/fs/cgroup");
        let controllers =
            std::fs::read_to_string(v2_root.join("cgroup.controllers")).unwrap_or_default();
        if controllers.contains("cpu") && controllers.contains("memory") {
            let _ = std::fs::write(v2_root.join("cgroup.subtree_control"), "+cpu +memory");
            let d = v2_root.join(&name);
            std::fs::create_dir_all(&d).ok()?;
            std::fs::write(
                d.join("cpu.max"),
                format!("{} 100000", (cores * 100000.0) as u64),
            )
            .ok()?;
            std::fs::write(d.join("memory.max"), memory.to_string()).ok()?;
            return Some(TestCgroup { dirs: vec![d] });
        }
        let cpu = ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"]
            .iter()
            .map(std::path::Path::new)
            .find(|p| p.join("cpu.cfs_quota_us").exists())?;
        let mem = std::path::Path::new("/sys/fs/cgroup/memory");
        let cpu_dir = cpu.join(&name);
        let mem_dir = mem.join(&name);
        std::fs::create_dir_all(&cpu_dir).ok()?;
        std::fs::create_dir_all(&mem_dir).ok()?;
        std::fs::write(cpu_dir.join("cpu.cfs_period_us"), "100000").ok()?;
        std::fs::write(
            cpu_dir.join("cpu.cfs_quota_us"),
            ((cores * 100000.0) as u64).to_string(),
        )
        .ok()?;
        std::fs::write(mem_dir.join("memory.limit_in_bytes"), memory.to_string()).ok()?;
        let mut dirs = vec![cpu_dir, mem_dir];
        // A separate cpuacct hierarchy needs the process too.
        let acct = std::path::Path::new("/sys/fs/cgroup/cpuacct");
        if acct.join("cpuacct.usage").exists() && !cpu.join("cpuacct.usage").exists() {
            let d = acct.join(&name);
            std::fs::create_dir_all(&d).ok()?;
            dirs.push(d);
        }
        Some(TestCgroup { dirs })
    }

    /// A shell prefix that moves itself into the cgroup and then execs bosun.
    fn enter(&self) -> String {
        self.dirs
            .iter()
            .map(|d| format!("echo $$ > {}/cgroup.procs; ", d.display()))
            .collect()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for d in &self.dirs {
            // Move anything left to the parent, then remove.
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for p in procs.split_whitespace() {
                    kill(p.parse().unwrap_or(0), libc::SIGKILL);
                }
            }
            for _ in 0..100 {
                if std::fs::remove_dir(d).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn run_in_cgroup(cg: &TestCgroup, worker: &str, wait_lines: usize) -> Vec<serde_json::Value> {
    let script = format!(
        "{}exec {} --listen off --metrics emf --metrics-interval 1 -- {}",
        cg.enter(),
        BOSUN,
        worker
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", &script])
        .stdin(Stdio::null())
        .env_remove("ECS_CONTAINER_METADATA_URI_V4");
    let run = start_cmd(Mode::Subreaper, cmd);
    wait_until(Duration::from_secs(30), "EMF lines", || {
        (emf_lines(&run.stdout()).len() >= wait_lines).then_some(())
    });
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    emf_lines(&end.stdout)
}

#[test]
fn real_cgroup_cpu_quota_half_a_core_spinning_is_about_100_percent() {
    let Some(cg) = TestCgroup::new("cpu", 0.5, 512 << 20) else {
        eprintln!("SKIP: cannot create a cgroup with a CPU quota here");
        return;
    };
    let docs = run_in_cgroup(&cg, "sh -c 'trap \"exit 0\" TERM; while :; do :; done'", 4);
    // Skip the first interval (the spin starts within it) and the final sample (taken
    // while the worker is being stopped).
    let cpus: Vec<f64> = docs[1..docs.len() - 1]
        .iter()
        .filter_map(|d| d["CPUUtilization"].as_f64())
        .collect();
    assert!(!cpus.is_empty());
    for c in &cpus {
        // About 100 %: at least 60 % even on a machine busy with other tests (against
        // the host's 2 cores it would read 25 %).
        assert!(
            (60.0..=115.0).contains(c),
            "CPUUtilization {c} (all: {cpus:?})"
        );
    }
}

#[test]
fn real_cgroup_memory_100_of_200_mib_is_about_50_percent() {
    let Some(cg) = TestCgroup::new("mem", 2.0, 200 << 20) else {
        eprintln!("SKIP: cannot create a cgroup with a memory limit here");
        return;
    };
    let worker = "python3 -c 'import signal,sys,time; b = b\"x\" * (100 << 20); signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); print(\"held\", flush=True); time.sleep(600)'";
    let docs = run_in_cgroup(&cg, worker, 4);
    // The samples while the worker held its memory (not the final one, taken as it
    // exits): 100 MiB of data plus the interpreter and bosun (a few MiB).
    let held = &docs[docs.len() - 2];
    let pct = held["MemoryUtilization"].as_f64().unwrap();
    assert!(
        (48.0..=62.0).contains(&pct),
        "MemoryUtilization {pct}: {held}"
    );
    assert!(
        held["MemoryUsed"].as_f64().unwrap() >= (100 << 20) as f64,
        "{held}"
    );
}

/// The pid of bosun's AWS helper (`bosun-aws`, a child of bosun's services thread).
fn helper_of(bosun: i32) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (comm, rest) = stat.rsplit_once(')')?;
        let ppid: i32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        (comm.ends_with("(bosun-aws") && ppid == bosun && alive(pid)).then_some(pid)
    })
}

#[test]
fn the_aws_helper_is_restarted_when_killed_never_holds_up_a_stop_and_never_outlives_bosun() {
    let moto = Moto::start();
    let (run, addr) = start_with_moto(
        &moto,
        &[
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "cloudwatch",
            "--metrics-interval",
            "0.2",
            "--stop-timeout",
            "60",
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
        &[],
    );
    let published = || metric(addr, "bosun_metrics_published_total");
    wait_until(BOUND, "samples published", || {
        (published() >= 2).then_some(())
    });
    let first = wait_until(BOUND, "the helper", || helper_of(run.pid));
    let worker = wait_until(BOUND, "the worker", || {
        children_of(run.pid).into_iter().find(|&p| p != first)
    });

    // A crash of the SDK's process is not the worker's problem: it is started again.
    kill(first, libc::SIGKILL);
    let second = wait_until(BOUND, "a new helper", || {
        helper_of(run.pid).filter(|&p| p != first)
    });
    assert!(alive(worker), "the worker was touched");
    let before = published();
    wait_until(BOUND, "publishing after the restart", || {
        (published() > before + 1).then_some(())
    });

    // The worker ends at once on TERM: bosun does not wait out the 60 s grace for its
    // helper, flushes, and leaves nothing behind.
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    assert_eq!(end.code, Some(0), "{}", end.stderr);
    assert!(
        end.elapsed < Duration::from_secs(30),
        "the stop waited for the helper: {:?}",
        end.elapsed
    );
    assert!(
        end.stderr.contains("final metrics flushed"),
        "{}",
        end.stderr
    );
    assert!(!alive(second), "the helper outlived bosun");
    assert!(!alive(worker));
}

#[test]
fn cloudwatch_without_the_helper_is_a_usage_error_and_nothing_starts() {
    let dir = TempDir::new("nohelper");
    let lone = dir.path("bosun");
    std::fs::copy(env!("CARGO_BIN_EXE_bosun"), &lone).unwrap();
    let marker = dir.path("started");
    for args in [
        vec!["--metrics", "cloudwatch"],
        vec!["--queue-url", "http://127.0.0.1:1/q"],
    ] {
        let mut cmd = std::process::Command::new(&lone);
        cmd.args(&args)
            .args(["--listen", "off", "--", "touch"])
            .arg(&marker)
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null());
        let out = run_bounded(&mut cmd, BOUND);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(args[0]) && stderr.contains("bosun-aws"),
            "{stderr}"
        );
        assert!(!marker.exists(), "the worker ran");
    }
}

/// A TLS front for a local port, in Python's standard library: AWS's endpoints are
/// HTTPS, moto's is not. Prints the port it listens on.
const TLS_FRONT: &str = r#"
import socket, ssl, sys, threading
cert, key, upstream = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(64)
print(srv.getsockname()[1], flush=True)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(c):
    try:
        t = ctx.wrap_socket(c, server_side=True)
    except (ssl.SSLError, OSError):
        c.close()
        return
    u = socket.create_connection(("127.0.0.1", upstream))
    threading.Thread(target=pipe, args=(t, u), daemon=True).start()
    pipe(u, t)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// A child process killed when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_helper_speaks_https_to_aws_and_checks_the_certificate() {
    let moto = Moto::start();
    let url = queue_with(&moto, "tls", 3);
    // A CA of the test's own, and a certificate for 127.0.0.1 that it signs.
    let dir = TempDir::new("tls");
    let (ca, ca_key) = (dir.path("ca.pem"), dir.path("ca.key"));
    let (csr, cert, key) = (
        dir.path("leaf.csr"),
        dir.path("cert.pem"),
        dir.path("key.pem"),
    );
    let ext = dir.path("leaf.ext");
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\n").unwrap();
    let openssl = |args: &[&std::ffi::OsStr]| {
        let out = run_bounded(
            std::process::Command::new("openssl")
                .args(args)
                .stdin(Stdio::null()),
            BOUND,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    openssl(&[
        os("req"),
        os("-x509"),
        os("-newkey"),
        os("rsa:2048"),
        os("-nodes"),
        os("-days"),
        os("1"),
        os("-subj"),
        os("/CN=bosun test CA"),
        os("-keyout"),
        ca_key.as_os_str(),
        os("-out"),
        ca.as_os_str(),
    ]);
    openssl(&[
        os("req"),
        os("-newkey"),
        os("rsa:2048"),
        os("-nodes"),
        os("-subj"),
        os("/CN=127.0.0.1"),
        os("-keyout"),
        key.as_os_str(),
        os("-out"),
        csr.as_os_str(),
    ]);
    openssl(&[
        os("x509"),
        os("-req"),
        os("-in"),
        csr.as_os_str(),
        os("-CA"),
        ca.as_os_str(),
        os("-CAkey"),
        ca_key.as_os_str(),
        os("-CAcreateserial"),
        os("-days"),
        os("1"),
        os("-extfile"),
        ext.as_os_str(),
        os("-out"),
        cert.as_os_str(),
    ]);
    let mut front = Killed(
        std::process::Command::new("python3")
            .args(["-c", TLS_FRONT])
            .arg(&cert)
            .arg(&key)
            .arg(moto.port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3"),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(front.0.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let port: u16 = line.trim().parse().expect("the TLS front's port");

    for trusted in [true, false] {
        let mut env = vec![("AWS_ENDPOINT_URL", format!("https://127.0.0.1:{port}"))];
        if trusted {
            env.push(("SSL_CERT_FILE", ca.display().to_string()));
        }
        let (run, addr) = start_with_moto(
            &moto,
            &[
                "--listen",
                "127.0.0.1:0",
                "--metrics-interval",
                "0.3",
                "--queue-url",
                &url,
                "--",
                "sh",
                "-c",
                SLEEPER,
            ],
            &env,
        );
        if trusted {
            wait_until(BOUND, "the queue depth over HTTPS", || {
                let (_, m) = http_get(addr, "/metrics").ok()?;
                m.lines()
                    .any(|l| l == "bosun_queue_messages_visible 3")
                    .then_some(())
            });
        } else {
            // A certificate nobody vouches for: no figure, and the log says why.
            run.wait_stderr("SQS GetQueueAttributes");
            let (_, m) = http_get(addr, "/metrics").unwrap();
            assert!(!m.contains("bosun_queue_messages_visible"), "{m}");
        }
        run.signal(libc::SIGTERM);
        let end = run.wait(BOUND);
        assert_eq!(end.code, Some(0), "{}", end.stderr);
        if !trusted {
            assert!(
                end.stderr.to_lowercase().contains("certificate"),
                "{}",
                end.stderr
            );
        }
    }
}

/// WorkerRestarts is the restarts of each interval (CloudWatch sums a Count over its
/// period), not the running total; Prometheus keeps the total as a counter.
#[test]
fn worker_restarts_are_published_per_interval() {
    let (run, addr) = start_with_endpoint(
        Mode::Subreaper,
        &[
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "emf",
            "--metrics-interval",
            "0.3",
            "--restart",
            "always",
            "--",
            "sh",
            "-c",
            "exit 1",
        ],
    );
    // Back-off doubles from 100 ms: restarts come fast, then seconds apart.
    let total = wait_until(BOUND, "four restarts", || {
        let (_, body) = http_get(addr, "/status").ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["worker"]["restarts"].as_u64().filter(|n| *n >= 4)
    });
    wait_until(BOUND, "two samples after it", || {
        (emf_lines(&run.stdout()).len() >= 2).then_some(())
    });
    let values: Vec<f64> = emf_lines(&run.stdout())
        .iter()
        .map(|d| d["WorkerRestarts"].as_f64().unwrap())
        .collect();
    let sum: f64 = values.iter().sum();
    assert!(
        sum >= 1.0 && sum <= (total + 1) as f64,
        "{values:?} total {total}"
    );
    // An interval with no restart after one with some: 0, not the total again.
    let first = values.iter().position(|v| *v >= 1.0).unwrap();
    assert!(values[first..].contains(&0.0), "{values:?}");
    let (_, metrics) = http_get(addr, "/metrics").unwrap();
    assert!(
        metrics.contains("# TYPE bosun_worker_restarts_total counter"),
        "{metrics}"
    );
    run.signal(libc::SIGTERM);
    run.wait(BOUND);
}

/// A worker that uses its whole grace still gets its last sample out: the final flush
/// has the reserve bosun keeps after the grace (bosun-deploy sets the grace that much
/// shorter than ECS's stopTimeout), not the grace that is already over.
#[test]
fn the_final_flush_is_not_skipped_when_the_worker_uses_its_whole_grace() {
    let run = start_env(
        &[
            "--metrics",
            "emf",
            "--metrics-interval",
            "3600",
            "--stop-timeout",
            "1.5",
            "--",
            "sh",
            "-c",
            "trap '' TERM; echo ready; while :; do sleep 0.05; done",
        ],
        &[],
    );
    run.wait_stdout("ready");
    run.signal(libc::SIGTERM);
    let end = run.wait(BOUND);
    let docs = emf_lines(&end.stdout);
    assert_eq!(
        docs.len(),
        1,
        "one last sample: {}{}",
        end.stdout,
        end.stderr
    );
    assert_valid_emf(&docs[0]);
    // The grace, then at most its reserve (0.5 s) for the SIGKILL and the flush.
    assert!(end.elapsed < Duration::from_secs(5), "{:?}", end.elapsed);
}

/// At a short interval, samples go to CloudWatch in batches (PutMetricData is billed
/// per request): 25 samples at 0.2 s take a handful of calls, not 25, and every sample
/// still gets there.
#[test]
fn short_intervals_publish_in_batches() {
    let moto = Moto::start();
    moto.record();
    let (run, addr) = start_with_moto(
        &moto,
        &[
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "cloudwatch",
            "--metrics-interval",
            "0.2",
            "--metrics-namespace",
            "BosunBatch",
            "--",
            "sh",
            "-c",
            SLEEPER,
        ],
        &[],
    );
    let published = wait_until(BOUND, "25 samples published", || {
        let n = metric(addr, "bosun_metrics_published_total");
        (n >= 25).then_some(n)
    });
    let calls = moto
        .recorded_actions()
        .iter()
        .filter(|a| *a == "PutMetricData")
        .count() as u64;
    assert!(
        calls >= 2 && calls * 5 <= published,
        "{calls} PutMetricData calls for {published} samples"
    );
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(BOUND).code, Some(0));
}

#[test]
fn the_final_emf_line_carries_the_runs_exit_status_and_duration() {
    let run = start_env(
        &[
            "--listen",
            "off",
            "--metrics",
            "emf",
            "--metrics-interval",
            "60",
            "--",
            "sh",
            "-c",
            "sleep 0.4; exit 3",
        ],
        &[("BOSUN_SERVICE_NAME", "nightly".into())],
    );
    let end = run.wait(BOUND);
    assert_eq!(end.code, Some(3), "{}", end.stderr);
    let docs = emf_lines(&end.stdout);
    // One interval never passed: the only document is the final flush's.
    assert_eq!(docs.len(), 1, "{}", end.stdout);
    let d = &docs[0];
    assert_valid_emf(d);
    assert_eq!(d["RunExitCode"].as_f64(), Some(3.0));
    let secs = d["RunDuration"].as_f64().unwrap();
    assert!((0.4..30.0).contains(&secs), "{secs}");
    let defs = d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap();
    let unit = |name: &str| {
        defs.iter()
            .find(|m| m["Name"] == name)
            .map(|m| m["Unit"].clone())
    };
    assert_eq!(unit("RunExitCode"), Some("None".into()));
    assert_eq!(unit("RunDuration"), Some("Seconds".into()));
}
