//! `--singleton`: bosun (with the real `bosun-aws` and the AWS SDK) against moto,
//! through the test proxy (which gives tasks the `createdAt` AWS gives them, pages
//! `ListTasks` by 10 and refuses calls on demand), with a fake ECS task metadata
//! endpoint saying which task this bosun is.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::proxy::Proxy;
use common::*;

const CLUSTER: &str = "jobs";
const FAMILY: &str = "orders-nightly";

/// The task metadata endpoint v4 of one task: `GET /v4/t/task`.
fn metadata(task_arn: &str, family: Option<&str>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut doc = serde_json::json!({
        "Cluster": format!("arn:aws:ecs:us-east-1:123456789012:cluster/{CLUSTER}"),
        "TaskARN": task_arn,
        "Revision": "1",
        "LaunchType": "FARGATE",
    });
    if let Some(f) = family {
        doc["Family"] = serde_json::json!(f);
    }
    let body = doc.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let reply = if head.starts_with("GET /v4/t/task ") {
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
            };
            let _ = s.write_all(reply.as_bytes());
        }
    });
    addr
}

fn py(endpoint: &str, code: &str) -> String {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let mut cmd = Command::new(py);
    cmd.args(["-c", code, endpoint]);
    let out = run_bounded(&mut cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const ECS: &str = "import boto3,sys; e=boto3.client('ecs', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y'); ec2=boto3.client('ec2', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')";

/// A cluster with `n` runs of the family (created through the proxy, oldest first)
/// and a run of another family; their ARNs.
fn runs(proxy: &Proxy, n: usize) -> Vec<String> {
    let code = format!(
        "{ECS}
net = {{'awsvpcConfiguration': {{'subnets': [ec2.describe_subnets()['Subnets'][0]['SubnetId']], 'securityGroups': [ec2.describe_security_groups()['SecurityGroups'][0]['GroupId']]}}}}
e.create_cluster(clusterName='{CLUSTER}')
for f in ['{FAMILY}', 'other']:
    e.register_task_definition(family=f, containerDefinitions=[{{'name': 'job', 'image': 'x', 'memory': 512}}], requiresCompatibilities=['FARGATE'], networkMode='awsvpc', cpu='256', memory='512')
e.run_task(cluster='{CLUSTER}', taskDefinition='other', launchType='FARGATE', networkConfiguration=net)
for _ in range({n}):
    print(e.run_task(cluster='{CLUSTER}', taskDefinition='{FAMILY}', launchType='FARGATE', networkConfiguration=net)['tasks'][0]['taskArn'])
"
    );
    py(&proxy.url(), &code).lines().map(str::to_owned).collect()
}

/// `bosun --singleton true -- touch FILE` as task `meta` (no metadata: outside ECS).
fn job(proxy: &Proxy, meta: Option<SocketAddr>, ran: &Path) -> Output {
    job_in(Mode::Subreaper, proxy, meta, ran)
}

fn job_in(mode: Mode, proxy: &Proxy, meta: Option<SocketAddr>, ran: &Path) -> Output {
    let mut cmd = command(
        mode,
        &[
            "--listen",
            "off",
            "--singleton",
            "true",
            "--",
            "touch",
            ran.to_str().unwrap(),
        ],
    );
    cmd.envs(proxy.env())
        .env_remove("ECS_CONTAINER_METADATA_URI_V4");
    if let Some(m) = meta {
        cmd.env("ECS_CONTAINER_METADATA_URI_V4", format!("http://{m}/v4/t"));
    }
    run_bounded(&mut cmd, Duration::from_secs(120))
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_later_run_ends_while_an_earlier_one_is_going_and_the_earliest_runs() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    proxy.page_lists(true);
    let arns = runs(&proxy, 12);
    assert_eq!(arns.len(), 12);
    let dir = TempDir::new("singleton");

    // The newest of 12 (ListTasks answers in two pages): eleven earlier runs.
    let ran = dir.path("newest");
    proxy.record();
    let out = job(&proxy, Some(metadata(&arns[11], Some(FAMILY))), &ran);
    let err = text(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!ran.exists(), "the worker ran: {err}");
    assert!(
        err.contains(
            "an earlier run of this job is still going: this run ends without starting the worker"
        ),
        "{err}"
    );
    assert!(err.contains(&arns[0]) && err.contains(&arns[10]), "{err}");
    let actions = proxy.actions();
    assert_eq!(
        actions.iter().filter(|a| *a == "ListTasks").count(),
        2,
        "{actions:?}"
    );
    assert!(actions.iter().all(|a| !is_mutating_call(a)), "{actions:?}");

    // The oldest: nothing before it (the other family's older run does not count),
    // with bosun as PID 1 and as a subreaper.
    for mode in modes() {
        let ran = dir.path(&format!("oldest-{mode:?}"));
        let out = job_in(mode, &proxy, Some(metadata(&arns[0], Some(FAMILY))), &ran);
        let err = text(&out);
        assert_eq!(out.status.code(), Some(0), "{mode:?}: {err}");
        assert!(ran.exists(), "{mode:?}: the worker did not run: {err}");
        assert!(err.contains("no earlier run of this job is going"), "{err}");
    }

    // Runs that ECS stopped are not going: the newest now runs.
    let stop =
        format!("{ECS}\nfor a in sys.argv[2:]:\n    e.stop_task(cluster='{CLUSTER}', task=a)");
    let mut cmd = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    cmd.args(["-c", &stop, &proxy.url()]).args(&arns[..11]);
    assert!(run_bounded(&mut cmd, Duration::from_secs(60))
        .status
        .success());
    let ran = dir.path("after-stop");
    let out = job(&proxy, Some(metadata(&arns[11], Some(FAMILY))), &ran);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(ran.exists(), "{}", text(&out));
}

fn is_mutating_call(action: &str) -> bool {
    common::proxy::is_mutating(action) || ["RunTask", "StopTask"].contains(&action)
}

#[test]
fn two_runs_created_in_the_same_instant_let_exactly_one_go_ahead() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let arns = runs(&proxy, 2);
    for a in &arns {
        proxy.task_created(a, 1_700_000_000.0);
    }
    let dir = TempDir::new("singleton-tie");
    let went: Vec<bool> = arns
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let ran = dir.path(&format!("run{i}"));
            let out = job(&proxy, Some(metadata(a, Some(FAMILY))), &ran);
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
            ran.exists()
        })
        .collect();
    assert_eq!(went.iter().filter(|w| **w).count(), 1, "{went:?}");
}

