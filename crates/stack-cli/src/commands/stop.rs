//! `stack stop`: stop the running containers (dependents first), keeping
//! them; no restart policy brings them back.

use std::process::ExitCode;

use clap::Args;
use stack_engine::control::Request;

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for each container to stop before killing it
    /// (default: its `stop_grace_period`, else 10).
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Only these services (default: all).
    pub services: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: StopArgs) -> anyhow::Result<ExitCode> {
    let request = Request::Stop {
        services: args.services,
        timeout: args.timeout,
    };
    client::send_planned(global, &args.project, request, args.dry_run)
}
