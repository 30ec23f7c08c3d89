//! bosun: a small PID-1 supervisor for containers that run background workers.
//!
//! The binaries are thin; this library holds the logic: [`config`] (options),
//! [`supervise`] (process, signals, reaping, stop sequence), [`state`] (what the
//! supervisor shares with the endpoint and the metrics) and [`logging`].

pub mod config;
pub mod logging;
pub mod state;
pub mod supervise;
