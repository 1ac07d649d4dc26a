//! `stack ps`: the project's containers, from the records the supervisor
//! keeps, checked against the kernel (pid and start time).

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use serde::Deserialize;
use serde::Serialize;
use stack_engine::api::ContainerState;
use stack_engine::api::Records;
use stack_engine::health::{HEALTH_FILE, Health, Status as HealthStatus};

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

/// `--format`: `table`, `json`, or a Go-template-style line such as
/// `{{.Name}}\t{{.State}}`, as `docker compose ps --format` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Template(String),
    /// `table TEMPLATE`: the template's fields as aligned columns under a
    /// header, as docker's formatter prints them.
    TableTemplate(String),
}

fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "table" => Ok(Format::Table),
        "json" => Ok(Format::Json),
        t if t.contains("{{") => match t.strip_prefix("table ") {
            Some(t) => Ok(Format::TableTemplate(t.to_owned())),
            None => Ok(Format::Template(t.to_owned())),
        },
        other => Err(format!(
            "expected table, json or a template such as '{{{{.Name}}}}', found {other:?}"
        )),
    }
}

/// Fills `{{.Field}}` placeholders from one entry's `--format json` fields.
pub fn render(template: &str, entry: &serde_json::Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed `{{{{` in {template:?}"))?;
        let field = after[..end].trim();
        let name = field
            .strip_prefix('.')
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric()))
            .ok_or_else(|| {
                format!("only `{{{{.Field}}}}` placeholders are supported, found {field:?}")
            })?;
        match entry.get(name) {
            Some(serde_json::Value::String(v)) => out.push_str(v),
            Some(serde_json::Value::Null) => {}
            Some(v) => out.push_str(&v.to_string()),
            None => return Err(format!("no field {name:?} (see `ps --format json`)")),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out.replace("\\t", "\t"))
}

/// A `table` template's column header: each cell's field names in
/// capitals, words apart (`{{.ExitCode}}` → `EXIT CODE`), as docker's
/// headers read; the text around the placeholders is left out.
pub fn header(template: &str) -> String {
    let cells: Vec<String> = template
        .replace("\\t", "\t")
        .split('\t')
        .map(|cell| {
            let mut words = Vec::new();
            let mut rest = cell;
            while let Some(start) = rest.find("{{") {
                let after = &rest[start + 2..];
                let end = after.find("}}").unwrap_or(after.len());
                let field = after[..end].trim().trim_start_matches('.');
                let mut word = String::new();
                let chars: Vec<char> = field.chars().collect();
                for (i, c) in chars.iter().enumerate() {
                    let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
                    let prev_lower = i > 0 && chars[i - 1].is_lowercase();
                    if i > 0 && c.is_uppercase() && (prev_lower || next_lower) {
                        word.push(' ');
                    }
                    word.extend(c.to_uppercase());
                }
                words.push(word);
                rest = after.get(end + 2..).unwrap_or("");
            }
            words.join(" ")
        })
        .collect();
    cells.join("\t")
}

fn parse_state(s: &str) -> Result<ContainerState, String> {
    ContainerState::deserialize(serde_json::Value::String(s.to_owned())).map_err(|_| {
        format!(
            "unknown status {s:?}: expected paused, restarting, running, dead, created or exited"
        )
    })
}

fn parse_filter(s: &str) -> Result<ContainerState, String> {
    match s.split_once('=') {
        Some(("status", v)) => parse_state(v),
        _ => Err(format!(
            "unsupported filter {s:?}: only status=STATUS is known"
        )),
    }
}

