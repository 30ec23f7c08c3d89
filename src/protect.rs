//! ECS task scale-in protection through the ECS agent's documented API
//! (`PUT $ECS_AGENT_URI/task-protection/v1/state`): a worker holding a message asks
//! for protection so that a scale-in does not pick its task, and drops it when done.

use std::time::Duration;

use serde_json::{json, Value};

/// The variable ECS sets with the agent's base URI.
pub const AGENT_ENV: &str = "ECS_AGENT_URI";

/// What the agent answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Protection {
    pub enabled: bool,
    pub expiration: Option<String>,
}

/// Set (or clear) protection; `minutes` defaults to the agent's own (2 hours).
pub async fn set(
    agent_uri: &str,
    enabled: bool,
    minutes: Option<u32>,
) -> Result<Protection, String> {
    let url = format!(
        "{}/task-protection/v1/state",
        agent_uri.trim_end_matches('/')
    );
    let mut body = json!({ "ProtectionEnabled": enabled });
    if let (true, Some(m)) = (enabled, minutes) {
        body["ExpiresInMinutes"] = json!(m);
    }
    let call = crate::http::request(hyper::Method::PUT, &url, Some(body.to_string()), 64 * 1024);
    let (code, bytes) = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .map_err(|_| format!("{url}: no answer within 10 s"))??;
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{url}: HTTP {code}, not JSON: {e}"))?;
    if let Some(f) = v.get("failure").filter(|f| !f.is_null()) {
        return Err(format!(
            "{url}: failure: {} {}",
            f["Reason"].as_str().unwrap_or(""),
            f["Detail"].as_str().unwrap_or("")
        ));
    }
    if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
        return Err(format!(
            "{url}: error: {} {}",
            e["Code"].as_str().unwrap_or(""),
            e["Message"].as_str().unwrap_or("")
        ));
    }
    if !(200..300).contains(&code) {
        return Err(format!("{url}: HTTP {code}"));
    }
    let p = &v["protection"];
    Ok(Protection {
        enabled: p["ProtectionEnabled"].as_bool().unwrap_or(enabled),
        expiration: p["ExpirationDate"].as_str().map(str::to_owned),
    })
}

/// The agent URI from the environment.
pub fn agent_uri() -> Result<String, String> {
    std::env::var(AGENT_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{AGENT_ENV} is not set: task protection needs the ECS agent (run inside an ECS task)"))
}
