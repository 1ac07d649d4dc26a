//! The lifecycle requests on existing containers: start (dependencies
//! first, waiting for their conditions), stop (dependents first), restart,
//! kill, pause, unpause, remove; and `up --wait`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use stack_spec::Project;

use crate::control::{Channel, Reply, UpOptions};
use crate::error::{EngineError, ErrorKind};
use crate::execute::Driver;
use crate::graph::levels;
use crate::host::{Host, HostDriver};
use crate::plan::Wait;
use crate::store::ContainerRecord;

use super::Answer;

async fn say(channel: &mut Channel, lines: impl IntoIterator<Item = String>) {
    for line in lines {
        let _ = channel.send(&Reply::Progress { line }).await;
    }
}

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

/// The project's containers of `services` (all when empty), grouped by
/// start level; containers of services no longer in the file come last.
fn by_level(
    host: &Host,
    services: &[String],
    one_offs: bool,
) -> Result<Vec<Vec<ContainerRecord>>, EngineError> {
    let project = host.project();
    check_services(&project, services)?;
    let records = host.records().containers(&project.name)?;
    let wanted = |r: &ContainerRecord| {
        (services.is_empty() || services.contains(&r.service)) && (one_offs || !r.one_off)
    };
    let mut out: Vec<Vec<ContainerRecord>> = Vec::new();
    let mut placed = BTreeSet::new();
    for level in levels(&project) {
        let group: Vec<ContainerRecord> = records
            .iter()
            .filter(|r| level.contains(&r.service) && wanted(r))
            .cloned()
            .collect();
        placed.extend(level);
        out.push(group);
    }
    out.push(
        records
            .into_iter()
            .filter(|r| !placed.contains(&r.service) && wanted(r))
            .collect(),
    );
    out.retain(|g| !g.is_empty());
    Ok(out)
}

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
    let grace = timeout(seconds);
    let mut errors = Vec::new();
    for group in by_level(host, services, true)?.into_iter().rev() {
        let running: Vec<ContainerRecord> = group
            .into_iter()
            .filter(|r| host.state_of(r).is_up())
            .collect();
        let results = join_all(running.iter().map(|r| host.user_stop(&r.name, grace))).await;
        let mut lines = Vec::new();
        for (r, result) in running.iter().zip(results) {
            match result {
                Ok(()) => lines.push(format!("container {}: stopped", r.name)),
                Err(e) => {
                    errors.push(EngineError::from(e).context(format_args!("stop {}", r.name)))
                }
            }
        }
        say(channel, lines).await;
    }
    finish(errors)
}

fn finish(errors: Vec<EngineError>) -> Answer {
    match EngineError::several(errors) {
        None => Ok(String::new()),
        Some(failed) => Err(failed),
    }
}

/// Starts the stopped containers of `services`, a level at a time, each
/// once the conditions of its `depends_on` hold.
pub(super) async fn start(host: &Arc<Host>, channel: &mut Channel, services: &[String]) -> Answer {
    let groups = by_level(host, services, false)?;
    if groups.is_empty() {
        return Err(EngineError::new(
            ErrorKind::NotFound,
            "no containers to start",
        ));
    }
    let project = host.project();
    let driver = HostDriver(host.clone());
    for group in groups {
        let stopped: Vec<ContainerRecord> = group
            .into_iter()
            .filter(|r| !host.state_of(r).is_up())
            .collect();
        let results = join_all(stopped.iter().map(|r| {
            let driver = &driver;
            let project = &project;
            async move {
                if let Some(service) = project.services.get(&r.service) {
                    for (dep, d) in &service.depends_on {
                        let wait = Wait {
                            service: dep.clone(),
                            condition: d.condition,
                            required: d.required,
                        };
                        driver.wait_for(&wait).await.map_err(EngineError::from)?;
                    }
                }
                host.user_start(&r.name).await.map_err(EngineError::from)
            }
        }))
        .await;
        let mut lines = Vec::new();
        let mut errors = Vec::new();
        for (r, result) in stopped.iter().zip(results) {
            match result {
                Ok(()) => lines.push(format!("container {}: started", r.name)),
                Err(e) => errors.push(e.context(format_args!("start {}", r.name))),
            }
        }
        say(channel, lines).await;
        // Later levels depend on this one.
        if !errors.is_empty() {
            return finish(errors);
        }
    }
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
    stop(host, channel, services, seconds).await?;
    stack_runtime::fault::point("restart-after-stop");
    start(host, channel, services).await
}

pub(super) async fn kill(
    host: &Arc<Host>,
    channel: &mut Channel,
    services: &[String],
    signal: i32,
) -> Answer {
    let records: Vec<ContainerRecord> = by_level(host, services, true)?
        .into_iter()
        .flatten()
        .collect();
    let results = join_all(records.iter().map(|r| host.user_kill(&r.name, signal))).await;
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (r, result) in records.iter().zip(results) {
        match result {
            Ok(true) => lines.push(format!("container {}: killed", r.name)),
            Ok(false) => {}
            Err(e) => errors.push(EngineError::from(e).context(format_args!("kill {}", r.name))),
        }
    }
    let none = lines.is_empty() && errors.is_empty();
    say(channel, lines).await;
    // As compose: nothing running is not an error.
    if none {
        return Ok("no container to kill".into());
    }
    finish(errors)
}

/// `pause` (`freeze`) or `unpause`.
pub(super) async fn freeze(
    host: &Arc<Host>,
    channel: &mut Channel,
    services: &[String],
    freeze: bool,
) -> Answer {
    let (verb, done) = if freeze {
        ("pause", "paused")
    } else {
        ("unpause", "unpaused")
    };
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for r in by_level(host, services, true)?.into_iter().flatten() {
        let result = if freeze {
            host.pause(&r.name)
        } else {
            host.unpause(&r.name)
        };
        match result {
            Ok(true) => lines.push(format!("container {}: {done}", r.name)),
            Ok(false) => {}
            Err(e) => errors.push(EngineError::from(e).context(format_args!("{verb} {}", r.name))),
        }
    }
    say(channel, lines).await;
    finish(errors)
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
    if stop_first {
        stop(host, channel, services, None).await?;
    }
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for r in by_level(host, services, true)?.into_iter().rev().flatten() {
        if host.state_of(&r).is_up() {
            continue;
        }
        match host.remove(&r.name).await {
            Ok(()) => lines.push(format!("container {}: removed", r.name)),
            Err(e) => errors.push(EngineError::from(e).context(format_args!("remove {}", r.name))),
        }
    }
    let none = lines.is_empty() && errors.is_empty();
    say(channel, lines).await;
    if none {
        return Ok("no stopped containers".into());
    }
    finish(errors)
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
