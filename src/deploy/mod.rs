//! bosun-deploy: from one stack file to a running ECS service with bosun wired in.
//! [`yaml`] (parsing with positions), [`stack`] (the model), [`validate`] (every
//! problem at once), [`schedule`] (cron/rate/at), [`render`] (pure: stack → typed
//! resources, the exact AWS API inputs), [`engine`] (one reconciler: read, compare,
//! create/update/delete along the dependency graph) over [`resources`] (one file per
//! AWS resource kind), [`plan`] (what will change, as data), [`apply`] (connect,
//! preflight, wait, status, logs), [`error`] (typed errors and exit codes).

pub mod apply;
pub mod aws;
pub mod engine;
pub mod error;
pub mod inject;
pub mod plan;
pub mod render;
pub mod resources;
pub mod schedule;
pub mod stack;
pub mod validate;
pub mod yaml;
