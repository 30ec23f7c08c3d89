//! EC2 capacity of a worker or job with `resources.instanceTypes`: the instances'
//! role and instance profile, a launch template, an Auto Scaling group, the capacity
//! provider over it, and the stack's providers on its cluster.

use serde_json::json;

use super::{roles, Builder, Cx, Dep};
use crate::deploy::engine::Kind;
use crate::deploy::naming;
use crate::deploy::resources::{
    auto_scaling_group as asg, capacity_provider, cluster, instance_profile, launch_template,
    schedule,
};
use crate::deploy::stack::{instance_types, Container};

/// The stack's capacity providers on its cluster, beside Fargate's (when any resource
/// runs on EC2).
pub fn on_cluster(cx: &Cx<'_>, b: &mut Builder, cluster: &Dep) {
    if b.preflight.ec2_resources.is_empty() {
        return;
    }
    let mut providers: Vec<String> = cluster::FARGATE_PROVIDERS.map(String::from).to_vec();
    providers.extend(b.preflight.ec2_resources.iter().map(|n| cx.family(n)));
    providers.sort();
    let mut deps: Vec<Dep> = vec![cluster.clone()];
    deps.extend(
        b.preflight
            .ec2_resources
            .iter()
            .map(|n| (capacity_provider::CapacityProvider::KIND, cx.family(n))),
    );
    b.add(
        cluster::ClusterCapacityProviders {
            cluster: cx.stack.cluster.clone(),
            capacity_providers: providers,
        },
        &deps,
    );
    b.preflight.ami_parameters.sort();
    b.preflight.ami_parameters.dedup();
}

/// The public SSM parameter of the ECS-optimized Amazon Linux 2023 AMI.
pub fn ami_parameter(architecture: Option<&str>) -> String {
    let arch = if architecture == Some("arm64") {
        "arm64/"
    } else {
        ""
    };
    format!("/aws/service/ecs/optimized-ami/amazon-linux-2023/{arch}recommended/image_id")
}

/// The instances' user data: join the cluster, keep memory for the OS and the agent,
/// keep tasks from the instance's own credentials, and (with a warm pool) wait for
/// the instance to leave the pool before registering.
fn user_data(cluster: &str, warm_pool: bool) -> String {
    let mut config = format!(
        "ECS_CLUSTER={}\nECS_RESERVED_MEMORY={}\nECS_AWSVPC_BLOCK_IMDS=true\n",
        cluster,
        instance_types::ECS_RESERVED_MEMORY
    );
    if warm_pool {
        config.push_str("ECS_WARM_POOLS_CHECK=true\n");
    }
    let script = format!("#!/bin/bash\ncat >> /etc/ecs/ecs.config <<'EOF'\n{config}EOF\n");
    aws_smithy_types::base64::encode(script)
}

