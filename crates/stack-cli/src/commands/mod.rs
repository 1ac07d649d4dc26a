//! One module per subcommand; each returns the process exit code.

pub mod completion;
pub mod config;
pub mod down;
pub mod events;
pub mod image;
pub mod inspect;
pub mod log_keeper;
pub mod logs;
pub mod port;
pub mod ps;
pub mod stats;
pub mod supervise;
pub mod systemd;
pub mod up;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Config(args) => config::run(&cli.global, args),
        Command::Image(cmd) => image::run(&cli.global, cmd),
        Command::Completion(args) => completion::run(args),
        Command::Up(args) => up::run(&cli.global, args),
        Command::Down(args) => down::run(&cli.global, args),
        Command::Ps(args) => ps::run(&cli.global, args),
        Command::Logs(args) => logs::run(&cli.global, args),
        Command::Port(args) => port::run(&cli.global, args),
        Command::Supervise(args) => supervise::run(&cli.global, args),
        Command::LogKeeper(args) => log_keeper::run(&cli.global, args),
        Command::Events(args) => events::run(&cli.global, args),
        Command::Stats(args) => stats::run(&cli.global, args),
        Command::Inspect(args) => inspect::run(&cli.global, args),
        Command::Systemd(cmd) => systemd::run(&cli.global, cmd),
    }
}
