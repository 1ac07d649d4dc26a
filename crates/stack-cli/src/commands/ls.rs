//! `stack ls`: the projects under `--root`, with their containers' states
//! and stack files, as `docker compose ls` shows them.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde::Serialize;
use stack_engine::api::ContainerState;
use stack_engine::api::Records;

use crate::cli::GlobalArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LsFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Also projects with nothing running.
    #[arg(short = 'a', long)]
    pub all: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: LsFormat,
    /// Only project names.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// `name=REGEX`: only projects whose name matches (repeatable, any
    /// may match), as compose's filter.
    #[arg(long, value_name = "FILTER", value_parser = parse_filter)]
    pub filter: Vec<regex::Regex>,
}

fn parse_filter(s: &str) -> Result<regex::Regex, String> {
    match s.split_once('=') {
        Some(("name", re)) => regex::Regex::new(re).map_err(|e| e.to_string()),
        _ => Err(format!(
            "unsupported filter {s:?}: only name=REGEX is known"
        )),
    }
}

/// One project, with `docker compose ls --format json`'s field names.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LsEntry {
    pub name: String,
    pub status: String,
    pub config_files: String,
    #[serde(skip)]
    running: bool,
}

/// `exited(1), running(2)`: the count of each state, states sorted.
pub fn status(states: &[ContainerState]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in states {
        *counts.entry(s.as_str()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(s, n)| format!("{s}({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn entries(global: &GlobalArgs) -> anyhow::Result<Vec<LsEntry>> {
    let store = Records::new(&global.root);
    let mut out = Vec::new();
    for name in store.projects()? {
        let states: Vec<ContainerState> = store
            .containers(&name)?
            .iter()
            .map(|r| r.live_state())
            .collect();
        if states.is_empty() {
            continue;
        }
        let files = std::fs::read_to_string(store.project_dir(&name).join("config-files"))
            .unwrap_or_default()
            .lines()
            .collect::<Vec<_>>()
            .join(",");
        out.push(LsEntry {
            running: states.iter().any(|s| s.is_up()),
            status: status(&states),
            name,
            config_files: files,
        });
    }
    Ok(out)
}

pub fn run(global: &GlobalArgs, args: LsArgs) -> anyhow::Result<ExitCode> {
    let list: Vec<LsEntry> = entries(global)?
        .into_iter()
        .filter(|e| args.all || e.running)
        .filter(|e| args.filter.is_empty() || args.filter.iter().any(|r| r.is_match(&e.name)))
        .collect();
    if args.quiet {
        for e in &list {
            println!("{}", e.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        LsFormat::Json => println!("{}", serde_json::to_string(&list)?),
        LsFormat::Table => {
            let w0 = list.iter().map(|e| e.name.len()).max().unwrap_or(0).max(4);
            let w1 = list
                .iter()
                .map(|e| e.status.len())
                .max()
                .unwrap_or(0)
                .max(6);
            println!("{:<w0$}   {:<w1$}   CONFIG FILES", "NAME", "STATUS");
            for e in &list {
                println!("{:<w0$}   {:<w1$}   {}", e.name, e.status, e.config_files);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_counts_states_like_compose() {
        use ContainerState::*;
        assert_eq!(status(&[Running, Exited, Running]), "exited(1), running(2)");
        assert_eq!(status(&[Paused]), "paused(1)");
    }
}
