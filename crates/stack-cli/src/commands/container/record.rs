//! What `stack` remembers about a single container: one JSON record per
//! container under `<root>/containers/<id>/`, written atomically, and a name
//! index (`<root>/containers/names/<name>`, created exclusively) that keeps
//! names unique without a daemon.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use stack_runtime::state::is_alive;

/// The network a container is on (`--network`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NetworkKind {
    /// The default bridge of single containers (Docker's `docker0`).
    #[default]
    Bridge,
    /// The host's network namespace.
    Host,
    /// A namespace with only `lo`.
    None,
}

impl NetworkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkKind::Bridge => "bridge",
            NetworkKind::Host => "host",
            NetworkKind::None => "none",
        }
    }
}

/// The container's state as `docker ps` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Created,
    Running,
    Paused,
    Exited,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Exited => "exited",
        }
    }
}

/// A `-v` mount as recorded for `inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRecord {
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// `bind` or `volume`.
    pub kind: String,
}

/// Everything about one container that outlives the command that made it.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 64 hex digits, like Docker's; the runtime and the network know it by it.
    pub id: String,
    pub name: String,
    /// The image as the user named it, and what it resolved to.
    pub image: String,
    pub image_id: String,
    pub entrypoint: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: String,
    pub hostname: String,
    pub tty: bool,
    pub interactive: bool,
    pub detached: bool,
    pub auto_remove: bool,
    pub network: NetworkKind,
    /// `-p` as given, for `inspect`; the published ports themselves are in
    /// the network state.
    pub port_specs: Vec<String>,
    pub mounts: Vec<MountRecord>,
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub pids_limit: Option<i64>,
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub stop_signal: i32,
    /// Unix milliseconds.
    pub created_ms: u64,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    /// The container's init, known by pid and start time (a reused pid is
    /// never taken for it).
    pub pid: Option<i32>,
    pub pid_start_time: Option<u64>,
    /// The process that waits for a detached container and records its exit.
    pub monitor_pid: Option<i32>,
    pub monitor_start_time: Option<u64>,
    /// Set once the container ran and ended; `None` while it runs.
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    /// Why it could not run, when it could not.
    pub error: Option<String>,
}

impl Record {
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    pub fn is_alive(&self) -> bool {
        matches!((self.pid, self.pid_start_time), (Some(p), Some(s)) if is_alive(p, s))
    }

    pub fn monitor_alive(&self) -> bool {
        matches!((self.monitor_pid, self.monitor_start_time), (Some(p), Some(s)) if is_alive(p, s))
    }

