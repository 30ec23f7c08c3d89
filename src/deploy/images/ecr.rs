//! Logging in to registries with what AWS holds: the account's ECR registry (a token
//! from GetAuthorizationToken) and a private registry's credentials (a Secrets Manager
//! secret, as ECS reads it).

use crate::deploy::engine::error::{failed, DeployError, Result};
use crate::deploy::engine::Ctx;

/// The account's ECR registry: its host (from the authorization's endpoint) and a
/// user and password that log in to it for 12 hours (GetAuthorizationToken: a read,
/// made once a run).
pub async fn ecr_login(ctx: &Ctx) -> Result<std::sync::Arc<(String, String, String)>> {
    ctx.once("ecr-login".into(), || read_ecr_login(ctx)).await
}

async fn read_ecr_login(ctx: &Ctx) -> Result<(String, String, String)> {
    let out = ctx
        .aws
        .ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(failed("ECR GetAuthorizationToken", &ctx.account))?;
    let bad = |why: &str| DeployError::Unexpected {
        call: "ECR GetAuthorizationToken",
        what: why.to_owned(),
    };
    let data = out
        .authorization_data()
        .first()
        .ok_or_else(|| bad("no authorization"))?;
    let token = data.authorization_token().ok_or_else(|| bad("no token"))?;
    let decoded =
        aws_smithy_types::base64::decode(token).map_err(|_| bad("a token that is not base64"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad("a token that is not text"))?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| bad("a token without a user"))?;
    let endpoint = data.proxy_endpoint().ok_or_else(|| bad("no endpoint"))?;
    let host = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, h)| h)
        .trim_end_matches('/')
        .to_owned();
    Ok((host, user.to_owned(), password.to_owned()))
}

/// The user name and password of a private registry, from the Secrets Manager secret
/// ECS pulls with (`{"username": …, "password": …}`).
pub async fn registry_credentials(ctx: &Ctx, arn: &str) -> Result<(String, String)> {
    let v: serde_json::Value =
        serde_json::from_str(&secret_string(ctx, arn).await?).unwrap_or_default();
    match (v["username"].as_str(), v["password"].as_str()) {
        (Some(u), Some(p)) => Ok((u.to_owned(), p.to_owned())),
        _ => Err(DeployError::Preflight(format!(
            "secret {arn} is not a registry's credentials: ECS wants a JSON object with username and password"
        ))),
    }
}

/// A Secrets Manager secret's string, read with the caller's credentials.
pub async fn secret_string(ctx: &Ctx, arn: &str) -> Result<String> {
    let out = ctx
        .aws
        .secrets
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(failed("SecretsManager GetSecretValue", arn))?;
    Ok(out.secret_string().unwrap_or_default().to_owned())
}
