//! `stack __logs PROJECT`: the project's log keeper (see
//! `stack_engine::log_keeper`), started by its supervisor; not meant to be run
//! by hand.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use stack_engine::api::lock::ProjectLock;
use stack_engine::api::log_keeper;

use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct LogKeeperArgs {
    pub project: String,
}

pub fn run(global: &GlobalArgs, args: LogKeeperArgs) -> anyhow::Result<ExitCode> {
    // One keeper per project: a second one started in a race just leaves.
    let Ok(_lock) = ProjectLock::acquire(
        &global.run_dir,
        &format!("{}.logs", args.project),
        "stack log keeper",
        Duration::ZERO,
    ) else {
        return Ok(ExitCode::SUCCESS);
    };
    let socket = log_keeper::socket_path(&global.run_dir, &args.project);
    let project_dir = stack_fs::Layout::of_root(&global.root).project(&args.project);
    // One thread is plenty for copying pipes, and keeps the keeper small.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(log_keeper::serve(
            socket,
            project_dir,
            stack_engine::api::socket_path(&global.run_dir, &args.project),
        ))?;
    Ok(ExitCode::SUCCESS)
}
