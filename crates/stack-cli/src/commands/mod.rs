//! One module per subcommand; each returns the process exit code.

pub mod attach;
pub mod build;
pub mod builder;
pub mod completion;
pub mod config;
pub mod container;
pub mod cp;
pub mod create;
pub mod docker_plugin;
pub mod down;
pub mod events;
pub mod exec;
pub mod export;
pub mod graph;
pub mod image;
pub mod images;
pub mod inspect;
pub mod kill;
pub mod log_keeper;
pub mod logs;
pub mod ls;
pub mod man;
pub mod pause;
pub mod port;
pub mod ps;
pub mod pull;
pub mod push;
pub mod restart;
pub mod rm;
pub mod run;
pub mod scale;
pub mod start;
pub mod stats;
pub mod stop;
pub mod supervise;
pub mod systemd;
pub mod top;
pub mod transfer;
pub mod up;
pub mod version;
pub mod wait;
pub mod watch;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    match crate::global_options::apply(&mut cli, &|k| std::env::var(k).ok()) {
        Ok(warnings) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    }
    match cli.command {
        Command::Config(args) => config::run(&cli.global, args),
        Command::Image(cmd) => image::run(&cli.global, cmd),
        Command::Container(cmd) => container::run(&cli.global, cmd),
        Command::Completion(args) => completion::run(args),
        Command::Build(args) => build::run(&cli.global, args),
        Command::Builder(cmd) => builder::run(&cli.global, cmd),
        Command::Version(args) => version::run(args),
        Command::Wait(args) => wait::run(&cli.global, args),
        Command::Scale(args) => scale::run(&cli.global, args),
        Command::Man(args) => man::run(args),
        Command::Up(args) => up::run(&cli.global, args),
        Command::Create(args) => create::run(&cli.global, args),
        Command::Down(args) => down::run(&cli.global, args),
        Command::Ps(args) => ps::run(&cli.global, args),
        Command::Logs(args) => logs::run(&cli.global, args),
        Command::Port(args) => port::run(&cli.global, args),
        Command::Start(args) => start::run(&cli.global, args),
        Command::Stop(args) => stop::run(&cli.global, args),
        Command::Restart(args) => restart::run(&cli.global, args),
        Command::Kill(args) => kill::run(&cli.global, args),
        Command::Pause(args) => pause::pause(&cli.global, args),
        Command::Unpause(args) => pause::unpause(&cli.global, args),
        Command::Rm(args) => rm::run(&cli.global, args),
        Command::Exec(args) => exec::run(&cli.global, args),
        Command::Cp(args) => cp::run(&cli.global, args),
        Command::DockerPlugin(cmd) => docker_plugin::run(cmd),
        Command::Attach(args) => attach::run(&cli.global, args),
        Command::Pull(args) => pull::run(&cli.global, args),
        Command::Push(args) => push::run(&cli.global, args),
        Command::Run(args) => run::run(&cli.global, args),
        Command::Top(args) => top::run(&cli.global, args),
        Command::Images(args) => images::run(&cli.global, args),
        Command::Ls(args) => ls::run(&cli.global, args),
        Command::Graph(args) => graph::run(args),
        Command::Watch(args) => watch::run(&cli.global, args),
        Command::Supervise(args) => supervise::run(&cli.global, args),
        Command::LogKeeper(args) => log_keeper::run(&cli.global, args),
        Command::Events(args) => events::run(&cli.global, args),
        Command::Stats(args) => stats::run(&cli.global, args),
        Command::Inspect(args) => inspect::run(&cli.global, args),
        Command::Systemd(cmd) => systemd::run(&cli.global, cmd),
        Command::Export(cmd) => export::run(&cli.global, cmd),
    }
}
