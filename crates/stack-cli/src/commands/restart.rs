//! `stack restart`: stop and start again, with the services that restart
//! with those named unless `--no-deps`; each container keeps its id,
//! address and volumes.

use std::process::ExitCode;

use clap::Args;
use stack_engine::api::Request;

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for each container to stop before killing it.
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Only the services named, not those that restart with them
    /// (`depends_on` with `restart: true`, shared namespaces).
    #[arg(long)]
    pub no_deps: bool,
    /// Only these services (default: all).
    pub services: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: RestartArgs) -> anyhow::Result<ExitCode> {
    let request = Request::Restart {
        services: args.services,
        timeout: args.timeout,
        no_deps: args.no_deps,
    };
    client::send_planned(global, &args.project, request, args.dry_run)
}
