//! `bosun-deploy policy`: the IAM policy document `apply`, `diff`, `status` and
//! `delete` of one stack need, and nothing more. Each kind's grants are its own
//! ([`access::of`]); this adds what the verbs call beside the kinds (the lock, the
//! preflight's reads), `iam:PassRole` of each of the stack's roles to the one service
//! that assumes it, and the service-linked roles AWS makes on first use.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::deploy::components::{self, Cx, Target};
use crate::deploy::naming::{self, Where};
use crate::deploy::resources::access::{self, Condition, Grant, Scope, When};
use crate::deploy::resources::{Spec, KINDS};
use crate::deploy::stack::Stack;

/// What one policy is made of, before it is written out: the grants, each with the
/// kind (or the verb's part) that needs it, for `docs` and the tests.
pub struct Needs {
    pub grants: Vec<(String, Grant)>,
}

/// The stack as a policy sees it: rendered at `at` (the caller's account and
/// region), which tells the kinds the file has and the roles it passes.
pub fn needs(stack: &Stack, at: &Where) -> Needs {
    let target = Target::offline(at);
    let rendered = components::render(stack, &target);
    let present: BTreeSet<&str> = rendered
        .nodes
        .iter()
        .map(|n| crate::deploy::engine::Registry::kind(&n.spec))
        .collect();
    let scope = Scope {
        at,
        stack: &stack.stack,
        cluster: &stack.cluster,
    };
    let mut grants = Vec::new();
    for kind in KINDS {
        let Some(a) = access::of(kind, &scope) else {
            continue;
        };
        for g in a.grants {
            if g.when == When::Always || present.contains(kind) {
                grants.push((kind.to_string(), g));
            }
        }
    }
    let cx = Cx { stack, t: &target };
    grants.extend(
        verbs(&cx, &rendered.preflight)
            .into_iter()
            .map(|g| ("verbs".to_owned(), g)),
    );
    grants.extend(passed_roles(&rendered.nodes, at).map(|g| ("IAM role".to_owned(), g)));
    grants.extend(
        linked_roles(&present, at)
            .into_iter()
            .map(|g| ("service-linked role".to_owned(), g)),
    );
    Needs { grants }
}

/// What the verbs call beside the kinds: the lock (an SSM parameter tagged at
/// creation, which needs ssm:AddTagsToResource: Systems Manager User Guide, "Tagging
/// Systems Manager parameters"), the network and secrets preflight reads.
/// sts:GetCallerIdentity needs no permission (STS API Reference,
/// GetCallerIdentity: "No permissions are required to perform this operation").
fn verbs(cx: &Cx<'_>, p: &components::Preflight) -> Vec<Grant> {
    let stack = cx.stack;
    let mut out = vec![
        access::always(
            &[
                "ssm:GetParameter",
                "ssm:PutParameter",
                "ssm:AddTagsToResource",
                "ssm:DeleteParameter",
            ],
            &[cx.param_arn(&naming::lock_parameter(&stack.stack))],
        ),
        // The default VPC, the file's subnets and groups, the VPC's DNS attributes:
        // EC2's Describe actions take no resource type.
        access::always(
            &[
                "ec2:DescribeVpcs",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
            ],
            &["*".into()],
        ),
        access::always(&["ec2:DescribeVpcAttribute"], &[cx.t.arn("ec2", "vpc/*")]),
        // `status` reads each job's last run from its log group.
        access::always(
            &["logs:FilterLogEvents"],
            &[cx.t.arn(
                "logs",
                &format!("log-group:{}", naming::log_group(&stack.stack, "*")),
            )],
        ),
    ];
    // A secret by its name matches its ARN with the six characters Secrets Manager
    // adds (Cx::secret_arns).
    let secret = |name: &str| cx.secret_arns(name).1;
    let described: BTreeSet<String> = p.secrets.iter().map(|(n, _)| secret(n)).collect();
    // Read: the secrets whose keys preflight checks, and a prebuilt image's registry
    // credentials (bosun-deploy pulls the image's config with them).
    let mut read: BTreeSet<String> = p.secret_keys.iter().map(|(n, _, _)| secret(n)).collect();
    read.extend(stack.resources.values().filter_map(|r| {
        r.container()?
            .packaging
            .properties
            .repository_credentials_secret_arn
            .clone()
    }));
    let params: BTreeSet<String> = p.params.iter().map(|(n, _)| cx.param_arn(n)).collect();
    for (action, on) in [
        (&["secretsmanager:DescribeSecret"], described),
        (&["secretsmanager:GetSecretValue"], read),
        (&["ssm:GetParameters"], params),
    ] {
        if !on.is_empty() {
            out.push(access::always(action, &on.into_iter().collect::<Vec<_>>()));
        }
    }
    out
}

