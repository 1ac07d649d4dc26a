//! The networking entry point: orchestrates state, netlink, netns, DNS and
//! nftables. Every change is recorded in the state (intent) before the kernel
//! object exists, so `cleanup_project` finds everything after a crash; kernel
//! objects are also found by their project prefix.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::batch::Batcher;
use crate::dns::{self, DnsServer, SharedZone, Zone};
use crate::error::{NetError, Result};
use crate::ipam::{self, Subnet};
use crate::link::{self, InsideAddress};
use crate::naming::{self, LinkKind};
use crate::reaper::LinkReaper;
use crate::state::{EndpointRecord, NetworkRecord, State, Store, StoreLock, network_key};
use crate::types::{
    AttachRequest, Attachment, Interface, NetOptions, Network, NetworkSpec, PortMapping,
    PublishedPort,
};
use crate::{files, netns, nft, ports};

/// What an attach recorded before making the kernel objects.
struct Reserved {
    netns: PathBuf,
    interfaces: Vec<Interface>,
    keys: Vec<String>,
    nets: Vec<Network>,
}

struct DnsEntry {
    zone: SharedZone,
    _server: DnsServer,
}

/// Owns the networks of every project under one state directory. Keep it
/// alive for as long as containers use the networks: it runs their DNS
/// servers and holds their published host ports.
pub struct NetworkManager {
    store: Store,
    run_dir: PathBuf,
    options: NetOptions,
    upstream: Vec<SocketAddr>,
    /// Serialises this process's state updates; the file lock covers others.
    guard: tokio::sync::Mutex<()>,
    dns: Mutex<HashMap<String, DnsEntry>>,
    reservations: Mutex<HashMap<String, Vec<OwnedFd>>>,
    /// Deletes the veths of containers taken away together in one batch.
    reaper: LinkReaper,
    /// Takes the endpoints of containers forgotten together out of the
    /// state with one write.
    forgets: Batcher<String, Result<Option<EndpointRecord>>>,
    /// Records the endpoints of containers attaching together with one
    /// state write.
    attaches: Batcher<AttachRequest, Result<Reserved>>,
}

fn blocking_err(e: tokio::task::JoinError) -> NetError {
    NetError::Thread {
        what: "blocking task",
        source: std::io::Error::other(e.to_string()),
    }
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    if std::fs::read_to_string(path)
        .map(|v| v.trim() == value)
        .unwrap_or(false)
    {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|source| NetError::Sysctl {
        path: path.to_string(),
        source,
    })
}

fn registered_names(req: &AttachRequest) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let hostname = req
        .hostname
        .clone()
        .unwrap_or_else(|| req.container_name.clone());
    for n in [&req.service, &req.container_name, &hostname] {
        if !n.is_empty() && !names.contains(n) {
            names.push(n.clone());
        }
    }
    names
}

fn zone_for(st: &State, key: &str) -> Zone {
    let mut zone = Zone::default();
    for (id, ep) in &st.endpoints {
        for (k, iface) in ep.network_keys.iter().zip(&ep.interfaces) {
            if k == key {
                let mut names = ep.names.clone();
                names.extend(ep.aliases.get(k).cloned().unwrap_or_default());
                zone.add(id, iface.address, &names);
            }
        }
    }
    zone
}

/// A fresh per-project name (interface or netns counter), unused in `st`.
fn next_counter(st: &mut State, project: &str, kind: Option<LinkKind>) -> Result<u16> {
    let used = st.link_names();
    let rec = st.project_mut(project);
    for _ in 0..=u16::MAX {
        let c = rec.next_counter;
        rec.next_counter = rec.next_counter.wrapping_add(1);
        if kind.is_none_or(|k| !used.contains(&naming::link_name(&rec.tag, k, c))) {
            return Ok(c);
        }
    }
    Err(NetError::NamesExhausted(project.to_string()))
}

