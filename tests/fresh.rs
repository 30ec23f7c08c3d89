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
