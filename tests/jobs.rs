//! Scheduled jobs that say how they went, against moto through the test proxy: every
//! Scheduler key a job takes (several schedules, paused, flexible window, dates,
//! dead-letter queue, Spot), retries inside the task, the alerts (run filters, alarms,
//! topic and subscriptions), and `runs` reading back what the real bosun wrote.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::world::*;
use common::*;

fn stack(w: &World, job: &str) -> String {
    format!(
        "stack: sched
network:
  subnets: [{}, {}]
resources:
  missed:
    type: sqs-queue
  nightly:
    type: scheduled-job
    properties:
      packaging: {{ type: prebuilt-image, properties: {{ image: \"repo/app:1.2\", includesBosun: true }} }}
      command: [\"node\", \"nightly.js\"]
{job}",
        w.subnets[0], w.subnets[1]
    )
}

const JOB: &str = "      schedule:
        - \"cron(0 3 * * ? *)\"
        - \"rate(6 hours)\"
      retryOnFailure: 2
      timeoutSeconds: 600
      enabled: false
      flexibleTimeWindowMinutes: 15
      startDate: \"2027-01-01\"
      endDate: \"2027-12-31T23:00:00+01:00\"
      deadLetterQueue: missed
      spot: true
      alerts:
        onFailure: true
        notSucceededWithin: 26h
        email: [ops@example.com, oncall@example.com]
";

fn body(r: &common::proxy::Request) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null)
}

fn all(w: &World, action: &str) -> Vec<common::proxy::Request> {
    w.proxy
        .recorded()
        .into_iter()
        .filter(|r| r.action == action)
        .collect()
}

#[test]
fn every_scheduler_key_and_the_alerts_apply_reapply_and_go() {
    let w = World::new();
    let dir = TempDir::new("jobs");
    let file = write(&dir, "bosun.yaml", &stack(&w, JOB));
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first = w.proxy.recorded();

    // Two schedules, each with every key.
    let created = all(&w, "CreateSchedule");
    assert_eq!(created.len(), 2, "{:?}", w.proxy.actions());
    let queue_arn = "arn:aws:sqs:us-east-1:123456789012:sched-missed";
    let mut exprs = Vec::new();
    for c in &created {
        let b = body(c);
        exprs.push(b["ScheduleExpression"].as_str().unwrap().to_owned());
        assert_eq!(b["State"], "DISABLED", "{b}");
        assert_eq!(b["FlexibleTimeWindow"]["Mode"], "FLEXIBLE");
        assert_eq!(b["FlexibleTimeWindow"]["MaximumWindowInMinutes"], 15);
        // Dates go as epoch seconds in Scheduler's JSON.
        assert_eq!(b["StartDate"].as_f64(), Some(1_798_761_600.0), "{b}");
        assert_eq!(b["EndDate"].as_f64(), Some(1_830_290_400.0), "{b}");
        assert_eq!(b["Target"]["DeadLetterConfig"]["Arn"], queue_arn);
        let ecs = &b["Target"]["EcsParameters"];
        assert!(ecs["LaunchType"].is_null(), "{ecs}");
        assert_eq!(
            ecs["CapacityProviderStrategy"],
            serde_json::json!([{ "capacityProvider": "FARGATE_SPOT", "weight": 1 }])
        );
    }
    exprs.sort();
    assert_eq!(exprs, ["cron(0 3 * * ? *)", "rate(6 hours)"]);

    // Retries inside the task: bosun's restart policy, bounded.
    let td = body(&w.proxy.sent("RegisterTaskDefinition"));
    let env = td["containerDefinitions"][0]["environment"].to_string();
    for (k, v) in [
        ("BOSUN_RESTART", "on-failure"),
        ("BOSUN_MAX_RESTARTS", "2"),
        ("BOSUN_MAX_RUNTIME", "600"),
        ("BOSUN_LOG_FORMAT", "json"),
    ] {
        assert!(
            env.contains(&format!("{{\"name\":\"{k}\",\"value\":\"{v}\"}}")),
            "{k}={v} in {env}"
        );
    }

    // The scheduler role may send to that queue only.
    let policies: Vec<String> = all(&w, "PutRolePolicy")
        .iter()
        .map(|r| r.form()["PolicyDocument"].clone())
        .filter(|p| p.contains("sqs:SendMessage"))
        .collect();
    assert_eq!(policies.len(), 1, "{policies:?}");
    let doc: serde_json::Value = serde_json::from_str(&policies[0]).unwrap();
    let send = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"].to_string().contains("sqs:SendMessage"))
        .unwrap();
    assert_eq!(send["Resource"], serde_json::json!([queue_arn]));

    // The alerts: a filter per outcome, two alarms, the topic and its subscriptions.
    let filters = all(&w, "PutMetricFilter");
    assert_eq!(filters.len(), 2);
    for f in &filters {
        let b = body(f);
        assert_eq!(b["logGroupName"], "/bosun/sched/nightly");
        let pattern = b["filterPattern"].as_str().unwrap();
        assert!(pattern.contains("$.message = \"run ended\""), "{pattern}");
    }
    let topic = "arn:aws:sns:us-east-1:123456789012:sched-nightly-alerts";
    assert_eq!(all(&w, "CreateTopic").len(), 1);
    let mut subscribed: Vec<String> = all(&w, "Subscribe")
        .iter()
        .map(|r| r.form()["Endpoint"].clone())
        .collect();
    subscribed.sort();
    assert_eq!(subscribed, ["oncall@example.com", "ops@example.com"]);
    let alarms = all(&w, "PutMetricAlarm");
    assert_eq!(alarms.len(), 2);
    let alarm = |name: &str| {
        alarms
            .iter()
            .map(|r| r.form())
            .find(|f| f["AlarmName"] == name)
            .unwrap_or_else(|| panic!("alarm {name}"))
    };
    let failed = alarm("sched-nightly-runs-failed");
    assert_eq!(failed["AlarmActions.member.1"], topic);
    assert_eq!(failed["TreatMissingData"], "notBreaching");
    assert_eq!(
        failed["ComparisonOperator"],
        "GreaterThanOrEqualToThreshold"
    );
    let quiet = alarm("sched-nightly-not-succeeded");
    assert_eq!(quiet["TreatMissingData"], "breaching");
    assert_eq!(quiet["ComparisonOperator"], "LessThanThreshold");
    assert_eq!(quiet["Metrics.member.1.MetricStat.Period"], "3600");
    assert_eq!(quiet["EvaluationPeriods"], "26");
    assert_eq!(
        quiet["Metrics.member.1.MetricStat.Metric.MetricName"],
        "sched-nightly-runs-succeeded"
    );
    check_with_models(&dir, &first);

    // Again: nothing to change, nothing sent that changes anything.
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(w.proxy.mutating(), Vec::<String>::new(), "{}", stderr(&out));

    // One schedule and one address fewer, resumed: just those change.
    let smaller = JOB
        .replace("        - \"rate(6 hours)\"\n", "")
        .replace("      enabled: false\n", "")
        .replace(
            "email: [ops@example.com, oncall@example.com]",
            "email: [ops@example.com]",
        );
    write(&dir, "bosun.yaml", &stack(&w, &smaller));
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // (The lock is an SSM parameter: put, then deleted.)
    let mut changed: Vec<String> = w
        .proxy
        .mutating()
        .into_iter()
        .filter(|a| !a.ends_with("Parameter"))
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        ["DeleteSchedule", "Unsubscribe", "UpdateSchedule"],
        "{}",
        stderr(&out)
    );
    let deleted = w.proxy.sent("DeleteSchedule");
    assert!(
        deleted.path.contains("/schedules/sched-nightly-"),
        "{}",
        deleted.path
    );
    let updated = body(&w.proxy.sent("UpdateSchedule"));
    assert_eq!(updated["State"], "ENABLED");
    assert_eq!(updated["ScheduleExpression"], "cron(0 3 * * ? *)");
    check_with_models(&dir, &w.proxy.recorded());

    // `runs`: run-summary lines the real bosun wrote, put in the job's log group.
    let mut lines = Vec::new();
    for args in [
        vec!["--", "sh", "-c", "exit 0"],
        vec![
            "--restart",
            "on-failure",
            "--max-restarts",
            "1",
            "--",
            "sh",
            "-c",
            "sleep 0.2; exit 3",
        ],
        vec!["--max-runtime", "0.3", "--", "sleep", "30"],
    ] {
        let mut cmd = Command::new(BOSUN);
        cmd.args(["--listen", "off", "--log-format", "json"])
            .args(&args);
        cmd.env_remove("BOSUN_LOG");
        let out = run_bounded(&mut cmd, BOUND);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let summary = err
            .lines()
            .find(|l| l.contains("\"run ended\""))
            .unwrap_or_else(|| panic!("no run-summary line: {err}"))
            .to_owned();
        lines.push(summary);
        // The worker's own lines share the stream: they are not runs.
        lines.push("{\"message\":\"worker started\"}".into());
    }
    let code = format!(
        "import boto3,sys,time,json
l=boto3.client('logs', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')
l.create_log_stream(logGroupName='/bosun/sched/nightly', logStreamName='nightly/app/t123')
now=int(time.time()*1000)-60000
lines={}
l.put_log_events(logGroupName='/bosun/sched/nightly', logStreamName='nightly/app/t123', logEvents=[{{'timestamp': now+i*1000, 'message': m}} for i, m in enumerate(lines)])",
        serde_json::to_string(&lines).unwrap()
    );
    py(&w.moto, &code);
    let out = w.deploy(&["runs", "nightly", "--output", "json", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(runs[0]["outcome"], "succeeded");
    assert_eq!(runs[0]["exitCode"], 0);
    assert_eq!(runs[1]["outcome"], "failed");
    assert_eq!(runs[1]["reason"], "exit");
    assert_eq!(runs[1]["exitCode"], 3);
    assert_eq!(runs[1]["restarts"], 1);
    assert!(
        runs[1]["durationSecs"].as_f64().unwrap() >= 0.4,
        "{:?}",
        runs[1]
    );
    assert_eq!(runs[2]["reason"], "time-limit");
    assert_eq!(runs[2]["exitCode"], 124);
    assert_eq!(runs[2]["taskId"], "t123");
    let text = stdout(&w.deploy(&["runs", "nightly", "--stack", &file]));
    assert!(
        text.contains("exit 124") && text.contains("time-limit"),
        "{text}"
    );
    let status = stdout(&w.deploy(&["status", "--stack", &file]));
    assert!(
        status.contains("last run: ") && status.contains("time-limit"),
        "{status}"
    );
    assert!(status.contains("next run: "), "{status}");
    w.says(
        &["runs", "missed", "--stack", &file],
        2,
        "'missed' is a sqs-queue",
    );

    // Delete takes the alerts with everything else.
    w.proxy.record();
    let out = w.deploy(&["delete", "--yes", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let gone = w.proxy.actions();
    for a in [
        "DeleteTopic",
        "DeleteMetricFilter",
        "DeleteAlarms",
        "DeleteSchedule",
    ] {
        assert!(gone.iter().any(|x| x == a), "{a} not sent: {gone:?}");
    }
}

#[test]
fn job_keys_are_checked_before_any_call() {
    let dir = TempDir::new("jobkeys");
    let bad = [
        (
            "      schedule: \"cron(0 3 * * ? *)\"\n      alerts: { notSucceededWithin: 6h, email: [ops@example.com] }\n",
            "shorter than the time between two runs of the schedule (1d)",
        ),
        (
            "      schedule: \"rate(1 hour)\"\n      deadLetterQueue: nowhere\n",
            "'nowhere' is not a resource of this file",
        ),
        (
            "      schedule: [\"rate(1 hour)\", \"rate(1 hour)\"]\n",
            "listed twice",
        ),
        (
            "      schedule: \"rate(1 hour)\"\n      retryOnFailure: 11\n",
            "retryOnFailure: 11 is out of range: allowed 0..=10",
        ),
        (
            "      schedule: \"rate(1 hour)\"\n      flexibleTimeWindowMinutes: 0\n",
            "allowed 1..=1440",
        ),
        (
            "      schedule: \"rate(1 hour)\"\n      startDate: \"2027-13-01\"\n",
            "'2027-13-01' is not an ISO 8601 date",
        ),
        (
            "      schedule: \"rate(1 hour)\"\n      alerts: { onFailure: true }\n",
            "alerts to nobody",
        ),
        (
            "      schedule: \"rate(1 hour)\"\n      alerts: { onFailure: true, email: [nobody] }\n",
            "'nobody' is not an email address",
        ),
        (
            "      schedule: \"rate(1 hour)\"\n      alerts: { notSucceededWithin: 8d, email: [a@b.io] }\n",
            "over 7 days",
        ),
    ];
    for (job, needle) in bad {
        let text = format!(
            "stack: s
network: {{ subnets: [subnet-1] }}
resources:
  q: {{ type: sqs-queue }}
  j:
    type: scheduled-job
    properties:
      packaging: {{ type: prebuilt-image, properties: {{ image: \"repo/app:1\", includesBosun: true }} }}
{job}"
        );
        let file = write(&dir, "bosun.yaml", &text);
        let out = deploy(&["validate", "--stack", &file], &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{job}: {err}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    // A start date that has passed: the Scheduler would refuse it, so it is said and
    // not sent (the schedule runs from now); one ahead is sent.
    for (date, sent) in [("2020-01-01", false), ("2999-01-01", true)] {
        let text = format!(
            "stack: s
network: {{ subnets: [subnet-1] }}
resources:
  j:
    type: scheduled-job
    properties:
      packaging: {{ type: prebuilt-image, properties: {{ image: \"repo/app:1\", includesBosun: true }} }}
      command: [\"true\"]
      schedule: \"rate(1 hour)\"
      startDate: \"{date}\"
"
        );
        let file = write(&dir, "bosun.yaml", &text);
        let out = deploy(&["validate", "--stack", &file], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            stderr(&out).contains("has passed"),
            !sent,
            "{}",
            stderr(&out)
        );
        let out = deploy(&["render", "--stack", &file], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            stdout(&out).contains("\"StartDate\""),
            sent,
            "{}",
            stdout(&out)
        );
    }
}
