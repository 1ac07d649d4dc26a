//! `stack`: Compose-style multi-container stacks on one Linux host.

mod cli;
mod client;
mod commands;
mod failure;
mod global_options;
mod helper;
mod progress;
mod project_args;
mod table;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The same binary is the containers' init stage: when started as one,
    // this never returns.
    stack_runtime::init_main();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == commands::docker_plugin::METADATA_COMMAND)
    {
        println!("{}", commands::docker_plugin::metadata());
        return ExitCode::SUCCESS;
    }
    let by_client = commands::docker_plugin::run_by_client();
    let cli = cli::Cli::parse_from(commands::docker_plugin::arguments(args, by_client));
    init_tracing(cli.global.verbose);
    if let Err(err) = check_cgroup_manager() {
        return failure::report(&err, false);
    }
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => failure::report(&err, false),
    }
}

/// `STACK_CGROUP_MANAGER` is read where containers are made, in a
/// project's supervisor, which may already run with the environment of the
/// command that started it: a value that cannot be honoured is refused here,
/// in the command the user typed, rather than ignored there.
fn check_cgroup_manager() -> anyhow::Result<()> {
    use stack_runtime::cgroups::{detect_version, systemd};
    if let Some(value) = std::env::var_os(systemd::ENV) {
        let value = value.to_string_lossy();
        systemd::choose(Some(&value), detect_version()?, false, systemd::systemd_up)?;
    }
    Ok(())
}

/// The error and its causes joined by `: `, each said once: a cause whose
/// text the message above it already ends with (a library error that
/// prints its source and also returns it as its source) is left out.
fn chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let said = cause.to_string();
        if text.ends_with(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A supervisor's or keeper's stderr is a log file: on a full disk
        // the subscriber would report the failed write with `eprintln!`,
        // which panics on the same full disk.
        .log_internal_errors(false)
        .without_time()
        .init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_cause_is_said_once() {
        let os = std::io::Error::from_raw_os_error(104);
        /// Prints its source and returns it as its source too.
        #[derive(Debug)]
        struct Repeats {
            path: String,
            source: std::io::Error,
        }
        impl std::fmt::Display for Repeats {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}: {}", self.path, self.source)
            }
        }
        impl std::error::Error for Repeats {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.source)
            }
        }
        let err = anyhow::Error::new(Repeats {
            path: "/run/p.sock".into(),
            source: os,
        })
        .context("talking to the supervisor of p");
        let text = super::chain(&err);
        assert_eq!(
            text,
            format!(
                "talking to the supervisor of p: /run/p.sock: {}",
                std::io::Error::from_raw_os_error(104)
            )
        );
    }
}
