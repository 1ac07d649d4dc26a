//! `stack __supervise PROJECT`: the project's supervisor process, started
//! by the other commands; not meant to be run by hand.

use std::process::ExitCode;

use clap::Args;

use crate::cli::GlobalArgs;
use crate::client;

#[derive(Debug, Args)]
pub struct SuperviseArgs {
    pub project: String,
}

pub fn run(global: &GlobalArgs, args: SuperviseArgs) -> anyhow::Result<ExitCode> {
    let config = client::host_config(global)?;
    client::runtime()?.block_on(stack_engine::supervisor::serve(config, &args.project))?;
    Ok(ExitCode::SUCCESS)
}
