//! Talking to a project's supervisor: find it, start it when it is not
//! running (it then adopts whatever runs), and send it requests.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use stack_engine::api::HostConfig;
use stack_engine::api::{Channel, ControlError, EngineError, Progress, Request, socket_path};

use crate::cli::GlobalArgs;

/// The engine's settings from the global options and the environment.
pub fn host_config(global: &GlobalArgs) -> anyhow::Result<HostConfig> {
    let stack_binary = crate::helper::stack_binary()?;
    let init_binary = crate::helper::init_binary()?;
    let registries = stack_image::registry_config::RegistriesConfig::from_env()
        .context("reading the registry configuration")?;
    let mut net = stack_net::NetOptions::default();
    // Like Docker's default-address-pools: where networks get their subnets.
    if let Ok(pool) = std::env::var("STACK_SUBNET_POOL") {
        net.subnet_pool = pool
            .split(',')
            .map(|s| s.trim().parse())
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("STACK_SUBNET_POOL={pool}: {e}"))?;
    }
    // Build networks take theirs from a pool of their own, so that a
    // build never competes with the projects' networks for a subnet.
    // A /28 each: a build's steps that run at once are its stages.
    let mut build_net = net.clone();
    build_net.subnet_pool = vec!["10.209.0.0/16".parse().expect("valid literal")];
    build_net.subnet_prefix = 28;
    if let Ok(pool) = std::env::var("STACK_BUILD_SUBNET_POOL") {
        build_net.subnet_pool = pool
            .split(',')
            .map(|s| s.trim().parse())
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("STACK_BUILD_SUBNET_POOL={pool}: {e}"))?;
    }
    Ok(HostConfig {
        root: global.root.clone(),
        run_dir: global.run_dir.clone(),
        stack_binary,
        init_binary,
        net,
        build_net,
        registries,
    })
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn log_file(global: &GlobalArgs, project: &str) -> anyhow::Result<std::fs::File> {
    let layout = stack_fs::Layout::of_root(&global.root);
    let dir = layout.project(project);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = layout.supervisor_log(project);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Connects to the project's supervisor, starting one when none answers.
pub async fn connect(global: &GlobalArgs, project: &str) -> anyhow::Result<Channel> {
    let path = socket_path(&global.run_dir, project);
    if let Ok(channel) = Channel::connect(&path).await {
        return Ok(channel);
    }
    let ready = spawn_supervisor(global, project)?;
    // Its end of the pipe closes once it listens (or it ended): no polling
    // for the socket meanwhile. Another supervisor may have won the
    // project's lock, hence the loop after it.
    let mut ready = tokio::net::unix::pipe::Receiver::from_owned_fd(ready)
        .context("waiting for the supervisor")?;
    let mut byte = [0u8; 1];
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut ready, &mut byte),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Channel::connect(&path).await {
            Ok(channel) => return Ok(channel),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            Err(e) => {
                let log = stack_fs::Layout::of_root(&global.root).supervisor_log(project);
                bail!(
                    "the supervisor of {project} did not start ({e}); see {}",
                    log.display()
                )
            }
        }
    }
}

