//! `stack logs`: the services' output with compose's `service-1  | `
//! prefixes, from the log files the supervisor writes.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use stack_engine::logs::{Entry, read_all, tail};
use stack_engine::store::Store;

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

/// `-f` follows, as in `docker compose logs -f`; the stack file is given
/// with `--file` here.
#[derive(Debug, Args)]
#[command(mut_arg("files", |a| a.short(None)))]
pub struct LogsArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Keep printing new output.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines of each container.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Show timestamps.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// No colours.
    #[arg(long)]
    pub no_color: bool,
    /// Only these services.
    pub services: Vec<String>,
}

const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

struct Printer {
    width: usize,
    colour: bool,
    timestamps: bool,
}

impl Printer {
    fn print(&self, out: &mut impl Write, index: usize, name: &str, e: &Entry) {
        let prefix = format!("{name:<width$} | ", width = self.width);
        let prefix = if self.colour {
            format!("\x1b[{}m{prefix}\x1b[0m", COLOURS[index % COLOURS.len()])
        } else {
            prefix
        };
        let time = if self.timestamps {
            let t = UNIX_EPOCH + Duration::from_nanos(e.time_ns as u64);
            format!("{} ", humantime::format_rfc3339_seconds(t))
        } else {
            String::new()
        };
        let _ = write!(out, "{prefix}{time}{}", e.log);
    }
}

fn containers(
    global: &GlobalArgs,
    project: &str,
    services: &[String],
) -> anyhow::Result<Vec<String>> {
    Ok(Store::new(&global.root)
        .containers(project)?
        .into_iter()
        .filter(|r| services.is_empty() || services.contains(&r.service))
        .map(|r| r.name)
        .collect())
}

async fn follow(
    global: &GlobalArgs,
    project: &str,
    services: &[String],
    printer: &Printer,
    mut seen: HashMap<String, usize>,
) -> anyhow::Result<()> {
    // Container ids by name: one recreated under the same name (watch
    // mode, `up` after a change) has a new log, followed from its start.
    let mut ids: HashMap<String, String> = HashMap::new();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let names = containers(global, project, services)?;
        let records = Store::new(&global.root).containers(project)?;
        let mut out = std::io::stdout().lock();
        for (i, name) in names.iter().enumerate() {
            let path = Store::new(&global.root)
                .container_dir(project, name)
                .join("container.log");
            let entries = read_all(&path).unwrap_or_default();
            let done = seen.entry(name.clone()).or_insert(0);
            if let Some(record) = records.iter().find(|r| r.name == *name)
                && let Some(old) = ids.insert(name.clone(), record.id.clone())
                && old != record.id
            {
                *done = 0;
            }
            // Rotation makes the kept history shorter: start over from it.
            if entries.len() < *done {
                *done = 0;
            }
            for e in &entries[*done..] {
                printer.print(&mut out, i, name, e);
            }
            *done = entries.len();
        }
        out.flush()?;
    }
}

/// Follows the output of every container of the project (attached `up`).
pub async fn follow_all(global: &GlobalArgs, project: &str) -> anyhow::Result<()> {
    let names = containers(global, project, &[])?;
    let printer = Printer {
        width: names.iter().map(String::len).max().unwrap_or(0),
        colour: std::io::IsTerminal::is_terminal(&std::io::stdout()),
        timestamps: false,
    };
    follow(global, project, &[], &printer, HashMap::new()).await
}

pub fn run(global: &GlobalArgs, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let Some(project) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let names = containers(global, &project, &args.services)?;
    let printer = Printer {
        width: names.iter().map(String::len).max().unwrap_or(0),
        colour: !args.no_color && std::io::IsTerminal::is_terminal(&std::io::stdout()),
        timestamps: args.timestamps,
    };
    let mut seen = HashMap::new();
    let mut out = std::io::stdout().lock();
    for (i, name) in names.iter().enumerate() {
        let path = Store::new(&global.root)
            .container_dir(&project, name)
            .join("container.log");
        let entries = read_all(&path)?;
        let shown = match args.tail {
            Some(n) => tail(&entries, n),
            None => &entries[..],
        };
        for e in shown {
            printer.print(&mut out, i, name, e);
        }
        seen.insert(name.clone(), entries.len());
    }
    out.flush()?;
    drop(out);
    if args.follow {
        client::runtime()?.block_on(follow(global, &project, &args.services, &printer, seen))?;
    }
    Ok(ExitCode::SUCCESS)
}
