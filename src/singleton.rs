//! `--singleton`: a scheduled job's run that starts while an earlier run of the same
//! job is still going ends at once (status 0), so overlapping runs cannot
//! double-process. bosun learns its own task (ARN, cluster, task definition family)
//! from the ECS task metadata endpoint and asks ECS, through the `bosun-aws` helper,
//! for the family's tasks in the cluster that ECS wants running and that were created
//! before this one.
//!
//! Outside ECS (no metadata endpoint) there is nothing to compare with and the worker
//! starts. In ECS a check that cannot be made (the endpoint, the helper or ECS
//! failing) is an error: a run that cannot tell whether another is going does not
//! start, since starting could double-process.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::LogFormat;
use crate::metrics::ecs;
use crate::metrics::helper::{Helper, Spec};
use crate::metrics::wire::Request;
use crate::supervise::reaper::Watches;

/// How long the helper may take to answer (its calls are bounded and retried).
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No earlier run is going: start the worker.
    Alone,
    /// Not in an ECS task: nothing to compare with; start the worker.
    NotInEcs,
    /// These earlier runs (task ARNs, oldest first) are still going: end this one.
    Earlier(Vec<String>),
}

/// Ask whether an earlier run of this task's family is still going.
pub fn check(helper: PathBuf, log_format: LogFormat, watches: Watches) -> Result<Verdict, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async {
        let Some(meta) = ecs::fetch().await? else {
            return Ok(Verdict::NotInEcs);
        };
        let missing = |field: &str| {
            format!("the ECS task metadata has no {field}: cannot tell this task's earlier runs")
        };
        let task_arn = meta.task_arn.ok_or_else(|| missing("TaskARN"))?;
        let cluster = meta.cluster.ok_or_else(|| missing("Cluster"))?;
        let family = meta.family.ok_or_else(|| missing("Family"))?;
        let mut helper = Helper::new(Spec::plain(helper, log_format), watches);
        let reply = helper
            .call(
                |id| Request::EarlierRuns {
                    id,
                    cluster: cluster.clone(),
                    family: family.clone(),
                    task_arn: task_arn.clone(),
                },
                ANSWER_WITHIN,
            )
            .await;
        helper.stop();
        let reply = reply.ok_or_else(|| {
            format!(
                "the AWS helper gave no answer within {} s about earlier runs of family {family}",
                ANSWER_WITHIN.as_secs()
            )
        })?;
        match (reply.earlier, reply.error) {
            (_, Some(e)) => Err(e),
            (Some(arns), None) if arns.is_empty() => Ok(Verdict::Alone),
            (Some(arns), None) => Ok(Verdict::Earlier(arns)),
            (None, None) => Err("the AWS helper's answer has no list of earlier runs".into()),
        }
    })
}
