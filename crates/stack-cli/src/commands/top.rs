//! `stack top`: the processes of each running container (every pid of its
//! cgroup), in `ps -ef`'s columns as `docker compose top` prints them.

use std::process::ExitCode;

use clap::Args;
use stack_engine::api::Records;
use stack_runtime::Container;

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Only these services.
    pub services: Vec<String>,
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub ppid: i32,
    pub tty_nr: u64,
    /// User plus system time, in clock ticks.
    pub cpu_ticks: u64,
    /// Since boot, in clock ticks.
    pub start_ticks: u64,
    pub comm: String,
}

/// A `/proc/<pid>/stat` line as `top` needs it, parsed by `procfs` (the
/// name may hold spaces and parens); `row` reads the same through
/// `procfs::process::Process`.
#[cfg(test)]
fn parse_stat(line: &str) -> Option<Stat> {
    use procfs::FromRead;
    from_procfs(procfs::process::Stat::from_read(line.as_bytes()).ok()?)
}

fn from_procfs(stat: procfs::process::Stat) -> Option<Stat> {
    Some(Stat {
        ppid: stat.ppid,
        tty_nr: u64::try_from(stat.tty_nr).ok()?,
        cpu_ticks: stat.utime + stat.stime,
        start_ticks: stat.starttime,
        comm: stat.comm,
    })
}

/// `[DD-]HH:MM:SS` of CPU time, as ps prints TIME.
pub fn cpu_time(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// `pts/N` for a pty, `?` for none (what ps shows for TTY).
pub fn tty_name(tty_nr: u64) -> String {
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        0 => "?".into(),
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 => format!("tty{minor}"),
        _ => format!("{major}:{minor}"),
    }
}

fn boot_time() -> u64 {
    procfs::boot_time_secs().unwrap_or(0)
}

fn user_name(uid: u32, passwd: &str) -> String {
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == uid.to_string())
        .map_or(uid.to_string(), |f| f[0].to_owned())
}

fn row(pid: i32, passwd: &str, ticks: u64, boot: u64, now: u64) -> Option<[String; 8]> {
    let process = procfs::process::Process::new(pid).ok()?;
    let stat = from_procfs(process.stat().ok()?)?;
    let uid = process.status().ok()?.ruid;
    let cmdline = process.cmdline().unwrap_or_default();
    let cmd = if cmdline.is_empty() {
        format!("[{}]", stat.comm)
    } else {
        cmdline.join(" ")
    };
    let started = boot + stat.start_ticks / ticks;
    let elapsed = now.saturating_sub(started).max(1);
    let cpu_secs = stat.cpu_ticks / ticks;
    let c = (stat.cpu_ticks * 100 / ticks) / elapsed;
    let stime = {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(started);
        let text = humantime::format_rfc3339_seconds(t).to_string();
        text.get(11..16).unwrap_or("?").to_owned()
    };
    Some([
        user_name(uid, passwd),
        pid.to_string(),
        stat.ppid.to_string(),
        c.to_string(),
        stime,
        tty_name(stat.tty_nr),
        cpu_time(cpu_secs),
        cmd,
    ])
}

pub fn run(global: &GlobalArgs, args: TopArgs) -> anyhow::Result<ExitCode> {
    let Some(project) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    // SAFETY: sysconf has no preconditions.
    let ticks = (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as u64;
    let boot = boot_time();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let mut first = true;
    for record in Records::new(&global.root).containers(&project)? {
        if !args.services.is_empty() && !args.services.contains(&record.service) {
            continue;
        }
        if !record.is_alive() {
            continue;
        }
        let Ok(container) = Container::load(
            &stack_fs::Layout::of_root(&global.root).runtime(),
            &record.id,
        ) else {
            continue;
        };
        let mut pids = container.pids().unwrap_or_default();
        pids.sort_unstable();
        let mut rows =
            vec![["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"].map(str::to_owned)];
        rows.extend(
            pids.iter()
                .filter_map(|&p| row(p, &passwd, ticks, boot, now)),
        );
        if !first {
            println!();
        }
        first = false;
        println!("{}", record.name);
        crate::table::print(&rows);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_with_odd_names() {
        let line = "42 (my (odd) prog) S 7 42 42 34816 42 4194560 100 0 0 0 150 50 0 0 20 0 1 0 12345 3133440 411 18446744073709551615 1 2 3 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 4 5 6 7 8 9 10 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            s,
            Stat {
                ppid: 7,
                tty_nr: 34816,
                cpu_ticks: 200,
                start_ticks: 12345,
                comm: "my (odd) prog".into(),
            }
        );
        assert_eq!(tty_name(34816), "pts/0");
        assert_eq!(tty_name(0), "?");
    }

    #[test]
    fn cpu_time_as_ps_prints_it() {
        assert_eq!(cpu_time(0), "00:00:00");
        assert_eq!(cpu_time(3725), "01:02:05");
        assert_eq!(cpu_time(90061), "1-01:01:01");
    }
}
