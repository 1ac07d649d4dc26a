//! `stack container rm`: a request to the supervisor of the single
//! containers, which takes the container away as `stack rm` does (runtime
//! state, cgroup, root filesystem, network endpoint, record); with the last
//! container of the root go the default bridge and the supervisor itself.

use std::process::ExitCode;

use clap::Args;
use stack_engine::api::{Records, Request};

use super::found;
use crate::cli::GlobalArgs;
use crate::client;

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill a running container before removing it.
    #[arg(short, long)]
    pub force: bool,
    /// Remove its anonymous volumes too.
    #[arg(short, long)]
    pub volumes: bool,
    /// Print the plan (the containers, and the default bridge when the
    /// last one goes) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: RmArgs) -> anyhow::Result<ExitCode> {
    if args.dry_run {
        return dry_run(global, &args);
    }
    let mut code = ExitCode::SUCCESS;
    for key in &args.containers {
        let result = (|| -> anyhow::Result<()> {
            let record = found::find(global, key)?;
            if found::is_up(&record) && !args.force {
                anyhow::bail!(
                    "cannot remove container {key}: it is {}; stop it first or use -f",
                    if record.live_state() == stack_engine::api::ContainerState::Paused {
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

/// The plan of removing all of `args.containers` at once, printed.
fn dry_run(global: &GlobalArgs, args: &RmArgs) -> anyhow::Result<ExitCode> {
    let mut services = Vec::new();
    for key in &args.containers {
        services.push(found::find(global, key)?.service);
    }
    let name = found::project(global);
    let project = Records::new(&global.root)
        .saved_project(&name)
        .unwrap_or_else(|| stack_spec::Project {
            name: name.clone(),
            ..stack_spec::Project::default()
        });
    let request = Request::Remove {
        services,
        stop: args.force,
        volumes: args.volumes,
    };
    let plan = stack_engine::api::plan_lifecycle(client::host_config(global)?, project, &request)?;
    print!("{plan}");
    if plan.is_empty() {
        println!("nothing to do");
    }
    Ok(ExitCode::SUCCESS)
}
