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
    pub service: String,
    /// The command (default: the service's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    let Some(loaded) = args.project.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    let project = loaded.project;
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
    };
    let request = Request::Run {
        project: Box::new(project),
        options,
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
