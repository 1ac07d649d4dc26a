//! `stack up`: make the host match the stack file.

use std::process::ExitCode;

use clap::Args;
use stack_engine::control::{Request, UpOptions};
use stack_engine::host::Host;
use stack_engine::reconcile::{ReconcileOptions, reconcile};

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Return once the services are started instead of following their logs.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Recreate containers even if their configuration did not change.
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// Keep existing containers even if their configuration changed.
    #[arg(long)]
    pub no_recreate: bool,
    /// Remove containers of services no longer in the file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Run N containers of SERVICE (overrides `scale` and `deploy.replicas`).
    #[arg(long, value_name = "SERVICE=N", value_parser = parse_scale)]
    pub scale: Vec<(String, u32)>,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Return once every service is running, healthy (when it has a health
    /// check) or exited 0; fail naming a service that cannot get there.
    /// Implies `-d`.
    #[arg(long)]
    pub wait: bool,
    /// With `--wait`: give up after this many seconds.
    #[arg(long, value_name = "SECONDS", requires = "wait")]
    pub wait_timeout: Option<u64>,
    /// Do not start the services the named ones depend on.
    #[arg(long)]
    pub no_deps: bool,
    /// Only these services (and what they depend on).
    pub services: Vec<String>,
    /// Stay attached and apply changes of the stack's files and
    /// `develop.watch` paths as they are saved (see `stack watch`).
    #[arg(long, conflicts_with_all = ["detach", "dry_run"])]
    pub watch: bool,
    #[command(flatten)]
    pub debounce: super::watch::DebounceArg,
}

fn parse_scale(s: &str) -> Result<(String, u32), String> {
    let (service, n) = s
        .split_once('=')
        .ok_or_else(|| format!("expected SERVICE=N, found {s:?}"))?;
    let n = n
        .parse()
        .map_err(|_| format!("expected a number of replicas, found {n:?}"))?;
    Ok((service.to_owned(), n))
}

pub fn run(global: &GlobalArgs, args: UpArgs) -> anyhow::Result<ExitCode> {
    // A bad file starts nothing: load and validate before anything else.
    let Some(loaded) = args.project.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    if args.watch {
        super::watch::check_watchable(&loaded)?;
    }
    let project = loaded.project.clone();
    if let Some(s) = args
        .services
        .iter()
        .find(|s| !project.services.contains_key(s.as_str()))
    {
        eprintln!("error: no such service: {s}");
        return Ok(ExitCode::FAILURE);
    }
    let options = UpOptions {
        force_recreate: args.force_recreate,
        no_recreate: args.no_recreate,
        remove_orphans: args.remove_orphans,
        scale: args.scale.into_iter().collect(),
        services: args.services.clone(),
        no_deps: args.no_deps,
        wait: args.wait,
        wait_timeout: args.wait_timeout,
        config_files: loaded.files.clone(),
    };
    if !args.dry_run {
        enough_space(&global.root)?;
    }
    let rt = client::runtime()?;
    if args.dry_run {
        let host = Host::new(client::host_config(global)?, project)?;
        let observed = host.observe()?;
        let plan = reconcile(
            &host.project(),
            &observed,
            &ReconcileOptions {
                force_recreate: options.force_recreate,
                no_recreate: options.no_recreate,
                remove_orphans: options.remove_orphans,
                scale: options.scale,
                services: if options.services.is_empty() {
                    None
                } else if options.no_deps {
                    Some(options.services.iter().cloned().collect())
                } else {
                    Some(stack_engine::graph::with_dependencies(
                        &host.project(),
                        &options.services,
                    ))
                },
            },
        );
        print!("{plan}");
        if plan.is_empty() {
            println!("nothing to do");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let name = project.name.clone();
    let request = Request::Up {
        project: Box::new(project),
        options,
    };
    let ok = rt.block_on(client::call(global, &name, &request))?;
    if !ok {
        return Ok(ExitCode::FAILURE);
    }
    if args.detach || args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    // Attached: follow every service's logs until Ctrl-C, then stop them.
    let quiet = std::time::Duration::from_millis(args.debounce.debounce_ms);
    rt.block_on(async {
        let follow = super::logs::follow_all(global, &name);
        let watch = async {
            if args.watch {
                super::watch::watch(global, &args.project, loaded, quiet).await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            r = follow => r,
            r = watch => r,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("stopping {name} (Ctrl-C again to force)");
                let request = Request::Stop {
                    services: vec![],
                    timeout: None,
                };
                let stop = client::call(global, &name, &request);
                tokio::select! {
                    r = stop => r.map(|_| ()),
                    _ = tokio::signal::ctrl_c() => Ok(()),
                }
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// What `up` needs free under the root before it starts: the state files,
/// container directories and the first logs of a stack, with room to spare.
/// Below this, it would fail half-way with a bare "no space left".
const MIN_FREE: u64 = 32 << 20;

fn enough_space(root: &std::path::Path) -> anyhow::Result<()> {
    let free = stack_fs::available(root)?;
    if free < MIN_FREE {
        anyhow::bail!(
            "not enough space under {}: up needs at least {} MiB free, {} KiB are",
            root.display(),
            MIN_FREE >> 20,
            free >> 10
        );
    }
    Ok(())
}
