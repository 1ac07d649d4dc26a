//! `stack __supervise PROJECT`: the project's supervisor process, started
//! by the other commands; not meant to be run by hand.

use std::os::fd::OwnedFd;
use std::process::ExitCode;

use clap::Args;

use crate::cli::GlobalArgs;
use crate::client;

#[derive(Debug, Args)]
pub struct SuperviseArgs {
    pub project: String,
    /// A pipe's write end, closed once the socket listens (so its starter
    /// connects then, rather than polling for the socket).
    #[arg(long)]
    pub ready_fd: Option<i32>,
}

pub fn run(global: &GlobalArgs, args: SuperviseArgs) -> anyhow::Result<ExitCode> {
    let config = client::host_config(global)?;
    // SAFETY: the starter passed this descriptor to this process alone, for
    // it to own (see `client::spawn_supervisor`).
    let ready = args
        .ready_fd
        .map(|fd| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    client::runtime()?.block_on(stack_engine::api::serve_supervisor(
        config,
        &args.project,
        ready,
    ))?;
    Ok(ExitCode::SUCCESS)
}
