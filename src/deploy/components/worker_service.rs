//! A worker service: the ECS service (Fargate, Fargate Spot or its EC2 capacity), its
//! scalable target and one target-tracking policy per metric, and its dashboard.

use serde_json::{json, Value};

use super::{scale_to_zero, Builder, Cx, Dep};
use crate::deploy::naming;
use crate::deploy::resources::{alarm, dashboard, deployment_alarm, scaling, service};
use crate::deploy::stack::Service;

/// A spot service's capacity provider strategy: its `onDemandBase` tasks on Fargate,
/// every other on Fargate Spot.
pub fn spot_strategy(s: &Service) -> Vec<service::StrategyItem> {
    let spot = service::StrategyItem {
        capacity_provider: "FARGATE_SPOT".into(),
        weight: 1,
        base: None,
    };
    match s.on_demand_base.filter(|b| *b > 0) {
        None => vec![spot],
        Some(base) => vec![
            service::StrategyItem {
                capacity_provider: "FARGATE".into(),
                weight: 0,
                base: Some(base as i32),
            },
            spot,
        ],
    }
}

/// The alarm on messages arriving in the dead-letter queues of the queues a service
/// works, if it has any (and has not turned it off).
///
/// SQS counts a message it moves to a dead-letter queue in that queue's
/// ApproximateNumberOfMessagesVisible, not in its NumberOfMessagesSent (SQS Developer
/// Guide, "Creating alarms for dead-letter queues using Amazon CloudWatch"): the alarm
/// is on that count going up (DIFF over one-minute maxima), so messages left there
/// from before the deployment do not fail it.
fn dead_letter_alarm(cx: &Cx<'_>, name: &str, s: &Service, svc_name: &str) -> Option<alarm::Alarm> {
    let queues: Vec<String> = cx
        .stack
        .rollback_dead_letters(s)
        .into_iter()
        .filter_map(|q| cx.dead_letter_queue_name(q))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if queues.is_empty() {
        return None;
    }
    let mut metrics: Vec<alarm::Query> = queues
        .iter()
        .enumerate()
        .map(|(i, q)| alarm::Query {
            id: format!("dlq{i}"),
            expression: None,
            metric_stat: Some(alarm::MetricStat {
                metric: alarm::Metric {
                    namespace: "AWS/SQS".into(),
                    metric_name: "ApproximateNumberOfMessagesVisible".into(),
                    dimensions: vec![alarm::Dimension {
                        name: "QueueName".into(),
                        value: q.clone(),
                    }],
                },
                period: 60,
                stat: "Maximum".into(),
            }),
            label: None,
            return_data: false,
        })
        .collect();
    let sum = (0..queues.len())
        .map(|i| format!("DIFF(dlq{i})"))
        .collect::<Vec<_>>()
        .join(" + ");
    metrics.push(alarm::Query {
        id: "arrived".into(),
        expression: Some(sum),
        metric_stat: None,
        label: Some("Messages arriving in the dead-letter queues".into()),
        return_data: true,
    });
    Some(alarm::Alarm {
        alarm_name: naming::service_part(svc_name, "dead-letters"),
        alarm_description: format!(
            "bosun-deploy: {name}'s deployments roll back when messages arrive in {}",
            queues.join(", ")
        ),
        actions_enabled: true,
        alarm_actions: Vec::new(),
        metrics,
        evaluation_periods: 1,
        datapoints_to_alarm: 1,
        threshold: 0.0,
        comparison_operator: "GreaterThanThreshold".into(),
        treat_missing_data: "notBreaching".into(),
        tags: cx.tags_kv(),
    })
}

