//! An sqs-queue: the queue, and the dead-letter queue the stack makes for it when
//! its `deadLetterQueue` names no target (dead-letter queues first, so they exist for
//! the redrive policy).

use std::collections::BTreeMap;

use super::{Builder, Cx, Dep};
use crate::deploy::engine::Kind;
use crate::deploy::naming;
use crate::deploy::resources::queue::{self, Queue};
use crate::deploy::stack::limits::{
    DEFAULT_DELAY, DEFAULT_DLQ_RETENTION, DEFAULT_RETENTION, DEFAULT_VISIBILITY,
};
use crate::deploy::stack::Resource;

/// Every sqs-queue of the stack; their ids by resource name.
pub fn add_all(cx: &Cx<'_>, b: &mut Builder) -> BTreeMap<String, Dep> {
    let mut ids = BTreeMap::new();
    for (name, res) in &cx.stack.resources {
        let Resource::SqsQueue(q) = res else { continue };
        let mut attrs = attributes(
            q.visibility_timeout_seconds.unwrap_or(DEFAULT_VISIBILITY),
            q.message_retention_seconds.unwrap_or(DEFAULT_RETENTION),
            q.delay_seconds.unwrap_or(DEFAULT_DELAY),
            q.fifo,
        );
        let mut deps = Vec::new();
        if let Some(dlq) = &q.dead_letter_queue {
            let target = match &dlq.target_queue {
                Some(other) => {
                    deps.push((Queue::KIND, cx.queue_name(other)));
                    cx.queue_arn(other)
                }
                None => {
                    let dlq_name = naming::dead_letter_queue(cx.name(), name, q.fifo);
                    deps.push(b.add(
                        Queue {
                            queue_name: dlq_name.clone(),
                            attributes: attributes(
                                DEFAULT_VISIBILITY,
                                DEFAULT_DLQ_RETENTION,
                                DEFAULT_DELAY,
                                q.fifo,
                            ),
                            tags: cx.tags_map(),
                            url: None,
                        },
                        &[],
                    ));
                    cx.t.at().queue_arn(&dlq_name)
                }
            };
            attrs.insert(
                "RedrivePolicy".into(),
                queue::redrive(&target, dlq.max_receive_count),
            );
        }
        let id = b.add(
            Queue {
                queue_name: cx.queue_name(name),
                attributes: attrs,
                tags: cx.tags_map(),
                url: None,
            },
            &deps,
        );
        ids.insert(name.clone(), id);
    }
    ids
}

fn attributes(visibility: i64, retention: i64, delay: i64, fifo: bool) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::new();
    attrs.insert("VisibilityTimeout".to_owned(), visibility.to_string());
    attrs.insert("MessageRetentionPeriod".to_owned(), retention.to_string());
    attrs.insert("DelaySeconds".to_owned(), delay.to_string());
    if fifo {
        attrs.insert("FifoQueue".into(), "true".into());
    }
    attrs
}
