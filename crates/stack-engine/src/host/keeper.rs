//! Handing a container's output pipes to the project's log keeper
//! (`crate::logger`), starting the keeper when it is not running.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Host;
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
