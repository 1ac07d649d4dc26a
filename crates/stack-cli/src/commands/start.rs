//! `stack start`: start the stopped containers again, dependencies first.

use std::process::ExitCode;

use clap::Args;
use stack_engine::control::Request;

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only these services (default: all).
    pub services: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: StartArgs) -> anyhow::Result<ExitCode> {
    let request = Request::Start {
        services: args.services,
    };
    client::send_planned(global, &args.project, request, args.dry_run)
}
