//! `stack kill`: send a signal to the containers' main processes. The
//! container counts as stopped by the user, so no policy restarts it.

use std::process::ExitCode;

use clap::Args;
use stack_engine::api::Request;

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct KillArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The signal: a name (`KILL`, `SIGHUP`) or a number.
    #[arg(short = 's', long, default_value = "SIGKILL", value_parser = parse_signal)]
    pub signal: i32,
    /// Signal the containers of services no longer in the file too.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Only these services (default: all).
    pub services: Vec<String>,
}

/// `SIGHUP`, `hup`, `HUP` or `1` (clap's value parser).
pub fn parse_signal(s: &str) -> Result<i32, String> {
    stack_spec::signal::number(s).map_err(|e| e.to_string())
}

pub fn run(global: &GlobalArgs, args: KillArgs) -> anyhow::Result<ExitCode> {
    let request = Request::Kill {
        services: args.services,
        signal: args.signal,
        remove_orphans: args.remove_orphans,
    };
    client::send_planned(global, &args.project, request, args.dry_run)
}

#[cfg(test)]
mod tests {
    use super::parse_signal;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("HUP"), Ok(libc::SIGHUP));
        assert_eq!(parse_signal("sigusr1"), Ok(libc::SIGUSR1));
        assert_eq!(parse_signal("9"), Ok(libc::SIGKILL));
        assert!(parse_signal("SIGNOPE").unwrap_err().contains("SIGNOPE"));
        assert!(parse_signal("999").is_err());
    }
}
