//! `bosun-deploy init [DIR] [--job SCHEDULE]`: a starter `bosun.yaml` for the app in
//! DIR, so a fresh account goes from `init` to `apply` with nothing else. It finds how
//! to build the app (a Dockerfile; else a Node.js, Python or Go entry file for
//! auto-packaging), writes a queue and a worker connected to it (or a scheduled job),
//! each key with a comment, checks the file as `validate` would, and never overwrites
//! one that exists.

use std::path::{Path, PathBuf};

use crate::deploy::naming;
use crate::deploy::stack::{copilot, schedule, validate};

/// How the app is built, as the file's `packaging` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A Dockerfile in DIR.
    Dockerfile,
    /// An entry file (relative to DIR) and its language.
    Entry {
        path: String,
        language: &'static str,
    },
}

/// Why nothing was written (exit 2).
#[derive(Debug)]
pub struct InitError(pub String);

/// Write DIR/bosun.yaml; the path written, and what it found, for the caller to say.
pub fn init(dir: &Path, job: Option<&str>) -> Result<(PathBuf, Found, Option<String>), InitError> {
    if !dir.is_dir() {
        return Err(InitError(format!("{}: not a folder", dir.display())));
    }
    let out = dir.join("bosun.yaml");
    if out.exists() {
        return Err(InitError(format!(
            "{} exists: init never overwrites a stack file (check it with `bosun-deploy validate --stack {}`)",
            out.display(),
            out.display()
        )));
    }
    let found = detect(dir).ok_or_else(|| {
        InitError(format!(
            "{}: no Dockerfile, and no Node.js (package.json and an entry file), Python (requirements.txt or pyproject.toml and an entry file) or Go (go.mod and main.go) app: add a Dockerfile, or write bosun.yaml by hand (docs/reference.md)",
            dir.display()
        ))
    })?;
    let (schedule, note) = match job {
        None => (None, None),
        Some(s) => {
            let (expr, note) = job_schedule(s)?;
            (Some(expr), note)
        }
    };
    let stack = stack_name(dir);
    let text = starter(&stack, &found, schedule.as_deref());
    // What init writes validates as written: checked here before it is written.
    if let Err(report) = validate::check(&out.display().to_string(), &text) {
        return Err(InitError(format!(
            "the starter file does not validate:\n{report}"
        )));
    }
    write_new(&out, &text).map_err(|e| InitError(format!("{}: {e}", out.display())))?;
    Ok((out, found, note))
}

/// The Scheduler expression of `--job`, and a note when it was Copilot's form.
fn job_schedule(s: &str) -> Result<(String, Option<String>), InitError> {
    if schedule::check(s).is_ok() {
        return Ok((s.trim().to_owned(), None));
    }
    match copilot::schedule(s) {
        Some(Ok(x)) => Ok((x.clone(), Some(format!("--job '{s}' is written as {x}")))),
        Some(Err(why)) => Err(InitError(format!("--job: {why}"))),
        None => Err(InitError(format!(
            "--job: {}",
            schedule::check(s).err().unwrap_or_default()
        ))),
    }
}

