//! The IAM roles of what runs: a role with its one inline policy, the task role of a
//! worker or job (only what `connectTo` and `iamRoleStatements` ask for, plus what
//! bosun itself calls), and the execution role every task of the stack shares.

use serde_json::{json, Value};

use super::{Builder, Cx};
use crate::deploy::naming;
use crate::deploy::resources::role::{self, Role};
use crate::deploy::stack::{Container, Resource};

/// Who may assume a role: a service, and the conditions that keep another account's
/// use of that service from assuming it (the confused deputy).
pub enum Trust {
    /// ECS tasks of this account: `aws:SourceAccount` (ECS Developer Guide, "Amazon
    /// ECS task IAM role" and "task execution IAM role": the trust policy's
    /// conditions), and for a task role `aws:SourceArn` on the account's ECS
    /// resources.
    EcsTasks { task_role: bool },
    /// EventBridge Scheduler, for the schedules of one group of this account
    /// (`aws:SourceAccount`, `aws:SourceArn` of the group: EventBridge Scheduler User
    /// Guide, "Set up the execution role", confused deputy prevention).
    Scheduler { group: String },
    /// EC2 instances (through their instance profile): EC2 passes no source.
    Ec2,
    /// Firehose, for this account's streams: `sts:ExternalId` is the account (Firehose
    /// Developer Guide, "Controlling access with Amazon Data Firehose": the trust
    /// policy of a role for an HTTP endpoint destination).
    Firehose,
    /// CloudWatch Logs of this account and region, putting a subscription filter's
    /// events (CloudWatch Logs User Guide, "Subscription filters with Amazon Data
    /// Firehose": the trust policy's `aws:SourceArn`).
    Logs,
}

/// An IAM role under the stack's path, trusted as `trust` says, with its one inline
/// policy.
pub fn role(cx: &Cx<'_>, name: &str, trust: Trust, statements: Vec<Value>) -> Role {
    let account = cx.t.account.clone();
    let (principal, condition) = match trust {
        Trust::EcsTasks { task_role } => {
            let mut c = json!({ "StringEquals": { "aws:SourceAccount": account } });
            if task_role {
                c["ArnLike"] = json!({ "aws:SourceArn": cx.t.arn("ecs", "*") });
            }
            ("ecs-tasks.amazonaws.com", Some(c))
        }
        Trust::Scheduler { group } => (
            "scheduler.amazonaws.com",
            Some(json!({ "StringEquals": {
                "aws:SourceAccount": account,
                "aws:SourceArn": cx.t.arn("scheduler", &format!("schedule-group/{group}")),
            } })),
        ),
        Trust::Ec2 => ("ec2.amazonaws.com", None),
        Trust::Firehose => (
            "firehose.amazonaws.com",
            Some(json!({ "StringEquals": { "sts:ExternalId": account } })),
        ),
        Trust::Logs => (
            "logs.amazonaws.com",
            Some(json!({ "StringLike": { "aws:SourceArn": cx.t.arn("logs", "*") } })),
        ),
    };
    let mut statement = json!({ "Effect": "Allow", "Principal": { "Service": principal }, "Action": "sts:AssumeRole" });
    if let Some(c) = condition {
        statement["Condition"] = c;
    }
    Role {
        role_name: name.to_owned(),
        path: naming::role_path(cx.name()),
        assume_role_policy_document: json!({
            "Version": "2012-10-17",
            "Statement": [statement]
        }),
        tags: cx.tags_kv(),
        policy_name: (!statements.is_empty()).then(|| role::POLICY_NAME.to_owned()),
        policy_document: (!statements.is_empty())
            .then(|| json!({ "Version": "2012-10-17", "Statement": statements })),
    }
}

/// The task role: only what connectTo and iamRoleStatements ask for, plus what bosun
/// itself calls (metrics, task protection, a singleton's earlier runs).
pub fn task_role(cx: &Cx<'_>, name: &str, res: &Resource, ctr: &Container) -> Role {
    let (stack, t) = (cx.stack, cx.t);
    let mut statements = Vec::new();
    let queues: Vec<String> = ctr
        .connect_to
        .iter()
        .filter(|q| stack.is_queue(q))
        .map(|q| cx.queue_arn(q))
        .collect();
    if !queues.is_empty() {
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
            "Resource": queues,
        }));
    }
    statements.extend(super::bucket::statements(cx, &ctr.connect_to));
    if ctr
        .connect_to
        .iter()
        .any(|c| c == crate::deploy::stack::SES)
    {
        // Sending only, from the account's identities, with its configuration sets and
        // templates: SendEmail (SES v1 and v2) and SendBulkEmail authorize on those
        // three resource types (Service Authorization Reference, "Actions, resources,
        // and condition keys for Amazon SES"); which addresses may send is SES's own
        // verification.
        // SendRawEmail authorizes on no template (the same reference).
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["ses:SendEmail", "ses:SendTemplatedEmail", "ses:SendBulkTemplatedEmail", "ses:SendBulkEmail"],
            "Resource": [
                t.arn("ses", "identity/*"),
                t.arn("ses", "configuration-set/*"),
                t.arn("ses", "template/*"),
            ],
        }));
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["ses:SendRawEmail"],
            "Resource": [
                t.arn("ses", "identity/*"),
                t.arn("ses", "configuration-set/*"),
            ],
        }));
    }
    if let Resource::WorkerService(_) = res {
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": "*",
            "Condition": { "StringEquals": { "cloudwatch:namespace": "Bosun" } }
        }));
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["ecs:DescribeServices"],
            "Resource": t.arn("ecs", &format!("service/{}/{}", stack.cluster, cx.family(name))),
        }));
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"],
            "Resource": t.arn("ecs", &format!("task/{}/*", stack.cluster)),
        }));
    }
    if matches!(res, Resource::ScheduledJob(j) if j.singleton) {
        // bosun --singleton: the family's running tasks in the stack's cluster.
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["ecs:ListTasks"],
            "Resource": "*",
            "Condition": { "ArnEquals": { "ecs:cluster": cx.cluster_arn() } }
        }));
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["ecs:DescribeTasks"],
            "Resource": t.arn("ecs", &format!("task/{}/*", stack.cluster)),
        }));
    }
    if ctr.enable_execute_command {
        // ECS Exec: the SSM agent in the task opens its channels with the task role;
        // these four actions take no resource narrower than `*` (ECS Developer Guide,
        // "Monitor Amazon ECS containers with ECS Exec": IAM permissions required).
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"],
            "Resource": "*",
        }));
    }
    for s in &ctr.iam_role_statements {
        statements.push(json!({ "Effect": s.effect, "Action": s.action, "Resource": s.resource }));
    }
    role(
        cx,
        &naming::task_role(cx.name(), name),
        Trust::EcsTasks { task_role: true },
        statements,
    )
}

