//! The buildpack's scripts on a sample app directory, as a CNB lifecycle runs them.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const BP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docker/buildpack");

fn script(name: &str, app: &Path, layers: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(Path::new(BP).join("bin").join(name));
    cmd.current_dir(app)
        .env("CNB_LAYERS_DIR", layers)
        .env("CNB_BUILDPACK_DIR", BP)
        .env("BP_BOSUN_BINARY", BOSUN);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn detect_and_build_wrap_the_procfile_processes() {
    let app = TempDir::new("bp-app");
    let layers = TempDir::new("bp-layers");
    assert_eq!(
        script("detect", &app.0, &layers.0, &[]).status.code(),
        Some(100),
        "no Procfile: no detection"
    );
    std::fs::write(
        app.path("Procfile"),
        "# processes\nworker: node dist/main.js --queue \"jobs\"\nnightly: ./bin/nightly\n",
    )
    .unwrap();
    assert_eq!(
        script("detect", &app.0, &layers.0, &[]).status.code(),
        Some(0)
    );
    assert_eq!(
        script("detect", &app.0, &layers.0, &[("BP_BOSUN_DISABLED", "1")])
            .status
            .code(),
        Some(100)
    );
    let out = script("build", &app.0, &layers.0, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = layers.0.join("bosun/bin/bosun");
    assert_eq!(std::fs::read(&bin).unwrap(), std::fs::read(BOSUN).unwrap());
    // The AWS helper beside bosun comes along, so that --metrics cloudwatch works.
    let helper = Path::new(BOSUN).with_file_name("bosun-aws");
    assert_eq!(
        std::fs::read(layers.0.join("bosun/bin/bosun-aws")).unwrap(),
        std::fs::read(helper).unwrap()
    );
    assert!(std::fs::read_to_string(layers.0.join("bosun.toml"))
        .unwrap()
        .contains("launch = true"));
    let launch = std::fs::read_to_string(layers.0.join("launch.toml")).unwrap();
    let b = bin.display();
    assert!(launch.contains(&format!("type = \"worker\"\ncommand = [\"{b}\", \"--\", \"/bin/sh\", \"-c\", \"node dist/main.js --queue \\\"jobs\\\"\"]\ndefault = true")), "{launch}");
    assert!(launch.contains(&format!("type = \"nightly\"\ncommand = [\"{b}\", \"--\", \"/bin/sh\", \"-c\", \"./bin/nightly\"]\n")), "{launch}");
    // The wrapped process really runs under bosun: run the worker line as launch would.
    let out = Command::new(&bin)
        .args([
            "--listen",
            "off",
            "--",
            "/bin/sh",
            "-c",
            "echo wrapped; exit 4",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "wrapped\n");
    // A missing binary is a clear failure.
    let out = script(
        "build",
        &app.0,
        &layers.0,
        &[("BP_BOSUN_BINARY", "/nope/bosun")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nope/bosun"));
}
