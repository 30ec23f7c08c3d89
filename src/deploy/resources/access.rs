//! What IAM must allow for each kind's calls: the actions beside the ARNs of the
//! stack's own resources of that kind, from which `bosun-deploy policy` writes the
//! least a deploying identity needs. A kind is listed here once; a test reads every
//! resource file's SDK calls and finds each one's action in its kind's grants, and
//! renders a stack of every type and finds each name inside its kind's `names`.
//!
//! Two uses: what any run reads, lists and deletes ([`When::Always`]: apply and
//! delete list every kind, since a resource the file dropped is still the stack's),
//! and what only a file that has the kind creates and changes ([`When::Making`]).
//!
//! Actions and the resource types they are authorized on: Service Authorization
//! Reference, "Actions, resources, and condition keys for AWS services"
//! (https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
//! An action authorized on no resource type is granted on "*" (the reference: "you
//! must specify all resources (*) in the Resource element").

use std::borrow::Cow;

use crate::deploy::naming::{self, Where};

/// Whether a grant serves every run or only a file that has the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    Making,
}

/// One condition of a grant: `{test: {key: values}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub test: &'static str,
    pub key: String,
    pub values: Vec<String>,
}

/// Actions on resources, under at most one condition.
#[derive(Debug, Clone)]
pub struct Grant {
    pub actions: Cow<'static, [&'static str]>,
    pub on: Vec<String>,
    pub when: When,
    pub condition: Option<Condition>,
}

/// A kind's grants and what its resources are called (a glob: `*` any run of
/// characters), so a test can hold every name the stack renders against it.
#[derive(Debug, Clone)]
pub struct Access {
    pub names: Vec<String>,
    pub grants: Vec<Grant>,
}

/// The stack a policy is for.
pub struct Scope<'a> {
    pub at: &'a Where,
    pub stack: &'a str,
    pub cluster: &'a str,
}

impl Scope<'_> {
    fn arn(&self, service: &str, rest: &str) -> String {
        self.at.arn(service, rest)
    }

    /// `{stack}-*`: most of the stack's names.
    fn prefixed(&self) -> String {
        format!("{}-*", self.stack)
    }

    fn roles(&self) -> String {
        self.at.role_arn(self.stack, "*")
    }

    /// Only what carries the stack's tag: deletes, whose targets were found by that tag
    /// (Service Authorization Reference: `aws:ResourceTag/${TagKey}`, on the actions
    /// that list it).
    pub fn tagged(&self) -> Condition {
        Condition {
            test: "StringEquals",
            key: format!("aws:ResourceTag/{}", naming::STACK_TAG),
            values: vec![self.stack.to_owned()],
        }
    }
}

fn grant(when: When, actions: &'static [&'static str], on: &[String]) -> Grant {
    Grant {
        actions: Cow::Borrowed(actions),
        on: on.to_vec(),
        when,
        condition: None,
    }
}

fn always(actions: &'static [&'static str], on: &[String]) -> Grant {
    grant(When::Always, actions, on)
}

fn making(actions: &'static [&'static str], on: &[String]) -> Grant {
    grant(When::Making, actions, on)
}

fn star() -> [String; 1] {
    ["*".to_owned()]
}

impl Grant {
    fn only(mut self, condition: Condition) -> Grant {
        self.condition = Some(condition);
        self
    }
}

/// `iam:PassRole` of `roles` to `service` alone (IAM User Guide, "Granting a user
/// permissions to pass a role to an AWS service": the `iam:PassedToService` key).
pub fn pass_role(when: When, roles: Vec<String>, service: &str) -> Grant {
    Grant {
        actions: Cow::Borrowed(&["iam:PassRole"]),
        on: roles,
        when,
        condition: Some(Condition {
            test: "StringEquals",
            key: "iam:PassedToService".into(),
            values: vec![service.to_owned()],
        }),
    }
}

