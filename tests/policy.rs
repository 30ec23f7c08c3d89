//! The deploying identity's least privilege: `bosun-deploy policy` prints what a stack's
//! verbs need, and a user holding nothing more applies, re-applies, diffs and deletes
//! a stack of every type on moto authorizing every call; without any one of its
//! statements a verb stops with exit 4 naming the call AWS refused, and the next run
//! with it back finishes the job. And `ci github`: the workflow that deploys on push,
//! and the role it assumes.

#![allow(clippy::unwrap_used)]

mod common;

use common::world::*;
use common::*;
use serde_json::{json, Value};

const EVERY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/policy/every.yaml"
);

/// Calls made by AWS on the caller's behalf (no request of bosun-deploy's names them,
/// so moto never sees them): passing roles, service-linked roles, the Route 53 zone
/// behind Cloud Map, the instances behind an Auto Scaling group, the AMI parameter,
/// the lock's tag. The Service Authorization Reference check covers them.
const UNSEEN: &[&str] = &[
    "iam:PassRole",
    "iam:CreateServiceLinkedRole",
    "route53:CreateHostedZone",
    "route53:GetHostedZone",
    "route53:ListHostedZonesByName",
    "ec2:DescribeRegions",
    "ec2:RunInstances",
    "ssm:AddTagsToResource",
    "ssm:GetParameters",
];

/// The policy as moto can check it. moto authorizes resource-level only for SQS, IAM
/// and S3, and for the rest against `*`; a condition whose key the request does not
/// carry is a denial there (moto/iam/access_control.py): so every statement is on `*`
/// without its condition (the ARNs and condition keys are checked against the Service
/// Authorization Reference instead). And moto names some actions otherwise than AWS:
/// CloudWatch's by its signing name, `monitoring`, and S3's by its operations.
fn as_moto_sees_it(policy: &Value) -> Value {
    let renames: &[(&str, &str)] = &[
        ("s3:ListAllMyBuckets", "s3:ListBuckets"),
        ("s3:ListBucket", "s3:HeadBucket"),
        ("s3:GetBucketPublicAccessBlock", "s3:GetPublicAccessBlock"),
        ("s3:PutBucketPublicAccessBlock", "s3:PutPublicAccessBlock"),
        ("s3:GetEncryptionConfiguration", "s3:GetBucketEncryption"),
        ("s3:PutEncryptionConfiguration", "s3:PutBucketEncryption"),
        (
            "s3:GetLifecycleConfiguration",
            "s3:GetBucketLifecycleConfiguration",
        ),
        (
            "s3:PutLifecycleConfiguration",
            "s3:PutBucketLifecycleConfiguration",
        ),
        ("s3:ListBucketVersions", "s3:ListObjectVersions"),
        ("s3:DeleteObject", "s3:DeleteObjects"),
    ];
    let statements = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut actions = Vec::new();
            for a in s["Action"].as_array().unwrap() {
                let a = a.as_str().unwrap();
                actions.push(a.replace("cloudwatch:", "monitoring:"));
                for (aws, moto) in renames {
                    if a == *aws {
                        actions.push((*moto).to_owned());
                    }
                }
            }
            json!({ "Effect": "Allow", "Action": actions, "Resource": "*" })
        })
        .collect::<Vec<_>>();
    json!({ "Version": "2012-10-17", "Statement": statements })
}

struct Enforced {
    w: World,
    admin: (String, String),
    deployer: (String, String),
    dir: TempDir,
}

