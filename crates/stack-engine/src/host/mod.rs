//! The real host: performs plans with the image store, the network manager
//! and the container runtime, and supervises what it started.
//!
//! One `Host` serves one project at a time; it lives in that project's
//! supervisor process, which is the parent (subreaper) of its containers so
//! that it learns every exit code.

mod adopt;
mod anonymous;
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
use crate::monitoring::{Event, MonitorHandle};
use crate::observed::{ContainerState, Observed, ObservedBuild, ObservedContainer};
use crate::reconcile::ReconcileOptions;
use crate::store::{ContainerRecord, Store, StoreError};

pub use create::CreateError;
pub use driver::HostDriver;
pub use launch::{backoff, restart_on_unhealthy, restart_policy};
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
    /// Where build networks (`RUN` on the default network) take subnets.
    pub build_net: NetOptions,
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

    /// Where everything of this host lives.
    pub fn layout(&self) -> stack_fs::Layout {
        stack_fs::Layout::new(&self.config.root, &self.config.run_dir)
    }

    fn runtime_root(&self) -> PathBuf {
        self.layout().runtime()
    }

    fn volume_dir(&self, name: &str) -> PathBuf {
        self.layout().volume_data(name)
    }

    /// The form a volume was made from (see `hash::volume_form`), beside
    /// its data.
    fn volume_config_path(&self, name: &str) -> PathBuf {
        self.layout().volume_config(name)
    }

    /// The form a project network was made from (see `hash::network_form`).
    fn network_config_path(&self, key: &str) -> PathBuf {
        self.layout().network_config(&self.project().name, key)
    }

    fn container_dir(&self, name: &str) -> PathBuf {
        self.store.container_dir(&self.project().name, name)
    }

    /// A container whose create or removal was interrupted, to be made
    /// again. Its record is written ahead (so that `down` finds what it
    /// holds) and `config.json` is the create's last step, so a created
    /// container without one is half-made; a removal detaches the network
    /// (its namespace goes) before it drops the record, so a container
    /// that is not running and whose network namespace is gone is
    /// half-removed and could never start.
    /// The containers [`Host::observe`] leaves out as half-made: `up`
    /// makes them again, `down` must take them away itself.
    pub fn half_made(&self) -> Vec<String> {
        let project = self.project();
        self.store
            .containers(&project.name)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| self.is_half_made(r))
            .map(|r| r.name)
            .collect()
    }

    fn is_half_made(&self, record: &ContainerRecord) -> bool {
        let config = self.container_dir(&record.name).join("config.json");
        if !config.exists() {
            return record.state == ContainerState::Created && record.pid.is_none();
        }
        // A single container that ended gave its network back
        // (`release_network`): its namespace is gone on purpose.
        if record.is_alive()
            || (crate::single::is_single(&record.project) && record.state == ContainerState::Exited)
        {
            return false;
        }
        let Ok(spec) = oci_spec::runtime::Spec::load(&config) else {
            return false;
        };
        spec.linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
            .filter(|ns| ns.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
            .filter_map(|ns| ns.path().as_ref())
            .any(|path| !path.exists())
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
            // A half-made container is made again (`create` rolls back
            // what the interrupted one left).
            if self.is_half_made(&record) {
                continue;
            }
            // A frozen container's monitor still sees it running; its
            // record says it is paused.
            let state = if record.state == ContainerState::Paused && record.is_alive() {
                ContainerState::Paused
            } else {
                self.state_of(&record)
            };
            let list = if record.one_off {
                &mut observed.one_offs
            } else {
                &mut observed.containers
            };
            list.push(ObservedContainer {
                state,
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
                if let Some(form) = read_form(&self.network_config_path(key)) {
                    observed.network_configs.insert(name.clone(), form);
                }
                observed.networks.insert(name);
            }
        }
        for key in project.volumes.keys() {
            let name = crate::reconcile::volume_name(&project, key);
            if self.volume_dir(&name).exists() {
                if let Some(form) = read_form(&self.volume_config_path(&name)) {
                    observed.volume_configs.insert(name.clone(), form);
                }
                observed.volumes.insert(name);
            }
        }
        for (name, service) in &project.services {
            let Some(image) = crate::reconcile::service_image(&project.name, name, service) else {
                continue;
            };
            if let Ok(id) = self.images.resolve(&image) {
                observed.images.insert(image, id.as_str().to_owned());
            }
        }
        Ok(observed)
    }

    /// Adds to `observed` the build inputs of the services whose build a
    /// decision of `options` depends on: what they are now and what their
    /// image was built from.
    pub fn observe_builds(&self, observed: &mut Observed, options: &ReconcileOptions) {
        let project = self.project();
        for (name, service) in &project.services {
            if !options.services.as_ref().is_none_or(|s| s.contains(name))
                || !crate::reconcile::wants_fingerprint(service, options)
            {
                continue;
            }
            let Some(image) = crate::reconcile::service_image(&project.name, name, service) else {
                continue;
            };
            let current = stack_build::service::options(
                &project.name,
                name,
                service,
                &self.build_invocation(),
            )
            .ok()
            .and_then(|o| stack_build::service::fingerprint(&o).ok());
            observed.builds.insert(
                name.clone(),
                ObservedBuild {
                    current,
                    built: stack_build::service::built_from(&self.config.root, &image),
                },
            );
        }
    }

    /// How this host builds a service's image.
    pub(crate) fn build_invocation(&self) -> stack_build::service::Invocation {
        stack_build::service::Invocation {
            root: self.config.root.clone(),
            extra_args: Default::default(),
            no_cache: false,
            init_binary: self.config.init_binary.clone(),
            net: stack_build::network::NetConfig {
                run_dir: self.config.run_dir.clone(),
                options: self.config.build_net.clone(),
            },
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|v| v.parse().ok()),
            secrets: Default::default(),
            defined_secrets: self.project().secrets.clone(),
        }
    }

    fn network_exists(&self, key: &str) -> bool {
        let state = self.layout().net();
        state.exists() && self.known_networks().iter().any(|n| n == key)
    }

    fn known_networks(&self) -> Vec<String> {
        let path = self.layout().network_list(&self.project().name);
        std::fs::read_to_string(path)
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    fn remember_networks(&self, keys: &[String]) -> std::io::Result<()> {
        let path = self.layout().network_list(&self.project().name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        stack_fs::write(&path, keys.join("\n").as_bytes()).map_err(|e| e.source)
    }

    pub fn root(&self) -> &Path {
        &self.config.root
    }
}

/// A kept form, or `None` when there is none (made by an older version) or
/// it cannot be read: the network or volume is then taken as unchanged, as
/// compose takes one without its config-hash label.
fn read_form(path: &Path) -> Option<serde_json::Value> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Keeps the form a network or volume was made from, durably, so that the
/// next `up` sees a change.
fn keep_form(path: &Path, form: &serde_json::Value) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = serde_json::to_vec(form).expect("JSON values serialise");
    stack_fs::write(path, &bytes).map_err(|e| e.source)
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
