//! `stack container ls`: the single containers from the engine's store, like
//! `docker ps` (short ids, health in STATUS, `--format json` with `docker ps
//! --format json`'s field names).

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde::Serialize;

use stack_engine::api::ContainerRecord;
use stack_engine::api::ContainerState;
use stack_engine::health::Status as HealthStatus;
use stack_net::PublishedPort;
use stack_spec::{MountType, NetworkMode};

use super::found;
use crate::cli::GlobalArgs;

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Show stopped containers too.
    #[arg(short, long)]
    pub all: bool,
    /// Only the ids.
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// One line of `ls --format json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    pub command: String,
    pub created_at: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub image: String,
    pub labels: String,
    pub local_volumes: String,
    pub mounts: String,
    pub names: String,
    pub networks: String,
    pub ports: String,
    pub running_for: String,
    pub size: String,
    pub state: String,
    pub status: String,
    pub exit_code: Option<i32>,
}

/// `2 minutes`, `About an hour` ... as Docker words durations.
pub fn human_duration(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0 => "Less than a second".into(),
        1..=59 => format!("{secs} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", secs / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

/// The health its supervisor last saw, while it runs.
pub fn health(global: &GlobalArgs, record: &ContainerRecord) -> Option<HealthStatus> {
    crate::commands::ps::health_of(&found::dir(global, record))
        .filter(|_| record.live_state() == ContainerState::Running)
        .map(|h| h.status)
}

/// `0.0.0.0:8080->80/tcp, ...`
pub fn ports(published: &[PublishedPort]) -> String {
    published
        .iter()
        .map(|p| {
            let ip = p.host_ip.map_or("0.0.0.0".to_owned(), |ip| ip.to_string());
            format!(
                "{ip}:{}->{}/{}",
                p.host_port,
                p.container_port,
                p.protocol.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn entry(global: &GlobalArgs, record: &ContainerRecord, published: &[PublishedPort]) -> Entry {
    let state = record.live_state();
    let service = found::service(global, record);
    let bundle = found::bundle(global, record);
    let args: Vec<&str> = bundle["process"]["args"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
        .unwrap_or_default();
    let volumes = || service.volumes.iter();
    let created = std::time::UNIX_EPOCH + std::time::Duration::from_millis(record.created_ms);
    let now = now_ms();
    Entry {
        command: format!("\"{}\"", args.join(" ")),
        created_at: humantime::format_rfc3339_seconds(created).to_string(),
        id: record.id[..12].to_owned(),
        image: record.image.clone(),
        labels: String::new(),
        local_volumes: volumes()
            .filter(|v| v.kind == MountType::Volume)
            .count()
            .to_string(),
        mounts: volumes()
            .filter_map(|v| v.source.as_deref())
            .collect::<Vec<_>>()
            .join(","),
        names: record.name.clone(),
        networks: network_word(&service).to_owned(),
        ports: if found::is_up(record) {
            ports(published)
        } else {
            String::new()
        },
        running_for: format!(
            "{} ago",
            human_duration(now.saturating_sub(record.created_ms))
        ),
        size: "0B".into(),
        state: state.as_str().to_owned(),
        status: crate::commands::ps::status_text(state, record, health(global, record), now),
        exit_code: (state == ContainerState::Exited)
            .then(|| record.last_exit.and_then(|e| e.code))
            .flatten(),
    }
}

/// `--network` as given: `bridge`, `host` or `none`.
pub fn network_word(service: &stack_spec::Service) -> &'static str {
    match service.network_mode {
        Some(NetworkMode::Host) => "host",
        Some(NetworkMode::None) => "none",
        _ => "bridge",
    }
}

pub fn run(global: &GlobalArgs, args: LsArgs) -> anyhow::Result<ExitCode> {
    let records = found::list(global)?;
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let published = crate::commands::port::published(global, &ids);
    let list: Vec<Entry> = records
        .iter()
        .zip(&published)
        .map(|(r, p)| entry(global, r, p))
        .filter(|e| args.all || e.state == "running" || e.state == "paused")
        .collect();
    if args.quiet {
        for e in &list {
            println!("{}", e.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        Format::Json => {
            for e in &list {
                println!("{}", serde_json::to_string(e)?);
            }
        }
        Format::Table => {
            let mut rows = vec![[
                "CONTAINER ID".to_owned(),
                "IMAGE".into(),
                "COMMAND".into(),
                "CREATED".into(),
                "STATUS".into(),
                "PORTS".into(),
                "NAMES".into(),
            ]];
            for e in &list {
                let mut command = e.command.clone();
                if command.chars().count() > 22 {
                    command = format!("{}…\"", command.chars().take(20).collect::<String>());
                }
                rows.push([
                    e.id.clone(),
                    e.image.clone(),
                    command,
                    e.running_for.clone(),
                    e.status.clone(),
                    e.ports.clone(),
                    e.names.clone(),
                ]);
            }
            crate::table::print(&rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_like_dockers() {
        assert_eq!(human_duration(500), "Less than a second");
        assert_eq!(human_duration(5_000), "5 seconds");
        assert_eq!(human_duration(90_000), "About a minute");
        assert_eq!(human_duration(600_000), "10 minutes");
        assert_eq!(human_duration(3 * 3_600_000), "3 hours");
    }
}
