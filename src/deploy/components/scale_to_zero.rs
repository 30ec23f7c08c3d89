//! Scale to zero: a queue worker with `minInstances: 0` is woken by a CloudWatch
//! alarm on its queues' own metrics (no task runs to publish any) through a step
//! policy, and taken to zero by an idle alarm once the queues have been empty (nothing
//! visible, nothing in flight) for the idle time.

use super::{Builder, Cx, Dep};
use crate::deploy::naming;
use crate::deploy::resources::{alarm, scaling};
use crate::deploy::stack::limits::DEFAULT_IDLE_MINUTES;
use crate::deploy::stack::Service;

/// Add the wake and idle policies and alarms of a service that scales to zero.
pub fn add(
    cx: &Cx<'_>,
    b: &mut Builder,
    s: &Service,
    svc_name: &str,
    resource_id: &str,
    target: &Dep,
    max: i64,
) {
    let Some(sc) = &s.scaling else { return };
    let pol = sc.scaling_policy.clone().unwrap_or_default();
    let idle = sc.idle_minutes.unwrap_or(DEFAULT_IDLE_MINUTES);
    let queues: Vec<String> = s
        .container
        .connect_to
        .iter()
        .filter(|q| cx.stack.is_queue(q))
        .map(|q| cx.queue_name(q))
        .collect();
    let zero = ScaleToZero {
        cx,
        svc_name,
        resource_id,
        queues: &queues,
    };
    let wake = b.add(
        zero.policy("wake", wake_steps(pol.keep_backlog_per_instance_under, max)),
        std::slice::from_ref(target),
    );
    b.add(zero.wake_alarm(), &[wake]);
    let to_zero = b.add(
        zero.policy(
            "idle",
            vec![scaling::Step {
                metric_interval_lower_bound: None,
                metric_interval_upper_bound: Some(0.0),
                scaling_adjustment: 0,
            }],
        ),
        std::slice::from_ref(target),
    );
    b.add(zero.idle_alarm(idle), &[to_zero]);
}

/// The alarms and step policies of a service that scales to zero: a wake alarm (on
/// the queues' own metrics, since no task runs to publish any) and an idle alarm that
/// takes it to zero once the queues have been empty for the idle time.
struct ScaleToZero<'a> {
    cx: &'a Cx<'a>,
    svc_name: &'a str,
    resource_id: &'a str,
    /// The connected queues' names.
    queues: &'a [String],
}

/// How many steps a wake policy has at most: beyond them, target tracking takes over
/// once the tasks publish their backlog.
const WAKE_STEPS: i64 = 10;

/// The wake policy's steps, on the alarm's metric (messages waiting, threshold 1):
/// ceil(waiting ÷ target) tasks, at least 1, at most `max` (and [`WAKE_STEPS`]).
/// Without a backlog target, one task.
fn wake_steps(target: Option<f64>, max: i64) -> Vec<scaling::Step> {
    let n = match target {
        Some(_) => max.clamp(1, WAKE_STEPS),
        None => 1,
    };
    let per = target.unwrap_or(1.0);
    (1..=n)
        .map(|k| scaling::Step {
            metric_interval_lower_bound: Some((k - 1) as f64 * per),
            metric_interval_upper_bound: (k < n).then_some(k as f64 * per),
            scaling_adjustment: k as i32,
        })
        .collect()
}

