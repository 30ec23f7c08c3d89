//! `bosun-deploy`: parse options, run one verb, map the outcome to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bosun::deploy::validate;

#[derive(Debug, Parser)]
#[command(name = "bosun-deploy", version, about = "Deploy a stack file to Amazon ECS, with bosun wired in")]
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.verb {
        Verb::Validate(a) => match validate::load(&a.stack) {
            Ok((_, report)) => {
                eprint!("{report}");
                println!("{}: valid", a.stack.display());
                ExitCode::SUCCESS
            }
            Err(report) => {
                eprint!("{report}");
                ExitCode::from(1)
            }
        },
    }
}
