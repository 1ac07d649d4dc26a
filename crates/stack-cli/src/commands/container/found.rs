//! Single containers as the engine keeps them: every one is a service of
//! the root's single-container project (`stack_engine::single`). Here a
//! name or id prefix becomes its record, its service and its bundle, and a
//! request reaches the project's supervisor.

use std::path::PathBuf;

use anyhow::{Context, bail};
use stack_engine::api::ContainerState;
use stack_engine::api::{Channel, ControlError, Reply, Request};
use stack_engine::api::{ContainerRecord, Records};
use stack_spec::Service;

use crate::cli::GlobalArgs;
use crate::client;

/// The root's single-container project.
pub fn project(global: &GlobalArgs) -> String {
    stack_engine::single::project_name(&global.root)
}

/// Every single container of the root, oldest first.
pub fn list(global: &GlobalArgs) -> anyhow::Result<Vec<ContainerRecord>> {
    let mut all = Records::new(&global.root).containers(&project(global))?;
    all.sort_by_key(|r| r.created_ms);
    Ok(all)
}

/// The container named `key` (a leading `/` allowed, as Docker's names
/// have), or whose id begins with `key`.
pub fn find(global: &GlobalArgs, key: &str) -> anyhow::Result<ContainerRecord> {
    let key = key.strip_prefix('/').unwrap_or(key);
    let all = list(global)?;
    if let Some(r) = all.iter().find(|r| r.name == key) {
        return Ok(r.clone());
    }
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut hits = all.into_iter().filter(|r| r.id.starts_with(key));
        match (hits.next(), hits.next()) {
            (Some(r), None) => return Ok(r),
            (Some(_), Some(_)) => {
                bail!("multiple containers match the id prefix {key:?}: give more digits")
            }
            _ => {}
        }
    }
    bail!("no such container: {key}")
}

/// The container's directory in the engine's store (bundle, log, health).
pub fn dir(global: &GlobalArgs, record: &ContainerRecord) -> PathBuf {
    Records::new(&global.root).container_dir(&record.project, &record.name)
}

/// The service the container was made from, as its supervisor keeps it.
pub fn service(global: &GlobalArgs, record: &ContainerRecord) -> Service {
    Records::new(&global.root)
        .saved_project(&record.project)
        .and_then(|mut p| p.services.shift_remove(&record.service))
        .unwrap_or_default()
}

/// The process of its OCI bundle (`args`, `env`, `cwd`, `user`, ...), as
/// the runtime runs it.
pub fn bundle(global: &GlobalArgs, record: &ContainerRecord) -> serde_json::Value {
    std::fs::read(dir(global, record).join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Whether it runs (or is frozen) now, by pid and start time.
pub fn is_up(record: &ContainerRecord) -> bool {
    matches!(
        record.live_state(),
        ContainerState::Running | ContainerState::Paused
    )
}

/// Sends `request` to the project's supervisor (starting it when none
/// answers, which adopts what runs) and returns the connection with the
/// first reply. A supervisor that is ending (its last container just went)
/// may close a connection before reading it: then the request was not
/// seen, and it is sent again, to a new supervisor.
pub async fn open(global: &GlobalArgs, request: &Request) -> anyhow::Result<(Channel, Reply)> {
    let name = project(global);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut channel = client::connect(global, &name).await?;
        let unanswered = match channel.send(request).await {
            Ok(()) => match channel.recv::<Reply>().await {
                Ok(Some(reply)) => return Ok((channel, reply)),
                Ok(None) => ControlError::Closed,
                Err(e @ ControlError::Io { .. }) => e,
                Err(e) => return Err(e.into()),
            },
            Err(e @ ControlError::Io { .. }) => e,
            Err(e) => return Err(e.into()),
        };
        if attempts == 5 {
            return Err(unanswered).with_context(|| format!("talking to the supervisor of {name}"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20 * attempts)).await;
    }
}

/// [`open`], then the replies up to the last: its word, or the engine's
/// error. Progress lines are not shown, as `docker stop` shows none.
pub fn call(global: &GlobalArgs, request: &Request) -> anyhow::Result<String> {
    let rt = client::runtime()?;
    rt.block_on(async {
        let (mut channel, mut reply) = open(global, request).await?;
        loop {
            match reply {
                Reply::Done { message } => return Ok(message),
                Reply::Failed { error } => return Err(error.into()),
                Reply::Progress { .. } | Reply::Step { .. } | Reply::Exit { .. } => {}
            }
            reply = channel.recv::<Reply>().await?.ok_or(ControlError::Closed)?;
        }
    })
}

/// Polls the store until `pred` holds for the container (or it is gone),
/// for at most `secs` seconds; returns whether it did.
pub fn wait_until(
    global: &GlobalArgs,
    record: &ContainerRecord,
    secs: u64,
    pred: impl Fn(&ContainerRecord) -> bool,
) -> bool {
    let store = Records::new(&global.root);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match store.load(&record.project, &record.name) {
            Ok(Some(r)) if !pred(&r) => {}
            _ => return true,
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
