//! `reconcile(project, observed, options) -> Plan`: decide, without doing
//! anything, what `stack up` must do. Pure, so every decision is tested as
//! golden text without root.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use stack_spec::{MountType, NetworkMode, Project, PullPolicy, Service};

use crate::hash::{HASH_VERSION, changed_paths, hash_of, hashed_form, network_form, volume_form};
use crate::observed::{Observed, ObservedContainer};
use crate::plan::{Action, Cause, OpId, Plan, Resource, Wait};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileOptions {
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub remove_orphans: bool,
    /// `--scale SERVICE=N`, over `deploy.replicas` and `scale`.
    pub scale: BTreeMap<String, u32>,
    /// `up SERVICE...`: plan only these services (their dependencies
    /// included by the caller unless `--no-deps`); `None` plans every one.
    /// Waits on services left out are dropped, as compose does.
    pub services: Option<BTreeSet<String>>,
    /// `up --yes`: recreate a volume whose configuration changed (its data
    /// is lost) instead of refusing.
    pub recreate_volumes: bool,
    /// `--build`: build again the services whose build inputs changed.
    pub build: bool,
    /// `--no-build`: never build, even a missing image.
    pub no_build: bool,
    /// The services named on the command line, whose containers
    /// `force_recreate` is for; the others in `services` are what they
    /// depend on, recreated with `always_recreate_deps` (as compose's
    /// `recreateStrategy` and `dependenciesRecreateStrategy`). `None`:
    /// every service is named.
    pub named: Option<BTreeSet<String>>,
    /// `--no-start` (`stack create`): containers are made, none started.
    pub no_start: bool,
    /// `-V`: a recreated container gets new anonymous volumes instead of
    /// its predecessor's.
    pub renew_anon_volumes: bool,
    /// `--always-recreate-deps`: the dependencies of the named services
    /// are recreated even when unchanged.
    pub always_recreate_deps: bool,
    /// `COMPOSE_IGNORE_ORPHANS`: no note about orphan containers.
    pub ignore_orphans: bool,
}

/// Why `up` refuses to plan anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    /// As compose asks before it deletes data; `--yes` answers it.
    #[error(
        "volume {name:?} exists but doesn't match configuration in the stack file (changed: {}). Recreate (data will be lost)? Run again with --yes to recreate it",
        paths.join(", ")
    )]
    VolumeChanged { name: String, paths: Vec<String> },
    /// A container would be made from an image that is not there and that
    /// nothing in the plan builds or pulls; refused before anything is made
    /// rather than failing at create with networks already made.
    #[error("{}", missing.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    ImageMissing { missing: Vec<MissingImage> },
}

/// A service whose image is missing, and why it is not fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service {service}: image {image} is missing and {why}")]
pub struct MissingImage {
    pub service: String,
    pub image: String,
    pub why: String,
}

impl ReconcileOptions {
    fn selects(&self, service: &str) -> bool {
        self.services.as_ref().is_none_or(|s| s.contains(service))
    }

    /// Whether `service` was named (rather than brought in as a dependency).
    fn names(&self, service: &str) -> bool {
        self.named.as_ref().is_none_or(|s| s.contains(service))
    }
}

/// The network a service joins when it names none.
pub const DEFAULT_NETWORK: &str = "default";

