//! What the user does to existing containers (start, stop, kill, pause,
//! unpause), one-off containers, and waiting until services are ready.
//!
//! A user stop or kill is remembered in the record (`stopped_by_user`), so
//! that the policy leaves the container down, also across a supervisor
//! restart (`unless-stopped`); a user start forgets it.

use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stack_runtime::Container;
use stack_spec::Service;
use tokio::sync::broadcast::error::RecvError;

use super::Host;
use super::create::{CreateError, Made};
use super::driver::DriverError;
use crate::health::Status as HealthStatus;
use crate::monitoring::{Command, EventKind};
use crate::observed::ContainerState;
use crate::pidfd::{PidfdFlags, open_pidfd, take_fd};
use crate::restart::Exit;

/// Where a one-off container's stdio comes from (see `control::RunStdio`).
#[derive(Debug)]
pub enum Attach {
    Inherit {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Terminal {
        console_socket: PathBuf,
        rows: u16,
        cols: u16,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Create(#[from] CreateError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("container {name}: {source}")]
    Runtime {
        name: String,
        #[source]
        source: stack_runtime::Error,
    },
    #[error("container {0} is paused; unpause it first")]
    Paused(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("service {0} is unhealthy")]
    Unhealthy(String),
    #[error("service {service} exited with code {code}")]
    Exited { service: String, code: i32 },
    #[error("service {0} is not running")]
    NotStarted(String),
    #[error("timed out after {secs} s waiting for {waiting}")]
    Timeout { secs: u64, waiting: String },
    #[error("cannot take the caller's stdio (pid {pid}): {source}")]
    Stdio {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
}

impl Host {
    pub(super) fn set_stopped_by_user(&self, name: &str, stopped: bool) -> Result<(), CreateError> {
        let mut record = self.record(name)?;
        if record.stopped_by_user != stopped {
            record.stopped_by_user = stopped;
            self.store.save(&record)?;
        }
        Ok(())
    }

    /// `stack stop`: remembered as the user's, so no policy brings it back.
    pub async fn user_stop(&self, name: &str, grace: Option<Duration>) -> Result<(), OpsError> {
        self.set_stopped_by_user(name, true)?;
        self.stop_within(name, grace).await;
        Ok(())
    }

    /// `stack start` of a stopped or exited container; resolves once its
    /// process runs. A running one is left alone.
    pub async fn user_start(self: &Arc<Self>, name: &str) -> Result<(), OpsError> {
        let record = self.record(name)?;
        if self.state_of(&record).is_up() {
            return Ok(());
        }
        self.set_stopped_by_user(name, false)?;
        let idle = self
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|w| w.monitor.commands.clone());
        match idle {
            Some(commands) => Ok(self.start_idle(name, &commands).await?),
            None => Ok(self.run(name).await?),
        }
    }

    /// Starts a container whose monitor is idle (after an exit the policy
    /// let stand); resolves once its process runs.
    pub(super) async fn start_idle(
        &self,
        name: &str,
        commands: &tokio::sync::mpsc::Sender<Command>,
    ) -> Result<(), DriverError> {
        let gone = || DriverError::Start("the supervisor is stopping".into());
        let mut events = self.events.subscribe();
        commands.send(Command::Start).await.map_err(|_| gone())?;
        loop {
            match events.recv().await {
                Ok(e) if e.container == name => match e.kind {
                    EventKind::Start { .. } => return Ok(()),
                    EventKind::StartFailed {
                        error,
                        exec_status: Some(status),
                    } => return Err(DriverError::Execute { error, status }),
                    EventKind::StartFailed { error, .. } => return Err(DriverError::Start(error)),
                    _ => {}
                },
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return Err(gone()),
            }
        }
    }

    /// `stack kill -s SIG`: the signal to the container's main process.
    /// Returns whether it was running. Counts as a user stop, as in Docker.
    pub async fn user_kill(&self, name: &str, signal: i32) -> Result<bool, OpsError> {
        let record = self.record(name)?;
        if !self.state_of(&record).is_up() || !record.is_alive() {
            return Ok(false);
        }
        let paused = record.state == ContainerState::Paused;
        if paused && signal != libc::SIGKILL {
            return Err(OpsError::Paused(name.to_owned()));
        }
        self.set_stopped_by_user(name, true)?;
        let commands = self
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|w| w.monitor.commands.clone());
        let sent = match commands {
            Some(commands) => commands.send(Command::Kill { signal }).await.is_ok(),
            None => false,
        };
        if !sent && let Some(pid) = record.pid {
            let signal = nix::sys::signal::Signal::try_from(signal)
                .unwrap_or(nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
        if paused {
            self.thaw(name);
        }
        Ok(true)
    }

    fn runtime_container(&self, name: &str) -> Result<Container, OpsError> {
        let record = self.record(name)?;
        Container::load(&self.runtime_root(), &record.id).map_err(|source| OpsError::Runtime {
            name: name.to_owned(),
            source,
        })
    }

    /// `stack pause`: freezes every process of the container (the freezer
    /// cgroup). Returns whether it was running.
    pub fn pause(&self, name: &str) -> Result<bool, OpsError> {
        let mut record = self.record(name)?;
        if record.state == ContainerState::Paused || !record.is_alive() {
            return Ok(false);
        }
        let mut container = self.runtime_container(name)?;
        container.pause().map_err(|source| OpsError::Runtime {
            name: name.to_owned(),
            source,
        })?;
        record.state = ContainerState::Paused;
        self.store.save(&record)?;
        Ok(true)
    }

    /// `stack unpause`. Returns whether it was paused.
    pub fn unpause(&self, name: &str) -> Result<bool, OpsError> {
        let mut record = self.record(name)?;
        if record.state != ContainerState::Paused {
            return Ok(false);
        }
        if record.is_alive() {
            let mut container = self.runtime_container(name)?;
            container.resume().map_err(|source| OpsError::Runtime {
                name: name.to_owned(),
                source,
            })?;
        }
        record.state = ContainerState::Running;
        self.store.save(&record)?;
        Ok(true)
    }

    /// Unpauses quietly (before a stop or a SIGKILL, which a frozen
    /// process would not act on).
    pub(super) fn thaw(&self, name: &str) {
        if !self.is_paused(name) {
            return;
        }
        if let Err(e) = self.unpause(name) {
            tracing::warn!("unpausing {name}: {e}");
        }
    }

    pub(super) fn is_paused(&self, name: &str) -> bool {
        self.record(name)
            .is_ok_and(|r| r.state == ContainerState::Paused)
    }

    /// Creates a one-off container (`stack run`) from `service` as given.
    pub async fn create_one_off(
        &self,
        service_name: &str,
        service: &Service,
        name: &str,
        use_aliases: bool,
    ) -> Result<(), CreateError> {
        let made = Made::OneOff { use_aliases };
        self.create_from(service_name, service, 0, name, made).await
    }

    /// Creates a single container (`stack container run`): the service is
    /// the container, kept by its monitor like a service's.
    pub async fn create_single(
        &self,
        service_name: &str,
        service: &Service,
        name: &str,
    ) -> Result<(), CreateError> {
        self.create_from(service_name, service, 1, name, Made::Service)
            .await
    }

    /// The stdio the next start of `name` uses instead of its log; dropped
    /// (closing the descriptors) by `forget_attach` if it never starts.
    pub fn attach(&self, name: &str, attach: Attach) {
        self.attach
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), attach);
    }

    pub fn forget_attach(&self, name: &str) {
        self.attach
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// Waits until each container is ready for `up --wait`: healthy when it
    /// has a health check, else running, or exited 0 (a one-shot job).
    /// Fails naming the first service that cannot get there.
    pub async fn wait_ready(
        &self,
        containers: &[(String, String)],
        timeout: Option<Duration>,
    ) -> Result<(), OpsError> {
        let pending: Mutex<BTreeSet<String>> =
            Mutex::new(containers.iter().map(|(s, _)| s.clone()).collect());
        let all = futures::future::try_join_all(containers.iter().map(|(service, name)| {
            let pending = &pending;
            async move {
                self.ready(service, name).await?;
                pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(service);
                Ok::<(), OpsError>(())
            }
        }));
        match timeout {
            None => all.await.map(|_| ()),
            Some(limit) => match tokio::time::timeout(limit, all).await {
                Ok(result) => result.map(|_| ()),
                Err(_) => Err(OpsError::Timeout {
                    secs: limit.as_secs(),
                    waiting: pending
                        .into_inner()
                        .unwrap_or_else(|e| e.into_inner())
                        .into_iter()
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            },
        }
    }

    async fn ready(&self, service: &str, name: &str) -> Result<(), OpsError> {
        let watched = {
            let watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
            watched
                .get(name)
                .map(|w| (w.monitor.snapshot.clone(), w.health.clone()))
        };
        let Some((mut snapshot, mut health)) = watched else {
            // Not watched: it was stopped, or exited before this supervisor.
            let record = self.record(name)?;
            return match record.last_exit.and_then(|e| e.code) {
                Some(0) if !record.is_alive() => Ok(()),
                Some(code) if !record.is_alive() => Err(OpsError::Exited {
                    service: service.to_owned(),
                    code,
                }),
                _ => Err(OpsError::NotStarted(service.to_owned())),
            };
        };
        loop {
            let now = snapshot.borrow_and_update().clone();
            match now.state {
                ContainerState::Exited | ContainerState::Dead => {
                    let code = now.last_exit.map(Exit::code).unwrap_or(-1);
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(OpsError::Exited {
                            service: service.to_owned(),
                            code,
                        })
                    };
                }
                ContainerState::Running => match &mut health {
                    None => return Ok(()),
                    Some(health) => match health.borrow_and_update().status {
                        HealthStatus::Healthy => return Ok(()),
                        HealthStatus::Unhealthy => {
                            return Err(OpsError::Unhealthy(service.to_owned()));
                        }
                        HealthStatus::Starting => {}
                    },
                },
                _ => {}
            }
            let gone = match &mut health {
                Some(health) => tokio::select! {
                    r = snapshot.changed() => r.is_err(),
                    r = health.changed() => r.is_err(),
                },
                None => snapshot.changed().await.is_err(),
            };
            if gone {
                return Err(OpsError::NotStarted(service.to_owned()));
            }
        }
    }

    /// Waits for the container to exit and returns its exit code, Docker's
    /// way (128 + signal when killed).
    /// Gives back the network of a single container that ended for good
    /// (no restart policy, and single containers are never started again):
    /// its veth, namespace, address and published ports go now rather than
    /// with `rm`, as a stopped Docker container holds none.
    pub async fn release_network(&self, name: &str) {
        let Ok(record) = self.record(name) else {
            return;
        };
        if let Err(e) = self.net.forget(&record.id).await {
            tracing::warn!("releasing the network of {name}: {e}");
        }
    }

    pub async fn exit_code(&self, name: &str) -> i32 {
        let snapshot = {
            let watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
            watched.get(name).map(|w| w.monitor.snapshot.clone())
        };
        if let Some(mut snapshot) = snapshot {
            let done = snapshot
                .wait_for(|s| s.state == ContainerState::Exited && s.pid.is_none())
                .await
                .map(|s| s.last_exit);
            if let Ok(Some(exit)) = done {
                return exit.code();
            }
        }
        self.record(name)
            .ok()
            .and_then(|r| r.last_exit)
            .and_then(|e| e.code)
            .unwrap_or(-1)
    }
}

/// Duplicates the standard input, output and error of process `pid` into
/// this process (pidfd_getfd, Linux 5.6), so a one-off container can use a
/// client's terminal or pipes while the supervisor stays its parent.
pub fn stdio_of(pid: i32) -> Result<Attach, OpsError> {
    let err = |source| OpsError::Stdio { pid, source };
    let pidfd = open_pidfd(pid, PidfdFlags::empty()).map_err(err)?;
    let take = |fd| take_fd(&pidfd, fd).map_err(err);
    Ok(Attach::Inherit {
        stdin: take(0)?,
        stdout: take(1)?,
        stderr: take(2)?,
    })
}
