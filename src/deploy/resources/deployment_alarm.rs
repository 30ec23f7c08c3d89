//! A service's deployment alarm (`{service}-dead-letters`): a CloudWatch metric alarm
//! that ECS watches while the service deploys, to fail and roll the deployment back.
//! It is an [`Alarm`] in AWS, and a kind of its own here: the service depends on it
//! (it must exist before the service names it), while the scale-to-zero alarms
//! depend on the service's scaling policies; one kind could not be ordered both
//! ways.

use std::collections::BTreeSet;

use serde::Serialize;

use super::alarm::{is_deployment_alarm, list_owned_where, Alarm};
use crate::deploy::engine::error::Result;
use crate::deploy::engine::{Ctx, Kind, Observed, Owned};

#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct DeploymentAlarm(pub Alarm);

impl Kind for DeploymentAlarm {
    const KIND: &'static str = "deployment alarm";
    const PLURAL: &'static str = "deploymentAlarms";

    fn name(&self) -> String {
        self.0.name()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        Ok(self.0.read(ctx).await?.map(DeploymentAlarm))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        self.0.create(ctx).await
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        self.0.update(&have.0, ctx).await
    }

    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        list_owned_where(ctx, wanted, is_deployment_alarm).await
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        Alarm::delete(owned, ctx).await
    }
}