#[derive(Debug, Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Show stopped containers too.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// `table`, `json`, or a template such as '{{.Name}} {{.State}}'.
    #[arg(long, default_value = "table", value_parser = parse_format)]
    pub format: Format,
    /// Only the container IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Only the service names.
    #[arg(long = "services")]
    pub services_only: bool,
    /// Only containers in this state (repeatable; implies `-a`).
    #[arg(long, value_name = "STATUS", value_parser = parse_state)]
    pub status: Vec<ContainerState>,
    /// `status=STATUS` (repeatable; implies `-a`).
    #[arg(long, value_name = "FILTER", value_parser = parse_filter)]
    pub filter: Vec<ContainerState>,
    /// Nothing is cut here: compose's flag, accepted.
    #[arg(long)]
    pub no_trunc: bool,
    /// With `--orphans=false`: leave out containers of services the file no
    /// longer has.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub orphans: bool,
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
    record: &stack_engine::api::ContainerRecord,
    health: Option<HealthStatus>,
    now: u64,
) -> String {
    let started = record.started_ms.unwrap_or(record.created_ms);
    let exit_code =
        |e: &stack_engine::api::LastExit| e.code.map_or("unknown".to_owned(), |c| c.to_string());
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
    let store = Records::new(&global.root);
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
    // Orphans are known only against the file.
    let in_file: Option<Vec<String>> = if args.orphans {
        None
    } else {
        match args.project.load()? {
            Some(loaded) => Some(loaded.project.services.keys().cloned().collect()),
            None => return Ok(ExitCode::FAILURE),
        }
    };
    let states: Vec<ContainerState> = args.status.iter().chain(&args.filter).copied().collect();
    let list: Vec<PsEntry> = entries(global, &name)?
        .into_iter()
        .filter(|e| args.all || !states.is_empty() || e.state != ContainerState::Exited)
        .filter(|e| states.is_empty() || states.contains(&e.state))
        .filter(|e| args.services.is_empty() || args.services.contains(&e.service))
        .filter(|e| in_file.as_ref().is_none_or(|s| s.contains(&e.service)))
        .collect();
    if args.quiet {
        for e in &list {
            println!("{}", e.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.services_only {
        let mut seen = std::collections::HashSet::new();
        for e in list.iter().filter(|e| seen.insert(e.service.clone())) {
            println!("{}", e.service);
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        Format::Template(t) => {
            for e in &list {
                match render(&t, &serde_json::to_value(e)?) {
                    Ok(line) => println!("{line}"),
                    Err(msg) => {
                        eprintln!("error: --format: {msg}");
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
        }
        Format::TableTemplate(t) => {
            let mut lines = vec![header(&t)];
            for e in &list {
                match render(&t, &serde_json::to_value(e)?) {
                    Ok(line) => lines.push(line),
                    Err(msg) => {
                        eprintln!("error: --format: {msg}");
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
            crate::table::print_lines(&lines);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_templates_as_compose_takes_them() {
        assert_eq!(parse_format("json"), Ok(Format::Json));
        assert_eq!(parse_format("table"), Ok(Format::Table));
        assert!(parse_format("yaml").is_err());
        assert_eq!(
            parse_format("table {{.Name}}\\t{{.ExitCode}}"),
            Ok(Format::TableTemplate("{{.Name}}\\t{{.ExitCode}}".into()))
        );
        assert_eq!(
            header("{{.Name}}\\t{{ .ExitCode }}\t{{.ID}} ({{.RestartCount}})"),
            "NAME\tEXIT CODE\tID RESTART COUNT"
        );
        let e =
            serde_json::json!({"Name": "p-web-1", "State": "running", "ExitCode": 0, "Health": ""});
        assert_eq!(
            render("{{.Name}}\\t{{ .State }} {{.ExitCode}}[{{.Health}}]", &e),
            Ok("p-web-1\trunning 0[]".to_owned())
        );
        assert!(render("{{.Nope}}", &e).is_err());
        assert!(render("{{json .}}", &e).is_err());
        assert!(render("{{.Name", &e).is_err());
        assert_eq!(parse_filter("status=exited"), Ok(ContainerState::Exited));
        assert!(parse_filter("name=x").is_err());
        assert!(parse_state("sleeping").is_err());
    }
}
