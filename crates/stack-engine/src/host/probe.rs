//! Health probes: run the check inside the container (exec through the
//! runtime) on the check's schedule, feed the result to the health state
//! machine, and publish every change at once to whoever waits on it.

use std::fs;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use nix::fcntl::OFlag;
use oci_spec::runtime::Spec;
use stack_runtime::{Container, ExecOptions, Stdio};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Host;
use crate::health::{Check, HEALTH_FILE, Health, Status as HealthStatus, next_probe_in};
use crate::pidfd::{ExitStatus, PidFd};
use crate::supervise::{Command, EventKind};

impl Host {
    /// Starts probing `name`; the receiver sees every status change.
    pub(super) fn spawn_prober(
        self: &Arc<Self>,
        name: &str,
        check: Check,
    ) -> (watch::Receiver<Health>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(Health::default());
        let host = self.clone();
        let name = name.to_owned();
        let task = tokio::spawn(async move {
            let mut health = Health::default();
            let mut pid = None;
            let mut started = Instant::now();
            loop {
                tokio::time::sleep(next_probe_in(&check.timing, started.elapsed())).await;
                let current = host.current_pid(&name);
                // A paused container is not probed (its probe would freeze).
                if current.is_none() || host.is_paused(&name) {
                    continue;
                }
                if current != pid {
                    // A restarted container starts over as `starting`.
                    pid = current;
                    started = Instant::now();
                    health = Health::default();
                    tx.send_replace(health.clone());
                }
                let (code, output) = host.probe(&name, &check).await;
                if let Some(status) = health.record(&check.timing, started.elapsed(), code, &output)
                {
                    host.emit(&name, EventKind::HealthStatus { status });
                    if status == HealthStatus::Unhealthy {
                        host.tell(&name, Command::Unhealthy);
                    }
                }
                host.keep_health(&name, &health);
                tx.send_replace(health.clone());
            }
        });
        (rx, task)
    }

    /// Sends a command to a container's monitor without waiting.
    pub(super) fn tell(&self, name: &str, command: Command) {
        let watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = watched.get(name) {
            let _ = w.monitor.commands.try_send(command);
        }
    }

    /// Keeps the health state beside the record, for `inspect` and `ps`.
    /// Replaced atomically but not synced: it is written after every probe,
    /// and describes processes that a power loss ends anyway (the first
    /// probe after a restart writes it again).
    fn keep_health(&self, name: &str, health: &Health) {
        let path = self.container_dir(name).join(HEALTH_FILE);
        let bytes = serde_json::to_vec(health).expect("health serialises");
        if let Err(e) = stack_fs::write_with(&path, &bytes, stack_fs::Durability::Unsynced) {
            tracing::warn!("{e}");
        }
    }

    fn current_pid(&self, name: &str) -> Option<i32> {
        let watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        watched
            .get(name)
            .and_then(|w| w.monitor.snapshot.borrow().pid)
    }

    /// One probe: its exit code (-1 when it could not run or timed out) and
    /// its output.
    async fn probe(self: &Arc<Self>, name: &str, check: &Check) -> (i32, String) {
        match self
            .exec_capture(name, &check.argv, check.timing.timeout)
            .await
        {
            Ok(result) => result,
            Err(e) => (-1, e),
        }
    }

    /// Runs `argv` inside the running container and returns its exit code
    /// and combined output; after `timeout` the process is killed.
    ///
    /// The work runs in a task of its own that always reaps the process,
    /// even when the caller is dropped midway (a prober aborted by `stop`):
    /// an unreaped zombie in the container's pid namespace would keep its
    /// pid 1 from ever exiting.
    pub async fn exec_capture(
        self: &Arc<Self>,
        name: &str,
        argv: &[String],
        timeout: std::time::Duration,
    ) -> Result<(i32, String), String> {
        let host = self.clone();
        let (name, argv) = (name.to_owned(), argv.to_vec());
        tokio::spawn(async move { host.exec_reaped(&name, &argv, timeout).await })
            .await
            .map_err(|e| e.to_string())?
    }

    async fn exec_reaped(
        &self,
        name: &str,
        argv: &[String],
        timeout: std::time::Duration,
    ) -> Result<(i32, String), String> {
        let record = self.record(name).map_err(|e| e.to_string())?;
        let config = self.container_dir(name).join("config.json");
        let spec: Spec = fs::read(&config)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| format!("cannot read {}", config.display()))?;
        let mut process = spec
            .process()
            .clone()
            .ok_or("the container has no process")?;
        process.set_args(Some(argv.to_vec()));
        process.set_terminal(Some(false));
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
        let write2: OwnedFd = write.try_clone().map_err(|e| e.to_string())?;
        let devnull: OwnedFd = fs::File::open("/dev/null")
            .map_err(|e| e.to_string())?
            .into();
        let options = ExecOptions {
            init_binary: self.config.init_binary.clone(),
            stdio: Stdio {
                stdin: Some(devnull),
                stdout: Some(write),
                stderr: Some(write2),
            },
            console_socket: None,
        };
        let runtime_root = self.runtime_root();
        let pid = tokio::task::spawn_blocking(move || {
            let c = Container::load(&runtime_root, &record.id).map_err(|e| e.to_string())?;
            c.exec(process, options).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        let pidfd = PidFd::open(pid).map_err(|e| e.to_string())?;
        let mut output = Vec::new();
        let reader = async {
            if let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(read) {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut chunk).await {
                    if n == 0 || output.len() > 64 * 1024 {
                        break;
                    }
                    output.extend_from_slice(&chunk[..n]);
                }
            }
        };
        let waited =
            tokio::time::timeout(timeout, async { tokio::join!(pidfd.exited(), reader).0 }).await;
        let status = match waited {
            Ok(status) => status.map_err(|e| e.to_string())?,
            Err(_) => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = pidfd.exited().await;
                return Ok((-1, format!("health check timed out after {timeout:?}")));
            }
        };
        let code = match status {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
            ExitStatus::Unknown => -1,
        };
        Ok((code, String::from_utf8_lossy(&output).into_owned()))
    }
}
