//! `stack pause` / `stack unpause`: freeze and thaw every process of the
//! containers (the freezer cgroup).

use std::process::ExitCode;

use clap::Args;
use stack_engine::control::Request;

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct PauseArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only these services (default: all).
    pub services: Vec<String>,
}

pub fn pause(global: &GlobalArgs, args: PauseArgs) -> anyhow::Result<ExitCode> {
    let request = Request::Pause {
        services: args.services,
    };
    client::send_planned(global, &args.project, request, args.dry_run)
}

pub fn unpause(global: &GlobalArgs, args: PauseArgs) -> anyhow::Result<ExitCode> {
    let request = Request::Unpause {
        services: args.services,
    };
    client::send_planned(global, &args.project, request, args.dry_run)
}
