//! bosun-deploy: from one stack file to a running ECS service with bosun wired in.
//! [`yaml`] (parsing with positions), [`stack`] (the model), [`validate`] (every
//! problem at once), [`schedule`] (cron/rate/at), [`render`] (pure: stack → typed
//! resources, the exact AWS API inputs), [`engine`] (one reconciler: read, compare,
//! create/update/delete along the dependency graph) over [`resources`] (one file per
//! AWS resource kind), [`plan`] (what will change, as data), [`apply`] (connect,
//! preflight, wait, status, logs), [`error`] (typed errors and exit codes).

// The stack file (feature `stack`: no AWS code).
pub mod instance_types;
pub mod schedule;
pub mod stack;
pub mod validate;
pub mod yaml;

// Everything that renders for and talks to AWS (feature `deploy`).
#[cfg(feature = "deploy")]
pub mod apply;
#[cfg(feature = "deploy")]
pub mod aws;
#[cfg(feature = "deploy")]
pub mod buildpack;
#[cfg(feature = "deploy")]
pub mod engine;
#[cfg(feature = "deploy")]
pub mod error;
#[cfg(feature = "deploy")]
pub mod inject;
#[cfg(feature = "deploy")]
pub mod package;
#[cfg(feature = "deploy")]
pub mod plan;
#[cfg(feature = "deploy")]
pub mod registry;
#[cfg(feature = "deploy")]
pub mod render;
#[cfg(feature = "deploy")]
pub mod resources;
