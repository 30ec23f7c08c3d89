//! Who this task is and what it may use, from the ECS task metadata endpoint v4
//! (`$ECS_CONTAINER_METADATA_URI_V4/task`): cluster, service, task ARN and the task's
//! CPU and memory limits. Outside ECS, `BOSUN_SERVICE_NAME` and `BOSUN_CLUSTER_NAME`.

use std::time::Duration;

use serde::Deserialize;

/// The variable ECS sets in every container of a task.
pub const METADATA_ENV: &str = "ECS_CONTAINER_METADATA_URI_V4";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskMetadata {
    pub cluster: Option<String>,
    pub service_name: Option<String>,
    #[serde(rename = "TaskARN")]
    pub task_arn: Option<String>,
    /// The task definition's family.
    pub family: Option<String>,
    pub launch_type: Option<String>,
    pub limits: Option<Limits>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Limits {
    /// vCPUs.
    #[serde(rename = "CPU")]
    pub cpu: Option<f64>,
    /// MiB.
    pub memory: Option<f64>,
}

/// The task as bosun reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub service: Option<String>,
    /// The short name (an ARN is cut to what follows `cluster/`).
    pub cluster: Option<String>,
    pub task_arn: Option<String>,
    pub cpu_limit_cores: Option<f64>,
    pub memory_limit_bytes: Option<u64>,
    /// Whether the ECS metadata endpoint answered.
    pub in_ecs: bool,
}

fn short_cluster(c: &str) -> String {
    c.rsplit_once(":cluster/")
        .map_or(c, |(_, name)| name)
        .to_owned()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Identity {
    /// From the metadata (when given), with the environment filling what it lacks
    /// (Fargate's metadata, for one, has no service name).
    pub fn new(meta: Option<TaskMetadata>) -> Identity {
        let in_ecs = meta.is_some();
        let meta = meta.unwrap_or_default();
        let limits = meta.limits.unwrap_or_default();
        Identity {
            service: meta.service_name.or_else(|| env("BOSUN_SERVICE_NAME")),
            cluster: meta
                .cluster
                .as_deref()
                .map(short_cluster)
                .or_else(|| env("BOSUN_CLUSTER_NAME")),
            task_arn: meta.task_arn,
            cpu_limit_cores: limits.cpu.filter(|c| *c > 0.0),
            memory_limit_bytes: limits
                .memory
                .filter(|m| *m > 0.0)
                .map(|m| (m * 1024.0 * 1024.0) as u64),
            in_ecs,
        }
    }

    /// Read the metadata endpoint when `ECS_CONTAINER_METADATA_URI_V4` is set.
    pub async fn discover() -> Identity {
        let meta = match fetch().await {
            Ok(meta) => meta,
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        };
        let id = Identity::new(meta);
        tracing::info!(service = ?id.service, cluster = ?id.cluster, cpu = ?id.cpu_limit_cores, memory = ?id.memory_limit_bytes, "ECS task identity");
        id
    }
}

/// The task's metadata (`$ECS_CONTAINER_METADATA_URI_V4/task`): `None` outside ECS
/// (the variable unset), an error naming the URL when the endpoint fails or answers
/// something else than the documented JSON.
pub async fn fetch() -> Result<Option<TaskMetadata>, String> {
    let Some(base) = env(METADATA_ENV) else {
        return Ok(None);
    };
    let url = format!("{}/task", base.trim_end_matches('/'));
    match tokio::time::timeout(Duration::from_secs(3), crate::http::get(&url, 1 << 20)).await {
        Ok(Ok((200, body))) => serde_json::from_slice::<TaskMetadata>(&body)
            .map(Some)
            .map_err(|e| format!("ECS task metadata at {url} is not the documented JSON: {e}")),
        Ok(Ok((code, _))) => Err(format!(
            "ECS task metadata endpoint {url} answered HTTP {code}"
        )),
        Ok(Err(e)) => Err(format!("ECS task metadata endpoint {url} unreachable: {e}")),
        Err(_) => Err(format!(
            "ECS task metadata endpoint {url} did not answer within 3 s"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_task_response() {
        let body = r#"{
            "Cluster": "arn:aws:ecs:us-west-2:111122223333:cluster/default",
            "TaskARN": "arn:aws:ecs:us-west-2:111122223333:task/default/158d1c8083dd49d6b527399fd6414f5c",
            "Family": "curltest", "ServiceName": "MyService", "Revision": "26",
            "DesiredStatus": "RUNNING", "KnownStatus": "RUNNING",
            "Limits": { "CPU": 0.25, "Memory": 512 },
            "LaunchType": "FARGATE", "Containers": []
        }"#;
        let meta: TaskMetadata = serde_json::from_str(body).unwrap();
        let id = Identity::new(Some(meta));
        assert_eq!(id.cluster.as_deref(), Some("default"));
        assert_eq!(id.service.as_deref(), Some("MyService"));
        assert_eq!(id.cpu_limit_cores, Some(0.25));
        assert_eq!(id.memory_limit_bytes, Some(512 * 1024 * 1024));
        assert!(id.in_ecs);
    }
}
