//! Handing a container's output pipes to the project's log keeper
//! (`crate::logger`), starting the keeper when it is not running, and
//! replacing a keeper that died.
//!
//! The supervisor keeps a duplicate of the read end of every pipe it hands
//! over. Why here rather than in each container's monitor or in a second
//! keeper: the supervisor is already the one process that outlives a
//! keeper and owns every container, a duplicate costs two descriptors per
//! container, and it keeps a pipe open while no keeper reads it, so a
//! container writing then blocks on a full pipe (and resumes) rather than
//! dying of `SIGPIPE`. When the keeper's lock is found free, a new keeper
//! is started and given the duplicates; what the pipes held is read by it,
//! so only lines the dead keeper had read but not yet written are lost.
//!
//! A supervisor started again (adoption) has no duplicates of its own: it
//! takes them from the running keeper with `pidfd_getfd`, finding the
//! keeper's descriptors by the pipe each container writes to, so a keeper
//! that dies after a supervisor restart is replaced all the same.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Host;
use crate::lock::{LockError, ProjectLock};
use crate::logger::{Handover, hand_over, socket_path};

/// The pipes come back with the error when the keeper cannot take them.
type Refused = (std::io::Error, OwnedFd, OwnedFd);

/// How often the supervisor checks that the keeper is still there.
const KEEPER_CHECK: Duration = Duration::from_millis(200);

/// A container's output pipes as the supervisor keeps them.
pub(super) struct Kept {
    handover: Handover,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

impl Host {
    pub(super) async fn hand_over_logs(
        &self,
        handover: Handover,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> Result<(), Refused> {
        let socket = socket_path(&self.config.run_dir, &self.project().name);
        let spawn = self.keeper_command();
        let work = tokio::task::spawn_blocking(move || {
            if hand_over(&socket, &handover, &stdout, &stderr).is_ok() {
                return Ok(());
            }
            if let Err(e) = spawn_keeper(spawn) {
                return Err((e, stdout, stderr));
            }
            stack_runtime::fault::point("keeper-after-spawn");
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match hand_over(&socket, &handover, &stdout, &stderr) {
                    Ok(()) => return Ok(()),
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => return Err((e, stdout, stderr)),
                }
            }
        });
        // The blocking task only panics if the handover itself does.
        work.await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// Keeps duplicates of the read ends of `name`'s pipes (replacing those
    /// of its previous run).
    pub(super) fn keep_pipes(&self, handover: &Handover, stdout: &OwnedFd, stderr: &OwnedFd) {
        match (stdout.try_clone(), stderr.try_clone()) {
            (Ok(stdout), Ok(stderr)) => {
                let kept = Kept {
                    handover: handover.clone(),
                    stdout,
                    stderr,
                };
                self.kept_pipes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(handover.container.clone(), kept);
            }
            (Err(e), _) | (_, Err(e)) => tracing::warn!(
                "cannot keep the output pipes of {}: {e}; its logs end with the keeper",
                handover.container
            ),
        }
    }

    /// Takes duplicates of the read ends of the output pipes of `name`
    /// (an adopted container whose process is `pid`) from the running log
    /// keeper, and keeps them as if this supervisor had started it.
    pub(super) fn keep_adopted_pipes(&self, name: &str, pid: i32, handover: Handover) {
        let project = self.project().name.clone();
        let taken = take_from_keeper(&self.config.run_dir, &project, pid);
        match taken {
            Ok((stdout, stderr)) => self.keep_pipes(&handover, &stdout, &stderr),
            Err(e) => tracing::warn!(
                "cannot take the output pipes of {name} from the log keeper: {e}; \
                 its logs end with the keeper"
            ),
        }
    }

    /// Drops the kept pipes of a container that is removed.
    pub(super) fn forget_pipes(&self, name: &str) {
        self.kept_pipes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// Watches the log keeper for as long as the supervisor runs, and
    /// hands the kept pipes to a new one when it is gone.
    pub fn watch_keeper(self: &Arc<Self>) {
        let host = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEEPER_CHECK);
            loop {
                tick.tick().await;
                let Some(host) = host.upgrade() else { return };
                let pipes: Vec<(Handover, OwnedFd, OwnedFd)> = {
                    let kept = host.kept_pipes.lock().unwrap_or_else(|e| e.into_inner());
                    if kept.is_empty() {
                        continue;
                    }
                    kept.values()
                        .filter_map(|k| {
                            Some((
                                k.handover.clone(),
                                k.stdout.try_clone().ok()?,
                                k.stderr.try_clone().ok()?,
                            ))
                        })
                        .collect()
                };
                let project = host.project().name.clone();
                if keeper_alive(&host.config.run_dir, &project) {
                    continue;
                }
                tracing::warn!("the log keeper of {project} is gone; starting a new one");
                for (handover, stdout, stderr) in pipes {
                    let name = handover.container.clone();
                    if let Err((e, ..)) = host.hand_over_logs(handover, stdout, stderr).await {
                        tracing::warn!("log keeper of {project}: {e}; the logs of {name} wait");
                    }
                }
            }
        });
    }

