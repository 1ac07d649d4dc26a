//! The project's event journal: every monitor and prober event, shaped as
//! `docker events --format json` prints it, appended to `events.log` in the
//! project's directory (so `--since` reaches back across supervisor
//! restarts) and streamed live to `stack events`.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::control::{Channel, Reply};
use crate::health::Status as HealthStatus;
use crate::host::Host;
use crate::monitoring::{Event, EventKind};
use crate::store::ContainerRecord;

/// The journal rotates to `events.log.1` past this size.
pub const MAX_JOURNAL: u64 = 4 * 1024 * 1024;

/// How many events wait in memory for a journal that cannot be written.
const MAX_UNWRITTEN: usize = 1000;

/// The journal file of a project directory.
pub fn journal_path(project_dir: &Path) -> PathBuf {
    project_dir.join("events.log")
}

/// Docker's action name and attributes for an event; `None` for the
/// engine's internal steps that Docker does not report.
fn action(kind: &EventKind) -> Option<(String, Vec<(&'static str, String)>)> {
    Some(match kind {
        EventKind::Start { .. } => ("start".into(), vec![]),
        EventKind::Die { exit_code, signal } => {
            let code = match (exit_code, signal) {
                (Some(c), _) => c.to_string(),
                (None, Some(s)) => (128 + s).to_string(),
                (None, None) => "unknown".into(),
            };
            let mut attrs = vec![("exitCode", code)];
            if let Some(s) = signal {
                attrs.push(("signal", s.to_string()));
            }
            ("die".into(), attrs)
        }
        EventKind::Oom => ("oom".into(), vec![]),
        EventKind::Restart => ("restart".into(), vec![]),
        EventKind::Restarting { delay_ms, attempt } => (
            "restarting".into(),
            vec![
                ("delayMs", delay_ms.to_string()),
                ("restartCount", attempt.to_string()),
            ],
        ),
        EventKind::Stop => ("stop".into(), vec![]),
        EventKind::Kill { signal } => ("kill".into(), vec![("signal", signal.to_string())]),
        EventKind::HealthStatus { status } => {
            let word = match status {
                HealthStatus::Starting => "starting",
                HealthStatus::Healthy => "healthy",
                HealthStatus::Unhealthy => "unhealthy",
            };
            (format!("health_status: {word}"), vec![])
        }
        EventKind::StartFailed { error, .. } => {
            ("start_failed".into(), vec![("error", error.clone())])
        }
        EventKind::LogPaused { error } => ("log_paused".into(), vec![("error", error.clone())]),
        EventKind::LogResumed { dropped } => (
            "log_resumed".into(),
            vec![("droppedLines", dropped.to_string())],
        ),
    })
}

/// One event as `docker events --format json` prints it, with compose's
/// labels as attributes.
pub fn docker_shape(event: &Event, record: Option<&ContainerRecord>) -> Option<Value> {
    let (action, extra) = action(&event.kind)?;
    let id = record.map(|r| r.id.clone()).unwrap_or_default();
    let image = record.map(|r| r.image.clone()).unwrap_or_default();
    let mut attributes = serde_json::Map::new();
    attributes.insert("name".into(), json!(event.container));
    attributes.insert("image".into(), json!(image));
    if let Some(r) = record {
        attributes.insert("com.docker.compose.project".into(), json!(r.project));
        attributes.insert("com.docker.compose.service".into(), json!(r.service));
        attributes.insert(
            "com.docker.compose.container-number".into(),
            json!(r.number.to_string()),
        );
    }
    for (k, v) in extra {
        attributes.insert(k.into(), json!(v));
    }
    Some(json!({
        "status": action,
        "id": id,
        "from": image,
        "Type": "container",
        "Action": action,
        "Actor": {"ID": id, "Attributes": attributes},
        "scope": "local",
        "time": (event.time_ns / 1_000_000_000) as u64,
        "timeNano": event.time_ns as u64,
    }))
}

impl Host {
    /// Starts writing the journal; returns the live feed of its lines.
    pub fn start_journal(self: &Arc<Self>) -> broadcast::Sender<String> {
        let (tx, _) = broadcast::channel(1024);
        let feed = tx.clone();
        let mut events = self.events();
        let host = self.clone();
        tokio::spawn(async move {
            let mut unwritten = VecDeque::new();
            loop {
                let event = match events.recv().await {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("event journal fell behind by {n} events");
                        continue;
                    }
                    Err(_) => return,
                };
                let project = host.project();
                let record = host
                    .records()
                    .load(&project.name, &event.container)
                    .ok()
                    .flatten();
                let Some(value) = docker_shape(&event, record.as_ref()) else {
                    continue;
                };
                let line = value.to_string();
                let path = journal_path(&host.records().project_dir(&project.name));
                // Lines that could not be written (a full disk) wait here
                // and go first when writing works again, so that
                // `--since` later finds the event that said it was full.
                if unwritten.len() == MAX_UNWRITTEN {
                    unwritten.pop_front();
                }
                unwritten.push_back(line.clone());
                while let Some(next) = unwritten.front() {
                    if let Err(e) = append(&path, next) {
                        tracing::debug!("{}: {e}", path.display());
                        break;
                    }
                    unwritten.pop_front();
                }
                let _ = feed.send(line);
            }
        });
        tx
    }
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_JOURNAL) {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        std::fs::rename(path, PathBuf::from(old))?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let before = file.metadata()?.len();
    let written = file.write_all(format!("{line}\n").as_bytes());
    if written.is_err() {
        // No torn line for the next one to be glued to.
        let _ = file.set_len(before);
    }
    written
}

