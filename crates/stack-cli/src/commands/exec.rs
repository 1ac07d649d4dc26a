//! `stack exec`: run a command in a service's running container, through
//! the runtime's exec (its namespaces and cgroup, the same capabilities and
//! seccomp filter; with `--privileged` every capability and no filter). This process is the command's parent, so its exit code
//! is ours; with a terminal on stdin (and no `-T`) it gets a pty.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use nix::sys::wait::{WaitStatus, waitpid};
use stack_engine::api::Records;
use stack_runtime::{Container, ExecOptions, Stdio};

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;
use crate::terminal::{ConsoleSocket, RawMode, interactive, proxy, size};

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Run in the background.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Run as this user (`name`, `uid`, `user:group`).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Set an environment variable (`KEY=VALUE`, or `KEY` from this environment).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// No pseudo-terminal, even at a terminal.
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Which replica of the service.
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Every capability and no seccomp filter for this process.
    #[arg(long)]
    pub privileged: bool,
    pub service: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `KEY=VALUE` as given, `KEY` with this process's value (dropped when unset),
/// as `docker exec -e` does.
pub fn env_pairs(given: &[String]) -> Vec<String> {
    given
        .iter()
        .filter_map(|e| match e.split_once('=') {
            Some(_) => Some(e.clone()),
            None => std::env::var(e).ok().map(|v| format!("{e}={v}")),
        })
        .collect()
}

/// Replaces or appends `KEY=VALUE` entries by key.
fn merge_env(base: &mut Vec<String>, extra: &[String]) {
    for pair in extra {
        let key = pair.split_once('=').map_or(pair.as_str(), |(k, _)| k);
        base.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        base.push(pair.clone());
    }
}

pub fn run(global: &GlobalArgs, args: ExecArgs) -> anyhow::Result<ExitCode> {
    let Some(project) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let store = Records::new(&global.root);
    let record = store
        .containers(&project)?
        .into_iter()
        .find(|r| r.service == args.service && r.number == args.index && !r.one_off)
        .with_context(|| {
            format!(
                "service {} has no container number {} in project {project}",
                args.service, args.index
            )
        })?;
    if !record.is_alive() {
        bail!("container {} is not running", record.name);
    }
    let container = Container::load(
        &stack_fs::Layout::of_root(&global.root).runtime(),
        &record.id,
    )
    .with_context(|| format!("container {}", record.name))?;
    let mut process = container
        .state
        .config
        .process()
        .clone()
        .context("the container has no process")?;
    process.set_args(Some(args.command.clone()));
    let mut env = process.env().clone().unwrap_or_default();
    merge_env(&mut env, &env_pairs(&args.env));
    process.set_env(Some(env));
    if let Some(dir) = &args.workdir {
        process.set_cwd(dir.into());
    }
    if let Some(user) = &args.user {
        let rootfs = &container.state.rootfs;
        let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).unwrap_or_default();
        let (uid, gid, extra) =
            stack_engine::spec::resolve_user(Some(user), &read("etc/passwd"), &read("etc/group"))?;
        let mut u = process.user().clone();
        u.set_uid(uid);
        u.set_gid(gid);
        u.set_additional_gids(Some(extra));
        process.set_user(u);
    }
    if args.privileged {
        privilege(&mut process)?;
    }
    let tty = !args.no_tty && !args.detach && interactive();
    process.set_terminal(Some(tty));
    let init_binary = crate::helper::init_binary()?;

    if args.detach {
        let null = |w: bool| -> std::io::Result<std::os::fd::OwnedFd> {
            std::fs::OpenOptions::new()
                .read(!w)
                .write(w)
                .open("/dev/null")
                .map(Into::into)
        };
        let options = ExecOptions {
            init_binary,
            stdio: Stdio {
                stdin: Some(null(false)?),
                stdout: Some(null(true)?),
                stderr: Some(null(true)?),
            },
            console_socket: None,
        };
        launch(&container, process, options, args.privileged)?;
        return Ok(ExitCode::SUCCESS);
    }

    let console = if tty {
        let (rows, cols) = size();
        let size = oci_spec_box(rows, cols);
        process.set_console_size(size);
        Some(ConsoleSocket::bind(&global.run_dir.join("consoles"))?)
    } else {
        None
    };
    let options = ExecOptions {
        init_binary,
        stdio: Stdio::default(),
        console_socket: console.as_ref().map(|c| c.path().to_owned()),
    };
    let pid = launch(&container, process, options, args.privileged)
        .with_context(|| format!("exec in {}", record.name))?;
    let output = match &console {
        Some(console) => {
            let master = console.receive()?;
            let raw = RawMode::enter();
            Some((proxy(master)?, raw))
        }
        None => None,
    };
    let status = loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Err(nix::Error::EINTR) => continue,
            other => break other.context("waiting for the command")?,
        }
    };
    if let Some((thread, raw)) = output {
        let _ = thread.join();
        drop(raw);
    }
    let code = match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        _ => 1,
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Runs the process in the container; `privileged`, without its seccomp
/// filter.
fn launch(
    container: &Container,
    process: oci_spec::runtime::Process,
    options: ExecOptions,
    privileged: bool,
) -> Result<i32, stack_runtime::Error> {
    if privileged {
        container.exec_unfiltered(process, options)
    } else {
        container.exec(process, options)
    }
}

/// `exec --privileged`: as Docker's, every capability `stack` itself may
/// hand out (its bounding set: a capability this process lacks cannot be
/// given) in the bounding, effective and permitted sets, and no
/// `no_new_privileges`, whatever the container runs with.
fn privilege(process: &mut oci_spec::runtime::Process) -> anyhow::Result<()> {
    let own = caps::read(None, caps::CapSet::Bounding)
        .map_err(|e| anyhow::anyhow!("exec --privileged: reading the bounding set: {e}"))?;
    let mut set = oci_spec::runtime::Capabilities::new();
    for cap in own {
        let name = cap.to_string();
        match serde_json::from_value::<oci_spec::runtime::Capability>(serde_json::json!(name)) {
            Ok(cap) => {
                set.insert(cap);
            }
            Err(_) => eprintln!("warning: exec --privileged: capability {name} cannot be granted"),
        }
    }
    let caps = oci_spec::runtime::LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .build()?;
    process.set_capabilities(Some(caps));
    process.set_no_new_privileges(Some(false));
    Ok(())
}

/// An OCI console size.
pub fn oci_spec_box(rows: u16, cols: u16) -> Option<oci_spec::runtime::Box> {
    oci_spec::runtime::BoxBuilder::default()
        .height(u64::from(rows))
        .width(u64::from(cols))
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::merge_env;

    #[test]
    fn env_overrides_by_key() {
        let mut env = vec!["PATH=/bin".to_owned(), "A=1".into()];
        merge_env(&mut env, &["A=2".into(), "B=3".into()]);
        assert_eq!(env, ["PATH=/bin", "A=2", "B=3"]);
    }
}
