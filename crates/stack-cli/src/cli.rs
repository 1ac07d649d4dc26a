//! Command-line types. Each subcommand's own arguments live in its module under
//! `commands/`, so this file only wires them together.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands;

#[derive(Debug, Parser)]
#[command(
    name = "stack",
    version,
    about = "Compose-style multi-container stacks on one Linux host, no daemon",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands, placed before or after the subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Directory for images, volumes, containers and state.
    #[arg(long, global = true, env = "STACK_ROOT", default_value = "/var/lib/stack")]
    pub root: PathBuf,
    /// More log output (-v info, -vv debug, -vvv trace); STACK_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the stack file and print its normalised model.
    Config(commands::config::ConfigArgs),
    /// Manage images: pull, load, list, inspect, tag, remove, prune.
    #[command(subcommand)]
    Image(commands::image::ImageCommand),
    /// Print a shell completion script.
    Completion(commands::completion::CompletionArgs),
}
