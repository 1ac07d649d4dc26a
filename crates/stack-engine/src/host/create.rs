//! Making and removing a container's pieces: root filesystem, network
//! namespace and files, OCI spec, record.

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use stack_image::merge::{ServiceProcess, resolve_process};
use stack_net::{AttachRequest, NetworkAttachment, PortMapping, Protocol};
use stack_spec::{NetworkMode, Service};

use super::Host;
use crate::hash::{config_hash, hashed_form};
use crate::observed::ContainerState;
use crate::reconcile::service_networks;
use crate::spec::{self, Bind, DeviceNumbers, SpecInput};
use crate::store::{ContainerRecord, StoreError, new_container_id};

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("no service {0} in the stack file")]
    NoService(String),
    #[error("no record of container {0}")]
    NoRecord(String),
    #[error("service {0} has neither image nor build")]
    NoImage(String),
    #[error("image {image}: {source}")]
    Image {
        image: String,
        #[source]
        source: stack_image::store::StoreError,
    },
    #[error("{0}")]
    Process(#[from] stack_image::merge::MergeError),
    #[error("network: {0}")]
    Net(#[from] stack_net::NetError),
    #[error("{0}")]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("runtime: {0}")]
    Runtime(#[from] stack_runtime::Error),
    #[error("invalid address {0:?}")]
    Address(String),
    /// A setting the loader checks, found bad here (a project saved by
    /// an older `stack`): refused, never defaulted.
    #[error("{key}: {message}")]
    Setting { key: &'static str, message: String },
}

/// What a container is made as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Made {
    /// A service's container (or a single container).
    Service,
    /// `stack run`'s one-off; `use_aliases`: it answers to the service's
    /// name and aliases too.
    OneOff { use_aliases: bool },
}

pub(super) fn setting(key: &'static str) -> impl Fn(String) -> CreateError {
    move |message| CreateError::Setting { key, message }
}

pub(super) fn io<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> CreateError + 'a {
    move |source| CreateError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn device_numbers(path: &str) -> Option<DeviceNumbers> {
    let meta = fs::metadata(path).ok()?;
    let kind = meta.file_type();
    if !kind.is_block_device() && !kind.is_char_device() {
        return None;
    }
    let rdev = meta.rdev();
    Some((
        libc::major(rdev) as i64,
        libc::minor(rdev) as i64,
        kind.is_block_device(),
    ))
}

/// `ports:` as the network crate publishes them: one mapping per entry,
/// `published: "8000-8010"` taking its first port, none for a random one.
pub fn port_mappings(service: &Service) -> Result<Vec<PortMapping>, CreateError> {
    let mut out = Vec::new();
    for port in &service.ports {
        let host_ip = match port.host_ip.as_deref() {
            None | Some("") | Some("0.0.0.0") => None,
            Some(ip) => Some(
                ip.parse::<Ipv4Addr>()
                    .map_err(|_| CreateError::Address(ip.to_owned()))?,
            ),
        };
        let host_port = match port.published.as_deref() {
            None | Some("") => None,
            Some(p) => {
                let first = p.split('-').next().unwrap_or(p);
                Some(
                    first
                        .parse::<u16>()
                        .map_err(|_| CreateError::Address(p.to_owned()))?,
                )
            }
        };
        let protocol = match port.protocol {
            stack_spec::PortProtocol::Udp => Protocol::Udp,
            _ => Protocol::Tcp,
        };
        out.push(PortMapping {
            host_ip,
            host_port,
            container_ports: (port.target, port.target),
            protocol,
        });
    }
    Ok(out)
}

fn service_process(service: &Service) -> ServiceProcess {
    ServiceProcess {
        entrypoint: service.entrypoint.clone(),
        command: service.command.clone(),
        env: service
            .environment
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect(),
        working_dir: service.working_dir.clone(),
        user: service.user.clone(),
    }
}

impl Host {
    pub(super) fn service(&self, name: &str) -> Result<Service, CreateError> {
        self.project()
            .services
            .get(name)
            .cloned()
            .ok_or_else(|| CreateError::NoService(name.to_owned()))
    }

    /// Everything but running it: rootfs, network, files, spec, record.
    pub(super) async fn create(
        &self,
        service_name: &str,
        number: u32,
        name: &str,
    ) -> Result<(), CreateError> {
        let service = self.service(service_name)?;
        self.create_from(service_name, &service, number, name, Made::Service)
            .await
    }

    /// [`Host::create`] from a given configuration of the service (a
    /// one-off container's, with its command and environment).
    pub(super) async fn create_from(
        &self,
        service_name: &str,
        service: &Service,
        number: u32,
        name: &str,
        made: Made,
    ) -> Result<(), CreateError> {
        let one_off = matches!(made, Made::OneOff { .. });
        // A one-off answers to its own name only, unless `--use-aliases`:
        // peers asking for the service never reach it by chance.
        let aliased = !matches!(made, Made::OneOff { use_aliases: false });
        let project = self.project();
        let service = service.clone();
        let image = crate::reconcile::service_image(&project.name, service_name, &service)
            .ok_or_else(|| CreateError::NoImage(service_name.to_owned()))?;
        let image_err = |source| CreateError::Image {
            image: image.clone(),
            source,
        };
        let image_id = self.images.resolve(&image).map_err(image_err)?;
        let image_config = self.images.config(&image_id).map_err(image_err)?;
        // What an interrupted create of the same container left.
        if self.store.load(&project.name, name)?.is_some() {
            self.destroy(name).await?;
        }
        let id = new_container_id().map_err(io("generate an id for", Path::new(name)))?;
        let dir = self.container_dir(name);
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;

        let mut record = ContainerRecord {
            id: id.clone(),
            name: name.to_owned(),
            project: project.name.clone(),
            service: service_name.to_owned(),
            number,
            config_hash: config_hash(&service),
            config: hashed_form(&service),
            image: image.clone(),
            image_digest: Some(image_id.as_str().to_owned()),
            created_ms: now_ms(),
            state: ContainerState::Created,
            pid: None,
            pid_start_time: None,
            restart_count: 0,
            stopped_by_user: false,
            last_exit: None,
            one_off,
            started_ms: None,
            restart: crate::restart::RestartState::default(),
            next_attempt_ms: None,
            history: Vec::new(),
            error: None,
            dead_reason: None,
        };
        // The record goes first so that a crash from here on leaves a
        // container `down` knows to clean up.
        self.store.save(&record)?;
        stack_runtime::fault::point("create-after-record");

        let rootfs = self
            .images
            .prepare_rootfs(&image_id, &id)
            .map_err(image_err)?;
        stack_runtime::fault::point("create-after-rootfs");
        let process = resolve_process(&image_config.config, &service_process(&service))?;
        let hostname = service
            .hostname
            .clone()
            .unwrap_or_else(|| id[..12].to_owned());

        let mut binds = Vec::new();
        let netns = match &service.network_mode {
            None | Some(NetworkMode::Bridge) => {
                let networks = service_networks(&service)
                    .into_iter()
                    .map(|key| {
                        let settings = service.networks.get(&key).cloned().flatten();
                        let ipv4_address =
                            match settings.as_ref().and_then(|s| s.ipv4_address.clone()) {
                                Some(a) => Some(
                                    a.parse::<Ipv4Addr>().map_err(|_| CreateError::Address(a))?,
                                ),
                                None => None,
                            };
                        Ok(NetworkAttachment {
                            network: key,
                            aliases: settings
                                .filter(|_| aliased)
                                .map(|s| s.aliases)
                                .unwrap_or_default(),
                            ipv4_address,
                        })
                    })
                    .collect::<Result<Vec<_>, CreateError>>()?;
                // Checked at load; `host-gateway` was warned about there.
                let extra_hosts = service
                    .extra_hosts
                    .iter()
                    .map(|h| stack_spec::settings::extra_host(h).map_err(setting("extra_hosts")))
                    .filter_map(Result::transpose)
                    .collect::<Result<_, _>>()?;
                let dns = service
                    .dns
                    .iter()
                    .map(|d| stack_spec::settings::parse_ip(d).map_err(setting("dns")))
                    .collect::<Result<_, _>>()?;
                let attachment = self
                    .net
                    .attach(&AttachRequest {
                        project: project.name.clone(),
                        container_id: id.clone(),
                        container_name: name.to_owned(),
                        service: if aliased {
                            service_name.to_owned()
                        } else {
                            String::new()
                        },
                        hostname: Some(hostname.clone()),
                        networks,
                        dns,
                        dns_search: service.dns_search.clone(),
                        extra_hosts,
                    })
                    .await?;
                for (file, content) in [
                    ("resolv.conf", &attachment.resolv_conf),
                    ("hosts", &attachment.hosts),
                    ("hostname", &attachment.hostname),
                ] {
                    let path = dir.join(file);
                    // Made again with every container: on the path to its
                    // first output, where an fsync costs milliseconds.
                    stack_fs::write_with(&path, content.as_bytes(), stack_fs::Durability::Unsynced)
                        .map_err(|e| io(e.op, &path)(e.source))?;
                    binds.push(Bind {
                        source: path,
                        target: format!("/etc/{file}"),
                        read_only: false,
                    });
                }
                Some(attachment.netns)
            }
            Some(NetworkMode::None) => Some(self.net.attach_none(&project.name, &id).await?),
            // Another container's network namespace: join it.
            Some(NetworkMode::Service(parent)) => {
                let records = self.store.containers(&project.name)?;
                let owner = records
                    .iter()
                    .find(|r| r.service == *parent)
                    .ok_or_else(|| {
                        CreateError::NoRecord(format!("a container of service {parent}"))
                    })?;
                Some(self.net.netns_of(&owner.id).await?)
            }
            Some(NetworkMode::Container(other)) => {
                let owner = self
                    .store
                    .load(&project.name, other)?
                    .ok_or_else(|| CreateError::NoRecord(other.clone()))?;
                Some(self.net.netns_of(&owner.id).await?)
            }
            _ => None,
        };
        stack_runtime::fault::point("create-after-attach");
        let mappings = port_mappings(&service)?;
        if !mappings.is_empty() {
            self.net.publish(&id, &mappings).await?;
        }

        let read = |p: &str| fs::read_to_string(rootfs.path.join(p)).unwrap_or_default();
        let (passwd, group) = (read("etc/passwd"), read("etc/group"));
        let volume_dir = |source: Option<&str>, target: &str| -> Option<PathBuf> {
            let dir = match source {
                Some(key) => self.volume_dir(&crate::reconcile::volume_name(&project, key)),
                // Anonymous volumes live and die with the container.
                None => dir
                    .join("anonymous")
                    .join(target.trim_start_matches('/').replace('/', "_")),
            };
            fs::create_dir_all(&dir).ok()?;
            Some(dir)
        };
        // A missing bind source is made as a directory, as Docker does for
        // `-v` and compose for the short syntax (`create_host_path`).
        for v in &service.volumes {
            let create = v.bind.as_ref().is_none_or(|b| b.create_host_path);
            if v.kind == stack_spec::MountType::Bind
                && create
                && let Some(source) = v.source.as_deref()
                && !Path::new(source).exists()
            {
                fs::create_dir_all(source).map_err(io("create", Path::new(source)))?;
            }
        }
        let spec = spec::build(&SpecInput {
            service: &service,
            process: &process,
            rootfs: &rootfs.path,
            hostname: &hostname,
            netns: netns.as_deref(),
            binds,
            cgroup_path: format!("/stack/{}/{name}", project.name),
            passwd: &passwd,
            group: &group,
            volume_dir: &volume_dir,
            device: &device_numbers,
        })?;
        let config = dir.join("config.json");
        let text = serde_json::to_vec_pretty(&spec).expect("specs serialise");
        // The bundle is made again with the container (see above).
        stack_fs::write_with(&config, &text, stack_fs::Durability::Unsynced)
            .map_err(|e| io(e.op, &config)(e.source))?;
        stack_runtime::fault::point("create-after-config");
        record.state = ContainerState::Created;
        self.store.save(&record)?;
        Ok(())
    }

    /// Takes a container away: stops it (grace period, then SIGKILL),
    /// deletes it from the runtime, detaches its network, releases its
    /// root filesystem and forgets it. Each step tolerates what is already
    /// gone, so it also cleans up after a crash.
    pub(super) async fn destroy(&self, name: &str) -> Result<(), CreateError> {
        self.stop(name).await;
        let Some(record) = self.store.load(&self.project().name, name)? else {
            return Ok(());
        };
        let runtime_root = self.runtime_root();
        let id = record.id.clone();
        // Also a half-made container (its creator was killed) goes here,
        // with its cgroup and processes.
        tokio::task::spawn_blocking(move || stack_runtime::Container::discard(&runtime_root, &id))
            .await
            .map_err(|e| CreateError::Io {
                what: "remove",
                path: self.runtime_root(),
                source: std::io::Error::other(e),
            })??;
        stack_runtime::fault::point("destroy-after-discard");
        // Gone for good: its endpoint and the addresses kept for its
        // return go too (a container made again has a new id). Containers
        // that share another's namespace were never attached.
        self.net.forget(&record.id).await?;
        stack_runtime::fault::point("destroy-after-detach");
        // The unmount waits for an RCU grace period, which unmounts on
        // different threads share: off the async threads, so that
        // containers removed together wait for it together.
        let images = self.images.clone();
        let id = record.id.clone();
        tokio::task::spawn_blocking(move || images.release_rootfs(&id))
            .await
            .map_err(|e| CreateError::Io {
                what: "release the root filesystem of",
                path: name.into(),
                source: std::io::Error::other(e),
            })?
            .map_err(|source| CreateError::Image {
                image: record.image.clone(),
                source,
            })?;
        stack_runtime::fault::point("destroy-after-release");
        self.forget_pipes(name);
        let (store, project, owned) = (self.store.clone(), record.project.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || store.remove(&project, &owned))
            .await
            .map_err(|e| CreateError::Io {
                what: "remove",
                path: name.into(),
                source: std::io::Error::other(e),
            })??;
        Ok(())
    }
}