/// The EC2 capacity of a resource with `instanceTypes`: the instances' role and
/// instance profile, a launch template, an Auto Scaling group and the capacity
/// provider over it. Returns what its service or schedule depends on (its capacity
/// provider, and the cluster's providers).
pub fn add(
    cx: &Cx<'_>,
    b: &mut Builder,
    name: &str,
    ctr: &Container,
    types: &[String],
    most: i64,
    cluster: &[Dep],
) -> Vec<Dep> {
    b.preflight.ec2_resources.push(name.to_owned());
    b.preflight
        .ami_parameters
        .push(ami_parameter(ctr.resources.architecture.as_deref()));
    let (stack, t) = (cx.stack, cx.t);
    let base = cx.family(name);
    let instance_name = naming::instance_role(cx.name(), name);
    // The ECS agent's calls, on the stack's cluster only, and the awslogs driver's
    // (on EC2 the instance writes the task's logs).
    let cluster_arn = t.arn("ecs", &format!("cluster/{}", stack.cluster));
    let instances_arn = t.arn("ecs", &format!("container-instance/{}/*", stack.cluster));
    let statements = vec![
        json!({ "Effect": "Allow", "Action": ["ecs:RegisterContainerInstance", "ecs:DeregisterContainerInstance", "ecs:SubmitContainerStateChange", "ecs:SubmitTaskStateChange", "ecs:SubmitAttachmentStateChanges"], "Resource": cluster_arn }),
        json!({ "Effect": "Allow", "Action": ["ecs:Poll", "ecs:StartTelemetrySession", "ecs:UpdateContainerInstancesState"], "Resource": instances_arn }),
        json!({ "Effect": "Allow", "Action": ["ecs:DiscoverPollEndpoint"], "Resource": "*" }),
        json!({ "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": t.arn("logs", &format!("log-group:{}:*", cx.log_group(name))) }),
    ];
    let instance_role = b.add(
        roles::role(cx, &instance_name, roles::Trust::Ec2, statements),
        &[],
    );
    let profile = b.add(
        instance_profile::InstanceProfile {
            instance_profile_name: instance_name.clone(),
            path: naming::role_path(cx.name()),
            role_name: instance_name.clone(),
            tags: cx.tags_kv(),
        },
        &[instance_role],
    );
    let warm_pool = ctr.resources.enable_warm_pool == Some(true);
    let (subnets, security_groups, assign_public_ip) = cx.awsvpc();
    let template = b.add(
        launch_template::LaunchTemplate {
            launch_template_name: base.clone(),
            launch_template_data: launch_template::Data {
                image_id: format!(
                    "resolve:ssm:{}",
                    ami_parameter(ctr.resources.architecture.as_deref())
                ),
                instance_type: (types.len() == 1).then(|| types[0].clone()),
                iam_instance_profile: launch_template::Profile {
                    arn: instance_profile::arn(
                        &t.account,
                        &naming::role_path(cx.name()),
                        &instance_name,
                    ),
                },
                user_data: user_data(&stack.cluster, warm_pool),
                network_interfaces: vec![launch_template::Nic {
                    device_index: 0,
                    associate_public_ip_address: assign_public_ip == "ENABLED",
                    groups: security_groups,
                }],
                metadata_options: launch_template::Metadata {
                    http_tokens: "required".into(),
                    http_endpoint: "enabled".into(),
                },
            },
            tags: cx.tags_kv(),
        },
        &[vec![profile], cluster.to_vec()].concat(),
    );
    let template_ref = asg::TemplateRef {
        launch_template_name: base.clone(),
        version: "$Latest".into(),
    };
    let (launch_template, mixed_instances_policy) = if types.len() == 1 {
        (Some(template_ref), None)
    } else {
        (
            None,
            Some(asg::Mixed {
                launch_template: asg::MixedTemplate {
                    launch_template_specification: template_ref,
                    overrides: types
                        .iter()
                        .map(|t| asg::Override {
                            instance_type: t.clone(),
                        })
                        .collect(),
                },
                instances_distribution: asg::Distribution {
                    on_demand_allocation_strategy: "prioritized".into(),
                    on_demand_percentage_above_base_capacity: 100,
                },
            }),
        )
    };
    let mut subnets = subnets;
    subnets.sort();
    let mut group_tags: Vec<asg::GroupTag> = cx
        .tag_pairs()
        .into_iter()
        .chain([("Name".to_owned(), base.clone())])
        .map(|(key, value)| asg::GroupTag {
            key,
            value,
            propagate_at_launch: true,
        })
        .collect();
    group_tags.sort();
    let group = b.add(
        asg::AutoScalingGroup {
            auto_scaling_group_name: base.clone(),
            min_size: 0,
            // Room for a deployment: at 100 %/200 % ECS starts the new tasks before it
            // stops the old ones, and with a task filling an instance each new one
            // needs an instance of its own (ECS Developer Guide, "Deploy Amazon ECS
            // services by replacing tasks"; managed scaling launches what the
            // provider needs only up to the group's MaxSize). The weekly refresh's
            // launch-before-terminate needs the same room.
            max_size: (2 * most.max(1)) as i32,
            launch_template,
            mixed_instances_policy,
            vpc_zone_identifier: subnets.join(","),
            max_instance_lifetime: asg::MAX_INSTANCE_LIFETIME,
            new_instances_protected_from_scale_in: true,
            tags: group_tags,
            warm_pool: warm_pool.then(|| asg::WarmPool {
                pool_state: "Stopped".into(),
                min_size: 0,
                instance_reuse_policy: None,
            }),
        },
        &[template],
    );
    let provider = b.add(
        capacity_provider::CapacityProvider {
            name: base.clone(),
            auto_scaling_group_provider: capacity_provider::GroupProvider {
                auto_scaling_group_arn: capacity_provider::group_arn_pattern(
                    &t.region, &t.account, &base,
                ),
                managed_scaling: capacity_provider::ManagedScaling {
                    status: "ENABLED".into(),
                    target_capacity: 100,
                    minimum_scaling_step_size: 1,
                    maximum_scaling_step_size: 10,
                    instance_warmup_period: 300,
                },
                managed_termination_protection: "ENABLED".into(),
                managed_draining: "ENABLED".into(),
            },
            tags: cx.tags_ecs(),
        },
        &[group],
    );
    vec![
        provider,
        (
            cluster::ClusterCapacityProviders::KIND,
            cx.stack.cluster.clone(),
        ),
    ]
}

