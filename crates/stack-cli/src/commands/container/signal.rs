//! `stack container stop`, `kill`, `pause` and `unpause`: requests to the
//! supervisor of the single containers, which carries them out as it does
//! for a stack's services (its stop signal, SIGKILL after the grace time,
//! the freezer cgroup).

use std::process::ExitCode;

use clap::Args;
use stack_engine::api::ContainerState;
use stack_engine::api::Request;

use super::found;
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

/// Runs `f` for each container named, printing its name as Docker does, or
/// the error; fails when one failed.
fn each(
    global: &GlobalArgs,
    keys: &[String],
    mut f: impl FnMut(&stack_engine::api::ContainerRecord) -> anyhow::Result<()>,
) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for key in keys {
        match found::find(global, key).and_then(|r| f(&r)) {
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
    Ok(each(global, &args.containers, |record| {
        // Stopping a stopped container is not an error, as in Docker.
        if !found::is_up(record) && record.live_state() != ContainerState::Restarting {
            return Ok(());
        }
        found::call(
            global,
            &Request::Stop {
                services: vec![record.service.clone()],
                timeout: Some(args.time),
            },
        )?;
        Ok(())
    }))
}

pub fn kill(global: &GlobalArgs, args: KillArgs) -> anyhow::Result<ExitCode> {
    Ok(each(global, &args.containers, |record| {
        if !found::is_up(record) {
            anyhow::bail!("container {} is not running", record.name);
        }
        found::call(
            global,
            &Request::Kill {
                services: vec![record.service.clone()],
                signal: args.signal,
                remove_orphans: false,
            },
        )?;
        // As Docker's: after SIGKILL the container is gone, its exit
        // recorded, when `kill` returns, so a `rm` right after needs no -f.
        if args.signal == libc::SIGKILL
            && !found::wait_until(global, record, 10, |r| {
                !r.is_alive() && r.state != ContainerState::Running
            })
        {
            anyhow::bail!("container {} did not stop after SIGKILL", record.name);
        }
        Ok(())
    }))
}

pub fn pause(global: &GlobalArgs, keys: &[String], freeze: bool) -> anyhow::Result<ExitCode> {
    Ok(each(global, keys, |record| {
        if !found::is_up(record) {
            anyhow::bail!("container {} is not running", record.name);
        }
        let services = vec![record.service.clone()];
        let request = if freeze {
            Request::Pause { services }
        } else {
            Request::Unpause { services }
        };
        found::call(global, &request)?;
        Ok(())
    }))
}
