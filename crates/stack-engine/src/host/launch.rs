//! Running a created container's process, again after each exit: the
//! monitor's [`Launcher`], with the container's output piped into its log.

use std::fs::{self, File};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use oci_spec::runtime::Spec;
use stack_runtime::{Container, CreateOptions, Stdio};
use stack_spec::{RestartPolicy as SpecPolicy, Service};

use super::create::{CreateError, io};
use super::{Attach, Host};
use crate::console::ConsoleSocket;
use crate::log_files::{LogWriter, Rotation, Stream};
use crate::log_keeper::Handover;
use crate::monitoring::{Launcher, Snapshot};
use crate::observed::ContainerState;
use crate::pidfd::ExitStatus;
use crate::restart::{Backoff, Exit, RestartPolicy, RestartState};
use crate::store::LastExit;

/// One line of container output, for attached `up` and `logs -f`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub container: String,
    pub service: String,
    pub stream: Stream,
    pub line: String,
}

/// The engine's restart policy for a service: `restart:` or
/// `deploy.restart_policy` (which wins, as in compose). Its conditions map
/// as compose maps them (`none` → no, `on-failure`, `any` → always);
/// `max_attempts` limits `any` too, as swarm does.
pub fn restart_policy(service: &Service) -> RestartPolicy {
    if let Some(p) = service
        .deploy
        .as_ref()
        .and_then(|d| d.restart_policy.as_ref())
    {
        let max = p.max_attempts.filter(|&n| n > 0);
        return match (p.condition.as_deref(), max) {
            (Some("none" | "no"), _) => RestartPolicy::No,
            (Some("on-failure"), _) => RestartPolicy::OnFailure { max_retries: max },
            (Some("unless-stopped"), _) => RestartPolicy::UnlessStopped,
            (_, Some(max_attempts)) => RestartPolicy::Any { max_attempts },
            _ => RestartPolicy::Always,
        };
    }
    match service.restart.unwrap_or_default() {
        SpecPolicy::No => RestartPolicy::No,
        SpecPolicy::Always => RestartPolicy::Always,
        SpecPolicy::OnFailure { max_retries } => RestartPolicy::OnFailure { max_retries },
        SpecPolicy::UnlessStopped => RestartPolicy::UnlessStopped,
    }
}

/// The waits between restarts: Docker's doubling backoff, or with
/// `deploy.restart_policy.delay` swarm's fixed delay, and its `window` as
/// the run that counts as a success (10 s, Docker's, when not given).
pub fn backoff(service: &Service) -> Backoff {
    let policy = service
        .deploy
        .as_ref()
        .and_then(|d| d.restart_policy.as_ref());
    let docker = Backoff::default();
    match policy {
        Some(p) if p.delay.is_some() || p.window.is_some() => {
            let window = p
                .window
                .map(|w| w.as_duration())
                .unwrap_or(docker.reset_after);
            match p.delay {
                Some(delay) => Backoff::fixed(delay.as_duration(), window),
                None => Backoff {
                    reset_after: window,
                    ..docker
                },
            }
        }
        _ => docker,
    }
}

/// `x-stack.restart_on_unhealthy`.
pub fn restart_on_unhealthy(service: &Service) -> bool {
    service
        .x_stack
        .as_ref()
        .is_some_and(|x| x.restart_on_unhealthy)
}

/// `stop_signal`, or else the image's `StopSignal`, as a signal number;
/// SIGTERM when neither names one. The service's was checked at load; an
/// image's that names no signal is an error, not SIGTERM.
pub fn stop_signal(
    service: &Service,
    image_default: Option<&str>,
) -> Result<i32, stack_spec::signal::SignalError> {
    match service.stop_signal.as_deref().or(image_default) {
        Some(name) => stack_spec::signal::number(name),
        None => Ok(libc::SIGTERM),
    }
}

pub fn stop_grace(service: &Service) -> Duration {
    service
        .stop_grace_period
        .map(|d| d.as_duration())
        .unwrap_or(Duration::from_secs(10))
}

fn rotation(service: &Service) -> Rotation {
    let mut r = Rotation::default();
    let Some(logging) = &service.logging else {
        return r;
    };
    let opt = |k: &str| logging.options.get(k).cloned().flatten();
    if let Some(size) = opt("max-size").and_then(|s| stack_spec::units::parse_bytes(&s).ok()) {
        r.max_size = size.max(1) as u64;
    }
    if let Some(n) = opt("max-file").and_then(|s| s.parse().ok()) {
        r.max_file = n;
    }
    r
}

fn pipe() -> Result<(OwnedFd, OwnedFd), CreateError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| CreateError::Io {
        what: "create a pipe for",
        path: "container output".into(),
        source: e.into(),
    })
}

