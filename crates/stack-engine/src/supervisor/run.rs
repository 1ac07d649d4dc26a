//! `stack run`: a one-off container of a service, with its command, on the
//! project's networks, after its dependencies (unless `--no-deps`), never
//! restarted by policy. Attached, it uses the caller's stdio (or a terminal
//! whose master goes to the caller) while this supervisor stays its parent,
//! and the caller learns its exit code.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::Notify;

use stack_spec::{Project, Service};

use crate::control::{Channel, Reply, RunOptions, RunStdio};
use crate::error::{EngineError, ErrorKind};
use crate::execute::Driver;
use crate::host::{Attach, Host, HostDriver, stdio_of};
use crate::plan::Wait;
use crate::reconcile::{ReconcileOptions, plan_one_off, reconcile};
use crate::service_graph::with_dependencies;

/// A started attached run: what is left is to wait for its end.
pub(super) struct Attached {
    host: Arc<Host>,
    name: String,
    remove: bool,
    /// A single container (`stack container run`): the monitor keeps it
    /// (its restart policy applies after the caller has its exit code).
    container: bool,
    emptied: Arc<Notify>,
}

pub(super) enum Started {
    Detached(String),
    Attached(Attached),
}

/// The service as the one-off container runs it.
fn one_off(service: &Service, options: &RunOptions) -> Service {
    let mut s = service.clone();
    if let Some(command) = &options.command {
        s.command = Some(command.clone());
    }
    if let Some(entrypoint) = &options.entrypoint {
        s.entrypoint = Some(entrypoint.clone());
    }
    for pair in &options.env {
        match pair.split_once('=') {
            Some((k, v)) => s.environment.insert(k.to_owned(), Some(v.to_owned())),
            None => s.environment.insert(pair.clone(), None),
        };
    }
    if options.user.is_some() {
        s.user = options.user.clone();
    }
    if options.workdir.is_some() {
        s.working_dir = options.workdir.clone();
    }
    // Like compose: no published ports (they would clash with the
    // service's own container) unless `--service-ports` or `-p`; its own
    // name.
    if !options.publish.is_empty() {
        s.ports = options.publish.clone();
    } else if !options.service_ports {
        s.ports.clear();
    }
    s.volumes.extend(options.volumes.iter().cloned());
    s.labels.extend(options.labels.clone());
    // As compose: a capability added is no longer dropped, and the reverse.
    let same = |a: &str, b: &str| cap_key(a) == cap_key(b);
    if !options.cap_add.is_empty() {
        s.cap_drop
            .retain(|c| !options.cap_add.iter().any(|a| same(a, c)));
        s.cap_add.extend(options.cap_add.iter().cloned());
    }
    if !options.cap_drop.is_empty() {
        s.cap_add
            .retain(|c| !options.cap_drop.iter().any(|d| same(d, c)));
        s.cap_drop.extend(options.cap_drop.iter().cloned());
    }
    s.container_name = None;
    s.restart = None;
    s
}

/// A capability's name without case or `CAP_` prefix (`net_admin` is
/// `CAP_NET_ADMIN`).
fn cap_key(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    upper.strip_prefix("CAP_").unwrap_or(&upper).to_owned()
}

