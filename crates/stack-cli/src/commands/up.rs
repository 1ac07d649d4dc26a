//! `stack up`: make the host match the stack file.

use std::process::ExitCode;

use clap::Args;
use stack_engine::api::{Request, StepKind, UpOptions};
use stack_spec::PullPolicy;

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
    /// Answer yes: recreate a volume whose configuration changed in the
    /// file (its data is lost) instead of refusing.
    #[arg(short = 'y', long)]
    pub yes: bool,
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
    /// Build again the images of services whose Dockerfile, build
    /// arguments or context changed since their image was built (and
    /// recreate their containers).
    #[arg(long, conflicts_with = "no_build")]
    pub build: bool,
    /// Never build: a missing image of a service with `build:` fails its
    /// create (or is pulled when `image:` names one).
    #[arg(long)]
    pub no_build: bool,
    /// Only these services (and what they depend on).
    pub services: Vec<String>,
    /// Stay attached and apply changes of the stack's files and
    /// `develop.watch` paths as they are saved (see `stack watch`).
    #[arg(long, conflicts_with_all = ["detach", "dry_run"])]
    pub watch: bool,
    #[command(flatten)]
    pub debounce: super::watch::DebounceArg,
    /// Attached: no colours.
    #[arg(long)]
    pub no_color: bool,
    /// Attached: the lines without the `service-N | ` prefix.
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Attached: show timestamps.
    #[arg(long)]
    pub timestamps: bool,
    /// Attached: stop every container once one exits; exit with its code.
    #[arg(long, conflicts_with_all = ["detach", "wait", "watch"])]
    pub abort_on_container_exit: bool,
    /// Attached: stop every container once one exits with a non-zero code;
    /// exit with that code.
    #[arg(long, conflicts_with_all = ["detach", "wait", "watch", "abort_on_container_exit"])]
    pub abort_on_container_failure: bool,
    /// Seconds each container gets to stop (Ctrl-C, an abort) before SIGKILL.
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Attached: exit with this service's code, stopping every container once
    /// it exits (implies --abort-on-container-exit).
    #[arg(long, value_name = "SERVICE", conflicts_with_all = ["detach", "wait", "watch"])]
    pub exit_code_from: Option<String>,
    /// Pull images `always`, when `missing`, or `never`, over each
    /// service's `pull_policy` (services that build keep theirs).
    #[arg(long, value_enum, value_name = "POLICY")]
    pub pull: Option<PullArg>,
    /// Pull without progress lines.
    #[arg(long)]
    pub quiet_pull: bool,
    /// Create the containers, start none (`stack start` or `up` starts
    /// them later).
    #[arg(long, conflicts_with_all = ["wait", "watch"])]
    pub no_start: bool,
    /// A recreated container gets new anonymous volumes instead of its
    /// predecessor's.
    #[arg(short = 'V', long, conflicts_with = "no_recreate")]
    pub renew_anon_volumes: bool,
    /// Recreate what the named services depend on even when it did not
    /// change.
    #[arg(long, conflicts_with = "no_recreate")]
    pub always_recreate_deps: bool,
    /// Attached: print only these services' output (repeatable).
    #[arg(long, value_name = "SERVICE", conflicts_with_all = ["detach", "wait", "attach_dependencies"])]
    pub attach: Vec<String>,
    /// Attached: do not print this service's output (repeatable).
    #[arg(long, value_name = "SERVICE")]
    pub no_attach: Vec<String>,
    /// Attached: print the output of the named services' dependencies too.
    #[arg(long, conflicts_with_all = ["detach", "wait"])]
    pub attach_dependencies: bool,
    /// `COMPOSE_IGNORE_ORPHANS`: no warning about orphan containers.
    #[arg(skip)]
    pub ignore_orphans: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullArg {
    Always,
    Missing,
    Never,
}

pub fn parse_scale(s: &str) -> Result<(String, u32), String> {
    let (service, n) = s
        .split_once('=')
        .ok_or_else(|| format!("expected SERVICE=N, found {s:?}"))?;
    let n = n
        .parse()
        .map_err(|_| format!("expected a number of replicas, found {n:?}"))?;
    Ok((service.to_owned(), n))
}

/// `--pull POLICY` over each service's `pull_policy` (services that build
/// keep theirs).
pub fn apply_pull(project: &mut stack_spec::Project, pull: Option<PullArg>) {
    for service in project.services.values_mut() {
        apply_pull_to(service, pull);
    }
}

