//! The bosun ↔ `bosun-aws` protocol, used by both sides: the helper's command line
//! ([`Args`], written by bosun and read by the helper) and the JSON-lines messages on
//! its standard input and output ([`Request`], [`Reply`]).

use serde::{Deserialize, Serialize};

use super::sample::Sample;
use crate::config::{parse_named, LogFormat};

/// The helper's options, as bosun gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// CloudWatch namespace.
    pub namespace: String,
    /// Publish samples to CloudWatch.
    pub cloudwatch: bool,
    /// One-second storage resolution (intervals under 60 s).
    pub high_resolution: bool,
    /// The SQS queue whose depth is read.
    pub queue_url: Option<String>,
    /// CloudWatch dimensions (name, value).
    pub dimensions: Vec<(String, String)>,
    /// The ECS (cluster, service) whose running tasks divide the backlog.
    pub ecs_service: Option<(String, String)>,
    pub log_format: LogFormat,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            namespace: "Bosun".into(),
            cloudwatch: false,
            high_resolution: false,
            queue_url: None,
            dimensions: Vec::new(),
            ecs_service: None,
            log_format: LogFormat::Text,
        }
    }
}

impl Args {
    /// The command line that gives these options.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["--namespace".to_owned(), self.namespace.clone()];
        if self.cloudwatch {
            args.push("--cloudwatch".into());
        }
        if self.high_resolution {
            args.push("--high-resolution".into());
        }
        if let Some(url) = &self.queue_url {
            args.extend(["--queue-url".to_owned(), url.clone()]);
        }
        for (name, value) in &self.dimensions {
            args.extend(["--dimension".to_owned(), format!("{name}={value}")]);
        }
        if let Some((cluster, service)) = &self.ecs_service {
            args.extend([
                "--ecs-cluster".to_owned(),
                cluster.clone(),
                "--ecs-service".to_owned(),
                service.clone(),
            ]);
        }
        if self.log_format == LogFormat::Json {
            args.extend(["--log-format".to_owned(), "json".to_owned()]);
        }
        args
    }

    /// Read a command line written by [`Args::to_args`].
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut out = Args::default();
        let (mut cluster, mut service) = (None, None);
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--namespace" => out.namespace = value()?,
                "--cloudwatch" => out.cloudwatch = true,
                "--high-resolution" => out.high_resolution = true,
                "--queue-url" => out.queue_url = Some(value()?),
                "--dimension" => {
                    let v = value()?;
                    match v.split_once('=') {
                        Some((name, value)) if !name.is_empty() => {
                            out.dimensions.push((name.to_owned(), value.to_owned()))
                        }
                        _ => return Err(format!("'{v}' is not NAME=VALUE")),
                    }
                }
                "--ecs-cluster" => cluster = Some(value()?),
                "--ecs-service" => service = Some(value()?),
                "--log-format" => out.log_format = parse_named(&value()?)?,
                other => return Err(format!("unknown option '{other}'")),
            }
        }
        out.ecs_service = match (cluster, service) {
            (Some(c), Some(s)) => Some((c, s)),
            (None, None) => None,
            _ => return Err("--ecs-cluster and --ecs-service go together".into()),
        };
        Ok(out)
    }
}

/// What bosun asks of the helper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Read the queue's depth (and the service's running tasks) now.
    Depth { id: u64 },
    /// Queue a sample for PutMetricData (answered at once, before it is sent).
    Publish { id: u64, sample: Sample },
    /// Send everything queued within `within_ms`; the reply says what is left.
    Flush { id: u64, within_ms: u64 },
    /// The tasks of `family` in `cluster` that ECS wants running and that were
    /// created before `task_arn` (`--singleton`).
    EarlierRuns {
        id: u64,
        cluster: String,
        family: String,
        task_arn: String,
    },
}

impl Request {
    pub fn id(&self) -> u64 {
        match self {
            Request::Depth { id }
            | Request::Publish { id, .. }
            | Request::Flush { id, .. }
            | Request::EarlierRuns { id, .. } => *id,
        }
    }
}

/// The queue figures of one [`Request::Depth`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Depth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
    /// The service's running tasks (ECS DescribeServices or `BOSUN_RUNNING_TASKS`).
    pub running_tasks: Option<u64>,
}

/// The helper's answer, with its CloudWatch counters as they stand.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<Depth>,
    /// The answer to [`Request::EarlierRuns`]: task ARNs, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earlier: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Samples published to CloudWatch so far.
    #[serde(default)]
    pub published: u64,
    /// Samples dropped so far (buffer full, or rejected by CloudWatch).
    #[serde(default)]
    pub dropped: u64,
    /// Samples still waiting to be sent.
    #[serde(default)]
    pub unsent: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_reads_back_as_written() {
        let a = Args {
            namespace: "Ns".into(),
            cloudwatch: true,
            high_resolution: true,
            queue_url: Some("https://q".into()),
            dimensions: vec![("ServiceName".into(), "s=1".into())],
            ecs_service: Some(("c".into(), "s".into())),
            log_format: LogFormat::Json,
        };
        assert_eq!(Args::parse(a.to_args()), Ok(a));
        assert_eq!(Args::parse(Args::default().to_args()), Ok(Args::default()));
        assert!(Args::parse(["--ecs-cluster".to_owned(), "c".into()]).is_err());
        assert!(Args::parse(["--bogus".to_owned()])
            .unwrap_err()
            .contains("--bogus"));
    }

    #[test]
    fn dimensions_are_name_equals_value() {
        let dim = |v: &str| Args::parse(["--dimension".to_owned(), v.to_owned()]);
        assert_eq!(
            dim("ServiceName=orders=x").map(|a| a.dimensions),
            Ok(vec![("ServiceName".into(), "orders=x".into())])
        );
        assert!(dim("=x").is_err());
        assert!(dim("x").is_err());
    }

    #[test]
    fn protocol_lines_round_trip() {
        let req = Request::Publish {
            id: 7,
            sample: Sample {
                timestamp_ms: 1,
                cpu_utilization: Some(12.5),
                ..Sample::default()
            },
        };
        let text = serde_json::to_string(&req).unwrap();
        assert!(text.starts_with(r#"{"op":"publish","id":7,"#), "{text}");
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), req);
        let reply: Reply = serde_json::from_str(r#"{"id":3,"published":2}"#).unwrap();
        assert_eq!((reply.id, reply.published, reply.depth), (3, 2, None));
    }
}
