//! `stack container ls`: the single containers, like `docker ps` (short ids,
//! `--format json` with `docker ps --format json`'s field names).

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::create::runtime_root;
use super::net;
use super::record::{Record, Records, State, now_ms};
use crate::cli::GlobalArgs;

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

/// Docker's STATUS column.
pub fn status(record: &Record, state: State) -> String {
    let now = now_ms();
    match state {
        State::Running => format!(
            "Up {}",
            human_duration(now.saturating_sub(record.started_ms.unwrap_or(record.created_ms)))
        ),
        State::Paused => format!(
            "Up {} (Paused)",
            human_duration(now.saturating_sub(record.started_ms.unwrap_or(record.created_ms)))
        ),
        State::Created => "Created".into(),
        State::Exited => match (record.exit_code, record.finished_ms) {
            (Some(code), Some(at)) => format!(
                "Exited ({code}) {} ago",
                human_duration(now.saturating_sub(at))
            ),
            _ => "Exited".into(),
        },
    }
}

/// `0.0.0.0:8080->80/tcp, ...`
pub fn ports(global: &GlobalArgs, record: &Record, state: State) -> String {
    if !matches!(state, State::Running | State::Paused) || record.port_specs.is_empty() {
        return String::new();
    }
    net::published(global, &record.id)
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

fn entry(global: &GlobalArgs, record: &Record) -> Entry {
    let state = record.live_state(&runtime_root(&global.root));
    let created = std::time::UNIX_EPOCH + std::time::Duration::from_millis(record.created_ms);
    Entry {
        command: format!("\"{}\"", record.args.join(" ")),
        created_at: humantime::format_rfc3339_seconds(created).to_string(),
        id: record.short_id().to_owned(),
        image: record.image.clone(),
        labels: String::new(),
        local_volumes: record
            .mounts
            .iter()
            .filter(|m| m.kind == "volume")
            .count()
            .to_string(),
        mounts: record
            .mounts
            .iter()
            .map(|m| m.source.as_str())
            .collect::<Vec<_>>()
            .join(","),
        names: record.name.clone(),
        networks: record.network.as_str().to_owned(),
        ports: ports(global, record, state),
        running_for: format!(
            "{} ago",
            human_duration(now_ms().saturating_sub(record.created_ms))
        ),
        size: "0B".into(),
        state: state.as_str().to_owned(),
        status: status(record, state),
        exit_code: (state == State::Exited)
            .then_some(record.exit_code)
            .flatten(),
    }
}

pub fn run(global: &GlobalArgs, args: LsArgs) -> anyhow::Result<ExitCode> {
    let list: Vec<Entry> = Records::new(&global.root)
        .list()?
        .iter()
        .map(|r| entry(global, r))
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
