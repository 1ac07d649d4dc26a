//! `stack`: Compose-style multi-container stacks on one Linux host.

mod cli;
mod client;
mod commands;
mod failure;
mod global_options;
mod project_args;
mod table;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The same binary is the containers' init stage: when started as one,
    // this never returns.
    stack_runtime::init_main();
    let cli = cli::Cli::parse();
    init_tracing(cli.global.verbose);
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => failure::report(&err, false),
    }
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
        .without_time()
        .init();
}
