//! Single containers (`stack container run`) as projects of the engine: all
//! single containers of one `--root` form one project, each container one
//! service of it named after the container, so that they share the engine's
//! store, monitor, restart policies, health checks, logs, events and
//! adoption with stack files, and one default bridge (Docker's `docker0`).
//!
//! The project's name is `_ctr-` and eight hex digits of the root's path:
//! a stack file's project name always begins with a letter or digit (the
//! loader trims a leading `_`), so no user project can take it, and two
//! roots on one host never share one.

use std::collections::BTreeSet;
use std::path::Path;

use sha2::{Digest, Sha256};
use stack_spec::{MountType, NetworkMode, Project, Service, Volume};

use crate::observed::Observed;
use crate::plan::{Action, Cause, Plan, Resource};

/// What every single-container project name begins with.
pub const PREFIX: &str = "_ctr-";

/// The network key (and name in `stack-net`) of the default bridge.
pub const NETWORK: &str = "bridge";

/// The single-container project of `root`.
pub fn project_name(root: &Path) -> String {
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    format!("{PREFIX}{}", &hex::encode(digest)[..8])
}

/// Whether `project` is a single-container project (its supervisor ends
/// when its last container is removed, taking the bridge with it).
pub fn is_single(project: &str) -> bool {
    project.starts_with(PREFIX)
}

/// The project that carries one container: `service` as the service
/// `name`, on the default bridge unless it has another network mode, with
/// its named volumes declared under their own names (as `docker run -v
/// name:/path` makes them).
pub fn project(root: &Path, name: &str, mut service: Service) -> Project {
    let mut project = Project {
        name: project_name(root),
        ..Project::default()
    };
    if matches!(service.network_mode, None | Some(NetworkMode::Bridge)) {
        service.network_mode = None;
        service.networks.clear();
        service.networks.insert(NETWORK.to_owned(), None);
        project
            .networks
            .insert(NETWORK.to_owned(), stack_spec::Network::default());
    }
    for v in service
        .volumes
        .iter()
        .filter(|v| v.kind == MountType::Volume)
    {
        if let Some(source) = &v.source {
            project.volumes.insert(
                source.clone(),
                Volume {
                    name: Some(source.clone()),
                    ..Volume::default()
                },
            );
        }
    }
    service.container_name = Some(name.to_owned());
    project.services.insert(name.to_owned(), service);
    project
}

/// `current` with the services, networks and volumes of `added` (a
/// one-container project) put in: the supervisor serves every container
/// of the root, so a new one joins rather than replaces the others.
pub fn merge(current: &Project, added: Project) -> Project {
    let mut out = current.clone();
    out.name = added.name;
    out.services.extend(added.services);
    out.networks.extend(added.networks);
    out.volumes.extend(added.volumes);
    out
}

/// `current` without the services of containers that are gone (`rm`,
/// `--rm`): the project lists the containers that exist, not every one the
/// root ever ran. Networks and volumes stay (named volumes outlive their
/// containers, as Docker's do).
pub fn retain_existing(current: &Project, existing: &BTreeSet<String>) -> Project {
    let mut out = current.clone();
    out.services.retain(|name, _| existing.contains(name));
    out
}

/// What goes once the single-container project `project` has no
/// container left: its networks (the default bridge, its rules and DNS).
/// Empty for a stack file's project, or while any container remains.
/// Named volumes stay, as Docker's outlive their containers.
pub fn plan_retire(project: &str, observed: &Observed) -> Plan {
    let mut plan = Plan::default();
    if !is_single(project) || !observed.containers.is_empty() || !observed.one_offs.is_empty() {
        return plan;
    }
    for name in &observed.networks {
        plan.push(
            Action::Remove,
            Resource::Network(name.clone()),
            Cause::LastContainerGone,
        );
    }
    plan
}

/// `observed` as it will be once the containers of `services` are
/// removed: what `rm --dry-run` plans the retirement from.
pub fn without_services(observed: &Observed, services: &[String]) -> Observed {
    let mut out = observed.clone();
    let gone = |s: &String| services.is_empty() || services.contains(s);
    out.containers.retain(|c| !gone(&c.service));
    out.one_offs.retain(|c| !gone(&c.service));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_reserved_and_differ_per_root() {
        let a = project_name(Path::new("/nonexistent/a"));
        assert_ne!(a, project_name(Path::new("/nonexistent/b")));
        assert!(is_single(&a) && a.len() == 13);
        // A stack file's project name never begins with `_`: asking for
        // this one gives another.
        let mut options = stack_spec::LoadOptions::new("/tmp")
            .with_content("stack.yaml", "services:\n  a:\n    image: busybox\n");
        options.project_name = Some(a);
        let loaded = stack_spec::load(&options).unwrap().project.name;
        assert!(!is_single(&loaded), "{loaded}");
    }

    #[test]
    fn a_container_joins_the_bridge_and_the_others() {
        let service = Service {
            image: Some("busybox".into()),
            volumes: vec![stack_spec::ServiceVolume {
                kind: MountType::Volume,
                source: Some("data".into()),
                target: "/data".into(),
                read_only: false,
                consistency: None,
                bind: None,
                volume: None,
                tmpfs: None,
                image: None,
            }],
            ..Service::default()
        };
        let one = project(Path::new("/nonexistent"), "one", service.clone());
        assert_eq!(one.services["one"].container_name.as_deref(), Some("one"));
        assert!(one.services["one"].networks.contains_key(NETWORK));
        assert_eq!(one.volumes["data"].name.as_deref(), Some("data"));
        let host = Service {
            network_mode: Some(NetworkMode::Host),
            ..service
        };
        let two = project(Path::new("/nonexistent"), "two", host);
        assert!(two.services["two"].networks.is_empty());
        let both = merge(&one, two);
        assert_eq!(both.services.keys().collect::<Vec<_>>(), ["one", "two"]);
        assert!(both.networks.contains_key(NETWORK));
        let left = retain_existing(&both, &BTreeSet::from(["two".to_owned()]));
        assert_eq!(left.services.keys().collect::<Vec<_>>(), ["two"]);
        assert_eq!(left.volumes, both.volumes);
        assert_eq!(left.networks, both.networks);
    }
}