impl Host {
    pub(super) fn log_path(&self, name: &str) -> std::path::PathBuf {
        self.container_dir(name).join("container.log")
    }

    /// What the log keeper needs to write `name`'s output.
    pub(super) fn handover(&self, name: &str, service: &Service) -> Handover {
        let rotation = rotation(service);
        Handover {
            container: name.to_owned(),
            path: self.log_path(name),
            max_size: rotation.max_size,
            max_file: rotation.max_file,
        }
    }

    async fn launch(&self, name: &str) -> Result<i32, CreateError> {
        let mut record = self.record(name)?;
        let service = self.service(&record.service)?;
        let dir = self.container_dir(name);
        let config = dir.join("config.json");
        let mut spec: Spec = serde_json::from_slice(
            &fs::read(&config).map_err(io("read", &config))?,
        )
        .map_err(|e| CreateError::Io {
            what: "parse",
            path: config.clone(),
            source: e.into(),
        })?;
        let mut options = CreateOptions::new(record.id.clone(), dir.clone(), self.runtime_root());
        // An attached one-off container uses its caller's stdio or a
        // terminal instead of the log.
        let attach = self
            .attach
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        let mut pipes = None;
        let mut console = None;
        options.stdio = match attach {
            Some(Attach::Inherit {
                stdin,
                stdout,
                stderr,
            }) => Stdio {
                stdin: Some(stdin),
                stdout: Some(stdout),
                stderr: Some(stderr),
            },
            Some(Attach::Terminal {
                console_socket,
                rows,
                cols,
            }) => {
                if let Some(mut process) = spec.process().clone() {
                    process.set_terminal(Some(true));
                    let size = oci_spec::runtime::BoxBuilder::default()
                        .height(u64::from(rows))
                        .width(u64::from(cols))
                        .build()
                        .ok();
                    process.set_console_size(size);
                    spec.set_process(Some(process));
                }
                options.console_socket = Some(console_socket);
                Stdio::default()
            }
            // `tty: true` (`run -dt`): the container's terminal goes to the
            // log keeper as its output; a terminal has one stream, so the
            // keeper's second one ends at once.
            None if spec.process().as_ref().and_then(|p| p.terminal()) == Some(true) => {
                let path = self
                    .config
                    .run_dir
                    .join("consoles")
                    .join(format!("{}.sock", record.id));
                let socket = ConsoleSocket::bind(path.clone()).map_err(io("listen on", &path))?;
                options.console_socket = Some(path);
                console = Some(socket);
                Stdio::default()
            }
            None => {
                let (out_r, out_w) = pipe()?;
                let (err_r, err_w) = pipe()?;
                pipes = Some((out_r, err_r));
                let devnull =
                    File::open("/dev/null").map_err(io("open", Path::new("/dev/null")))?;
                Stdio {
                    stdin: Some(devnull.into()),
                    stdout: Some(out_w),
                    stderr: Some(err_w),
                }
            }
        };
        options.spec = Some(spec);
        options.init_binary = self.config.init_binary.clone();
        options.default_seccomp = crate::spec::default_seccomp(&service);
        // `init: true`: the runtime's own minimal init is pid 1 (Docker's --init).
        options.init = service.init == Some(true);
        let runtime_root = self.runtime_root();
        let id = record.id.clone();
        let (container, master) = tokio::task::spawn_blocking(
            move || -> Result<(Container, Option<std::io::Result<OwnedFd>>), stack_runtime::Error> {
                // A previous run of this container leaves its runtime state,
                // or a supervisor killed while creating it a half-made one.
                Container::discard(&runtime_root, &id)?;
                let mut c = Container::create(options)?;
                // Sent by the init during create; taken before it runs, so
                // that none of its output is missed.
                let master = console.as_ref().map(ConsoleSocket::receive);
                drop(console);
                // Without its terminal nobody would read it: not started.
                if !matches!(master, Some(Err(_))) {
                    c.start()?;
                }
                Ok((c, master))
            },
        )
        .await
        .map_err(|e| CreateError::Io {
            what: "run",
            path: dir.clone(),
            source: std::io::Error::other(e),
        })??;
        stack_runtime::fault::point("start-after-exec");
        if let Some(master) = master {
            let master = master.map_err(io("receive the terminal of", &dir))?;
            // An empty second stream: its write end goes at once.
            let (none_r, _) = pipe()?;
            pipes = Some((master, none_r));
        }

        if let Some((out_r, err_r)) = pipes {
            let rotation = rotation(&service);
            let handover = self.handover(name, &service);
            self.keep_pipes(&handover, &out_r, &err_r);
            if let Err((e, out_r, err_r)) = self.hand_over_logs(handover, out_r, err_r).await {
                // Without a keeper the supervisor reads the output itself;
                // it then stops with the supervisor, so say so.
                tracing::warn!(
                    "log keeper of {}: {e}; logging in the supervisor",
                    record.project
                );
                let writer = LogWriter::open(&self.log_path(name), rotation)
                    .map_err(io("open the log of", &dir))?;
                let writer = Arc::new(Mutex::new(writer));
                for (fd, stream) in [(out_r, Stream::Stdout), (err_r, Stream::Stderr)] {
                    let notify = self.emitter(name);
                    crate::log_keeper::pump(
                        fd,
                        stream,
                        name.to_owned(),
                        writer.clone(),
                        |_| {},
                        move |notice| notify(notice.into()),
                    );
                }
            }
        }

        stack_runtime::fault::point("start-after-logs");
        record.pid = Some(container.pid());
        record.started_ms = Some(now_ms());
        record.error = None;
        record.pid_start_time = Some(container.start_time());
        record.state = ContainerState::Running;
        self.store.save_status(&record)?;
        Ok(container.pid())
    }
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Launcher for Host {
    type Error = CreateError;

    fn exec_status(&self, error: &CreateError) -> Option<u8> {
        match error {
            CreateError::Runtime(stack_runtime::Error::Init {
                step: stack_runtime::Step::Executable,
                errno,
                ..
            }) => Some(match *errno {
                Some(libc::EACCES) | Some(libc::ENOEXEC) => 126,
                _ => 127,
            }),
            _ => None,
        }
    }

    async fn start(&self, container: &str) -> Result<i32, Self::Error> {
        let result = self.launch(container).await;
        if let Err(e) = &result
            && let Ok(mut record) = self.record(container)
        {
            record.error = Some(e.to_string());
            // Without its bundle the container can never run again: that
            // is Docker's `dead`, and `inspect` says why.
            if !self.container_dir(container).join("config.json").exists() {
                record.state = ContainerState::Dead;
                record.dead_reason = Some(format!("its bundle is gone ({e})"));
            }
            let _ = self.store.save(&record);
        }
        result
    }

    fn signal(&self, _: &str, pid: i32, signal: i32) -> Result<(), Self::Error> {
        let io = |e: nix::errno::Errno| CreateError::Io {
            what: "signal",
            path: pid.to_string().into(),
            source: e.into(),
        };
        // Signals were checked where they were named (`stack_spec::signal`);
        // an unknown number here is an error, not a SIGKILL.
        let signal = Signal::try_from(signal).map_err(io)?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(io)
    }

    fn remember(&self, container: &str, snapshot: &Snapshot, restart: &RestartState) {
        let Ok(mut record) = self.record(container) else {
            return;
        };
        let before = record.clone();
        // `Created` is the monitor's state before its first start, and a
        // dead container stays dead: the record knows better.
        if snapshot.state != ContainerState::Created && record.state != ContainerState::Dead {
            record.state = snapshot.state;
        }
        record.restart = *restart;
        record.restart_count = snapshot.restart_count;
        record.stopped_by_user = snapshot.stopped_by_user;
        record.next_attempt_ms = snapshot.next_attempt.map(|due| {
            let wait = due.saturating_duration_since(tokio::time::Instant::now());
            now_ms() + wait.as_millis() as u64
        });
        if record != before
            && let Err(e) = self.store.save_status(&record)
        {
            tracing::warn!("saving {container}: {e}");
        }
    }

    fn classify(&self, container: &str, status: ExitStatus) -> Exit {
        let record = self.record(container).ok();
        let oom = record.as_ref().is_some_and(|r| {
            Container::load(&self.runtime_root(), &r.id)
                .map(|c| c.cgroup().oom_kills() > 0)
                .unwrap_or(false)
        });
        let exit = match status {
            ExitStatus::Signaled(libc::SIGKILL) if oom => Exit::OomKilled,
            ExitStatus::Exited(code) if oom && code == 137 => Exit::OomKilled,
            ExitStatus::Exited(code) => Exit::Code(code),
            ExitStatus::Signaled(sig) => Exit::Signal(sig),
            ExitStatus::Unknown if oom => Exit::OomKilled,
            ExitStatus::Unknown => Exit::Unknown,
        };
        if let Some(mut record) = record {
            record.state = ContainerState::Exited;
            record.pid = None;
            record.pid_start_time = None;
            record.push_exit(LastExit {
                code: (status != ExitStatus::Unknown).then(|| exit.code()),
                oom_killed: exit == Exit::OomKilled,
                at_ms: now_ms(),
                started_ms: record.started_ms,
            });
            if let Err(e) = self.store.save_status(&record) {
                tracing::warn!("saving {container}: {e}");
            }
        }
        exit
    }
}
