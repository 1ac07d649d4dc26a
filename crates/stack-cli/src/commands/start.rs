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
    /// Only these services (default: all).
    pub services: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: StartArgs) -> anyhow::Result<ExitCode> {
    let request = Request::Start {
        services: args.services,
    };
    client::send(global, &args.project, request)
}
