//! `stack rm`: remove stopped containers (`-s`: stop them first).

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::Args;
use stack_engine::control::Request;

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

/// `-f` is `--force` here, as in compose; the stack file is `--file`.
#[derive(Debug, Args)]
#[command(mut_arg("files", |a| a.short(None)))]
pub struct RmArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Stop the containers first.
    #[arg(short = 's', long)]
    pub stop: bool,
    /// Remove the containers' anonymous volumes (they always go with the
    /// container here).
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Only these services (default: all).
    pub services: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: RmArgs) -> anyhow::Result<ExitCode> {
    // Asked only at a terminal: scripts get compose's `-f` behaviour.
    if !args.force && !args.dry_run && crate::terminal::stdin_is_tty() {
        eprint!("Going to remove the stopped containers. Are you sure? [yN] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let request = Request::Remove {
        services: args.services,
        stop: args.stop,
        volumes: args.volumes,
    };
    client::send_planned(global, &args.project, request, args.dry_run)
}
