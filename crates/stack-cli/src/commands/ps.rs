//! `stack ps`: the project's containers, from the records the supervisor
//! keeps, checked against the kernel (pid and start time).

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use serde::Serialize;
use stack_engine::health::{HEALTH_FILE, Health, Status as HealthStatus};
use stack_engine::observed::ContainerState;
use stack_engine::store::Store;

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Show stopped containers too.
    #[arg(short = 'a', long)]
    pub all: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Only these services' containers.
    pub services: Vec<String>,
}

/// One line of `ps --format json`, with `docker compose ps`'s field names.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PsEntry {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub image: String,
    pub command: String,
    pub project: String,
    pub service: String,
    pub created: u64,
    pub state: ContainerState,
    pub status: String,
    pub health: String,
    pub exit_code: i32,
    pub publishers: Vec<serde_json::Value>,
    pub restart_count: u32,
    /// The last exit code, "unknown" when it ended unwatched; absent
    /// before the first exit.
    pub last_exit: Option<String>,
    /// While restarting: when the next attempt is due (RFC 3339).
    pub next_attempt: Option<String>,
    #[serde(skip)]
    pub next_attempt_ms: Option<u64>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// A duration as Docker words it (go-units' `HumanDuration`).
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (minutes, hours) = (secs / 60, secs / 3600);
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..60 => format!("{secs} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 14 => format!("{} days", hours / 24),
        _ if hours < 24 * 60 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

fn since(ms: u64, now: u64) -> String {
    human(Duration::from_millis(now.saturating_sub(ms)))
}

/// The STATUS column, as `docker ps` words it.
pub fn status_text(
    state: ContainerState,
    record: &stack_engine::store::ContainerRecord,
    health: Option<HealthStatus>,
    now: u64,
) -> String {
    let started = record.started_ms.unwrap_or(record.created_ms);
    let exit_code =
        |e: &stack_engine::store::LastExit| e.code.map_or("unknown".to_owned(), |c| c.to_string());
    let health = match health {
        Some(HealthStatus::Healthy) => " (healthy)",
        Some(HealthStatus::Unhealthy) => " (unhealthy)",
        Some(HealthStatus::Starting) => " (health: starting)",
        None => "",
    };
    match (state, &record.last_exit) {
        (ContainerState::Running, _) => format!("Up {}{health}", since(started, now)),
        (ContainerState::Paused, _) => format!("Up {} (Paused)", since(started, now)),
        (ContainerState::Restarting, Some(e)) => {
            format!("Restarting ({}) {} ago", exit_code(e), since(e.at_ms, now))
        }
        (ContainerState::Restarting, None) => "Restarting".into(),
        (ContainerState::Exited, Some(e)) => {
            format!("Exited ({}) {} ago", exit_code(e), since(e.at_ms, now))
        }
        (ContainerState::Exited, None) => "Exited".into(),
        (ContainerState::Created, _) => "Created".into(),
        (ContainerState::Dead, _) => "Dead".into(),
    }
}

/// The container's health from the file its supervisor keeps, `None`
/// without a health check (or before the first probe).
pub fn health_of(dir: &std::path::Path) -> Option<Health> {
    let bytes = std::fs::read(dir.join(HEALTH_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn entries(global: &GlobalArgs, project: &str) -> anyhow::Result<Vec<PsEntry>> {
    let store = Store::new(&global.root);
    let records = store.containers(project)?;
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let published = super::port::published(global, &ids);
    let mut out = Vec::new();
    let now = now_ms();
    for (record, ports) in records.into_iter().zip(published) {
        let state = record.live_state();
        let command = std::fs::read(
            store
                .container_dir(project, &record.name)
                .join("config.json"),
        )
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["process"]["args"].as_array().cloned())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
        let publishers = ports
            .into_iter()
            .map(|p| {
                serde_json::json!({
                    "URL": p.host_ip.map_or("0.0.0.0".to_owned(), |ip| ip.to_string()),
                    "TargetPort": p.container_port,
                    "PublishedPort": p.host_port,
                    "Protocol": p.protocol.as_str(),
                })
            })
            .collect();
        let exit_code = record.last_exit.and_then(|e| e.code).unwrap_or(0);
        let dir = store.container_dir(project, &record.name);
        let health = health_of(&dir)
            .filter(|_| state == ContainerState::Running)
            .map(|h| h.status);
        let status = status_text(state, &record, health, now);
        let last_exit = record
            .last_exit
            .map(|e| e.code.map_or("unknown".to_owned(), |c| c.to_string()));
        let next_attempt = record
            .next_attempt_ms
            .filter(|_| state == ContainerState::Restarting);
        out.push(PsEntry {
            id: record.id,
            name: record.name,
            image: record.image,
            command,
            project: project.to_owned(),
            service: record.service,
            created: record.created_ms / 1000,
            state,
            status,
            health: health
                .map(|h| serde_json::to_value(h).ok())
                .and_then(|v| v?.as_str().map(str::to_owned))
                .unwrap_or_default(),
            exit_code,
            publishers,
            restart_count: record.restart_count,
            last_exit,
            next_attempt: next_attempt.map(|ms| {
                humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
            }),
            next_attempt_ms: next_attempt,
        });
    }
    Ok(out)
}

pub fn run(global: &GlobalArgs, args: PsArgs) -> anyhow::Result<ExitCode> {
    let Some(name) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    client::ensure_supervisor(global, &name)?;
    let list: Vec<PsEntry> = entries(global, &name)?
        .into_iter()
        .filter(|e| args.all || e.state != ContainerState::Exited)
        .filter(|e| args.services.is_empty() || args.services.contains(&e.service))
        .collect();
    match args.format {
        Format::Json => {
            for e in &list {
                println!("{}", serde_json::to_string(e)?);
            }
        }
        Format::Table => {
            let now = now_ms();
            let mut rows = vec![
                [
                    "NAME",
                    "IMAGE",
                    "SERVICE",
                    "STATUS",
                    "RESTARTS",
                    "LAST EXIT",
                    "NEXT ATTEMPT",
                ]
                .map(String::from),
            ];
            for e in &list {
                let next = e.next_attempt_ms.map_or(String::new(), |ms| {
                    format!("in {:.1}s", ms.saturating_sub(now) as f64 / 1000.0)
                });
                rows.push([
                    e.name.clone(),
                    e.image.clone(),
                    e.service.clone(),
                    e.status.clone(),
                    e.restart_count.to_string(),
                    e.last_exit.clone().unwrap_or_else(|| "-".into()),
                    next,
                ]);
            }
            crate::table::print(&rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}
