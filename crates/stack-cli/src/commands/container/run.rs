//! `stack container run`: one container from an image, like `docker run`.
//!
//! In the foreground this process is the container's parent: the program
//! gets the terminal's stdio (a pty with `-t`), signals are forwarded to it,
//! and `run` exits with its status (128 + signal when killed). Detached
//! (`-d`), a monitor process (`container __monitor`, in a session of its own)
//! becomes the parent instead: it keeps the output in the container's log,
//! holds its published ports and records how it ended.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Context;
use clap::Args;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use stack_runtime::{Container, CreateOptions, ExitInfo};

use super::create::{self, Prepared, runtime_root};
use super::net;
use super::record::{NetworkKind, Record, Records, now_ms};
use super::remove;
use super::tty;
use crate::cli::GlobalArgs;

/// `docker run`'s status when the container could not be run at all.
pub const RUN_FAILED: u8 = 125;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container (root filesystem, network, state) when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container id.
    #[arg(short, long)]
    pub detach: bool,
    /// Name of the container (default: a generated one).
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (`KEY=VALUE`, or `KEY` for this shell's value).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Bind mount a host path or a named volume (`SRC:DST[:ro|rw]`).
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    pub volumes: Vec<String>,
    /// User (name or uid, `[:group]`) the program runs as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Override the image's entrypoint (`""` clears it).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name (default: the short id).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Memory limit (`64m`, `1g` ...).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// CPUs the container may use (`0.5` is half of one).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Largest number of processes (`-1`: unlimited).
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Add a capability (`NET_ADMIN`, `ALL` ...).
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability.
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Every capability, every device, no seccomp filter.
    #[arg(long)]
    pub privileged: bool,
    /// Publish a container port (`[IP:]HOST:CONTAINER[/udp]`).
    #[arg(short, long = "publish", value_name = "HOST:CONTAINER")]
    pub publish: Vec<String>,
    /// Network: the default bridge, the host's, or none.
    #[arg(long, value_enum, default_value = "bridge")]
    pub network: NetworkKind,
    /// Keep standard input open and connect it to the program.
    #[arg(short, long)]
    pub interactive: bool,
    /// Run the program on a terminal (a pty).
    #[arg(short, long)]
    pub tty: bool,
    /// Image to run (pulled when the store lacks it).
    pub image: String,
    /// Command and arguments (default: the image's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Signals that reach `stack` and are meant for the program.
const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Where forwarded signals go: the container's pid once it exists, 0
/// before, and minus the signal when one came before it ran.
static TARGET: AtomicI32 = AtomicI32::new(0);
/// The pty master, for SIGWINCH; -1 without a terminal.
static PTY: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    if signal == libc::SIGWINCH {
        let fd = PTY.load(Ordering::SeqCst);
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: ioctl is async-signal-safe; both calls use a winsize on
        // this handler's stack.
        unsafe {
            if fd >= 0 && libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 {
                libc::ioctl(fd, libc::TIOCSWINSZ, &ws);
            }
        }
        return;
    }
    let pid = TARGET.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, signal) };
    } else if pid == 0 {
        TARGET.store(-signal, Ordering::SeqCst);
    }
}

/// Handlers rather than a blocked mask: the container inherits a mask, but
/// handlers are reset by exec.
fn forward_signals() -> anyhow::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in FORWARDED.into_iter().chain([Signal::SIGWINCH]) {
        // SAFETY: the handler only does async-signal-safe work.
        unsafe { sigaction(s, &action) }.with_context(|| format!("handling {s}"))?;
    }
    Ok(())
}

pub fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    if !args.detach {
        forward_signals()?;
    }
    match run_inner(global, &args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(failure_status(&e)))
        }
    }
}

