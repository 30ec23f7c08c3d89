//! `bosun-deploy`: parse options, run one verb, map the outcome to an exit code.
//!
//! Exit codes (one place: [`bosun::deploy::engine::error::exit`]): 0 done (for
//! `diff`: no change), 1 for `diff`: changes, 2 usage error (a stack file that cannot
//! be read included), 3 invalid stack file, 4 AWS refused or failed, 5 a local tool
//! failed (nothing in AWS changed), 6 a deployment did not finish within `--timeout`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use bosun::deploy::engine::error::{exit, DeployError};
use bosun::deploy::ops::verbs::{self, bosun_path};
use bosun::deploy::ops::{self, exec, local, logs, rollback, run, runs, tasks};
use bosun::deploy::stack::{validate, Stack};

#[derive(Debug, Parser)]
#[command(
    name = "bosun-deploy",
    version,
    about = "Deploy a stack file to Amazon ECS, with bosun wired in"
)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Clone, clap::Args)]
struct StackArg {
    /// The stack file
    #[arg(long, default_value = "bosun.yaml", value_name = "FILE")]
    stack: PathBuf,
    /// The stage: the file's `stages.NAME` overrides, and every name and tag the
    /// stack makes carries it (`{stack}-{stage}`), apart from every other stage
    #[arg(long, env = "BOSUN_STAGE", value_name = "NAME")]
    stage: Option<String>,
}

