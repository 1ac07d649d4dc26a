//! `stack container ...`: one container from an image, like `docker run`,
//! `ps`, `logs`, `stop`, `rm` ... Each container is a service of the root's
//! single-container project (`stack_engine::single`), made and kept by that
//! project's supervisor like any stack's: restart policies, health checks,
//! logs, events and adoption included.

mod create;
mod exec;
mod found;
mod inspect;
mod logs;
mod ls;
mod names;
mod remove;
mod run;
mod signal;
mod stats;
mod tty;

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct NamesArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Run a command in a new container.
    Run(Box<run::RunArgs>),
    /// List containers.
    #[command(visible_aliases = ["ps", "list"])]
    Ls(ls::LsArgs),
    /// Show containers' details as JSON.
    Inspect(inspect::InspectArgs),
    /// Show a container's output.
    Logs(logs::LogsArgs),
    /// Stop containers (their stop signal, SIGKILL after the grace time).
    Stop(signal::StopArgs),
    /// Send a signal to containers.
    Kill(signal::KillArgs),
    /// Remove containers.
    #[command(visible_alias = "remove")]
    Rm(remove::RmArgs),
    /// Freeze every process of containers.
    Pause(NamesArgs),
    /// Thaw paused containers.
    Unpause(NamesArgs),
    /// Show containers' resource use.
    Stats(stats::StatsArgs),
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
}

pub fn run(global: &GlobalArgs, cmd: ContainerCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ContainerCommand::Run(a) => run::run(global, *a),
        ContainerCommand::Ls(a) => ls::run(global, a),
        ContainerCommand::Inspect(a) => inspect::run(global, a),
        ContainerCommand::Logs(a) => logs::run(global, a),
        ContainerCommand::Stop(a) => signal::stop(global, a),
        ContainerCommand::Kill(a) => signal::kill(global, a),
        ContainerCommand::Rm(a) => remove::run(global, a),
        ContainerCommand::Pause(a) => signal::pause(global, &a.containers, true),
        ContainerCommand::Unpause(a) => signal::pause(global, &a.containers, false),
        ContainerCommand::Stats(a) => stats::run(global, a),
        ContainerCommand::Exec(a) => exec::run(global, a),
    }
}
