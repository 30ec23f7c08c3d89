//! What a newcomer meets first, before any AWS answer: no region anywhere, and an
//! endpoint that does not answer. Neither needs moto.

#![allow(clippy::unwrap_used)]

mod common;

use common::world::*;
use common::*;

const QUEUE_ONLY: &str = "stack: fresh\nresources:\n  jobs: { type: sqs-queue }\n";

/// The environment of a machine with no AWS configuration at all (no profile files).
fn bare(dir: &TempDir) -> Vec<(&'static str, String)> {
    vec![
        ("HOME", dir.path("home").display().to_string()),
        (
            "AWS_CONFIG_FILE",
            dir.path("none-config").display().to_string(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.path("none-credentials").display().to_string(),
        ),
        ("AWS_ACCESS_KEY_ID", "x".into()),
        ("AWS_SECRET_ACCESS_KEY", "y".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

fn without_region(cmd_env: Vec<(&'static str, String)>, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(DEPLOY);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ACCOUNT_ID");
    for (k, v) in cmd_env {
        cmd.env(k, v);
    }
    run_bounded(&mut cmd, std::time::Duration::from_secs(60))
}

#[test]
fn no_region_anywhere_is_said_not_guessed() {
    let dir = TempDir::new("noregion");
    std::fs::create_dir_all(dir.path("home")).unwrap();
    let file = write(&dir, "bosun.yaml", QUEUE_ONLY);
    for verb in ["diff", "apply", "status"] {
        let out = without_region(bare(&dir), &[verb, "--stack", &file]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{verb}: {err}");
        assert!(
            err.contains("no AWS region") && err.contains("region:") && err.contains("AWS_REGION"),
            "{verb}: {err}"
        );
    }
    // The file's region is enough (and the call then goes to where it says).
    let with = write(
        &dir,
        "with-region.yaml",
        &format!("region: eu-west-1\n{QUEUE_ONLY}"),
    );
    let mut env = bare(&dir);
    env.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:1".into()));
    let out = without_region(env, &["diff", "--stack", &with]);
    assert!(!stderr(&out).contains("no AWS region"), "{}", stderr(&out));
}

#[test]
fn an_endpoint_that_does_not_answer_is_named_within_seconds() {
    let dir = TempDir::new("silent");
    std::fs::create_dir_all(dir.path("home")).unwrap();
    let file = write(&dir, "bosun.yaml", QUEUE_ONLY);
    // Connections complete in the kernel's backlog; nothing ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut env = bare(&dir);
    env.push(("AWS_REGION", "us-east-1".into()));
    env.push(("AWS_ENDPOINT_URL", url.clone()));
    let out = without_region(env, &["diff", "--stack", &file]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains(&format!("AWS does not answer at {url}")),
        "{err}"
    );
    drop(silent);
}

fn init_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["init", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    deploy(&all, &[])
}

#[test]
fn init_writes_a_starter_that_validates_and_renders_for_each_kind_of_app() {
    let dir = TempDir::new("init");
    // (folder, its files, what the starter's packaging says)
    type App<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let apps: [App; 4] = [
        (
            "docker-app",
            &[("Dockerfile", "FROM scratch\nCMD [\"/worker\"]\n")],
            "type: custom-dockerfile",
        ),
        (
            "node-app",
            &[
                (
                    "package.json",
                    "{\"name\": \"n\", \"main\": \"./src/consumer.js\"}",
                ),
                ("src/consumer.js", "console.log('hi')\n"),
                ("index.js", "\n"),
            ],
            "entryfilePath: src/consumer.js",
        ),
        (
            "python-app",
            &[
                ("requirements.txt", "boto3\n"),
                ("main.py", "print('hi')\n"),
            ],
            "entryfilePath: main.py",
        ),
        (
            "go-app",
            &[
                ("go.mod", "module example.com/x\n\ngo 1.22\n"),
                ("cmd/consumer/main.go", "package main\nfunc main() {}\n"),
            ],
            "entryfilePath: cmd/consumer/main.go",
        ),
    ];
    for (name, files, packaging) in apps {
        let app = dir.path(name);
        for (f, text) in files {
            let p = app.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
        }
        let out = init_in(&app, &[]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        let file = app.join("bosun.yaml");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(packaging), "{name}:\n{text}");
        assert!(
            text.contains(&format!("stack: {name}\n")),
            "{name}:\n{text}"
        );
        assert!(!text.contains("network:\n"), "{name}: no network to find");
        // Every key is explained: each key line follows a comment or is inside a
        // block a comment opens.
        assert!(text.matches("\n      # ").count() >= 6, "{name}:\n{text}");
        let stack = file.to_str().unwrap();
        let out = deploy(&["validate", "--stack", stack], &[]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("warning"),
            "{name}: {}",
            stderr(&out)
        );
        let out = deploy(&["render", "--stack", stack], &[]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        let rendered: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            rendered["services"][0]["serviceName"],
            format!("{name}-worker")
        );
        assert_eq!(
            rendered["queues"].as_array().unwrap().len(),
            2,
            "{name}: the queue and its dead letters"
        );

        // Never over a file that is there: exit 2, the file as it was.
        let out = init_in(&app, &["--job", "rate(1 hour)"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("exists"), "{}", stderr(&out));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    }

    // A job, on Copilot's schedule written as the Scheduler's.
    let app = dir.path("nightly");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("Dockerfile"), "FROM scratch\n").unwrap();
    let out = init_in(&app, &["--job", "@every 2h"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is written as rate(2 hours)"),
        "{}",
        stderr(&out)
    );
    let file = app.join("bosun.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("schedule: \"rate(2 hours)\""), "{text}");
    let out = deploy(&["render", "--stack", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rendered: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rendered["schedules"][0]["ScheduleExpression"],
        "rate(2 hours)"
    );

    // Nothing to build from, or a schedule that is none: exit 2, no file.
    let empty = dir.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = init_in(&empty, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no Dockerfile"), "{}", stderr(&out));
    std::fs::write(empty.join("Dockerfile"), "FROM scratch\n").unwrap();
    let out = init_in(&empty, &["--job", "now and then"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--job: 'now and then' is not cron(...)"),
        "{}",
        stderr(&out)
    );
    assert!(!empty.join("bosun.yaml").exists());
}

/// The stack file `import copilot` wrote, as JSON.
fn read_stack(file: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(file).unwrap();
    bosun::deploy::stack::yaml::parse(&text).unwrap().0
}

fn render(file: &std::path::Path, stage: &str) -> serde_json::Value {
    let out = deploy(
        &[
            "render",
            "--stack",
            file.to_str().unwrap(),
            "--stage",
            stage,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn import_copilot_carries_workers_jobs_and_environments_and_names_what_it_leaves() {
    // Manifests written from Copilot's manifest reference: a worker service with a
    // range, spot_from, queue_delay, secrets of both kinds and environments; jobs on
    // each schedule form; and keys bosun has no place for.
    let ws = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/copilot");
    let dir = TempDir::new("import");
    let file = dir.path("shop.yaml");
    let import = || {
        deploy(
            &[
                "import",
                "copilot",
                ws.to_str().unwrap(),
                "--out",
                file.to_str().unwrap(),
            ],
            &[],
        )
    };
    let out = import();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let written = std::fs::read_to_string(&file).unwrap();
    // Every key left behind: on stderr and at the top of the file, manifest:line.
    for left in [
        "copilot/cost-analyzer/manifest.yml:15: subscribe.topics: SNS topic subscriptions",
        "copilot/cost-analyzer/manifest.yml:49: sidecars: sidecar containers",
        "copilot/cost-analyzer/manifest.yml:52: logging: FireLens",
        "copilot/cost-analyzer/manifest.yml:57: environments.test: drops spot",
        "copilot/every/manifest.yml:7: storage:",
        "copilot/frontend/manifest.yml:2: type: 'Load Balanced Web Service' is not carried over",
        "copilot/nightly/manifest.yml:4: on.schedule: 'none'",
        "copilot/api/manifest.yml:6: image.port: api is reached as api.STACK.internal:8080 now (Copilot named it api.ENV.APP.local): its clients connectTo it and read STP_API_HOST and STP_API_PORT",
        "copilot/api/manifest.yml:11: http: an internal load balancer is not carried over",
    ] {
        assert!(err.contains(&format!("warning: {left}")), "{left}\n{err}");
        assert!(
            written.contains(&format!("#   {left}")),
            "{left}\n{written}"
        );
    }
    assert_eq!(err.matches("warning: ").count(), 11, "{err}");
    // It validates as written, every stage too.
    let v = deploy(&["validate", "--stack", file.to_str().unwrap()], &[]);
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));

    let stack = read_stack(&file);
    assert_eq!(stack["stack"], "shop", "the application's name");
    // The Backend Service: a worker service with its port.
    let api = &stack["resources"]["api"];
    assert_eq!(api["type"], "worker-service");
    assert_eq!(
        api["properties"]["ports"],
        serde_json::json!([{ "containerPort": 8080 }])
    );
    assert_eq!(api["properties"]["enableExecuteCommand"], true);
    let w = &stack["resources"]["costAnalyzer"]["properties"];
    let ctx = w["packaging"]["properties"]["buildContextPath"]
        .as_str()
        .unwrap();
    assert_eq!(
        dir.path("").join(ctx).canonicalize().unwrap(),
        ws.canonicalize().unwrap(),
        "the context, from the output's folder"
    );
    assert_eq!(
        w["packaging"]["properties"]["dockerfilePath"],
        "cost-analyzer/Dockerfile"
    );
    assert_eq!(
        w["packaging"]["properties"]["buildArgs"],
        serde_json::json!([{ "argName": "GIT_SHA", "value": "abc123" }])
    );
    assert_eq!(
        w["command"],
        serde_json::json!(["node", "dist/worker.js", "--mode", "cost analysis"])
    );
    assert_eq!(
        w["resources"],
        serde_json::json!({ "cpu": 0.25, "memory": 512, "architecture": "arm64" })
    );
    assert_eq!(w["spot"], true);
    assert_eq!(w["onDemandBase"], 1, "spot_from: 2");
    assert_eq!(w["enableExecuteCommand"], true);
    assert_eq!(
        w["scaling"],
        serde_json::json!({ "minInstances": 1, "maxInstances": 10, "scalingPolicy": {
            "keepAvgCpuUtilizationUnder": 70, "keepAvgMemoryUtilizationUnder": 80,
            // 10m ÷ 250ms
            "keepBacklogPerInstanceUnder": 2400 } })
    );
    let env: Vec<(String, String)> = w["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    for pair in [
        ("LOG_LEVEL", "info"),
        ("BATCH", "25"),
        ("DB", "$Secret('shop/mysql.password')"),
        ("GITHUB_TOKEN", "$Param('GITHUB_TOKEN')"),
        ("API_KEY", "$Param('/shop/api-key')"),
        (
            "COPILOT_QUEUE_URI",
            "$ResourceParam('costAnalyzerQueue', 'url')",
        ),
    ] {
        assert!(
            env.contains(&(pair.0.into(), pair.1.into())),
            "{pair:?} in {env:?}"
        );
    }
    assert_eq!(
        w["internalHealthCheck"],
        serde_json::json!({ "healthCheckCommand": ["/bin/sh", "-c", "test -f /tmp/healthy"],
            "intervalSeconds": 10, "timeoutSeconds": 5, "startPeriodSeconds": 0, "retries": 2 })
    );
    assert_eq!(
        stack["resources"]["costAnalyzerQueue"]["properties"],
        serde_json::json!({ "messageRetentionSeconds": 345600, "visibilityTimeoutSeconds": 30,
            "deadLetterQueue": { "maxReceiveCount": 10 } })
    );
    let job = &stack["resources"]["reportGenerator"]["properties"];
    assert_eq!(job["schedule"], "cron(0 0 * * ? *)", "@daily");
    assert_eq!(job["retryOnFailure"], 3);
    assert_eq!(job["timeoutSeconds"], 3600);
    assert_eq!(
        stack["resources"]["hourly"]["properties"]["schedule"],
        "rate(90 minutes)"
    );
    assert_eq!(
        stack["resources"]["every"]["properties"]["schedule"],
        "cron(0 9 ? * 2-6 *)"
    );
    assert_eq!(
        stack["resources"]["nightly"]["properties"]["enabled"],
        false
    );
    assert!(stack["resources"].get("frontend").is_none());

    // Environments are stages: what AWS would get differs as Copilot's did.
    let base = render(&file, "");
    let prod = render(&file, "prod");
    let test = render(&file, "test");
    let td = |r: &serde_json::Value, family: &str| {
        r["taskDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["family"] == family)
            .cloned()
            .unwrap()
    };
    assert_eq!(td(&base, "shop-costAnalyzer")["cpu"], "256");
    assert_eq!(td(&prod, "shop-prod-costAnalyzer")["cpu"], "1024");
    assert_eq!(td(&prod, "shop-prod-costAnalyzer")["memory"], "2048");
    let has_env = |t: serde_json::Value, name: &str, value: &str| {
        t["containerDefinitions"][0]["environment"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == name && e["value"] == value)
    };
    assert!(has_env(
        td(&test, "shop-test-costAnalyzer"),
        "LOG_LEVEL",
        "debug"
    ));
    assert!(has_env(
        td(&prod, "shop-prod-costAnalyzer"),
        "LOG_LEVEL",
        "info"
    ));
    let schedule = |r: &serde_json::Value, name: &str| {
        r["schedules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Name"] == name)
            .map(|s| (s["ScheduleExpression"].clone(), s["State"].clone()))
            .unwrap()
    };
    assert_eq!(
        schedule(&base, "shop-nightly"),
        ("rate(1 day)".into(), "DISABLED".into())
    );
    assert_eq!(
        schedule(&prod, "shop-prod-nightly"),
        ("cron(0 2 * * ? *)".into(), "ENABLED".into())
    );

    // Never over an existing file; a folder with no workspace says so.
    let again = import();
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);
    let none = deploy(&["import", "copilot", dir.path("").to_str().unwrap()], &[]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("no copilot/ folder"),
        "{}",
        stderr(&none)
    );
}
