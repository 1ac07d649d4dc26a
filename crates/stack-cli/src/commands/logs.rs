//! `stack logs`: the services' output with compose's `service-1  | `
//! prefixes, from the log files the supervisor writes.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use stack_engine::api::Records;
use stack_engine::api::logs::{Entry, read_all, tail};

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
    /// Print the lines without the `service-N | ` prefix.
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Only replica N of the services.
    #[arg(long, value_name = "N")]
    pub index: Option<u32>,
    /// Only lines since this time: RFC 3339, Unix seconds, or a duration
    /// back from now (`10m`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines before this time (same forms as `--since`).
    #[arg(long)]
    pub until: Option<String>,
    /// Only these services.
    pub services: Vec<String>,
}

const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

struct Printer {
    width: usize,
    colour: bool,
    timestamps: bool,
    /// `--no-log-prefix`: the lines as the container wrote them.
    prefix: bool,
}

impl Printer {
    fn print(&self, out: &mut impl Write, index: usize, name: &str, e: &Entry) {
        // Compose pads the names to the longest one plus a space.
        let prefix = format!("{name:<width$} | ", width = self.width + 1);
        let prefix = if !self.prefix {
            String::new()
        } else if self.colour {
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

/// The project's containers (of `services`, when given; replica `index`,
/// when given): their log prefix (`service-N`, as compose prints it) and
/// log file.
fn containers(
    global: &GlobalArgs,
    project: &str,
    services: &[String],
    index: Option<u32>,
) -> anyhow::Result<Vec<(String, std::path::PathBuf)>> {
    let store = Records::new(&global.root);
    Ok(store
        .containers(project)?
        .into_iter()
        .filter(|r| services.is_empty() || services.contains(&r.service))
        .filter(|r| index.is_none_or(|i| r.number == i))
        .map(|r| {
            let path = store.container_dir(project, &r.name).join("container.log");
            (format!("{}-{}", r.service, r.number), path)
        })
        .collect())
}

/// Where following stands in one log: the time of the last line shown and
/// how many lines with exactly that time were shown (times are
/// nanoseconds, so ties are rare but possible). Rotation does not disturb
/// it, unlike a line count.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mark {
    time_ns: u128,
    at_time: usize,
}

impl Mark {
    pub(crate) fn after(entries: &[Entry]) -> Self {
        let Some(last) = entries.last() else {
            return Self::default();
        };
        let at_time = entries
            .iter()
            .rev()
            .take_while(|e| e.time_ns == last.time_ns)
            .count();
        Self {
            time_ns: last.time_ns,
            at_time,
        }
    }

    /// The entries not shown yet.
    pub(crate) fn unseen<'a>(&self, entries: &'a [Entry]) -> &'a [Entry] {
        let start = entries.partition_point(|e| e.time_ns < self.time_ns);
        let same = entries[start..]
            .iter()
            .take_while(|e| e.time_ns == self.time_ns)
            .count();
        let skip = if self.time_ns == 0 {
            0
        } else {
            same.min(self.at_time)
        };
        &entries[start + skip..]
    }
}

async fn follow(
    global: &GlobalArgs,
    project: &str,
    services: &[String],
    index: Option<u32>,
    printer: &Printer,
    mut seen: HashMap<String, Mark>,
    until_ns: Option<u128>,
) -> anyhow::Result<()> {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let list = containers(global, project, services, index)?;
        let mut out = std::io::stdout().lock();
        for (i, (name, path)) in list.iter().enumerate() {
            let entries = read_all(path).unwrap_or_default();
            let mark = seen.entry(name.clone()).or_default();
            for e in mark.unseen(&entries) {
                if until_ns.is_some_and(|u| e.time_ns >= u) {
                    return Ok(());
                }
                printer.print(&mut out, i, name, e);
            }
            *mark = Mark::after(&entries);
        }
        out.flush()?;
        let now = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        if until_ns.is_some_and(|u| now >= u) {
            return Ok(());
        }
    }
}

/// How attached `up` prints the output (`--no-color`, `--no-log-prefix`,
/// `--timestamps`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub no_color: bool,
    pub no_log_prefix: bool,
    pub timestamps: bool,
}

/// Follows the output of the containers of `services` (attached `up`).
pub async fn follow_all(
    global: &GlobalArgs,
    project: &str,
    services: &[String],
    style: Style,
) -> anyhow::Result<()> {
    let list = containers(global, project, services, None)?;
    let printer = Printer {
        width: list.iter().map(|(n, _)| n.len()).max().unwrap_or(0),
        colour: !style.no_color && std::io::IsTerminal::is_terminal(&std::io::stdout()),
        timestamps: style.timestamps,
        prefix: !style.no_log_prefix,
    };
    follow(
        global,
        project,
        services,
        None,
        &printer,
        HashMap::new(),
        None,
    )
    .await
}

pub fn run(global: &GlobalArgs, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let Some(project) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let now = std::time::SystemTime::now();
    let since_ns = args
        .since
        .as_deref()
        .map(|t| super::events::parse_time(t, now))
        .transpose()?;
    let until_ns = args
        .until
        .as_deref()
        .map(|t| super::events::parse_time(t, now))
        .transpose()?;
    let list = containers(global, &project, &args.services, args.index)?;
    let printer = Printer {
        width: list.iter().map(|(n, _)| n.len()).max().unwrap_or(0),
        colour: !args.no_color && std::io::IsTerminal::is_terminal(&std::io::stdout()),
        timestamps: args.timestamps,
        prefix: !args.no_log_prefix,
    };
    let mut seen = HashMap::new();
    let mut out = std::io::stdout().lock();
    for (i, (name, path)) in list.iter().enumerate() {
        let entries = read_all(path)?;
        let window: Vec<Entry> = entries
            .iter()
            .filter(|e| since_ns.is_none_or(|s| e.time_ns >= s))
            .filter(|e| until_ns.is_none_or(|u| e.time_ns < u))
            .cloned()
            .collect();
        let shown = match args.tail {
            Some(n) => tail(&window, n),
            None => &window[..],
        };
        for e in shown {
            printer.print(&mut out, i, name, e);
        }
        seen.insert(name.clone(), Mark::after(&entries));
    }
    out.flush()?;
    drop(out);
    if args.follow {
        client::runtime()?.block_on(follow(
            global,
            &project,
            &args.services,
            args.index,
            &printer,
            seen,
            until_ns,
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
