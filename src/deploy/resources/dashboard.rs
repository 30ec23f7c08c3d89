//! CloudWatch dashboards (one per worker service). Dashboards take no tags: the body
//! carries the owner, as a text widget naming the stack, and only a dashboard whose
//! body names this stack is the stack's.

use std::collections::BTreeSet;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::deploy::engine::error::{absent_on, failed, Result};
use crate::deploy::engine::{keep_owned, Ctx, Kind, Observed, Owned};

const NOT_FOUND: &[&str] = &["ResourceNotFound", "ResourceNotFoundException"];

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dashboard {
    pub dashboard_name: String,
    /// Sent as a JSON string, compared as JSON.
    #[serde(serialize_with = "as_text")]
    pub dashboard_body: Value,
}

fn as_text<S: Serializer>(v: &Value, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

/// The text widget that marks a dashboard as the stack's.
pub fn owner_widget(stack: &str) -> Value {
    serde_json::json!({
        "type": "text", "x": 0, "y": 12, "width": 24, "height": 1,
        "properties": { "markdown": owner_text(stack) }
    })
}

fn owner_text(stack: &str) -> String {
    format!(
        "Managed by bosun-deploy: {}={stack}",
        crate::deploy::naming::STACK_TAG
    )
}

fn is_ours(ctx: &Ctx, body: &Value) -> bool {
    let mark = owner_text(&ctx.stack);
    body["widgets"].as_array().is_some_and(|w| {
        w.iter()
            .any(|w| w["properties"]["markdown"].as_str() == Some(mark.as_str()))
    })
}

async fn body(ctx: &Ctx, name: &str) -> Result<Option<Value>> {
    let out = ctx
        .aws
        .cloudwatch
        .get_dashboard()
        .dashboard_name(name)
        .send()
        .await;
    Ok(
        absent_on(out, NOT_FOUND, "CloudWatch GetDashboard", name)?.map(|d| {
            d.dashboard_body()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null)
        }),
    )
}

impl Kind for Dashboard {
    const KIND: &'static str = "dashboard";
    const PLURAL: &'static str = "dashboards";
    const DEPENDS_ON: &'static [&'static str] = &[super::service::Service::KIND];

    fn name(&self) -> String {
        self.dashboard_name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let Some(b) = body(ctx, &self.dashboard_name).await? else {
            return Ok(Observed::Absent);
        };
        if !is_ours(ctx, &b) {
            return Ok(Observed::Foreign(
                "its body does not name this stack".into(),
            ));
        }
        Ok(Observed::Present(Dashboard {
            dashboard_name: self.dashboard_name.clone(),
            dashboard_body: b,
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        ctx.aws
            .cloudwatch
            .put_dashboard()
            .dashboard_name(&self.dashboard_name)
            .dashboard_body(self.dashboard_body.to_string())
            .send()
            .await
            .map_err(failed("CloudWatch PutDashboard", &self.dashboard_name))?;
        Ok(())
    }

    async fn update(&self, _have: &Self, ctx: &Ctx) -> Result<()> {
        self.create(ctx).await
    }

    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let prefix = format!("{}-", ctx.stack);
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        // ListDashboards pages by NextToken (the SDK has no paginator for it).
        loop {
            let page = ctx
                .aws
                .cloudwatch
                .list_dashboards()
                .dashboard_name_prefix(&prefix)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(failed("CloudWatch ListDashboards", &prefix))?;
            names.extend(
                page.dashboard_entries()
                    .iter()
                    .filter_map(|d| d.dashboard_name().map(str::to_owned)),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        let candidates = names.into_iter().map(|n| (n, String::new()));
        keep_owned(candidates, wanted, |name, _| async move {
            Ok(body(ctx, &name).await?.is_some_and(|b| is_ours(ctx, &b)))
        })
        .await
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .cloudwatch
            .delete_dashboards()
            .dashboard_names(&owned.name)
            .send()
            .await;
        absent_on(out, NOT_FOUND, "CloudWatch DeleteDashboards", &owned.name)?;
        Ok(())
    }
}
