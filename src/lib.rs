//! bosun: a small PID-1 supervisor for containers that run background workers.
//!
//! The binaries are thin; this library holds the logic: [`config`] (options),
//! [`supervise`] (process, signals, reaping, stop sequence), [`health`] (checks and
//! their state machine), [`endpoint`] (the HTTP endpoint), [`services`] (the thread
//! that runs endpoint and checks beside the supervisor), [`state`] (what the
//! supervisor shares with them), [`http`] (the probe's client) and [`logging`].

pub mod config;
pub mod endpoint;
pub mod health;
pub mod http;
pub mod logging;
pub mod services;
pub mod state;
pub mod supervise;
