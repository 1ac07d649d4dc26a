//! The lifecycle requests on existing containers — start, stop, restart,
//! kill, pause, unpause, remove — each planned by `lifecycle_plan` and run
//! by the executor; and `up --wait`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::control::Channel;
use crate::error::EngineError;
use crate::host::Host;
use crate::lifecycle_plan::{
    plan_freeze, plan_kill, plan_remove, plan_start, plan_stop, restarted_services,
};

use super::{Answer, run_plan};

fn timeout(seconds: Option<u64>) -> Option<Duration> {
    seconds.map(Duration::from_secs)
}

/// Stops the running containers of `services`, dependents first.
pub(super) async fn stop(
    host: &Arc<Host>,
    channel: &mut Channel,
    services: &[String],
    seconds: Option<u64>,
) -> Answer {
    let plan = plan_stop(&host.project(), &host.observe()?, services, seconds)?;
    run_plan(host, channel, &plan).await?;
    Ok(String::new())
}

/// Starts the stopped containers of `services`, dependencies first, each
/// once the conditions of its `depends_on` hold.
pub(super) async fn start(host: &Arc<Host>, channel: &mut Channel, services: &[String]) -> Answer {
    let plan = plan_start(&host.project(), &host.observe()?, services)?;
    run_plan(host, channel, &plan).await?;
    Ok(String::new())
}

/// Stops (dependents first) and starts again (dependencies first) the
/// containers of `services` and, unless `no_deps`, of the services that
/// restart with them; they keep their ids, addresses and volumes.
pub(super) async fn restart(
    host: &Arc<Host>,
    channel: &mut Channel,
    services: &[String],
    seconds: Option<u64>,
    no_deps: bool,
) -> Answer {
    let project = host.project();
    let services = restarted_services(&project, services, no_deps)?;
    // Two plans with the crash point between them, where a restart is
    // most often cut short: stopped, not yet started.
    let plan = plan_stop(&project, &host.observe()?, &services, seconds)?;
    run_plan(host, channel, &plan).await?;
    stack_runtime::fault::point("restart-after-stop");
    let plan = plan_start(&project, &host.observe()?, &services)?;
    run_plan(host, channel, &plan).await?;
    Ok(String::new())
}

pub(super) async fn kill(
    host: &Arc<Host>,
    channel: &mut Channel,
    services: &[String],
    signal: i32,
    remove_orphans: bool,
) -> Answer {
    let plan = plan_kill(
        &host.project(),
        &host.observe()?,
        services,
        signal,
        remove_orphans,
    )?;
    // As compose: nothing running is not an error.
    if plan.is_empty() {
        return Ok("no container to kill".into());
    }
    run_plan(host, channel, &plan).await?;
    Ok(String::new())
}

/// `pause` (`freeze`) or `unpause`.
pub(super) async fn freeze(
    host: &Arc<Host>,
    channel: &mut Channel,
    services: &[String],
    freeze: bool,
) -> Answer {
    let plan = plan_freeze(&host.project(), &host.observe()?, services, freeze)?;
    run_plan(host, channel, &plan).await?;
    Ok(String::new())
}

/// Removes the stopped containers of `services` (with `stop`, stops the
/// running ones first). A container's anonymous volumes live in its
/// directory and always go with it; `volumes` is accepted for compose's
/// `rm -v`.
pub(super) async fn remove(
    host: &Arc<Host>,
    channel: &mut Channel,
    services: &[String],
    stop_first: bool,
    _volumes: bool,
) -> Answer {
    let plan = plan_remove(&host.project(), &host.observe()?, services, stop_first)?;
    if !plan
        .operations
        .iter()
        .any(|op| op.action == crate::plan::Action::Remove)
    {
        run_plan(host, channel, &plan).await?;
        return Ok("no stopped containers".into());
    }
    run_plan(host, channel, &plan).await?;
    Ok(String::new())
}

/// `up --wait`: every container of `services` (all when empty) running,
/// healthy or done.
pub(super) async fn wait_ready(
    host: &Arc<Host>,
    services: Option<&BTreeSet<String>>,
    seconds: Option<u64>,
) -> Result<(), EngineError> {
    let project = host.project();
    let records = host.records().containers(&project.name)?;
    let containers: Vec<(String, String)> = records
        .into_iter()
        .filter(|r| !r.one_off && services.is_none_or(|s| s.contains(&r.service)))
        .filter(|r| project.services.contains_key(&r.service))
        .map(|r| (r.service, r.name))
        .collect();
    Ok(host.wait_ready(&containers, timeout(seconds)).await?)
}

/// The stack files of the last `up`, for `stack ls`.
pub(super) fn remember_config_files(
    host: &Host,
    project: &str,
    files: &[std::path::PathBuf],
) -> Result<(), EngineError> {
    if files.is_empty() {
        return Ok(());
    }
    let dir = host.records().project_dir(project);
    let text: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::from(e).context(dir.display()))?;
    stack_fs::write(&dir.join("config-files"), text.join("\n").as_bytes())?;
    Ok(())
}
