//! `stack kill`: send a signal to the containers' main processes. The
//! container counts as stopped by the user, so no policy restarts it.

use std::process::ExitCode;
use std::str::FromStr;

use clap::Args;
use nix::sys::signal::Signal;
use stack_engine::control::Request;

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct KillArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The signal: a name (`KILL`, `SIGHUP`) or a number.
    #[arg(short = 's', long, default_value = "SIGKILL", value_parser = parse_signal)]
    pub signal: i32,
    /// Only these services (default: all).
    pub services: Vec<String>,
}

/// `SIGHUP`, `hup`, `HUP` or `1`.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map(|sig| sig as i32)
            .map_err(|_| format!("invalid signal number {n}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name)
        .map(|sig| sig as i32)
        .map_err(|_| format!("invalid signal {s:?}"))
}

pub fn run(global: &GlobalArgs, args: KillArgs) -> anyhow::Result<ExitCode> {
    let request = Request::Kill {
        services: args.services,
        signal: args.signal,
    };
    client::send(global, &args.project, request)
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
