//! `stack container stats`: CPU, memory, pids and block I/O from the
//! containers' cgroups, like `docker stats` (`--no-stream` prints once).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde::Serialize;
use stack_runtime::Container;

use super::create::runtime_root;
use super::found;
use crate::cli::GlobalArgs;
use stack_engine::api::ContainerRecord as Record;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one sample and exit.
    #[arg(long)]
    pub no_stream: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Containers (default: every running one).
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// One line of `stats --format json`, with `docker stats`' field names.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Line {
    #[serde(rename = "ID")]
    id: String,
    name: String,
    #[serde(rename = "CPUPerc")]
    cpu_perc: String,
    mem_usage: String,
    mem_perc: String,
    #[serde(rename = "BlockIO")]
    block_io: String,
    #[serde(rename = "PIDs")]
    pids: String,
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", UNITS[u])
    }
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn targets(global: &GlobalArgs, keys: &[String]) -> anyhow::Result<Vec<(Record, Container)>> {
    let root = runtime_root(&global.root);
    let list = if keys.is_empty() {
        found::list(global)?
    } else {
        keys.iter()
            .map(|k| found::find(global, k))
            .collect::<anyhow::Result<_>>()?
    };
    let mut out = Vec::new();
    for r in list {
        if found::is_up(&r)
            && let Ok(c) = Container::load(&root, &r.id)
        {
            out.push((r, c));
        } else if !keys.is_empty() {
            anyhow::bail!("container {} is not running", r.name);
        }
    }
    Ok(out)
}

/// Samples every container twice, `interval` apart, for CPU use.
fn sample(targets: &[(Record, Container)], interval: Duration) -> Vec<Line> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let first: Vec<u64> = targets
        .iter()
        .map(|(_, c)| c.stats().map(|s| s.cpu_usage_ns).unwrap_or(0))
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(interval);
    let elapsed = t0.elapsed().as_nanos() as f64;
    let total = host_memory();
    targets
        .iter()
        .zip(first)
        .map(|((r, c), before)| {
            let s = c.stats().unwrap_or_default();
            let cpu = (s.cpu_usage_ns.saturating_sub(before)) as f64 / elapsed * 100.0;
            let limit = s.memory_limit.filter(|l| *l < total).unwrap_or(total);
            Line {
                id: r.id[..12].to_owned(),
                name: r.name.clone(),
                cpu_perc: format!("{:.2}%", cpu.min(cpus * 100.0)),
                mem_usage: format!("{} / {}", bytes(s.memory_usage), bytes(limit)),
                mem_perc: format!(
                    "{:.2}%",
                    if limit > 0 {
                        s.memory_usage as f64 / limit as f64 * 100.0
                    } else {
                        0.0
                    }
                ),
                block_io: format!("{} / {}", bytes(s.io_read_bytes), bytes(s.io_write_bytes)),
                pids: s.pids_current.to_string(),
            }
        })
        .collect()
}

pub fn run(global: &GlobalArgs, args: StatsArgs) -> anyhow::Result<ExitCode> {
    loop {
        let targets = targets(global, &args.containers)?;
        let lines = sample(&targets, Duration::from_millis(500));
        match args.format {
            Format::Json => {
                for l in &lines {
                    println!("{}", serde_json::to_string(l)?);
                }
            }
            Format::Table => {
                if !args.no_stream {
                    // Redraw in place, as `docker stats` does.
                    print!("\x1b[2J\x1b[H");
                }
                println!(
                    "{:<14}{:<28}{:<10}{:<24}{:<9}{:<22}PIDS",
                    "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "BLOCK I/O"
                );
                for l in &lines {
                    println!(
                        "{:<14}{:<28}{:<10}{:<24}{:<9}{:<22}{}",
                        l.id, l.name, l.cpu_perc, l.mem_usage, l.mem_perc, l.block_io, l.pids
                    );
                }
            }
        }
        if args.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
    }
}
