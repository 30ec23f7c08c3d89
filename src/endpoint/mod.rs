//! The health and metrics endpoint (axum): `/livez`, `/readyz`, `/status`, `/metrics`.
//! It runs on the services thread, reads the supervisor's shared state and never takes
//! part in signal handling or reaping. Connections are capped and header reads are
//! bounded, so slow or malformed clients cost a fixed amount of memory and cannot
//! starve `/livez`.

pub mod prometheus;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as AxState;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;

use crate::health::Status as Health;
use crate::state::{Phase, Shared, State};
use crate::supervise::status::Exit;

/// At most this many connections are served at once; more are closed on accept.
pub const MAX_CONNECTIONS: usize = 256;
/// A client must send a request's headers within this time.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The routes, over the supervisor's shared state; `PUT /protection` goes through the
/// keeper, which renews what it sets.
pub fn router(shared: Arc<Shared>, keeper: crate::protect::Keeper) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/protection", axum::routing::put(protection))
        .layer(axum::Extension(keeper))
        .with_state(shared)
}

/// Serve `router` on an already bound listener until the runtime ends.
pub async fn serve(listener: std::net::TcpListener, router: Router) {
    let listener = match listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(listener))
    {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "endpoint cannot serve");
            return;
        }
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, most likely: back off instead of spinning.
                tracing::warn!(error = %e, "endpoint accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("endpoint connection limit reached; connection closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
            drop(slot);
        });
    }
}

async fn livez(AxState(shared): AxState<Arc<Shared>>) -> Response {
    let st = shared.snapshot();
    match st.phase {
        Phase::Starting | Phase::Running | Phase::Stopping => {
            (StatusCode::OK, "ok\n").into_response()
        }
        Phase::BackingOff | Phase::Exited => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "live": false, "reason": format!("worker {}", st.phase.as_str()) })),
        )
            .into_response(),
    }
}

/// Why the worker is not ready, or `None` when it is.
pub fn not_ready_reason(st: &State) -> Option<String> {
    match st.phase {
        Phase::Stopping | Phase::Exited => return Some("stopping".into()),
        Phase::BackingOff => return Some("worker not running (restart back-off)".into()),
        Phase::Starting | Phase::Running => {}
    }
    match &st.health {
        None => None,
        Some(h) => match h.status {
            Health::Healthy => None,
            Health::Starting => Some("starting: no successful health check yet".into()),
            Health::Unhealthy => Some(format!("unhealthy: {}", h.last_output.trim_end())),
        },
    }
}

/// What `bosun probe` (ECS's and Docker's health check) fails on: as `/readyz`, except
/// that a worker restarted in place is not failed while its new start period runs.
/// ECS gives a container one start period, at its start; a restart in place is
/// bosun's own recovery, and failures counted against it would mark the container
/// UNHEALTHY and have ECS replace the whole task (ECS API reference, HealthCheck:
/// startPeriod). bosun's own checks still judge the new worker.
pub fn probe_failure(st: &State) -> Option<String> {
    let restarted = st.restarts > 0 && matches!(st.phase, Phase::Starting | Phase::Running);
    match &st.health {
        Some(h) if h.status == Health::Starting && restarted => None,
        _ => not_ready_reason(st),
    }
}

async fn readyz(AxState(shared): AxState<Arc<Shared>>, uri: axum::http::Uri) -> Response {
    let st = shared.snapshot();
    let probe = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "probe"));
    let reason = if probe {
        probe_failure(&st)
    } else {
        not_ready_reason(&st)
    };
    match reason {
        None => (StatusCode::OK, Json(json!({ "ready": true }))).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": reason })),
        )
            .into_response(),
    }
}

fn exit_json(exit: Option<Exit>) -> serde_json::Value {
    match exit {
        None => serde_json::Value::Null,
        Some(Exit::Code(c)) => json!({ "code": c }),
        Some(Exit::Signal(s)) => json!({ "signal": crate::supervise::signals::name(s) }),
    }
}

async fn status(AxState(shared): AxState<Arc<Shared>>) -> Response {
    let st = shared.snapshot();
    let body = json!({
        "worker": if st.has_worker {
            json!({
                "pid": st.worker_pid,
                "state": st.phase.as_str(),
                "restarts": st.restarts,
                "last_exit": exit_json(st.last_exit),
            })
        } else {
            serde_json::Value::Null
        },
        "ready": not_ready_reason(&st).is_none(),
        "health": st.health.as_ref().map(|h| {
            let mut v = json!(h);
            v["last_check_age_secs"] = json!(h.last_check.map(|t| t.elapsed().as_secs_f64()));
            v
        }),
        "uptime_secs": shared.started().elapsed().as_secs_f64(),
        "orphans_reaped": st.orphans_reaped,
        "last_metrics": st.last_sample,
    });
    Json(body).into_response()
}

/// `PUT /protection` with `{"ProtectionEnabled": bool, "ExpiresInMinutes": n}` (the
/// agent's own shape, minutes 1..=2880, default 60): passed on to the ECS agent, so a
/// worker can ask over loopback, and kept renewed until turned off (the answer's
/// `Renewed`).
async fn protection(
    axum::Extension(keeper): axum::Extension<crate::protect::Keeper>,
    body: axum::body::Bytes,
) -> Response {
    let bad = |e: String| (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))).into_response();
    let v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(format!("not JSON: {e}")),
    };
    let Some(enabled) = v["ProtectionEnabled"].as_bool() else {
        return bad("ProtectionEnabled (true/false) is required".into());
    };
    let minutes = match &v["ExpiresInMinutes"] {
        serde_json::Value::Null => crate::protect::DEFAULT_MINUTES,
        m => match m.as_u64().filter(|m| (1..=2880).contains(m)) {
            Some(m) => m as u32,
            None => return bad(format!("ExpiresInMinutes must be 1..=2880, not {m}")),
        },
    };
    if let Err(e) = crate::protect::agent_uri() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": e }))).into_response();
    }
    match keeper.set(enabled, minutes).await {
        Ok(p) => Json(json!({
            "ProtectionEnabled": p.enabled,
            "ExpirationDate": p.expiration,
            "Renewed": p.enabled,
        }))
        .into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({ "error": e }))).into_response(),
    }
}

async fn metrics(AxState(shared): AxState<Arc<Shared>>) -> Response {
    let st = shared.snapshot();
    let body = prometheus::render(&st, shared.started().elapsed());
    ([(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)], body).into_response()
}