/// The full name of a project network: its `name:` or `<project>_<key>`.
pub fn network_name(project: &Project, key: &str) -> String {
    project
        .networks
        .get(key)
        .and_then(|n| n.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", project.name))
}

/// The full name of a named volume: its `name:` or `<project>_<key>`.
pub fn volume_name(project: &Project, key: &str) -> String {
    project
        .volumes
        .get(key)
        .and_then(|v| v.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", project.name))
}

/// `<project>-<service>-<n>`, or `container_name`.
pub fn container_name(project: &str, service_name: &str, service: &Service, number: u32) -> String {
    match &service.container_name {
        Some(name) => name.clone(),
        None => format!("{project}-{service_name}-{number}"),
    }
}

/// How many containers the service should have.
pub fn replicas(name: &str, service: &Service, options: &ReconcileOptions) -> u32 {
    options
        .scale
        .get(name)
        .copied()
        .or_else(|| service.deploy.as_ref().and_then(|d| d.replicas))
        .or(service.scale)
        .unwrap_or(1)
}

/// The network keys a service joins (none for host/none/shared namespaces).
pub fn service_networks(service: &Service) -> Vec<String> {
    match &service.network_mode {
        None | Some(NetworkMode::Bridge) => {
            if service.networks.is_empty() {
                vec![DEFAULT_NETWORK.to_owned()]
            } else {
                service.networks.keys().cloned().collect()
            }
        }
        Some(_) => Vec::new(),
    }
}

/// Services whose namespaces this one joins (`network_mode: service:x`,
/// `ipc: service:x`, `pid: service:x`): recreating them recreates it.
pub fn namespace_parents(service: &Service) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(NetworkMode::Service(parent)) = &service.network_mode {
        out.push(parent.clone());
    }
    for mode in [&service.ipc, &service.pid].into_iter().flatten() {
        if let Some(parent) = mode.strip_prefix("service:") {
            out.push(parent.to_owned());
        }
    }
    out
}

/// Why `image` of `service` is pulled, by its `pull_policy`; `None` when
/// it is not: `never`; `build`, whose image comes from its build, never
/// from a registry; or present and `missing`. (`daily`, `weekly` and
/// `every_<duration>` pull when missing only: image ages are not observed
/// yet.)
fn pull_cause(service: &Service, image: &str, observed: &Observed) -> Option<Cause> {
    match service.pull_policy {
        Some(PullPolicy::Never | PullPolicy::Build) => None,
        Some(PullPolicy::Always) => Some(Cause::PullAlways),
        _ if observed.images.contains_key(image) => None,
        _ => Some(Cause::NotFound),
    }
}

/// The image a service runs: `image:`, else `<project>-<service>` when it
/// builds.
pub fn service_image(project: &str, name: &str, service: &Service) -> Option<String> {
    stack_build::service::image_name(project, name, service)
}

/// Why a service's image is built, if it is: it has `build:` and
/// `--no-build` was not given, and its image is missing, or `--build` (or
/// `pull_policy: build`) asks and the build's inputs are not those the
/// image was built from.
fn build_cause(
    name: &str,
    service: &Service,
    image: &str,
    observed: &Observed,
    options: &ReconcileOptions,
) -> Option<Cause> {
    if service.build.is_none() || options.no_build {
        return None;
    }
    if !observed.images.contains_key(image) {
        return Some(Cause::BuildNotFound);
    }
    let asked = options.build || service.pull_policy == Some(PullPolicy::Build);
    let same = observed
        .builds
        .get(name)
        .is_some_and(|b| b.current.is_some() && b.current == b.built);
    (asked && !same).then_some(Cause::BuildContextChanged)
}

/// Whether `up` must look at the build inputs of `service` (they are read
/// from disk, so only when a decision depends on them).
pub fn wants_fingerprint(service: &Service, options: &ReconcileOptions) -> bool {
    service.build.is_some()
        && !options.no_build
        && (options.build || service.pull_policy == Some(PullPolicy::Build))
}

/// What a one-off container of `service` (`stack run`) needs before it is
/// created, beyond its dependencies: its networks and named volumes when
/// they do not exist, and its image as its `build:` (with `options.build`
/// and `no_build`) and `pull_policy` say.
pub fn plan_one_off(
    project: &Project,
    observed: &Observed,
    name: &str,
    options: &ReconcileOptions,
) -> Plan {
    let Some(service) = project.services.get(name) else {
        return Plan::default();
    };
    let mut plan = Plan::default();
    for key in service_networks(service) {
        let external = project.networks.get(&key).is_some_and(|n| n.external);
        let name = network_name(project, &key);
        if !external && !observed.networks.contains(&name) {
            plan.push(Action::Create, Resource::Network(name), Cause::NotFound);
        }
    }
    let volumes: BTreeSet<&str> = service
        .volumes
        .iter()
        .filter(|v| v.kind == MountType::Volume)
        .filter_map(|v| v.source.as_deref())
        .collect();
    for key in volumes {
        if project.volumes.get(key).is_some_and(|v| !v.external) {
            let name = volume_name(project, key);
            if !observed.volumes.contains(&name) {
                plan.push(Action::Create, Resource::Volume(name), Cause::NotFound);
            }
        }
    }
    let image = service_image(&project.name, name, service);
    if let Some(image) = &image
        && let Some(cause) = build_cause(name, service, image, observed, options)
    {
        plan.push(
            Action::Build,
            Resource::Build {
                service: name.to_owned(),
                image: image.clone(),
            },
            cause,
        );
    } else if let Some(image) = &service.image
        && (service.build.is_none() || options.no_build)
        && let Some(cause) = pull_cause(service, image, observed)
    {
        plan.push(Action::Pull, Resource::Image(image.clone()), cause);
    }
    plan
}

/// The named volumes (keys) a service mounts.
fn service_volumes(service: &Service) -> impl Iterator<Item = &str> {
    service
        .volumes
        .iter()
        .filter(|v| v.kind == MountType::Volume)
        .filter_map(|v| v.source.as_deref())
}

/// A network or volume that exists but was made from another configuration.
struct Changed {
    key: String,
    name: String,
    paths: Vec<String>,
    /// The services whose containers are attached to it or mount it.
    users: BTreeSet<String>,
}

/// The paths where the kept form differs from the declared one; empty when
/// it does not, or when no form was kept (made by an older version).
fn form_change(kept: Option<&serde_json::Value>, declared: &serde_json::Value) -> Vec<String> {
    match kept {
        Some(kept) if hash_of(kept) != hash_of(declared) => changed_paths(kept, declared),
        _ => Vec::new(),
    }
}

/// The resources (networks or volumes) among `used` that exist but were
/// made from another configuration than the one declared now: `declared`
/// gives a key's full name and its form now, `None` for one that is not the
/// project's to change (external); `uses` whether a service's containers
/// are on it.
fn changed<'a>(
    project: &Project,
    used: impl IntoIterator<Item = &'a String>,
    existing: &BTreeSet<String>,
    kept: &BTreeMap<String, serde_json::Value>,
    declared: impl Fn(&str) -> Option<(String, serde_json::Value)>,
    uses: impl Fn(&Service, &str) -> bool,
) -> Vec<Changed> {
    let mut out = Vec::new();
    for key in used {
        let Some((name, form)) = declared(key) else {
            continue;
        };
        if !existing.contains(&name) {
            continue;
        }
        let paths = form_change(kept.get(&name), &form);
        if paths.is_empty() {
            continue;
        }
        let users = project
            .services
            .iter()
            .filter(|(_, s)| uses(s, key))
            .map(|(n, _)| n.clone())
            .collect();
        out.push(Changed {
            key: key.clone(),
            name,
            paths,
            users,
        });
    }
    out
}