/// [`apply_pull`] for one service.
pub fn apply_pull_to(service: &mut stack_spec::Service, pull: Option<PullArg>) {
    let Some(pull) = pull else { return };
    let policy = match pull {
        PullArg::Always => PullPolicy::Always,
        PullArg::Missing => PullPolicy::Missing,
        PullArg::Never => PullPolicy::Never,
    };
    if service.pull_policy != Some(PullPolicy::Build) {
        service.pull_policy = Some(policy);
    }
}

/// The first of `names` the project has no service of.
pub fn unknown_service<'a>(project: &stack_spec::Project, names: &'a [String]) -> Option<&'a str> {
    names
        .iter()
        .find(|s| !project.services.contains_key(s.as_str()))
        .map(String::as_str)
}

/// As compose refuses it: `COMPOSE_IGNORE_ORPHANS` with `--remove-orphans`
/// (or `COMPOSE_REMOVE_ORPHANS`) asks for two opposite things.
pub fn check_orphan_options(ignore: bool, remove: bool) -> anyhow::Result<()> {
    if ignore && remove {
        anyhow::bail!("cannot combine COMPOSE_IGNORE_ORPHANS and --remove-orphans");
    }
    Ok(())
}

/// Which services' output an attached `up` prints, as compose decides it:
/// those of `--attach` (each one `up` brings), or else the services named
/// (all when none), with their dependencies under `--attach-dependencies`;
/// then without those of `--no-attach`.
pub fn attached_services(
    project: &stack_spec::Project,
    args: &UpArgs,
) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let brought: std::collections::BTreeSet<String> = if args.services.is_empty() {
        project.services.keys().cloned().collect()
    } else if args.no_deps {
        args.services.iter().cloned().collect()
    } else {
        stack_engine::service_graph::with_dependencies(project, &args.services)
    };
    let mut out: std::collections::BTreeSet<String> = if !args.attach.is_empty() {
        let outside: Vec<&str> = args
            .attach
            .iter()
            .filter(|s| !brought.contains(s.as_str()))
            .map(String::as_str)
            .collect();
        if !outside.is_empty() {
            anyhow::bail!(
                "cannot attach to services not included in up: {}",
                outside.join(", ")
            );
        }
        args.attach.iter().cloned().collect()
    } else if args.services.is_empty() || args.attach_dependencies {
        brought
    } else {
        args.services.iter().cloned().collect()
    };
    for s in &args.no_attach {
        out.remove(s);
    }
    Ok(out)
}

pub fn run(global: &GlobalArgs, args: UpArgs) -> anyhow::Result<ExitCode> {
    // A bad file starts nothing: load and validate before anything else.
    let Some(loaded) = args.project.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    if args.watch {
        super::watch::check_watchable(&loaded)?;
    }
    check_orphan_options(args.ignore_orphans, args.remove_orphans)?;
    let mut project = loaded.project.clone();
    apply_pull(&mut project, args.pull);
    if let Some(s) = unknown_service(&project, &args.services) {
        eprintln!("error: no such service: {s}");
        return Ok(ExitCode::FAILURE);
    }
    let attached = attached_services(&project, &args)?;
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
        recreate_volumes: args.yes,
        build: args.build,
        no_build: args.no_build,
        no_start: args.no_start,
        renew_anon_volumes: args.renew_anon_volumes,
        always_recreate_deps: args.always_recreate_deps,
        ignore_orphans: args.ignore_orphans,
    };
    let name = project.name.clone();
    if !send_up(global, project, options, args.dry_run, args.quiet_pull)? {
        return Ok(ExitCode::SUCCESS);
    }
    if args.detach || args.wait || args.no_start {
        return Ok(ExitCode::SUCCESS);
    }
    let rt = client::runtime()?;
    if let Some(s) = &args.exit_code_from
        && !loaded.project.services.contains_key(s)
    {
        eprintln!("error: no such service: {s}");
        return Ok(ExitCode::FAILURE);
    }
    let abort = match (&args.exit_code_from, args.abort_on_container_exit) {
        (Some(s), _) => Abort::Service(s.clone()),
        (None, true) => Abort::Any,
        (None, false) if args.abort_on_container_failure => Abort::Failure,
        (None, false) => Abort::No,
    };
    let mut code = 0;
    // Orphans (services no longer in the file) neither hold nor abort `up`.
    let in_file: Vec<String> = loaded.project.services.keys().cloned().collect();
    // Attached, as compose: follow every service's logs; return once every
    // container has exited; Ctrl-C or SIGTERM stops (keeps) them, a second
    // one kills them.
    let quiet = std::time::Duration::from_millis(args.debounce.debounce_ms);
    let attached: Vec<String> = attached.into_iter().collect();
    rt.block_on(async {
        let style = super::logs::Style {
            no_color: args.no_color,
            no_log_prefix: args.no_log_prefix,
            timestamps: args.timestamps,
        };
        let follow = async {
            if attached.is_empty() {
                std::future::pending().await
            } else {
                super::logs::follow_all(global, &name, &attached, style).await
            }
        };
        tokio::pin!(follow);
        let watching = args.watch;
        let watch = async {
            if watching {
                super::watch::watch(global, &args.project, loaded, quiet).await
            } else {
                std::future::pending().await
            }
        };
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let stop = async {
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
            }
        };
        tokio::select! {
            r = &mut follow => r,
            r = watch => r,
            r = all_exited(global, &name, abort, &in_file), if !watching => {
                let exited = r?;
                // The last lines may still be on their way to the log files.
                let _ = tokio::time::timeout(std::time::Duration::from_millis(500), &mut follow).await;
                if let Some(service) = exited {
                    eprintln!("{service} exited; stopping {name}");
                    let request = Request::Stop { services: vec![], timeout: args.timeout };
                    client::call(global, &name, &request).await?;
                    let store = stack_engine::api::Records::new(&global.root);
                    let from = args.exit_code_from.as_deref().unwrap_or(&service);
                    code = store
                        .containers(&name)?
                        .iter()
                        .filter(|r| r.service == from)
                        .filter_map(|r| r.last_exit.and_then(|e| e.code))
                        .next()
                        .unwrap_or(0);
                }
                Ok(())
            }
            r = stop => {
                r?;
                eprintln!("stopping {name} (Ctrl-C again to force)");
                let request = Request::Stop {
                    services: vec![],
                    timeout: args.timeout,
                };
                let stopping = client::call(global, &name, &request);
                tokio::pin!(stopping);
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::select! {
                    r = &mut stopping => return r.map(|_| ()),
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                force_kill(global, &name)?;
                // The stop in progress ends as the processes are gone.
                stopping.await.map(|_| ())
            }
        }
    })?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Sends `up`'s request (or with `dry_run` prints its plan): returns
