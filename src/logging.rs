//! bosun's own log lines: to stderr (stdout belongs to the worker and to EMF metric
//! lines), text or JSON, filtered by `BOSUN_LOG` (tracing `EnvFilter` syntax).

use tracing_subscriber::filter::{EnvFilter, LevelFilter};

use crate::config::LogFormat;

/// The variable holding the log filter.
pub const FILTER_ENV: &str = "BOSUN_LOG";

/// Install the global subscriber. A bad `BOSUN_LOG` is reported and `info` is used.
pub fn init(format: LogFormat) {
    let (filter, bad) = match std::env::var(FILTER_ENV) {
        Ok(spec) if !spec.trim().is_empty() => match EnvFilter::builder().parse(&spec) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::default().add_directive(LevelFilter::INFO.into()),
                Some((spec, e)),
            ),
        },
        _ => (
            EnvFilter::default().add_directive(LevelFilter::INFO.into()),
            None,
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    if let Some((spec, e)) = bad {
        tracing::warn!(value = %spec, error = %e, "{FILTER_ENV} is not a valid filter; using info");
    }
}