impl Enforced {
    /// moto authorizing, with an administrator and a deploying user without a policy;
    /// the secret the stack reads.
    fn new() -> Enforced {
        let w = World::with_moto(Moto::start_authorizing());
        let keys = py(&w.moto, "import boto3,sys,json; c=lambda n: boto3.client(n, endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y'); iam=c('iam'); c('secretsmanager').create_secret(Name='every-token', SecretString=json.dumps({'token': 't'}))
for u in ['admin', 'deployer']:
    iam.create_user(UserName=u); k=iam.create_access_key(UserName=u)['AccessKey']; print(k['AccessKeyId'], k['SecretAccessKey'])
iam.put_user_policy(UserName='admin', PolicyName='all', PolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': '*', 'Resource': '*'}]}))");
        let k: Vec<&str> = keys.split_whitespace().collect();
        Enforced {
            admin: (k[0].into(), k[1].into()),
            deployer: (k[2].into(), k[3].into()),
            w,
            dir: TempDir::new("policy"),
        }
    }

    fn admin(&self, code: &str) -> String {
        py(&self.w.moto, &format!("import boto3,sys,json; c=lambda n: boto3.client(n, endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='{}', aws_secret_access_key='{}'); iam=c('iam'); {code}", self.admin.0, self.admin.1))
    }

    /// The deploying user's one policy, in place of what it had.
    fn grant(&self, policy: &Value) {
        let file = self.dir.path("granted.json");
        std::fs::write(&file, policy.to_string()).unwrap();
        self.admin(&format!(
            "iam.put_user_policy(UserName='deployer', PolicyName='bosun-deploy', PolicyDocument=open('{}').read())",
            file.display()
        ));
    }

    fn deploy(&self, args: &[&str]) -> std::process::Output {
        let mut env = self.w.env();
        for (k, v) in env.iter_mut() {
            match *k {
                "AWS_ACCESS_KEY_ID" => *v = self.deployer.0.clone(),
                "AWS_SECRET_ACCESS_KEY" => *v = self.deployer.1.clone(),
                _ => {}
            }
        }
        deploy(args, &env)
    }

    /// What moto decided since the `skip` first decisions: (allowed, action).
    fn decided(&self, skip: usize) -> Vec<(bool, String)> {
        self.w.moto.decisions().into_iter().skip(skip).collect()
    }

    /// `verb` finishes (exit 0) with nothing refused; the actions it needed.
    fn needs(&self, verb: &[&str]) -> std::collections::BTreeSet<String> {
        let before = self.w.moto.decisions().len();
        let out = self.deploy(verb);
        let decided = self.decided(before);
        let denied: Vec<_> = decided.iter().filter(|(ok, _)| !ok).collect();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{verb:?}, moto denied {denied:?}: {}",
            stderr(&out)
        );
        assert!(denied.is_empty(), "{verb:?}: {denied:?}");
        decided.into_iter().map(|(_, a)| a).collect()
    }

    /// Without the statement of the moto view holding `action`, `verb` stops with
    /// exit 4, moto having refused one of that statement's actions and bosun-deploy
    /// naming the call and what to do; `full` then back. The actions it needed
    /// before it stopped.
    fn stops_without(
        &self,
        full: &Value,
        action: &str,
        verb: &[&str],
    ) -> std::collections::BTreeSet<String> {
        let statements = full["Statement"].as_array().unwrap();
        let s = statements
            .iter()
            .find(|s| s["Action"].as_array().unwrap().iter().any(|a| a == action))
            .unwrap_or_else(|| panic!("no statement grants {action}"));
        let gone: Vec<Value> = s["Action"].as_array().unwrap().clone();
        // On `*`, another statement may grant one of its actions too: they go from
        // all of them (what leaving the statement out denies on AWS).
        let mut without = full.clone();
        for other in without["Statement"].as_array_mut().unwrap() {
            other["Action"]
                .as_array_mut()
                .unwrap()
                .retain(|a| !gone.contains(a));
        }
        without["Statement"]
            .as_array_mut()
            .unwrap()
            .retain(|o| !o["Action"].as_array().unwrap().is_empty());
        self.grant(&without);
        let before = self.w.moto.decisions().len();
        let out = self.deploy(verb);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{verb:?} without {action}: {err}"
        );
        let decided = self.decided(before);
        let denied: Vec<String> = decided
            .iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, a)| a.clone())
            .collect();
        assert!(
            denied.iter().any(|d| gone.iter().any(|g| g == d.as_str())),
            "{verb:?}: moto denied {denied:?}, none of {gone:?}\n{err}"
        );
        // The call is named by its operation, with what to do about it.
        assert!(
            denied
                .iter()
                .any(|d| err.contains(d.split(':').nth(1).unwrap())),
            "{verb:?}: the refused call ({denied:?}) is not named in\n{err}"
        );
        assert!(err.contains("`bosun-deploy policy` prints"), "{err}");
        self.grant(full);
        decided
            .into_iter()
            .filter(|(ok, _)| *ok)
            .map(|(_, a)| a)
            .collect()
    }
}

