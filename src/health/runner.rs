//! The health check loop: run the check every interval (Docker: the first one an
//! interval after the start, each next one an interval after the previous ended), feed
//! the state machine, publish the report, and act once when the worker turns unhealthy.
//! Log lines name what is watched: the worker, or in a sidecar the check's target.

use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use super::{Config, Machine, Transition};
use crate::config::OnUnhealthy;
use crate::state::Shared;
use crate::supervise::events::{Request, Requests};
use crate::supervise::reaper::Watches;

/// Run checks until the supervisor stops.
pub async fn run(
    cfg: Config,
    subject: String,
    action: OnUnhealthy,
    shared: Arc<Shared>,
    requests: Requests,
    watches: Watches,
) {
    let mut machine = Machine::new(cfg.retries, cfg.start_period, shared.started());
    let mut restarts = shared.restarts();
    shared.update(|s| s.health = Some(machine.report()));
    loop {
        tokio::time::sleep(cfg.interval).await;
        if shared.stopping() {
            return;
        }
        if restarts.has_changed().unwrap_or(false) {
            // A new worker: a new start period, back to `starting`.
            restarts.borrow_and_update();
            machine.reset(Instant::now());
        }
        let outcome = cfg.check.run(cfg.timeout, &watches).await;
        let ok = outcome.ok;
        let transition = machine.record(outcome, Instant::now());
        let report = machine.report();
        shared.update(|s| s.health = Some(report.clone()));
        match transition {
            Transition::None if !ok => {
                warn!(watched = %subject, streak = report.failing_streak, output = %report.last_output.trim_end(), "health check failed");
            }
            Transition::None => {}
            Transition::BecameHealthy => info!("{subject} is healthy"),
            Transition::BecameUnhealthy => {
                let output = report.last_output.trim_end().to_owned();
                warn!(action = ?action, %output, "{subject} is unhealthy");
                let reason = format!("unhealthy: {output}");
                match action {
                    OnUnhealthy::Exit => {
                        requests.send(Request::Stop {
                            reason,
                            code: Some(1),
                        });
                    }
                    OnUnhealthy::Restart => {
                        requests.send(Request::Restart { reason });
                    }
                    OnUnhealthy::Ignore => {}
                }
            }
        }
    }
}