/// How often the stack's instances are replaced: weekly, so every instance runs an
/// ECS-optimized AMI of at most a week ago (the launch template reads the AMI of the
/// day at every launch).
pub const REFRESH_EVERY: &str = "rate(7 days)";

/// A weekly instance refresh of each EC2 capacity: an EventBridge Scheduler schedule
/// that calls Auto Scaling's StartInstanceRefresh (a universal target), with the role
/// it needs. The group's instances are protected from scale in (ECS managed
/// termination protection needs it), and a protected instance is never replaced by
/// maximum instance lifetime (EC2 Auto Scaling User Guide, "Replace Auto Scaling
/// instances based on maximum instance lifetime"): an instance that always runs a task
/// would never be refreshed. The refresh replaces protected instances too
/// (`ScaleInProtectedInstances: Refresh`), launching each replacement before the old
/// one goes (`MinHealthyPercentage` 100, `MaxHealthyPercentage` 200), and ECS managed
/// draining moves an old instance's tasks to the new ones before it terminates (Amazon
/// ECS Developer Guide, "Safely manage Amazon ECS capacity provider instances", managed
/// instance draining).
pub fn refreshes(cx: &Cx<'_>, b: &mut Builder) {
    let names = b.preflight.ec2_resources.clone();
    if names.is_empty() {
        return;
    }
    let (stack, t) = (cx.stack, cx.t);
    let group_arn = |name: &str| {
        t.arn(
            "autoscaling",
            &format!(
                "autoScalingGroup:*:autoScalingGroupName/{}",
                cx.family(name)
            ),
        )
    };
    let role_name = naming::refresh_role(&stack.stack);
    let statements = vec![json!({
        "Effect": "Allow",
        "Action": ["autoscaling:StartInstanceRefresh"],
        "Resource": names.iter().map(|n| group_arn(n)).collect::<Vec<_>>(),
    })];
    let role = b.add(
        roles::role(
            cx,
            &role_name,
            roles::Trust::Scheduler {
                group: naming::schedule_group(&stack.stack),
            },
            statements,
        ),
        &[],
    );
    let group = super::scheduled_job::group(cx, b);
    for name in &names {
        let asg_name = cx.family(name);
        let input = json!({
            "AutoScalingGroupName": asg_name,
            "Strategy": "Rolling",
            "Preferences": {
                "MinHealthyPercentage": 100,
                "MaxHealthyPercentage": 200,
                "InstanceWarmup": 300,
                "SkipMatching": false,
                "ScaleInProtectedInstances": "Refresh",
                "StandbyInstances": "Terminate"
            }
        });
        b.add(
            schedule::Schedule {
                name: naming::refresh_schedule(&stack.stack, name),
                group_name: naming::schedule_group(&stack.stack),
                schedule_expression: REFRESH_EVERY.into(),
                schedule_expression_timezone: "UTC".into(),
                flexible_time_window: schedule::FlexibleTimeWindow {
                    mode: "FLEXIBLE".into(),
                    maximum_window_in_minutes: Some(60),
                },
                state: "ENABLED".into(),
                start_date: None,
                end_date: None,
                target: schedule::Target {
                    arn: "arn:aws:scheduler:::aws-sdk:autoscaling:startInstanceRefresh".into(),
                    role_arn: cx.role_arn(&role_name),
                    retry_policy: schedule::RetryPolicy {
                        maximum_event_age_in_seconds: 3600,
                        maximum_retry_attempts: 3,
                    },
                    ecs_parameters: None,
                    input: Some(input.to_string()),
                    dead_letter_config: None,
                },
            },
            &[
                group.clone(),
                role.clone(),
                (asg::AutoScalingGroup::KIND, asg_name),
            ],
        );
    }
}
