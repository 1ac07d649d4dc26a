//! The plan's operations on the real host, and the waits that gate starts.

use std::sync::Arc;

use stack_image::reference::Reference;
use stack_net::NetworkSpec;
use stack_spec::DependsOnCondition;
use tokio::sync::oneshot;

use super::create::CreateError;
use super::launch::{backoff, restart_on_unhealthy, restart_policy, stop_grace, stop_signal};
use super::{Host, Watched};
use crate::execute::Driver;
use crate::health::{Status as HealthStatus, resolve_check};
use crate::monitoring::{Begin, Command, EventKind, MonitorConfig, spawn_monitor};
use crate::observed::ContainerState;
use crate::plan::Wait;
use crate::restart::{Exit, RestartState};

/// Why an operation failed, in the words `stack up` prints.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Create(#[from] CreateError),
    #[error("network {0} is not in the stack file")]
    UnknownNetwork(String),
    #[error("{0}")]
    Net(#[from] stack_net::NetError),
    #[error("pull {reference}: {message}")]
    Pull {
        reference: String,
        message: String,
        /// The registry said there is no such image.
        not_found: bool,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    ServiceBuild(#[from] stack_build::service::ServiceBuildError),
    #[error(transparent)]
    Build(#[from] stack_build::BuildError),
    #[error("failed to start: {0}")]
    Start(String),
    /// The program could not be executed; `status` is Docker's (126, 127).
    #[error("failed to start: {error}")]
    Execute { error: String, status: u8 },
    #[error("network {network}: ipam: {message}")]
    Ipam { network: String, message: String },
    #[error("stop signal: {0}")]
    StopSignal(#[from] stack_spec::signal::SignalError),
    #[error("dependency {service} has no container")]
    MissingDependency { service: String },
    #[error("dependency {service} has no health check, so it cannot become healthy")]
    NoHealthCheck { service: String },
    #[error("dependency {service} is unhealthy")]
    Unhealthy { service: String },
    #[error("dependency {service} exited with code {code}")]
    DependencyExited { service: String, code: i32 },
    #[error("dependency {service} failed to start")]
    DependencyNotStarted { service: String },
    #[error(transparent)]
    Ops(#[from] Box<super::OpsError>),
}

impl From<super::OpsError> for DriverError {
    fn from(e: super::OpsError) -> Self {
        DriverError::Ops(Box::new(e))
    }
}

impl Host {
    pub(crate) fn emit(&self, container: &str, kind: EventKind) {
        self.emitter(container)(kind);
    }

    /// Emits events of `container` from where no `Host` is at hand.
    pub(super) fn emitter(&self, container: &str) -> impl Fn(EventKind) + Send + Sync + 'static {
        let (events, epoch, container) = (self.events.clone(), self.epoch, container.to_owned());
        move |kind| {
            let at_ms = tokio::time::Instant::now()
                .duration_since(epoch)
                .as_millis() as u64;
            let _ = events.send(crate::monitoring::Event {
                container: container.clone(),
                at_ms,
                time_ns: crate::monitoring::events::unix_ns(),
                kind,
            });
        }
    }

    fn network_key(&self, full_name: &str) -> Result<String, DriverError> {
        let project = self.project();
        project
            .networks
            .keys()
            .cloned()
            .chain(std::iter::once("default".to_owned()))
            .find(|key| crate::reconcile::network_name(&project, key) == full_name)
            .ok_or_else(|| DriverError::UnknownNetwork(full_name.to_owned()))
    }

    /// Starts watching (and so running) a created container; resolves once
    /// its process runs, or with the reason it could not start.
    pub async fn run(self: &Arc<Self>, name: &str) -> Result<(), DriverError> {
        // Whoever starts it (`up`, `start`) undoes an earlier user stop.
        self.set_stopped_by_user(name, false)?;
        let mut events = self.events.subscribe();
        self.watch(name, Begin::Start)?;
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
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return Err(DriverError::Start("the supervisor is stopping".into())),
            }
        }
    }

    /// Puts a container under a monitor (which begins as `begin` says) and,
    /// when it has a health check, a prober.
    pub(super) fn watch(self: &Arc<Self>, name: &str, begin: Begin) -> Result<(), DriverError> {
        let record = self.record(name)?;
        let service = self.service(&record.service)?;
        let image_config = self
            .images
            .resolve(&record.image)
            .and_then(|id| self.images.config(&id))
            .ok();
        let image_stop = image_config
            .as_ref()
            .and_then(|c| c.config.stop_signal.clone());
        let config = MonitorConfig {
            container: name.to_owned(),
            // A one-off container is never restarted by the policy.
            policy: if record.one_off {
                crate::restart::RestartPolicy::No
            } else {
                restart_policy(&service)
            },
            backoff: backoff(&service),
            stop_signal: stop_signal(&service, image_stop.as_deref())?,
            stop_grace: stop_grace(&service),
            restart: RestartState {
                restart_count: record.restart_count,
                stopped_by_user: record.stopped_by_user,
                ..record.restart
            },
            restart_on_unhealthy: restart_on_unhealthy(&service),
        };
        let monitor = spawn_monitor(self.clone(), config, self.events.clone(), self.epoch, begin);
        let check = resolve_check(
            service.healthcheck.as_ref(),
            image_config
                .as_ref()
                .and_then(|c| c.config.healthcheck.as_ref()),
        );
        let (health, prober) = match check.filter(|_| !record.one_off) {
            Some(check) => {
                let (rx, task) = self.spawn_prober(name, check);
                (Some(rx), Some(task))
            }
            None => (None, None),
        };
        self.watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                name.to_owned(),
                Watched {
                    monitor,
                    health,
                    prober,
                },
            );
        Ok(())
    }

    /// Stops and removes one container, tolerating what is already gone.
    pub async fn remove(&self, name: &str) -> Result<(), DriverError> {
        self.destroy(name).await.map_err(Into::into)
    }

    /// Removes what is left of the project's networks (bridges, rules, DNS,
    /// leases), also after a crash.
    pub async fn cleanup_network(&self) -> Result<(), stack_net::NetError> {
        self.net.cleanup_project(&self.project().name).await?;
        // Every network of the project is gone: the project's list says so
        // too, or a supervisor that goes on serving after a failed `down`
        // would take them for existing and attach to nothing.
        let list = self.layout().network_list(&self.project().name);
        match std::fs::remove_file(&list) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!("forgetting the networks in {}: {e}", list.display());
            }
            _ => {}
        }
        Ok(())
    }

    /// Stops a container (its stop signal, SIGKILL after the grace period)
    /// and stops watching it.
    pub async fn stop(&self, name: &str) {
        self.stop_within(name, None).await
    }

    /// [`Host::stop`] with another grace period than the service's.
    pub async fn stop_within(&self, name: &str, grace: Option<std::time::Duration>) {
        // A frozen process never sees its stop signal.
        self.thaw(name);
        let watched = self
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        match watched {
            Some(w) => {
                if let Some(p) = w.prober {
                    p.abort();
                }
                let (done, stopped) = oneshot::channel();
                if w.monitor
                    .commands
                    .send(Command::Stop { done, grace })
                    .await
                    .is_ok()
                {
                    let _ = stopped.await;
                }
            }
            None => {
                // Not ours (left by a crashed supervisor): signal it directly.
                let Ok(record) = self.record(name) else {
                    return;
                };
                if let Some(pid) = record.pid.filter(|_| record.is_alive()) {
                    let pid = nix::unistd::Pid::from_raw(pid);
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
                    while record.is_alive() && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        }
    }

    fn containers_of(&self, service: &str) -> Vec<String> {
        let project = self.project();
        self.store
            .containers(&project.name)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.service == service && !r.one_off)
            .map(|r| r.name)
            .collect()
    }

    async fn wait_one(
        &self,
        service: &str,
        name: &str,
        condition: DependsOnCondition,
    ) -> Result<(), DriverError> {
        let (mut snapshot, health) = {
            let watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
            let Some(w) = watched.get(name) else {
                return Err(DriverError::DependencyNotStarted {
                    service: service.to_owned(),
                });
            };
            (w.monitor.snapshot.clone(), w.health.clone())
        };
        let exited_code = |s: &crate::monitoring::Snapshot| match (s.state, s.last_exit) {
            (ContainerState::Exited, Some(exit)) => Some(exit.code()),
            (ContainerState::Exited, None) => Some(-1),
            _ => None,
        };
        match condition {
            DependsOnCondition::ServiceStarted => Ok(()),
            DependsOnCondition::ServiceCompletedSuccessfully => {
                let s = snapshot
                    .wait_for(|s| exited_code(s).is_some())
                    .await
                    .map_err(|_| DriverError::DependencyNotStarted {
                        service: service.to_owned(),
                    })?
                    .clone();
                match s.last_exit {
                    Some(Exit::Code(0)) => Ok(()),
                    _ => Err(DriverError::DependencyExited {
                        service: service.to_owned(),
                        code: exited_code(&s).unwrap_or(-1),
                    }),
                }
            }
            DependsOnCondition::ServiceHealthy => {
                let Some(mut health) = health else {
                    return Err(DriverError::NoHealthCheck {
                        service: service.to_owned(),
                    });
                };
                loop {
                    let status = health.borrow_and_update().status;
                    match status {
                        HealthStatus::Healthy => return Ok(()),
                        HealthStatus::Unhealthy => {
                            return Err(DriverError::Unhealthy {
                                service: service.to_owned(),
                            });
                        }
                        HealthStatus::Starting => {}
                    }
                    let current = snapshot.borrow_and_update().clone();
                    if let Some(code) = exited_code(&current) {
                        return Err(DriverError::DependencyExited {
                            service: service.to_owned(),
                            code,
                        });
                    }
                    tokio::select! {
                        r = health.changed() => if r.is_err() {
                            return Err(DriverError::DependencyNotStarted { service: service.to_owned() });
                        },
                        r = snapshot.changed() => if r.is_err() {
                            return Err(DriverError::DependencyNotStarted { service: service.to_owned() });
                        },
                    }
                }
            }
        }
    }
}