impl NetworkManager {
    /// State lives under `state_dir/net`, namespaces under `run_dir/netns`.
    pub fn new(state_dir: &Path, run_dir: &Path, options: NetOptions) -> Self {
        let upstream = options.upstream_dns.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/etc/resolv.conf")
                .map(|c| dns::parse_resolv_conf(&c))
                .unwrap_or_default()
        });
        Self {
            store: Store::new(stack_fs::Layout::of_root(state_dir).net()),
            run_dir: run_dir.to_path_buf(),
            options,
            upstream,
            guard: tokio::sync::Mutex::new(()),
            dns: Mutex::new(HashMap::new()),
            reservations: Mutex::new(HashMap::new()),
            reaper: LinkReaper::default(),
            forgets: Batcher::default(),
            attaches: Batcher::default(),
        }
    }

    fn netns_dir(&self) -> PathBuf {
        self.run_dir.join("netns")
    }

    async fn locked(&self) -> Result<(tokio::sync::MutexGuard<'_, ()>, StoreLock)> {
        let guard = self.guard.lock().await;
        let store = self.store.clone();
        let lock = tokio::task::spawn_blocking(move || store.lock())
            .await
            .map_err(blocking_err)??;
        Ok((guard, lock))
    }

    /// Replaces the project's nft table to match `st` (`nft` runs off the
    /// async threads).
    async fn apply_nft(&self, st: &State, project: &str) -> Result<()> {
        let Some(rec) = st.projects.get(project) else {
            return Ok(());
        };
        let networks: Vec<&Network> = st
            .owned_networks()
            .map(|(_, n)| n)
            .filter(|n| n.project == project)
            .collect();
        let ports: Vec<PublishedPort> = st
            .endpoints
            .values()
            .filter(|e| e.project == project)
            .flat_map(|e| e.ports.clone())
            .collect();
        let script = nft::render(&rec.tag, &networks, &ports);
        tokio::task::spawn_blocking(move || nft::apply(&script))
            .await
            .map_err(blocking_err)?
    }

    /// Rebuilds the zone of network `key` from the state file when another
    /// process has changed it since the zone was built.
    fn refresher(&self, key: &str) -> dns::Refresh {
        let path = self.store.path();
        let stamp = |p: &Path| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.ino(), m.mtime(), m.mtime_nsec()))
        };
        let last = Mutex::new(stamp(&path));
        let key = key.to_string();
        Arc::new(move |zone: &SharedZone| {
            let now = stamp(&path);
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if now == *last {
                return;
            }
            if let Ok(st) = Store::read_unlocked(&path) {
                *zone.write().unwrap_or_else(|e| e.into_inner()) = zone_for(&st, &key);
                *last = now;
            }
        })
    }

    async fn start_dns(&self, key: &str, net: &Network, st: &State) -> Result<()> {
        let zone = zone_for(st, key);
        if let Some(entry) = self.dns.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
            *entry.zone.write().unwrap_or_else(|e| e.into_inner()) = zone;
            return Ok(());
        }
        let zone = Arc::new(RwLock::new(zone));
        let addr = SocketAddr::new(IpAddr::V4(net.gateway), self.options.dns_port);
        let refresh = self.refresher(key);
        let upstream = self.upstream.clone();
        let server = match DnsServer::start(addr, net.subnet, zone.clone(), refresh, upstream).await
        {
            Ok(server) => server,
            // Another process sharing this state serves the network; it picks
            // up our changes from the state file.
            Err(NetError::DnsBind { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse =>
            {
                tracing::info!(network = key, %addr, "dns already served by another process");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.dns.lock().unwrap_or_else(|e| e.into_inner()).insert(
            key.to_string(),
            DnsEntry {
                zone,
                _server: server,
            },
        );
        Ok(())
    }

    /// Adds an attached container's names to the zones of its networks,
    /// record by record rather than rebuilding them from the state.
    fn add_to_zones(
        &self,
        id: &str,
        req: &AttachRequest,
        interfaces: &[Interface],
        keys: &[String],
    ) {
        let dns = self.dns.lock().unwrap_or_else(|e| e.into_inner());
        let names = registered_names(req);
        for ((iface, key), attachment) in interfaces.iter().zip(keys).zip(&req.networks) {
            if let Some(entry) = dns.get(key) {
                let mut all = names.clone();
                all.extend(attachment.aliases.iter().cloned());
                entry
                    .zone
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .add(id, iface.address, &all);
            }
        }
    }

    /// Takes a container's names out of the zones of `keys`.
    fn remove_from_zones(&self, id: &str, keys: &[String]) {
        let dns = self.dns.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            if let Some(entry) = dns.get(key) {
                entry
                    .zone
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(id);
            }
        }
    }

    fn update_zones(&self, st: &State, keys: &[String]) {
        let dns = self.dns.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            if let Some(entry) = dns.get(key) {
                *entry.zone.write().unwrap_or_else(|e| e.into_inner()) = zone_for(st, key);
            }
        }
    }

    /// Creates the network (bridge, address, NAT rules, DNS server) or adopts
    /// it when it already exists; `external` joins another project's network.
    pub async fn ensure_network(
        &self,
        project: &str,
        name: &str,
        spec: &NetworkSpec,
    ) -> Result<Network> {
        let (_guard, lock) = self.locked().await?;
        let mut st = self.store.load(&lock)?;
        let key = network_key(project, name);
        if let Some(ext) = &spec.external {
            let (target_key, target) = st
                .resolve_network(&ext.project, &ext.name)
                .map(|(k, n)| (k, n.clone()))
                .ok_or_else(|| {
                    NetError::UnknownExternalNetwork(network_key(&ext.project, &ext.name))
                })?;
            st.project_mut(project);
            st.networks.insert(
                key,
                NetworkRecord::External {
                    project: ext.project.clone(),
                    name: ext.name.clone(),
                },
            );
            self.store.save(&lock, &st)?;
            self.start_dns(&target_key, &target, &st).await?;
            return Ok(target);
        }
        let (net, created) = match st.networks.get(&key) {
            Some(NetworkRecord::Owned(n)) => {
                let differs = spec.subnet.is_some_and(|s| s != n.subnet)
                    || spec.gateway.is_some_and(|g| g != n.gateway)
                    || spec.internal != n.internal;
                if differs {
                    return Err(NetError::NetworkChanged(key));
                }
                (n.clone(), false)
            }
            _ => (self.plan_network(&mut st, project, name, spec).await?, true),
        };
        if created {
            self.store.save(&lock, &st)?;
        }
        match self.realise_network(&mut st, &key, &net).await {
            Ok(n) => {
                self.store.save(&lock, &st)?;
                Ok(n)
            }
            Err(e) if created => {
                self.dns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
                if let Err(undo) =
                    async { link::delete(&link::connect()?, &net.bridge).await }.await
                {
                    tracing::warn!(bridge = %net.bridge, error = %undo, "undo of failed network creation failed");
                }
                st.networks.remove(&key);
                self.store.save(&lock, &st)?;
                let _ = self.apply_nft(&st, project).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Chooses subnet, gateway and bridge name of a new network (no side effects
    /// besides reading the host's routes).
    async fn plan_network(
        &self,
        st: &mut State,
        project: &str,
        name: &str,
        spec: &NetworkSpec,
    ) -> Result<Network> {
        let mut used = link::host_routes(&link::connect()?).await?;
        used.extend(
            st.owned_networks()
                .map(|(k, n)| (n.subnet, format!("network {k}"))),
        );
        let subnet = match spec.subnet {
            Some(s) => {
                ipam::check_subnet(s, &used)?;
                s
            }
            None => {
                let used: Vec<Subnet> = used.iter().map(|(s, _)| *s).collect();
                ipam::pick_subnet(&self.options.subnet_pool, self.options.subnet_prefix, &used)?
            }
        };
        let gateway = spec.gateway.unwrap_or_else(|| subnet.default_gateway());
        if !subnet.is_host(gateway) {
            return Err(NetError::GatewayOutsideSubnet { gateway, subnet });
        }
        let counter = next_counter(st, project, Some(LinkKind::Bridge))?;
        let bridge = naming::link_name(&st.project_mut(project).tag, LinkKind::Bridge, counter);
        let net = Network {
            project: project.to_string(),
            name: name.to_string(),
            bridge,
            subnet,
            gateway,
            internal: spec.internal,
            mtu: 1500,
        };
        st.networks.insert(
            network_key(project, name),
            NetworkRecord::Owned(net.clone()),
        );
        Ok(net)
    }

    async fn realise_network(&self, st: &mut State, key: &str, net: &Network) -> Result<Network> {
        let h = link::connect()?;
        let mtu = link::ensure_bridge(&h, &net.bridge, net.gateway, net.subnet.prefix()).await?;
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge),
            "1",
        )?;
        if !net.internal {
            write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        }
        let net = Network { mtu, ..net.clone() };
        st.networks
            .insert(key.to_string(), NetworkRecord::Owned(net.clone()));
        self.apply_nft(st, &net.project).await?;
        self.start_dns(key, &net, st).await?;
        Ok(net)
    }

    /// Creates the container's network namespace, connects it to each of its
    /// networks and registers its names in their DNS.
    pub async fn attach(&self, req: &AttachRequest) -> Result<Attachment> {
        let id = req.container_id.clone();
        let reserved = self
            .attaches
            .submit(req.clone(), |reqs| self.reserve_endpoints(reqs))
            .await;
        let Reserved {
            netns: netns_path,
            interfaces,
            keys,
            nets,
        } = match reserved {
            Some(reserved) => reserved?,
            // The caller writing our batch was cancelled.
            None => self.reserve_endpoint(req).await?,
        };

        if let Err(e) = self.setup_endpoint(&netns_path, &interfaces, &nets).await {
            if let Err(undo) = self.detach(&id).await {
                tracing::warn!(container = %id, error = %undo, "undo of failed attach failed");
            }
            return Err(e);
        }
        self.add_to_zones(&id, req, &interfaces, &keys);

        let hostname = req
            .hostname
            .clone()
            .unwrap_or_else(|| req.container_name.clone());
        let first = interfaces.first();
        let names = [hostname.as_str(), req.container_name.as_str()];
        Ok(Attachment {
            netns: netns_path,
            resolv_conf: files::resolv_conf(&req.dns, first.map(|i| i.gateway), &req.dns_search),
            hosts: files::hosts(first.map(|i| i.address), &names, &req.extra_hosts),
            hostname,
            interfaces,
        })
    }

    /// Records the endpoints of several attaching containers with one
    /// state write; when that fails, one by one, so each hears its own
    /// error.
    async fn reserve_endpoints(&self, reqs: Vec<AttachRequest>) -> Vec<Result<Reserved>> {
        if reqs.len() > 1
            && let Ok(reserved) = self.reserve_endpoints_together(&reqs).await
        {
            return reserved;
        }
        let mut answers = Vec::new();
        for req in &reqs {
            answers.push(self.reserve_endpoint(req).await);
        }
        answers
    }

    /// One write for all: each request is decided on the state as the
    /// ones before it left it; a refused request changes nothing.
    async fn reserve_endpoints_together(
        &self,
        reqs: &[AttachRequest],
    ) -> Result<Vec<Result<Reserved>>> {
        let (_guard, lock) = self.locked().await?;
        let mut st = self.store.load(&lock)?;
        let answers: Vec<Result<Reserved>> = reqs
            .iter()
            .map(|req| {
                // A refused request has only moved its project's name
                // counter (or made the project's record): put it back.
                let before = st.projects.get(&req.project).cloned();
                let reserved = self.reserve_in(&mut st, req);
                if reserved.is_err() {
                    match before {
                        Some(rec) => st.projects.insert(req.project.clone(), rec),
                        None => st.projects.remove(&req.project),
                    };
                }
                reserved
            })
            .collect();
        if answers.iter().any(Result::is_ok) {
            self.store.save(&lock, &st)?;
        }
        Ok(answers)
    }

    async fn reserve_endpoint(&self, req: &AttachRequest) -> Result<Reserved> {
        let (_guard, lock) = self.locked().await?;
        let mut st = self.store.load(&lock)?;
        let reserved = self.reserve_in(&mut st, req)?;
        self.store.save(&lock, &st)?;
        Ok(reserved)
    }

    /// Picks the container's namespace name, interface names and addresses,
    /// and records them in `st` (the intent, before any kernel object).
    fn reserve_in(&self, st: &mut State, req: &AttachRequest) -> Result<Reserved> {
        let id = req.container_id.clone();
        if st.endpoints.contains_key(&id) {
            return Err(NetError::AlreadyAttached(id));
        }
        let previous = st.previous.get(&id).cloned().unwrap_or_default();
        let tag = st.project_mut(&req.project).tag.clone();
        let ns_counter = next_counter(st, &req.project, None)?;
        let netns_path = self
            .netns_dir()
            .join(naming::netns_name(&tag, ns_counter, &id));
        let mut interfaces = Vec::new();
        let mut keys = Vec::new();
        let mut nets = Vec::new();
        let mut aliases = BTreeMap::new();
        for (i, a) in req.networks.iter().enumerate() {
            let (key, net) = st
                .resolve_network(&req.project, &a.network)
                .map(|(k, n)| (k, n.clone()))
                .ok_or_else(|| NetError::UnknownNetwork {
                    project: req.project.clone(),
                    name: a.network.clone(),
                })?;
            let mut taken = st.taken_addresses(&key, net.gateway);
            taken.extend(
                interfaces
                    .iter()
                    .zip(&keys)
                    .filter(|(_, k)| **k == key)
                    .map(|(i, _): (&Interface, _)| i.address),
            );
            let address = ipam::pick_address(
                net.subnet,
                &key,
                &taken,
                a.ipv4_address,
                previous.get(&key).copied(),
            )?;
            let counter = next_counter(st, &req.project, Some(LinkKind::Veth))?;
            interfaces.push(Interface {
                network: a.network.clone(),
                ifname: format!("eth{i}"),
                host_veth: naming::link_name(&tag, LinkKind::Veth, counter),
                address,
                prefix: net.subnet.prefix(),
                gateway: net.gateway,
            });
            aliases.insert(key.clone(), a.aliases.clone());
            keys.push(key);
            nets.push(net);
        }
        let record = EndpointRecord {
            project: req.project.clone(),
            netns: netns_path.clone(),
            names: registered_names(req),
            aliases,
            interfaces: interfaces.clone(),
            network_keys: keys.clone(),
            ports: Vec::new(),
        };
        st.endpoints.insert(id.clone(), record);
        Ok(Reserved {
            netns: netns_path,
            interfaces,
            keys,
            nets,
        })
    }

    async fn setup_endpoint(
        &self,
        netns_path: &Path,
        interfaces: &[Interface],
        nets: &[Network],
    ) -> Result<()> {
        let path = netns_path.to_path_buf();
        tokio::task::spawn_blocking(move || netns::create(&path))
            .await
            .map_err(blocking_err)??;
        let h = link::connect()?;
        for (iface, net) in interfaces.iter().zip(nets) {
            let (bridge_index, _) = link::get(&h, &net.bridge)
                .await?
                .ok_or_else(|| NetError::LinkNotFound(net.bridge.clone()))?;
            link::add_veth(
                &h,
                &iface.host_veth,
                &iface.ifname,
                netns_path,
                bridge_index,
                net.mtu,
            )
            .await?;
        }
        let addrs: Vec<InsideAddress> = interfaces
            .iter()
            .map(|i| InsideAddress {
                ifname: i.ifname.clone(),
                address: i.address,
                prefix: i.prefix,
            })
            .collect();
        let gateway = interfaces
            .iter()
            .zip(nets)
            .find(|(_, n)| !n.internal)
            .map(|(i, _)| i.gateway);
        let path = netns_path.to_path_buf();
        tokio::task::spawn_blocking(move || link::configure_inside(&path, addrs, gateway))
            .await
            .map_err(blocking_err)?
    }

    /// `network_mode: none`: a namespace with only `lo`, up.
    pub async fn attach_none(&self, project: &str, container_id: &str) -> Result<PathBuf> {
        let req = AttachRequest {
            project: project.to_string(),
            container_id: container_id.to_string(),
            ..AttachRequest::default()
        };
        Ok(self.attach(&req).await?.netns)
    }

    /// The pinned namespace of an attached container, for
    /// `network_mode: service:NAME | container:NAME`.
    pub async fn netns_of(&self, container_id: &str) -> Result<PathBuf> {
        let (_guard, lock) = self.locked().await?;
        let st = self.store.load(&lock)?;
        st.endpoints
            .get(container_id)
            .map(|e| e.netns.clone())
            .ok_or_else(|| NetError::NotAttached(container_id.into()))
    }

    /// Disconnects the container: unpublishes its ports, forgets its names,
    /// deletes its veths and namespace. Its addresses are remembered so that it
    /// gets them back when it attaches again and they are still free.
    pub async fn detach(&self, container_id: &str) -> Result<()> {
        match self.take_endpoint(container_id, true).await? {
            Some(ep) => self.unplug(container_id, ep).await,
            None => Err(NetError::NotAttached(container_id.into())),
        }
    }

    /// Drops every record of a container that is gone for good, the addresses
    /// kept for its next attachment included (single containers have a fresh
    /// id each, so nothing else would ever take them away), and disconnects it
    /// first when it still is. Nothing to do for an unknown container.
    pub async fn forget(&self, container_id: &str) -> Result<()> {
        let taken = self
            .forgets
            .submit(container_id.to_string(), |ids| self.take_endpoints(ids))
            .await;
        let taken = match taken {
            Some(taken) => taken?,
            // The caller writing our batch was cancelled.
            None => self.take_endpoint(container_id, false).await?,
        };
        match taken {
            Some(ep) => self.unplug(container_id, ep).await,
            None => Ok(()),
        }
    }

    /// [`Self::take_endpoint`] of several forgotten containers with one
    /// state write; when that fails, one by one, so each hears its own
    /// error.
    async fn take_endpoints(&self, ids: Vec<String>) -> Vec<Result<Option<EndpointRecord>>> {
        if ids.len() > 1
            && let Ok(taken) = self.take_endpoints_together(&ids).await
        {
            return taken.into_iter().map(Ok).collect();
        }
        let mut answers = Vec::new();
        for id in &ids {
            answers.push(self.take_endpoint(id, false).await);
        }
        answers
    }

    async fn take_endpoints_together(&self, ids: &[String]) -> Result<Vec<Option<EndpointRecord>>> {
        let (_guard, lock) = self.locked().await?;
        let mut st = self.store.load(&lock)?;
        let mut changed = false;
        let mut published = BTreeSet::new();
        let taken: Vec<Option<EndpointRecord>> = ids
            .iter()
            .map(|id| {
                changed |= st.previous.remove(id).is_some();
                let ep = st.endpoints.remove(id)?;
                changed = true;
                if !ep.ports.is_empty() {
                    published.insert(ep.project.clone());
                }
                Some(ep)
            })
            .collect();
        for project in &published {
            self.apply_nft(&st, project).await?;
        }
        if changed {
            self.store.save(&lock, &st)?;
        }
        for (id, ep) in ids.iter().zip(&taken) {
            if let Some(ep) = ep {
                self.remove_from_zones(id, &ep.network_keys);
            }
        }
        Ok(taken)
    }

    /// Takes the container's endpoint out of the state, and its published
    /// ports out of the rules; `remember` keeps its addresses for a later
    /// attachment, otherwise any kept from before are dropped too.
    async fn take_endpoint(
        &self,
        container_id: &str,
        remember: bool,
    ) -> Result<Option<EndpointRecord>> {
        let (_guard, lock) = self.locked().await?;
        let mut st = self.store.load(&lock)?;
        let ep = st.endpoints.remove(container_id);
        let forgotten = !remember && st.previous.remove(container_id).is_some();
        let Some(ep) = ep else {
            if forgotten {
                self.store.save(&lock, &st)?;
            }
            return Ok(None);
        };
        if remember && !ep.interfaces.is_empty() {
            let prev = st.previous.entry(container_id.to_string()).or_default();
            for (k, i) in ep.network_keys.iter().zip(&ep.interfaces) {
                prev.insert(k.clone(), i.address);
            }
        }
        if !ep.ports.is_empty() {
            self.apply_nft(&st, &ep.project).await?;
        }
        self.store.save(&lock, &st)?;
        self.remove_from_zones(container_id, &ep.network_keys);
        Ok(Some(ep))
    }

    /// Releases the kernel side of a taken endpoint: reserved host ports,
    /// veths and the namespace.
    async fn unplug(&self, container_id: &str, ep: EndpointRecord) -> Result<()> {
        self.reservations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(container_id);
        let veths = ep.interfaces.iter().map(|i| i.host_veth.clone()).collect();
        let mut first_err = self.reaper.delete(veths).await.err();
        let path = ep.netns.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || netns::remove(&path))
            .await
            .map_err(blocking_err)?
        {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Publishes ports of an attached container on the host (DNAT to its first
    /// non-internal address); host ports left open are chosen at random.
    pub async fn publish(
        &self,
        container_id: &str,
        mappings: &[PortMapping],
    ) -> Result<Vec<PublishedPort>> {
        let wanted = ports::expand(mappings)?;
        let (_guard, lock) = self.locked().await?;
        let mut st = self.store.load(&lock)?;
        let ep = st
            .endpoints
            .get(container_id)
            .ok_or_else(|| NetError::NotAttached(container_id.into()))?;
        let container_ip = ep
            .interfaces
            .iter()
            .zip(&ep.network_keys)
            .find(|(_, k)| matches!(st.networks.get(*k), Some(NetworkRecord::Owned(n)) if !n.internal))
            .map(|(i, _)| i.address)
            .ok_or_else(|| NetError::NothingToPublish(container_id.into()))?;
        let project = ep.project.clone();
        let mut fds = Vec::new();
        let mut published = Vec::new();
        for w in &wanted {
            let (fd, host_port) = ports::reserve(w)?;
            fds.push(fd);
            published.push(PublishedPort {
                host_ip: w.host_ip,
                host_port,
                container_ip,
                container_port: w.container_port,
                protocol: w.protocol,
            });
        }
        if let Some(ep) = st.endpoints.get_mut(container_id) {
            ep.ports.extend(published.iter().cloned());
        }
        self.apply_nft(&st, &project).await?;
        self.store.save(&lock, &st)?;
        self.reservations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(container_id.to_string())
            .or_default()
            .extend(fds);
        Ok(published)
    }

    /// Every address leased to a container of `project`:
    /// (container id, network name, address).
    pub async fn leases(&self, project: &str) -> Result<Vec<(String, String, std::net::Ipv4Addr)>> {
        let (_guard, lock) = self.locked().await?;
        let st = self.store.load(&lock)?;
        Ok(st
            .endpoints
            .iter()
            .filter(|(_, e)| e.project == project)
            .flat_map(|(id, e)| {
                e.interfaces
                    .iter()
                    .map(move |i| (id.clone(), i.network.clone(), i.address))
            })
            .collect())
    }

    /// Every project with networking state, for owners that clean up what a
    /// crashed process of theirs left (the build networks).
    pub async fn projects(&self) -> Result<Vec<String>> {
        let (_guard, lock) = self.locked().await?;
        let st = self.store.load(&lock)?;
        Ok(st.projects.keys().cloned().collect())
    }

    /// Published ports of a container (`stack port`).
    pub async fn published(&self, container_id: &str) -> Result<Vec<PublishedPort>> {
        let (_guard, lock) = self.locked().await?;
        let st = self.store.load(&lock)?;
        st.endpoints
            .get(container_id)
            .map(|e| e.ports.clone())
            .ok_or_else(|| NetError::NotAttached(container_id.into()))
    }

    /// Removes a network that no container uses any more.
    pub async fn remove_network(&self, project: &str, name: &str) -> Result<()> {
        let (_guard, lock) = self.locked().await?;
        let mut st = self.store.load(&lock)?;
        let key = network_key(project, name);
        let Some(rec) = st.networks.get(&key).cloned() else {
            return Ok(());
        };
        if let NetworkRecord::Owned(net) = &rec {
            if st.endpoints.values().any(|e| e.network_keys.contains(&key)) {
                return Err(NetError::NetworkInUse(key));
            }
            st.networks.remove(&key);
            self.apply_nft(&st, project).await?;
            self.dns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            link::delete(&link::connect()?, &net.bridge).await?;
        } else {
            st.networks.remove(&key);
        }
        self.store.save(&lock, &st)
    }

    /// Removes every kernel object, rule, DNS server and lease of `project`,
    /// whether recorded or only findable by its name prefix (after a crash).
    pub async fn cleanup_project(&self, project: &str) -> Result<()> {
        let (_guard, lock) = self.locked().await?;
        let st = self.store.load(&lock)?;
        self.cleanup_locked(&lock, st, project).await
    }

    /// Removes `project` as `cleanup_project` does once nothing of it is
    /// left: no container attached and none stopped with addresses kept on
    /// its networks. Decided under the state lock, so a container attaching
    /// at the same time either keeps the project or finds it gone and makes
    /// it anew. Returns whether it was removed.
    pub async fn cleanup_project_if_unused(&self, project: &str) -> Result<bool> {
        let (_guard, lock) = self.locked().await?;
        let st = self.store.load(&lock)?;
        let prefix = format!("{project}/");
        let in_use = st.endpoints.values().any(|e| e.project == project)
            || st
                .previous
                .values()
                .any(|nets| nets.keys().any(|k| k.starts_with(&prefix)));
        if in_use {
            return Ok(false);
        }
        self.cleanup_locked(&lock, st, project).await?;
        Ok(true)
    }

    async fn cleanup_locked(&self, lock: &StoreLock, mut st: State, project: &str) -> Result<()> {
        let Some(tag) = st.projects.get(project).map(|p| p.tag.clone()) else {
            return Ok(());
        };
        let own_keys: Vec<String> = st
            .owned_networks()
            .filter(|(_, n)| n.project == project)
            .map(|(k, _)| k.clone())
            .collect();
        let containers: Vec<String> = st
            .endpoints
            .iter()
            .filter(|(_, e)| e.project == project)
            .map(|(id, _)| id.clone())
            .collect();
        {
            let mut dns = self.dns.lock().unwrap_or_else(|e| e.into_inner());
            for k in &own_keys {
                dns.remove(k);
            }
        }
        {
            let mut res = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
            for c in &containers {
                res.remove(c);
            }
        }
        let mut first_err = None;
        let h = link::connect()?;
        let leftover = link::list(&h, &naming::link_prefix(&tag)).await?;
        if let Err(e) = self
            .reaper
            .delete(leftover.into_iter().map(|(_, name)| name).collect())
            .await
        {
            first_err.get_or_insert(e);
        }
        let (dir, prefix) = (self.netns_dir(), naming::netns_prefix(&tag));
        let removed = tokio::task::spawn_blocking(move || {
            netns::list(&dir, &prefix)
                .iter()
                .map(|p| netns::remove(p))
                .find_map(|r| r.err())
        })
        .await
        .map_err(blocking_err)?;
        if let Some(e) = removed {
            first_err.get_or_insert(e);
        }
        let t = tag.clone();
        let deleted = tokio::task::spawn_blocking(move || nft::delete(&t))
            .await
            .map_err(blocking_err)?;
        if let Err(e) = deleted {
            first_err.get_or_insert(e);
        }
        let prefix = format!("{project}/");
        st.networks.retain(|k, _| !k.starts_with(&prefix));
        st.endpoints.retain(|_, e| e.project != project);
        // Addresses kept on the project's own networks are of no use once
        // those are gone, whether their container was still attached or not.
        st.previous.retain(|_, nets| {
            nets.retain(|k, _| !k.starts_with(&prefix));
            !nets.is_empty()
        });
        st.projects.remove(project);
        self.store.save(lock, &st)?;
        let other_keys: Vec<String> = st.owned_networks().map(|(k, _)| k.clone()).collect();
        self.update_zones(&st, &other_keys);
        first_err.map_or(Ok(()), Err)
    }

    /// After a restart of the owning process: serves DNS again for every
    /// recorded network, re-reserves published host ports and re-applies rules.
    pub async fn adopt(&self) -> Result<()> {
        let (_guard, lock) = self.locked().await?;
        let st = self.store.load(&lock)?;
        for (key, net) in st.owned_networks() {
            self.start_dns(key, net, &st).await?;
        }
        for project in st.projects.keys() {
            self.apply_nft(&st, project).await?;
        }
        let mut res = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
        for (id, ep) in &st.endpoints {
            for p in &ep.ports {
                let w = ports::Wanted {
                    host_ip: p.host_ip,
                    host_port: Some(p.host_port),
                    container_port: p.container_port,
                    protocol: p.protocol,
                };
                if let Ok((fd, _)) = ports::reserve(&w) {
                    res.entry(id.clone()).or_default().push(fd);
                }
            }
        }
        Ok(())
    }
}
