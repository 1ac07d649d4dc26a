//! `stack stats`: CPU, memory, network and block I/O and pids of the
//! project's running containers, as `docker stats` shows them. CPU % comes
//! from two samples of the cgroup's CPU time.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;
use stack_engine::api::ContainerState;
use stack_engine::api::Records;
use stack_engine::api::stats::{Sample, cpu_percent, sample};

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Print one sample and exit.
    #[arg(long)]
    pub no_stream: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Stopped containers too (with zeros, as `docker stats -a`).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Whole container IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only these services.
    pub services: Vec<String>,
}

/// One line, with `docker stats --format json`'s field names.
#[derive(Debug, Serialize)]
pub struct Line {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Container")]
    pub container: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "CPUPerc")]
    pub cpu: String,
    #[serde(rename = "MemUsage")]
    pub mem_usage: String,
    #[serde(rename = "MemPerc")]
    pub mem_perc: String,
    #[serde(rename = "NetIO")]
    pub net_io: String,
    #[serde(rename = "BlockIO")]
    pub block_io: String,
    #[serde(rename = "PIDs")]
    pub pids: String,
}

/// Bytes in decimal units, as Docker prints I/O (`1.5kB`).
pub fn decimal(n: u64) -> String {
    units(n as f64, 1000.0, &["B", "kB", "MB", "GB", "TB"])
}

/// Bytes in binary units, as Docker prints memory (`1.5MiB`).
pub fn binary(n: u64) -> String {
    units(n as f64, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB"])
}

fn units(mut v: f64, step: f64, names: &[&str]) -> String {
    let mut i = 0;
    while v >= step && i + 1 < names.len() {
        v /= step;
        i += 1;
    }
    if i == 0 {
        format!("{v}{}", names[0])
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
            + names[i]
    }
}

/// A container ID as `docker stats` shows it: 12 digits unless `no_trunc`.
fn shown_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_owned()
    } else {
        id[..12.min(id.len())].to_owned()
    }
}

/// The line of a container that is not running (`--all`).
fn stopped_line(name: &str, id: &str, no_trunc: bool) -> Line {
    let id = shown_id(id, no_trunc);
    Line {
        id: id.clone(),
        container: id,
        name: name.to_owned(),
        cpu: "0.00%".into(),
        mem_usage: "0B / 0B".into(),
        mem_perc: "0.00%".into(),
        net_io: "0B / 0B".into(),
        block_io: "0B / 0B".into(),
        pids: "0".into(),
    }
}

fn line(name: &str, before: &Sample, after: &Sample, no_trunc: bool) -> Line {
    let short = shown_id(&after.id, no_trunc);
    let mem_perc = if after.memory_limit > 0 {
        after.memory_usage as f64 * 100.0 / after.memory_limit as f64
    } else {
        0.0
    };
    Line {
        id: short.clone(),
        container: short,
        name: name.to_owned(),
        cpu: format!("{:.2}%", cpu_percent(before, after)),
        mem_usage: format!(
            "{} / {}",
            binary(after.memory_usage),
            binary(after.memory_limit)
        ),
        mem_perc: format!("{mem_perc:.2}%"),
        net_io: format!("{} / {}", decimal(after.net_rx), decimal(after.net_tx)),
        block_io: format!(
            "{} / {}",
            decimal(after.block_read),
            decimal(after.block_write)
        ),
        pids: after.pids.to_string(),
    }
}

fn running(
    global: &GlobalArgs,
    project: &str,
    services: &[String],
    all: bool,
) -> anyhow::Result<Vec<(String, String, bool)>> {
    Ok(Records::new(&global.root)
        .containers(project)?
        .into_iter()
        .filter(|r| services.is_empty() || services.contains(&r.service))
        .map(|r| {
            let running = r.live_state() == ContainerState::Running;
            (r.name, r.id, running)
        })
        .filter(|(_, _, running)| all || *running)
        .collect())
}

/// A sample of each running container; none of the others, whose
/// cgroups may still hold what their last process left.
fn take(global: &GlobalArgs, list: &[(String, String, bool)]) -> Vec<Option<Sample>> {
    let runtime = stack_fs::Layout::of_root(&global.root).runtime();
    list.iter()
        .map(|(_, id, running)| running.then(|| sample(&runtime, id).ok()).flatten())
        .collect()
}

pub fn run(global: &GlobalArgs, args: StatsArgs) -> anyhow::Result<ExitCode> {
    let Some(project) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let mut list = running(global, &project, &args.services, args.all)?;
    let mut before = take(global, &list);
    loop {
        std::thread::sleep(Duration::from_millis(if args.no_stream {
            500
        } else {
            1000
        }));
        let after = take(global, &list);
        let lines: Vec<Line> = list
            .iter()
            .zip(before.iter().zip(&after))
            .filter_map(|((name, id, _), (b, a))| match (b, a) {
                (Some(b), Some(a)) => Some(line(name, b, a, args.no_trunc)),
                // Not running (or gone between the samples).
                _ if args.all => Some(stopped_line(name, id, args.no_trunc)),
                _ => None,
            })
            .collect();
        match args.format {
            Format::Json => {
                for l in &lines {
                    println!("{}", serde_json::to_string(l)?);
                }
            }
            Format::Table => {
                if !args.no_stream {
                    // Like `docker stats`: redraw in place.
                    print!("\x1b[2J\x1b[H");
                }
                println!(
                    "{:<w$} {:<28} {:<8} {:<24} {:<8} {:<20} {:<20} PIDS",
                    "CONTAINER ID",
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "MEM %",
                    "NET I/O",
                    "BLOCK I/O",
                    w = if args.no_trunc { 66 } else { 14 },
                );
                for l in &lines {
                    println!(
                        "{:<w$} {:<28} {:<8} {:<24} {:<8} {:<20} {:<20} {}",
                        l.id,
                        l.name,
                        l.cpu,
                        l.mem_usage,
                        l.mem_perc,
                        l.net_io,
                        l.block_io,
                        l.pids,
                        w = if args.no_trunc { 66 } else { 14 },
                    );
                }
            }
        }
        if args.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
        // Containers come and go between samples.
        let now = running(global, &project, &args.services, args.all)?;
        if now != list {
            list = now;
            before = take(global, &list);
        } else {
            before = after;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_as_docker_prints_them() {
        assert_eq!(decimal(0), "0B");
        assert_eq!(decimal(1500), "1.5kB");
        assert_eq!(binary(64 << 20), "64MiB");
        assert_eq!(binary(1536), "1.5KiB");
    }
}
