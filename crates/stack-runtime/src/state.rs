//! Persistent container state (`<root>/<id>/state.json`) and liveness checks.
//!
//! A container is alive when its pid exists, is not a zombie, and has the
//! start time recorded at create: a reused pid is never mistaken for it.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// OCI lifecycle status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn can_start(self) -> bool {
        self == Status::Created
    }
    pub fn can_kill(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }
    /// Without force, only a stopped container may be deleted (runc's rule).
    pub fn can_delete(self, force: bool) -> bool {
        force || self == Status::Stopped
    }
    pub fn can_pause(self) -> bool {
        matches!(self, Status::Created | Status::Running)
    }
    pub fn can_resume(self) -> bool {
        self == Status::Paused
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `state.json` holds: the OCI state plus what the runtime needs later.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    /// Status as last recorded; the live status is [`crate::Container::status`].
    pub status: Status,
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks since boot).
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The cgroup the runtime created (or joined).
    pub cgroup: crate::cgroups::Cgroup,
    /// Whether the runtime created that cgroup (and so removes it on delete).
    pub cgroup_owned: bool,
    /// Docker's default seccomp profile was applied (the spec had none), so
    /// `exec`'d processes get it too.
    #[serde(default)]
    pub default_seccomp: bool,
    pub created: String,
    /// The bundle's config as it was at create, so later edits to it have no effect.
    pub config: Box<oci_spec::runtime::Spec>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `contents` to `path` via a temp file in the same directory and a
/// rename. Not synced: a container does not outlive a power loss, so neither
/// need the files that describe it, and create and start stay fast.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), StateError> {
    stack_fs::write_with(path, contents, stack_fs::Durability::Unsynced).map_err(|e| {
        StateError::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        }
    })
}

impl State {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        let path = Self::path(dir);
        let body = serde_json::to_vec_pretty(self).map_err(|source| StateError::Parse {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &body)
    }

    pub fn load(dir: &Path) -> Result<Self, StateError> {
        let path = Self::path(dir);
        let body = fs::read(&path).map_err(io("read", &path))?;
        serde_json::from_slice(&body).map_err(|source| StateError::Parse { path, source })
    }

    /// The OCI state document (`runc state` output).
    pub fn oci_json(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "annotations": self.annotations,
        });
        if status != Status::Stopped {
            v["pid"] = serde_json::json!(self.pid);
        } else {
            v["pid"] = serde_json::json!(0);
        }
        v
    }
}

/// Parsed bits of `/proc/<pid>/stat` that liveness needs.
#[derive(Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    pub start_time: u64,
}

/// Parses a `/proc/<pid>/stat` line (with `procfs`, which counts fields
/// after the last `)`: a command name may hold spaces and parens).
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    use procfs::FromRead;
    let stat = procfs::process::Stat::from_read(line.as_bytes()).ok()?;
    Some(ProcStat {
        state: stat.state,
        start_time: stat.starttime,
    })
}

pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let stat = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    Some(ProcStat {
        state: stat.state,
        start_time: stat.starttime,
    })
}

/// Whether `pid` is the live (non-zombie) process that started at `start_time`.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    match proc_stat(pid) {
        Some(st) => st.start_time == start_time && st.state != 'Z' && st.state != 'X',
        None => false,
    }
}

/// RFC 3339 UTC timestamp with nanoseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parens_in_name() {
        let line = "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 3133440 411 18446744073709551615 1 2 3 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 4 5 6 7 8 9 10 0";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                state: 'S',
                start_time: 987654
            })
        );
    }

    #[test]
    fn own_process_is_alive() {
        let me = std::process::id() as i32;
        let st = proc_stat(me).unwrap();
        assert!(is_alive(me, st.start_time));
        assert!(!is_alive(me, st.start_time + 1));
    }

    #[test]
    fn status_predicates() {
        assert!(Status::Created.can_start());
        assert!(!Status::Running.can_start());
        assert!(!Status::Running.can_delete(false));
        assert!(Status::Running.can_delete(true));
        assert!(Status::Stopped.can_delete(false));
        assert!(!Status::Stopped.can_kill());
    }

    #[test]
    fn timestamp_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.starts_with("20"));
    }

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
