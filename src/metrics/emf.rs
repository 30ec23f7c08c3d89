//! The `emf` sink: one CloudWatch Embedded Metric Format document per interval, as a
//! single line on stdout (written with one `write`, so it never interleaves with the
//! worker's own lines on the same pipe).

use std::io::Write;

use serde_json::{json, Map, Value};

use super::sample::Sample;
use super::Dimensions;

/// The EMF document for `sample`.
pub fn document(
    sample: &Sample,
    namespace: &str,
    dims: &Dimensions,
    high_resolution: bool,
) -> Value {
    let mut root = Map::new();
    let mut metrics = Vec::new();
    for (name, value, unit) in sample.datums() {
        let mut def = json!({ "Name": name, "Unit": unit.as_str() });
        if high_resolution {
            def["StorageResolution"] = json!(1);
        }
        metrics.push(def);
        root.insert(name.to_owned(), json!(value));
    }
    let keys: Vec<&str> = dims.iter().map(|(k, _)| *k).collect();
    for (k, v) in dims {
        root.insert((*k).to_owned(), json!(v));
    }
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": sample.timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [keys],
                "Metrics": metrics,
            }]
        }),
    );
    Value::Object(root)
}

/// Write the document as one line on stdout.
pub fn emit(sample: &Sample, namespace: &str, dims: &Dimensions, high_resolution: bool) {
    let mut line = document(sample, namespace, dims, high_resolution).to_string();
    line.push('\n');
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
        tracing::warn!(error = %e, "cannot write the EMF line to stdout");
    }
}
