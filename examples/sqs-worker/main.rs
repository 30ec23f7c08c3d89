//! A queue consumer that drains right on SIGTERM, to run under bosun.
//!
//! It long-polls SQS, processes each message, and deletes it only once processed.
//! While it holds messages it asks for ECS task scale-in protection (through bosun's
//! endpoint, `PUT /protection`, when running in ECS). On SIGTERM it stops polling,
//! finishes the messages in hand within its grace, and hands back the unfinished ones
//! with ChangeMessageVisibility(0), so nothing is lost and nothing waits out a
//! visibility timeout.
//!
//! Environment: QUEUE_URL (or STP_JOBS_QUEUE_URL), WORK_MS (time per message, default
//! 100), GRACE_SECS (default: BOSUN_STOP_TIMEOUT minus 1 s, else 10), OUT_FILE (append
//! one line per processed message body, for tests), and the standard AWS variables.

use std::io::Write;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_sqs::types::Message;
use tokio::signal::unix::{signal, SignalKind};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Ask bosun (and through it the ECS agent) for scale-in protection; best effort.
async fn protect(on: bool) {
    if env("ECS_AGENT_URI").is_none() {
        return;
    }
    let listen = env("BOSUN_LISTEN").unwrap_or_else(|| "127.0.0.1:9901".into());
    let body = if on {
        r#"{"ProtectionEnabled":true,"ExpiresInMinutes":60}"#
    } else {
        r#"{"ProtectionEnabled":false}"#
    };
    let req = format!("PUT /protection HTTP/1.1\r\nHost: {listen}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    if let Ok(mut s) = std::net::TcpStream::connect(&listen) {
        let _ = s.write_all(req.as_bytes());
    }
}

fn record(out: &Option<String>, body: &str) {
    if let Some(path) = out {
        // One write per line: O_APPEND keeps lines whole across processes.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f.write_all(format!("{body}\n").as_bytes());
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = env("QUEUE_URL")
        .or_else(|| env("STP_JOBS_QUEUE_URL"))
        .ok_or("QUEUE_URL is not set")?;
    let work = Duration::from_millis(env("WORK_MS").and_then(|v| v.parse().ok()).unwrap_or(100));
    let grace = env("GRACE_SECS")
        .and_then(|v| v.parse::<f64>().ok())
        .or_else(|| {
            env("BOSUN_STOP_TIMEOUT")
                .and_then(|v| v.parse::<f64>().ok())
                .map(|s| (s - 1.0).max(0.5))
        })
        .unwrap_or(10.0);
    let wait = env("WAIT_SECS").and_then(|v| v.parse().ok()).unwrap_or(20);
    let out = env("OUT_FILE");
    let sqs =
        aws_sdk_sqs::Client::new(&aws_config::defaults(BehaviorVersion::latest()).load().await);
    let mut term = signal(SignalKind::terminate())?;
    let mut stopping: Option<Instant> = None;
    let mut held: Vec<Message> = Vec::new();
    println!("worker: polling {url}");
    loop {
        if held.is_empty() {
            if stopping.is_some() {
                break;
            }
            let receive = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(wait)
                .send();
            tokio::pin!(receive);
            let received = tokio::select! {
                r = &mut receive => Some(r),
                _ = term.recv() => {
                    println!("worker: SIGTERM, stopping polling");
                    stopping = Some(Instant::now());
                    // Don't drop a receive in flight: what it brings would stay
                    // invisible until its timeout. Let it finish (within the grace).
                    tokio::time::timeout(Duration::from_secs_f64(grace), &mut receive).await.ok()
                }
            };
            match received {
                Some(Ok(r)) => {
                    held = r.messages.unwrap_or_default();
                    if !held.is_empty() {
                        protect(true).await;
                    }
                }
                Some(Err(e)) => {
                    eprintln!("worker: receive failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                None => {}
            }
            continue;
        }
        // Finish the messages in hand, one by one, until the grace runs out.
        let msg = held.remove(0);
        let done = async {
            tokio::time::sleep(work).await;
        };
        let deadline = stopping.map(|t| t + Duration::from_secs_f64(grace));
        let finished = tokio::select! {
            _ = done => true,
            _ = term.recv(), if stopping.is_none() => {
                println!("worker: SIGTERM, finishing what it holds");
                stopping = Some(Instant::now());
                tokio::time::sleep(work).await;
                true
            }
            _ = async { tokio::time::sleep_until(deadline.map_or_else(tokio::time::Instant::now, Into::into)).await }, if deadline.is_some() => false,
        };
        let receipt = msg.receipt_handle().unwrap_or_default().to_owned();
        if finished {
            record(&out, msg.body().unwrap_or_default());
            if let Err(e) = sqs
                .delete_message()
                .queue_url(&url)
                .receipt_handle(&receipt)
                .send()
                .await
            {
                eprintln!("worker: delete failed: {e}");
            }
        } else {
            held.insert(0, msg);
        }
        if stopping.is_some_and(|t| t.elapsed().as_secs_f64() >= grace) {
            // Out of time: hand back everything unfinished at once.
            for m in held.drain(..) {
                let _ = sqs
                    .change_message_visibility()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .visibility_timeout(0)
                    .send()
                    .await;
            }
        }
        if held.is_empty() {
            protect(false).await;
        }
    }
    println!("worker: stopped cleanly");
    Ok(())
}