/// The execution role every task of the stack shares: pulling its images (ECR's
/// token, and the layers of the stack's own repositories and of the ECR images it
/// names, nothing else), writing its logs, reading the secrets its tasks name.
pub fn execution(cx: &Cx<'_>, b: &mut Builder) {
    let stack = cx.stack;
    let mut statements = Vec::new();
    let mut repos: Vec<String> = stack
        .resources
        .values()
        .filter_map(|r| r.container())
        .filter_map(|c| c.packaging.properties.image.as_deref())
        .filter_map(ecr_repository_arn)
        .collect();
    if stack.registry.is_none() {
        repos.extend(
            stack
                .resources
                .iter()
                .filter(|(n, r)| r.container().is_some_and(|c| cx.t.owns_image(n, c)))
                .map(|(name, _)| {
                    cx.t.arn(
                        "ecr",
                        &format!("repository/{}", naming::ecr_repository(cx.name(), name)),
                    )
                }),
        );
    }
    repos.sort();
    repos.dedup();
    if !repos.is_empty() {
        statements.push(
            json!({ "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*" }),
        );
        statements.push(json!({
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            "Resource": repos,
        }));
    }
    statements.push(json!({
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": cx.t.arn("logs", &format!("log-group:/bosun/{}/*", stack.stack)),
    }));
    let mut secret_arns = std::mem::take(&mut b.secret_arns);
    secret_arns.sort();
    secret_arns.dedup();
    let (params, secrets): (Vec<String>, Vec<String>) =
        secret_arns.into_iter().partition(|a| a.contains(":ssm:"));
    if !secrets.is_empty() {
        statements.push(json!({ "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": secrets }));
    }
    // ECS reads parameters with GetParameters (ECS Developer Guide, "Amazon ECS task
    // execution IAM role": "Systems Manager Parameter Store permissions"). A
    // SecureString under the AWS managed key `aws/ssm` needs no kms:Decrypt of the
    // role; one under a customer key needs a grant of that key, which the file's
    // iamRoleStatements cannot give the execution role: documented.
    if !params.is_empty() {
        statements.push(
            json!({ "Effect": "Allow", "Action": ["ssm:GetParameters"], "Resource": params }),
        );
    }
    b.add(
        role(
            cx,
            &naming::execution_role(cx.name()),
            Trust::EcsTasks { task_role: false },
            statements,
        ),
        &[],
    );
}

/// The repository ARN of an ECR image (`{account}.dkr.ecr.{region}.amazonaws.com/{repo}[:tag|@digest]`).
fn ecr_repository_arn(image: &str) -> Option<String> {
    let (host, rest) = image.split_once('/')?;
    let mut h = host.split('.');
    let (account, dkr, ecr, region) = (h.next()?, h.next()?, h.next()?, h.next()?);
    if dkr != "dkr" || ecr != "ecr" || !account.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let repo = rest.split('@').next()?;
    let repo = match repo.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => repo,
    };
    Some(format!("arn:aws:ecr:{region}:{account}:repository/{repo}"))
}

#[cfg(test)]
mod tests {
    use super::ecr_repository_arn;

    #[test]
    fn ecr_images_name_their_repository() {
        assert_eq!(
            ecr_repository_arn("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1.2")
                .as_deref(),
            Some("arn:aws:ecr:eu-west-1:123456789012:repository/team/app")
        );
        assert_eq!(
            ecr_repository_arn("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app@sha256:ab")
                .as_deref(),
            Some("arn:aws:ecr:eu-west-1:123456789012:repository/app")
        );
        assert_eq!(ecr_repository_arn("repo/app:1.2"), None);
        assert_eq!(ecr_repository_arn("ghcr.io/o/app:1"), None);
    }
}