#[derive(Debug, clap::Args)]
struct BosunArg {
    /// The statically linked bosun put into the images this builds (default: `bosun`
    /// beside this program)
    #[arg(long, value_name = "PATH")]
    bosun: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum CiTo {
    /// GitHub Actions: the workflow, and with --create-role the roles it assumes
    Github {
        #[command(flatten)]
        stack: StackArg,
        /// The branch whose pushes apply the stack (pull requests into it diff it)
        #[arg(long, default_value = "main", value_name = "NAME")]
        branch: String,
        /// The GitHub repository (default: the checkout's origin)
        #[arg(long, value_name = "OWNER/NAME")]
        repo: Option<String>,
        /// Create (or bring up to date) the roles the workflow assumes: {stack}-deploy
        /// with `policy`, {stack}-diff with its reads; GitHub's OIDC provider where
        /// the account has none
        #[arg(long)]
        create_role: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// For people: `+ create`, `~ update` with the changed fields, `-/+ replace`, `- delete`
    Text,
    /// For scripts: the plan (and what was done) as one JSON document
    Json,
}

impl From<Output> for verbs::Output {
    fn from(o: Output) -> verbs::Output {
        match o {
            Output::Text => verbs::Output::Text,
            Output::Json => verbs::Output::Json,
        }
    }
}

#[derive(Debug, clap::Args)]
struct SafetyArgs {
    /// Wait this long for another run's lock of the stack (default: refuse at once)
    #[arg(long, default_value = "0", value_name = "SECS")]
    wait_lock: u64,
    /// Break the stack's lock with this id first (one that a run which died left)
    #[arg(long, value_name = "ID")]
    force_unlock: Option<String>,
    /// Delete queues that still hold messages (they are lost)
    #[arg(long)]
    allow_data_loss: bool,
}

impl SafetyArgs {
    fn safety(self) -> verbs::Safety {
        verbs::Safety {
            wait_lock: Duration::from_secs(self.wait_lock),
            force_unlock: self.force_unlock,
            allow_data_loss: self.allow_data_loss,
        }
    }
}

#[derive(Debug, clap::Args)]
struct OutputArg {
    /// How to print the plan
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Write a starter bosun.yaml for the app in DIR (a Dockerfile, or a Node.js,
    /// Python or Go entry file): a queue and a worker, or with --job a scheduled job
    Init {
        /// The app's folder
        #[arg(default_value = ".", value_name = "DIR")]
        dir: PathBuf,
        /// A scheduled job on this schedule (cron(...), rate(...), or Copilot's
        /// @daily, @every 1h, a five-field cron) in place of a queue and a worker
        #[arg(long, value_name = "SCHEDULE")]
        job: Option<String>,
    },
    /// Write a stack file from another tool's configuration
    Import {
        #[command(subcommand)]
        from: ImportFrom,
    },
    /// Check the stack file: every problem at once, with file:line:column
    Validate(StackArg),
    /// Print the exact AWS API inputs as JSON (no AWS call)
    Render(StackArg),
    /// Show what apply would change (exit 0: nothing, 1: changes)
    Diff {
        #[command(flatten)]
        stack: StackArg,
        #[command(flatten)]
        output: OutputArg,
        #[command(flatten)]
        bosun: BosunArg,
    },
    /// Make AWS match the file: create, update, and delete what the stack owns and
    /// the file no longer has; a second apply of the same file changes nothing
    Apply {
        #[command(flatten)]
        stack: StackArg,
        #[command(flatten)]
        output: OutputArg,
        /// Don't wait for the services' deployments
        #[arg(long)]
        no_wait: bool,
        /// Give up waiting for a deployment after this many seconds
        #[arg(long, default_value = "900", value_name = "SECS")]
        timeout: u64,
        #[command(flatten)]
        bosun: BosunArg,
        #[command(flatten)]
        safety: SafetyArgs,
    },
    /// What is deployed: desired/running/pending, deployments, scaling policies,
    /// recent events (reads AWS only; builds nothing)
    Status(StackArg),
    /// Print the IAM policy apply, diff, status and delete of this stack need: the
    /// stack's own names and ARNs, iam:PassRole of its roles to their services
    Policy(StackArg),
    /// Deploy from CI: `ci github` writes .github/workflows/bosun.yml (diff on pull
    /// requests, apply on push, credentials by GitHub's OIDC)
    Ci {
        #[command(subcommand)]
        to: CiTo,
    },
    /// Delete everything this stack owns (found by its tag)
    Delete {
        #[command(flatten)]
        stack: StackArg,
        #[command(flatten)]
        output: OutputArg,
        /// Delete without asking (needed where the input is not a terminal)
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        safety: SafetyArgs,
    },
    /// Make a new local image from IMAGE with bosun added as its entrypoint
    Inject {
        /// The existing local image
        image: String,
        /// The new image's tag
        #[arg(long, value_name = "NEW")]
        tag: String,
        /// A statically linked bosun to add (default: `bosun` beside this program)
        #[arg(long, value_name = "PATH")]
        bosun: Option<PathBuf>,
    },
    /// Print a service's or job's logs (CloudWatch Logs)
    Logs {
        /// The resource (a worker-service or scheduled-job of the stack)
        resource: String,
        #[command(flatten)]
        stack: StackArg,
        /// How far back: 30s, 10m, 2h, 1d
        #[arg(long, default_value = "10m", value_name = "AGE", value_parser = logs::parse_since)]
        since: i64,
        /// Keep printing new events
        #[arg(long)]
        follow: bool,
        /// Only this task's lines (its id)
        #[arg(long, value_name = "ID")]
        task: Option<String>,
        /// Only lines matching this CloudWatch Logs filter pattern
        #[arg(long, value_name = "PATTERN")]
        filter: Option<String>,
    },
    /// Run one task of a service or job now and wait for it: its log lines as they
    /// arrive, and its worker's exit code as this command's (4: it never started)
    Run {
        /// The resource (a worker-service or scheduled-job of the stack)
        resource: String,
        #[command(flatten)]
        stack: StackArg,
        /// Run it in the local Docker engine, built as apply builds it
        #[arg(long)]
        local: bool,
        /// With --local: run with the task role's credentials (STS AssumeRole)
        #[arg(long, requires = "local")]
        task_role: bool,
        /// Set a variable for this run (repeatable)
        #[arg(long = "env", value_name = "NAME=VALUE", value_parser = run::parse_env)]
        env: Vec<(String, String)>,
        /// Print the task's ARN and return at once
        #[arg(long, conflicts_with = "local")]
        no_wait: bool,
        /// Stop waiting after this many seconds (exit 6; the task goes on)
        #[arg(long, default_value = "3600", value_name = "SECS")]
        timeout: u64,
        #[command(flatten)]
        bosun: BosunArg,
        /// The command in place of the container's own (Docker's CMD)
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// A service's or job's tasks: running, or (--stopped) those ECS still remembers
    Tasks {
        /// The resource (a worker-service or scheduled-job of the stack)
        resource: String,
        #[command(flatten)]
        stack: StackArg,
        /// The stopped tasks: why they stopped, each container's exit code
        #[arg(long)]
        stopped: bool,
        #[command(flatten)]
        output: OutputArg,
    },
    /// A scheduled job's runs: when each started, how long it took, how it ended
    /// (from bosun's run-summary lines in the job's log group), and the runs that
    /// never started (from the stopped tasks ECS still remembers)
    Runs {
        /// The scheduled-job
        job: String,
        #[command(flatten)]
        stack: StackArg,
        /// How far back: 30m, 12h, 7d
        #[arg(long, default_value = "7d", value_name = "AGE", value_parser = logs::parse_since)]
        since: i64,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Put a service back on the revision it ran before (or --to one of its own)
    Rollback {
        /// The worker-service
        service: String,
        #[command(flatten)]
        stack: StackArg,
        /// The revision: N, FAMILY:N, or its task definition's ARN
        #[arg(long, value_name = "REVISION")]
        to: Option<String>,
        /// Don't wait for the deployment
        #[arg(long)]
        no_wait: bool,
        /// Give up waiting for the deployment after this many seconds
        #[arg(long, default_value = "900", value_name = "SECS")]
        timeout: u64,
        #[command(flatten)]
        safety: SafetyArgs,
    },
    /// Open a shell (or run COMMAND) in a running task, through ECS Exec and the
    /// session-manager-plugin
    Exec {
        /// The resource (with enableExecuteCommand: true)
        resource: String,
        #[command(flatten)]
        stack: StackArg,
        /// The task's id (needed when several run)
        #[arg(long, value_name = "ID")]
        task: Option<String>,
        /// The container (default: app, the worker's)
        #[arg(long, value_name = "NAME")]
        container: Option<String>,
        /// The command (default /bin/sh)
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ImportFrom {
    /// AWS Copilot's worker services and scheduled jobs (copilot/*/manifest.yml):
    /// environments become stages, and every key left behind is a warning
    Copilot {
        /// The Copilot workspace (the folder holding copilot/)
        #[arg(default_value = ".", value_name = "DIR")]
        dir: PathBuf,
        /// The stack file to write (default DIR/bosun.yaml; never overwritten)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

fn load(arg: &StackArg) -> Result<Stack, u8> {
    let path = arg.stack.as_path();
    // A file that cannot be read is a usage error (a wrong --stack), not an invalid
    // stack: the path and the system's reason, and exit 2.
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!(
                "bosun-deploy: cannot read the stack file {}: {e} (--stack FILE; default bosun.yaml)",
                path.display()
            );
            return Err(exit::USAGE);
        }
    };
    // An empty BOSUN_STAGE is no stage.
    let stage = arg.stage.as_deref().filter(|s| !s.is_empty());
    match validate::check_stage(&path.display().to_string(), &text, stage) {
        Ok((stack, report)) => {
            eprint!("{report}");
            Ok(stack)
        }
        Err(report) => {
            eprint!("{report}");
            let n = report.errors().count();
            eprintln!(
                "{}: {n} error{}",
                path.display(),
                if n == 1 { "" } else { "s" }
            );
            Err(exit::INVALID)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.verb {
        Verb::Init { dir, job } => match ops::init::init(&dir, job.as_deref()) {
            Ok((file, found, note)) => {
                if let Some(note) = note {
                    eprintln!("bosun-deploy init: {note}");
                }
                let what = match job {
                    Some(_) => "a scheduled job",
                    None => "a queue and a worker connected to it",
                };
                let built = match found {
                    ops::init::Found::Dockerfile => "the Dockerfile".to_owned(),
                    ops::init::Found::Entry { path, language } => {
                        format!("{path} ({language}, auto-packaged)")
                    }
                };
                let stack = if dir == std::path::Path::new(".") {
                    String::new()
                } else {
                    format!(" --stack {}", file.display())
                };
                println!("wrote {}: {what}, built from {built}", file.display());
                println!("next: bosun-deploy diff{stack}   (what it would make)");
                println!("      bosun-deploy apply{stack}  (make it)");
                exit::OK
            }
            Err(e) => {
                eprintln!("bosun-deploy init: {}", e.0);
                exit::USAGE
            }
        },
        Verb::Import {
            from: ImportFrom::Copilot { dir, out },
        } => match ops::import::copilot(&dir, out.as_deref()) {
            Ok(done) => {
                for w in &done.warnings {
                    eprintln!("warning: {w}");
                }
                for m in &done.made {
                    eprintln!("{m}");
                }
                println!(
                    "wrote {} ({} left behind: listed at its top)",
                    done.file.display(),
                    done.warnings.len()
                );
                match done.invalid {
                    None => exit::OK,
                    Some(report) => {
                        eprint!("{report}");
                        eprintln!("bosun-deploy import: the manifests' values do not all validate: fix them in {}", done.file.display());
                        exit::INVALID
                    }
                }
            }
            Err(e) => {
                eprintln!("bosun-deploy import: {}", e.0);
                exit::USAGE
            }
        },
        Verb::Validate(a) => load(&a).map_or_else(
            |c| c,
            |_| {
                println!("{}: valid", a.stack.display());
                exit::OK
            },
        ),
        Verb::Render(a) => load(&a).map_or_else(
            |c| c,
            |stack| match verbs::render(&a.stack, &stack) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("bosun-deploy: {e}");
                    e.exit_code()
                }
            },
        ),
        Verb::Diff {
            stack: file,
            output,
            bosun,
        } => with_aws(&file.clone(), |stack| async move {
            verbs::diff(
                &file.stack,
                &stack,
                &bosun_path(bosun.bosun),
                output.output.into(),
            )
            .await
        }),
        Verb::Apply {
            stack: file,
            output,
            no_wait,
            timeout,
            bosun,
            safety,
        } => with_aws(&file.clone(), |stack| async move {
            let wait = (!no_wait).then(|| Duration::from_secs(timeout));
            verbs::apply(
                &file.stack,
                &stack,
                &bosun_path(bosun.bosun),
                output.output.into(),
                wait,
                &safety.safety(),
            )
            .await
        }),
        Verb::Ci {
            to:
                CiTo::Github {
                    stack: file,
                    branch,
                    repo,
                    create_role,
                },
        } => with_aws(&file.clone(), |stack| async move {
            verbs::ci_github(&file.stack, &stack, &branch, repo.as_deref(), create_role).await
        }),
        Verb::Policy(file) => {
            with_aws(
                &file.clone(),
                |stack| async move { verbs::policy(&stack).await },
            )
        }
        Verb::Status(file) => with_aws(&file.clone(), |stack| async move {
            verbs::status(&file.stack, &stack).await
        }),
        Verb::Inject { image, tag, bosun } => {
            let bosun = bosun_path(bosun);
            match bosun::deploy::images::inject::inject(&image, &tag, &bosun) {
                Ok(id) => {
                    println!("{tag} {id}");
                    exit::OK
                }
                Err(e) => {
                    eprintln!("bosun-deploy inject: {e}");
                    exit::LOCAL_TOOL
                }
            }
        }
        Verb::Logs {
            resource,
            stack,
            since,
            follow,
            task,
            filter,
        } => with_aws(&stack.clone(), |stack| async move {
            // A wrong name is a usage error, found before any AWS call.
            ops::runnable(&stack, &resource, ops::Runs::Any)?;
            let ctx = ops::connect(&stack).await?;
            let only = logs::Only {
                task: task.as_deref(),
                filter: filter.as_deref(),
            };
            logs::logs(&ctx.aws, &stack, &resource, since, follow, only).await?;
            Ok(exit::OK)
        }),
        Verb::Run {
            resource,
            stack: file,
            local: true,
            task_role,
            env,
            bosun,
            command,
            ..
        } => with_aws(&file.clone(), |stack| async move {
            let a = local::LocalArgs {
                resource,
                env,
                command,
                bosun: bosun_path(bosun.bosun),
                task_role,
            };
            local::run_local(&file.stack, &stack, &a).await
        }),
        Verb::Run {
            resource,
            stack,
            env,
            no_wait,
            timeout,
            command,
            ..
        } => with_aws(&stack.clone(), |stack| async move {
            let a = run::RunArgs {
                resource,
                env,
                command,
                wait: !no_wait,
                timeout: Duration::from_secs(timeout),
            };
            run::run(&stack, &a).await
        }),
        Verb::Tasks {
            resource,
            stack,
            stopped,
            output,
        } => with_aws(&stack.clone(), |stack| async move {
            tasks::tasks(&stack, &resource, stopped, output.output.into()).await
        }),
        Verb::Runs {
            job,
            stack,
            since,
            output,
        } => with_aws(&stack.clone(), |stack| async move {
            runs::runs(&stack, &job, since, output.output.into()).await
        }),
        Verb::Rollback {
            service,
            stack,
            to,
            no_wait,
            timeout,
            safety,
        } => with_aws(&stack.clone(), |stack| async move {
            let wait = (!no_wait).then(|| Duration::from_secs(timeout));
            rollback::rollback(&stack, &service, to.as_deref(), wait, &safety.safety()).await
        }),
        Verb::Exec {
            resource,
            stack,
            task,
            container,
            command,
        } => with_aws(&stack.clone(), |stack| async move {
            let a = exec::ExecArgs {
                resource,
                task,
                container,
                command,
            };
            exec::exec(&stack, &a).await
        }),
        Verb::Delete {
            stack,
            output,
            yes,
            safety,
        } => match verbs::delete_allowed_to_ask(yes) {
            Err(e) => {
                eprintln!("bosun-deploy: {e}");
                e.exit_code()
            }
            Ok(()) => with_aws(&stack.clone(), |stack| async move {
                verbs::delete(&stack, output.output.into(), yes, &safety.safety()).await
            }),
        },
    };
    ExitCode::from(code)
}

fn with_aws<F, Fut>(arg: &StackArg, f: F) -> u8
where
    F: FnOnce(Stack) -> Fut,
    Fut: std::future::Future<Output = Result<u8, DeployError>>,
{
    let stack = match load(arg) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bosun-deploy: cannot start a runtime: {e}");
            return exit::AWS;
        }
    };
    let result = rt.block_on(f(stack));
    // A question left unanswered (Ctrl-C at delete's prompt) holds a blocking thread:
    // do not wait for it.
    rt.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bosun-deploy: {e}");
            e.exit_code()
        }
    }
}