/// A user holding only the printed policy deploys, re-applies without a change, diffs,
/// reads the status, re-tags and deletes a stack of every type; every statement is
/// needed by one of those verbs (moto logs each action it authorizes); without a
/// statement a verb that needs it stops with exit 4 naming the refused call, and once
/// it is back the next run finishes the job. The printed policy is parliament-clean,
/// its ARNs of its actions' resource types, its condition keys ones they take.
#[test]
fn the_printed_policy_is_all_a_deploying_user_needs() {
    let e = Enforced::new();
    let out = e.w.deploy(&["policy", "--stack", EVERY]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let policy: Value = serde_json::from_slice(&out.stdout).unwrap();
    let printed = e.dir.path("policy.json");
    std::fs::write(&printed, &out.stdout).unwrap();
    lint_policy(&printed, "");
    let text = policy.to_string();
    for scoped in [
        "arn:aws:iam::123456789012:role/bosun/every/*",
        "arn:aws:sqs:us-east-1:123456789012:every-*",
        "\"aws:ResourceTag/bosun:stack\":\"every\"",
        "\"iam:PassedToService\":\"ecs-tasks.amazonaws.com\"",
    ] {
        assert!(text.contains(scoped), "{scoped} not in {text}");
    }
    let mut full = as_moto_sees_it(&policy);
    // The user may ask IAM's policy simulator about itself, as the CI deploy role may
    // (moto has no simulator: apply then leaves the check to the calls).
    full["Statement"].as_array_mut().unwrap().push(
        json!({ "Effect": "Allow", "Action": ["iam:SimulatePrincipalPolicy"], "Resource": "*" }),
    );
    e.grant(&full);
    e.w.moto.enforce_iam();
    let every = EVERY.to_owned();
    let apply = ["apply", "--no-wait", "--stack", every.as_str()];
    let delete = ["delete", "--yes", "--stack", every.as_str()];
    let retagged = write(
        &e.dir,
        "retagged.yaml",
        &std::fs::read_to_string(EVERY)
            .unwrap()
            .replace("stack: every\n", "stack: every\ntags: { team: payments }\n"),
    );

    // Without a statement: the first apply stops on the first call that needs it;
    // with it back, the next apply finishes the job.
    let mut needed = e.stops_without(&full, "sqs:CreateQueue", &apply);
    needed.extend(e.stops_without(&full, "iam:ListRoles", &apply));
    needed.extend(e.needs(&apply));
    e.w.proxy.record();
    needed.extend(e.needs(&apply));
    assert_eq!(e.w.proxy.mutating(), Vec::<String>::new(), "a re-apply");
    needed.extend(e.needs(&["diff", "--stack", &every]));
    needed.extend(e.needs(&["status", "--stack", &every]));
    needed.extend(e.needs(&["apply", "--no-wait", "--stack", &retagged]));
    // A bucket deleted with what it holds.
    e.admin("s3 = c('s3'); b = [b['Name'] for b in s3.list_buckets()['Buckets'] if b['Name'].startswith('every-files-')][0]; s3.put_object(Bucket=b, Key='a', Body=b'x'); s3.put_object(Bucket=b, Key='a', Body=b'y')");
    needed.extend(e.stops_without(&full, "logs:DeleteLogGroup", &delete));
    needed.extend(e.needs(&delete));
    let left = e.admin("print(len(c('sqs').list_queues().get('QueueUrls', [])), len(iam.list_roles(PathPrefix='/bosun/')['Roles']), len(c('s3').list_buckets()['Buckets']), len([x for x in c('ecs').describe_clusters(clusters=['every'])['clusters'] if x['status'] == 'ACTIVE']))");
    assert_eq!(left.trim(), "0 0 0 0");

    // Every statement holds an action one of the verbs needed, but for those of calls
    // AWS makes for the caller (UNSEEN) and ecs:DescribeTasks, which is called only
    // for running tasks (moto runs none: its call is in the code, which the unit
    // tests hold against the policy).
    for s in full["Statement"].as_array().unwrap() {
        let actions: Vec<&str> = s["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        if actions
            .iter()
            .all(|a| UNSEEN.contains(a) || *a == "ecs:DescribeTasks")
        {
            continue;
        }
        assert!(
            actions.iter().any(|a| needed.contains(*a)),
            "no verb needed any of {actions:?}"
        );
    }
}

/// tests/aws_models.py's policy checks on one document.
fn lint_policy(file: &std::path::Path, what: &str) {
    let py = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let checker = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws_models.py");
    let mut cmd = std::process::Command::new(py);
    cmd.arg(checker).arg("--policy").arg(file);
    if !what.is_empty() {
        cmd.arg(what);
    }
    let out = run_bounded(&mut cmd, std::time::Duration::from_secs(120));
    let report = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(report.contains("checked the policy"), "{report}");
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
}

fn actionlint(file: &std::path::Path) -> std::process::Output {
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/actionlint");
    run_bounded(
        std::process::Command::new(bin).arg(file),
        std::time::Duration::from_secs(60),
    )
}

/// `ci github --create-role`: a workflow actionlint finds nothing in (its actions at
/// versions whose runtime is not deprecated, as the same file at older ones shows),
/// assuming by GitHub's OIDC two roles the stack owns: the deploy role trusted by
/// pushes to exactly the repository's branch, holding `policy` in managed policies of
/// IAM's size; the diff role trusted by its pull requests, holding the reads. GitHub's
/// provider made once. Again: nothing changes; a workflow edited by hand is never
/// overwritten; apply leaves the roles, delete takes them away. Every request valid,
/// every policy clean.
#[test]
fn ci_github_writes_a_workflow_assuming_roles_trusted_by_one_branch() {
    let w = World::new();
    let dir = TempDir::new("ci");
    let root = dir.path("shop");
    std::fs::create_dir_all(root.join("deploy")).unwrap();
    git(&root, &["init", "-q"]);
    git(
        &root,
        &["remote", "add", "origin", "git@github.com:acme/shop.git"],
    );
    let file = root.join("deploy/bosun.yaml");
    std::fs::copy(EVERY, &file).unwrap();
    let file = file.display().to_string();
    let ci = [
        "ci",
        "github",
        "--stack",
        file.as_str(),
        "--stage",
        "prod",
        "--branch",
        "release",
        "--create-role",
    ];
    w.proxy.record();
    let out = w.deploy(&ci);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = stdout(&out);
    for arn in [
        "arn:aws:iam::123456789012:role/bosun-ci/every-prod-deploy",
        "arn:aws:iam::123456789012:role/bosun-ci/every-prod-diff",
    ] {
        assert!(said.contains(arn), "{said}");
    }
    check_with_models(&dir, &w.proxy.recorded());

    // The workflow.
    let workflow = root.join(".github/workflows/bosun.yml");
    let text = std::fs::read_to_string(&workflow).unwrap();
    let lint = actionlint(&workflow);
    assert_eq!(
        lint.status.code(),
        Some(0),
        "{}{}",
        stdout(&lint),
        stderr(&lint)
    );
    for want in [
        "role-to-assume: arn:aws:iam::123456789012:role/bosun-ci/every-prod-deploy",
        "role-to-assume: arn:aws:iam::123456789012:role/bosun-ci/every-prod-diff",
        "id-token: write",
        "BOSUN_STAGE: prod",
        "branches: [release]",
        concat!("BOSUN_VERSION: ", env!("CARGO_PKG_VERSION")),
        "bosun-deploy diff --stack \"deploy/bosun.yaml\"",
        "bosun-deploy apply --stack \"deploy/bosun.yaml\"",
        "GITHUB_STEP_SUMMARY",
    ] {
        assert!(text.contains(want), "{want} not in\n{text}");
    }
    assert!(!text.to_lowercase().contains("aws-access-key-id"), "{text}");
    // The same file with the actions' earlier majors: actionlint knows them, and says
    // their runtime is deprecated.
    let old = dir.path("old.yml");
    std::fs::write(
        &old,
        text.replace("@v5", "@v4").replace(
            "configure-aws-credentials@v6",
            "configure-aws-credentials@v4",
        ),
    )
    .unwrap();
    let lint = actionlint(&old);
    assert_eq!(lint.status.code(), Some(1));
    assert!(stdout(&lint).contains("deprecated"), "{}", stdout(&lint));

    // The roles.
    let roles = py(&w.moto, "import boto3,sys,json,urllib.parse; iam=boto3.client('iam', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')
out = {}
for n in ['every-prod-deploy', 'every-prod-diff']:
    r = iam.get_role(RoleName=n)['Role']
    docs = []
    for p in iam.list_attached_role_policies(RoleName=n)['AttachedPolicies']:
        v = iam.get_policy(PolicyArn=p['PolicyArn'])['Policy']['DefaultVersionId']
        docs.append(iam.get_policy_version(PolicyArn=p['PolicyArn'], VersionId=v)['PolicyVersion']['Document'])
    out[n] = {'path': r['Path'], 'trust': r['AssumeRolePolicyDocument'], 'tags': r.get('Tags', []), 'policies': docs}
out['providers'] = [p['Arn'] for p in iam.list_open_id_connect_providers()['OpenIDConnectProviderList']]
print(json.dumps(out))");
    let roles: Value = serde_json::from_str(&roles).unwrap();
    assert_eq!(
        roles["providers"],
        json!(["arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"])
    );
    let decode = |v: &Value| -> Value {
        match v {
            Value::String(s) => serde_json::from_str(s).unwrap(),
            v => v.clone(),
        }
    };
    for (role, sub) in [
        ("every-prod-deploy", "repo:acme/shop:ref:refs/heads/release"),
        ("every-prod-diff", "repo:acme/shop:pull_request"),
    ] {
        let r = &roles[role];
        assert_eq!(r["path"], "/bosun-ci/");
        assert_eq!(
            r["tags"],
            json!([{ "Key": "bosun:ci-role", "Value": "every-prod" }])
        );
        let trust = decode(&r["trust"]);
        let st = &trust["Statement"];
        assert_eq!(st.as_array().unwrap().len(), 1, "{trust}");
        assert_eq!(
            st[0]["Principal"],
            json!({ "Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com" })
        );
        assert_eq!(st[0]["Action"], "sts:AssumeRoleWithWebIdentity");
        assert_eq!(
            st[0]["Condition"],
            json!({ "StringEquals": { "token.actions.githubusercontent.com:aud": "sts.amazonaws.com", "token.actions.githubusercontent.com:sub": sub } })
        );
        let t = dir.path(&format!("{role}-trust.json"));
        std::fs::write(&t, trust.to_string()).unwrap();
        lint_policy(&t, "AssumeRolePolicyDocument");
    }
    // The deploy role holds exactly `policy` of the stage, in pieces IAM takes.
    let out = w.deploy(&["policy", "--stack", &file, "--stage", "prod"]);
    let policy: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut held: Vec<Value> = Vec::new();
    for doc in roles["every-prod-deploy"]["policies"].as_array().unwrap() {
        let doc = decode(doc);
        assert!(doc.to_string().len() <= 6144, "{}", doc.to_string().len());
        held.extend(doc["Statement"].as_array().unwrap().iter().cloned());
    }
    let mut want: Vec<Value> = policy["Statement"].as_array().unwrap().clone();
    // And the simulator, about itself.
    want.push(json!({ "Effect": "Allow", "Action": ["iam:SimulatePrincipalPolicy"], "Resource": "arn:aws:iam::123456789012:role/bosun-ci/every-prod-deploy" }));
    let key = |v: &Value| v.to_string();
    held.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(held, want);
    // The diff role: reads alone.
    for doc in roles["every-prod-diff"]["policies"].as_array().unwrap() {
        for st in decode(doc)["Statement"].as_array().unwrap() {
            for a in st["Action"].as_array().unwrap() {
                let op = a.as_str().unwrap().split(':').nth(1).unwrap();
                assert!(
                    [
                        "Describe",
                        "Get",
                        "List",
                        "BatchGet",
                        "BatchCheck",
                        "FilterLogEvents"
                    ]
                    .iter()
                    .any(|p| op.starts_with(p)),
                    "{a}"
                );
            }
        }
    }

    // Again: nothing changes.
    w.proxy.record();
    let out = w.deploy(&ci);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("unchanged"), "{}", stdout(&out));
    assert_eq!(w.proxy.mutating(), Vec::<String>::new());
    // Edited by hand: never overwritten.
    std::fs::write(&workflow, format!("{text}# mine\n")).unwrap();
    let out = w.deploy(&ci);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("never overwritten"),
        "{}",
        stderr(&out)
    );
    assert!(std::fs::read_to_string(&workflow)
        .unwrap()
        .ends_with("# mine\n"));

    // apply leaves them; delete takes them away (the provider stays: others trust it).
    py(&w.moto, "import boto3,sys,json; boto3.client('secretsmanager', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y').create_secret(Name='every-token', SecretString=json.dumps({'token': 't'}))");
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file, "--stage", "prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let count = "import boto3,sys; iam=boto3.client('iam', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y'); print(len(iam.list_roles(PathPrefix='/bosun-ci/')['Roles']), len(iam.list_policies(Scope='Local', PathPrefix='/bosun-ci/')['Policies']), len(iam.list_open_id_connect_providers()['OpenIDConnectProviderList']))";
    let made = roles["every-prod-deploy"]["policies"]
        .as_array()
        .unwrap()
        .len()
        + roles["every-prod-diff"]["policies"]
            .as_array()
            .unwrap()
            .len();
    assert_eq!(py(&w.moto, count).trim(), format!("2 {made} 1"));
    let out = w.deploy(&["delete", "--yes", "--stack", &file, "--stage", "prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("- delete IAM role /bosun-ci/every-prod-deploy"),
        "{}",
        stderr(&out)
    );
    assert_eq!(py(&w.moto, count).trim(), "0 0 1");

    // A role of that name someone else made: refused, nothing changed; the provider
    // that exists is used as it is.
    py(&w.moto, "import boto3,sys; boto3.client('iam', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y').create_role(RoleName='every-prod-deploy', AssumeRolePolicyDocument='{}')");
    std::fs::remove_file(&workflow).unwrap();
    w.proxy.record();
    let out = w.deploy(&ci);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("IAM role every-prod-deploy exists but is not this stack's"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.proxy.mutating(), Vec::<String>::new());
}

/// Where the caller may ask IAM's policy simulator (here the proxy answers as IAM
/// would), apply and delete ask it first: what it denies stops the run with exit 4
/// before any change, naming each action and resource; allowed, the run goes on.
#[test]
fn the_policy_simulator_stops_a_run_before_any_change() {
    let w = World::new();
    let dir = TempDir::new("simulate");
    py(&w.moto, "import boto3,sys,json; boto3.client('secretsmanager', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y').create_secret(Name='every-token', SecretString=json.dumps({'token': 't'}))");
    w.proxy
        .simulate_denying(&["sqs:CreateQueue", "iam:PassRole"]);
    w.proxy.record();
    let apply = ["apply", "--no-wait", "--stack", EVERY];
    w.refuses(
        &apply,
        "sqs:CreateQueue on arn:aws:sqs:us-east-1:123456789012:every-* (implicitDeny)",
    );
    let out = w.deploy(&apply);
    let err = stderr(&out);
    assert!(
        err.contains("iam:PassRole on arn:aws:iam::123456789012:role/bosun/every/every-"),
        "{err}"
    );
    assert!(err.contains("`bosun-deploy policy` prints"), "{err}");
    assert!(
        err.contains("arn:aws:sts::123456789012:user/moto") || err.contains(":user/"),
        "{err}"
    );
    check_with_models(&dir, &w.proxy.recorded());
    w.proxy.simulate_denying(&[]);
    let out = w.deploy(&apply);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    w.proxy.simulate_denying(&["logs:DeleteLogGroup"]);
    w.refuses(&["delete", "--yes", "--stack", EVERY], "logs:DeleteLogGroup on arn:aws:logs:us-east-1:123456789012:log-group:/bosun/every/* (implicitDeny)");
}
