//! The grants of the kinds that hold, log, schedule and watch: log groups and their
//! filters, queues, repositories, schedules, alarms, dashboards, topics, buckets,
//! Firehose streams.

use super::*;

pub(super) fn of(kind: &str, s: &Scope) -> Option<Access> {
    let p = s.prefixed();
    let one = |v: String| vec![v];
    let access = match kind {
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
