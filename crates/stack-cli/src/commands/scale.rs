//! `stack scale SERVICE=N...`: as `docker compose scale`, run N containers
//! of each named service; the same reconcile as `up -d --scale`, limited to
//! those services.

use std::process::ExitCode;

use clap::Args;

use crate::cli::GlobalArgs;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct ScaleArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Do not start the services the named ones depend on.
    #[arg(long)]
    pub no_deps: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// SERVICE=N, one or more.
    #[arg(required = true, value_name = "SERVICE=N", value_parser = super::up::parse_scale)]
    pub scale: Vec<(String, u32)>,
}

pub fn run(global: &GlobalArgs, args: ScaleArgs) -> anyhow::Result<ExitCode> {
    let services = args.scale.iter().map(|(s, _)| s.clone()).collect();
    let up = super::up::UpArgs {
        project: args.project,
        detach: true,
        force_recreate: false,
        no_recreate: true,
        remove_orphans: false,
        scale: args.scale,
        dry_run: args.dry_run,
        yes: false,
        wait: false,
        wait_timeout: None,
        no_deps: args.no_deps,
        build: false,
        no_build: false,
        services,
        watch: false,
        debounce: super::watch::DebounceArg { debounce_ms: 100 },
        no_color: false,
        no_log_prefix: false,
        timestamps: false,
        abort_on_container_exit: false,
        abort_on_container_failure: false,
        timeout: None,
        exit_code_from: None,
        pull: None,
        quiet_pull: false,
        no_start: false,
        renew_anon_volumes: false,
        always_recreate_deps: false,
        attach: Vec::new(),
        no_attach: Vec::new(),
        attach_dependencies: false,
        ignore_orphans: false,
    };
    super::up::run(global, up)
}
