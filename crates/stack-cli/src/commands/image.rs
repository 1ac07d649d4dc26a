//! `stack image ...`: the image store from the command line.

use std::process::ExitCode;

use clap::Subcommand;

use crate::cli::GlobalArgs;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {}

pub fn run(_global: &GlobalArgs, cmd: ImageCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
