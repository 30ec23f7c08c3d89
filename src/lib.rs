//! bosun: a small PID-1 supervisor for containers that run background workers.
//!
//! The binaries are thin; this library holds the logic: [`config`] (options),
//! [`supervise`] (process, signals, reaping, stop sequence), [`health`] (checks and
//! their state machine), [`endpoint`] (the HTTP endpoint), [`services`] (the thread
//! that runs endpoint and checks beside the supervisor), [`state`] (what the
//! supervisor shares with them), [`metrics`] (sampling and sinks), [`singleton`] (one run of a job at a time), [`http`] (plain
//! HTTP GETs), [`resolve`] (host names without glibc's NSS) and [`logging`]; `aws` holds all that links the AWS SDK, which bosun
//! itself never does: the `bosun-aws` helper process and the deployer's calls.

#[cfg(feature = "aws")]
pub mod aws;
pub mod civil;
pub mod config;
#[cfg(feature = "stack")]
pub mod deploy;
pub mod endpoint;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod protect;
pub mod resolve;
pub mod services;
pub mod singleton;
pub mod state;
pub mod supervise;
