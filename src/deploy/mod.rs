//! bosun-deploy: from one stack file to a running ECS service with bosun wired in.
//!
//! Layers that import downward only, each a folder:
//! - [`stack`]: the stack file (syntax with positions, model, validation, schedules,
//!   instance sizes); no AWS code, what the fuzz targets build.
//! - [`components`]: one file per thing a user writes or a feature adds (worker
//!   service, scheduled job, queue, EC2 capacity, scale to zero, ...), each turning its
//!   part of the stack into nodes of AWS kinds, with its own defaults. Pure: no call.
//! - [`resources`]: one file per AWS kind (read, create, update, list what the stack
//!   owns, delete, what it cannot change in place), registered in one list.
//! - [`engine`]: the plan and the one reconciler (order from the dependency graph),
//!   the run's context, errors and exit codes, the SDK clients.
//! - [`naming`], at the bottom: every name, tag and ARN the deployer makes, once.
//!
//! Beside them: [`images`] (build, inject, buildpacks, registry) and [`ops`] (connect,
//! preflight, plan, wait, status, logs, and the day-2 verbs run, tasks, rollback,
//! exec), which the binary dispatches to.

// The stack file (feature `stack`: no AWS code).
pub mod stack;

// Everything that renders for and talks to AWS (feature `deploy`).
#[cfg(feature = "deploy")]
pub mod components;
#[cfg(feature = "deploy")]
pub mod engine;
#[cfg(feature = "deploy")]
pub mod images;
#[cfg(feature = "deploy")]
pub mod naming;
#[cfg(feature = "deploy")]
pub mod ops;
#[cfg(feature = "deploy")]
pub mod resources;