/// Docker's statuses for a program that cannot run: 127 when it is not
/// found, 126 when it cannot be executed, 125 for anything else.
pub fn failure_status(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(stack_runtime::Error::Init {
            step: stack_runtime::Step::Executable,
            errno,
            ..
        }) = cause.downcast_ref()
        {
            return match *errno {
                Some(libc::EACCES) | Some(libc::ENOEXEC) => 126,
                _ => 127,
            };
        }
    }
    RUN_FAILED
}

fn run_inner(global: &GlobalArgs, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let rt = net::runtime()?;
    let manager = net::manager(global)?;
    let prepared = create::prepare(global, args, &rt, &manager)?;
    if args.detach {
        return detach(global, &prepared.record, &rt, &manager);
    }
    let record = prepared.record.clone();
    match foreground(global, args, prepared, &rt, &manager) {
        Ok(code) => Ok(code),
        Err(e) => {
            if let Err(undo) = remove::teardown(global, &record, &rt, &manager) {
                eprintln!("warning: cleaning up after the failure: {undo:#}");
            }
            Err(e)
        }
    }
}

fn devnull() -> anyhow::Result<OwnedFd> {
    Ok(File::open("/dev/null")
        .context("cannot open /dev/null")?
        .into())
}

fn foreground(
    global: &GlobalArgs,
    args: &RunArgs,
    prepared: Prepared,
    rt: &tokio::runtime::Runtime,
    manager: &stack_net::NetworkManager,
) -> anyhow::Result<ExitCode> {
    let Prepared {
        mut record,
        spec,
        mappings,
    } = prepared;
    let records = Records::new(&global.root);
    // This process holds the published ports for as long as the container runs.
    rt.block_on(net::publish(manager, &record.id, &mappings))?;

    let mut options = CreateOptions::new(
        record.id.clone(),
        records.dir(&record.id),
        runtime_root(&global.root),
    );
    options.spec = Some(spec);
    options.init_binary = crate::helper::init_binary()?;
    options.default_seccomp = !args.privileged;
    if !args.interactive {
        options.stdio.stdin = Some(devnull()?);
    }
    let console = if args.tty {
        let path = global
            .run_dir
            .join("console")
            .join(format!("{}.sock", record.short_id()));
        let console = tty::Console::listen(&path)?;
        options.console_socket = Some(console.path().to_owned());
        Some(console)
    } else {
        None
    };
    let mut container = Container::create(options).context("creating the container")?;
    let master = console.map(tty::Console::master).transpose()?;

    record.pid = Some(container.pid());
    record.pid_start_time = Some(container.start_time());
    record.started_ms = Some(now_ms());
    records.save(&record, false)?;
    let raw = master.as_ref().map(|_| crate::terminal::RawMode::enter());
    let output = match &master {
        Some(m) => {
            tty::resize(m);
            Some(tty::relay(m, args.interactive)?)
        }
        None => None,
    };
    if let Some(m) = &master {
        PTY.store(m.as_raw_fd(), Ordering::SeqCst);
    }
    // From here on signals go to the container; one that came earlier
    // means it never starts.
    if TARGET
        .compare_exchange(0, container.pid(), Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        // Interrupted before it ran: it never starts.
        let _ = container.kill(Signal::SIGKILL);
    } else {
        container.start().context("starting the container")?;
    }
    let exit = container.wait().context("waiting for the container")?;
    TARGET.store(-1, Ordering::SeqCst);
    PTY.store(-1, Ordering::SeqCst);
    if let Some(output) = output {
        let _ = output.join();
    }
    drop(raw);
    finish(global, &mut record, exit, rt, manager)?;
    Ok(ExitCode::from(exit.status() as u8))
}

/// Records how the container ended, or removes it with `--rm`.
pub fn finish(
    global: &GlobalArgs,
    record: &mut Record,
    exit: ExitInfo,
    rt: &tokio::runtime::Runtime,
    manager: &stack_net::NetworkManager,
) -> anyhow::Result<()> {
    if record.auto_remove {
        return remove::teardown(global, record, rt, manager);
    }
    // The process is gone: its runtime state, cgroup and network go now;
    // the root filesystem (with its writes) stays until `rm`, as Docker
    // keeps a stopped container's layer.
    let _ = Container::discard(&runtime_root(&global.root), &record.id);
    rt.block_on(net::detach(manager, &record.id))?;
    record.exit_code = Some(exit.status());
    record.oom_killed = exit.oom_killed;
    record.finished_ms = Some(now_ms());
    Records::new(&global.root).save(record, false)
}

