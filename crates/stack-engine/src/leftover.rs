//! `down -v` for a project that is already down: its containers and
//! networks are gone with its records, but the file still names volumes
//! that exist, and Compose removes those. Done in the calling process (no
//! supervisor to start for it), under the project's lock, through the same
//! plan and executor as any `down`.

use std::sync::Mutex;
use std::time::Duration;

use stack_spec::Project;

use crate::execute::{Phase, execute};
use crate::host::{Host, HostConfig, HostDriver};
use crate::lock::ProjectLock;
use crate::reconcile::plan_down;
use crate::supervisor::PARALLELISM;

/// Removes the named volumes of `project` that exist; returns one line per
/// removed volume, or the first failure.
pub async fn remove_volumes(config: HostConfig, project: Project) -> Result<Vec<String>, String> {
    let _lock = ProjectLock::acquire(
        &config.run_dir,
        &project.name,
        "stack down -v",
        Duration::from_secs(10),
    )
    .map_err(|e| e.to_string())?;
    let host = Host::new(config, project).map_err(|e| e.to_string())?;
    let mut observed = host.observe().map_err(|e| e.to_string())?;
    // Without records nothing else is the project's to remove here.
    observed.containers.clear();
    observed.networks.clear();
    let plan = plan_down(Some(&host.project()), &observed, true);
    let said = Mutex::new(Vec::new());
    let report = execute(
        &plan,
        &HostDriver(host.clone()),
        PARALLELISM,
        |op, phase| {
            if phase == Phase::Began {
                return;
            }
            said.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("{}: removed", op.resource));
        },
    )
    .await;
    match report.failure {
        Some(failure) => Err(failure.to_string()),
        None => Ok(said.into_inner().unwrap_or_else(|e| e.into_inner())),
    }
}
