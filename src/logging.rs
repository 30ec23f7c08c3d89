//! bosun's own log lines: to stderr (stdout belongs to the worker and to EMF metric
//! lines), text or JSON, filtered by `BOSUN_LOG`: a level (`warn`, `debug`) or
//! `target=level` directives separated by commas (`info,bosun::metrics=debug`), the
//! per-target subset of tracing's `EnvFilter` syntax. No regex engine is linked into
//! PID 1 for it.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// The variable holding the log filter.
pub const FILTER_ENV: &str = "BOSUN_LOG";

/// The filter `spec` stands for; `Err` names what is wrong with it.
pub fn parse_filter(spec: &str) -> Result<Targets, String> {
    spec.trim()
        .parse::<Targets>()
        .map_err(|e| format!("{e} (expected a level or target=level, comma-separated)"))
}

/// Install the global subscriber. A bad `BOSUN_LOG` is reported and `info` is used.
pub fn init(format: LogFormat) {
    let info = || Targets::new().with_default(LevelFilter::INFO);
    let (filter, bad) = match std::env::var(FILTER_ENV) {
        Ok(spec) if !spec.trim().is_empty() => match parse_filter(&spec) {
            Ok(f) => (f, None),
            Err(e) => (info(), Some((spec, e))),
        },
        _ => (info(), None),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry.with(fmt.with_ansi(false)).init(),
        LogFormat::Json => registry.with(fmt.json().flatten_event(true)).init(),
    }
    if let Some((spec, e)) = bad {
        tracing::warn!(value = %spec, error = %e, "{FILTER_ENV} is not a valid filter; using info");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn levels_and_targets() {
        let f = parse_filter("warn").unwrap();
        assert!(f.would_enable("bosun::supervise", &Level::WARN));
        assert!(!f.would_enable("bosun::supervise", &Level::INFO));
        let f = parse_filter("info,bosun::metrics=debug").unwrap();
        assert!(f.would_enable("bosun::metrics::helper", &Level::DEBUG));
        assert!(!f.would_enable("bosun::supervise", &Level::DEBUG));
        assert!(parse_filter("info,=nonsense=").is_err());
    }
}
