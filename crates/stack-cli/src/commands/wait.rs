//! `stack wait [SERVICE...]`: as `docker compose wait`, block until the
//! containers (of these services) have stopped, and exit with the code of
//! the first of them to exit; `--down-project` then takes the project down.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use stack_engine::api::ContainerState;
use stack_engine::api::Records;

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Take the project down (containers and networks) once they have stopped.
    #[arg(long)]
    pub down_project: bool,
    /// Only these services' containers.
    pub services: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: WaitArgs) -> anyhow::Result<ExitCode> {
    let Some(name) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let store = Records::new(&global.root);
    let chosen =
        |service: &str| args.services.is_empty() || args.services.iter().any(|s| s == service);
    if !store.containers(&name)?.iter().any(|r| chosen(&r.service)) {
        eprintln!("error: no containers to wait for in {name}");
        return Ok(ExitCode::FAILURE);
    }
    client::ensure_supervisor(global, &name)?;
    // The exit with the earliest time among those that have stopped.
    let code = loop {
        let records: Vec<_> = store
            .containers(&name)?
            .into_iter()
            .filter(|r| chosen(&r.service))
            .collect();
        let live = records.iter().any(|r| {
            matches!(
                r.live_state(),
                ContainerState::Running | ContainerState::Restarting | ContainerState::Paused
            )
        });
        if !live {
            break records
                .iter()
                .filter_map(|r| r.last_exit)
                .min_by_key(|e| e.at_ms)
                .and_then(|e| e.code)
                .unwrap_or(0);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if args.down_project {
        let down = super::down::DownArgs {
            project: args.project.clone(),
            volumes: false,
            remove_orphans: false,
            rmi: None,
            timeout: None,
            dry_run: false,
        };
        if super::down::run(global, down)? != ExitCode::SUCCESS {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
