//! Everything that links the AWS SDK, which bosun (PID 1) never does: the one place
//! that builds SDK clients (the standard `AWS_*` variables are honoured: region,
//! credentials, `AWS_ENDPOINT_URL` for a local emulator; calls are bounded in time;
//! errors are classified for retrying), and what the `bosun-aws` helper process
//! ([`helper`]) and the deployer do with them: [`cloudwatch`] publishing [`queue`]
//! depth and earlier runs of a task family ([`tasks`]).

pub mod cloudwatch;
pub mod helper;
pub mod queue;
pub mod tasks;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;

/// The shared SDK configuration: HTTPS through rustls with ring, trusting the
/// system's CA certificates (or `SSL_CERT_FILE`); a 10 s bound on every call, 3 s to
/// connect, and two attempts (bosun's own loops retry with back-off on top of that).
pub async fn config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .load()
        .await
}

/// HTTPS through rustls with ring, trusting the system's CA certificates.
pub fn https() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// How a failed call should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Network, timeout, throttling, 5xx: try again later.
    Retry,
    /// The request itself is wrong (4xx, or it could not be built): retrying the same
    /// request cannot help.
    Fatal,
}

/// Classify an SDK error (timeouts and dispatch failures retry, construction errors
/// and client errors don't).
pub fn classify<E, R>(err: &SdkError<E, R>) -> Failure
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
    R: std::fmt::Debug,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Failure::Retry
        }
        SdkError::ConstructionFailure(_) => Failure::Fatal,
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or("");
            if code.contains("Throttl")
                || code == "RequestLimitExceeded"
                || code == "ServiceUnavailable"
                || code == "InternalFailure"
            {
                Failure::Retry
            } else {
                Failure::Fatal
            }
        }
        _ => Failure::Retry,
    }
}

/// A one-line description of an SDK error: its code and message, or its cause.
pub fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(e) = err {
        let meta = e.err();
        return format!(
            "{}: {}",
            meta.code().unwrap_or("error"),
            meta.message().unwrap_or("")
        );
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}