/// The service, its scalable target, its scaling policies and its dashboard.
pub fn add(cx: &Cx<'_>, b: &mut Builder, name: &str, s: &Service, deps: &[Dep]) {
    use service as sv;
    let (stack, t) = (cx.stack, cx.t);
    let svc_name = cx.family(name);
    let (min, max) = s.bounds();
    let (subnets, security_groups, assign_public_ip) = cx.awsvpc();
    let res = &s.container.resources;
    let (launch_type, strategy) = if s.spot {
        (None, Some(spot_strategy(s)))
    } else if res.instance_types.is_some() {
        (
            None,
            Some(vec![sv::StrategyItem {
                capacity_provider: cx.family(name),
                weight: 1,
                base: None,
            }]),
        )
    } else {
        (Some("FARGATE".to_owned()), None)
    };
    // Tasks of a given size are packed onto as few instances as hold them.
    let placement_strategy = (res.instance_types.is_some() && res.memory.is_some()).then(|| {
        vec![sv::Placement {
            kind: "binpack".into(),
            field: "memory".into(),
        }]
    });
    // Automatic rollback on the worker's own signal: messages arriving in a connected
    // queue's dead-letter queue while a deployment runs fail it, and ECS goes back
    // to the last completed one.
    let dead_letters = dead_letter_alarm(cx, name, s, &svc_name);
    let alarms = dead_letters.as_ref().map(|a| sv::DeploymentAlarms {
        alarm_names: vec![a.alarm_name.clone()],
        enable: true,
        rollback: true,
    });
    let mut deps = deps.to_vec();
    if let Some(a) = dead_letters {
        deps.push(b.add(deployment_alarm::DeploymentAlarm(a), &[]));
    }
    let svc = b.add(
        sv::Service {
            cluster: stack.cluster.clone(),
            service_name: svc_name.clone(),
            task_definition: cx.family(name),
            desired_count: min as i32,
            network_configuration: sv::NetworkConfiguration {
                awsvpc_configuration: sv::AwsVpc {
                    subnets,
                    security_groups,
                    assign_public_ip,
                },
            },
            deployment_configuration: sv::DeploymentConfiguration {
                deployment_circuit_breaker: sv::CircuitBreaker {
                    enable: true,
                    rollback: true,
                },
                minimum_healthy_percent: 100,
                maximum_percent: 200,
                alarms,
            },
            launch_type,
            capacity_provider_strategy: strategy,
            placement_strategy,
            enable_ecs_managed_tags: true,
            propagate_tags: "SERVICE".into(),
            enable_execute_command: s.container.enable_execute_command,
            service_registries: if s.ports.is_empty() {
                Vec::new()
            } else {
                vec![sv::ServiceRegistry {
                    registry_arn: super::private_network::registry_arn(cx, name),
                }]
            },
            tags: cx.tags_ecs(),
            scaled: s.scaling.is_some(),
        },
        &deps,
    );
    let resource_id = format!("service/{}/{svc_name}", stack.cluster);
    if let Some(sc) = &s.scaling {
        let target = b.add(
            scaling::ScalableTarget {
                service_namespace: "ecs".into(),
                resource_id: resource_id.clone(),
                scalable_dimension: "ecs:service:DesiredCount".into(),
                min_capacity: min as i32,
                max_capacity: max as i32,
                tags: cx.tags_map(),
            },
            std::slice::from_ref(&svc),
        );
        let pol = sc.scaling_policy.clone().unwrap_or_default();
        // One target-tracking policy per metric: Application Auto Scaling scales out
        // when any is above its target and in only when all are below. Out fast (60 s
        // cooldown), in cautiously (300 s).
        let mut add = |suffix: &str,
                       value: f64,
                       predefined: Option<&str>,
                       custom: Option<scaling::Customized>| {
            b.add(
                scaling::ScalingPolicy {
                    policy_name: crate::deploy::naming::service_part(&svc_name, suffix),
                    service_namespace: "ecs".into(),
                    resource_id: resource_id.clone(),
                    scalable_dimension: "ecs:service:DesiredCount".into(),
                    policy_type: "TargetTrackingScaling".into(),
                    step_scaling_policy_configuration: None,
                    target_tracking_scaling_policy_configuration: Some(scaling::TargetTracking {
                        target_value: value,
                        predefined_metric_specification: predefined.map(|p| scaling::Predefined {
                            predefined_metric_type: p.into(),
                        }),
                        customized_metric_specification: custom,
                        scale_out_cooldown: 60,
                        scale_in_cooldown: 300,
                        // Target tracking scales in down to the target's minimum,
                        // zero included, once its metric reads real zeros
                        // (Application Auto Scaling User Guide, "Target tracking
                        // scaling policies"): a backlog of 0 with messages still in
                        // flight would stop the tasks working them. With a minimum of
                        // 0, only the idle policy (nothing visible, nothing in
                        // flight) takes the service in.
                        disable_scale_in: min == 0,
                    }),
                },
                std::slice::from_ref(&target),
            );
        };
        if let Some(v) = pol.keep_avg_cpu_utilization_under {
            add("cpu", v, Some("ECSServiceAverageCPUUtilization"), None);
        }
        if let Some(v) = pol.keep_avg_memory_utilization_under {
            add(
                "memory",
                v,
                Some("ECSServiceAverageMemoryUtilization"),
                None,
            );
        }
        if let Some(v) = pol.keep_backlog_per_instance_under {
            let dim = |n: &str, v: &str| scaling::Dimension {
                name: n.into(),
                value: v.into(),
            };
            add(
                "backlog",
                v,
                None,
                Some(scaling::Customized {
                    metric_name: "BacklogPerTask".into(),
                    namespace: "Bosun".into(),
                    dimensions: vec![
                        dim("ServiceName", &svc_name),
                        dim("ClusterName", &stack.cluster),
                    ],
                    statistic: "Average".into(),
                }),
            );
        }
        if min == 0 {
            scale_to_zero::add(cx, b, s, &svc_name, &resource_id, &target, max);
        }
    }
    let metric =
        |ns: &str, m: &str| json!([ns, m, "ServiceName", svc_name, "ClusterName", stack.cluster]);
    let widget = |x: i64, y: i64, title: &str, m: Value| json!({ "type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": { "title": title, "region": t.region, "stat": "Average", "period": 60, "metrics": [m] } });
    let body = json!({ "widgets": [
        widget(0, 0, "CPU %", metric("AWS/ECS", "CPUUtilization")),
        widget(12, 0, "Memory %", metric("AWS/ECS", "MemoryUtilization")),
        widget(0, 6, "Backlog per task", metric("Bosun", "BacklogPerTask")),
        widget(12, 6, "Running tasks", metric("ECS/ContainerInsights", "RunningTaskCount")),
        dashboard::owner_widget(&stack.stack),
    ]});
    b.add(
        dashboard::Dashboard {
            dashboard_name: svc_name,
            dashboard_body: body,
        },
        &[svc],
    );
}
