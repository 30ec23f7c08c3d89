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
