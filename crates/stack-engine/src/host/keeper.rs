//! Handing a container's output pipes to the project's log keeper
//! (`crate::logger`), starting the keeper when it is not running.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Host;
use crate::lock::{LockError, ProjectLock};
use crate::logger::{Handover, hand_over, socket_path};

/// The pipes come back with the error when the keeper cannot take them.
type Refused = (std::io::Error, OwnedFd, OwnedFd);

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
        let mut command = Command::new(&self.config.init_binary);
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
