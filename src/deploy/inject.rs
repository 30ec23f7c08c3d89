//! `bosun-deploy inject IMAGE --tag NEW`: a new image from a local one, with bosun
//! (and its AWS helper `bosun-aws`, when it sits beside the given bosun) added and
//! wrapping the original ENTRYPOINT and CMD (`bosun -- <entrypoint> <cmd>`), through
//! the Docker CLI. The image's user, workdir and environment are inherited
//! as they are; its STOPSIGNAL becomes bosun's `BOSUN_STOP_SIGNAL` (Docker now sends
//! SIGTERM to bosun, which sends the original signal to the worker).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::render::BOSUN_PATH;
use crate::metrics::helper::HELPER;

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn json_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The Dockerfile that wraps an image whose config (`docker image inspect`'s
/// `.Config`) is `config`; `with_helper` adds `bosun-aws` beside bosun.
pub fn dockerfile(image: &str, config: &Value, with_helper: bool) -> Result<String, String> {
    let entrypoint = json_list(&config["Entrypoint"]);
    let cmd = json_list(&config["Cmd"]);
    if entrypoint.first().is_some_and(|e| e == BOSUN_PATH) {
        return Err(format!("{image} already runs bosun as its entrypoint"));
    }
    let mut new_entry = vec![BOSUN_PATH.to_owned(), "--".to_owned()];
    new_entry.extend(entrypoint);
    let mut df = format!("FROM {image}\nCOPY bosun {BOSUN_PATH}\n");
    if with_helper {
        df.push_str(&format!("COPY {HELPER} {BOSUN_PATH}-aws\n"));
    }
    df.push_str("LABEL dev.bosun.injected=\"true\"\n");
    if let Some(sig) = config["StopSignal"].as_str().filter(|s| !s.is_empty()) {
        crate::supervise::signals::parse_signal(sig)
            .map_err(|e| format!("{image}: STOPSIGNAL {e}"))?;
        df.push_str(&format!(
            "ENV BOSUN_STOP_SIGNAL={sig}\nSTOPSIGNAL SIGTERM\n"
        ));
    }
    df.push_str(&format!(
        "ENTRYPOINT {}\n",
        serde_json::to_string(&new_entry).map_err(|e| e.to_string())?
    ));
    // A new ENTRYPOINT clears the inherited CMD: restate it.
    if !cmd.is_empty() {
        df.push_str(&format!(
            "CMD {}\n",
            serde_json::to_string(&cmd).map_err(|e| e.to_string())?
        ));
    }
    Ok(df)
}

/// Build `tag` from `image` with `bosun` (a statically linked bosun) added, and the
/// `bosun-aws` beside it when there is one.
pub fn inject(image: &str, tag: &str, bosun: &Path) -> Result<String, String> {
    if !bosun.is_file() {
        return Err(format!(
            "{}: no bosun binary there (build one with docker/build-static.sh, or pass --bosun)",
            bosun.display()
        ));
    }
    let inspect = docker(&["image", "inspect", image, "--format", "{{json .Config}}"])?;
    let config: Value = serde_json::from_str(inspect.trim())
        .map_err(|e| format!("docker image inspect {image}: {e}"))?;
    let helper = bosun.with_file_name(HELPER);
    let with_helper = helper.is_file();
    let df = dockerfile(image, &config, with_helper)?;
    let dir = std::env::temp_dir().join(format!("bosun-inject-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = (|| {
        std::fs::copy(bosun, dir.join("bosun"))
            .map_err(|e| format!("copy {}: {e}", bosun.display()))?;
        if with_helper {
            std::fs::copy(&helper, dir.join(HELPER))
                .map_err(|e| format!("copy {}: {e}", helper.display()))?;
        }
        std::fs::write(dir.join("Dockerfile"), &df)
            .map_err(|e| format!("write Dockerfile: {e}"))?;
        let ctx = dir.display().to_string();
        docker(&["build", "--quiet", "--tag", tag, &ctx])
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|id| id.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_entrypoint_and_cmd_and_moves_the_stop_signal() {
        let cfg = serde_json::json!({ "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "StopSignal": "SIGQUIT", "User": "1000" });
        let df = dockerfile("app:1", &cfg, false).unwrap();
        assert!(
            df.contains("ENTRYPOINT [\"/usr/local/bin/bosun\",\"--\",\"/bin/sh\",\"-c\"]"),
            "{df}"
        );
        assert!(df.contains("CMD [\"echo hi\"]"), "{df}");
        assert!(
            df.contains("ENV BOSUN_STOP_SIGNAL=SIGQUIT\nSTOPSIGNAL SIGTERM"),
            "{df}"
        );
        let cfg = serde_json::json!({ "Entrypoint": null, "Cmd": ["worker"] });
        let df = dockerfile("app:1", &cfg, false).unwrap();
        assert!(
            df.contains("ENTRYPOINT [\"/usr/local/bin/bosun\",\"--\"]\nCMD [\"worker\"]"),
            "{df}"
        );
        let cfg = serde_json::json!({ "Entrypoint": ["/usr/local/bin/bosun", "--"], "Cmd": ["x"] });
        assert!(dockerfile("app:1", &cfg, false)
            .unwrap_err()
            .contains("already"));
        let cfg = serde_json::json!({ "Cmd": ["worker"] });
        let df = dockerfile("app:1", &cfg, true).unwrap();
        assert!(
            df.contains("COPY bosun-aws /usr/local/bin/bosun-aws\n"),
            "{df}"
        );
    }
}
