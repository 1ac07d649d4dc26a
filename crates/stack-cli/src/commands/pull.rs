//! `stack pull`: the services' images from their registries, as `docker
//! compose pull` pulls them. A service with no `image:` (only `build:`),
//! or whose `pull_policy` is `never` or `build`, is skipped; one with both
//! `build:` and `image:` that fails to pull is warned about (it can be
//! built) instead of failing the command.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use stack_image::Store;
use stack_spec::model::PullPolicy;

use super::transfer;
use crate::cli::GlobalArgs;
use crate::project_args::ProjectArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Policy {
    /// Only images not in the store yet.
    Missing,
    /// Every image, also those in the store.
    Always,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Warn about an image that cannot be pulled and go on (exit 0).
    #[arg(long)]
    pub ignore_pull_failures: bool,
    /// Also the services the named ones depend on.
    #[arg(long)]
    pub include_deps: bool,
    /// Which images to pull, over each service's `pull_policy`.
    #[arg(long, value_enum)]
    pub policy: Option<Policy>,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only these services (default: every one).
    pub services: Vec<String>,
}

/// What to do for one service, decided from its keys, the store and `--policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Pull,
    Skip(&'static str),
}

pub fn decide(
    image: Option<&str>,
    service_policy: Option<PullPolicy>,
    policy: Option<Policy>,
    present: bool,
) -> Decision {
    if image.is_none() {
        return Decision::Skip("Skipped - No image to be pulled");
    }
    let missing_only = match (policy, service_policy) {
        (Some(Policy::Always), _) => false,
        (Some(Policy::Missing), _) => true,
        (None, Some(PullPolicy::Never | PullPolicy::Build)) => {
            return Decision::Skip("Skipped");
        }
        (None, Some(PullPolicy::Missing)) => true,
        (None, _) => false,
    };
    if missing_only && present {
        Decision::Skip("Skipped - Image is already present locally")
    } else {
        Decision::Pull
    }
}

pub fn run(global: &GlobalArgs, args: PullArgs) -> anyhow::Result<ExitCode> {
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
        let image = service.image.as_deref();
        let present = image.is_some_and(|i| store.resolve(i).is_ok());
        let decision = decide(image, service.pull_policy, args.policy, present);
        let Decision::Pull = decision else {
            if let Decision::Skip(why) = decision {
                transfer::line(args.quiet, name, why);
            }
            continue;
        };
        let image = image.unwrap_or_default();
        transfer::line(args.quiet, name, "Pulling");
        let result =
            transfer::reference(image).and_then(|r| Ok(rt.block_on(store.pull(&r, &opts))?));
        match result {
            Ok(_) => transfer::line(args.quiet, name, "Pulled"),
            Err(e) if service.build.is_some() => {
                eprintln!("warning: {name}: pull of {image} failed, it can be built: {e:#}");
            }
            Err(e) if args.ignore_pull_failures => {
                eprintln!("warning: {name}: {e:#}");
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_as_compose_pull() {
        use Decision::*;
        assert!(matches!(decide(None, None, None, false), Skip(_)));
        assert_eq!(decide(Some("a"), None, None, true), Pull);
        assert!(matches!(
            decide(Some("a"), Some(PullPolicy::Never), None, false),
            Skip(_)
        ));
        assert_eq!(
            decide(
                Some("a"),
                Some(PullPolicy::Never),
                Some(Policy::Always),
                true
            ),
            Pull
        );
        assert!(matches!(
            decide(Some("a"), None, Some(Policy::Missing), true),
            Skip(_)
        ));
        assert_eq!(decide(Some("a"), None, Some(Policy::Missing), false), Pull);
        assert!(matches!(
            decide(Some("a"), Some(PullPolicy::Missing), None, true),
            Skip(_)
        ));
    }
}
