//! `stack container logs [-f]`: what a container wrote, from the log its
//! supervisor keeps; `-f` follows until the container has exited.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use stack_engine::api::logs::{Entry, Stream, read_all, tail};

use stack_engine::api::ContainerState;
use stack_engine::api::Records;

use super::found;
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new output until the container exits.
    #[arg(short, long)]
    pub follow: bool,
    /// Show a timestamp before each line.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only the last N lines (`all` for every line).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    pub container: String,
}

fn print(entry: &Entry, timestamps: bool) {
    let prefix = if timestamps {
        let at = UNIX_EPOCH + Duration::from_nanos(entry.time_ns as u64);
        format!("{} ", humantime::format_rfc3339_nanos(at))
    } else {
        String::new()
    };
    // Output goes where the container sent it, as `docker logs` does.
    let _ = match entry.stream {
        Stream::Stdout => write!(std::io::stdout().lock(), "{prefix}{}", entry.log),
        Stream::Stderr => write!(std::io::stderr().lock(), "{prefix}{}", entry.log),
    };
}

pub fn run(global: &GlobalArgs, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let record = found::find(global, &args.container)?;
    let path = found::dir(global, &record).join("container.log");
    let store = Records::new(&global.root);
    let entries = read_all(&path).unwrap_or_default();
    let shown = match args.tail.as_str() {
        "all" => &entries[..],
        n => tail(
            &entries,
            n.parse()
                .map_err(|_| anyhow::anyhow!("invalid --tail {n:?}: expected a number or all"))?,
        ),
    };
    for e in shown {
        print(e, args.timestamps);
    }
    let _ = std::io::stdout().flush();
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Follow from the end of what was printed: new complete lines as they
    // come, until the container (and its monitor) are gone.
    let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    loop {
        // Up, or about to come back by its restart policy.
        let running = store
            .load(&record.project, &record.name)?
            .is_some_and(|r| r.is_alive() || r.live_state() == ContainerState::Restarting);
        if let Ok(mut file) = File::open(&path) {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            if len < offset {
                // Rotated: start at the top of the new file.
                offset = 0;
            }
            file.seek(SeekFrom::Start(offset))?;
            let mut reader = BufReader::new(file);
            let mut line = String::new();
            while reader.read_line(&mut line)? > 0 {
                if !line.ends_with('\n') {
                    break;
                }
                offset += line.len() as u64;
                if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                    print(&e, args.timestamps);
                }
                line.clear();
            }
            let _ = std::io::stdout().flush();
        }
        if !running {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
