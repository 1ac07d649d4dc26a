//! `stack container rm`: a request to the supervisor of the single
//! containers, which takes the container away as `stack rm` does (runtime
//! state, cgroup, root filesystem, network endpoint, record); with the last
//! container of the root go the default bridge and the supervisor itself.

use std::process::ExitCode;

use clap::Args;
use stack_engine::api::Request;

use super::found;
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill a running container before removing it.
    #[arg(short, long)]
    pub force: bool,
    /// Remove its anonymous volumes too.
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: RmArgs) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for key in &args.containers {
        let result = (|| -> anyhow::Result<()> {
            let record = found::find(global, key)?;
            if found::is_up(&record) && !args.force {
                anyhow::bail!(
                    "cannot remove container {key}: it is {}; stop it first or use -f",
                    if record.live_state() == stack_engine::observed::ContainerState::Paused {
                        "paused"
                    } else {
                        "running"
                    }
                );
            }
            let services = vec![record.service.clone()];
            if args.force {
                // At once, as Docker's SIGKILL; a stop also keeps the
                // restart policy from bringing it back.
                found::call(
                    global,
                    &Request::Stop {
                        services: services.clone(),
                        timeout: Some(0),
                    },
                )?;
            }
            found::call(
                global,
                &Request::Remove {
                    services,
                    stop: false,
                    volumes: args.volumes,
                },
            )?;
            Ok(())
        })();
        match result {
            Ok(()) => println!("{key}"),
            Err(e) => {
                eprintln!("error: {e:#}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
