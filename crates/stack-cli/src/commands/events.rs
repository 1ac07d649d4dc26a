//! `stack events`: the project's container events as the supervisor
//! reports them (start, die with its exit code, oom, health_status,
//! restart, stop, kill ...), one per line, `--format json` shaped like
//! `docker events --format json`.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use stack_engine::control::{Reply, Request};

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Also the events since this time: RFC 3339, Unix seconds, or a
    /// duration back from now (`10m`).
    #[arg(long)]
    pub since: Option<String>,
    /// Stop at this time (same forms as `--since`).
    #[arg(long)]
    pub until: Option<String>,
    /// Only these services.
    pub services: Vec<String>,
}

/// A point in time as `docker events --since` takes it, in Unix
/// nanoseconds.
pub fn parse_time(text: &str, now: SystemTime) -> anyhow::Result<u128> {
    let at = if let Ok(secs) = text.parse::<f64>() {
        UNIX_EPOCH + Duration::from_secs_f64(secs)
    } else if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        t
    } else if let Ok(d) = humantime::parse_duration(text) {
        now.checked_sub(d).unwrap_or(UNIX_EPOCH)
    } else {
        bail!(
            "{text:?} is not a time: give RFC 3339 (2024-01-02T15:04:05Z), Unix seconds, or a duration such as 10m"
        )
    };
    Ok(at.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos())
}

fn text_line(value: &serde_json::Value) -> String {
    let nanos = value["timeNano"].as_u64().unwrap_or(0);
    let time = humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(nanos));
    let attrs = value["Actor"]["Attributes"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    format!(
        "{time} container {} {} ({attrs})",
        value["Action"].as_str().unwrap_or_default(),
        value["id"].as_str().unwrap_or_default(),
    )
}

pub fn run(global: &GlobalArgs, args: EventsArgs) -> anyhow::Result<ExitCode> {
    let Some(project) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let now = SystemTime::now();
    let since_ns = args
        .since
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()?;
    let until_ns = args
        .until
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()?;
    let request = Request::Events {
        since_ns: since_ns.map(|n| n as u64),
        until_ns: until_ns.map(|n| n as u64),
    };
    client::runtime()?.block_on(async {
        let mut channel = client::connect(global, &project).await?;
        channel.send(&request).await?;
        loop {
            match channel
                .recv::<Reply>()
                .await
                .with_context(|| format!("talking to the supervisor of {project}"))?
            {
                Some(Reply::Progress { line }) => {
                    let value: serde_json::Value = serde_json::from_str(&line)?;
                    let service = value["Actor"]["Attributes"]["com.docker.compose.service"]
                        .as_str()
                        .unwrap_or_default();
                    if !args.services.is_empty() && !args.services.iter().any(|s| s == service) {
                        continue;
                    }
                    match args.format {
                        Format::Json => println!("{line}"),
                        Format::Text => println!("{}", text_line(&value)),
                    }
                }
                Some(Reply::Failed { error }) => {
                    let error = anyhow::Error::new(error);
                    return Ok(crate::failure::report(
                        &error,
                        matches!(args.format, Format::Json),
                    ));
                }
                // Only a one-off run answers with an exit code, only plans with steps.
                Some(Reply::Exit { .. } | Reply::Step { .. }) => {}
                Some(Reply::Done { .. }) | None => return Ok(ExitCode::SUCCESS),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_docker_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(parse_time("990", now).unwrap(), 990_000_000_000);
        assert_eq!(parse_time("10s", now).unwrap(), 990_000_000_000);
        assert_eq!(
            parse_time("1970-01-01T00:16:30Z", now).unwrap(),
            990_000_000_000
        );
        let err = parse_time("yesterday-ish", now).unwrap_err().to_string();
        assert!(err.contains("\"yesterday-ish\" is not a time"), "{err}");
    }
}
