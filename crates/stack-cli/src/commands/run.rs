//! `stack run`: a one-off container of a service with another command,
//! `<project>-<service>-run-<id>`, after the service's dependencies. The
//! supervisor is its parent; attached, it uses this process's stdio (or a
//! terminal) and its exit code becomes ours.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use stack_engine::api::{Reply, Request, RunOptions};

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;
use crate::terminal::{RawMode, interactive, proxy, run_stdio};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container's name.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Set an environment variable (`KEY=VALUE`, or `KEY` from this environment).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Do not start the services it depends on.
    #[arg(long)]
    pub no_deps: bool,
    /// Build the service's image again first if its Dockerfile, build
    /// arguments or context changed.
    #[arg(long)]
    pub build: bool,
    /// The container's name.
    #[arg(long)]
    pub name: Option<String>,
    /// Run as this user (`name`, `uid`, `user:group`).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Replace the image's entrypoint (split as a shell would; `''` clears it).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// No pseudo-terminal, even at a terminal.
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Publish the service's ports (a one-off publishes none otherwise).
    #[arg(long, conflicts_with = "publish")]
    pub service_ports: bool,
    /// Publish a port, as `ports:` entries are written (repeatable).
    /// (`-p` after a command is the project name in stack, as everywhere.)
    #[arg(long, value_name = "[IP:]HOST:CONTAINER")]
    pub publish: Vec<String>,
    /// Mount a volume too, as `volumes:` entries are written (repeatable).
    #[arg(
        short = 'v',
        long = "volume",
        visible_alias = "volumes",
        value_name = "SOURCE:TARGET"
    )]
    pub volumes: Vec<String>,
    /// Add or override a label (`KEY=VALUE`, repeatable).
    #[arg(
        short = 'l',
        long = "label",
        visible_alias = "labels",
        value_name = "KEY=VALUE"
    )]
    pub labels: Vec<String>,
    /// Add a capability (repeatable).
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability (repeatable).
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Pull the image `always`, when `missing`, or `never`, over the
    /// service's `pull_policy`.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub pull: Option<super::up::PullArg>,
    /// Pull without progress lines.
    #[arg(long)]
    pub quiet_pull: bool,
    /// Remove containers of services no longer in the file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// The container answers to the service's name and network aliases.
    #[arg(long)]
    pub use_aliases: bool,
    /// `COMPOSE_IGNORE_ORPHANS`: no warning about orphan containers.
    #[arg(skip)]
    pub ignore_orphans: bool,
    pub service: String,
    /// The command (default: the service's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The one-off's additions from `--publish`, `-v` and `-l`, checked as
/// the loader checks the same entries in a file, before anything is made.
struct Extras {
    publish: Vec<stack_spec::ServicePort>,
    volumes: Vec<stack_spec::ServiceVolume>,
    labels: std::collections::BTreeMap<String, String>,
}

fn extras(args: &RunArgs, loaded: &stack_spec::Loaded) -> anyhow::Result<Extras> {
    let mut publish = Vec::new();
    for p in &args.publish {
        publish.extend(
            stack_spec::ports::parse_port_spec(p).map_err(|e| anyhow::anyhow!("--publish: {e}"))?,
        );
    }
    let mut volumes = Vec::new();
    for v in &args.volumes {
        let volume = stack_spec::volumes::parse_typed(v, &loaded.project_directory)
            .map_err(|e| anyhow::anyhow!("-v: {e}"))?;
        if volume.kind == stack_spec::MountType::Volume
            && let Some(name) = &volume.source
            && !loaded.project.volumes.contains_key(name)
        {
            anyhow::bail!(
                "-v {v:?}: volume {name} is not declared under the stack file's top-level volumes"
            );
        }
        volumes.push(volume);
    }
    let mut labels = std::collections::BTreeMap::new();
    for l in &args.labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("-l {l:?}: a label is set as KEY=VALUE"))?;
        labels.insert(k.to_owned(), v.to_owned());
    }
    // Checked here as at load: an unknown name fails before anything runs.
    let probe = stack_spec::Service {
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        ..Default::default()
    };
    stack_engine::spec::capabilities(&probe)
        .map_err(|e| anyhow::anyhow!("--cap-add/--cap-drop: {e}"))?;
    Ok(Extras {
        publish,
        volumes,
        labels,
    })
}

pub fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    // `docker compose run -p 8080:80` publishes; here `-p` after the
    // command names the project, and a port is no project name.
    if let Some(name) = &args.project.project_name
        && name.contains(':')
        && stack_spec::ports::parse_port_spec(name).is_ok()
    {
        anyhow::bail!(
            "-p {name}: -p is the project name in stack; publish the port with --publish {name}"
        );
    }
    super::up::check_orphan_options(args.ignore_orphans, args.remove_orphans)?;
    let Some(loaded) = args.project.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    let extras = extras(&args, &loaded)?;
    let mut project = loaded.project;
    // Only the one-off's own image: its dependencies are pulled as `up`
    // pulls them.
    if let Some(service) = project.services.get_mut(&args.service) {
        super::up::apply_pull_to(service, args.pull);
    }
    let name = project.name.clone();
    let tty = !args.no_tty && !args.detach && interactive();
    let (console, stdio) = run_stdio(&global.run_dir, tty, args.detach)?;
    let options = RunOptions {
        service: args.service,
        command: (!args.command.is_empty()).then_some(args.command),
        entrypoint: args
            .entrypoint
            .map(|e| shell_words::split(&e))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--entrypoint: {e}"))?,
        env: super::exec::env_pairs(&args.env),
        user: args.user,
        workdir: args.workdir,
        name: args.name,
        no_deps: args.no_deps,
        detach: args.detach,
        remove: args.rm,
        stdio,
        container: false,
        build: args.build,
        service_ports: args.service_ports,
        publish: extras.publish,
        volumes: extras.volumes,
        labels: extras.labels,
        cap_add: args.cap_add,
        cap_drop: args.cap_drop,
        use_aliases: args.use_aliases,
        remove_orphans: args.remove_orphans,
        ignore_orphans: args.ignore_orphans,
    };
    let request = Request::Run {
        project: Box::new(project),
        options: Box::new(options),
    };
    let rt = client::runtime()?;
    let mut channel = rt.block_on(client::connect(global, &name))?;
    rt.block_on(channel.send(&request))
        .with_context(|| format!("talking to the supervisor of {name}"))?;
    // The terminal arrives once the container's init runs (never, when
    // the run fails before).
    let terminal = console.map(|console| {
        std::thread::spawn(move || -> anyhow::Result<()> {
            let master = console.receive()?;
            let _raw = RawMode::enter();
            let _ = proxy(master)?.join();
            Ok(())
        })
    });
    let mut code = None;
    let mut display = client::display(global);
    if args.quiet_pull {
        display.hide(stack_engine::api::StepKind::Image);
    }
    let result = loop {
        match rt.block_on(channel.recv::<Reply>())? {
            Some(Reply::Progress { line }) => display.line(&line),
            Some(Reply::Step { step }) => display.step(&step),
            Some(Reply::Exit { code: c }) => code = Some(c),
            Some(Reply::Done { message }) => break message,
            Some(Reply::Failed { error }) => return Err(error.into()),
            None => anyhow::bail!("the supervisor closed the connection"),
        }
    };
    let message = result;
    if let Some(thread) = terminal {
        let _ = thread.join();
    }
    if args.detach {
        println!("{message}");
        return Ok(ExitCode::SUCCESS);
    }
    let code = code.unwrap_or(1);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
