//! bosun-deploy: from one stack file to a running ECS service with bosun wired in.
//! [`yaml`] (parsing with positions), [`stack`] (the model), [`validate`] (every
//! problem at once), [`schedule`] (cron/rate/at), [`render`] (pure: stack → the AWS
//! API inputs), [`apply`] (create, update, diff, status, delete against AWS).

pub mod apply;
pub mod inject;
pub mod render;
pub mod schedule;
pub mod stack;
pub mod validate;
pub mod yaml;
