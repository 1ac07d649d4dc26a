//! `stack create`: make the stack's containers (and their networks,
//! volumes and images) without starting any, as `docker compose create`
//! and `up --no-start`; `ps -a` shows them `created` until `start` or `up`
//! starts them. The same plan as `up`, with its starts left out.

use std::process::ExitCode;

use clap::Args;
use stack_engine::api::UpOptions;

use super::up::{PullArg, apply_pull, check_orphan_options, parse_scale, send_up, unknown_service};
use crate::cli::GlobalArgs;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Build again the images of services whose build inputs changed.
    #[arg(long, conflicts_with = "no_build")]
    pub build: bool,
    /// Never build.
    #[arg(long)]
    pub no_build: bool,
    /// Recreate containers even if their configuration did not change.
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// Keep existing containers even if their configuration changed.
    #[arg(long)]
    pub no_recreate: bool,
    /// Pull images `always`, when `missing`, or `never`, over each
    /// service's `pull_policy`.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub pull: Option<PullArg>,
    /// Pull without progress lines.
    #[arg(long)]
    pub quiet_pull: bool,
    /// Remove containers of services no longer in the file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Make N containers of SERVICE.
    #[arg(long, value_name = "SERVICE=N", value_parser = parse_scale)]
    pub scale: Vec<(String, u32)>,
    /// Answer yes: recreate a volume whose configuration changed.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only these services (and what they depend on).
    pub services: Vec<String>,
    /// `COMPOSE_IGNORE_ORPHANS`: no warning about orphan containers.
    #[arg(skip)]
    pub ignore_orphans: bool,
}

pub fn run(global: &GlobalArgs, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let Some(loaded) = args.project.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    check_orphan_options(args.ignore_orphans, args.remove_orphans)?;
    let mut project = loaded.project;
    apply_pull(&mut project, args.pull);
    if let Some(s) = unknown_service(&project, &args.services) {
        eprintln!("error: no such service: {s}");
        return Ok(ExitCode::FAILURE);
    }
    let options = UpOptions {
        force_recreate: args.force_recreate,
        no_recreate: args.no_recreate,
        remove_orphans: args.remove_orphans,
        scale: args.scale.into_iter().collect(),
        services: args.services,
        config_files: loaded.files,
        recreate_volumes: args.yes,
        build: args.build,
        no_build: args.no_build,
        no_start: true,
        ignore_orphans: args.ignore_orphans,
        ..UpOptions::default()
    };
    send_up(global, project, options, args.dry_run, args.quiet_pull)?;
    Ok(ExitCode::SUCCESS)
}