    /// Ends the project's log keeper and removes its socket, also one a
    /// killed keeper left: called by `down` once the containers are gone,
    /// so nothing of the project stays under the run directory. The socket
    /// is removed while holding the keeper's lock, so that a keeper started
    /// meanwhile for a new `up` never loses its socket to this.
    pub async fn stop_keeper(&self) {
        let run_dir = self.config.run_dir.clone();
        let project = self.project().name.clone();
        let _ = tokio::task::spawn_blocking(move || stop_keeper(&run_dir, &project)).await;
    }

    fn keeper_command(&self) -> Command {
        let mut command = Command::new(&self.config.stack_binary);
        command
            .arg("--root")
            .arg(&self.config.root)
            .arg("--run-dir")
            .arg(&self.config.run_dir)
            .args(["__logs", &self.project().name])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let log = self
            .store
            .project_dir(&self.project().name)
            .join("supervisor.log");
        if let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            command.stderr(file);
        }
        command
    }
}

/// Whether the keeper of `project` holds its lock (the kernel drops it
/// when the keeper dies). Only tries the lock: never waits, never writes.
/// The keeper's read ends of the pipes that `pid`'s stdout and stderr
/// write to.
fn take_from_keeper(
    run_dir: &std::path::Path,
    project: &str,
    pid: i32,
) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let lock = run_dir.join("locks").join(format!("{project}.logs.lock"));
    let holder: crate::lock::Holder = serde_json::from_slice(&std::fs::read(&lock)?)?;
    if !keeper_alive(run_dir, project) {
        return Err(std::io::Error::other("no log keeper runs"));
    }
    let keeper = holder.pid as i32;
    let pipe_of = |pid: i32, fd: &str| std::fs::read_link(format!("/proc/{pid}/fd/{fd}"));
    let (out, err) = (pipe_of(pid, "1")?, pipe_of(pid, "2")?);
    let mut found = (None, None);
    for entry in std::fs::read_dir(format!("/proc/{keeper}/fd"))?.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if target == out && found.0.is_none() {
            found.0 = Some(fd);
        } else if target == err && found.1.is_none() {
            found.1 = Some(fd);
        }
    }
    let missing = || std::io::Error::other(format!("the keeper holds no pipe of process {pid}"));
    let (Some(out), Some(err)) = found else {
        return Err(missing());
    };
    let pidfd = crate::pidfd::open_pidfd(keeper, rustix::process::PidfdFlags::empty())?;
    Ok((
        crate::pidfd::take_fd(&pidfd, out)?,
        crate::pidfd::take_fd(&pidfd, err)?,
    ))
}

fn keeper_alive(run_dir: &std::path::Path, project: &str) -> bool {
    crate::lock::is_held(run_dir, &format!("{project}.logs"))
}

fn stop_keeper(run_dir: &std::path::Path, project: &str) {
    let name = format!("{project}.logs");
    let lock = match ProjectLock::acquire(run_dir, &name, "stack down", Duration::ZERO) {
        Ok(lock) => Some(lock),
        Err(LockError::Held { holder, .. }) => {
            // The keeper would leave by itself within seconds of seeing the
            // project gone; `down` does not wait for that.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(holder.pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            ProjectLock::acquire(run_dir, &name, "stack down", Duration::from_secs(3)).ok()
        }
        Err(e) => {
            tracing::warn!("log keeper of {project}: {e}");
            None
        }
    };
    if lock.is_some() {
        let socket = socket_path(run_dir, project);
        if let Err(e) = std::fs::remove_file(&socket)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("remove {}: {e}", socket.display());
        }
    }
}

fn spawn_keeper(mut command: Command) -> std::io::Result<()> {
    // SAFETY: setsid is async-signal-safe and the child does nothing else
    // before exec. Its own session keeps it out of the supervisor's fate.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    // The supervisor is its parent while both run: reap it when it ends.
    std::thread::spawn(move || child.wait());
    Ok(())
}
