//! A scheduled job: EventBridge Scheduler schedules in the stack's group (one per
//! expression of the file's), running the job's task definition (an ECS RunTask
//! target) with the scheduler role; and its alerts: metric filters counting bosun's
//! run-summary lines in the job's log group, alarms on them, and a topic they notify.

use serde_json::json;

use super::{roles, Builder, Cx, Dep};
use crate::deploy::engine::Kind;
use crate::deploy::naming;
use crate::deploy::resources::{
    alarm, log_group::LogGroup, metric_filter::MetricFilter, queue::Queue, role::Role, schedule,
    topic,
};
use crate::deploy::stack::schedule::{duration_secs, iso_secs};
use crate::deploy::stack::{Alerts, Job};

/// The stack's jobs (name, job, what its schedule depends on): the scheduler role,
/// the schedule group, and a schedule each.
pub fn add_all(cx: &Cx<'_>, b: &mut Builder, jobs: &[(&str, &Job, Vec<Dep>)]) {
    if jobs.is_empty() {
        return;
    }
    let t = cx.t;
    let scheduler_role = naming::scheduler_role(cx.name());
    // RunTask of the jobs' task definitions in the stack's cluster only, and the
    // roles under the stack's path passed to ECS tasks only (IAM User Guide,
    // iam:PassedToService; ECS Developer Guide, the ecs:cluster condition key).
    let mut statements = vec![
        json!({ "Effect": "Allow", "Action": ["ecs:RunTask"], "Resource": jobs.iter()
            .map(|(name, _, _)| t.arn("ecs", &format!("task-definition/{}:*", cx.family(name)))).collect::<Vec<_>>(),
            "Condition": { "ArnEquals": { "ecs:cluster": cx.cluster_arn() } } }),
        json!({ "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": format!("arn:aws:iam::{}:role{}*", t.account, naming::role_path(cx.name())),
            "Condition": { "StringEquals": { "iam:PassedToService": "ecs-tasks.amazonaws.com" } } }),
    ];
    // The jobs' dead-letter queues: Scheduler sends to them with the schedule's own
    // role (Scheduler User Guide, "Configuring a schedule's dead-letter queue": set
    // up execution role permissions, sqs:SendMessage on the queue).
    let mut dead_letters: Vec<String> = jobs
        .iter()
        .filter_map(|(_, j, _)| j.dead_letter_queue.as_deref())
        .map(|q| cx.queue_arn(q))
        .collect();
    dead_letters.sort();
    dead_letters.dedup();
    if !dead_letters.is_empty() {
        statements.push(
            json!({ "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": dead_letters }),
        );
    }
    b.add(
        roles::role(
            cx,
            &scheduler_role,
            roles::Trust::Scheduler {
                group: naming::schedule_group(cx.name()),
            },
            statements,
        ),
        &[],
    );
    let group = group(cx, b);
    for (name, j, job_deps) in jobs {
        let mut deps = vec![group.clone(), (Role::KIND, scheduler_role.clone())];
        deps.extend(job_deps.iter().cloned());
        if let Some(q) = &j.dead_letter_queue {
            deps.push((Queue::KIND, cx.queue_name(q)));
        }
        for (i, expr) in j.schedule.all().into_iter().enumerate() {
            b.add(job_schedule(cx, j, name, i, expr), &deps);
        }
        if let Some(a) = &j.alerts {
            alerts(cx, b, name, a);
        }
    }
}

