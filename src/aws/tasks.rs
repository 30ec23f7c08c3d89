//! Earlier runs of a task family (`--singleton`): the tasks of the family in the
//! cluster that ECS wants running (`ListTasks`, paged) and were created before this
//! one (`DescribeTasks`, 100 at a time). Ties in creation time go by task ARN, so of
//! two runs started in the same instant exactly one goes ahead.

use aws_sdk_ecs::types::DesiredStatus;

use super::{classify, describe, Failure};

/// `DescribeTasks` takes at most this many tasks.
const DESCRIBE_BATCH: usize = 100;

/// One task as the comparison needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub arn: String,
    /// Seconds since the epoch.
    pub created: f64,
    pub last_status: String,
}

/// Of `runs`, those before `own` (oldest first); an error when `own` is not among them.
pub fn before(runs: &[Run], own: &str) -> Result<Vec<String>, String> {
    let me = runs
        .iter()
        .find(|r| r.arn == own)
        .ok_or_else(|| format!("this task ({own}) is not among the family's running tasks"))?;
    let mut earlier: Vec<&Run> = runs
        .iter()
        .filter(|r| r.arn != own && r.last_status != "STOPPED")
        .filter(|r| (r.created, r.arn.as_str()) < (me.created, me.arn.as_str()))
        .collect();
    earlier.sort_by(|a, b| a.created.total_cmp(&b.created).then(a.arn.cmp(&b.arn)));
    Ok(earlier.into_iter().map(|r| r.arn.clone()).collect())
}

/// The tasks of `family` in `cluster` that ECS wants running and were created before
/// `own`.
pub async fn earlier_runs(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    family: &str,
    own: &str,
) -> Result<Vec<String>, (Failure, String)> {
    let mut arns = Vec::new();
    let mut pages = client
        .list_tasks()
        .cluster(cluster)
        .family(family)
        .desired_status(DesiredStatus::Running)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| (classify(&e), describe(&e)))?;
        arns.extend(page.task_arns().iter().cloned());
    }
    let mut runs = Vec::with_capacity(arns.len());
    for batch in arns.chunks(DESCRIBE_BATCH) {
        let out = client
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| (classify(&e), describe(&e)))?;
        if let Some(f) = out.failures().first() {
            // A task that stopped between the two calls is gone: not an earlier run.
            if f.reason() != Some("MISSING") {
                return Err((
                    Failure::Fatal,
                    format!(
                        "DescribeTasks: {}: {}",
                        f.arn().unwrap_or("?"),
                        f.reason().unwrap_or("?")
                    ),
                ));
            }
        }
        for t in out.tasks() {
            let (Some(arn), Some(created)) = (t.task_arn(), t.created_at()) else {
                continue;
            };
            runs.push(Run {
                arn: arn.to_owned(),
                created: created.as_secs_f64(),
                last_status: t.last_status().unwrap_or("").to_owned(),
            });
        }
    }
    before(&runs, own).map_err(|e| {
        (
            Failure::Fatal,
            format!("{e} (cluster {cluster}, family {family})"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(arn: &str, created: f64, status: &str) -> Run {
        Run {
            arn: arn.into(),
            created,
            last_status: status.into(),
        }
    }

    #[test]
    fn earlier_means_created_before_with_ties_by_arn() {
        let runs = [
            run("t/c", 10.0, "RUNNING"),
            run("t/a", 5.0, "RUNNING"),
            run("t/b", 10.0, "PENDING"),
            run("t/d", 20.0, "RUNNING"),
            run("t/z", 1.0, "STOPPED"),
        ];
        assert_eq!(before(&runs, "t/c").unwrap(), ["t/a", "t/b"]);
        assert_eq!(before(&runs, "t/b").unwrap(), ["t/a"]);
        assert!(before(&runs, "t/a").unwrap().is_empty());
        assert!(before(&runs, "t/x").unwrap_err().contains("t/x"));
    }
}