impl ScaleToZero<'_> {
    /// A step policy: the wake one only adds tasks (ChangeInCapacity: an alarm sample
    /// that reads "none in flight" while a fleet is busy must never cut it to
    /// ceil(waiting / target)); the idle one sets the count to zero (ExactCapacity).
    fn policy(&self, suffix: &str, steps: Vec<scaling::Step>) -> scaling::ScalingPolicy {
        let adjustment = if suffix == "wake" {
            "ChangeInCapacity"
        } else {
            "ExactCapacity"
        };
        scaling::ScalingPolicy {
            policy_name: naming::service_part(self.svc_name, suffix),
            service_namespace: "ecs".into(),
            resource_id: self.resource_id.to_owned(),
            scalable_dimension: "ecs:service:DesiredCount".into(),
            policy_type: "StepScaling".into(),
            target_tracking_scaling_policy_configuration: None,
            step_scaling_policy_configuration: Some(scaling::StepScaling {
                adjustment_type: adjustment.into(),
                step_adjustments: steps,
                cooldown: 60,
                metric_aggregation_type: "Maximum".into(),
            }),
        }
    }

    /// The queues' metrics: `v0, v1, ...` visible, `f0, f1, ...` in flight (each
    /// queue's 1-minute maximum); and the sums of each.
    fn queue_metrics(&self) -> (Vec<alarm::Query>, String, String) {
        let q = |id: String, metric: &str, queue: &str| alarm::Query {
            id,
            expression: None,
            metric_stat: Some(alarm::MetricStat {
                metric: alarm::Metric {
                    namespace: "AWS/SQS".into(),
                    metric_name: metric.into(),
                    dimensions: vec![alarm::Dimension {
                        name: "QueueName".into(),
                        value: queue.into(),
                    }],
                },
                period: 60,
                stat: "Maximum".into(),
            }),
            label: None,
            return_data: false,
        };
        let mut out = Vec::new();
        for (i, queue) in self.queues.iter().enumerate() {
            out.push(q(
                format!("v{i}"),
                "ApproximateNumberOfMessagesVisible",
                queue,
            ));
            out.push(q(
                format!("f{i}"),
                "ApproximateNumberOfMessagesNotVisible",
                queue,
            ));
        }
        let sum = |p: &str| {
            (0..self.queues.len())
                .map(|i| format!("{p}{i}"))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        (out, sum("v"), sum("f"))
    }

    fn alarm(
        &self,
        suffix: &str,
        description: String,
        expression: String,
        label: &str,
        (periods, comparison): (i64, &str),
    ) -> alarm::Alarm {
        let (mut metrics, _, _) = self.queue_metrics();
        metrics.push(alarm::Query {
            id: suffix.into(),
            expression: Some(expression),
            metric_stat: None,
            label: Some(label.into()),
            return_data: true,
        });
        alarm::Alarm {
            alarm_name: naming::service_part(self.svc_name, suffix),
            alarm_description: description,
            actions_enabled: true,
            alarm_actions: vec![alarm::policy_arn_pattern(
                &self.cx.t.region,
                &self.cx.t.account,
                self.resource_id,
                &naming::service_part(self.svc_name, suffix),
            )],
            metrics,
            evaluation_periods: periods as i32,
            datapoints_to_alarm: periods as i32,
            threshold: 1.0,
            comparison_operator: comparison.into(),
            // No data is no reason to scale: neither to wake, nor to stop work.
            treat_missing_data: "notBreaching".into(),
            tags: self.cx.tags_kv(),
        }
    }

    /// Messages wait and none is in flight, so nothing takes them (the service is at
    /// zero): the wake policy sets the tasks by how many wait.
    fn wake_alarm(&self) -> alarm::Alarm {
        let (_, visible, in_flight) = self.queue_metrics();
        self.alarm(
            "wake",
            format!(
                "bosun-deploy: wakes {} when messages wait in {} and none is in flight",
                self.svc_name,
                self.queues.join(", ")
            ),
            format!("IF(({in_flight}) == 0, {visible}, 0)"),
            "messages waiting with none in flight",
            (1, "GreaterThanOrEqualToThreshold"),
        )
    }

    /// Nothing visible and nothing in flight for `idle` minutes in a row: the idle
    /// policy takes the service to zero.
    fn idle_alarm(&self, idle: i64) -> alarm::Alarm {
        let (_, visible, in_flight) = self.queue_metrics();
        self.alarm(
            "idle",
            format!(
                "bosun-deploy: takes {} to zero after {idle} min with {} empty (nothing visible, nothing in flight)",
                self.svc_name,
                self.queues.join(", ")
            ),
            format!("{visible} + {in_flight}"),
            "messages visible or in flight",
            (idle, "LessThanThreshold"),
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wake_steps_give_tasks_by_backlog() {
        let steps = |t, max| {
            super::wake_steps(t, max)
                .iter()
                .map(|s| {
                    (
                        s.metric_interval_lower_bound,
                        s.metric_interval_upper_bound,
                        s.scaling_adjustment,
                    )
                })
                .collect::<Vec<_>>()
        };
        // Without a backlog target: one task, whatever waits.
        assert_eq!(steps(None, 5), [(Some(0.0), None, 1)]);
        // With one: ceil(waiting / target) tasks (the alarm's threshold is 1, so a
        // step's bounds are waiting - 1), the last step open.
        assert_eq!(
            steps(Some(5.0), 3),
            [
                (Some(0.0), Some(5.0), 1),
                (Some(5.0), Some(10.0), 2),
                (Some(10.0), None, 3)
            ]
        );
        // At most WAKE_STEPS steps; target tracking goes on from there.
        let many = super::wake_steps(Some(1.0), 50);
        assert_eq!(many.len() as i64, super::WAKE_STEPS);
        assert_eq!(many.last().unwrap().metric_interval_upper_bound, None);
    }
}
