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
pub fn classify<E>(
    err: &SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> Failure
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Failure::Retry
        }
        SdkError::ConstructionFailure(_) => Failure::Fatal,
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or("");
            // A 5xx is AWS's own fault, whatever its code (CloudWatch answers
            // `InternalServiceFault` with a 500): the same request may go through
            // later (AWS SDKs and Tools Reference Guide, "Retry behavior": transient
            // errors), so the data waits in the buffer instead of being dropped.
            if e.raw().status().is_server_error()
                || code.contains("Throttl")
                || code.starts_with("Internal")
                || code == "RequestLimitExceeded"
                || code == "ServiceUnavailable"
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn answered(status: u16, code: &str) -> SdkError<PutMetricDataError, HttpResponse> {
        let err = PutMetricDataError::generic(ErrorMetadata::builder().code(code).build());
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(err, raw)
    }

    #[test]
    fn aws_faults_are_retried_and_request_faults_are_not() {
        assert_eq!(
            classify(&answered(500, "InternalServiceFault")),
            Failure::Retry
        );
        assert_eq!(classify(&answered(503, "SomethingNew")), Failure::Retry);
        assert_eq!(classify(&answered(400, "Throttling")), Failure::Retry);
        assert_eq!(
            classify(&answered(400, "InvalidParameterValue")),
            Failure::Fatal
        );
        assert_eq!(classify(&answered(403, "AccessDenied")), Failure::Fatal);
    }
}