/// The grants of one kind (by [`super::KINDS`] name); `None` for a name no kind has.
pub fn of(kind: &str, s: &Scope) -> Option<Access> {
    let p = s.prefixed();
    let one = |v: String| vec![v];
    let access = match kind {
        "ECS cluster" | "ECS cluster capacity providers" => {
            let cluster = s.at.cluster_arn(s.cluster);
            let c = [cluster.clone()];
            Access {
                names: one(s.cluster.to_owned()),
                grants: vec![
                    // Whether other stacks' work runs there: their services and tasks.
                    always(&["ecs:DescribeClusters"], &c),
                    always(&["ecs:ListServices"], &star()),
                    always(
                        &["ecs:DescribeServices"],
                        &[s.arn("ecs", &format!("service/{}/*", s.cluster))],
                    ),
                    always(
                        &["ecs:DescribeTasks"],
                        &[s.arn("ecs", &format!("task/{}/*", s.cluster))],
                    ),
                    // ListTasks is authorized on container instances, which a Fargate
                    // task has none of: on "*", for the one cluster (ecs:cluster).
                    always(&["ecs:ListTasks"], &star()).only(Condition {
                        test: "ArnEquals",
                        key: "ecs:cluster".into(),
                        values: vec![cluster.clone()],
                    }),
                    always(&["ecs:DeleteCluster"], &c).only(s.tagged()),
                    making(
                        &[
                            "ecs:CreateCluster",
                            "ecs:UpdateCluster",
                            "ecs:TagResource",
                            "ecs:UntagResource",
                            "ecs:PutClusterCapacityProviders",
                        ],
                        &c,
                    ),
                ],
            }
        }
        "security group" => Access {
            names: one(naming::security_group(s.stack)),
            grants: vec![
                always(&["ec2:DescribeSecurityGroups"], &star()),
                always(
                    &["ec2:DeleteSecurityGroup"],
                    &[s.arn("ec2", "security-group/*")],
                )
                .only(s.tagged()),
                making(
                    &["ec2:CreateSecurityGroup"],
                    &[s.arn("ec2", "security-group/*"), s.arn("ec2", "vpc/*")],
                ),
                making(&["ec2:CreateTags"], &[s.arn("ec2", "security-group/*")]),
            ],
        },
        "security group rule" => {
            let on = [
                s.arn("ec2", "security-group/*"),
                s.arn("ec2", "security-group-rule/*"),
            ];
            Access {
                names: one(format!("{} *", naming::security_group(s.stack))),
                grants: vec![
                    always(&["ec2:DescribeSecurityGroupRules"], &star()),
                    always(&["ec2:RevokeSecurityGroupIngress"], &on[..1]).only(s.tagged()),
                    making(&["ec2:AuthorizeSecurityGroupIngress"], &on),
                    making(&["ec2:CreateTags"], &[on[1].clone()]),
                ],
            }
        }
        "private DNS namespace" => {
            let ns = [s.arn("servicediscovery", "namespace/*")];
            Access {
                names: one(naming::namespace(s.stack)),
                grants: vec![
                    always(
                        &[
                            "servicediscovery:ListNamespaces",
                            "servicediscovery:GetOperation",
                        ],
                        &star(),
                    ),
                    always(&["servicediscovery:DeleteNamespace"], &ns),
                    // Cloud Map's tag actions take no resource type.
                    always(&["servicediscovery:ListTagsForResource"], &star()),
                    making(&["servicediscovery:TagResource"], &star()),
                    // What Cloud Map calls for CreatePrivateDnsNamespace: its API
                    // permissions reference
                    // (https://docs.aws.amazon.com/cloud-map/latest/dg/cloud-map-api-permissions-ref.html).
                    making(
                        &[
                            "servicediscovery:CreatePrivateDnsNamespace",
                            "route53:CreateHostedZone",
                            "route53:ListHostedZonesByName",
                            "ec2:DescribeVpcs",
                            "ec2:DescribeRegions",
                        ],
                        &star(),
                    ),
                    making(
                        &["route53:GetHostedZone"],
                        &["arn:aws:route53:::hostedzone/*".into()],
                    ),
                ],
            }
        }
        "Cloud Map service" => {
            let svc = [s.arn("servicediscovery", "service/*")];
            Access {
                names: one("*".into()),
                grants: vec![
                    always(&["servicediscovery:ListServices"], &star()),
                    always(
                        &[
                            "servicediscovery:GetService",
                            "servicediscovery:DeleteService",
                        ],
                        &svc,
                    ),
                    always(&["servicediscovery:ListTagsForResource"], &star()),
                    making(
                        &["servicediscovery:CreateService"],
                        &[s.arn("servicediscovery", "namespace/*"), svc[0].clone()],
                    ),
                    making(&["servicediscovery:TagResource"], &star()),
                ],
            }
        }
        "IAM role" => {
            let r = [s.roles()];
            Access {
                names: one(p.clone()),
                grants: vec![
                    always(&["iam:ListRoles"], &star()),
                    always(
                        &[
                            "iam:GetRole",
                            "iam:ListRolePolicies",
                            "iam:GetRolePolicy",
                            "iam:DeleteRolePolicy",
                            "iam:DeleteRole",
                        ],
                        &r,
                    ),
                    making(
                        &[
                            "iam:CreateRole",
                            "iam:TagRole",
                            "iam:PutRolePolicy",
                            "iam:UpdateAssumeRolePolicy",
                        ],
                        &r,
                    ),
                ],
            }
        }
        "IAM instance profile" => {
            let ip = [format!(
                "arn:aws:iam::{}:instance-profile{}*",
                s.at.account,
                naming::role_path(s.stack)
            )];
            Access {
                names: one(p.clone()),
                grants: vec![
                    always(&["iam:ListInstanceProfiles"], &star()),
                    always(
                        &[
                            "iam:GetInstanceProfile",
                            "iam:RemoveRoleFromInstanceProfile",
                            "iam:DeleteInstanceProfile",
                        ],
                        &ip,
                    ),
                    making(
                        &[
                            "iam:CreateInstanceProfile",
                            "iam:TagInstanceProfile",
                            "iam:AddRoleToInstanceProfile",
                        ],
                        &ip,
                    ),
                ],
            }
        }
        "EC2 launch template" => {
            let lt = [s.arn("ec2", "launch-template/*")];
            Access {
                names: one(p.clone()),
                grants: vec![
                    always(
                        &[
                            "ec2:DescribeLaunchTemplates",
                            "ec2:DescribeLaunchTemplateVersions",
                        ],
                        &star(),
                    ),
                    always(&["ec2:DeleteLaunchTemplate"], &lt).only(s.tagged()),
                    making(
                        &[
                            "ec2:CreateLaunchTemplate",
                            "ec2:CreateLaunchTemplateVersion",
                            "ec2:ModifyLaunchTemplate",
                            "ec2:CreateTags",
                        ],
                        &lt,
                    ),
                    // The image is `resolve:ssm:` of AWS's public ECS-optimized AMI
                    // parameter (EC2 User Guide, "Use a Systems Manager parameter
                    // instead of an AMI ID": the caller needs ssm:GetParameters).
                    making(
                        &["ssm:GetParameters"],
                        &[format!(
                            "arn:aws:ssm:{}:*:parameter/aws/service/ecs/*",
                            s.at.region
                        )],
                    ),
                ],
            }
        }
        "Auto Scaling group" => {
            let g = [format!(
                "arn:aws:autoscaling:{}:{}:autoScalingGroup:*:autoScalingGroupName/{p}",
                s.at.region, s.at.account
            )];
            Access {
                names: one(p.clone()),
                grants: vec![
                    always(
                        &[
                            "autoscaling:DescribeAutoScalingGroups",
                            "autoscaling:DescribeWarmPool",
                        ],
                        &star(),
                    ),
                    always(
                        &[
                            "autoscaling:DeleteAutoScalingGroup",
                            "autoscaling:DeleteWarmPool",
                        ],
                        &g,
                    )
                    .only(s.tagged()),
                    making(
                        &[
                            "autoscaling:CreateAutoScalingGroup",
                            "autoscaling:UpdateAutoScalingGroup",
                            "autoscaling:CreateOrUpdateTags",
                            "autoscaling:PutWarmPool",
                        ],
                        &g,
                    ),
                    // A group launched from a launch template: the caller must be
                    // allowed to launch from it (Amazon EC2 Auto Scaling User Guide,
                    // "Permissions to use launch templates": ec2:RunInstances).
                    making(
                        &["ec2:RunInstances"],
                        &[
                            s.arn("ec2", "launch-template/*"),
                            format!("arn:aws:ec2:{}::image/*", s.at.region),
                            s.arn("ec2", "instance/*"),
                            s.arn("ec2", "network-interface/*"),
                            s.arn("ec2", "security-group/*"),
                            s.arn("ec2", "subnet/*"),
                            s.arn("ec2", "volume/*"),
                        ],
                    ),
                ],
            }
        }
        "ECS capacity provider" => {
            let cp = [s.arn("ecs", &format!("capacity-provider/{p}"))];
            Access {
                names: one(p.clone()),
                grants: vec![
                    always(
                        &["ecs:DescribeCapacityProviders"],
                        &[s.arn("ecs", "capacity-provider/*")],
                    ),
                    always(&["ecs:DeleteCapacityProvider"], &cp).only(s.tagged()),
                    // A provider in use is found through the clusters.
                    always(&["ecs:DescribeClusters"], &[s.at.cluster_arn(s.cluster)]),
                    making(&["ecs:CreateCapacityProvider"], &star()),
                    making(&["ecs:UpdateCapacityProvider", "ecs:TagResource"], &cp),
                ],
            }
        }
        "log group" | "metric filter" | "subscription filter" => {
            let lg = [s.arn(
                "logs",
                &format!("log-group:{}", naming::log_group(s.stack, "*")),
            )];
            let (names, always_a, making_a): (_, &'static [&'static str], &'static [&'static str]) =
                match kind {
                    "log group" => (
                        naming::log_group(s.stack, "*"),
                        &["logs:ListTagsForResource", "logs:DeleteLogGroup"],
                        &[
                            "logs:CreateLogGroup",
                            "logs:PutRetentionPolicy",
                            "logs:TagResource",
                        ],
                    ),
                    "metric filter" => (
                        p.clone(),
                        &["logs:DescribeMetricFilters", "logs:DeleteMetricFilter"],
                        &["logs:PutMetricFilter"],
                    ),
                    _ => (
                        "*".into(),
                        &[
                            "logs:DescribeSubscriptionFilters",
                            "logs:DeleteSubscriptionFilter",
                        ],
                        &["logs:PutSubscriptionFilter"],
                    ),
                };
            let mut grants = vec![always(always_a, &lg), making(making_a, &lg)];
            if kind == "log group" {
                grants.push(always(&["logs:DescribeLogGroups"], &star()));
            }
            Access {
                names: one(names),
                grants,
            }
        }
        "queue" => {
            let q = [s.arn("sqs", &p)];
            Access {
                names: one(p.clone()),
                grants: vec![
                    always(&["sqs:ListQueues"], &star()),
                    always(
                        &[
                            "sqs:GetQueueUrl",
                            "sqs:GetQueueAttributes",
                            "sqs:ListQueueTags",
                            "sqs:DeleteQueue",
                        ],
                        &q,
                    ),
                    making(
                        &["sqs:CreateQueue", "sqs:SetQueueAttributes", "sqs:TagQueue"],
                        &q,
                    ),
                ],
            }
        }
        "ECR repository" => {
            let lower = p.to_ascii_lowercase();
            let repo = [s.arn("ecr", &format!("repository/{lower}"))];
            Access {
                names: one(lower),
                grants: vec![
                    always(
                        &[
                            "ecr:DescribeRepositories",
                            "ecr:ListTagsForResource",
                            "ecr:GetLifecyclePolicy",
                            "ecr:DeleteRepository",
                        ],
                        &repo,
                    ),
                    making(
                        &[
                            "ecr:CreateRepository",
                            "ecr:PutImageScanningConfiguration",
                            "ecr:PutImageTagMutability",
                            "ecr:PutLifecyclePolicy",
                            "ecr:TagResource",
                            // Pushing the built images (Amazon ECR User Guide, "Pushing
                            // an image": the layer and image actions).
                            "ecr:BatchCheckLayerAvailability",
                            "ecr:InitiateLayerUpload",
                            "ecr:UploadLayerPart",
                            "ecr:CompleteLayerUpload",
                            "ecr:PutImage",
                            "ecr:BatchGetImage",
                            "ecr:GetDownloadUrlForLayer",
                        ],
                        &repo,
                    ),
                    making(&["ecr:GetAuthorizationToken"], &star()),
                ],
            }
        }
        "task definition" => Access {
            names: one(p.clone()),
            grants: vec![
                always(
                    &[
                        "ecs:ListTaskDefinitionFamilies",
                        "ecs:ListTaskDefinitions",
                        "ecs:DescribeTaskDefinition",
                        "ecs:DeregisterTaskDefinition",
                    ],
                    &star(),
                ),
                // Tags given at registration need ecs:TagResource too (Amazon ECS
                // Developer Guide, "Grant permission to tag resources on creation").
                making(
                    &["ecs:RegisterTaskDefinition", "ecs:TagResource"],
                    &[s.arn("ecs", &format!("task-definition/{p}:*"))],
                ),
            ],
        },
        "ECS service" => {
            let svc = [s.arn("ecs", &format!("service/{}/{p}", s.cluster))];
            Access {
                names: one(p.clone()),
                grants: vec![
                    always(&["ecs:ListServices"], &star()),
                    always(&["ecs:DescribeServices"], &svc),
                    always(&["ecs:DeleteService"], &svc).only(s.tagged()),
                    making(
                        &["ecs:CreateService", "ecs:UpdateService", "ecs:TagResource"],
                        &svc,
                    ),
                ],
            }
        }
        "scalable target" | "scaling policy" => {
            // Application Auto Scaling's targets and policies are authorized on their
            // ARNs (`scalable-target/ID`): the ID is AWS's, so every target.
            let t = [s.arn("application-autoscaling", "scalable-target/*")];
            let (always_a, making_a): (&'static [&'static str], &'static [&'static str]) =
                if kind == "scalable target" {
                    (
                        &["application-autoscaling:DeregisterScalableTarget"],
                        &[
                            "application-autoscaling:RegisterScalableTarget",
                            "application-autoscaling:TagResource",
                        ],
                    )
                } else {
                    (
                        &["application-autoscaling:DeleteScalingPolicy"],
                        &["application-autoscaling:PutScalingPolicy"],
                    )
                };
            let names = if kind == "scalable target" {
                format!("service/{}/{p}", s.cluster)
            } else {
                p.clone()
            };
            Access {
                names: one(names),
                grants: vec![
                    always(
                        &[
                            "application-autoscaling:DescribeScalableTargets",
                            "application-autoscaling:DescribeScalingPolicies",
                        ],
                        &star(),
                    ),
                    always(always_a, &t),
                    making(making_a, &t),
                ],
            }
        }
        "schedule group" => {
            let g = [s.arn(
                "scheduler",
                &format!("schedule-group/{}", naming::schedule_group(s.stack)),
            )];
            Access {
                names: one(naming::schedule_group(s.stack)),
                grants: vec![
                    always(
                        &[
                            "scheduler:GetScheduleGroup",
                            "scheduler:ListTagsForResource",
                            "scheduler:DeleteScheduleGroup",
                        ],
                        &g,
                    ),
                    making(
                        &["scheduler:CreateScheduleGroup", "scheduler:TagResource"],
                        &g,
                    ),
                ],
            }
        }
        "schedule" => {
            let sch = [s.arn(
                "scheduler",
                &format!("schedule/{}/*", naming::schedule_group(s.stack)),
            )];
            Access {
                names: one("*".into()),
                grants: vec![
                    always(&["scheduler:ListSchedules"], &star()),
                    always(&["scheduler:GetSchedule", "scheduler:DeleteSchedule"], &sch),
                    making(
                        &["scheduler:CreateSchedule", "scheduler:UpdateSchedule"],
                        &sch,
                    ),
                ],
            }
        }
        "alarm" | "deployment alarm" => {
            let a = [s.arn("cloudwatch", &format!("alarm:{p}"))];
            Access {
                names: one(p.clone()),
                grants: vec![
                    always(
                        &["cloudwatch:DescribeAlarms"],
                        &[s.arn("cloudwatch", "alarm:*")],
                    ),
                    always(
                        &["cloudwatch:ListTagsForResource", "cloudwatch:DeleteAlarms"],
                        &a,
                    ),
                    making(&["cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"], &a),
                    // An alarm acting on a scaling policy is read back with it.
                    always(
                        &["application-autoscaling:DescribeScalingPolicies"],
                        &star(),
                    ),
                ],
            }
        }
        "dashboard" => {
            let d = [format!(
                "arn:aws:cloudwatch::{}:dashboard/{p}",
                s.at.account
            )];
            Access {
                names: one(p.clone()),
                grants: vec![
                    always(&["cloudwatch:ListDashboards"], &star()),
                    always(
                        &["cloudwatch:GetDashboard", "cloudwatch:DeleteDashboards"],
                        &d,
                    ),
                    making(&["cloudwatch:PutDashboard"], &d),
                ],
            }
        }
        "alert topic" => {
            let t = [s.arn("sns", &p)];
            Access {
                names: one(p.clone()),
                grants: vec![
                    always(&["sns:ListTopics", "sns:Unsubscribe"], &star()),
                    always(
                        &[
                            "sns:GetTopicAttributes",
                            "sns:ListSubscriptionsByTopic",
                            "sns:ListTagsForResource",
                            "sns:DeleteTopic",
                        ],
                        &t,
                    ),
                    making(&["sns:CreateTopic", "sns:Subscribe", "sns:TagResource"], &t),
                ],
            }
        }
        "bucket" => {
            let lower = p.to_ascii_lowercase();
            let b = [format!("arn:aws:s3:::{lower}")];
            let objects = [format!("arn:aws:s3:::{lower}/*")];
            Access {
                names: one(lower),
                grants: vec![
                    always(&["s3:ListAllMyBuckets"], &star()),
                    // HeadBucket is s3:ListBucket; ListObjectVersions is
                    // s3:ListBucketVersions; DeleteBucketLifecycle is
                    // s3:PutLifecycleConfiguration (Amazon S3 API Reference, each
                    // operation's "Permissions").
                    always(
                        &[
                            "s3:ListBucket",
                            "s3:GetBucketTagging",
                            "s3:GetBucketVersioning",
                            "s3:GetEncryptionConfiguration",
                            "s3:GetLifecycleConfiguration",
                            "s3:GetBucketPublicAccessBlock",
                            "s3:ListBucketVersions",
                            "s3:DeleteBucket",
                        ],
                        &b,
                    ),
                    always(&["s3:DeleteObject", "s3:DeleteObjectVersion"], &objects),
                    making(
                        &[
                            "s3:CreateBucket",
                            "s3:PutBucketTagging",
                            "s3:PutBucketVersioning",
                            "s3:PutEncryptionConfiguration",
                            "s3:PutLifecycleConfiguration",
                            "s3:PutBucketPublicAccessBlock",
                        ],
                        &b,
                    ),
                ],
            }
        }
        "Firehose stream" => {
            let f = [s.arn("firehose", &format!("deliverystream/{p}"))];
            Access {
                names: one(p.clone()),
                grants: vec![
                    always(&["firehose:ListDeliveryStreams"], &star()),
                    always(
                        &[
                            "firehose:DescribeDeliveryStream",
                            "firehose:ListTagsForDeliveryStream",
                            "firehose:DeleteDeliveryStream",
                        ],
                        &f,
                    ),
                    making(
                        &[
                            "firehose:CreateDeliveryStream",
                            "firehose:UpdateDestination",
                            "firehose:TagDeliveryStream",
                        ],
                        &f,
                    ),
                ],
            }
        }
        _ => return None,
    };
    Some(access)
}
