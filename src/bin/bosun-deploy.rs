//! `bosun-deploy`: parse options, run one verb, map the outcome to an exit code.
//!
//! Exit codes: 0 done (for `diff`: no change), 1 for `diff`: changes, 2 usage error,
//! 3 invalid stack file, 4 an AWS call failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use bosun::deploy::stack::Stack;
use bosun::deploy::{apply, render, validate};

const INVALID: u8 = 3;
const AWS_FAILED: u8 = 4;

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

#[derive(Debug, clap::Args)]
struct StackArg {
    /// The stack file
    #[arg(long, default_value = "bosun.yaml", value_name = "FILE")]
    stack: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Check the stack file: every problem at once, with file:line:column
    Validate(StackArg),
    /// Print the exact AWS API inputs as JSON (no AWS call)
    Render(StackArg),
    /// Show what apply would change (exit 0: nothing, 1: changes)
    Diff(StackArg),
    /// Create or update everything; a second apply of the same file changes nothing
    Apply {
        #[command(flatten)]
        stack: StackArg,
        /// Don't wait for the services' deployments
        #[arg(long)]
        no_wait: bool,
        /// Give up waiting for a deployment after this many seconds
        #[arg(long, default_value = "900", value_name = "SECS")]
        timeout: u64,
    },
    /// Desired/running/pending, deployments, scaling policies, recent events
    Status(StackArg),
    /// Delete what this stack created (found by its names and its tag)
    Delete(StackArg),
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
        #[arg(long, default_value = "10m", value_name = "AGE", value_parser = apply::parse_since)]
        since: i64,
        /// Keep printing new events
        #[arg(long)]
        follow: bool,
    },
}

fn load(path: &std::path::Path) -> Result<Stack, u8> {
    match validate::load(path) {
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
            Err(INVALID)
        }
    }
}

fn region(stack: &Stack) -> String {
    stack
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".into())
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bosun-deploy: cannot start a runtime: {e}");
            std::process::exit(1);
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.verb {
        Verb::Validate(a) => match load(&a.stack) {
            Ok(_) => {
                println!("{}: valid", a.stack.display());
                0
            }
            Err(c) => c,
        },
        Verb::Render(a) => match load(&a.stack) {
            Ok(stack) => {
                let account = stack
                    .account
                    .clone()
                    .or_else(|| std::env::var("AWS_ACCOUNT_ID").ok());
                let account = account.unwrap_or_else(|| {
                    eprintln!("bosun-deploy: no account (set `account:` or AWS_ACCOUNT_ID): ARNs use 123456789012");
                    "123456789012".into()
                });
                let target = render::Target {
                    region: region(&stack),
                    account,
                };
                let plan = render::render(&stack, &target);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&plan).unwrap_or_default()
                );
                0
            }
            Err(c) => c,
        },
        Verb::Diff(a) => with_aws(&a.stack, |aws, stack| async move {
            let mut run = apply::Run::new(&aws, &stack, true);
            run.run().await?;
            if run.changes.mutations == 0 {
                println!("no changes");
                Ok(0)
            } else {
                println!(
                    "{} change{}",
                    run.changes.mutations,
                    if run.changes.mutations == 1 { "" } else { "s" }
                );
                Ok(1)
            }
        }),
        Verb::Apply {
            stack,
            no_wait,
            timeout,
        } => with_aws(&stack.stack, |aws, stack| async move {
            let mut run = apply::Run::new(&aws, &stack, false);
            let plan = run.run().await?;
            println!(
                "applied: {} change{}",
                run.changes.mutations,
                if run.changes.mutations == 1 { "" } else { "s" }
            );
            if !no_wait && run.changes.mutations > 0 {
                apply::wait(&aws, &plan, Duration::from_secs(timeout)).await?;
            }
            Ok(0)
        }),
        Verb::Status(a) => with_aws(&a.stack, |aws, stack| async move {
            print!("{}", apply::status(&aws, &stack).await?);
            Ok(0)
        }),
        Verb::Inject { image, tag, bosun } => {
            let bosun = bosun.unwrap_or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|p| p.parent().map(|d| d.join("bosun")))
                    .unwrap_or_else(|| PathBuf::from("bosun"))
            });
            match bosun::deploy::inject::inject(&image, &tag, &bosun) {
                Ok(id) => {
                    println!("{tag} {id}");
                    0
                }
                Err(e) => {
                    eprintln!("bosun-deploy inject: {e}");
                    1
                }
            }
        }
        Verb::Logs {
            resource,
            stack,
            since,
            follow,
        } => with_aws(&stack.stack, |aws, stack| async move {
            apply::logs(&aws, &stack, &resource, since, follow).await?;
            Ok(0)
        }),
        Verb::Delete(a) => with_aws(&a.stack, |aws, stack| async move {
            for d in apply::delete(&aws, &stack).await? {
                println!("deleted {d}");
            }
            Ok(0)
        }),
    };
    ExitCode::from(code)
}

fn with_aws<F, Fut>(path: &std::path::Path, f: F) -> u8
where
    F: FnOnce(apply::Aws, Stack) -> Fut,
    Fut: std::future::Future<Output = Result<u8, apply::ApplyError>>,
{
    let stack = match load(path) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let rt = runtime();
    rt.block_on(async move {
        let aws = apply::Aws::new(Some(&region(&stack))).await;
        match f(aws, stack).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("bosun-deploy: {e}");
                AWS_FAILED
            }
        }
    })
}
