//! Command-line types. Each subcommand's own arguments live in its module under
//! `commands/`, so this file only wires them together.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands;

#[derive(Debug, Parser)]
#[command(
    name = "stack",
    version,
    about = "Compose-style multi-container stacks on one Linux host, no daemon",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands, placed before or after the subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Directory for images, volumes, containers and state.
    #[arg(
        long,
        global = true,
        env = "STACK_ROOT",
        default_value = "/var/lib/stack"
    )]
    pub root: PathBuf,
    /// Directory for supervisor sockets and locks.
    #[arg(long, global = true, env = "STACK_RUN", default_value = "/run/stack")]
    pub run_dir: PathBuf,
    /// More log output (once: info, twice: debug, three times: trace);
    /// STACK_LOG overrides. (`-v` belongs to `down -v`, as in compose.)
    #[arg(long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// docker compose's options before the subcommand.
    #[command(flatten)]
    pub compose: crate::global_options::ComposeOptions,
    /// How progress is shown, from `--progress`, `--ansi` and their
    /// variables (see `global_options::apply`).
    #[arg(skip)]
    pub progress: crate::progress::Mode,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the stack file and print its normalised model.
    Config(commands::config::ConfigArgs),
    /// Manage images: pull, load, list, inspect, tag, remove, prune.
    #[command(subcommand)]
    Image(commands::image::ImageCommand),
    /// Run and manage single containers: run, ls, logs, stop, rm, exec ...
    #[command(subcommand)]
    Container(commands::container::ContainerCommand),
    /// Build the images of services with `build:`.
    Build(commands::build::BuildArgs),
    /// Manage the build cache: prune.
    #[command(subcommand)]
    Builder(commands::builder::BuilderCommand),
    /// Create and start the stack's containers, networks and volumes.
    // `-V` is compose's `--renew-anon-volumes` here, not `--version`.
    #[command(disable_version_flag = true)]
    Up(commands::up::UpArgs),
    /// Create the stack's containers (networks, volumes, images too) without starting them.
    Create(commands::create::CreateArgs),
    /// Stop and remove the stack's containers and networks (`-v`: volumes too).
    Down(commands::down::DownArgs),
    /// List the stack's containers.
    Ps(commands::ps::PsArgs),
    /// Show the services' output.
    Logs(commands::logs::LogsArgs),
    /// Print the host address a container port is published on.
    Port(commands::port::PortArgs),
    /// Start the stopped containers, dependencies first.
    Start(commands::start::StartArgs),
    /// Stop the running containers, keeping them.
    Stop(commands::stop::StopArgs),
    /// Stop and start the containers again.
    Restart(commands::restart::RestartArgs),
    /// Send a signal to the containers (SIGKILL by default).
    Kill(commands::kill::KillArgs),
    /// Freeze the containers' processes.
    Pause(commands::pause::PauseArgs),
    /// Thaw paused containers.
    Unpause(commands::pause::PauseArgs),
    /// Remove stopped containers.
    Rm(commands::rm::RmArgs),
    /// Run a command in a running container.
    Exec(commands::exec::ExecArgs),
    /// Show a running container's output until it exits (Ctrl-P Ctrl-Q detaches).
    Attach(commands::attach::AttachArgs),
    /// Install stack as the docker client's `compose` plugin.
    #[command(subcommand)]
    DockerPlugin(commands::docker_plugin::DockerPluginCommand),
    /// Copy files between a service's container and the host.
    Cp(commands::cp::CpArgs),
    /// Pull the services' images.
    Pull(commands::pull::PullArgs),
    /// Push the images of services with `build:` and `image:`.
    Push(commands::push::PushArgs),
    /// Run a one-off container of a service.
    Run(commands::run::RunArgs),
    /// Show the containers' processes.
    Top(commands::top::TopArgs),
    /// List the images the containers use.
    Images(commands::images::ImagesArgs),
    /// List the projects.
    Ls(commands::ls::LsArgs),
    /// Show the services' dependency graph and start order.
    Graph(commands::graph::GraphArgs),
    /// Follow the stack's files and `develop.watch` paths and apply changes as they are saved.
    Watch(commands::watch::WatchArgs),
    /// Print a shell completion script.
    Completion(commands::completion::CompletionArgs),
    /// Run N containers of each named service (SERVICE=N).
    Scale(commands::scale::ScaleArgs),
    /// Wait for the containers to stop; exit with the first one's code.
    Wait(commands::wait::WaitArgs),
    /// Show the version.
    Version(commands::version::VersionArgs),
    /// Write the man pages (generated from this command line).
    Man(commands::man::ManArgs),
    /// Stream the project's container events.
    Events(commands::events::EventsArgs),
    /// Live resource usage of the project's containers.
    Stats(commands::stats::StatsArgs),
    /// Everything known about a container, as JSON.
    Inspect(commands::inspect::InspectArgs),
    /// Generate init-system units for the stack.
    #[command(subcommand)]
    Systemd(commands::systemd::SystemdCommand),
    /// A service container's filesystem as a tar archive; or the stack beyond
    /// one host: Kubernetes manifests or a Swarm compose file.
    Export(commands::export::ExportArgs),
    /// Run a project's log keeper (started by its supervisor).
    #[command(name = "__logs", hide = true)]
    LogKeeper(commands::log_keeper::LogKeeperArgs),
    /// Run a project's supervisor (started by the other commands).
    #[command(name = "__supervise", hide = true)]
    Supervise(commands::supervise::SuperviseArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Catches clashing flags in any subcommand (clap checks lazily, at
    /// parse time of that subcommand, otherwise).
    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