/// The journal's lines from `since_ns` on (and before `until_ns`), oldest
/// first.
pub fn read_journal(path: &Path, since_ns: u128, until_ns: Option<u128>) -> Vec<String> {
    let mut old = path.as_os_str().to_owned();
    old.push(".1");
    let mut out = Vec::new();
    for file in [PathBuf::from(old), path.to_owned()] {
        let Ok(f) = std::fs::File::open(&file) else {
            continue;
        };
        for line in BufReader::new(f).lines().map_while(Result::ok) {
            let at = time_of(&line);
            if at >= since_ns && until_ns.is_none_or(|u| at < u) {
                out.push(line);
            }
        }
    }
    out
}

fn time_of(line: &str) -> u128 {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v["timeNano"].as_u64())
        .unwrap_or(0) as u128
}

/// Answers `stack events`: the journal from `since_ns`, then live events
/// until `until_ns` (or until the client goes away), one per progress line.
pub async fn stream_events(
    host: Arc<Host>,
    feed: broadcast::Sender<String>,
    mut channel: Channel,
    since_ns: Option<u64>,
    until_ns: Option<u64>,
) {
    let (since_ns, until_ns) = (since_ns.map(u128::from), until_ns.map(u128::from));
    // Subscribed before reading the file, so nothing falls in between;
    // what both have is sent once.
    let mut live = feed.subscribe();
    let path = journal_path(&host.records().project_dir(&host.project().name));
    let mut last = 0;
    if let Some(since) = since_ns {
        for line in read_journal(&path, since, until_ns) {
            last = last.max(time_of(&line));
            if channel.send(&Reply::Progress { line }).await.is_err() {
                return;
            }
        }
    }
    let deadline = until_ns.map(|u| {
        let now = crate::monitoring::events::unix_ns();
        tokio::time::Instant::now() + std::time::Duration::from_nanos(u.saturating_sub(now) as u64)
    });
    loop {
        let line = tokio::select! {
            got = live.recv() => match got {
                Ok(line) => line,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            },
            () = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => break,
        };
        let at = time_of(&line);
        if at <= last || until_ns.is_some_and(|u| at >= u) {
            continue;
        }
        if channel.send(&Reply::Progress { line }).await.is_err() {
            return;
        }
    }
    let _ = channel.answer(Ok(String::new())).await;
}
