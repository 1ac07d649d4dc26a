//! Resource usage of a running container, as `stack stats` shows it: CPU
//! time, memory, pids and block I/O from its cgroup, network bytes from the
//! interfaces of its network namespace (`/proc/PID/net/dev`, read through
//! its process).

use std::path::Path;
use std::time::Instant;

use stack_runtime::Container;

#[derive(Debug, Clone)]
pub struct Sample {
    pub id: String,
    pub at: Instant,
    pub cpu_ns: u64,
    /// Usage without the page cache that can be dropped (Docker subtracts
    /// inactive file pages too).
    pub memory_usage: u64,
    /// The cgroup's limit, or the host's memory when there is none.
    pub memory_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("container {id}: {source}")]
    Runtime {
        id: String,
        #[source]
        source: stack_runtime::Error,
    },
}

/// Reads one sample of the container `id` known to the runtime at
/// `runtime_root`.
pub fn sample(runtime_root: &Path, id: &str) -> Result<Sample, StatsError> {
    let err = |source| StatsError::Runtime {
        id: id.to_owned(),
        source,
    };
    let container = Container::load(runtime_root, id).map_err(err)?;
    let at = Instant::now();
    let stats = container.stats().map_err(err)?;
    let inactive = container
        .cgroup()
        .dir("memory")
        .and_then(|d| std::fs::read_to_string(d.join("memory.stat")).ok())
        .map(|text| inactive_file(&text))
        .unwrap_or(0);
    let (net_rx, net_tx) = std::fs::read_to_string(format!("/proc/{}/net/dev", container.pid()))
        .map(|text| net_bytes(&text))
        .unwrap_or((0, 0));
    Ok(Sample {
        id: id.to_owned(),
        at,
        cpu_ns: stats.cpu_usage_ns,
        memory_usage: stats.memory_usage.saturating_sub(inactive),
        memory_limit: stats.memory_limit.unwrap_or_else(host_memory),
        net_rx,
        net_tx,
        block_read: stats.io_read_bytes,
        block_write: stats.io_write_bytes,
        pids: stats.pids_current,
    })
}

/// CPU use between two samples, in percent of one core (Docker's figure).
pub fn cpu_percent(before: &Sample, after: &Sample) -> f64 {
    let wall = after.at.duration_since(before.at).as_nanos() as f64;
    if wall <= 0.0 {
        return 0.0;
    }
    after.cpu_ns.saturating_sub(before.cpu_ns) as f64 * 100.0 / wall
}

/// `total_inactive_file` (v1) or `inactive_file` (v2) of a `memory.stat`.
pub fn inactive_file(stat: &str) -> u64 {
    let value = |key: &str| {
        stat.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
    };
    value("total_inactive_file")
        .or_else(|| value("inactive_file"))
        .unwrap_or(0)
}

/// Received and sent bytes over every interface but loopback, from the
/// text of `/proc/net/dev`.
pub fn net_bytes(dev: &str) -> (u64, u64) {
    let mut rx = 0;
    let mut tx = 0;
    for line in dev.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        if fields.len() >= 9 {
            rx += fields[0];
            tx += fields[8];
        }
    }
    (rx, tx)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn network_bytes_leave_out_loopback() {
        let dev = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0:    2048      20    0    0    0     0          0         0      512       5    0    0    0     0       0          0
";
        assert_eq!(net_bytes(dev), (2048, 512));
    }

    #[test]
    fn cpu_percent_is_of_one_core() {
        let at = Instant::now();
        let s = |cpu_ns, at| Sample {
            id: "x".into(),
            at,
            cpu_ns,
            memory_usage: 0,
            memory_limit: 0,
            net_rx: 0,
            net_tx: 0,
            block_read: 0,
            block_write: 0,
            pids: 0,
        };
        let pct = cpu_percent(&s(0, at), &s(250_000_000, at + Duration::from_millis(500)));
        assert!((pct - 50.0).abs() < 1e-9, "{pct}");
        assert_eq!(inactive_file("cache 5\ntotal_inactive_file 4096\n"), 4096);
    }
}