/// Starts the supervisor; returns the read end of the pipe it closes once
/// its socket listens.
fn spawn_supervisor(global: &GlobalArgs, project: &str) -> anyhow::Result<OwnedFd> {
    let exe = crate::helper::stack_binary()?;
    // The supervisor needs the helper for every container: a missing one is
    // said here, not only in the supervisor's log.
    crate::helper::init_binary()?;
    let log = log_file(global, project)?;
    let mut command = Command::new(exe);
    command
        .arg("--root")
        .arg(&global.root)
        .arg("--run-dir")
        .arg(&global.run_dir)
        .args(["__supervise", project])
        .arg("--ready-fd")
        .arg(READY_FD.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let fd = ready_w.as_raw_fd();
    // SAFETY: setsid and dup2 are async-signal-safe; the child does
    // nothing else before exec. A new session keeps the supervisor alive
    // when the terminal that ran `stack up` goes away; dup2 leaves the
    // pipe open across exec at READY_FD.
    unsafe {
        command.pre_exec(move || {
            libc::setsid();
            // dup2 onto itself would keep close-on-exec.
            let moved = if fd == READY_FD {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, READY_FD)
            };
            if moved < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().context("cannot start the supervisor")?;
    drop(ready_w);
    Ok(ready_r)
}

/// Where the supervisor finds its end of the readiness pipe.
const READY_FD: i32 = 3;

/// Progress lines go to standard error, or to standard output when
/// COMPOSE_STATUS_STDOUT asks for it.
static STATUS_TO_STDOUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn status_to_stdout() {
    STATUS_TO_STDOUT.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The progress display for one request, as the options ask.
pub fn display(global: &GlobalArgs) -> crate::progress::Display {
    crate::progress::Display::new(
        global.progress,
        STATUS_TO_STDOUT.load(std::sync::atomic::Ordering::Relaxed),
    )
}

/// Whether the supervisor went away before it began on a request: it was
/// finishing a `down` (or was killed) while the request waited to be read.
fn ended_before_answering(e: &ControlError) -> bool {
    match e {
        ControlError::Closed => true,
        ControlError::Io { source, .. } => matches!(
            source.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

/// Sends `request` to the project's supervisor (starting one when none
/// runs) and returns its final reply, `progress` seeing each line and step. A
/// supervisor that ends before it said anything (a `down` in progress
/// finished meanwhile) is waited for and the request sent to a new one,
/// instead of failing with a reset connection.
pub async fn request(
    global: &GlobalArgs,
    project: &str,
    request: &Request,
    mut progress: impl FnMut(Progress<'_>),
) -> anyhow::Result<Result<String, EngineError>> {
    const ATTEMPTS: usize = 3;
    for attempt in 1.. {
        let mut channel = connect(global, project).await?;
        let mut heard = false;
        let result = channel
            .call_steps(request, |event| {
                heard = true;
                progress(event)
            })
            .await;
        match result {
            Err(e) if !heard && attempt < ATTEMPTS && ended_before_answering(&e) => {
                if attempt == 1 {
                    eprintln!("the supervisor of {project} is finishing a down; waiting for it");
                }
                wait_gone(&global.run_dir, project).await;
            }
            other => {
                return other.with_context(|| format!("talking to the supervisor of {project}"));
            }
        }
    }
    unreachable!("the loop returns by its last attempt")
}

/// Waits (a few seconds at most) for a finishing supervisor to remove its
/// socket, or to be gone (killed, it leaves the socket but not its lock).
async fn wait_gone(run_dir: &std::path::Path, project: &str) {
    let socket = socket_path(run_dir, project);
    let deadline = Instant::now() + Duration::from_secs(5);
    while socket.exists()
        && stack_engine::api::lock::is_held(run_dir, project)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends a request and prints its progress; returns the supervisor's last
/// word, or its error as it came (see `failure`).
pub async fn call(global: &GlobalArgs, project: &str, request: &Request) -> anyhow::Result<String> {
    call_shown(global, project, request, display(global).titled(request)).await
}

/// As [`call`], the progress shown on `display`.
pub async fn call_shown(
    global: &GlobalArgs,
    project: &str,
    request: &Request,
    display: crate::progress::Display,
) -> anyhow::Result<String> {
    let display = std::sync::Mutex::new(display);
    let show = |event: Progress<'_>| {
        display
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .show(event)
    };
    let work = self::request(global, project, request, show);
    tokio::pin!(work);
    let mut tick = tokio::time::interval(crate::progress::TICK);
    let answer = loop {
        tokio::select! {
            answer = &mut work => break answer,
            _ = tick.tick() => display.lock().unwrap_or_else(|e| e.into_inner()).tick(),
        }
    };
    display.lock().unwrap_or_else(|e| e.into_inner()).finish();
    Ok(answer??)
}

/// Makes sure a project that has containers has its supervisor, starting
/// one (which adopts them and applies their restart policies) when it is
/// gone; answers once that supervisor has taken them over.
pub fn ensure_supervisor(global: &GlobalArgs, project: &str) -> anyhow::Result<()> {
    let records = stack_engine::api::Records::new(&global.root);
    if records.containers(project)?.is_empty() {
        return Ok(());
    }
    runtime()?.block_on(async {
        request(global, project, &Request::Ping, |_| {}).await??;
        Ok(())
    })
}

/// The project name from `-p`, or from loading the stack file.
pub fn project_name(args: &crate::project_args::ProjectArgs) -> anyhow::Result<Option<String>> {
    if let Some(name) = &args.project_name {
        return Ok(Some(stack_spec::normalize_project_name(name)));
    }
    Ok(args.load()?.map(|loaded| loaded.project.name))
}

/// Sends a request about an existing project's containers (`start`,
/// `stop`, `kill` ...), prints its progress and final word, and returns
/// the exit code.
pub fn send(
    global: &GlobalArgs,
    args: &crate::project_args::ProjectArgs,
    request: Request,
) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    let Some(name) = project_name(args)? else {
        return Ok(ExitCode::FAILURE);
    };
    if !stack_fs::Layout::of_root(&global.root)
        .project(&name)
        .exists()
    {
        eprintln!("error: project {name} has no containers");
        return Ok(ExitCode::FAILURE);
    }
    let message = runtime()?.block_on(call(global, &name, &request))?;
    if !message.is_empty() {
        eprintln!("{message}");
    }
    Ok(ExitCode::SUCCESS)
}

/// [`send`], or with `--dry-run` the plan the request would run, printed,
/// changing nothing.
pub fn send_planned(
    global: &GlobalArgs,
    args: &crate::project_args::ProjectArgs,
    request: Request,
    dry_run: bool,
) -> anyhow::Result<std::process::ExitCode> {
    if !dry_run {
        return send(global, args, request);
    }
    let Some(loaded) = args.load()? else {
        return Ok(std::process::ExitCode::FAILURE);
    };
    let plan = stack_engine::api::plan_lifecycle(host_config(global)?, loaded.project, &request)?;
    print!("{plan}");
    if plan.is_empty() {
        println!("nothing to do");
    }
    Ok(std::process::ExitCode::SUCCESS)
}
