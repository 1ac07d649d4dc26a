//! Where the container-side helper (`stack-init`, see `src/bin/stack-init.rs`)
//! is: beside the `stack` binary, installed with it. Missing, it is an error
//! naming both paths, rather than falling back to re-executing the CLI.

use std::path::PathBuf;

use anyhow::{Context, bail};

/// The helper's file name.
pub const INIT_HELPER: &str = "stack-init";

/// The `stack` binary itself (for its own subcommands: the supervisor, the log keeper).
pub fn stack_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the stack binary")
}

/// The init stage for containers, execs and probes.
pub fn init_binary() -> anyhow::Result<PathBuf> {
    let stack = stack_binary()?;
    let helper = stack.with_file_name(INIT_HELPER);
    if !helper.is_file() {
        bail!(
            "cannot find {} beside {}: it is built and installed with stack (cargo build -p stack-cli, scripts/package)",
            helper.display(),
            stack.display()
        );
    }
    Ok(helper)
}
