//! `stack config`: load, validate and print the normalised project.

use std::process::ExitCode;

use clap::Args;

use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct ConfigArgs {}

pub fn run(_global: &GlobalArgs, _args: ConfigArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("stack config is not available yet")
}
