//! `stack builder prune`: reclaims what builds keep between runs (the step
//! cache, `RUN --mount=type=cache` directories) and the layers only that
//! cache still referenced, like `docker builder prune`.

use std::collections::HashSet;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use stack_image::Store;

use crate::cli::GlobalArgs;

#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Remove the build cache: step entries, cache mounts, unused layers.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Accepted for compatibility: all of the cache goes.
    #[arg(short, long)]
    pub all: bool,
    /// Accepted for compatibility; prune never asks.
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(global: &GlobalArgs, cmd: BuilderCommand) -> anyhow::Result<ExitCode> {
    let BuilderCommand::Prune(_) = cmd;
    let pruned = stack_build::cache::prune(&global.root)
        .with_context(|| format!("pruning {}", global.root.join("build-cache").display()))?;
    // Every image stays; what goes is what only the cache referenced.
    let store = Store::open(&global.root)?;
    let keep: HashSet<_> = store.list()?.into_iter().map(|i| i.id).collect();
    let report = store.prune(&keep, false)?;
    println!(
        "Deleted {} cache entries, {} cache mounts, {} layers",
        pruned.entries, pruned.mounts, report.blobs
    );
    println!(
        "Total reclaimed space: {}",
        crate::table::human_size(pruned.bytes + report.bytes)
    );
    Ok(ExitCode::SUCCESS)
}
