//! The real host: performs plans with the image store, the network manager
//! and the container runtime, and supervises what it started.
//!
//! One `Host` serves one project at a time; it lives in that project's
//! supervisor process, which is the parent (subreaper) of its containers so
//! that it learns every exit code.

mod adopt;
pub(crate) mod create;
pub(crate) mod driver;
mod keeper;
mod launch;
pub(crate) mod ops;
mod probe;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use stack_net::{NetOptions, NetworkManager};
use stack_spec::Project;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::health::Health;
use crate::observed::{ContainerState, Observed, ObservedContainer};
use crate::store::{ContainerRecord, Store, StoreError};
use crate::supervise::{Event, MonitorHandle};

pub use adopt::begin_for;
pub use create::{CreateError, port_mappings};
pub use driver::{DriverError, HostDriver};
pub use launch::{LogLine, backoff, restart_on_unhealthy, restart_policy};
pub use ops::{Attach, OpsError, stdio_of};

/// Where things live and which binary is the containers' init stage.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub root: PathBuf,
    pub run_dir: PathBuf,
    /// The `stack` binary, for the processes the host starts from it (the log keeper).
    pub stack_binary: PathBuf,
    /// The containers' init stage, for every create, exec and probe: a
    /// binary whose `main` calls `stack_runtime::init_main()` first.
    pub init_binary: PathBuf,
    pub net: NetOptions,
    pub registries: stack_image::registry_config::RegistriesConfig,
}

/// A container this host started and watches.
struct Watched {
    monitor: MonitorHandle,
    health: Option<watch::Receiver<Health>>,
    prober: Option<tokio::task::JoinHandle<()>>,
}

pub struct Host {
    config: HostConfig,
    store: Store,
    images: stack_image::store::Store,
    net: NetworkManager,
    project: RwLock<Arc<Project>>,
    watched: Mutex<HashMap<String, Watched>>,
    /// Where one-off containers about to start take their stdio from.
    attach: Mutex<HashMap<String, Attach>>,
    /// Duplicates of the read ends of each container's output pipes (see
    /// `keeper`): a container's pipe never loses its last reader.
    kept_pipes: Mutex<HashMap<String, keeper::Kept>>,
    events: broadcast::Sender<Event>,
    logs: broadcast::Sender<launch::LogLine>,
    epoch: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("image store: {0}")]
    Images(#[from] stack_image::store::StoreError),
}

impl Host {
    pub fn new(config: HostConfig, project: Project) -> Result<Arc<Self>, HostError> {
        let images = stack_image::store::Store::open(&config.root)?;
        let net = NetworkManager::new(&config.root, &config.run_dir, config.net.clone());
        let (events, _) = broadcast::channel(1024);
        let (logs, _) = broadcast::channel(4096);
        Ok(Arc::new(Self {
            store: Store::new(&config.root),
            images,
            net,
            project: RwLock::new(Arc::new(project)),
            watched: Mutex::new(HashMap::new()),
            attach: Mutex::new(HashMap::new()),
            kept_pipes: Mutex::new(HashMap::new()),
            events,
            logs,
            epoch: Instant::now(),
            config,
        }))
    }

    pub fn project(&self) -> Arc<Project> {
        self.project
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Switches to a newly loaded version of the stack file.
    pub fn set_project(&self, project: Project) {
        *self.project.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(project);
    }

    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    pub fn logs(&self) -> broadcast::Receiver<launch::LogLine> {
        self.logs.subscribe()
    }

    pub fn records(&self) -> &Store {
        &self.store
    }

    fn runtime_root(&self) -> PathBuf {
        self.config.root.join("runtime")
    }

    fn volume_dir(&self, name: &str) -> PathBuf {
        self.config.root.join("volumes").join(name).join("_data")
    }

    fn container_dir(&self, name: &str) -> PathBuf {
        self.store.container_dir(&self.project().name, name)
    }

    fn record(&self, name: &str) -> Result<ContainerRecord, CreateError> {
        self.store
            .load(&self.project().name, name)?
            .ok_or_else(|| CreateError::NoRecord(name.to_owned()))
    }

    /// The live state of a container: its monitor's view when watched, else
    /// the record checked against the kernel (pid and start time).
    pub fn state_of(&self, record: &ContainerRecord) -> ContainerState {
        if let Some(w) = self
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&record.name)
        {
            return w.monitor.snapshot.borrow().state;
        }
        record.live_state()
    }

    /// What exists now, for the reconciler.
    pub fn observe(&self) -> Result<Observed, HostError> {
        let project = self.project();
        let mut observed = Observed::default();
        for record in self.store.containers(&project.name)? {
            if record.one_off {
                continue;
            }
            observed.containers.push(ObservedContainer {
                state: self.state_of(&record),
                name: record.name,
                service: record.service,
                number: record.number,
                config_hash: record.config_hash,
                config: record.config,
                image_digest: record.image_digest,
            });
        }
        for key in project
            .networks
            .keys()
            .chain(std::iter::once(&"default".to_owned()))
        {
            let name = crate::reconcile::network_name(&project, key);
            if self.network_exists(key) {
                observed.networks.insert(name);
            }
        }
        for key in project.volumes.keys() {
            let name = crate::reconcile::volume_name(&project, key);
            if self.volume_dir(&name).exists() {
                observed.volumes.insert(name);
            }
        }
        for service in project.services.values() {
            let Some(image) = &service.image else {
                continue;
            };
            if let Ok(id) = self.images.resolve(image) {
                observed
                    .images
                    .insert(image.clone(), id.as_str().to_owned());
            }
        }
        Ok(observed)
    }

    fn network_exists(&self, key: &str) -> bool {
        let state = self.config.root.join("net");
        state.exists() && self.known_networks().iter().any(|n| n == key)
    }

    fn known_networks(&self) -> Vec<String> {
        let path = self
            .config
            .root
            .join("projects")
            .join(&self.project().name)
            .join("networks");
        std::fs::read_to_string(path)
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    fn remember_networks(&self, keys: &[String]) -> std::io::Result<()> {
        let dir = self.config.root.join("projects").join(&self.project().name);
        std::fs::create_dir_all(&dir)?;
        stack_fs::write(&dir.join("networks"), keys.join("\n").as_bytes()).map_err(|e| e.source)
    }

    pub fn root(&self) -> &Path {
        &self.config.root
    }
}

/// Returns the heap a request left free to the kernel: executing a plan for
/// hundreds of containers peaks far above what watching them needs, and
/// glibc keeps freed memory in its arenas otherwise.
pub fn give_back_memory() {
    // SAFETY: malloc_trim only releases free heap pages; it touches no live
    // allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
