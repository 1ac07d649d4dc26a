//! One module per subcommand; each returns the process exit code.

pub mod completion;
pub mod config;
pub mod image;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Config(args) => config::run(&cli.global, args),
        Command::Image(cmd) => image::run(&cli.global, cmd),
        Command::Completion(args) => completion::run(args),
    }
}
