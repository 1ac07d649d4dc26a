//! `stack push`: the images of the services that build one (`build:` with
//! `image:` naming where it goes) to their registries, as `docker compose
//! push` does; every other service is skipped.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use stack_image::Store;

use super::transfer;
use crate::cli::GlobalArgs;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Warn about an image that cannot be pushed and go on (exit 0).
    #[arg(long)]
    pub ignore_push_failures: bool,
    /// Also the services the named ones depend on.
    #[arg(long)]
    pub include_deps: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only these services (default: every one).
    pub services: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: PushArgs) -> anyhow::Result<ExitCode> {
    let Some(loaded) = args.project.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    let project = &loaded.project;
    let store = Store::open(&global.root)
        .with_context(|| format!("opening the image store under {}", global.root.display()))?;
    let opts = transfer::options()?;
    let rt = transfer::runtime()?;
    let mut failed = false;
    for (name, service) in transfer::selected(project, &args.services, args.include_deps)? {
        let (Some(image), Some(_)) = (service.image.as_deref(), &service.build) else {
            transfer::line(args.quiet, name, "Skipped");
            continue;
        };
        transfer::line(args.quiet, name, "Pushing");
        let result =
            transfer::reference(image).and_then(|r| Ok(rt.block_on(store.push(&r, &opts))?));
        match result {
            Ok(_) => transfer::line(args.quiet, name, "Pushed"),
            Err(e) if args.ignore_push_failures => eprintln!("warning: {name}: {e:#}"),
            Err(e) => {
                eprintln!("error: {name}: {e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
