//! Queue depth from SQS (`GetQueueAttributes`) and the running task count from ECS
//! (`DescribeServices`), for the backlog per task.

use aws_sdk_sqs::types::QueueAttributeName;

/// Depth of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

/// One `GetQueueAttributes` call.
pub async fn depth(
    client: &aws_sdk_sqs::Client,
    url: &str,
) -> Result<Depth, (crate::aws::Failure, String)> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| (crate::aws::classify(&e), crate::aws::describe(&e)))?;
    let attrs = out.attributes.unwrap_or_default();
    let get = |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Depth {
        visible: get(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    })
}

/// The service's running task count (`DescribeServices`).
pub async fn running_tasks(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<u64, (crate::aws::Failure, String)> {
    let out = client
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .map_err(|e| (crate::aws::classify(&e), crate::aws::describe(&e)))?;
    out.services()
        .first()
        .map(|s| s.running_count().max(0) as u64)
        .ok_or((
            crate::aws::Failure::Fatal,
            format!("service {service} not found in cluster {cluster}"),
        ))
}
