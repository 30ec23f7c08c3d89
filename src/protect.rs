//! ECS task scale-in protection through the ECS agent's documented API
//! (`PUT $ECS_AGENT_URI/task-protection/v1/state`): a worker holding a message asks
//! for protection so that a scale-in does not pick its task, and drops it when done.
//!
//! Asked through bosun's endpoint (`PUT /protection`, or `bosun protect` which goes
//! there), the protection lasts as long as the work: the [`Keeper`] renews it before it
//! expires until the worker turns it off, the worker is restarted, or bosun exits.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};

/// The variable ECS sets with the agent's base URI.
pub const AGENT_ENV: &str = "ECS_AGENT_URI";

/// The protection asked for when no length is given (minutes).
pub const DEFAULT_MINUTES: u32 = 60;

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

/// Ask bosun's endpoint (`PUT URL`, its `/protection`), which passes it on to the agent
/// and keeps it renewed.
pub async fn through_endpoint(
    url: &str,
    enabled: bool,
    minutes: u32,
) -> Result<Protection, String> {
    let body = json!({ "ProtectionEnabled": enabled, "ExpiresInMinutes": minutes });
    let call = crate::http::request(hyper::Method::PUT, url, Some(body.to_string()), 64 * 1024);
    // The endpoint waits for the agent (10 s at most).
    let (code, bytes) = tokio::time::timeout(Duration::from_secs(15), call)
        .await
        .map_err(|_| format!("{url}: no answer within 15 s"))??;
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{url}: HTTP {code}, not JSON: {e}"))?;
    if !(200..300).contains(&code) {
        return Err(v["error"]
            .as_str()
            .map_or_else(|| format!("{url}: HTTP {code}"), str::to_owned));
    }
    Ok(Protection {
        enabled: v["ProtectionEnabled"].as_bool().unwrap_or(enabled),
        expiration: v["ExpirationDate"].as_str().map(str::to_owned),
    })
}