/// The networks in use whose configuration changed (`internal:`, a new
/// subnet, `driver_opts`, labels, ...), as compose's `reconcileNetworks`.
fn changed_networks(
    project: &Project,
    observed: &Observed,
    used: &BTreeSet<String>,
) -> Vec<Changed> {
    let declared = |key: &str| {
        let network = project.networks.get(key);
        (!network.is_some_and(|n| n.external))
            .then(|| (network_name(project, key), network_form(network)))
    };
    let uses = |s: &Service, key: &str| service_networks(s).iter().any(|n| n == key);
    let (existing, kept) = (&observed.networks, &observed.network_configs);
    changed(project, used, existing, kept, declared, uses)
}

/// The named volumes in use whose configuration changed.
fn changed_volumes<'a>(
    project: &Project,
    observed: &Observed,
    used: impl Iterator<Item = &'a String>,
) -> Vec<Changed> {
    let declared = |key: &str| {
        let volume = project.volumes.get(key).filter(|v| !v.external)?;
        Some((volume_name(project, key), volume_form(volume)))
    };
    let uses = |s: &Service, key: &str| service_volumes(s).any(|v| v == key);
    let (existing, kept) = (&observed.volumes, &observed.volume_configs);
    changed(project, used, existing, kept, declared, uses)
}

