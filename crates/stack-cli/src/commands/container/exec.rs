//! `stack container exec`: another process in a running container, with the
//! container's environment, user and capabilities unless told otherwise;
//! exits with that process's status.

use std::fs::File;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use stack_runtime::{Container, ExecOptions};

use super::create::runtime_root;
use super::found;
use super::run::failure_status;
use super::tty;
use crate::cli::GlobalArgs;
use stack_engine::api::ContainerState;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep standard input open and connect it to the process.
    #[arg(short, long)]
    pub interactive: bool,
    /// Run the process on a terminal (a pty).
    #[arg(short, long)]
    pub tty: bool,
    /// User (name or uid, `[:group]`) to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Set an environment variable (`KEY=VALUE`).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: ExecArgs) -> anyhow::Result<ExitCode> {
    match exec(global, &args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(failure_status(&e)))
        }
    }
}

fn exec(global: &GlobalArgs, args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let record = found::find(global, &args.container)?;
    let root = runtime_root(&global.root);
    match record.live_state() {
        ContainerState::Running => {}
        ContainerState::Paused => {
            anyhow::bail!("container {} is paused: unpause it first", args.container)
        }
        _ => anyhow::bail!("container {} is not running", args.container),
    }
    let container = Container::load(&root, &record.id)?;
    let mut process = container
        .state
        .config
        .process()
        .clone()
        .context("the container's spec has no process")?;
    let mut value = serde_json::to_value(&process)?;
    value["args"] = serde_json::json!(args.command);
    value["terminal"] = serde_json::json!(args.tty);
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    for e in &args.env {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        if e.contains('=') {
            env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            env.push(format!("{e}={v}"));
        }
    }
    value["env"] = serde_json::json!(env);
    if let Some(w) = &args.workdir {
        value["cwd"] = serde_json::json!(w);
    }
    if let Some(u) = &args.user {
        let rootfs = &container.state.rootfs;
        let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).unwrap_or_default();
        let (uid, gid, extra) =
            stack_engine::spec::resolve_user(Some(u), &read("etc/passwd"), &read("etc/group"))?;
        value["user"] = serde_json::json!({"uid": uid, "gid": gid, "additionalGids": extra});
    }
    if args.tty
        && let Some((rows, cols)) = crate::terminal::known_size()
    {
        value["consoleSize"] = serde_json::json!({"height": rows, "width": cols});
    }
    process = serde_json::from_value(value)?;

    let console = if args.tty {
        let path = global.run_dir.join("console").join(format!(
            "{}-exec-{}.sock",
            &record.id[..12],
            std::process::id()
        ));
        Some(tty::Console::listen(&path)?)
    } else {
        None
    };
    let mut stdio = stack_runtime::Stdio::default();
    if !args.interactive {
        stdio.stdin = Some(File::open("/dev/null")?.into());
    }
    let options = ExecOptions {
        init_binary: crate::helper::init_binary()?,
        stdio,
        console_socket: console.as_ref().map(|c| c.path().to_owned()),
    };
    let pid = container
        .exec(process, options)
        .context("starting the process")?;
    let master = console.map(tty::Console::master).transpose()?;
    let raw = master.as_ref().map(|_| crate::terminal::RawMode::enter());
    let output = match &master {
        Some(m) => Some(tty::relay(m, args.interactive)?),
        None => None,
    };
    let status = loop {
        match waitpid(Pid::from_raw(pid), None) {
            Err(nix::Error::EINTR) => continue,
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) => continue,
            Err(e) => return Err(e).context("waiting for the process"),
        }
    };
    if let Some(o) = output {
        let _ = o.join();
    }
    drop(raw);
    Ok(ExitCode::from(status as u8))
}