/// whether it was sent.
pub fn send_up(
    global: &GlobalArgs,
    project: stack_spec::Project,
    options: UpOptions,
    dry_run: bool,
    quiet_pull: bool,
) -> anyhow::Result<bool> {
    if dry_run {
        let plan = stack_engine::api::plan_up(client::host_config(global)?, project, &options)?;
        print!("{plan}");
        if plan.is_empty() {
            println!("nothing to do");
        }
        return Ok(false);
    }
    enough_space(&global.root)?;
    let name = project.name.clone();
    let request = Request::Up {
        project: Box::new(project),
        options,
    };
    let mut display = client::display(global);
    if quiet_pull {
        display.hide(StepKind::Image);
    }
    client::runtime()?.block_on(client::call_shown(global, &name, &request, display))?;
    Ok(true)
}

/// A second interrupt: kill the containers' processes now. The supervisor
/// is busy with the stop (it takes one request at a time), so they are
/// signalled directly; it records their exits as for any other.
fn force_kill(global: &GlobalArgs, name: &str) -> anyhow::Result<()> {
    eprintln!("killing {name}");
    for record in stack_engine::api::Records::new(&global.root).containers(name)? {
        stack_engine::api::kill_now(&record, libc::SIGKILL)?;
    }
    Ok(())
}

/// When attached `up` stops everything: not before all have exited, once any
/// container exits, or once this service's does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Abort {
    No,
    Any,
    /// Any container exiting with a code other than 0.
    Failure,
    Service(String),
}

/// Resolves once the project has containers and none of them is running,
/// restarting or paused (`None`), or, with an abort rule, once a container
/// it names has exited (`Some(its service)`).
async fn all_exited(
    global: &GlobalArgs,
    name: &str,
    abort: Abort,
    services: &[String],
) -> anyhow::Result<Option<String>> {
    use stack_engine::api::ContainerState;
    let store = stack_engine::api::Records::new(&global.root);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut records = store.containers(name)?;
        records.retain(|r| services.contains(&r.service));
        let is_live = |r: &stack_engine::api::ContainerRecord| {
            matches!(
                r.live_state(),
                ContainerState::Running | ContainerState::Restarting | ContainerState::Paused
            )
        };
        let stopped = records.iter().find(|r| {
            matches!(
                r.live_state(),
                ContainerState::Exited | ContainerState::Dead
            ) && match &abort {
                Abort::No => false,
                Abort::Any => true,
                Abort::Failure => r.last_exit.is_some_and(|e| e.code != Some(0)),
                Abort::Service(s) => &r.service == s,
            }
        });
        if let Some(r) = stopped {
            return Ok(Some(r.service.clone()));
        }
        if !records.is_empty() && !records.iter().any(is_live) {
            return Ok(None);
        }
    }
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
