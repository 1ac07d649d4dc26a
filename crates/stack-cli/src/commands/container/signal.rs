//! `stack container stop` and `kill`: signals to a running container.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use nix::sys::signal::Signal;
use stack_runtime::Container;

use super::create::runtime_root;
use super::record::{Record, Records, State};
use super::remove::wait_stopped;
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before SIGKILL.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short, long, default_value = "KILL", value_parser = crate::commands::kill::parse_signal)]
    pub signal: i32,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

fn running(global: &GlobalArgs, key: &str) -> anyhow::Result<(Record, Container)> {
    let record = Records::new(&global.root).find(key)?;
    let root = runtime_root(&global.root);
    match record.live_state(&root) {
        State::Running | State::Paused => {}
        _ => anyhow::bail!("container {key} is not running"),
    }
    let container = Container::load(&root, &record.id)?;
    Ok((record, container))
}

fn each(keys: &[String], mut f: impl FnMut(&str) -> anyhow::Result<()>) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for key in keys {
        match f(key) {
            Ok(()) => println!("{key}"),
            Err(e) => {
                eprintln!("error: {e:#}");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}

pub fn stop(global: &GlobalArgs, args: StopArgs) -> anyhow::Result<ExitCode> {
    Ok(each(&args.containers, |key| {
        let record = Records::new(&global.root).find(key)?;
        let root = runtime_root(&global.root);
        if !matches!(record.live_state(&root), State::Running | State::Paused) {
            // Stopping a stopped container is not an error, as in Docker.
            return Ok(());
        }
        let container = match Container::load(&root, &record.id) {
            Ok(c) => c,
            // It ended and its monitor, recording the exit, already took
            // the runtime state away.
            Err(_) if !record.is_alive() => {
                wait_stopped(global, &record.id, Duration::from_secs(10));
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        // A frozen process cannot act on its stop signal.
        let _ = container.cgroup().freeze(false);
        let signal = Signal::try_from(record.stop_signal).unwrap_or(Signal::SIGTERM);
        let _ = container.kill(signal);
        if !wait_stopped(global, &record.id, Duration::from_secs(args.time)) {
            let _ = container.kill_all(Signal::SIGKILL);
            if !wait_stopped(global, &record.id, Duration::from_secs(10)) {
                anyhow::bail!("container {key} did not stop");
            }
        }
        Ok(())
    }))
}

pub fn kill(global: &GlobalArgs, args: KillArgs) -> anyhow::Result<ExitCode> {
    let signal = Signal::try_from(args.signal)?;
    Ok(each(&args.containers, |key| {
        let (record, container) = running(global, key)?;
        container.kill(signal)?;
        // As Docker's: after SIGKILL the container is gone, its exit
        // recorded, when `kill` returns, so a `rm` right after needs no -f.
        if signal == Signal::SIGKILL && !wait_stopped(global, &record.id, Duration::from_secs(10)) {
            anyhow::bail!("container {key} did not stop after SIGKILL");
        }
        Ok(())
    }))
}

pub fn pause(global: &GlobalArgs, keys: &[String], freeze: bool) -> anyhow::Result<ExitCode> {
    Ok(each(keys, |key| {
        let (_, mut container) = running(global, key)?;
        if freeze {
            container.pause()?;
        } else {
            container.resume()?;
        }
        Ok(())
    }))
}
