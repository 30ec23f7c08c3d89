//! The policy against the code: every kind has grants, every name the stack renders
//! is inside its kind's names, and every SDK call bosun-deploy makes for apply, diff,
//! status and delete is an action the policy of a stack of every type grants.

use std::collections::BTreeSet;
use std::path::Path;

use super::needs;
use crate::deploy::engine::Registry;
use crate::deploy::naming::Where;
use crate::deploy::resources::access::{self, Scope};
use crate::deploy::resources::KINDS;
use crate::deploy::stack::{validate, Stack};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn every() -> Stack {
    let file = Path::new(ROOT).join("tests/fixtures/policy/every.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    validate::check_stage("every.yaml", &text, None)
        .map(|(s, _)| s)
        .unwrap_or_else(|r| panic!("{r}"))
}

fn at() -> Where {
    Where {
        region: "eu-west-1".into(),
        account: "123456789012".into(),
    }
}

/// `*` stands for any run of characters.
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, rest)) => {
            s.starts_with(head)
                && (0..=s.len() - head.len()).any(|i| glob(rest, &s[head.len() + i..]))
        }
    }
}

#[test]
fn every_kind_has_grants_and_every_rendered_name_is_inside_its_kinds_names() {
    let stack = every();
    let at = at();
    let scope = Scope {
        at: &at,
        stack: &stack.stack,
        cluster: &stack.cluster,
    };
    for kind in KINDS {
        let a = access::of(kind, &scope).unwrap_or_else(|| panic!("no grants for {kind}"));
        assert!(!a.grants.is_empty(), "{kind}");
    }
    let t = crate::deploy::components::Target::offline(&at);
    let rendered = crate::deploy::components::render(&stack, &t);
    let mut kinds = BTreeSet::new();
    for n in &rendered.nodes {
        let kind = n.spec.kind();
        kinds.insert(kind);
        let a = access::of(kind, &scope).unwrap();
        let name = n.spec.name();
        assert!(
            a.names.iter().any(|p| glob(p, &name)),
            "{kind} {name} is not inside {:?}",
            a.names
        );
    }
    // The fixture has every kind but the repository (its images are prebuilt).
    let missing: Vec<_> = KINDS.iter().filter(|k| !kinds.contains(*k)).collect();
    assert_eq!(missing, [&"ECR repository"]);
    assert!(glob("every-*-task", "every-worker-task"));
    assert!(!glob("every-*", "other-worker"));
}

/// The IAM action of one SDK call (`s3`, `head_bucket` → `s3:ListBucket`): its
/// operation's name, but where the service authorizes it as another action (Amazon S3
/// API Reference, each operation's "Permissions").
fn action(client: &str, op: &str) -> String {
    let prefix = match client {
        "scaling" => "application-autoscaling",
        "secrets" => "secretsmanager",
        "sd" => "servicediscovery",
        other => other,
    };
    let renamed = match (prefix, op) {
        ("s3", "head_bucket") => "ListBucket",
        ("s3", "list_object_versions") => "ListBucketVersions",
        ("s3", "delete_objects") => "DeleteObject",
        ("s3", "list_buckets") => "ListAllMyBuckets",
        ("s3", "get_bucket_encryption") => "GetEncryptionConfiguration",
        ("s3", "put_bucket_encryption") => "PutEncryptionConfiguration",
        ("s3", "get_bucket_lifecycle_configuration") => "GetLifecycleConfiguration",
        ("s3", "put_bucket_lifecycle_configuration" | "delete_bucket_lifecycle") => {
            "PutLifecycleConfiguration"
        }
        ("s3", "get_public_access_block") => "GetBucketPublicAccessBlock",
        ("s3", "put_public_access_block") => "PutBucketPublicAccessBlock",
        _ => "",
    };
    let name = if renamed.is_empty() {
        op.split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next().map_or(String::new(), |f| {
                    f.to_ascii_uppercase().to_string() + c.as_str()
                })
            })
            .collect()
    } else {
        renamed.to_owned()
    };
    format!("{prefix}:{name}")
}

