//! What a plan would lose: queues it deletes while they hold messages (visible, in
//! flight or delayed), dead-letter queues included. `diff` marks them; `apply` and
//! `delete` stop before any change unless `--allow-data-loss`.

use aws_sdk_sqs::types::QueueAttributeName as A;

use crate::deploy::engine::error::{absent_on, DeployError, Result};
use crate::deploy::engine::plan::FieldChange;
use crate::deploy::engine::{bounded, Ctx, Kind, Reconciled};
use crate::deploy::resources::{queue::Queue, Spec};

/// SQS's answers for a queue that is gone meanwhile: nothing to lose.
const GONE: &[&str] = &[
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
];

/// Mark each queue deletion that would lose messages in the plan; the marked ones, as
/// `queue NAME (N messages)`.
pub async fn mark_data_loss(ctx: &Ctx, r: &mut Reconciled<Spec>) -> Result<Vec<String>> {
    let queues: Vec<(usize, String, String)> = r
        .deletions()
        .filter(|(_, kind, _)| *kind == Queue::KIND)
        .map(|(i, _, o)| (i, o.name.clone(), o.handle.clone()))
        .collect();
    let counts = bounded(queues.iter().map(|(_, name, url)| async move {
        // The three counts SQS keeps (approximate, as SQS says): waiting, being
        // processed, and not yet delivered (SQS API reference, GetQueueAttributes).
        let out = ctx
            .aws
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(A::ApproximateNumberOfMessagesDelayed)
            .send()
            .await;
        let Some(out) = absent_on(out, GONE, "SQS GetQueueAttributes", name)? else {
            return Ok((0, 0, 0));
        };
        let get = |k: A| {
            out.attributes()
                .and_then(|a| a.get(&k))
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        Ok((
            get(A::ApproximateNumberOfMessages),
            get(A::ApproximateNumberOfMessagesNotVisible),
            get(A::ApproximateNumberOfMessagesDelayed),
        ))
    }))
    .await?;
    let mut lost = Vec::new();
    for ((i, name, _), (visible, in_flight, delayed)) in queues.iter().zip(counts) {
        let total = visible + in_flight + delayed;
        if total == 0 {
            continue;
        }
        r.plan.changes[*i].fields.push(FieldChange::note(format!(
            "holds {total} messages ({visible} visible, {in_flight} in flight, {delayed} delayed): deleting it loses them; needs --allow-data-loss"
        )));
        lost.push(format!("queue {name} ({total} messages)"));
    }
    Ok(lost)
}

/// Stop before any change when the plan would lose messages and the user did not say
/// `--allow-data-loss`.
pub async fn refuse_data_loss(ctx: &Ctx, r: &mut Reconciled<Spec>, allow: bool) -> Result<()> {
    let lost = mark_data_loss(ctx, r).await?;
    if lost.is_empty() || allow {
        return Ok(());
    }
    Err(DeployError::Refused(format!(
        "the plan deletes what holds data: {}; nothing was changed (pass --allow-data-loss to delete them anyway)",
        lost.join(", ")
    )))
}
