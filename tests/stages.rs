//! A fresh account's start, against moto through the test proxy: a stack without
//! `network` runs in the default VPC with a security group of its own; two stages of
//! one stack live side by side and are deleted apart; SSM parameters and secrets are
//! checked before any change.

#![allow(clippy::unwrap_used)]

mod common;

use common::world::*;
use common::*;

const WORKER: &str = "stack: fresh
resources:
  jobs: { type: sqs-queue }
  worker:
    type: worker-service
    properties:
      packaging: { type: prebuilt-image, properties: { image: \"repo/app:1\", includesBosun: true } }
      command: [\"node\", \"worker.js\"]
      connectTo: [jobs]
      resources: { cpu: 0.25, memory: 512 }
";

fn body(r: &common::proxy::Request) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null)
}

fn ec2(w: &World, code: &str) -> String {
    py(
        &w.moto,
        &format!("import boto3,sys,json; e=boto3.client('ec2', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y'); {code}"),
    )
}

#[test]
fn no_network_runs_in_the_default_vpc_with_a_group_of_its_own() {
    let w = World::new();
    let dir = TempDir::new("defnet");
    let file = write(&dir, "bosun.yaml", WORKER);
    let vpc = ec2(&w, "print(e.describe_vpcs(Filters=[{'Name':'is-default','Values':['true']}])['Vpcs'][0]['VpcId'])");
    let vpc = vpc.trim();
    let mut defaults: Vec<String> = ec2(&w, &format!("print(' '.join(s['SubnetId'] for s in e.describe_subnets(Filters=[{{'Name':'vpc-id','Values':['{vpc}']}},{{'Name':'default-for-az','Values':['true']}}])['Subnets']))"))
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    defaults.sort();
    assert!(!defaults.is_empty());

    // validate passes without `network`; diff says what it picked and plans the group.
    let out = w.deploy(&["validate", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    w.proxy.record();
    let out = w.deploy(&["diff", "--stack", &file]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("the default VPC {vpc}")), "{err}");
    assert!(err.contains(&defaults.join(", ")), "{err}");
    assert!(
        stdout(&out).contains("security group fresh-tasks"),
        "{}",
        stdout(&out)
    );
    assert_eq!(w.proxy.mutating(), Vec::<String>::new());

    // apply: the group first, then the service in it, public IPs on.
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sg = body_form(&w.proxy.sent("CreateSecurityGroup"));
    assert!(sg.contains(&format!("VpcId={vpc}")), "{sg}");
    assert!(sg.contains("GroupName=fresh-tasks"), "{sg}");
    assert!(
        sg.contains("bosun%3Astack") || sg.contains("bosun:stack"),
        "{sg}"
    );
    let actions = w.proxy.actions();
    let at = |a: &str| actions.iter().position(|x| x == a).unwrap();
    assert!(
        at("CreateSecurityGroup") < at("CreateService"),
        "{actions:?}"
    );
    assert!(
        !actions.iter().any(|a| a == "AuthorizeSecurityGroupIngress"),
        "{actions:?}"
    );
    let group = ec2(&w, "print(e.describe_security_groups(Filters=[{'Name':'group-name','Values':['fresh-tasks']}])['SecurityGroups'][0]['GroupId'])");
    let group = group.trim();
    let svc = body(&w.proxy.sent("CreateService"));
    let vpc_cfg = &svc["networkConfiguration"]["awsvpcConfiguration"];
    assert_eq!(
        vpc_cfg["securityGroups"],
        serde_json::json!([group]),
        "{svc}"
    );
    assert_eq!(vpc_cfg["assignPublicIp"], "ENABLED");
    let mut subnets: Vec<String> = vpc_cfg["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    subnets.sort();
    assert_eq!(subnets, defaults);
    check_with_models(&dir, &w.proxy.recorded());

    // A second apply changes nothing.
    w.proxy.record();
    let out = w.deploy(&["diff", "--stack", &file]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(w.proxy.mutating(), Vec::<String>::new());

    // delete removes the group once the service is gone.
    w.proxy.record();
    let out = w.deploy(&["delete", "--yes", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let actions = w.proxy.actions();
    let at = |a: &str| actions.iter().position(|x| x == a).unwrap();
    assert!(
        at("DeleteService") < at("DeleteSecurityGroup"),
        "{actions:?}"
    );
    let left = ec2(&w, "print(len(e.describe_security_groups(Filters=[{'Name':'group-name','Values':['fresh-tasks']}])['SecurityGroups']))");
    assert_eq!(left.trim(), "0");
}

fn body_form(r: &common::proxy::Request) -> String {
    r.body.clone()
}

#[test]
fn two_stages_live_side_by_side_and_are_deleted_apart() {
    let w = World::new();
    let dir = TempDir::new("stages");
    let text = format!(
        "{WORKER}      environment:\n        - {{ name: STAGE, value: \"$Stage\" }}\nstages:\n  dev:\n    tags: {{ team: dev }}\n  prod:\n    network: {{ subnets: [{}, {}] }}\n    resources:\n      worker:\n        properties:\n          resources: {{ cpu: 0.5, memory: 1024 }}\n",
        w.subnets[0], w.subnets[1]
    );
    let file = write(&dir, "bosun.yaml", &text);
    for stage in ["dev", "prod"] {
        w.proxy.record();
        let out = w.deploy(&["apply", "--no-wait", "--stack", &file, "--stage", stage]);
        assert_eq!(out.status.code(), Some(0), "{stage}: {}", stderr(&out));
        let svc = body(&w.proxy.sent("CreateService"));
        assert_eq!(svc["serviceName"], format!("fresh-{stage}-worker"));
        assert_eq!(svc["cluster"], format!("fresh-{stage}"));
        let tags = svc["tags"].to_string();
        assert!(
            tags.contains(&format!(
                "{{\"key\":\"bosun:stage\",\"value\":\"{stage}\"}}"
            )),
            "{tags}"
        );
        let td = body(&w.proxy.sent("RegisterTaskDefinition"));
        let env = td["containerDefinitions"][0]["environment"].to_string();
        assert!(
            env.contains(&format!("{{\"name\":\"STAGE\",\"value\":\"{stage}\"}}")),
            "{env}"
        );
        let q = w.proxy.sent("CreateQueue");
        assert!(
            q.body.contains(&format!("fresh-{stage}-jobs")),
            "{}",
            q.body
        );
        if stage == "prod" {
            assert_eq!(td["cpu"], "512", "{td}");
            assert_eq!(
                svc["networkConfiguration"]["awsvpcConfiguration"]["subnets"],
                serde_json::json!(w.subnets)
            );
        }
    }
    // A stage the file does not list is refused before any call.
    let out = w.deploy(&["diff", "--stack", &file, "--stage", "prd"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did you mean 'prod'?"),
        "{}",
        stderr(&out)
    );
    // BOSUN_STAGE is the flag's variable.
    let mut env = w.env();
    env.push(("BOSUN_STAGE", "prod".into()));
    let out = deploy(&["diff", "--stack", &file], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // Deleting dev leaves prod whole.
    w.proxy.record();
    let out = w.deploy(&["delete", "--yes", "--stack", &file, "--stage", "dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(
        plan.contains("fresh-dev-worker") && !plan.contains("fresh-prod"),
        "{plan}"
    );
    let out = w.deploy(&["diff", "--stack", &file, "--stage", "prod"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    check_with_models(&dir, &w.proxy.recorded());
}

#[test]
fn parameters_and_secrets_are_read_exactly_and_checked_first() {
    let w = World::new();
    let dir = TempDir::new("params");
    let arn = py(&w.moto, "import boto3,sys; c=dict(endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y'); boto3.client('ssm', **c).put_parameter(Name='/fresh/db-url', Value='postgres://db', Type='SecureString'); boto3.client('ssm', **c).put_parameter(Name='plain', Value='v', Type='String'); print(boto3.client('secretsmanager', **c).create_secret(Name='prod/db', SecretString='{\"password\": \"p\", \"user\": \"u\"}')['ARN'])");
    let arn = arn.trim();
    let text = |extra: &str| {
        format!(
            "{WORKER}      environment:
        - {{ name: DB_URL, value: \"$Param('/fresh/db-url')\" }}
        - {{ name: PLAIN, value: \"$Param('plain')\" }}
        - {{ name: DB_PASSWORD, value: \"$Secret('{arn}.password')\" }}
        - {{ name: DB_USER, value: \"$Secret('prod/db.user', 'AWSPREVIOUS')\" }}
{extra}"
        )
    };
    let file = write(&dir, "bosun.yaml", &text(""));
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let td = body(&w.proxy.sent("RegisterTaskDefinition"));
    let secrets = td["containerDefinitions"][0]["secrets"].clone();
    let value_from = |n: &str| {
        secrets
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .unwrap()["valueFrom"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let param_arn = "arn:aws:ssm:us-east-1:123456789012:parameter/fresh/db-url";
    assert_eq!(value_from("DB_URL"), param_arn);
    assert_eq!(
        value_from("PLAIN"),
        "arn:aws:ssm:us-east-1:123456789012:parameter/plain"
    );
    // The ARN as given, never wrapped in another; the key and the version stage.
    assert_eq!(value_from("DB_PASSWORD"), format!("{arn}:password::"));
    assert_eq!(value_from("DB_USER"), format!("{arn}:user:AWSPREVIOUS:"));
    let policy = w
        .proxy
        .recorded()
        .into_iter()
        .filter(|r| r.action == "PutRolePolicy")
        .map(|r| r.form())
        .find(|f| f["RoleName"] == "fresh-execution")
        .map(|f| serde_json::from_str::<serde_json::Value>(&f["PolicyDocument"]).unwrap())
        .unwrap();
    let statement = |action: &str| {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Action"].to_string().contains(action))
            .unwrap()["Resource"]
            .clone()
    };
    assert_eq!(
        statement("ssm:GetParameters"),
        serde_json::json!([
            param_arn,
            "arn:aws:ssm:us-east-1:123456789012:parameter/plain"
        ])
    );
    assert_eq!(
        statement("secretsmanager:GetSecretValue"),
        serde_json::json!([arn])
    );
    check_with_models(&dir, &w.proxy.recorded());

    // A parameter that does not exist, and a key the secret does not hold: named with
    // the line that references them, before any change, in diff as in apply.
    let bad = text("        - { name: GONE, value: \"$Param('/fresh/gone')\" }\n        - { name: NOKEY, value: \"$Secret('prod/db.token')\" }\n");
    let file = write(&dir, "bosun.yaml", &bad);
    for verb in ["diff", "apply"] {
        w.proxy.record();
        let out = w.deploy(&[verb, "--stack", &file]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{verb}: {err}");
        assert!(
            err.contains(&format!("SSM parameter /fresh/gone ({file}:16:")),
            "{verb}: {err}"
        );
        assert!(
            err.contains("key token in secret prod/db") && err.contains("it holds password, user"),
            "{verb}: {err}"
        );
        assert!(!err.contains("/fresh/db-url"), "only the missing: {err}");
        assert_eq!(w.proxy.mutating(), Vec::<String>::new());
    }
}

#[test]
fn validation_reports_everything_at_once_and_names_copilots_equivalents() {
    let dir = TempDir::new("onepass");
    // A typo in a resource no longer hides that resource's other mistakes, nor does
    // one at the top level hide the rest; what may follow from a typo is not reported
    // (`memroy` is a missing `memory`, not a second error).
    let file = write(
        &dir,
        "bosun.yaml",
        "stack: demo
regoin: us-east-1
resources:
  q:
    type: sqs-queue
    properties: { visibilityTimeoutSeconds: 99999, colr: 1 }
  w:
    type: worker-service
    properties:
      packaging: { type: prebuilt-image, properties: { image: x, includesBosun: true } }
      command: [run]
      stopTimeout: 150
      resources: { cpu: 0.25, memroy: 512 }
  j:
    type: scheduled-job
    properties:
      packaging: { type: prebuilt-image, properties: { image: x, includesBosun: true } }
      command: [run]
      schedule: \"cron(0 3 * * * *)\"
      retires: 2
",
    );
    let out = deploy(&["validate", "--stack", &file], &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    let errors: Vec<String> = err
        .lines()
        .filter(|l| l.contains(": error: "))
        .map(|l| l.trim_start_matches(&format!("{file}:")).to_owned())
        .collect();
    assert_eq!(
        errors,
        [
            "2:1: error: regoin: unknown key 'regoin' (did you mean 'region'?)",
            "6:19: error: resources.q.properties.visibilityTimeoutSeconds: 99999 is out of range: allowed 0..=43200",
            "6:52: error: resources.q.properties.colr: unknown key 'colr'",
            "12:7: error: resources.w.properties.stopTimeout: 150 is out of range: allowed 2..=120",
            "13:31: error: resources.w.properties.resources.memroy: unknown key 'memroy' (did you mean 'memory'?)",
            "19:7: error: resources.j.properties.schedule: cron(0 3 * * * *): one of day-of-month ('*') and day-of-week ('*') must be '?'",
            "20:7: error: resources.j.properties.retires: unknown key 'retires'",
        ],
        "{err}"
    );

    // Copilot's schedules and CPU units: the equivalent to write; Stacktape's
    // `prebuilt-images` spelling is accepted.
    let file = write(
        &dir,
        "copilot.yaml",
        "stack: demo
resources:
  w:
    type: worker-service
    properties:
      packaging: { type: prebuilt-images, properties: { image: x, includesBosun: true } }
      command: [run]
      resources: { cpu: 512, memory: 1024 }
  j:
    type: scheduled-job
    properties:
      packaging: { type: prebuilt-image, properties: { image: x, includesBosun: true } }
      command: [run]
      schedule: [\"@daily\", \"@every 1h30m\", \"0 9 * * 1-5\", \"@every 10s\"]
",
    );
    let out = deploy(&["validate", "--stack", &file], &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    for want in [
        "8:20: error: resources.w.properties.resources.cpu: 512 vCPU is not a Fargate size: allowed 0.25, 0.5, 1, 2, 4, 8, 16 (512 is Copilot's CPU units: write cpu: 0.5)",
        "schedule.0: '@daily' is not cron(...), rate(...) or at(...) (Copilot's form: write cron(0 0 * * ? *))",
        "schedule.1: '@every 1h30m' is not cron(...), rate(...) or at(...) (Copilot's form: write rate(90 minutes))",
        "schedule.2: '0 9 * * 1-5' is not cron(...), rate(...) or at(...) (Copilot's form: write cron(0 9 ? * 2-6 *))",
        "schedule.3: '@every 10s' is not cron(...), rate(...) or at(...) (Copilot's form: '@every 10s': the Scheduler's shortest unit is a minute)",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    assert_eq!(err.matches(": error: ").count(), 5, "{err}");
    let fixed = err_free(&dir, &std::fs::read_to_string(&file).unwrap());
    assert_eq!(fixed.status.code(), Some(0), "{}", stderr(&fixed));
}

/// `validate` of the Copilot file above written as bosun's own forms.
fn err_free(dir: &TempDir, text: &str) -> std::process::Output {
    let text = text.replace("cpu: 512", "cpu: 0.5").replace(
        "[\"@daily\", \"@every 1h30m\", \"0 9 * * 1-5\", \"@every 10s\"]",
        "[\"cron(0 0 * * ? *)\", \"rate(90 minutes)\", \"cron(0 9 ? * 2-6 *)\"]",
    );
    let file = write(dir, "fixed.yaml", &text);
    deploy(&["validate", "--stack", &file], &[])
}