/// How the app in `dir` is built: a Dockerfile first (the user's own build), then an
/// entry file of a language auto-packaging knows, beside its project file.
pub fn detect(dir: &Path) -> Option<Found> {
    if dir.join("Dockerfile").is_file() {
        return Some(Found::Dockerfile);
    }
    let entry = |language: &'static str, candidates: &[&str]| {
        candidates
            .iter()
            .find(|c| dir.join(c).is_file())
            .map(|c| Found::Entry {
                path: (*c).to_owned(),
                language,
            })
    };
    if dir.join("package.json").is_file() {
        // package.json's `main`, when it names a file that is there.
        let main = std::fs::read_to_string(dir.join("package.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["main"].as_str().map(str::to_owned))
            .map(|m| m.trim_start_matches("./").to_owned())
            .filter(|m| dir.join(m).is_file());
        if let Some(m) = main {
            return Some(Found::Entry {
                path: m,
                language: "Node.js",
            });
        }
        let found = entry(
            "Node.js",
            &[
                "worker.js",
                "index.js",
                "main.js",
                "app.js",
                "server.js",
                "worker.mjs",
                "index.mjs",
                "worker.ts",
                "index.ts",
                "main.ts",
                "src/worker.js",
                "src/index.js",
                "src/main.js",
                "src/worker.ts",
                "src/index.ts",
                "src/main.ts",
            ],
        );
        if found.is_some() {
            return found;
        }
    }
    if dir.join("requirements.txt").is_file() || dir.join("pyproject.toml").is_file() {
        let found = entry(
            "Python",
            &[
                "worker.py",
                "main.py",
                "app.py",
                "__main__.py",
                "src/worker.py",
                "src/main.py",
            ],
        );
        if found.is_some() {
            return found;
        }
    }
    if dir.join("go.mod").is_file() {
        let mut found = entry("Go", &["main.go", "cmd/worker/main.go"]);
        if found.is_none() {
            // cmd/NAME/main.go: the first by name.
            let mut cmds: Vec<String> = std::fs::read_dir(dir.join("cmd"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| dir.join("cmd").join(n).join("main.go").is_file())
                .collect();
            cmds.sort();
            found = cmds.first().map(|n| Found::Entry {
                path: format!("cmd/{n}/main.go"),
                language: "Go",
            });
        }
        return found;
    }
    None
}

/// The stack's name from the folder's.
fn stack_name(dir: &Path) -> String {
    naming::stack_name_from(&folder_name(dir))
}

/// The last part of `dir`'s absolute path (`.` resolved).
pub(super) fn folder_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

/// Write `text` to `path`, which must not exist: a file that appeared meanwhile is
/// not overwritten either (`create_new`).
pub(super) fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?
        .write_all(text.as_bytes())
}

fn packaging(found: &Found) -> String {
    match found {
        Found::Dockerfile => {
            "      # How the image is built: the Dockerfile in this folder (bosun is put in
      # as the container's entry point; the image's own CMD is the worker's command).
      packaging:
        type: custom-dockerfile
        properties:
          buildContextPath: .
"
            .to_owned()
        }
        Found::Entry { path, language } => format!(
            "      # How the image is built: from the {language} entry file, a Dockerfile
      # bosun-deploy writes (`bosun-deploy render` shows it), bosun as PID 1.
      packaging:
        type: image-buildpack
        properties:
          entryfilePath: {path}
"
        ),
    }
}

/// The starter file: a queue and a worker connected to it, or a scheduled job.
pub fn starter(stack: &str, found: &Found, job: Option<&str>) -> String {
    let head = format!(
        "# bosun.yaml, written by `bosun-deploy init`. Check it with `bosun-deploy validate`,
# see what it would make with `bosun-deploy diff`, make it with `bosun-deploy apply`,
# and remove all of it with `bosun-deploy delete`. Every key: docs/reference.md.

# The stack's name: everything it makes in AWS is named after it and tagged
# bosun:stack={stack}; `--stage dev` makes {stack}-dev beside it.
stack: {stack}
# No `network:`: the tasks run in the region's default VPC with public IPs (to pull
# their image) and a security group of the stack's own that lets nothing in.
resources:
"
    );
    let body = match job {
        Some(schedule) => format!(
            "  # A scheduled job: one task per run, started by EventBridge Scheduler.
  job:
    type: scheduled-job
    properties:
{packaging}      # When it runs (UTC unless `timezone:`): cron(min hour day month weekday year),
      # rate(N minutes|hours|days) or at(yyyy-mm-ddThh:mm:ss).
      schedule: \"{schedule}\"
      # A run still going after this many seconds is stopped (exit 124).
      timeoutSeconds: 3600
      # vCPU and MiB of the task (a Fargate size).
      resources: {{ cpu: 0.25, memory: 512 }}
      # Days its log lines (and the run history of `bosun-deploy runs job`) are kept.
      logging: {{ retentionDays: 30 }}
",
            packaging = packaging(found)
        ),
        None => format!(
            "  # A queue for the worker's messages (SQS).
  jobs:
    type: sqs-queue
    properties:
      # Seconds a received message stays hidden from other consumers: more than the
      # worker takes on one message, and more than its stopTimeout.
      visibilityTimeoutSeconds: 60
      # A message received this many times without being deleted goes to a queue of
      # its own (a dead-letter queue), not round and round.
      deadLetterQueue: {{ maxReceiveCount: 5 }}
  # The worker: a Fargate service, its container run under bosun.
  worker:
    type: worker-service
    properties:
{packaging}      # The queue's URL, ARN and name reach the worker as STP_JOBS_URL, STP_JOBS_ARN
      # and STP_JOBS_NAME, and its tasks may receive and delete its messages.
      connectTo: [jobs]
      # vCPU and MiB of each task (a Fargate size).
      resources: {{ cpu: 0.25, memory: 512 }}
      # Seconds between SIGTERM and SIGKILL when a task is stopped: time to finish
      # the message in hand.
      stopTimeout: 30
      scaling:
        # How many tasks: one at least, more while CPU, memory or the backlog is high.
        minInstances: 1
        maxInstances: 4
        scalingPolicy:
          keepAvgCpuUtilizationUnder: 70
          keepAvgMemoryUtilizationUnder: 80
          # Messages waiting per task.
          keepBacklogPerInstanceUnder: 100
      # Days its log lines are kept (CloudWatch Logs).
      logging: {{ retentionDays: 30 }}
",
            packaging = packaging(found)
        ),
    };
    head + &body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_from_folders() {
        let tmp = std::env::temp_dir().join(format!("bosun-init-{}", std::process::id()));
        for (folder, want) in [
            ("My_App 2", "my-app-2"),
            ("42", "app"),
            ("9lives", "lives"),
            ("orders", "orders"),
        ] {
            let d = tmp.join(folder);
            std::fs::create_dir_all(&d).unwrap();
            assert_eq!(stack_name(&d), want, "{folder}");
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
