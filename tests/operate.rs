//! bosun-deploy's day-2 verbs against moto through the test proxy (which runs tasks to
//! the end the test chooses, and answers ECS Exec and task protection as AWS does):
//! `run` (exit code, lines, reasons, Ctrl-C), `tasks`, `rollback` (and the
//! dead-letter deployment alarm), `exec` through a stand-in session-manager-plugin.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::proxy::{self, TaskEnd};
use common::world::*;
use common::*;

/// The example, with ECS Exec on for the nightly job.
fn stack(w: &World, dir: &TempDir) -> String {
    let text = w.example().replace(
        "      command: [\"node\", \"dist/nightly.js\"]\n",
        "      command: [\"node\", \"dist/nightly.js\"]\n      enableExecuteCommand: true\n",
    );
    assert!(text.contains("enableExecuteCommand"));
    write(dir, "bosun.yaml", &text)
}

fn body(r: &proxy::Request) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap()
}

#[test]
fn run_passes_the_workers_exit_code_and_lines_and_tasks_lists_what_ran() {
    let w = World::new();
    let dir = TempDir::new("run");
    let file = stack(&w, &dir);
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A run that works and fails with 3: its lines on stdout, its code as run's.
    w.proxy.tasks_end(TaskEnd {
        polls: 1,
        exit_code: Some(3),
        reason: "Essential container in task exited".into(),
        log: Some(("/bosun/orders/nightly".into(), "nightly".into())),
        lines: vec!["nightly: starting".into(), "nightly: 2 rows bad".into()],
    });
    w.proxy.record();
    let out = w.deploy(&[
        "run",
        "nightly",
        "--stack",
        &file,
        "--env",
        "MODE=full",
        "--",
        "node",
        "fix.js",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["nightly: starting", "nightly: 2 rows bad"],
        "{err}"
    );
    assert!(err.contains("the worker exited with 3"), "{err}");
    let run = w.proxy.sent("RunTask");
    let b = body(&run);
    assert_eq!(b["cluster"], "orders-cluster");
    assert!(
        b["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with("task-definition/orders-nightly:1"),
        "{b}"
    );
    assert_eq!(b["launchType"], "FARGATE");
    assert_eq!(b["enableExecuteCommand"], true);
    assert_eq!(b["startedBy"], "bosun-deploy-run");
    assert_eq!(
        b["networkConfiguration"]["awsvpcConfiguration"]["subnets"],
        serde_json::json!(w.subnets)
    );
    assert_eq!(
        b["overrides"]["containerOverrides"],
        serde_json::json!([{ "name": "app", "command": ["node", "fix.js"], "environment": [{ "name": "MODE", "value": "full" }] }])
    );
    assert!(
        b["tags"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({ "key": "bosun:stack", "value": "orders" })),
        "{b}"
    );
    let first = w.proxy.recorded();

    // The spot service's task goes where its service's go; --no-wait prints its ARN.
    w.proxy.tasks_end(TaskEnd {
        polls: 1_000_000,
        ..TaskEnd::default()
    });
    w.proxy.record();
    let out = w.deploy(&["run", "worker", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let worker_task = stdout(&out).trim().to_owned();
    assert!(
        worker_task.contains(":task/orders-cluster/"),
        "{worker_task}"
    );
    let b = body(&w.proxy.sent("RunTask"));
    assert!(b["launchType"].is_null(), "{b}");
    assert_eq!(
        b["capacityProviderStrategy"][0]["capacityProvider"],
        "FARGATE_SPOT"
    );
    assert!(b["overrides"].is_null(), "{b}");
    let second = w.proxy.recorded();

    // A task that never ran its container: exit 4 with ECS's reason.
    w.proxy.tasks_end(TaskEnd {
        polls: 0,
        exit_code: None,
        reason: "CannotPullContainerError: pull image manifest has been retried 5 time(s)".into(),
        ..TaskEnd::default()
    });
    let out = w.says(
        &["run", "nightly", "--stack", &file],
        4,
        "stopped before its container ran: CannotPullContainerError",
    );
    assert_eq!(stdout(&out), "");

    // tasks: the running worker task, its protection as ECS reports it; the job's
    // stopped runs with their exit codes; JSON for scripts.
    let out = w.deploy(&["tasks", "worker", "--stack", &file]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = worker_task.rsplit('/').next().unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with(id) && l.ends_with("unprotected")),
        "{text}"
    );
    w.proxy.protect(&worker_task);
    let text = stdout(&w.deploy(&["tasks", "worker", "--stack", &file]));
    assert!(
        text.lines()
            .any(|l| l.starts_with(id) && l.ends_with("  protected")),
        "{text}"
    );
    let text = stdout(&w.deploy(&["tasks", "nightly", "--stopped", "--stack", &file]));
    assert!(text.contains("    app: exit 3"), "{text}");
    assert!(text.contains("stopped: CannotPullContainerError"), "{text}");
    let out = w.deploy(&[
        "tasks",
        "nightly",
        "--stopped",
        "--output",
        "json",
        "--stack",
        &file,
    ]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&serde_json::Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["containers"]["app"]["exitCode"])
        .collect();
    assert!(codes.contains(&&serde_json::json!(3)), "{listed}");
    // A queue is no resource to run; a name the file lacks neither: usage errors.
    w.says(
        &["run", "jobsQueue", "--stack", &file],
        2,
        "'jobsQueue' is a sqs-queue",
    );
    w.says(
        &["tasks", "nope", "--stack", &file],
        2,
        "no resource named 'nope'",
    );

    let mut all = first;
    all.extend(second);
    check_with_models(&dir, &all);
}

#[test]
fn ctrl_c_stops_the_task_run_started() {
    let w = World::new();
    let dir = TempDir::new("runint");
    let file = stack(&w, &dir);
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    w.proxy.tasks_end(TaskEnd {
        polls: 1_000_000,
        ..TaskEnd::default()
    });
    w.proxy.record();
    let mut cmd = Command::new(DEPLOY);
    cmd.args(["run", "nightly", "--stack", &file])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in w.env() {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    wait_until(Duration::from_secs(30), "the task's first poll", || {
        w.proxy
            .actions()
            .iter()
            .any(|a| a == "DescribeTasks")
            .then_some(())
    });
    kill(pid, libc::SIGINT);
    let out = wait_output(child, Duration::from_secs(30));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("asked ECS to stop task"), "{err}");
    let stop = body(&w.proxy.sent("StopTask"));
    let started = w
        .proxy
        .recorded()
        .into_iter()
        .find(|r| r.action == "DescribeTasks")
        .map(|r| body(&r)["tasks"][0].clone())
        .unwrap();
    assert_eq!(stop["task"], started);
}

#[test]
fn rollback_goes_back_a_revision_and_dead_letters_roll_back_on_their_own() {
    let w = World::new();
    let dir = TempDir::new("rollback");
    let file = stack(&w, &dir);
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The worker's queue has a dead-letter queue: an alarm on messages arriving there,
    // wired to the service's deployments with rollback.
    let created = body(&w.proxy.sent("CreateService"));
    assert_eq!(
        created["deploymentConfiguration"]["alarms"],
        serde_json::json!({ "alarmNames": ["orders-worker-dead-letters"], "enable": true, "rollback": true })
    );
    let alarm = w.proxy.sent("PutMetricAlarm").form();
    assert_eq!(alarm["AlarmName"], "orders-worker-dead-letters");
    let dims: Vec<&String> = alarm
        .iter()
        .filter(|(k, _)| k.ends_with("Dimensions.member.1.Value"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(dims, ["orders-jobsQueue-dlq"], "{alarm:?}");
    assert!(alarm.values().any(|v| v == "DIFF(dlq0)"), "{alarm:?}");
    let first_apply = w.proxy.recorded();

    let changed = write(
        &dir,
        "changed.yaml",
        &std::fs::read_to_string(&file)
            .unwrap()
            .replace("value: info", "value: debug"),
    );
    let out = w.deploy(&["apply", "--no-wait", "--stack", &changed]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let running = |w: &World| {
        py(&w.moto, "import boto3,sys; e=boto3.client('ecs', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y'); t=e.describe_services(cluster='orders-cluster', services=['orders-worker'])['services'][0]['taskDefinition']; d=e.describe_task_definition(taskDefinition=t)['taskDefinition']; print('%s:%s' % (d['family'], d['revision']))").trim().to_owned()
    };
    assert_eq!(running(&w), "orders-worker:2");

    // Refused before any change: another family's revision, a job, a revision that
    // is not there.
    w.proxy.record();
    w.says(
        &[
            "rollback",
            "worker",
            "--to",
            "orders-nightly:1",
            "--stack",
            &changed,
        ],
        2,
        "a revision of orders-nightly, not of the service's own family orders-worker",
    );
    w.says(
        &["rollback", "nightly", "--stack", &changed],
        2,
        "'nightly' is a scheduled-job",
    );
    assert_eq!(w.proxy.mutating(), Vec::<String>::new());
    w.refuses(
        &["rollback", "worker", "--to", "9", "--stack", &changed],
        "orders-worker:9 is not an active revision (active: 1, 2)",
    );

    w.proxy.record();
    let out = w.deploy(&["rollback", "worker", "--no-wait", "--stack", &changed]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        text.contains("orders-worker:2 -> orders-worker:1"),
        "{text}"
    );
    assert!(
        text.contains("the next apply rolls forward again"),
        "{text}"
    );
    assert_eq!(running(&w), "orders-worker:1");
    let rollback = w.proxy.recorded();
    let updates: Vec<serde_json::Value> = rollback
        .iter()
        .filter(|r| r.action == "UpdateService")
        .map(body)
        .collect();
    assert_eq!(updates.len(), 1);
    assert!(updates[0]["taskDefinition"]
        .as_str()
        .unwrap()
        .ends_with("orders-worker:1"));
    // The lock was held and let go.
    let m = w.proxy.mutating();
    assert_eq!(m.first().map(String::as_str), Some("PutParameter"), "{m:?}");
    assert_eq!(
        m.last().map(String::as_str),
        Some("DeleteParameter"),
        "{m:?}"
    );

    // The file now differs; apply goes forward again.
    let out = w.deploy(&["diff", "--stack", &changed]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("orders-worker"), "{}", stdout(&out));
    let out = w.deploy(&["apply", "--no-wait", "--stack", &changed]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(running(&w), "orders-worker:2");

    // Turned off in the file: the alarm goes, the service's alarms are turned off.
    let off = write(
        &dir,
        "off.yaml",
        &std::fs::read_to_string(&changed).unwrap().replace(
            "      spot: true\n",
            "      spot: true\n      deployment: { rollbackOnDeadLetters: false }\n",
        ),
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &off]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let update = body(&w.proxy.sent("UpdateService"));
    assert_eq!(
        update["deploymentConfiguration"]["alarms"],
        serde_json::json!({ "alarmNames": [], "enable": false, "rollback": false })
    );
    assert!(w.proxy.actions().contains(&"DeleteAlarms".to_owned()));
    let off_apply = w.proxy.recorded();
    let out = w.deploy(&["diff", "--stack", &off]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let mut all = first_apply;
    all.extend(rollback);
    all.extend(off_apply);
    check_with_models(&dir, &all);
}

/// A stand-in session-manager-plugin: `--version` answers; a session records its
/// arguments and the session it was handed, and exits 7.
fn stand_in_plugin(dir: &TempDir) -> std::path::PathBuf {
    let bin = dir.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = dir.path("plugin.txt");
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 1.2.707.0; exit 0; fi\nfor a in \"$@\"; do echo \"arg:$a\"; done > {r}\necho \"env:$AWS_SSM_START_SESSION_RESPONSE\" >> {r}\nexit 7\n",
        r = record.display()
    );
    let p = bin.join("session-manager-plugin");
    std::fs::write(&p, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn exec_hands_the_plugin_the_session_and_refuses_what_it_cannot_do() {
    let w = World::new();
    let dir = TempDir::new("exec");
    let file = stack(&w, &dir);
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The job's task role may open ECS Exec's channels; the worker's may not.
    let policy = |role: &str| {
        w.proxy
            .recorded()
            .into_iter()
            .filter(|r| r.action == "PutRolePolicy")
            .map(|r| r.form())
            .find(|f| f["RoleName"] == role)
            .map(|f| f["PolicyDocument"].clone())
            .unwrap()
    };
    assert!(policy("orders-nightly-task").contains("ssmmessages:CreateControlChannel"));
    assert!(!policy("orders-worker-task").contains("ssmmessages"));
    let apply = w.proxy.recorded();

    let bin = stand_in_plugin(&dir);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let with_plugin = |args: &[&str]| {
        let mut env = w.env();
        env.push(("PATH", path.clone()));
        deploy(args, &env)
    };
    // Not enabled in the file, and no plugin: refused before any call.
    w.proxy.record();
    let out = with_plugin(&["exec", "worker", "--stack", &file]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("set `enableExecuteCommand: true`"),
        "{}",
        stderr(&out)
    );
    let out = w.deploy(&["exec", "nightly", "--stack", &file]);
    let err = stderr(&out);
    if !Path::new("/usr/local/bin/session-manager-plugin").exists() {
        assert_eq!(out.status.code(), Some(5), "{err}");
        assert!(
            err.contains("session-manager-working-with-install-plugin"),
            "{err}"
        );
    }
    assert_eq!(w.proxy.actions(), Vec::<String>::new());
    // No task runs: said. Two run: listed, not guessed between.
    let out = with_plugin(&["exec", "nightly", "--stack", &file]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nightly has no running task"),
        "{}",
        stderr(&out)
    );
    w.proxy.tasks_end(TaskEnd {
        polls: 1_000_000,
        ..TaskEnd::default()
    });
    let mut ids = Vec::new();
    for _ in 0..2 {
        let out = w.deploy(&["run", "nightly", "--no-wait", "--stack", &file]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        ids.push(stdout(&out).trim().rsplit('/').next().unwrap().to_owned());
    }
    let out = with_plugin(&["exec", "nightly", "--stack", &file]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("has 2 running tasks: choose one with --task ID"),
        "{err}"
    );
    assert!(ids.iter().all(|i| err.contains(i.as_str())), "{err}");

    w.proxy.record();
    let out = with_plugin(&[
        "exec", "nightly", "--task", &ids[1], "--stack", &file, "--", "ls", "-la",
    ]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "the plugin's own code: {}",
        stderr(&out)
    );
    let sent = body(&w.proxy.sent("ExecuteCommand"));
    assert_eq!(sent["command"], "ls -la");
    assert_eq!(sent["interactive"], true);
    assert_eq!(sent["container"], "app");
    assert!(sent["task"].as_str().unwrap().ends_with(&ids[1]));
    let record = std::fs::read_to_string(dir.path("plugin.txt")).unwrap();
    let args: Vec<&str> = record
        .lines()
        .filter_map(|l| l.strip_prefix("arg:"))
        .collect();
    assert_eq!(args[0], "AWS_SSM_START_SESSION_RESPONSE", "{record}");
    assert_eq!(args[1], "us-east-1");
    assert_eq!(args[2], "StartSession");
    let target: serde_json::Value = serde_json::from_str(args[4]).unwrap();
    assert_eq!(
        target["Target"],
        format!("ecs:orders-cluster_{}_{}-0", ids[1], ids[1])
    );
    assert_eq!(args[5], w.proxy.url());
    let session: serde_json::Value =
        serde_json::from_str(record.lines().find_map(|l| l.strip_prefix("env:")).unwrap()).unwrap();
    assert_eq!(session["SessionId"], "ecs-execute-command-0123");
    assert_eq!(session["TokenValue"], "token-from-the-proxy");
    let exec = w.proxy.recorded();
    let mut all = apply;
    all.extend(exec);
    check_with_models(&dir, &all);
}
