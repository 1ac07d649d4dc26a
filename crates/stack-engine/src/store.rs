//! The engine's state on disk: one directory per project under
//! `<root>/projects`, one record per container, each written atomically so a
//! crash of `stack` at any point leaves every record whole.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::observed::ContainerState;
use crate::restart::RestartState;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt record {path}: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// How a container last ended, for `ps` and `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    /// `None` when it exited while no supervisor watched it.
    pub code: Option<i32>,
    pub oom_killed: bool,
    /// Unix milliseconds; for an unknown exit, when it was found gone.
    pub at_ms: u64,
    /// When that run started, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
}

/// How many past runs a record keeps for `inspect`.
pub const KEPT_RUNS: usize = 10;

/// Everything the engine remembers about one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 hex digits, like Docker's; the runtime knows the container by it.
    pub id: String,
    pub name: String,
    pub project: String,
    pub service: String,
    pub number: u32,
    pub config_hash: String,
    pub config: serde_json::Value,
    pub image: String,
    pub image_digest: Option<String>,
    /// Unix milliseconds.
    pub created_ms: u64,
    pub state: ContainerState,
    pub pid: Option<i32>,
    /// The process start time (`/proc/<pid>/stat` field 22), so a reused pid
    /// is never taken for the container.
    pub pid_start_time: Option<u64>,
    pub restart_count: u32,
    pub stopped_by_user: bool,
    pub last_exit: Option<LastExit>,
    /// Made by `stack run`: not a replica of its service, never restarted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_off: bool,
    /// When the current (or last) run started, Unix milliseconds.
    #[serde(default)]
    pub started_ms: Option<u64>,
    /// Where the restart policy stands: backoff and failure streak.
    #[serde(default)]
    pub restart: RestartState,
    /// While restarting: when the next attempt is due, Unix milliseconds.
    #[serde(default)]
    pub next_attempt_ms: Option<u64>,
    /// The last [`KEPT_RUNS`] exits, oldest first.
    #[serde(default)]
    pub history: Vec<LastExit>,
    /// Why the last start failed, as Docker's `State.Error`.
    #[serde(default)]
    pub error: Option<String>,
    /// Why the container is `dead`.
    #[serde(default)]
    pub dead_reason: Option<String>,
}

impl ContainerRecord {
    /// Its process still runs: the same pid with the same start time, so a
    /// reused pid is never taken for it.
    pub fn is_alive(&self) -> bool {
        matches!((self.pid, self.pid_start_time),
            (Some(pid), Some(start)) if stack_runtime::state::is_alive(pid, start))
    }

    /// Records an exit: the last one, and in the kept history.
    pub fn push_exit(&mut self, exit: LastExit) {
        self.last_exit = Some(exit);
        self.history.push(exit);
        let extra = self.history.len().saturating_sub(KEPT_RUNS);
        self.history.drain(..extra);
    }

