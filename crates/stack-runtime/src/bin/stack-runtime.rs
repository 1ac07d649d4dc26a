//! `stack-runtime`: a runc-compatible command line over the `stack_runtime` library.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use nix::sys::signal::Signal;
use stack_runtime::{Container, CreateOptions, ExecOptions, Status, Stdio};

#[derive(Parser)]
#[command(
    name = "stack-runtime",
    version,
    about = "OCI container runtime (runc-compatible CLI)"
)]
struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/stack-runtime")]
    root: PathBuf,
    /// Also write errors to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    #[arg(long, global = true, hide = true)]
    debug: bool,
    #[arg(long = "systemd-cgroup", global = true, hide = true)]
    systemd_cgroup: bool,
    /// Apply Docker's default seccomp profile when the spec has none.
    #[arg(long = "default-seccomp", global = true)]
    default_seccomp: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args)]
struct CreateArgs {
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long = "no-pivot", hide = true)]
    no_pivot: bool,
    #[arg(long = "no-new-keyring", hide = true)]
    no_new_keyring: bool,
    #[arg(long = "preserve-fds", hide = true, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a container (its program waits for `start`).
    Create(CreateArgs),
    /// Run the program of a created container.
    Start { id: String },
    /// Print the OCI state of a container.
    State { id: String },
    /// Send a signal (default SIGTERM) to a container.
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Delete a container (refused while running unless --force).
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container; without --detach wait for it and delete it.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        #[arg(short, long)]
        detach: bool,
    },
    /// Freeze all processes of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Run a process inside a running container.
    Exec {
        #[arg(short, long)]
        process: Option<PathBuf>,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(short, long)]
        env: Vec<String>,
        #[arg(short, long)]
        tty: bool,
        #[arg(short, long)]
        user: Option<String>,
        #[arg(short, long)]
        detach: bool,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// List the processes of a container.
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
    },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a default config.json into the bundle.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
    /// Print resource usage of a container as JSON.
    Stats { id: String },
}

fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).with_context(|| format!("invalid signal {s}"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .with_context(|| format!("invalid signal {s}"))
}

fn self_exe() -> PathBuf {
    std::fs::read_link("/proc/self/exe").unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
}

fn create(cli: &Cli, a: &CreateArgs) -> Result<Container> {
    let mut opts = CreateOptions::new(&a.id, &a.bundle, &cli.root);
    opts.init_binary = self_exe();
    opts.pid_file = a.pid_file.clone();
    opts.console_socket = a.console_socket.clone();
    opts.default_seccomp = cli.default_seccomp;
    // This binary is single-threaded: forking the init stage saves an exec.
    opts.fork_init = true;
    Ok(Container::create(opts)?)
}

fn run(cli: &Cli) -> Result<i32> {
    match &cli.cmd {
        Cmd::Create(a) => {
            create(cli, a)?;
        }
        Cmd::Start { id } => Container::load(&cli.root, id)?.start()?,
        Cmd::State { id } => {
            let c = Container::load(&cli.root, id)?;
            println!("{}", serde_json::to_string_pretty(&c.oci_state())?);
        }
        Cmd::Kill { all, id, signal } => {
            let c = Container::load(&cli.root, id)?;
            let sig = parse_signal(signal.as_deref().unwrap_or("TERM"))?;
            if *all { c.kill_all(sig)? } else { c.kill(sig)? }
        }
        Cmd::Delete { force, id } => Container::load(&cli.root, id)?.delete(*force)?,
        Cmd::Run { create: a, detach } => {
            let mut c = create(cli, a)?;
            if let Err(e) = c.start() {
                let _ = Container::load(&cli.root, &a.id).map(|c| c.delete(true));
                return Err(e.into());
            }
            tracing::debug!("started");
            if !detach {
                let info = c.wait()?;
                tracing::debug!("exited");
                c.delete(true)?;
                tracing::debug!("deleted");
                return Ok(info.status());
            }
        }
        Cmd::Pause { id } => Container::load(&cli.root, id)?.pause()?,
        Cmd::Resume { id } => Container::load(&cli.root, id)?.resume()?,
        Cmd::Exec {
            process,
            cwd,
            env,
            tty,
            user,
            detach,
            pid_file,
            console_socket,
            id,
            command,
        } => {
            let c = Container::load(&cli.root, id)?;
            let mut p = match process {
                Some(f) => {
                    let body =
                        std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
                    serde_json::from_slice(&body)
                        .with_context(|| format!("parsing {}", f.display()))?
                }
                None => {
                    let mut p = c
                        .state
                        .config
                        .process()
                        .clone()
                        .context("container has no process")?;
                    if command.is_empty() {
                        bail!("exec needs a command or --process");
                    }
                    p.set_args(Some(command.clone()));
                    p.set_terminal(Some(*tty));
                    p
                }
            };
            if let Some(d) = cwd {
                p.set_cwd(d.clone());
            }
            if !env.is_empty() {
                let mut e = p.env().clone().unwrap_or_default();
                e.extend(env.iter().cloned());
                p.set_env(Some(e));
            }
            if let Some(u) = user {
                let (uid, gid) = u.split_once(':').unwrap_or((u.as_str(), "0"));
                let mut usr = p.user().clone();
                usr.set_uid(uid.parse().context("exec --user uid")?);
                usr.set_gid(gid.parse().context("exec --user gid")?);
                p.set_user(usr);
            }
            let pid = c.exec(
                p,
                ExecOptions {
                    init_binary: self_exe(),
                    stdio: Stdio::default(),
                    console_socket: console_socket.clone(),
                },
            )?;
            if let Some(pf) = pid_file {
                stack_runtime::write_pid_file(pf, pid)?;
            }
            if !detach {
                let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None)?;
                return Ok(c.exit_info(st).status());
            }
        }
        Cmd::Ps { format, id } => {
            let c = Container::load(&cli.root, id)?;
            let pids = c.pids()?;
            if format == "json" {
                println!("{}", serde_json::to_string(&pids)?);
            } else {
                println!("PID");
                for p in pids {
                    println!("{p}");
                }
            }
        }
        Cmd::List { format, quiet } => {
            let list = Container::list(&cli.root)?;
            if format == "json" {
                let v: Vec<_> = list.iter().map(|c| c.oci_state()).collect();
                println!("{}", serde_json::to_string(&v)?);
            } else if *quiet {
                for c in &list {
                    println!("{}", c.id());
                }
            } else {
                println!(
                    "{:<24} {:<8} {:<10} {:<40} CREATED",
                    "ID", "PID", "STATUS", "BUNDLE"
                );
                for c in &list {
                    let st = c.status();
                    let pid = if st == Status::Stopped { 0 } else { c.pid() };
                    println!(
                        "{:<24} {:<8} {:<10} {:<40} {}",
                        c.id(),
                        pid,
                        st,
                        c.state.bundle.display(),
                        c.state.created
                    );
                }
            }
        }
        Cmd::Spec { bundle } => {
            let p = bundle.join("config.json");
            if p.exists() {
                bail!("File {} exists. Remove it first", p.display());
            }
            let spec = stack_runtime::default_spec("rootfs", &["sh"]);
            std::fs::write(&p, serde_json::to_vec_pretty(&spec)?)?;
        }
        Cmd::Stats { id } => {
            let c = Container::load(&cli.root, id)?;
            println!("{}", serde_json::to_string_pretty(&c.stats()?)?);
        }
    }
    Ok(0)
}

fn log_error(cli: &Cli, err: &anyhow::Error) {
    // Library errors already carry their sources in the message; add only new text.
    let mut msg = String::new();
    for cause in err.chain() {
        let c = cause.to_string();
        if !msg.contains(&c) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&c);
        }
    }
    eprintln!("stack-runtime: {msg}");
    let Some(path) = &cli.log else { return };
    let line = if cli.log_format == "json" {
        serde_json::json!({"level": "error", "msg": msg, "time": stack_runtime::state::now_rfc3339()}).to_string()
    } else {
        format!(
            "time=\"{}\" level=error msg={msg:?}",
            stack_runtime::state::now_rfc3339()
        )
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(path))
    {
        let _ = writeln!(f, "{line}");
    }
}

fn main() -> ExitCode {
    stack_runtime::init_main();
    // runc exits 1 on usage errors (clap's default is 2).
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(if cli.debug {
            tracing::Level::DEBUG
        } else {
            tracing::Level::WARN
        })
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .with_target(false)
        // Colour codes only for a person at a terminal, not in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // Never `eprintln!` (which panics) when stderr cannot be written.
        .log_internal_errors(false)
        .init();
    match run(&cli) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            log_error(&cli, &e);
            ExitCode::from(1)
        }
    }
}
