//! bosun-deploy: validation messages and locations, the rendered API inputs, and a
//! full apply / re-apply / change / delete cycle against moto_server through the real
//! AWS SDK, read back resource by resource.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

const DEPLOY: &str = env!("CARGO_BIN_EXE_bosun-deploy");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/stack/bosun.yaml");

fn deploy(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(DEPLOY);
    cmd.args(args)
        .stdin(Stdio::null())
        .env_remove("AWS_ACCOUNT_ID");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_bounded(&mut cmd, std::time::Duration::from_secs(120))
}

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let p = dir.path(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const HEAD: &str = "stack: orders\nnetwork: { subnets: [subnet-1] }\nresources:\n";

#[test]
fn the_example_is_valid() {
    let out = deploy(&["validate", "--stack", EXAMPLE], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn every_problem_is_reported_at_once_with_its_location() {
    let dir = TempDir::new("invalid");
    let text = "\
stack: orders
resources:
  q:
    type: sqs-queue
    properties: { visibilityTimeoutSeconds: 10, colour: red }
  w:
    type: worker-service
    properties:
      packaging: { type: prebuilt-image, properties: { image: x } }
      command: [run]
      stopTimeout: 150
      resources: { cpu: 0.25, memory: 4096 }
      environment:
        - { name: A, value: \"$ResourceParam('nope', 'url')\" }
        - { name: B, value: \"$Bogus('x')\" }
        - { name: C, value: \"$ResourceParam('q', 'colour')\" }
      connectTo: [q, ghost]
      internalHealthCheck: { healthCheckCommand: [x], intervalSeconds: 1, retries: 11 }
      logging: { retentionDays: 10 }
      scaling: { minInstances: 3, maxInstances: 2 }
  j:
    type: scheduled-job
    properties:
      packaging: { type: prebuilt-image, properties: { image: x } }
      command: [run]
      schedule: \"cron(0 3 * * * *)\"
      resources: { cpu: 3, memory: 512 }
      retryAttempts: 200
  z:
    type: lambda
";
    let file = write(&dir, "bad.yaml", text);
    let out = deploy(&["validate", "--stack", &file], &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    let expected = [
        "1:1: error: network: missing: worker-service and scheduled-job tasks run on Fargate (awsvpc) and need network.subnets",
        "5:49: error: resources.q.properties.colour: unknown key 'colour'",
        "11:7: error: resources.w.properties.stopTimeout: 150 is out of range: allowed 2..=120",
        "12:31: error: resources.w.properties.resources.memory: 4096 MiB does not go with 0.25 vCPU on Fargate: allowed 512, 1024, 2048",
        "14:22: error: resources.w.properties.environment.0.value: $ResourceParam: no resource named 'nope'",
        "15:22: error: resources.w.properties.environment.1.value: '$Bogus('x')': unknown directive (known: $Secret, $ResourceParam)",
        "16:22: error: resources.w.properties.environment.2.value: $ResourceParam: 'q' (sqs-queue) has no parameter 'colour': allowed url, arn, name",
        "17:22: error: resources.w.properties.connectTo.1: no resource named 'ghost'",
        "18:55: error: resources.w.properties.internalHealthCheck.intervalSeconds: 1 is out of range: allowed 5..=300",
        "18:75: error: resources.w.properties.internalHealthCheck.retries: 11 is out of range: allowed 1..=10",
        "19:18: error: resources.w.properties.logging.retentionDays: 10 is not a CloudWatch Logs retention: allowed 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
        "20:35: error: resources.w.properties.scaling.maxInstances: 2 is less than minInstances (3): allowed 1 <= minInstances <= maxInstances",
        "26:7: error: resources.j.properties.schedule: cron(0 3 * * * *): one of day-of-month ('*') and day-of-week ('*') must be '?'",
        "27:20: error: resources.j.properties.resources.cpu: 3 vCPU is not a Fargate size: allowed 0.25, 0.5, 1, 2, 4, 8, 16",
        "28:7: error: resources.j.properties.retryAttempts: 200 is out of range: allowed 0..=185",
        "30:5: error: resources.z.type: \"lambda\" is not one of [\"sqs-queue\",\"worker-service\",\"scheduled-job\"]",
    ];
    for e in expected {
        let line = format!("{file}:{e}");
        assert!(
            err.lines().any(|l| l == line),
            "missing:\n{line}\nin:\n{err}"
        );
    }
    assert_eq!(
        err.lines().filter(|l| l.contains(": error: ")).count(),
        expected.len(),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}: {} errors", expected.len())),
        "{err}"
    );
}

#[test]
fn each_rule_on_its_own() {
    let dir = TempDir::new("rules");
    let svc = |props: &str| {
        format!("{HEAD}  w:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x }} }}\n      command: [run]\n      resources: {{ cpu: 0.5, memory: 1024 }}\n{props}")
    };
    let job = |props: &str| {
        format!("{HEAD}  j:\n    type: scheduled-job\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x }} }}\n      command: [run]\n      resources: {{ cpu: 0.5, memory: 1024 }}\n{props}")
    };
    let cases: Vec<(String, &str)> = vec![
        (job("      schedule: \"rate(1 minutes)\"\n"), "10:7: error: resources.j.properties.schedule: rate(1 minutes): a value of 1 takes the singular: rate(1 minute)"),
        (job("      schedule: \"cron(0 25 ? * MON *)\"\n"), "hours: 25 is out of range: allowed 0..23"),
        (job("      schedule: \"at(2026-02-30T00:00:00)\"\n"), "day 30 is not in 01..28"),
        (job("      schedule: \"rate(5 minutes)\"\n      maxEventAgeSeconds: 30\n"), "maxEventAgeSeconds: 30 is out of range: allowed 60..=86400"),
        (job("      schedule: \"rate(5 minutes)\"\n      timezone: Mars\n"), "'Mars' is not an IANA time zone name"),
        (svc("      internalHealthCheck: { healthCheckCommand: [x], timeoutSeconds: 61 }\n"), "timeoutSeconds: 61 is out of range: allowed 2..=60"),
        (svc("      internalHealthCheck: { healthCheckCommand: [x], startPeriodSeconds: 301 }\n"), "startPeriodSeconds: 301 is out of range: allowed 0..=300"),
        (svc("      scaling: { minInstances: 0, maxInstances: 2 }\n"), "minInstances: 0 is out of range"),
        (svc("      scaling: { scalingPolicy: { keepBacklogPerInstanceUnder: 10 } }\n"), "a backlog target needs a queue"),
        (svc("      scaling: { scalingPolicy: { keepAvgCpuUtilizationUnder: 120 } }\n"), "120 is out of range: allowed above 0 up to 100"),
        (svc("      spot: true\n      colour: red\n"), "unknown key 'colour'"),
        (svc("      environment: [{ name: A, value: \"$Secret('')\" }]\n"), "expected $Secret('name') or $Secret('name.key')"),
        (svc("      environment: [{ name: A, value: a }, { name: A, value: b }]\n"), "'A' is set twice"),
        (format!("{HEAD}  q:\n    type: sqs-queue\n    properties: {{ deadLetterQueue: {{ targetQueue: q, maxReceiveCount: 5 }} }}\n"), "a queue cannot be its own dead-letter queue"),
        (format!("{HEAD}  q:\n    type: sqs-queue\n    properties: {{ messageRetentionSeconds: 30 }}\n"), "messageRetentionSeconds: 30 is out of range: allowed 60..=1209600"),
        (format!("{HEAD}  w:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x }} }}\n      resources: {{ cpu: 0.5, memory: 1024 }}\n"), "missing command (or entryPoint)"),
        ("stack: a\nresources: { q: { type: sqs-queue }\n".into(), "not valid YAML"),
        ("stack: a\nstack: b\nresources: {}\n".into(), "2:1: error: (file): not valid YAML: duplicate key 'stack'"),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let file = write(&dir, &format!("case{i}.yaml"), text);
        let out = deploy(&["validate", "--stack", &file], &[]);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(3),
            "case {i} should fail: {text}\n{err}"
        );
        assert!(err.contains(needle), "case {i}: {needle:?} not in\n{err}");
        assert!(
            err.contains(&format!("{file}:")),
            "case {i}: no file:line:col in\n{err}"
        );
    }
}

#[test]
fn unsafe_choices_are_warnings() {
    let dir = TempDir::new("warn");
    let text = format!("{HEAD}  q:\n    type: sqs-queue\n    properties: {{ visibilityTimeoutSeconds: 20 }}\n  w:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x }} }}\n      command: [run]\n      resources: {{ cpu: 0.5, memory: 1024 }}\n      connectTo: [q]\n      stopTimeout: 60\n");
    let file = write(&dir, "warn.yaml", &text);
    let out = deploy(&["validate", "--stack", &file], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("6:19: warning: resources.q.properties.visibilityTimeoutSeconds: visibility timeout 20 s is shorter than w's stopTimeout 60 s"), "{err}");
}

#[test]
fn render_wires_bosun_in() {
    let out = deploy(
        &["render", "--stack", EXAMPLE],
        &[
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_ACCOUNT_ID", "111122223333".into()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let td = plan["taskDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["family"] == "orders-worker")
        .unwrap();
    let c = &td["containerDefinitions"][0];
    assert_eq!(
        c["entryPoint"],
        serde_json::json!(["/usr/local/bin/bosun", "--"])
    );
    assert_eq!(c["command"], serde_json::json!(["node", "dist/main.js"]));
    assert_eq!(
        c["healthCheck"],
        serde_json::json!({ "command": ["CMD", "/usr/local/bin/bosun", "probe"], "interval": 20, "timeout": 5, "retries": 2, "startPeriod": 150 })
    );
    assert_eq!(c["stopTimeout"], 30);
    let env: std::collections::BTreeMap<String, String> = c["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        env["BOSUN_STOP_TIMEOUT"], "28",
        "bosun's grace a little shorter than ECS's"
    );
    assert_eq!(env["BOSUN_HEALTH_CMD"], "node dist/health.js");
    assert_eq!(env["BOSUN_HEALTH_INTERVAL"], "20");
    assert_eq!(env["BOSUN_METRICS"], "cloudwatch");
    let url = "https://sqs.eu-west-1.amazonaws.com/111122223333/orders-jobsQueue";
    assert_eq!(env["BOSUN_QUEUE_URL"], url);
    assert_eq!(env["QUEUE_URL"], url);
    assert_eq!(env["STP_JOBS_QUEUE_URL"], url);
    assert_eq!(
        env["STP_JOBS_QUEUE_ARN"],
        "arn:aws:sqs:eu-west-1:111122223333:orders-jobsQueue"
    );
    assert!(
        !env.contains_key("DB_PASSWORD"),
        "a secret must not be plaintext environment"
    );
    assert_eq!(
        c["secrets"],
        serde_json::json!([{ "name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:dbSecret:password::" }])
    );
    assert_eq!(
        c["logConfiguration"]["options"]["awslogs-group"],
        "/bosun/orders/worker"
    );
    assert_eq!(td["cpu"], "256");
    assert_eq!(td["memory"], "512");
    assert_eq!(td["runtimePlatform"]["cpuArchitecture"], "ARM64");
    // Least privilege: the worker's role reaches its queue and nothing else of SQS.
    let role = plan["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["RoleName"] == "orders-worker-task")
        .unwrap();
    let sqs = role["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"][0] == "sqs:ReceiveMessage")
        .unwrap();
    assert_eq!(
        sqs["Resource"],
        serde_json::json!(["arn:aws:sqs:eu-west-1:111122223333:orders-jobsQueue"])
    );
    let exec = plan["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["RoleName"] == "orders-execution")
        .unwrap();
    assert!(exec["PolicyDocument"]
        .to_string()
        .contains("secret:dbSecret*"));
    // The service: spot, circuit breaker with rollback, 100/200.
    let svc = &plan["services"][0];
    assert_eq!(
        svc["capacityProviderStrategy"],
        serde_json::json!([{ "capacityProvider": "FARGATE_SPOT", "weight": 1 }])
    );
    assert_eq!(
        svc["deploymentConfiguration"]["deploymentCircuitBreaker"],
        serde_json::json!({ "enable": true, "rollback": true })
    );
    assert_eq!(svc["deploymentConfiguration"]["minimumHealthyPercent"], 100);
    assert_eq!(svc["deploymentConfiguration"]["maximumPercent"], 200);
    assert_eq!(svc["desiredCount"], 1);
    // One target-tracking policy per metric, out fast, in cautiously.
    let pols = plan["scalingPolicies"].as_array().unwrap();
    assert_eq!(pols.len(), 3);
    for p in pols {
        let cfg = &p["TargetTrackingScalingPolicyConfiguration"];
        assert!(
            cfg["ScaleOutCooldown"].as_i64() < cfg["ScaleInCooldown"].as_i64(),
            "{p}"
        );
    }
    let backlog = pols
        .iter()
        .find(|p| p["PolicyName"] == "orders-worker-backlog")
        .unwrap();
    assert_eq!(
        backlog["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
            ["MetricName"],
        "BacklogPerTask"
    );
    // The schedule: ECS RunTask target with retries and event age.
    let sched = &plan["schedules"][0];
    assert_eq!(sched["ScheduleExpression"], "cron(0 3 * * ? *)");
    assert_eq!(sched["ScheduleExpressionTimezone"], "Europe/Prague");
    assert_eq!(
        sched["Target"]["RetryPolicy"],
        serde_json::json!({ "MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 3 })
    );
    assert_eq!(
        sched["Target"]["EcsParameters"]["TaskDefinitionArn"],
        "arn:aws:ecs:eu-west-1:111122223333:task-definition/orders-nightly"
    );
    // The queue's redrive.
    let q = plan["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["QueueName"] == "orders-jobsQueue")
        .unwrap();
    assert!(q["Attributes"]["RedrivePolicy"]
        .as_str()
        .unwrap()
        .contains("orders-jobsQueue-dlq"));
    assert_eq!(q["Attributes"]["VisibilityTimeout"], "120");
}

/// Default subnets of moto's default VPC (create_service checks they exist).
fn moto_subnets(moto: &Moto) -> Vec<String> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let out = Command::new(py)
        .args(["-c", "import boto3,sys; e=boto3.client('ec2', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y'); print(' '.join(s['SubnetId'] for s in e.describe_subnets()['Subnets'][:2]))", &moto.url()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn is_mutating(action: &str) -> bool {
    let a = action.split_whitespace().next().unwrap_or(action);
    [
        "Create",
        "Put",
        "Register",
        "Update",
        "Set",
        "Tag",
        "Delete",
        "Deregister",
        "Untag",
        "Attach",
        "POST",
        "PUT",
        "DELETE",
        "PATCH",
    ]
    .iter()
    .any(|p| a.starts_with(p))
}

#[test]
fn apply_is_idempotent_changes_one_thing_and_deletes_only_its_own() {
    let moto = Moto::start();
    let env = moto.env();
    let subnets = moto_subnets(&moto);
    assert_eq!(subnets.len(), 2);
    let dir = TempDir::new("apply");
    let text = std::fs::read_to_string(EXAMPLE)
        .unwrap()
        .replace(
            "subnets: [subnet-1, subnet-2]",
            &format!("subnets: [{}, {}]", subnets[0], subnets[1]),
        )
        .replace("securityGroups: [sg-1]", "securityGroups: []");
    let file = write(&dir, "bosun.yaml", &text);

    moto.record();
    let out = deploy(&["apply", "--no-wait", "--stack", &file], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // moto does not echo a service's deployment configuration back: check what was sent.
    let sent = moto.recorded();
    let create = sent
        .iter()
        .find(|(a, _)| a == "CreateService")
        .map(|(_, b)| b.clone())
        .expect("CreateService sent");
    let create: serde_json::Value = serde_json::from_str(&create).unwrap();
    assert_eq!(
        create["deploymentConfiguration"]["deploymentCircuitBreaker"],
        serde_json::json!({ "enable": true, "rollback": true })
    );
    assert_eq!(create["deploymentConfiguration"]["maximumPercent"], 200);
    assert_eq!(
        create["deploymentConfiguration"]["minimumHealthyPercent"],
        100
    );
    assert_eq!(
        create["capacityProviderStrategy"][0]["capacityProvider"],
        "FARGATE_SPOT"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("applied: 19 changes"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );

    // Read every resource back through the SDK.
    let rt = runtime();
    let cfg = moto.sdk_config(&rt);
    let ecs = aws_sdk_ecs::Client::new(&cfg);
    rt.block_on(async {
        let td = ecs
            .describe_task_definition()
            .task_definition("orders-worker")
            .send()
            .await
            .unwrap();
        let td = td.task_definition().unwrap();
        let c = &td.container_definitions()[0];
        assert_eq!(c.entry_point(), ["/usr/local/bin/bosun", "--"]);
        assert_eq!(
            c.health_check().unwrap().command(),
            ["CMD", "/usr/local/bin/bosun", "probe"]
        );
        assert_eq!(c.stop_timeout(), Some(30));
        assert_eq!(c.secrets()[0].name(), "DB_PASSWORD");
        assert!(c
            .environment()
            .iter()
            .all(|e| e.name() != Some("DB_PASSWORD")));
        assert_eq!(td.cpu(), Some("256"));
        let svc = ecs
            .describe_services()
            .cluster("orders-cluster")
            .services("orders-worker")
            .send()
            .await
            .unwrap();
        let svc = &svc.services()[0];
        assert_eq!(svc.desired_count(), 1);
        assert_eq!(
            svc.network_configuration()
                .unwrap()
                .awsvpc_configuration()
                .unwrap()
                .subnets(),
            subnets.as_slice()
        );
        let scaling = aws_sdk_applicationautoscaling::Client::new(&cfg);
        let pols = scaling
            .describe_scaling_policies()
            .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
            .send()
            .await
            .unwrap();
        let mut names: Vec<&str> = pols
            .scaling_policies()
            .iter()
            .map(|p| p.policy_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "orders-worker-backlog",
                "orders-worker-cpu",
                "orders-worker-memory"
            ]
        );
        let targets = scaling
            .describe_scalable_targets()
            .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
            .send()
            .await
            .unwrap();
        assert_eq!(
            targets
                .scalable_targets()
                .iter()
                .map(|t| (t.min_capacity(), t.max_capacity()))
                .collect::<Vec<_>>(),
            [(1, 5)]
        );
        let sched = aws_sdk_scheduler::Client::new(&cfg);
        let s = sched
            .get_schedule()
            .name("orders-nightly")
            .group_name("bosun-orders")
            .send()
            .await
            .unwrap();
        assert_eq!(s.schedule_expression(), Some("cron(0 3 * * ? *)"));
        assert_eq!(
            s.target()
                .unwrap()
                .retry_policy()
                .unwrap()
                .maximum_retry_attempts(),
            Some(3)
        );
        let sqs = aws_sdk_sqs::Client::new(&cfg);
        let url = sqs
            .get_queue_url()
            .queue_name("orders-jobsQueue")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let attrs = attrs.attributes().unwrap();
        assert_eq!(
            attrs[&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout],
            "120"
        );
        assert!(
            attrs[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy]
                .contains("orders-jobsQueue-dlq")
        );
        let logs = aws_sdk_cloudwatchlogs::Client::new(&cfg);
        let groups = logs
            .describe_log_groups()
            .log_group_name_prefix("/bosun/orders/")
            .send()
            .await
            .unwrap();
        let mut g: Vec<(String, Option<i32>)> = groups
            .log_groups()
            .iter()
            .map(|l| {
                (
                    l.log_group_name().unwrap().to_owned(),
                    l.retention_in_days(),
                )
            })
            .collect();
        g.sort();
        assert_eq!(
            g,
            [
                ("/bosun/orders/nightly".to_owned(), Some(30)),
                ("/bosun/orders/worker".to_owned(), Some(14))
            ]
        );
        let iam = aws_sdk_iam::Client::new(&cfg);
        let pol = iam
            .get_role_policy()
            .role_name("orders-worker-task")
            .policy_name("bosun")
            .send()
            .await
            .unwrap();
        assert!(
            pol.policy_document().contains("orders-jobsQueue"),
            "{}",
            pol.policy_document()
        );
    });

    // A second apply of the same file: no mutating call at all.
    moto.record();
    let out = deploy(&["apply", "--no-wait", "--stack", &file], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied: 0 changes"));
    let calls = moto.recorded_actions();
    let mutating: Vec<&String> = calls.iter().filter(|a| is_mutating(a)).collect();
    assert!(!calls.is_empty(), "nothing was recorded");
    assert!(
        mutating.is_empty(),
        "mutating calls on a no-change apply: {mutating:?}"
    );
    let out = deploy(&["diff", "--stack", &file], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Change one field: diff names it, apply changes only it.
    let changed = write(
        &dir,
        "bosun.yaml",
        &text.replace(
            "logging: { retentionDays: 14 }",
            "logging: { retentionDays: 60 }",
        ),
    );
    let out = deploy(&["diff", "--stack", &changed], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("would update log group /bosun/orders/worker: retention 60 days"),
        "{}",
        stderr(&out)
    );
    moto.record();
    let out = deploy(&["apply", "--no-wait", "--stack", &changed], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mutating: Vec<String> = moto
        .recorded_actions()
        .into_iter()
        .filter(|a| is_mutating(a))
        .collect();
    assert_eq!(
        mutating,
        ["PutRetentionPolicy"],
        "only the log group should change"
    );

    // Status, then delete: everything of the stack goes, the rest stays.
    let out = deploy(&["status", "--stack", &changed], &env);
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        status.contains("worker (worker-service orders-worker): desired 1"),
        "{status}"
    );
    assert!(
        status.contains("scaling policy orders-worker-backlog target 100"),
        "{status}"
    );
    rt.block_on(async {
        aws_sdk_sqs::Client::new(&cfg)
            .create_queue()
            .queue_name("orders-not-ours")
            .send()
            .await
            .unwrap();
    });
    let out = deploy(&["delete", "--stack", &changed], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    rt.block_on(async {
        let sqs = aws_sdk_sqs::Client::new(&cfg);
        let left = sqs
            .list_queues()
            .queue_name_prefix("orders-")
            .send()
            .await
            .unwrap();
        let left: Vec<&str> = left
            .queue_urls()
            .iter()
            .map(|u| u.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(
            left,
            ["orders-not-ours"],
            "delete removed only the stack's queues"
        );
        let svc = ecs
            .describe_services()
            .cluster("orders-cluster")
            .services("orders-worker")
            .send()
            .await
            .unwrap();
        assert!(svc.services().iter().all(|s| s.status() != Some("ACTIVE")));
        let logs = aws_sdk_cloudwatchlogs::Client::new(&cfg);
        assert!(logs
            .describe_log_groups()
            .log_group_name_prefix("/bosun/orders/")
            .send()
            .await
            .unwrap()
            .log_groups()
            .is_empty());
        let iam = aws_sdk_iam::Client::new(&cfg);
        assert!(iam
            .list_roles()
            .path_prefix("/bosun/orders/")
            .send()
            .await
            .unwrap()
            .roles()
            .is_empty());
    });
}

#[test]
fn logs_prints_the_resources_events() {
    let moto = Moto::start();
    let env = moto.env();
    let rt = runtime();
    let cfg = moto.sdk_config(&rt);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    rt.block_on(async {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&cfg);
        logs.create_log_group()
            .log_group_name("/bosun/orders/worker")
            .send()
            .await
            .unwrap();
        logs.create_log_stream()
            .log_group_name("/bosun/orders/worker")
            .log_stream_name("worker/app/abc")
            .send()
            .await
            .unwrap();
        let ev = |ms: i64, m: &str| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(ms)
                .message(m)
                .build()
                .unwrap()
        };
        logs.put_log_events()
            .log_group_name("/bosun/orders/worker")
            .log_stream_name("worker/app/abc")
            .log_events(ev(now - 3_600_000, "an hour ago"))
            .log_events(ev(now - 60_000, "job 1 done"))
            .log_events(ev(now - 30_000, "job 2 done"))
            .send()
            .await
            .unwrap();
    });
    let out = deploy(
        &["logs", "worker", "--stack", EXAMPLE, "--since", "10m"],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].ends_with("abc job 1 done") && lines[1].ends_with("abc job 2 done"),
        "{text}"
    );
    let out = deploy(&["logs", "jobsQueue", "--stack", EXAMPLE], &env);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("'jobsQueue' is a sqs-queue: it has no logs"),
        "{}",
        stderr(&out)
    );
    let out = deploy(
        &[
            "logs",
            "worker",
            "--stack",
            EXAMPLE,
            "--since",
            "10 minutes",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(2));
}