/// The one ipam pool of a network, refusing what this engine cannot honour
/// (several pools, `ip_range`, `aux_addresses`) rather than ignoring it.
fn ipam_pool<'a>(
    network: &str,
    declared: Option<&'a stack_spec::Network>,
) -> Result<Option<&'a stack_spec::IpamPool>, DriverError> {
    let refuse = |message: &str| DriverError::Ipam {
        network: network.to_owned(),
        message: message.to_owned(),
    };
    let pools = declared
        .and_then(|n| n.ipam.as_ref())
        .map(|i| i.config.as_slice())
        .unwrap_or_default();
    if pools.len() > 1 {
        return Err(refuse("only one pool is supported"));
    }
    let pool = pools.first();
    if pool.is_some_and(|p| p.ip_range.is_some()) {
        return Err(refuse("ip_range is not supported"));
    }
    if pool.is_some_and(|p| !p.aux_addresses.is_empty()) {
        return Err(refuse("aux_addresses is not supported"));
    }
    Ok(pool)
}

/// The driver is the shared host; `Arc` so monitors can hold it too.
pub struct HostDriver(pub Arc<Host>);

impl Driver for HostDriver {
    type Error = DriverError;

    async fn create_network(&self, name: &str) -> Result<(), DriverError> {
        let host = &self.0;
        let key = host.network_key(name)?;
        let project = host.project();
        let declared = project.networks.get(&key);
        let pool = ipam_pool(name, declared)?;
        let gateway = pool.and_then(|p| p.gateway.as_deref());
        let spec = NetworkSpec {
            subnet: pool
                .and_then(|p| p.subnet.as_deref())
                .map(str::parse)
                .transpose()?,
            gateway: gateway
                .map(|g| {
                    g.parse().map_err(|_| DriverError::Ipam {
                        network: name.to_owned(),
                        message: format!("gateway {g} is not an IPv4 address"),
                    })
                })
                .transpose()?,
            internal: declared.is_some_and(|n| n.internal),
            external: None,
        };
        host.net.ensure_network(&project.name, &key, &spec).await?;
        stack_runtime::fault::point("network-after-create");
        let kept = host.network_config_path(&key);
        super::keep_form(&kept, &crate::hash::network_form(declared)).map_err(|source| {
            DriverError::Io {
                what: "record the configuration of network",
                path: kept.display().to_string(),
                source,
            }
        })?;
        let mut known = host.known_networks();
        if !known.contains(&key) {
            known.push(key);
        }
        host.remember_networks(&known)
            .map_err(|source| DriverError::Io {
                what: "record networks of",
                path: project.name.clone(),
                source,
            })
    }