#[test]
fn a_check_that_cannot_be_made_in_ecs_starts_nothing_and_exits_1() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let arns = runs(&proxy, 1);
    let dir = TempDir::new("singleton-fail");

    // ECS refuses the read.
    proxy.deny("DescribeTasks");
    let ran = dir.path("denied");
    let out = job(&proxy, Some(metadata(&arns[0], Some(FAMILY))), &ran);
    let err = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!ran.exists());
    assert!(
        err.contains("cannot tell whether an earlier run is going") && err.contains("AccessDenied"),
        "{err}"
    );
    proxy.allow_all();

    // Throttling is retried (the SDK's own retry): the run goes ahead.
    proxy.throttle("ListTasks", 1);
    let ran = dir.path("throttled");
    let out = job(&proxy, Some(metadata(&arns[0], Some(FAMILY))), &ran);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(ran.exists(), "{}", text(&out));

    // This task is not among the family's: the metadata and ECS disagree.
    let ghost = format!("arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/0000");
    let ran = dir.path("ghost");
    let out = job(&proxy, Some(metadata(&ghost, Some(FAMILY))), &ran);
    let err = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!ran.exists());
    assert!(
        err.contains(&format!("this task ({ghost}) is not among")),
        "{err}"
    );

    // Metadata without the family.
    let ran = dir.path("no-family");
    let out = job(&proxy, Some(metadata(&arns[0], None)), &ran);
    let err = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("has no Family"), "{err}");
    assert!(!ran.exists());

    // A metadata endpoint that does not answer.
    let ran = dir.path("no-endpoint");
    let dead = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let out = job(&proxy, Some(dead), &ran);
    let err = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("ECS task metadata endpoint"), "{err}");
    assert!(!ran.exists());
}

#[test]
fn outside_ecs_the_run_goes_ahead_and_the_sidecar_refuses_the_option() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let dir = TempDir::new("singleton-local");
    let ran = dir.path("ran");
    proxy.record();
    let out = job(&proxy, None, &ran);
    let err = text(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(ran.exists());
    assert!(err.contains("not in an ECS task"), "{err}");
    assert!(proxy.actions().is_empty(), "{:?}", proxy.actions());

    let mut cmd = command(
        Mode::Subreaper,
        &["sidecar", "--listen", "off", "--singleton", "true"],
    );
    let out = run_bounded(&mut cmd, BOUND);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--singleton is for a worker"),
        "{}",
        text(&out)
    );
    let mut cmd = command(Mode::Subreaper, &["--singleton", "maybe", "--", "true"]);
    let out = run_bounded(&mut cmd, BOUND);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("possible values: true, false"),
        "{}",
        text(&out)
    );
}
