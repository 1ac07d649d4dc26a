//! What a command reads of the engine without asking a supervisor: the
//! state store's records, a container's health and log files, its cgroup
//! counters, whether a project's lock is held, and the plan a request
//! would run (`--dry-run`). Read-only on purpose: every change goes to a
//! supervisor as a request and runs as a plan there; the one exception,
//! [`kill_now`], is the second Ctrl-C of `up` and `container run`, when
//! the supervisor is busy with the stop it was asked for.

use std::path::{Path, PathBuf};

use stack_spec::Project;

use crate::control::{Request, UpOptions};
use crate::error::EngineError;
use crate::health::{HEALTH_FILE, Health};
use crate::host::{Host, HostConfig};
use crate::plan::Plan;
use crate::reconcile::reconcile;
use crate::store::{ContainerRecord, Store};

/// The state store, read-only: projects, their containers' records and
/// where each keeps its bundle, log and health.
#[derive(Debug, Clone)]
pub struct Records {
    store: Store,
}

impl Records {
    /// The records under `root` (`--root`).
    pub fn new(root: &Path) -> Self {
        Records {
            store: Store::new(root),
        }
    }

    /// Every project that has state, by name.
    pub fn projects(&self) -> Result<Vec<String>, EngineError> {
        Ok(self.store.projects()?)
    }

    /// The containers of `project` (none when it has no state).
    pub fn containers(&self, project: &str) -> Result<Vec<ContainerRecord>, EngineError> {
        Ok(self.store.containers(project)?)
    }

    /// One container's record, `None` when there is no such container.
    pub fn load(&self, project: &str, name: &str) -> Result<Option<ContainerRecord>, EngineError> {
        Ok(self.store.load(project, name)?)
    }

    /// The project's directory (its `project.json`, `config-files`).
    pub fn project_dir(&self, project: &str) -> PathBuf {
        self.store.project_dir(project)
    }

    /// The container's directory: its OCI bundle, log and health.
    pub fn container_dir(&self, project: &str, name: &str) -> PathBuf {
        self.store.container_dir(project, name)
    }

    /// The container's log file (see [`crate::api::read_log`]).
    pub fn log_path(&self, project: &str, name: &str) -> PathBuf {
        self.container_dir(project, name).join("container.log")
    }

    /// The project as its supervisor last saved it, `None` when it has
    /// none (or it cannot be read).
    pub fn saved_project(&self, project: &str) -> Option<Project> {
        let bytes = std::fs::read(self.project_dir(project).join("project.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The health its supervisor last wrote, `None` without a health check
    /// (or before the first probe).
    pub fn health(&self, project: &str, name: &str) -> Option<Health> {
        let bytes = std::fs::read(self.container_dir(project, name).join(HEALTH_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Sends `signal` to the container's process now, when it still runs;
/// returns whether it did. The pidfd is opened before the record is
/// checked, so a pid reused since the record was written is never
/// signalled.
pub fn kill_now(record: &ContainerRecord, signal: i32) -> std::io::Result<bool> {
    let Some(pid) = record.pid else {
        return Ok(false);
    };
    let Ok(fd) = crate::pidfd::PidFd::open(pid) else {
        return Ok(false);
    };
    if !record.is_alive() {
        return Ok(false);
    }
    fd.send_signal(signal)?;
    Ok(true)
}

/// The plan `up` would run for `project` with `options`, from what is
/// observed now; changes nothing (`up --dry-run`).
pub fn plan_up(
    config: HostConfig,
    project: Project,
    options: &UpOptions,
) -> Result<Plan, EngineError> {
    let host = Host::new(config, project)?;
    let mut observed = host.observe()?;
    let reconcile_options = options.reconcile_options(&host.project())?;
    host.observe_builds(&mut observed, &reconcile_options);
    Ok(reconcile(&host.project(), &observed, &reconcile_options)?)
}

/// The plan a lifecycle request (`start`, `stop`, `kill`, `rm` ...) would
/// run for `project`, empty when it has nothing to do; changes nothing. A
/// removal that takes the last single container takes its networks too
/// (`single::plan_retire`), after the containers.
pub fn plan_lifecycle(
    config: HostConfig,
    project: Project,
    request: &Request,
) -> Result<Plan, EngineError> {
    let host = Host::new(config, project)?;
    let observed = host.observe()?;
    let project = host.project();
    let mut plan =
        crate::lifecycle_plan::plan_request(&project, &observed, request)?.unwrap_or_default();
    if let Request::Remove { services, .. } = request {
        let left = crate::single::without_services(&observed, services);
        let removals: Vec<usize> = (0..plan.operations.len()).collect();
        for op in crate::single::plan_retire(&project.name, &left).operations {
            let id = plan.push(op.action, op.resource, op.cause);
            plan.operations[id].after = removals.clone();
        }
    }
    Ok(plan)
}