pub fn reconcile(
    project: &Project,
    observed: &Observed,
    options: &ReconcileOptions,
) -> Result<Plan, ReconcileError> {
    let mut plan = Plan::default();

    let selected = || {
        project
            .services
            .iter()
            .filter(|(name, _)| options.selects(name))
            .map(|(_, s)| s)
    };
    let used_networks: BTreeSet<String> = selected().flat_map(service_networks).collect();
    let used_volumes: BTreeSet<&str> = selected().flat_map(service_volumes).collect();
    let planned_volumes: Vec<&String> = project
        .volumes
        .keys()
        .filter(|key| options.services.is_none() || used_volumes.contains(key.as_str()))
        .collect();

    // A network or volume made from another configuration is made again,
    // after the containers on it are removed and before they are created
    // anew. A volume's data goes with it, so that is only done when asked.
    let volumes_changed = changed_volumes(project, observed, planned_volumes.iter().copied());
    if let Some(first) = volumes_changed.first()
        && !options.recreate_volumes
    {
        return Err(ReconcileError::VolumeChanged {
            name: first.name.clone(),
            paths: first.paths.clone(),
        });
    }
    let mut changed: Vec<(Changed, Cause)> = Vec::new();
    let networks_changed = changed_networks(project, observed, &used_networks);
    let causes = networks_changed
        .into_iter()
        .map(|c| (Cause::NetworkChanged(c.name.clone()), "network", c))
        .chain(
            volumes_changed
                .into_iter()
                .map(|c| (Cause::VolumeChanged(c.name.clone()), "volume", c)),
        );
    for (cause, kind, c) in causes {
        // Recreating it would cut off containers this `up` does not bring
        // back: say so and leave it.
        match c.users.iter().find(|s| {
            !options.selects(s) && observed.containers.iter().any(|o| &o.service == *s)
        }) {
            Some(outside) => plan.notes.push(format!(
                "{kind} {} changed ({}) but is not recreated: service {outside}, which this up leaves alone, uses it",
                c.name,
                c.paths.join(", ")
            )),
            None => changed.push((c, cause)),
        }
    }
    // The containers to take away first: (service, number) → why.
    let mut taken: BTreeMap<(String, u32), Cause> = BTreeMap::new();
    let mut taken_ops: HashMap<String, Vec<OpId>> = HashMap::new();
    let order = project.start_order();
    let mut on_changed: Vec<&ObservedContainer> = observed
        .containers
        .iter()
        .filter(|c| changed.iter().any(|(ch, _)| ch.users.contains(&c.service)))
        .collect();
    on_changed.sort_by_key(|c| {
        (
            std::cmp::Reverse(order.iter().position(|s| *s == c.service)),
            std::cmp::Reverse(c.number),
        )
    });
    for c in on_changed {
        let Some((_, cause)) = changed.iter().find(|(ch, _)| ch.users.contains(&c.service)) else {
            continue;
        };
        let op = plan.push(
            Action::Remove,
            Resource::Container {
                service: c.service.clone(),
                number: c.number,
                name: c.name.clone(),
            },
            cause.clone(),
        );
        taken.insert((c.service.clone(), c.number), cause.clone());
        taken_ops.entry(c.service.clone()).or_default().push(op);
    }

    // Networks and volumes first: containers are created after them.
    let mut network_ops: HashMap<String, OpId> = HashMap::new();
    let mut volume_ops: HashMap<String, OpId> = HashMap::new();
    for (c, cause) in &changed {
        let resource = match cause {
            Cause::NetworkChanged(_) => Resource::Network(c.name.clone()),
            _ => Resource::Volume(c.name.clone()),
        };
        let is_network = matches!(resource, Resource::Network(_));
        let op = plan.push(
            Action::Recreate,
            resource,
            Cause::ConfigChanged(c.paths.clone()),
        );
        plan.operations[op].after = c
            .users
            .iter()
            .flat_map(|s| taken_ops.get(s).cloned().unwrap_or_default())
            .collect();
        plan.operations[op].after.sort_unstable();
        if is_network {
            network_ops.insert(c.key.clone(), op);
        } else {
            volume_ops.insert(c.key.clone(), op);
        }
    }
    for key in &used_networks {
        let external = project.networks.get(key).is_some_and(|n| n.external);
        let name = network_name(project, key);
        if !external && !observed.networks.contains(&name) {
            let op = plan.push(Action::Create, Resource::Network(name), Cause::NotFound);
            network_ops.insert(key.clone(), op);
        }
    }
    for key in planned_volumes {
        let volume = &project.volumes[key];
        let name = volume_name(project, key);
        if !volume.external && !observed.volumes.contains(&name) {
            let op = plan.push(Action::Create, Resource::Volume(name), Cause::NotFound);
            volume_ops.insert(key.clone(), op);
        }
    }
    let mut image_ops: HashMap<String, OpId> = HashMap::new();
    for (name, service) in project
        .services
        .iter()
        .filter(|(name, _)| options.selects(name))
    {
        let Some(image) = service_image(&project.name, name, service) else {
            continue;
        };
        if image_ops.contains_key(&image) {
            continue;
        }
        if let Some(cause) = build_cause(name, service, &image, observed, options) {
            let op = plan.push(
                Action::Build,
                Resource::Build {
                    service: name.clone(),
                    image: image.clone(),
                },
                cause,
            );
            image_ops.insert(image, op);
        }
    }
    for service in selected() {
        let Some(image) = &service.image else {
            continue;
        };
        if service.build.is_some() && !options.no_build {
            // Its image comes from its build, never from a registry.
            continue;
        }
        if image_ops.contains_key(image) {
            continue;
        }
        if let Some(PullPolicy::Every(every)) = service.pull_policy {
            plan.notes.push(format!(
                "pull_policy of {image}: pulling again after {every} is not supported; pulled when missing only"
            ));
        }
        let Some(cause) = pull_cause(service, image, observed) else {
            continue;
        };
        let op = plan.push(Action::Pull, Resource::Image(image.clone()), cause);
        image_ops.insert(image.clone(), op);
    }

    let mut by_service: BTreeMap<&str, Vec<&ObservedContainer>> = BTreeMap::new();
    for c in &observed.containers {
        by_service.entry(c.service.as_str()).or_default().push(c);
    }
    for list in by_service.values_mut() {
        list.sort_by_key(|c| c.number);
    }

    // Per service, in dependency order: what happens to each replica.
    let mut start_ops: HashMap<&str, Vec<OpId>> = HashMap::new();
    // Create/recreate operations per service: a container that joins another's
    // namespaces can only be made once that one exists.
    let mut made_ops: HashMap<&str, Vec<OpId>> = HashMap::new();
    let mut recreated: BTreeSet<&str> = BTreeSet::new();
    let mut missing: Vec<MissingImage> = Vec::new();
    for name in project.start_order() {
        let Some(service) = project.services.get(name) else {
            continue;
        };
        if !options.selects(name) {
            continue;
        }
        let want = replicas(name, service, options);
        let named = options.names(name);
        let form = hashed_form(service);
        let hash = hash_of(&form);
        let image = service_image(&project.name, name, service);
        let digest = image.as_ref().and_then(|i| observed.images.get(i));
        let rebuilt = image
            .as_ref()
            .and_then(|i| image_ops.get(i))
            .is_some_and(|&op| plan.operations[op].action == Action::Build);
        let changed_parent = namespace_parents(service)
            .into_iter()
            .find(|p| recreated.contains(p.as_str()));
        let restarted_dependency = service
            .depends_on
            .iter()
            .find(|(dep, d)| d.restart && recreated.contains(dep.as_str()))
            .map(|(dep, _)| dep.clone());

        let mut create_after: Vec<OpId> = service_networks(service)
            .iter()
            .filter_map(|n| network_ops.get(n).copied())
            .collect();
        create_after.extend(
            service
                .volumes
                .iter()
                .filter(|v| v.kind == MountType::Volume)
                .filter_map(|v| v.source.as_ref().and_then(|s| volume_ops.get(s)).copied()),
        );
        if let Some(op) = image.as_ref().and_then(|i| image_ops.get(i)) {
            create_after.push(*op);
        }
        for parent in namespace_parents(service) {
            create_after.extend(made_ops.get(parent.as_str()).cloned().unwrap_or_default());
        }
        let mut start_after: Vec<OpId> = service
            .depends_on
            .keys()
            .chain(namespace_parents(service).iter())
            .flat_map(|dep| start_ops.get(dep.as_str()).cloned().unwrap_or_default())
            .collect();
        start_after.sort_unstable();
        start_after.dedup();
        let waits: Vec<Wait> = service
            .depends_on
            .iter()
            .filter(|(dep, _)| options.selects(dep))
            .map(|(dep, d)| Wait {
                service: dep.clone(),
                condition: d.condition,
                required: d.required,
            })
            .collect();

        let existing = by_service.get(name).cloned().unwrap_or_default();
        let mut starts = Vec::new();
        let mut made = Vec::new();
        for number in 1..=want {
            let cname = container_name(&project.name, name, service, number);
            let resource = Resource::Container {
                service: name.to_owned(),
                number,
                name: cname,
            };
            let current = existing
                .iter()
                .find(|c| c.number == number && !taken.contains_key(&(c.service.clone(), number)));
            let step = match current {
                None => Some((
                    Action::Create,
                    taken
                        .get(&(name.to_owned(), number))
                        .cloned()
                        .unwrap_or(Cause::NotFound),
                )),
                Some(c) => {
                    let cause = if options.no_recreate {
                        None
                    } else if options.force_recreate && named {
                        Some(Cause::ForceRecreate)
                    } else if options.always_recreate_deps && !named {
                        Some(Cause::AlwaysRecreateDeps)
                    } else if !c.config_hash.starts_with(&format!("{HASH_VERSION}-")) {
                        Some(Cause::HashVersionChanged)
                    } else if c.config_hash != hash {
                        Some(Cause::ConfigChanged(changed_paths(&c.config, &form)))
                    } else if rebuilt {
                        Some(Cause::ImageRebuilt)
                    } else if digest.is_some() && c.image_digest.as_ref() != digest {
                        Some(Cause::ImageUpdated)
                    } else {
                        changed_parent.clone().map(Cause::DependencyChanged)
                    };
                    match cause {
                        Some(cause) => Some((Action::Recreate, cause)),
                        // Made, not started: nothing running is touched.
                        None if options.no_start => None,
                        None => match &restarted_dependency {
                            Some(dep) => {
                                Some((Action::Restart, Cause::DependencyChanged(dep.clone())))
                            }
                            None if !c.state.is_up() => Some((Action::Start, Cause::NotRunning)),
                            None => None,
                        },
                    }
                }
            };
            let Some((action, cause)) = step else {
                continue;
            };
            if action == Action::Recreate || taken.contains_key(&(name.to_owned(), number)) {
                recreated.insert(name);
            }
            let start = match action {
                Action::Create | Action::Recreate => {
                    if let Some(image) = &image
                        && !observed.images.contains_key(image)
                        && !image_ops.contains_key(image)
                        && !missing.iter().any(|m| m.service == name)
                    {
                        missing.push(MissingImage {
                            service: name.to_owned(),
                            image: image.clone(),
                            why: unfetched_reason(name, service, options),
                        });
                    }
                    let op = plan.push(action, resource.clone(), cause.clone());
                    plan.operations[op].after = create_after.clone();
                    plan.operations[op].renew_anon_volumes =
                        action == Action::Recreate && options.renew_anon_volumes;
                    made.push(op);
                    if options.no_start {
                        continue;
                    }
                    let start = plan.push(Action::Start, resource, cause);
                    plan.operations[start].after = std::iter::once(op)
                        .chain(start_after.iter().copied())
                        .collect();
                    start
                }
                _ => {
                    let op = plan.push(action, resource, cause);
                    plan.operations[op].after = start_after.clone();
                    op
                }
            };
            plan.operations[start].waits = waits.clone();
            starts.push(start);
        }
        start_ops.insert(name, starts);
        made_ops.insert(name, made);

        // Scale down: the highest-numbered replicas go first.
        for c in existing
            .iter()
            .rev()
            .filter(|c| c.number > want && !taken.contains_key(&(c.service.clone(), c.number)))
        {
            plan.push(
                Action::Remove,
                Resource::Container {
                    service: name.to_owned(),
                    number: c.number,
                    name: c.name.clone(),
                },
                Cause::ScaleDown,
            );
        }
    }

    // Containers of services no longer in the file.
    for (service, list) in &by_service {
        if project.services.contains_key(*service) {
            continue;
        }
        for c in list.iter().rev() {
            if options.ignore_orphans && !options.remove_orphans {
                continue;
            }
            if options.remove_orphans {
                plan.push(
                    Action::Remove,
                    Resource::Container {
                        service: (*service).to_owned(),
                        number: c.number,
                        name: c.name.clone(),
                    },
                    Cause::Orphan,
                );
            } else {
                plan.notes.push(format!(
                    "orphan container {} (service {service} is not in the file); --remove-orphans removes it",
                    c.name
                ));
            }
        }
    }
    if !missing.is_empty() {
        return Err(ReconcileError::ImageMissing { missing });
    }
    Ok(plan)
}