    /// The state from the kernel, not from the file: a process that is gone
    /// has exited whatever was written, and a frozen cgroup is paused. One
    /// that just ended counts as running until its monitor has recorded the
    /// exit (as Docker's does until containerd reports it), so that `kill`
    /// then `ls` or `inspect` never shows an exit without its code.
    pub fn live_state(&self, runtime_root: &Path) -> State {
        let exit_pending = self.pid.is_some()
            && self.exit_code.is_none()
            && self.error.is_none()
            && self.monitor_alive();
        if self.is_alive() || exit_pending {
            let paused = stack_runtime::Container::load(runtime_root, &self.id)
                .map(|c| c.status() == stack_runtime::Status::Paused)
                .unwrap_or(false);
            return if paused {
                State::Paused
            } else {
                State::Running
            };
        }
        if self.pid.is_none() && self.exit_code.is_none() && self.error.is_none() {
            State::Created
        } else {
            State::Exited
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// The records of single containers under one root.
#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    pub fn new(root: &Path) -> Self {
        Self {
            dir: root.join("containers"),
        }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn names(&self) -> PathBuf {
        self.dir.join("names")
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir(id).join("container.json")
    }

    /// Takes `name` for `id`; fails when another container has it.
    pub fn claim_name(&self, name: &str, id: &str) -> anyhow::Result<()> {
        let names = self.names();
        fs::create_dir_all(&names).with_context(|| format!("cannot create {}", names.display()))?;
        let path = names.join(name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                io::Write::write_all(&mut f, id.as_bytes())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let other = fs::read_to_string(&path).unwrap_or_default();
                // A name left by a container whose record is gone (a crash
                // between the two) is free again.
                if !other.is_empty() && !self.path(&other).exists() {
                    let _ = fs::remove_file(&path);
                    return self.claim_name(name, id);
                }
                let short: String = other.chars().take(12).collect();
                bail!(
                    "the container name \"/{name}\" is already in use by container {short}: remove it or choose another name"
                )
            }
            Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
    }

    pub fn release_name(&self, name: &str, id: &str) {
        let path = self.names().join(name);
        if fs::read_to_string(&path).is_ok_and(|owner| owner == id) {
            let _ = fs::remove_file(path);
        }
    }

    /// Writes the record; `create` makes its directory, otherwise a record
    /// whose directory is gone (removed meanwhile) stays gone.
    pub fn save(&self, record: &Record, create: bool) -> anyhow::Result<()> {
        let dir = self.dir(&record.id);
        if create {
            fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        } else if !dir.exists() {
            return Ok(());
        }
        let path = self.path(&record.id);
        let bytes = serde_json::to_vec_pretty(record).expect("records serialise");
        replace(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn load(&self, id: &str) -> anyhow::Result<Option<Record>> {
        let path = self.path(id);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("corrupt record {}", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Every container, newest first.
    pub fn list(&self) -> anyhow::Result<Vec<Record>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", self.dir.display())),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_id(&name) {
                continue;
            }
            if let Some(r) = self.load(&name)? {
                out.push(r);
            }
        }
        out.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// A container by name, full id or unique id prefix, as Docker finds them.
    pub fn find(&self, key: &str) -> anyhow::Result<Record> {
        let key = key.strip_prefix('/').unwrap_or(key);
        if let Ok(id) = fs::read_to_string(self.names().join(key))
            && let Some(r) = self.load(&id)?
        {
            return Ok(r);
        }
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<Record> = self
                .list()?
                .into_iter()
                .filter(|r| r.id.starts_with(key))
                .collect();
            match hits.len() {
                1 => return Ok(hits.into_iter().next().expect("one hit")),
                0 => {}
                _ => bail!("multiple containers match the id prefix {key:?}: give more digits"),
            }
        }
        bail!("no such container: {key}")
    }

    /// Forgets a container: its record, spec, logs and name.
    pub fn remove(&self, record: &Record) -> anyhow::Result<()> {
        self.release_name(&record.name, &record.id);
        let dir = self.dir(&record.id);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", dir.display()))
            }
            _ => Ok(()),
        }
    }
}

/// Replaces `path` through a temporary file and a rename, so a reader (or
/// a crash of `stack`) never sees half a file. Not synced: these files are
/// written on the path from `run` to the program's first output, where an
/// fsync costs ~10 ms each, and after a power loss the container they
/// describe is gone anyway.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    stack_fs::write_with(path, bytes, stack_fs::Durability::Unsynced).map_err(|e| e.source)
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Docker-style generated names: an adjective and a surname-like noun.
pub fn generated_name(id: &str) -> String {
    const LEFT: [&str; 16] = [
        "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
        "nifty", "proud", "quiet", "sharp", "tender", "witty",
    ];
    const RIGHT: [&str; 16] = [
        "babbage", "curie", "dijkstra", "euler", "fermat", "gauss", "hopper", "knuth", "lovelace",
        "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak",
    ];
    let n = u32::from_str_radix(&id[..8], 16).unwrap_or(0) as usize;
    format!("{}_{}_{}", LEFT[n % 16], RIGHT[(n / 16) % 16], &id[8..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_freed_by_removal() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::new(dir.path());
        let id_a = "a".repeat(64);
        let id_b = "b".repeat(64);
        records.claim_name("web", &id_a).unwrap();
        // Without a record, the name counts as left over by a crash.
        std::fs::create_dir_all(records.dir(&id_a)).unwrap();
        std::fs::write(records.path(&id_a), b"{}").unwrap();
        let err = records.claim_name("web", &id_b).unwrap_err().to_string();
        assert!(
            err.contains("already in use by container aaaaaaaaaaaa"),
            "{err}"
        );
        records.release_name("web", &id_a);
        records.claim_name("web", &id_b).unwrap();
    }

    #[test]
    fn an_exit_counts_once_the_monitor_has_recorded_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id() as i32;
        child.wait().unwrap();
        let me = std::process::id() as i32;
        let mut r = Record {
            pid: Some(gone),
            pid_start_time: Some(1),
            monitor_pid: Some(me),
            monitor_start_time: stack_runtime::state::proc_stat(me).map(|s| s.start_time),
            ..Record::default()
        };
        assert_eq!(r.live_state(dir.path()), State::Running);
        r.exit_code = Some(137);
        assert_eq!(r.live_state(dir.path()), State::Exited);
        r.exit_code = None;
        r.monitor_pid = None;
        assert_eq!(r.live_state(dir.path()), State::Exited, "the monitor died");
        r.pid = None;
        assert_eq!(r.live_state(dir.path()), State::Created);
    }

    #[test]
    fn generated_names_are_stable() {
        let id = format!("0000001f{}", "0".repeat(56));
        assert_eq!(generated_name(&id), "witty_curie_0000");
    }
}