/// Creates and starts the one-off container. `emptied` is told when a
/// container it removes once ended was a single container (whose project
/// may now be empty).
pub(super) async fn start(
    host: &Arc<Host>,
    channel: &mut Channel,
    project: Project,
    options: RunOptions,
    emptied: &Arc<Notify>,
) -> Result<Started, EngineError> {
    if options.container {
        // Checked before the service joins the project, where it would
        // take the place of the running container's.
        if let Some(name) = &options.name
            && host
                .records()
                .load(&project.name, name)
                .map_err(EngineError::from)?
                .is_some()
        {
            return Err(EngineError::new(
                ErrorKind::Conflict,
                format!("the container name {name} is already in use"),
            ));
        }
        let current = host.project();
        let merged = if current.name == project.name {
            crate::single::merge(&current, project)
        } else {
            project
        };
        super::set_project(host, merged)?;
    } else {
        super::set_project(host, project)?;
    }
    let project = host.project();
    let service = project
        .services
        .get(&options.service)
        .ok_or_else(|| EngineError::no_such_service(&options.service))?
        .clone();
    let driver = HostDriver(host.clone());

    let with_deps = !options.no_deps && !service.depends_on.is_empty();
    if !options.container && (with_deps || options.remove_orphans) {
        // The dependencies as `up` makes them (none with `--no-deps`), and
        // with `--remove-orphans` the containers of services no longer in
        // the file taken away.
        let deps: Vec<String> = if with_deps {
            service.depends_on.keys().cloned().collect()
        } else {
            Vec::new()
        };
        let selection: BTreeSet<String> = with_dependencies(&project, &deps);
        let observed = host.observe().map_err(EngineError::from)?;
        let plan = reconcile(
            &project,
            &observed,
            &ReconcileOptions {
                services: Some(selection),
                remove_orphans: options.remove_orphans,
                ignore_orphans: options.ignore_orphans,
                ..ReconcileOptions::default()
            },
        )?;
        for note in &plan.notes {
            let line = format!("warning: {note}");
            let _ = channel.send(&Reply::Progress { line }).await;
        }
        super::run_plan(host, channel, &plan).await?;
    }
    if with_deps && !options.container {
        for (dep, d) in &service.depends_on {
            let wait = Wait {
                service: dep.clone(),
                condition: d.condition,
                required: d.required,
            };
            driver.wait_for(&wait).await.map_err(EngineError::from)?;
        }
    }

    // Its own networks, volumes and image (as its pull_policy says), which
    // the dependencies' plan need not have made.
    let own = ReconcileOptions {
        build: options.build,
        ..ReconcileOptions::default()
    };
    let mut observed = host.observe().map_err(EngineError::from)?;
    host.observe_builds(&mut observed, &own);
    let plan = plan_one_off(&project, &observed, &options.service, &own);
    super::run_plan(host, channel, &plan).await?;

    let id = crate::store::new_container_id().map_err(EngineError::from)?;
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}-run-{}", project.name, options.service, &id[..12]));
    if host
        .records()
        .load(&project.name, &name)
        .map_err(EngineError::from)?
        .is_some()
    {
        return Err(EngineError::new(
            ErrorKind::Conflict,
            format!("container {name} already exists"),
        ));
    }
    let created = if options.container {
        host.create_single(&options.service, &service, &name).await
    } else {
        let config = one_off(&service, &options);
        host.create_one_off(&options.service, &config, &name, options.use_aliases)
            .await
    };
    if let Err(e) = created {
        let _ = host.remove(&name).await;
        return Err(e.into());
    }
    stack_runtime::fault::point("run-after-create");
    let stdio = if options.detach {
        RunStdio::Log
    } else {
        options.stdio.clone()
    };
    let attach = match stdio {
        RunStdio::Log => None,
        RunStdio::Inherit => {
            let pid = channel.peer_pid().ok_or_else(|| {
                EngineError::new(
                    ErrorKind::Protocol,
                    "cannot tell which process asked for the run",
                )
            })?;
            match stdio_of(pid) {
                Ok(a) => Some(a),
                Err(e) => {
                    let _ = host.remove(&name).await;
                    return Err(e.into());
                }
            }
        }
        RunStdio::Terminal {
            console_socket,
            rows,
            cols,
        } => Some(Attach::Terminal {
            console_socket,
            rows,
            cols,
        }),
    };
    let attached = attach.is_some();
    if let Some(attach) = attach {
        host.attach(&name, attach);
    }
    if let Err(e) = host.run(&name).await {
        host.forget_attach(&name);
        let _ = host.remove(&name).await;
        return Err(e.into());
    }
    if !attached {
        if options.remove {
            let host = host.clone();
            let name = name.clone();
            let emptied = emptied.clone();
            tokio::spawn(async move {
                host.exit_code(&name).await;
                if let Err(e) = host.remove(&name).await {
                    tracing::warn!("removing {name}: {e}");
                }
                emptied.notify_one();
            });
        } else if options.container && !restarts(&service) {
            let host = host.clone();
            let name = name.clone();
            tokio::spawn(async move {
                host.exit_code(&name).await;
                host.release_network(&name).await;
            });
        }
        return Ok(Started::Detached(name));
    }
    Ok(Started::Attached(Attached {
        host: host.clone(),
        name,
        remove: options.remove,
        container: options.container,
        emptied: emptied.clone(),
    }))
}

/// Whether the service's container may run again after it ends.
fn restarts(service: &Service) -> bool {
    crate::host::restart_policy(service) != crate::restart::RestartPolicy::No
}

impl Attached {
    /// Waits for the container's end and answers the caller with its exit
    /// code; a caller that goes away (Ctrl-C) stops the container.
    pub(super) async fn finish(self, mut channel: Channel) {
        let code = tokio::select! {
            code = self.host.exit_code(&self.name) => Some(code),
            _ = channel.recv::<serde_json::Value>() => None,
        };
        let code = match code {
            Some(code) => code,
            None => {
                let _ = self.host.user_stop(&self.name, None).await;
                self.host.exit_code(&self.name).await
            }
        };
        // The monitor is done with a one-off, which nothing restarts; a
        // single container stays with its monitor and restart policy.
        if !self.container || self.remove {
            self.host.stop(&self.name).await;
        }
        let _ = channel.send(&Reply::Exit { code }).await;
        if self.container && !self.remove {
            // In the foreground it has no restart policy: it ended for good.
            self.host.release_network(&self.name).await;
        }
        let outcome = if self.remove {
            match self.host.remove(&self.name).await {
                Ok(()) => Ok(String::new()),
                Err(e) => Err(EngineError::from(e).context(format_args!("remove {}", self.name))),
            }
        } else {
            Ok(String::new())
        };
        if self.remove {
            self.emptied.notify_one();
        }
        let _ = channel.answer(outcome).await;
    }
}