/// Why a missing image is neither built nor pulled, as the error says it.
fn unfetched_reason(name: &str, service: &Service, options: &ReconcileOptions) -> String {
    if service.build.is_some() && options.no_build {
        format!(
            "--no-build forbids building it (run `stack build {name}`, or `up` without --no-build)"
        )
    } else if service.pull_policy == Some(PullPolicy::Never) {
        "its pull_policy is never (pull it with `stack pull`, or load it)".to_owned()
    } else {
        "nothing builds or pulls it (pull_policy: build without a build section)".to_owned()
    }
}

/// `stack down`: every container of the project (one-offs, then dependents
/// before what they depend on), then its networks, then with `volumes` its
/// named volumes.
pub fn plan_down(project: Option<&Project>, observed: &Observed, volumes: bool) -> Plan {
    let mut plan = Plan::default();
    let order: Vec<&str> = project.map(|p| p.start_order()).unwrap_or_default();
    let rank = |service: &str| {
        order
            .iter()
            .position(|s| *s == service)
            .map_or(usize::MAX, |i| i)
    };
    let mut plan_one_offs = Vec::new();
    // One-off containers first: nothing depends on them.
    for c in &observed.one_offs {
        plan_one_offs.push(plan.push(
            Action::Remove,
            Resource::Container {
                service: c.service.clone(),
                number: c.number,
                name: c.name.clone(),
            },
            Cause::Down,
        ));
    }
    let mut containers: Vec<&ObservedContainer> = observed.containers.iter().collect();
    // Reverse start order; unknown (orphan) services first, then by name.
    containers.sort_by(|a, b| {
        rank(&b.service)
            .cmp(&rank(&a.service))
            .then_with(|| a.service.cmp(&b.service))
            .then_with(|| b.number.cmp(&a.number))
    });
    let mut removed: HashMap<&str, Vec<OpId>> = HashMap::new();
    let mut all = plan_one_offs;
    for c in containers {
        let op = plan.push(
            Action::Remove,
            Resource::Container {
                service: c.service.clone(),
                number: c.number,
                name: c.name.clone(),
            },
            Cause::Down,
        );
        // A container is removed after the containers that depend on it or
        // share its namespaces.
        if let Some(p) = project {
            plan.operations[op].after = p
                .services
                .iter()
                .filter(|(_, s)| {
                    s.depends_on.contains_key(&c.service)
                        || namespace_parents(s).contains(&c.service)
                })
                .flat_map(|(dependent, _)| {
                    removed.get(dependent.as_str()).cloned().unwrap_or_default()
                })
                .collect();
        }
        removed.entry(c.service.as_str()).or_default().push(op);
        all.push(op);
    }
    for name in &observed.networks {
        let op = plan.push(Action::Remove, Resource::Network(name.clone()), Cause::Down);
        plan.operations[op].after = all.clone();
    }
    if volumes {
        for name in &observed.volumes {
            let op = plan.push(Action::Remove, Resource::Volume(name.clone()), Cause::Down);
            plan.operations[op].after = all.clone();
        }
    }
    plan
}
