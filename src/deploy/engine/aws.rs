//! The deployer's AWS clients, built in one place from the shared SDK configuration,
//! with the SDK's standard retry (exponential back-off with jitter, for throttling and
//! transient faults) and a bound on every call.

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use tokio::sync::Semaphore;

use super::error::{failed, Result};

/// How many AWS calls are in flight at once by default, all services together (and
/// how many resources are read or changed at once).
pub const CONCURRENCY: usize = 32;

/// How many calls to one AWS service are in flight at once, at most: AWS rate-limits
/// each service's API per account and region (a token bucket per action; ECS, IAM,
/// SQS... each have their own), so the bound that keeps a deploy under them is per
/// service; throttling is retried with back-off in any case.
pub const PER_SERVICE: usize = 16;

/// The concurrency in force: `BOSUN_DEPLOY_CONCURRENCY` (1..=64), else
/// [`CONCURRENCY`]; each service gets at most [`PER_SERVICE`] of it. 1 makes every
/// call one at a time.
pub fn concurrency() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("BOSUN_DEPLOY_CONCURRENCY")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| (1..=64).contains(n))
            .unwrap_or(CONCURRENCY)
    })
}

/// Every client the deployer uses.
pub struct Aws {
    pub ecs: aws_sdk_ecs::Client,
    pub iam: aws_sdk_iam::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub scaling: aws_sdk_applicationautoscaling::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sts: aws_sdk_sts::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub sns: aws_sdk_sns::Client,
    /// Cloud Map.
    pub sd: aws_sdk_servicediscovery::Client,
    pub s3: aws_sdk_s3::Client,
    pub firehose: aws_sdk_firehose::Client,
    pub region: String,
}

impl Aws {
    /// The clients, for `region` (else the environment's or the profile's). No region
    /// anywhere is a usage error: bosun-deploy never guesses one.
    pub async fn new(region: Option<&str>) -> Result<Aws> {
        let all = Arc::new(Semaphore::new(concurrency()));
        let https = crate::aws::https();
        let mut builder = crate::aws::config()
            .await
            .into_builder()
            // Up to 8 attempts with the standard back-off: a throttled deploy slows
            // down and goes on instead of failing half-way.
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(8)
                    .with_max_backoff(Duration::from_secs(20)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .operation_timeout(Duration::from_secs(120))
                    .build(),
            );
        if let Some(r) = region {
            builder = builder.region(aws_config::Region::new(r.to_owned()));
        }
        let cfg = builder.build();
        let Some(region) = cfg.region().map(|r| r.to_string()) else {
            return Err(super::error::DeployError::Usage(
                "no AWS region: set `region:` in the stack file, or AWS_REGION (or a profile with a region, AWS_PROFILE)".into(),
            ));
        };
        // Each service's client: its own bound, inside the one for all.
        let per_service = PER_SERVICE.min(concurrency());
        macro_rules! client {
            ($sdk:ident) => {{
                let own = Arc::new(Semaphore::new(per_service));
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(&cfg)
                        .http_client(limited(https.clone(), all.clone(), own))
                        .build(),
                )
            }};
        }
        Ok(Aws {
            ecs: client!(aws_sdk_ecs),
            iam: client!(aws_sdk_iam),
            sqs: client!(aws_sdk_sqs),
            logs: client!(aws_sdk_cloudwatchlogs),
            scaling: client!(aws_sdk_applicationautoscaling),
            scheduler: client!(aws_sdk_scheduler),
            cloudwatch: client!(aws_sdk_cloudwatch),
            sts: client!(aws_sdk_sts),
            ec2: client!(aws_sdk_ec2),
            secrets: client!(aws_sdk_secretsmanager),
            autoscaling: client!(aws_sdk_autoscaling),
            ssm: client!(aws_sdk_ssm),
            ecr: client!(aws_sdk_ecr),
            sns: client!(aws_sdk_sns),
            sd: client!(aws_sdk_servicediscovery),
            s3: client!(aws_sdk_s3),
            firehose: client!(aws_sdk_firehose),
            region,
        })
    }

    /// The caller's account, from STS GetCallerIdentity: never guessed. The first call
    /// of every verb, so it is bounded short (3 s to connect, 10 s in all, one retry):
    /// an endpoint that does not answer is said within seconds, named, instead of
    /// after the retries a deploy's calls get.
    pub async fn account(&self) -> Result<String> {
        let quick = aws_sdk_sts::config::Builder::default()
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(10))
                    .build(),
            );
        let out = self
            .sts
            .get_caller_identity()
            .customize()
            .config_override(quick)
            .send()
            .await
            .map_err(|e| {
                let code = super::error::code_of(&e);
                match code.as_str() {
                    "Timeout" | "DispatchFailure" | "ResponseError" => {
                        super::error::DeployError::Preflight(format!(
                            "AWS does not answer at {} (STS GetCallerIdentity: {}): check the network, AWS_ENDPOINT_URL and the region ({})",
                            sts_endpoint(&self.region),
                            crate::aws::describe(&e),
                            self.region
                        ))
                    }
                    _ => failed("STS GetCallerIdentity", "(caller)")(e),
                }
            })?;
        out.account()
            .map(str::to_owned)
            .ok_or_else(|| super::error::DeployError::Unexpected {
                call: "STS GetCallerIdentity",
                what: "no account".into(),
            })
    }
}

/// Where STS calls go: the endpoint variables the SDK honours, else the region's.
fn sts_endpoint(region: &str) -> String {
    ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"))
}

/// An HTTP client that lets at most `own` of its service's calls, and `all` calls of
/// every service together, be in flight at once.
fn limited(inner: SharedHttpClient, all: Arc<Semaphore>, own: Arc<Semaphore>) -> SharedHttpClient {
    http_client_fn(move |settings, components| {
        SharedHttpConnector::new(Limited {
            inner: inner.http_connector(settings, components),
            all: all.clone(),
            own: own.clone(),
        })
    })
}

#[derive(Debug)]
struct Limited {
    inner: SharedHttpConnector,
    all: Arc<Semaphore>,
    own: Arc<Semaphore>,
}

impl HttpConnector for Limited {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let (all, own) = (self.all.clone(), self.own.clone());
        HttpConnectorFuture::new(async move {
            // The service's own permit first, so a call waiting on a busy service
            // holds none of the others'.
            let _own = own
                .acquire_owned()
                .await
                .map_err(|e| ConnectorError::other(Box::new(e), None))?;
            let _all = all
                .acquire_owned()
                .await
                .map_err(|e| ConnectorError::other(Box::new(e), None))?;
            inner.call(request).await
        })
    }
}