/// The agent URI from the environment.
pub fn agent_uri() -> Result<String, String> {
    std::env::var(AGENT_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{AGENT_ENV} is not set: task protection needs the ECS agent (run inside an ECS task)"))
}

/// What the keeper is asked.
enum Ask {
    Set {
        enabled: bool,
        minutes: u32,
        reply: oneshot::Sender<Result<Protection, String>>,
    },
    Release {
        done: std::sync::mpsc::Sender<()>,
    },
}

/// The endpoint's and the supervisor's handle on the keeper task ([`keeper`]).
#[derive(Clone)]
pub struct Keeper {
    asks: mpsc::UnboundedSender<Ask>,
    /// Whether there is anything to clear at exit (bosun's exit does not wait for the
    /// services thread otherwise).
    state: std::sync::Arc<Flags>,
}

/// Asks sent and not yet answered, and whether protection is held.
#[derive(Default)]
struct Flags {
    pending: std::sync::atomic::AtomicUsize,
    held: std::sync::atomic::AtomicBool,
}

impl Keeper {
    /// Turn protection on (kept renewed) or off, as the agent answers.
    pub async fn set(&self, enabled: bool, minutes: u32) -> Result<Protection, String> {
        let (reply, answer) = oneshot::channel();
        // Counted before it is sent, uncounted once the keeper has acted on it: an exit
        // meanwhile waits for it.
        self.state
            .pending
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.asks
            .send(Ask::Set {
                enabled,
                minutes,
                reply,
            })
            .map_err(|_| "bosun is exiting".to_owned())?;
        answer.await.map_err(|_| "bosun is exiting".to_owned())?
    }

    /// From the supervisor thread as bosun exits: protection held is cleared, waiting at
    /// most until `deadline` (and at least a second, for a loopback call).
    pub fn release(&self, deadline: Instant) {
        use std::sync::atomic::Ordering::SeqCst;
        if self.state.pending.load(SeqCst) == 0 && !self.state.held.load(SeqCst) {
            return;
        }
        let bound = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        let (done, wait) = std::sync::mpsc::channel();
        if self.asks.send(Ask::Release { done }).is_ok() {
            let _ = wait.recv_timeout(bound);
        }
    }
}

/// Protection held: when it expires, when to renew it, and when the minutes the
/// worker asked for run out.
struct Held {
    expires: Instant,
    renew: Instant,
    /// The end of what the worker asked for: no renewal reaches past it. A worker
    /// that hangs (and no health check stops it) would otherwise hold its task
    /// against every deployment and scale-in for as long as bosun lives; one that is
    /// still working asks again.
    until: Instant,
}

impl Held {
    /// After the agent granted it: renewed when half of it has run, while the minutes
    /// asked last. Its length is the shorter of what is left of them and the agent's
    /// `ExpirationDate`, so that a clock or an agent granting less does not let it
    /// lapse early.
    fn granted(until: Instant, p: &Protection) -> Held {
        let now = Instant::now();
        let asked = until.saturating_duration_since(now);
        let by_date = p
            .expiration
            .as_deref()
            .and_then(parse_utc)
            .and_then(|t| t.duration_since(SystemTime::now()).ok())
            .filter(|d| !d.is_zero());
        let length = by_date.map_or(asked, |d| d.min(asked));
        Held {
            expires: now + length,
            renew: now + length / 2,
            until,
        }
    }

    /// Whether a renewal is still within the minutes asked (it is not worth one for
    /// the last few seconds).
    fn renewable(&self) -> bool {
        self.until.saturating_duration_since(self.expires) >= Duration::from_secs(1)
    }

    /// The minutes a renewal asks for: what is left of those asked, rounded up (the
    /// agent takes whole minutes, at least 1).
    fn minutes_left(&self) -> u32 {
        let left = self
            .until
            .saturating_duration_since(Instant::now())
            .as_secs();
        u32::try_from(left.div_ceil(60).max(1)).unwrap_or(u32::MAX)
    }

    /// After a failed renewal: again in a quarter of what is left (1 to 30 s).
    fn retry(&mut self) {
        let left = self.expires.saturating_duration_since(Instant::now());
        self.renew =
            Instant::now() + (left / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    }
}

/// The keeper's handle and its task (run it on the services runtime). `restarts`
/// changes at each restart of the worker: the work the last one held is gone, and so
/// is its protection.
pub fn keeper(
    restarts: watch::Receiver<u64>,
) -> (
    Keeper,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = std::sync::Arc::new(Flags::default());
    let keeper = Keeper {
        asks: tx,
        state: state.clone(),
    };
    (keeper, keep(rx, restarts, state))
}

async fn keep(
    mut asks: mpsc::UnboundedReceiver<Ask>,
    mut restarts: watch::Receiver<u64>,
    flags: std::sync::Arc<Flags>,
) {
    use std::sync::atomic::Ordering::SeqCst;
    let mut held: Option<Held> = None;
    loop {
        flags.held.store(held.is_some(), SeqCst);
        let renew = held.as_ref().map(|h| h.renew);
        tokio::select! {
            ask = asks.recv() => match ask {
                None => return,
                Some(Ask::Set { enabled, minutes, reply }) => {
                    let result = call(enabled, minutes).await;
                    match (&result, enabled) {
                        (Ok(p), true) => {
                            let until = Instant::now() + Duration::from_secs(u64::from(minutes) * 60);
                            let h = Held::granted(until, p);
                            tracing::info!(
                                until = p.expiration.as_deref().unwrap_or("?"),
                                minutes,
                                renew_in_secs = h.renew.saturating_duration_since(Instant::now()).as_secs(),
                                "task protection on: renewed until it is turned off or the minutes asked run out"
                            );
                            held = Some(h);
                        }
                        (Ok(_), false) => {
                            tracing::info!("task protection off");
                            held = None;
                        }
                        // The worker is done either way: no more renewals.
                        (Err(_), false) => held = None,
                        (Err(_), true) => {}
                    }
                    flags.held.store(held.is_some(), SeqCst);
                    flags.pending.fetch_sub(1, SeqCst);
                    let _ = reply.send(result);
                }
                Some(Ask::Release { done }) => {
                    if held.take().is_some() {
                        release("bosun is exiting").await;
                    }
                    let _ = done.send(());
                }
            },
            () = sleep_until(renew), if renew.is_some() => {
                let Some(h) = held.as_mut() else { continue };
                if !h.renewable() {
                    // Held (and cleared at exit) until it expires; then gone.
                    if Instant::now() < h.expires {
                        tracing::info!(
                            "task protection not renewed: the minutes asked have run out (the worker asks again to keep it)"
                        );
                        h.renew = h.expires;
                    } else {
                        held = None;
                    }
                    continue;
                }
                match call(true, h.minutes_left()).await {
                    Ok(p) => {
                        tracing::debug!(until = p.expiration.as_deref().unwrap_or("?"), "task protection renewed");
                        *h = Held::granted(h.until, &p);
                    }
                    Err(e) => {
                        h.retry();
                        tracing::warn!(
                            error = %e,
                            left_secs = h.expires.saturating_duration_since(Instant::now()).as_secs(),
                            retry_in_secs = h.renew.saturating_duration_since(Instant::now()).as_secs(),
                            "task protection renewal failed"
                        );
                    }
                }
            },
            Ok(()) = restarts.changed() => {
                if held.take().is_some() {
                    release("the worker was restarted").await;
                }
            },
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// Clear protection held, logging why.
async fn release(why: &str) {
    match call(false, 0).await {
        Ok(_) => tracing::info!("task protection off: {why}"),
        Err(e) => tracing::warn!(error = %e, "task protection could not be cleared ({why})"),
    }
}

async fn call(enabled: bool, minutes: u32) -> Result<Protection, String> {
    set(&agent_uri()?, enabled, Some(minutes)).await
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z`, the agent's `ExpirationDate`, as a time.
fn parse_utc(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let days = crate::civil::days_from(y, m as u32, day as u32);
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_dates_parse_as_utc() {
        let at =
            |s| parse_utc(s).map(|t| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(at("2026-11-24T12:00:00.000Z"), Some(1_795_521_600));
        assert_eq!(at("2000-02-29T23:59:59Z"), Some(951_868_799));
        assert_eq!(at("2026-11-24T12:00:00"), None);
        assert_eq!(at("2026-13-01T00:00:00Z"), None);
        assert_eq!(at("soon"), None);
    }

    #[test]
    fn renewal_comes_at_half_of_the_shorter_length() {
        let in_secs = |s: u64| {
            let t = SystemTime::now() + Duration::from_secs(s);
            let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
            // Back to the agent's format through the parser's inverse, checked above.
            let days = secs / 86_400;
            let (y, m, d) = crate::civil::from_days(days as i64);
            let r = secs % 86_400;
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
                r / 3600,
                r / 60 % 60,
                r % 60
            )
        };
        let p = |exp: Option<String>| Protection {
            enabled: true,
            expiration: exp,
        };
        let half = |h: &Held| h.renew.saturating_duration_since(Instant::now()).as_secs();
        let asked = |minutes: u64| Instant::now() + Duration::from_secs(minutes * 60);
        // The agent grants 10 minutes of the 60 asked: renewal after about 5.
        let h = Held::granted(asked(60), &p(Some(in_secs(600))));
        assert!((298..=300).contains(&half(&h)), "{}", half(&h));
        assert!(h.renewable());
        assert_eq!(h.minutes_left(), 60);
        // A date in the past or none: the minutes asked.
        assert_eq!(
            half(&Held::granted(
                asked(2),
                &p(Some("2020-01-01T00:00:00Z".into()))
            )) / 10,
            5
        );
        let h = Held::granted(asked(2), &p(None));
        assert_eq!(half(&h) / 10, 5);
        // Granted all that was asked: nothing left to renew for.
        assert!(!h.renewable());
    }
}
