//! Persisted network state: networks, endpoints (leases and interface names)
//! and published ports, written atomically and guarded by a file lock so that
//! several processes never hand out the same address or name.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};
use crate::types::{Interface, Network, PublishedPort};

/// Per-project bookkeeping.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProjectRecord {
    /// Unique tag in every kernel object name of the project.
    pub tag: String,
    /// Next value of the per-project name counter.
    pub next_counter: u16,
}

/// A network of a project: either its own bridge or a reference to another
/// project's network (`external: true`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum NetworkRecord {
    Owned(Network),
    External { project: String, name: String },
}

/// A connected container: its netns and one lease per network.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub project: String,
    pub netns: PathBuf,
    /// DNS names registered for the container on all its networks.
    pub names: Vec<String>,
    /// Network key (`project/name` of the owning network) → extra aliases.
    pub aliases: BTreeMap<String, Vec<String>>,
    pub interfaces: Vec<Interface>,
    /// Network key of each interface, parallel to `interfaces`.
    pub network_keys: Vec<String>,
    pub ports: Vec<PublishedPort>,
}

/// The whole state file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub projects: BTreeMap<String, ProjectRecord>,
    /// Key: `project/name`.
    pub networks: BTreeMap<String, NetworkRecord>,
    /// Key: container id.
    pub endpoints: BTreeMap<String, EndpointRecord>,
    /// Last address of a container per network key, so a restart keeps it.
    pub previous: BTreeMap<String, BTreeMap<String, Ipv4Addr>>,
}

pub fn network_key(project: &str, name: &str) -> String {
    format!("{project}/{name}")
}

impl State {
    /// The project's record, created with a fresh unique tag if new.
    pub fn project_mut(&mut self, project: &str) -> &mut ProjectRecord {
        if !self.projects.contains_key(project) {
            let tag =
                crate::naming::project_tag(project, self.projects.values().map(|p| p.tag.as_str()));
            self.projects.insert(
                project.to_string(),
                ProjectRecord {
                    tag,
                    next_counter: 0,
                },
            );
        }
        self.projects.get_mut(project).expect("inserted above")
    }

    /// Follows `external` references to the network that owns the bridge.
    pub fn resolve_network(&self, project: &str, name: &str) -> Option<(String, &Network)> {
        let mut key = network_key(project, name);
        for _ in 0..4 {
            match self.networks.get(&key)? {
                NetworkRecord::Owned(n) => return Some((key, n)),
                NetworkRecord::External { project, name } => key = network_key(project, name),
            }
        }
        None
    }

    /// Addresses leased on the network `key` (gateway included).
    pub fn taken_addresses(&self, key: &str, gateway: Ipv4Addr) -> BTreeSet<Ipv4Addr> {
        let mut taken: BTreeSet<Ipv4Addr> = self
            .endpoints
            .values()
            .flat_map(|e| e.network_keys.iter().zip(&e.interfaces))
            .filter(|(k, _)| *k == key)
            .map(|(_, i)| i.address)
            .collect();
        taken.insert(gateway);
        taken
    }

    /// Every interface name recorded anywhere (bridges and host veths).
    pub fn link_names(&self) -> BTreeSet<String> {
        let bridges = self.networks.values().filter_map(|n| match n {
            NetworkRecord::Owned(n) => Some(n.bridge.clone()),
            NetworkRecord::External { .. } => None,
        });
        let veths = self
            .endpoints
            .values()
            .flat_map(|e| e.interfaces.iter().map(|i| i.host_veth.clone()));
        bridges.chain(veths).collect()
    }

    pub fn owned_networks(&self) -> impl Iterator<Item = (&String, &Network)> {
        self.networks.iter().filter_map(|(k, n)| match n {
            NetworkRecord::Owned(n) => Some((k, n)),
            NetworkRecord::External { .. } => None,
        })
    }
}

/// The state file plus its lock file in one directory.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

/// Exclusive hold on the store; released on drop.
pub struct StoreLock {
    _lock: Flock<File>,
}

impl Store {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// Reads the state without the lock: renames make every read see a
    /// whole file. For readers that only observe (DNS refresh).
    pub fn read_unlocked(path: &Path) -> Result<State> {
        let bytes = fs::read(path).map_err(Self::io_err(path))?;
        serde_json::from_slice(&bytes).map_err(|source| NetError::StateCorrupt {
            path: path.to_path_buf(),
            source,
        })
    }

    fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> NetError + '_ {
        move |source| NetError::StateIo {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Takes the cross-process lock. Blocks only while another process holds
    /// it, which is for the few milliseconds of a state update.
    pub fn lock(&self) -> Result<StoreLock> {
        fs::create_dir_all(&self.dir).map_err(Self::io_err(&self.dir))?;
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Self::io_err(&path))?;
        let lock =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| NetError::StateIo {
                path,
                source: errno.into(),
            })?;
        Ok(StoreLock { _lock: lock })
    }

    pub fn load(&self, _lock: &StoreLock) -> Result<State> {
        let path = self.path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| NetError::StateCorrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(NetError::StateIo { path, source: e }),
        }
    }

    /// Writes a temp file, syncs it and renames it over the state file.
    pub fn save(&self, _lock: &StoreLock, state: &State) -> Result<()> {
        let path = self.path();
        let bytes = serde_json::to_vec_pretty(state).expect("state serialises");
        stack_fs::write(&path, &bytes).map_err(NetError::StateWrite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("net"));
        let lock = store.lock().unwrap();
        assert!(store.load(&lock).unwrap().projects.is_empty());
        let mut st = State::default();
        let tag = st.project_mut("p").tag.clone();
        st.previous
            .entry("c".into())
            .or_default()
            .insert("p/n".into(), "10.0.0.2".parse().unwrap());
        store.save(&lock, &st).unwrap();
        let back = store.load(&lock).unwrap();
        assert_eq!(back.projects["p"].tag, tag);
        assert_eq!(
            back.previous["c"]["p/n"],
            "10.0.0.2".parse::<Ipv4Addr>().unwrap()
        );
        assert!(!dir.path().join("net/state.json.tmp").exists());
    }

    #[test]
    fn distinct_projects_get_distinct_tags() {
        let mut st = State::default();
        let a = st.project_mut("a").tag.clone();
        let b = st.project_mut("b").tag.clone();
        assert_ne!(a, b);
        assert_eq!(st.project_mut("a").tag, a);
    }
}
