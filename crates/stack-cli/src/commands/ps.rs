//! `stack ps`: the project's containers, from the records the supervisor
//! keeps, checked against the kernel (pid and start time).

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use serde::Serialize;
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
}

fn ago(ms: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.saturating_sub(Duration::from_millis(ms)).as_secs();
    match secs {
        0..=59 => format!("{secs} seconds"),
        60..=3599 => format!("{} minutes", secs / 60),
        _ => format!("{} hours", secs / 3600),
    }
}

pub fn entries(global: &GlobalArgs, project: &str) -> anyhow::Result<Vec<PsEntry>> {
    let store = Store::new(&global.root);
    let records = store.containers(project)?;
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let published = super::port::published(global, &ids);
    let mut out = Vec::new();
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
        let status = match state {
            ContainerState::Running => format!("Up {}", ago(record.created_ms)),
            ContainerState::Exited => match record.last_exit {
                Some(e) => match e.code {
                    Some(code) => format!("Exited ({code}) {} ago", ago(e.at_ms)),
                    None => format!("Exited (unknown) {} ago", ago(e.at_ms)),
                },
                None => "Exited".into(),
            },
            ContainerState::Restarting => format!("Restarting ({exit_code})"),
            ContainerState::Created => "Created".into(),
            ContainerState::Paused => "Paused".into(),
            ContainerState::Dead => "Dead".into(),
        };
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
            health: String::new(),
            exit_code,
            publishers,
            restart_count: record.restart_count,
        });
    }
    Ok(out)
}

pub fn run(global: &GlobalArgs, args: PsArgs) -> anyhow::Result<ExitCode> {
    let Some(name) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let list: Vec<PsEntry> = entries(global, &name)?
        .into_iter()
        .filter(|e| args.all || e.state != ContainerState::Exited)
        .collect();
    match args.format {
        Format::Json => {
            for e in &list {
                println!("{}", serde_json::to_string(e)?);
            }
        }
        Format::Table => {
            println!(
                "{:<28} {:<24} {:<12} {:<32} RESTARTS",
                "NAME", "IMAGE", "SERVICE", "STATUS"
            );
            for e in &list {
                println!(
                    "{:<28} {:<24} {:<12} {:<32} {}",
                    e.name, e.image, e.service, e.status, e.restart_count
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