/// A job's alerts: the run filters on its log group, an alarm on a failed run, one on
/// no success within the time given, and the topic they notify.
fn alerts(cx: &Cx<'_>, b: &mut Builder, name: &str, a: &Alerts) {
    let fam = cx.family(name);
    let group = cx.log_group(name);
    let group_dep = (LogGroup::KIND, group.clone());
    let filter = |suffix: &str, outcome: &str| MetricFilter {
        filter_name: format!("{fam}{suffix}"),
        log_group_name: group.clone(),
        // bosun's run-summary line (a JSON log event: bosun-deploy sets
        // BOSUN_LOG_FORMAT=json), by its outcome.
        filter_pattern: format!(r#"{{ $.message = "run ended" && $.outcome = "{outcome}" }}"#),
        metric_name: format!("{fam}{suffix}"),
        metric_namespace: naming::RUNS_NAMESPACE.into(),
        metric_value: "1".into(),
    };
    let mut actions = Vec::new();
    // The topic first, then the filters after it, then the alarms after their filter:
    // an alarm is put again when what it depends on changes (its action may hold a
    // new ARN), and a topic's subscriptions changing must not put its alarms again.
    let mut topic_dep = Vec::new();
    if !a.email.is_empty() {
        let mut emails = a.email.clone();
        emails.sort();
        emails.dedup();
        let topic_name = naming::alert_topic(cx.name(), name);
        actions.push(topic::arn(&cx.t.region, &cx.t.account, &topic_name));
        topic_dep.push(b.add(
            topic::Topic {
                name: topic_name,
                emails,
                tags: cx.tags_kv(),
            },
            &[],
        ));
    }
    let mut filter_deps = vec![group_dep];
    filter_deps.extend(topic_dep);
    let failed = b.add(filter(naming::RUNS_FAILED, "failed"), &filter_deps);
    let succeeded = b.add(filter(naming::RUNS_SUCCEEDED, "succeeded"), &filter_deps);
    actions.extend(a.sns_topic_arn.clone());
    let alarm = |alarm_name: String,
                 description: String,
                 metric: String,
                 period: i32,
                 periods: i32,
                 comparison: &str,
                 missing: &str| alarm::Alarm {
        alarm_name,
        alarm_description: description,
        actions_enabled: true,
        alarm_actions: actions.clone(),
        metrics: vec![alarm::Query {
            id: "runs".into(),
            expression: None,
            metric_stat: Some(alarm::MetricStat {
                metric: alarm::Metric {
                    namespace: naming::RUNS_NAMESPACE.into(),
                    metric_name: metric,
                    dimensions: Vec::new(),
                },
                period,
                stat: "Sum".into(),
            }),
            label: None,
            return_data: true,
        }],
        evaluation_periods: periods,
        datapoints_to_alarm: periods,
        threshold: 1.0,
        comparison_operator: comparison.into(),
        treat_missing_data: missing.into(),
        tags: cx.tags_kv(),
    };
    if a.on_failure {
        b.add(
            alarm(
                format!("{fam}{}", naming::RUNS_FAILED),
                format!(
                    "A run of job {name} failed (bosun's run-summary line said outcome failed)."
                ),
                format!("{fam}{}", naming::RUNS_FAILED),
                60,
                1,
                "GreaterThanOrEqualToThreshold",
                "notBreaching",
            ),
            &[failed],
        );
    }
    if let Some(within) = a.not_succeeded_within.as_deref().and_then(duration_secs) {
        let (period, periods) = alarm_window(within);
        // No datum in a period (the job did not run, or its line never came) counts as
        // breaching: a job that stopped running is caught too.
        b.add(
            alarm(
                format!("{fam}{}", naming::NOT_SUCCEEDED),
                format!(
                    "No run of job {name} succeeded within {}.",
                    a.not_succeeded_within.as_deref().unwrap_or_default()
                ),
                format!("{fam}{}", naming::RUNS_SUCCEEDED),
                period,
                periods,
                "LessThanThreshold",
                "breaching",
            ),
            &[succeeded],
        );
    }
}

/// The alarm's period and number of periods covering `secs` (rounded up to whole
/// periods): hours where it is at least an hour, else minutes. CloudWatch takes at
/// most 7 days of periods, and at most a day of periods shorter than an hour
/// (CloudWatch API reference, PutMetricAlarm: Period); validation keeps the time
/// within both.
pub fn alarm_window(secs: u64) -> (i32, i32) {
    let period: u64 = if secs >= 3600 { 3600 } else { 60 };
    (period as i32, secs.div_ceil(period) as i32)
}

/// The stack's schedule group, added once (jobs and EC2 capacity refreshes share it).
pub fn group(cx: &Cx<'_>, b: &mut Builder) -> Dep {
    if let Some(g) = &b.schedule_group {
        return g.clone();
    }
    let g = b.add(
        schedule::ScheduleGroup {
            name: naming::schedule_group(cx.name()),
            tags: cx.tags_kv(),
        },
        &[],
    );
    b.schedule_group = Some(g.clone());
    g
}

/// A schedule of a job (its `index`th expression): an ECS RunTask target.
fn job_schedule(cx: &Cx<'_>, j: &Job, name: &str, index: usize, expr: &str) -> schedule::Schedule {
    let fam = &cx.family(name);
    use schedule as sc;
    let t = cx.t;
    let (subnets, security_groups, assign_public_ip) = cx.awsvpc();
    sc::Schedule {
        name: naming::job_schedule_of(cx.name(), name, index, expr),
        group_name: naming::schedule_group(cx.name()),
        schedule_expression: expr.trim().to_owned(),
        schedule_expression_timezone: j.timezone.clone().unwrap_or_else(|| "UTC".into()),
        flexible_time_window: match j.flexible_time_window_minutes {
            Some(m) => sc::FlexibleTimeWindow {
                mode: "FLEXIBLE".into(),
                maximum_window_in_minutes: Some(m as i32),
            },
            None => sc::FlexibleTimeWindow {
                mode: "OFF".into(),
                maximum_window_in_minutes: None,
            },
        },
        state: if j.enabled.unwrap_or(true) {
            "ENABLED"
        } else {
            "DISABLED"
        }
        .into(),
        // Scheduler refuses a StartDate more than 5 minutes ago ("The StartDate you
        // specify cannot be earlier than 5 minutes ago", as moto mirrors it: getmoto
        // #8172): one that has passed is not sent, and the schedule runs from now.
        start_date: j
            .start_date
            .as_deref()
            .filter(|d| iso_secs(d).is_some_and(schedule::start_date_ahead))
            .and_then(iso_date),
        end_date: j.end_date.as_deref().and_then(iso_date),
        target: sc::Target {
            arn: cx.cluster_arn(),
            role_arn: cx.role_arn(&naming::scheduler_role(cx.name())),
            retry_policy: sc::RetryPolicy {
                maximum_event_age_in_seconds: j.max_event_age_seconds.unwrap_or(86400) as i32,
                maximum_retry_attempts: j.retry_attempts.unwrap_or(0) as i32,
            },
            input: None,
            dead_letter_config: j.dead_letter_queue.as_ref().map(|q| sc::DeadLetterConfig {
                arn: cx.queue_arn(q),
            }),
            ecs_parameters: Some(sc::EcsParameters {
                task_definition_arn: t.arn("ecs", &format!("task-definition/{fam}")),
                task_count: j.task_count.unwrap_or(1) as i32,
                launch_type: (j.container.resources.instance_types.is_none() && !j.spot)
                    .then(|| "FARGATE".into()),
                capacity_provider_strategy: match (&j.container.resources.instance_types, j.spot) {
                    (Some(_), _) => Some(vec![sc::StrategyItem {
                        capacity_provider: fam.to_owned(),
                        weight: 1,
                    }]),
                    // Fargate Spot: a capacity provider strategy in place of the launch
                    // type (Scheduler API reference, EcsParameters: the two exclude
                    // each other).
                    (None, true) => Some(vec![sc::StrategyItem {
                        capacity_provider: "FARGATE_SPOT".into(),
                        weight: 1,
                    }]),
                    (None, false) => None,
                },
                network_configuration: sc::NetworkConfiguration {
                    awsvpc_configuration: sc::AwsVpc {
                        subnets,
                        security_groups,
                        assign_public_ip,
                    },
                },
            }),
        },
    }
}

/// An ISO 8601 date of the file's (`2027-01-01`, `2027-01-01T06:00:00Z`,
/// `2027-01-01T06:00:00+01:00`) in UTC as the spec writes it (`...Z`).
pub fn iso_date(s: &str) -> Option<String> {
    let secs = iso_secs(s)?;
    aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_windows_and_dates() {
        assert_eq!(duration_secs("90m"), Some(5400));
        assert_eq!(duration_secs("26h"), Some(93_600));
        assert_eq!(duration_secs("2d"), Some(172_800));
        assert_eq!(duration_secs("2w"), None);
        assert_eq!(duration_secs("0h"), None);
        assert_eq!(alarm_window(5400), (3600, 2));
        assert_eq!(alarm_window(1800), (60, 30));
        assert_eq!(alarm_window(7 * 86_400), (3600, 168));
        assert_eq!(
            iso_date("2027-01-01").as_deref(),
            Some("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            iso_date("2027-01-01T06:30:00+01:00").as_deref(),
            Some("2027-01-01T05:30:00Z")
        );
        assert_eq!(iso_date("2027-02-30"), None);
        assert_eq!(iso_date("27-01-01"), None);
    }
}
