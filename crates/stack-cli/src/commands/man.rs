//! `stack man [DIR]`: man pages generated from the clap types (clap_mangen),
//! so they never drift from the command line: `stack.1` and one
//! `stack-COMMAND.1` per subcommand into DIR, or `stack.1` on standard output.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory};

use crate::cli::Cli;

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every page into this directory (e.g. /usr/local/share/man/man1).
    pub dir: Option<PathBuf>,
}

fn render(cmd: clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .context("rendering the man page")?;
    Ok(out)
}

pub fn run(args: ManArgs) -> anyhow::Result<ExitCode> {
    let cmd = Cli::command();
    let Some(dir) = args.dir else {
        std::io::Write::write_all(&mut std::io::stdout(), &render(cmd)?)?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, page: Vec<u8>| {
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("stack-{}", sub.get_name());
        write(&name, render(sub.clone())?)?;
    }
    write("stack", render(cmd)?)?;
    Ok(ExitCode::SUCCESS)
}