    /// The recorded state checked against the kernel: a container recorded
    /// as up whose process is gone has exited.
    pub fn live_state(&self) -> ContainerState {
        match self.state {
            _ if self.is_alive() => self.state,
            ContainerState::Created | ContainerState::Restarting | ContainerState::Dead => {
                self.state
            }
            _ => ContainerState::Exited,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

impl Store {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn project_dir(&self, project: &str) -> PathBuf {
        stack_fs::Layout::of_root(&self.root).project(project)
    }

    fn containers_dir(&self, project: &str) -> PathBuf {
        self.project_dir(project).join("containers")
    }

    /// Where a container's bundle, logs and runtime state live.
    pub fn container_dir(&self, project: &str, name: &str) -> PathBuf {
        self.containers_dir(project).join(name)
    }

    pub fn save(&self, record: &ContainerRecord) -> Result<(), StoreError> {
        self.save_with(record, stack_fs::Durability::Synced)
    }

    /// Saves a change of a running container's status (its pid, exits,
    /// restart counts, a user stop): atomically, so a crash of the
    /// supervisor leaves the old record or the new one, but without a sync.
    /// A power loss that undid it also ended the container, which adoption
    /// tells by pid and start time; the syncs would cost each start, exit
    /// and stop milliseconds on the supervisor's few threads.
    pub fn save_status(&self, record: &ContainerRecord) -> Result<(), StoreError> {
        self.save_with(record, stack_fs::Durability::Unsynced)
    }

    fn save_with(
        &self,
        record: &ContainerRecord,
        durability: stack_fs::Durability,
    ) -> Result<(), StoreError> {
        let dir = self.container_dir(&record.project, &record.name);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let path = dir.join("record.json");
        let bytes = serde_json::to_vec_pretty(record).expect("records serialise");
        stack_fs::write_with(&path, &bytes, durability).map_err(|e| StoreError::Io {
            what: e.op,
            path: e.path,
            source: e.source,
        })
    }

    pub fn load(&self, project: &str, name: &str) -> Result<Option<ContainerRecord>, StoreError> {
        let path = self.container_dir(project, name).join("record.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StoreError::Corrupt { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Every container record of `project`, sorted by service and number.
    pub fn containers(&self, project: &str) -> Result<Vec<ContainerRecord>, StoreError> {
        let dir = self.containers_dir(project);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(record) = self.load(project, &name)? {
                out.push(record);
            }
        }
        out.sort_by(|a, b| (&a.service, a.number).cmp(&(&b.service, b.number)));
        Ok(out)
    }

    /// Forgets a container: its record, bundle and logs.
    pub fn remove(&self, project: &str, name: &str) -> Result<(), StoreError> {
        let dir = self.container_dir(project, name);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &dir)(e)),
            _ => Ok(()),
        }
    }

    /// Projects with any state, sorted.
    pub fn projects(&self) -> Result<Vec<String>, StoreError> {
        let dir = stack_fs::Layout::of_root(&self.root).projects();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", &dir)(e)),
        };
        let mut out: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Removes the project's directory once nothing is left in it.
    pub fn forget_project(&self, project: &str) -> Result<(), StoreError> {
        let dir = self.project_dir(project);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &dir)(e)),
            _ => Ok(()),
        }
    }
}

/// A new random container id: 32 random bytes as hex.
pub fn new_container_id() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom(&mut bytes)?;
    Ok(hex::encode(bytes))
}

fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    use std::io::Read;
    fs::File::open("/dev/urandom")?.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(project: &str, service: &str, number: u32) -> ContainerRecord {
        ContainerRecord {
            id: new_container_id().unwrap(),
            name: format!("{project}-{service}-{number}"),
            project: project.into(),
            service: service.into(),
            number,
            config_hash: "v1-x".into(),
            config: serde_json::json!({"image": "busybox"}),
            image: "busybox".into(),
            image_digest: None,
            created_ms: 1,
            state: ContainerState::Running,
            pid: Some(42),
            pid_start_time: Some(7),
            restart_count: 0,
            stopped_by_user: false,
            last_exit: None,
            one_off: false,
            started_ms: None,
            restart: RestartState::default(),
            next_attempt_ms: None,
            history: Vec::new(),
            error: None,
            dead_reason: None,
        }
    }

    #[test]
    fn records_round_trip_and_list_per_project() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.save(&record("a", "web", 2)).unwrap();
        store.save(&record("a", "web", 1)).unwrap();
        store.save(&record("a", "db", 1)).unwrap();
        store.save(&record("b", "web", 1)).unwrap();
        let names: Vec<String> = store
            .containers("a")
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["a-db-1", "a-web-1", "a-web-2"]);
        assert_eq!(store.projects().unwrap(), ["a", "b"]);
        store.remove("a", "a-web-2").unwrap();
        assert_eq!(store.containers("a").unwrap().len(), 2);
        assert_eq!(store.load("a", "a-web-2").unwrap(), None);
        assert_eq!(new_container_id().unwrap().len(), 64);
    }
}
