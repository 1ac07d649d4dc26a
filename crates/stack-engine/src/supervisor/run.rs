//! `stack run`: a one-off container of a service, with its command, on the
//! project's networks, after its dependencies (unless `--no-deps`), never
//! restarted by policy. Attached, it uses the caller's stdio (or a terminal
//! whose master goes to the caller) while this supervisor stays its parent,
//! and the caller learns its exit code.

use std::collections::BTreeSet;
use std::sync::Arc;

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
    // service's own container), its own name.
    s.ports.clear();
    s.container_name = None;
    s.restart = None;
    s
}

/// Creates and starts the one-off container.
pub(super) async fn start(
    host: &Arc<Host>,
    channel: &mut Channel,
    project: Project,
    options: RunOptions,
) -> Result<Started, EngineError> {
    super::set_project(host, project)?;
    let project = host.project();
    let service = project
        .services
        .get(&options.service)
        .ok_or_else(|| EngineError::no_such_service(&options.service))?
        .clone();
    let driver = HostDriver(host.clone());

    if !options.no_deps && !service.depends_on.is_empty() {
        let deps: Vec<String> = service.depends_on.keys().cloned().collect();
        let selection: BTreeSet<String> = with_dependencies(&project, &deps);
        let observed = host.observe().map_err(EngineError::from)?;
        let plan = reconcile(
            &project,
            &observed,
            &ReconcileOptions {
                services: Some(selection),
                ..ReconcileOptions::default()
            },
        )?;
        super::run_plan(host, channel, &plan).await?;
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
    let config = one_off(&service, &options);
    if let Err(e) = host.create_one_off(&options.service, &config, &name).await {
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
            tokio::spawn(async move {
                host.exit_code(&name).await;
                if let Err(e) = host.remove(&name).await {
                    tracing::warn!("removing {name}: {e}");
                }
            });
        }
        return Ok(Started::Detached(name));
    }
    Ok(Started::Attached(Attached {
        host: host.clone(),
        name,
        remove: options.remove,
    }))
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
        // The monitor is done with it; nothing restarts a one-off.
        self.host.stop(&self.name).await;
        let _ = channel.send(&Reply::Exit { code }).await;
        let outcome = if self.remove {
            match self.host.remove(&self.name).await {
                Ok(()) => Ok(String::new()),
                Err(e) => Err(EngineError::from(e).context(format_args!("remove {}", self.name))),
            }
        } else {
            Ok(String::new())
        };
        let _ = channel.answer(outcome).await;
    }
}