    async fn remove_network(&self, name: &str) -> Result<(), DriverError> {
        let host = &self.0;
        let key = host.network_key(name)?;
        // Forgotten first: a crash in between leaves a network that `up`
        // ensures again (and `down` cleans up by prefix), never one that
        // is believed to exist and does not.
        let known: Vec<String> = host
            .known_networks()
            .into_iter()
            .filter(|k| *k != key)
            .collect();
        host.remember_networks(&known)
            .map_err(|source| DriverError::Io {
                what: "record networks of",
                path: host.project().name.clone(),
                source,
            })?;
        let kept = host.network_config_path(&key);
        match std::fs::remove_file(&kept) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(DriverError::Io {
                    what: "remove the configuration of network",
                    path: kept.display().to_string(),
                    source: e,
                });
            }
            _ => {}
        }
        stack_runtime::fault::point("network-before-remove");
        host.net.remove_network(&host.project().name, &key).await?;
        Ok(())
    }

    async fn create_volume(&self, name: &str) -> Result<(), DriverError> {
        let dir = self.0.volume_dir(name);
        std::fs::create_dir_all(&dir).map_err(|source| DriverError::Io {
            what: "create volume",
            path: dir.display().to_string(),
            source,
        })?;
        let project = self.0.project();
        let declared = project
            .volumes
            .iter()
            .find(|(key, _)| crate::reconcile::volume_name(&project, key) == name);
        if let Some((_, volume)) = declared {
            let kept = self.0.volume_config_path(name);
            super::keep_form(&kept, &crate::hash::volume_form(volume)).map_err(|source| {
                DriverError::Io {
                    what: "record the configuration of volume",
                    path: kept.display().to_string(),
                    source,
                }
            })?;
        }
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), DriverError> {
        let dir = self.0.layout().volume(name);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DriverError::Io {
                what: "remove volume",
                path: dir.display().to_string(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    async fn pull_image(&self, reference: &str) -> Result<(), DriverError> {
        let pull_err = |message: String, not_found: bool| DriverError::Pull {
            reference: reference.to_owned(),
            message,
            not_found,
        };
        let parsed = Reference::parse(reference).map_err(|e| pull_err(e.to_string(), false))?;
        let options = stack_image::pull::PullOptions {
            registries: self.0.config.registries.clone(),
            progress: stack_image::progress::ProgressMode::Quiet,
            ..Default::default()
        };
        // The pull's future is not `Send`; it runs on a blocking thread of
        // its own, driven by the same runtime.
        let images = self.0.images.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            handle
                .block_on(images.pull(&parsed, &options))
                .map(|_| ())
                .map_err(|e| (e.to_string(), e.is_not_found()))
        })
        .await
        .map_err(|e| pull_err(e.to_string(), false))?
        .map_err(|(message, not_found)| pull_err(message, not_found))
    }

    async fn build_image(&self, service: &str, image: &str) -> Result<(), DriverError> {
        let project = self.0.project();
        let svc = self.0.service(service)?;
        let options = stack_build::service::options(
            &project.name,
            service,
            &svc,
            &self.0.build_invocation(),
        )?;
        let root = self.0.config.root.clone();
        let image = image.to_owned();
        // A build runs steps as child processes and reads the context: a
        // blocking thread of its own, so that independent builds overlap.
        tokio::task::spawn_blocking(move || {
            // Taken before building: an edit made meanwhile shows next time.
            let fingerprint = stack_build::service::fingerprint(&options).ok();
            stack_build::build(&options, &mut |_| {})?;
            if let Some(f) = fingerprint {
                stack_build::service::record_built(&root, &image, &f).map_err(|source| {
                    DriverError::Io {
                        what: "recording the build of",
                        path: image.clone(),
                        source,
                    }
                })?;
            }
            Ok::<_, DriverError>(())
        })
        .await
        .map_err(|e| DriverError::Start(e.to_string()))?
    }

    async fn create_container(
        &self,
        service: &str,
        number: u32,
        name: &str,
    ) -> Result<(), DriverError> {
        self.0
            .create(service, number, name)
            .await
            .map_err(Into::into)
    }

    async fn recreate_container(
        &self,
        service: &str,
        number: u32,
        name: &str,
        renew_anon_volumes: bool,
    ) -> Result<(), DriverError> {
        if !renew_anon_volumes {
            self.0.keep_anonymous_volumes(name)?;
        }
        self.0.destroy(name).await?;
        if !renew_anon_volumes {
            self.0.restore_anonymous_volumes(name)?;
        }
        self.0
            .create(service, number, name)
            .await
            .map_err(Into::into)
    }

    async fn start_container(&self, name: &str) -> Result<(), DriverError> {
        let already = self
            .0
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|w| w.monitor.commands.clone());
        match already {
            Some(commands) => {
                self.0.set_stopped_by_user(name, false)?;
                self.0.start_idle(name, &commands).await
            }
            None => self.0.run(name).await,
        }
    }

    async fn restart_container(&self, name: &str) -> Result<(), DriverError> {
        self.0.stop(name).await;
        self.0.run(name).await
    }

    async fn remove_container(&self, name: &str) -> Result<(), DriverError> {
        self.0.destroy(name).await.map_err(Into::into)
    }

    async fn stop_container(
        &self,
        name: &str,
        grace: Option<std::time::Duration>,
    ) -> Result<(), DriverError> {
        Ok(self.0.user_stop(name, grace).await?)
    }

    async fn kill_container(&self, name: &str, signal: i32) -> Result<(), DriverError> {
        self.0.user_kill(name, signal).await?;
        Ok(())
    }

    async fn pause_container(&self, name: &str) -> Result<(), DriverError> {
        self.0.pause(name)?;
        Ok(())
    }

    async fn unpause_container(&self, name: &str) -> Result<(), DriverError> {
        self.0.unpause(name)?;
        Ok(())
    }

    async fn wait_for(&self, wait: &Wait) -> Result<(), DriverError> {
        let names = self.0.containers_of(&wait.service);
        if names.is_empty() {
            return if wait.required {
                Err(DriverError::MissingDependency {
                    service: wait.service.clone(),
                })
            } else {
                Ok(())
            };
        }
        for name in names {
            self.0
                .wait_one(&wait.service, &name, wait.condition)
                .await?;
        }
        Ok(())
    }
}