/// `iam:PassRole` of each of the stack's roles, to the one service its trust policy
/// names (ECS tasks, the Scheduler, Firehose, CloudWatch Logs, EC2 through an
/// instance profile): IAM User Guide, "Grant a user permissions to pass a role to an
/// AWS service".
fn passed_roles(
    nodes: &[crate::deploy::engine::Node<Spec>],
    at: &Where,
) -> impl Iterator<Item = Grant> {
    let mut by_service: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in nodes {
        let Spec::Role(r) = &n.spec else { continue };
        let services = r.assume_role_policy_document["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["Principal"]["Service"].as_str());
        for svc in services {
            by_service.entry(svc.to_owned()).or_default().push(format!(
                "arn:aws:iam::{}:role{}{}",
                at.account, r.path, r.role_name
            ));
        }
    }
    by_service
        .into_iter()
        .map(|(svc, roles)| access::pass_role(When::Making, roles, &svc))
}

/// The service-linked roles AWS makes the first time an account uses ECS, EC2 Auto
/// Scaling or Application Auto Scaling, which the caller must be allowed to create
/// (IAM User Guide, "Service-linked role permissions"; each role is under
/// `aws-service-role/{service}/`).
fn linked_roles(present: &BTreeSet<&str>, at: &Where) -> Vec<Grant> {
    let uses = [
        ("ECS cluster", "ecs.amazonaws.com"),
        ("Auto Scaling group", "autoscaling.amazonaws.com"),
        (
            "scalable target",
            "ecs.application-autoscaling.amazonaws.com",
        ),
    ];
    let account = at.account.clone();
    uses.into_iter()
        .filter(|(kind, _)| present.contains(kind))
        .map(move |(_, svc)| Grant {
            actions: Cow::Borrowed(&["iam:CreateServiceLinkedRole"]),
            on: vec![format!(
                "arn:aws:iam::{account}:role/aws-service-role/{svc}/*"
            )],
            when: When::Making,
            condition: Some(Condition {
                test: "StringEquals",
                key: "iam:AWSServiceName".into(),
                values: vec![svc.to_owned()],
            }),
        })
        .collect()
}

impl Needs {
    /// The reads alone (`diff` and `status`: Describe, Get, List), for the role of
    /// pull requests.
    pub fn reads(&self) -> Needs {
        let read = |a: &&str| {
            let op = a.split(':').nth(1).unwrap_or("");
            [
                "Describe",
                "Get",
                "List",
                "BatchGet",
                "BatchCheck",
                "FilterLogEvents",
            ]
            .iter()
            .any(|p| op.starts_with(p))
        };
        let grants = self
            .grants
            .iter()
            .filter_map(|(k, g)| {
                let actions: Vec<&'static str> = g.actions.iter().copied().filter(read).collect();
                (!actions.is_empty()).then(|| {
                    let mut g = g.clone();
                    g.actions = Cow::Owned(actions);
                    (k.clone(), g)
                })
            })
            .collect();
        Needs { grants }
    }

    /// The policy document: grants on the same resources under the same condition
    /// are one statement; actions sorted, so the same stack prints the same text.
    pub fn document(&self) -> Value {
        type Key = (Vec<String>, Option<(String, String, Vec<String>)>);
        let mut statements: BTreeMap<Key, BTreeSet<&str>> = BTreeMap::new();
        for (_, g) in &self.grants {
            let mut on = g.on.clone();
            on.sort();
            on.dedup();
            let cond = g
                .condition
                .as_ref()
                .map(|c| (c.test.to_owned(), c.key.clone(), c.values.clone()));
            statements
                .entry((on, cond))
                .or_default()
                .extend(g.actions.iter().copied());
        }
        let statements: Vec<Value> = statements
            .into_iter()
            .map(|((on, cond), actions)| {
                let mut s = Map::new();
                s.insert("Effect".into(), json!("Allow"));
                s.insert(
                    "Action".into(),
                    json!(actions.into_iter().collect::<Vec<_>>()),
                );
                s.insert(
                    "Resource".into(),
                    if on.len() == 1 {
                        json!(on[0])
                    } else {
                        json!(on)
                    },
                );
                if let Some((test, key, values)) = cond {
                    let v = if values.len() == 1 {
                        json!(values[0])
                    } else {
                        json!(values)
                    };
                    s.insert("Condition".into(), json!({ test: { key: v } }));
                }
                Value::Object(s)
            })
            .collect();
        json!({ "Version": "2012-10-17", "Statement": statements })
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
