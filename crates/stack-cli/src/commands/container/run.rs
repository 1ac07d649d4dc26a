//! `stack container run`: one container from an image, like `docker run`,
//! as a service of the root's single-container project
//! (`stack_engine::single`) that its supervisor creates, starts and keeps,
//! through the same plan and executor as `stack run`: the image is pulled
//! when missing, the container joins the default bridge, and its monitor
//! applies `--restart` and `--health-*`. In the foreground the container
//! uses this process's stdio (or a terminal), signals that reach `stack`
//! are passed on to it, and `run` exits with its status (128 + signal when
//! killed; 125, 126, 127 as Docker's when it could not run).

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use stack_engine::api::ErrorKind;
use stack_engine::api::Records;
use stack_engine::api::{Reply, Request, RunOptions};
use tokio::signal::unix::{SignalKind, signal};

use super::create;
use super::found;
use super::names::{NetworkKind, generated_name};
use crate::cli::GlobalArgs;
use crate::client;
use crate::terminal::{RawMode, proxy, run_stdio};
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
    /// Restart policy: no, always, on-failure[:N] or unless-stopped.
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<stack_spec::RestartPolicy>,
    /// Command that tells whether the container is healthy (run by `sh -c`).
    #[arg(long, value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// Time between health checks (`30s`, `1m` ...).
    #[arg(long, value_name = "DURATION")]
    pub health_interval: Option<String>,
    /// Longest time one health check may take.
    #[arg(long, value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// Failures in a row that make the container unhealthy.
    #[arg(long, value_name = "N")]
    pub health_retries: Option<u32>,
    /// Time to start before failed checks count.
    #[arg(long, value_name = "DURATION")]
    pub health_start_period: Option<String>,
    /// Time between checks during the start period.
    #[arg(long, value_name = "DURATION")]
    pub health_start_interval: Option<String>,
    /// No health check, not even the image's.
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Image to run (pulled when the store lacks it).
    pub image: String,
    /// Command and arguments (default: the image's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Signals that reach `stack` and are meant for the program.
const FORWARDED: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

pub fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    match run_inner(global, args) {
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
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<stack_engine::api::EngineError>())
        .map(|e| &e.kind);
    if let Some(ErrorKind::CannotExecute { status }) = kind {
        return *status;
    }
    // `exec` runs its process in this one, with the runtime's own error.
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

/// Docker's word before a pull, when the store lacks the image.
fn announce_pull(global: &GlobalArgs, image: &str) -> anyhow::Result<()> {
    let store = stack_image::store::Store::open(&global.root)
        .with_context(|| format!("opening the image store under {}", global.root.display()))?;
    if let Err(stack_image::store::StoreError::NotFound(_)) = store.resolve(image) {
        let reference = stack_image::reference::Reference::parse(image)?;
        eprintln!("Unable to find image '{}' locally", reference.familiar());
    }
    Ok(())
}

fn run_inner(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    let service = create::service_of(&args)?;
    if args.rm
        && service
            .restart
            .as_ref()
            .is_some_and(|r| *r != stack_spec::RestartPolicy::No)
    {
        anyhow::bail!("conflicting options: --restart and --rm");
    }
    if !args.detach
        && service
            .restart
            .as_ref()
            .is_some_and(|r| *r != stack_spec::RestartPolicy::No)
    {
        anyhow::bail!("--restart needs -d: a restarted container has no terminal to come back to");
    }
    announce_pull(global, &args.image)?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => generated_name(&stack_engine::api::new_container_id()?),
    };
    let project = stack_engine::single::project(&global.root, &name, service);
    let project_name = project.name.clone();
    let (console, stdio) = run_stdio(&global.run_dir, args.tty, args.detach)?;
    if !args.interactive && !args.detach {
        // The container takes this process's stdin: without -i, nothing.
        let null = std::fs::File::open("/dev/null").context("cannot open /dev/null")?;
        nix::unistd::dup2_stdin(&null).context("cannot close standard input")?;
    }
    let request = Request::Run {
        project: Box::new(project),
        options: Box::new(RunOptions {
            service: name.clone(),
            name: Some(name.clone()),
            detach: args.detach,
            remove: args.rm,
            stdio,
            container: true,
            ..RunOptions::default()
        }),
    };
    let rt = client::runtime()?;
    rt.block_on(async {
        let terminal = console.map(|console| {
            std::thread::spawn(move || -> anyhow::Result<()> {
                let master = console.receive()?;
                let _raw = RawMode::enter();
                let _ = proxy(master)?.join();
                Ok(())
            })
        });
        // Passed on from the moment the request is sent, each to the
        // container's init, known by pid and start time (before it runs
        // there is nothing to pass it to).
        if !args.detach {
            for n in FORWARDED {
                let mut stream = signal(SignalKind::from_raw(n))?;
                let records = Records::new(&global.root);
                let (project, name) = (project_name.clone(), name.clone());
                tokio::spawn(async move {
                    while stream.recv().await.is_some() {
                        if let Ok(Some(r)) = records.load(&project, &name) {
                            let _ = stack_engine::api::kill_now(&r, n);
                        }
                    }
                });
            }
        }
        let (mut channel, first) = found::open(global, &request).await?;
        let mut next = Some(first);
        let mut code = None;
        let outcome = loop {
            let reply = match next.take() {
                Some(reply) => Some(reply),
                None => channel.recv::<Reply>().await?,
            };
            match reply {
                // The plan's steps are the engine's business, as Docker's
                // daemon keeps its own.
                Some(Reply::Progress { .. } | Reply::Step { .. }) => {}
                Some(Reply::Exit { code: c }) => code = Some(c),
                Some(Reply::Done { message }) => break Ok(message),
                Some(Reply::Failed { error }) => break Err(error),
                None => anyhow::bail!("the supervisor closed the connection"),
            }
        };
        if let Some(thread) = terminal {
            let _ = thread.join();
        }
        outcome?;
        if args.detach {
            let record = found::find(global, &name)?;
            println!("{}", record.id);
            return Ok(ExitCode::SUCCESS);
        }
        Ok(ExitCode::from(
            code.unwrap_or(RUN_FAILED as i32).clamp(0, 255) as u8,
        ))
    })
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
