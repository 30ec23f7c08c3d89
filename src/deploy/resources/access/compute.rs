//! The grants of the kinds that run the tasks: the cluster, its network, Cloud Map,
//! roles, EC2 capacity, task definitions, services and their scaling.

use super::*;

pub(super) fn of(kind: &str, s: &Scope) -> Option<Access> {
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
        _ => return None,
    };
    Some(access)
}