/// Starts the monitor and waits until it reports the container running.
fn detach(
    global: &GlobalArgs,
    record: &Record,
    rt: &tokio::runtime::Runtime,
    manager: &stack_net::NetworkManager,
) -> anyhow::Result<ExitCode> {
    let records = Records::new(&global.root);
    let dir = records.dir(&record.id);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("monitor.log"))
        .with_context(|| format!("cannot open {}", dir.join("monitor.log").display()))?;
    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let exe = crate::helper::stack_binary()?;
    let mut command = Command::new(exe);
    command
        .arg("--root")
        .arg(&global.root)
        .arg("--run-dir")
        .arg(&global.run_dir)
        .args(["container", "__monitor", &record.id])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let fd = ready_w.as_raw_fd();
    // SAFETY: setsid and dup2 are async-signal-safe; nothing else runs
    // before exec. The new session keeps the monitor (and so the container)
    // alive when the terminal goes away.
    unsafe {
        command.pre_exec(move || {
            libc::setsid();
            if libc::dup2(fd, super::monitor::READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let spawned = command.spawn();
    drop(ready_w);
    if let Err(e) = spawned {
        remove::teardown(global, record, rt, manager)?;
        return Err(e).context("cannot start the container's monitor");
    }
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut File::from(ready_r), &mut answer)
        .context("reading the monitor's answer")?;
    match answer.trim().strip_prefix("ok") {
        Some(_) => {
            println!("{}", record.id);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let message = answer
                .trim()
                .strip_prefix("error: ")
                .unwrap_or(answer.trim());
            let message = if message.is_empty() {
                format!(
                    "the container's monitor stopped before starting it; see {}",
                    dir.join("monitor.log").display()
                )
            } else {
                message.to_owned()
            };
            anyhow::bail!("{message}")
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn flags_become_the_service() {
        let cli = Cli::parse_from([
            "run",
            "--rm",
            "-e",
            "A=1",
            "-u",
            "1000",
            "--memory",
            "64m",
            "--pids-limit",
            "20",
            "--read-only",
            "--cap-drop",
            "chown",
            "-p",
            "127.0.0.1:8080:80",
            "busybox",
            "sh",
            "-c",
            "echo -n hi",
        ]);
        let s = create::service_of(&cli.run).unwrap();
        assert_eq!(cli.run.command, ["sh", "-c", "echo -n hi"]);
        assert_eq!(s.environment["A"].as_deref(), Some("1"));
        assert_eq!(s.mem_limit.unwrap().bytes(), 64 * 1024 * 1024);
        assert_eq!(s.pids_limit, Some(20));
        assert!(s.read_only);
        assert_eq!(s.ports[0].published.as_deref(), Some("8080"));
        assert_eq!(s.ports[0].host_ip.as_deref(), Some("127.0.0.1"));
        let bad = Cli::parse_from(["run", "--cap-add", "FLY", "busybox"]);
        assert!(create::service_of(&bad.run).is_err());
        let none = Cli::parse_from(["run", "--network", "none", "-p", "80:80", "busybox"]);
        assert!(create::service_of(&none.run).is_err());
        let relative = Cli::parse_from(["run", "-w", "srv", "busybox"]);
        let err = create::service_of(&relative.run).unwrap_err().to_string();
        assert!(err.contains("must be an absolute path"), "{err}");
        let nameless = Cli::parse_from(["run", "-e", "=x", "busybox"]);
        let err = create::service_of(&nameless.run).unwrap_err().to_string();
        assert!(err.contains("has no name"), "{err}");
    }
}