/// The SDK calls in one source file: `.{client}.{operation}(` with the client one of
/// [`crate::deploy::engine::aws::Aws`]'s fields (whitespace between allowed).
fn calls(text: &str) -> BTreeSet<String> {
    const CLIENTS: &[&str] = &[
        "ecs",
        "iam",
        "sqs",
        "logs",
        "scaling",
        "scheduler",
        "cloudwatch",
        "sts",
        "ec2",
        "secrets",
        "autoscaling",
        "ssm",
        "ecr",
        "sns",
        "sd",
        "s3",
        "firehose",
    ];
    let flat: String = text.split_whitespace().collect();
    let mut out = BTreeSet::new();
    for client in CLIENTS {
        let needle = format!("{client}.");
        let mut from = 0;
        while let Some(i) = flat[from..].find(&needle) {
            let start = from + i;
            from = start + needle.len();
            let before = flat[..start].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            // The client itself (`ctx.aws.s3.`), or a variable bound to it
            // (`let s3 = &ctx.aws.s3;`), not a field of the same name.
            let bound = flat.contains(&format!("aws.{client};"));
            if !flat[..start].ends_with("aws.") && !bound {
                continue;
            }
            let op: String = flat[from..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            // An SDK operation is called with no arguments (`.create_queue()`) and
            // sent, or paged, before the statement ends.
            let rest = &flat[from + op.len()..];
            let statement = &rest[..rest.find(';').unwrap_or(rest.len())];
            let sent = statement.contains(".send()") || statement.contains(".into_paginator()");
            if !op.is_empty() && rest.starts_with("()") && sent {
                out.insert(action(client, &op));
            }
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn each_resource_files_calls_are_in_its_kinds_grants() {
    let at = at();
    let scope = Scope {
        at: &at,
        stack: "every",
        cluster: "every",
    };
    let dir = Path::new(ROOT).join("src/deploy/resources");
    let mut files = Vec::new();
    sources(&dir, &mut files);
    let mut checked = 0;
    let mut missing = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let kinds: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("const KIND: &'static str = \""))
            .filter_map(|l| l.strip_suffix("\";"))
            .collect();
        if kinds.is_empty() {
            continue;
        }
        let granted: BTreeSet<&str> = kinds
            .iter()
            .flat_map(|k| access::of(k, &scope).unwrap().grants)
            .flat_map(|g| g.actions.to_vec())
            .collect();
        for call in calls(&text) {
            if !granted.contains(call.as_str()) {
                missing.push(format!(
                    "{}: {call} is called, but not granted to {kinds:?}",
                    f.display()
                ));
            }
            checked += 1;
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    assert!(checked > 150, "{checked} calls");
}

/// Every call of the deploying verbs: the resources, the engine, the images, and the
/// verbs' own (the lock, the preflight, status, waiting), but not the day-2 verbs
/// (`run`, `exec`, `tasks`, `rollback`, `logs`, `run --local`), which a deploying
/// identity does not call (`runs`' reading of the logs serves `status` too), and not
/// the CI roles' (`ci github --create-role` is an administrator's; `delete` removes
/// them only where its caller may, and the deploy role may not, by design).
#[test]
fn the_policy_of_a_stack_of_every_type_grants_every_call_the_deploying_verbs_make() {
    let mut stack = every();
    // A built image too: its repository and the push.
    let built = "  built:\n    type: worker-service\n    properties:\n      packaging: { type: custom-dockerfile, properties: { buildContextPath: . } }\n";
    let text = std::fs::read_to_string(Path::new(ROOT).join("tests/fixtures/policy/every.yaml"))
        .unwrap()
        + built;
    stack = validate::check_stage("every.yaml", &text, None)
        .map(|(s, _)| s)
        .unwrap_or_else(|r| panic!("{r}\n{stack:?}"));
    let granted: BTreeSet<&str> = needs(&stack, &at())
        .grants
        .iter()
        .flat_map(|(_, g)| g.actions.iter().copied())
        .collect();
    let day2 = [
        "exec.rs",
        "local.rs",
        "logs.rs",
        "run.rs",
        "tasks.rs",
        "rollback.rs",
        "ci.rs",
        "ci_roles.rs",
    ];
    let mut files = Vec::new();
    sources(&Path::new(ROOT).join("src/deploy"), &mut files);
    let mut missing = Vec::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if f.parent().unwrap().ends_with("ops") && day2.contains(&name.as_str()) {
            continue;
        }
        for call in calls(&std::fs::read_to_string(&f).unwrap()) {
            // GetCallerIdentity needs no permission (STS API Reference).
            if call != "sts:GetCallerIdentity" && !granted.contains(call.as_str()) {
                missing.push(format!("{}: {call}", f.display()));
            }
        }
    }
    assert!(missing.is_empty(), "not granted:\n{}", missing.join("\n"));
    for a in [
        "iam:PassRole",
        "iam:CreateServiceLinkedRole",
        "ecr:PutImage",
        "route53:CreateHostedZone",
    ] {
        assert!(granted.contains(a), "{a}");
    }
}

#[test]
fn each_role_is_passed_only_to_the_service_its_trust_names() {
    let doc = needs(&every(), &at()).document();
    let passes: Vec<&serde_json::Value> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["Action"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "iam:PassRole")
        })
        .collect();
    let to = |s: &serde_json::Value| {
        s["Condition"]["StringEquals"]["iam:PassedToService"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let services: BTreeSet<String> = passes.iter().map(|s| to(s)).collect();
    let want: BTreeSet<String> = ["ec2", "ecs-tasks", "firehose", "logs", "scheduler"]
        .iter()
        .map(|s| format!("{s}.amazonaws.com"))
        .collect();
    assert_eq!(services, want);
    for s in passes {
        assert_eq!(s["Action"], serde_json::json!(["iam:PassRole"]));
        let roles: Vec<String> = match &s["Resource"] {
            serde_json::Value::String(r) => vec![r.clone()],
            v => v
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect(),
        };
        for r in roles {
            assert!(
                r.starts_with("arn:aws:iam::123456789012:role/bosun/every/every-"),
                "{r}"
            );
            assert!(!r.contains('*'), "{r}");
        }
    }
}
