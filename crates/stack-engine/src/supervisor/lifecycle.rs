//! The lifecycle requests on existing containers — start, stop, restart,
//! kill, pause, unpause, remove — each planned by `lifecycle_plan` and run
//! by the executor; and `up --wait`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use stack_spec::Project;

use crate::control::{Channel, UpOptions};
use crate::error::EngineError;
use crate::host::Host;
use crate::lifecycle_plan::{plan_freeze, plan_kill, plan_remove, plan_start, plan_stop};
use crate::plan::Plan;

use super::Answer;

/// Refuses service names the file does not have, as compose does.
fn check_services(project: &Project, services: &[String]) -> Result<(), EngineError> {
    match services
        .iter()
        .find(|s| !project.services.contains_key(s.as_str()))
    {
        Some(s) => Err(EngineError::no_such_service(s)),
        None => Ok(()),
    }
}

fn timeout(seconds: Option<u64>) -> Option<Duration> {
    seconds.map(Duration::from_secs)
}

/// Runs a lifecycle plan, one line per container as it is done
/// (`container web-1: stopped`).
async fn run(host: &Arc<Host>, channel: &mut Channel, plan: &Plan) -> Result<(), EngineError> {
    super::run_plan_styled(host, channel, plan, super::Style::Brief).await
}

/// Stops the running containers of `services`, dependents first.
pub(super) async fn stop(
    host: &Arc<Host>,
    channel: &mut Channel,
    services: &[String],
    seconds: Option<u64>,
) -> Answer {
    let plan = plan_stop(&host.project(), &host.observe()?, services, seconds)?;
    run(host, channel, &plan).await?;
    Ok(String::new())
}

/// Starts the stopped containers of `services`, dependencies first, each
/// once the conditions of its `depends_on` hold.
pub(super) async fn start(host: &Arc<Host>, channel: &mut Channel, services: &[String]) -> Answer {
    let plan = plan_start(&host.project(), &host.observe()?, services)?;
    run(host, channel, &plan).await?;
    Ok(String::new())
}

/// Stops (dependents first) and starts again (dependencies first); the
/// containers keep their ids, addresses and volumes.
pub(super) async fn restart(
    host: &Arc<Host>,
    channel: &mut Channel,
    services: &[String],
    seconds: Option<u64>,
) -> Answer {
    // Two plans with the crash point between them, where a restart is
    // most often cut short: stopped, not yet started.
    let plan = plan_stop(&host.project(), &host.observe()?, services, seconds)?;
    run(host, channel, &plan).await?;
    stack_runtime::fault::point("restart-after-stop");
    let plan = plan_start(&host.project(), &host.observe()?, services)?;
    run(host, channel, &plan).await?;
    Ok(String::new())
}

pub(super) async fn kill(
    host: &Arc<Host>,
    channel: &mut Channel,
    services: &[String],
    signal: i32,
) -> Answer {
    let plan = plan_kill(&host.project(), &host.observe()?, services, signal)?;
    // As compose: nothing running is not an error.
    if plan.is_empty() {
        return Ok("no container to kill".into());
    }
    run(host, channel, &plan).await?;
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
    run(host, channel, &plan).await?;
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
        run(host, channel, &plan).await?;
        return Ok("no stopped containers".into());
    }
    run(host, channel, &plan).await?;
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

/// Removes the one-off containers of the project (before `down`).
pub(super) async fn remove_one_offs(host: &Arc<Host>) -> Vec<EngineError> {
    let project = host.project();
    let mut errors = Vec::new();
    for r in host.records().containers(&project.name).unwrap_or_default() {
        if r.one_off
            && let Err(e) = host.remove(&r.name).await
        {
            errors.push(EngineError::from(e).context(format_args!("remove container {}", r.name)));
        }
    }
    errors
}

/// `up SERVICE...`: those services and, unless `--no-deps`, what they
/// depend on; `None` for every service.
pub(super) fn selection(
    project: &Project,
    options: &UpOptions,
) -> Result<Option<BTreeSet<String>>, EngineError> {
    if options.services.is_empty() {
        return Ok(None);
    }
    check_services(project, &options.services)?;
    Ok(Some(if options.no_deps {
        options.services.iter().cloned().collect()
    } else {
        crate::graph::with_dependencies(project, &options.services)
    }))
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
