//! `stack version`: as `docker compose version` (`--short`, `--format json`),
//! so scripts that check the version keep working.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Pretty,
    Json,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Only the version number.
    #[arg(long)]
    pub short: bool,
    #[arg(short = 'f', long, value_enum, default_value = "pretty")]
    pub format: Format,
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn text(args: &VersionArgs) -> String {
    match (args.short, args.format) {
        (true, _) => VERSION.to_owned(),
        (false, Format::Json) => serde_json::json!({ "version": VERSION }).to_string(),
        (false, Format::Pretty) => format!("stack version {VERSION}"),
    }
}

pub fn run(args: VersionArgs) -> anyhow::Result<ExitCode> {
    println!("{}", text(&args));
    Ok(ExitCode::SUCCESS)
}
