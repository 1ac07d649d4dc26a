//! The default network of single containers, Docker's `docker0`: one bridge
//! per root, made on first use and kept, with no embedded DNS (containers use
//! the host's resolvers, as on Docker's default bridge).

use std::net::IpAddr;
use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};
use stack_net::{
    AttachRequest, Attachment, NetError, NetworkAttachment, NetworkManager, NetworkSpec,
    PortMapping, PublishedPort,
};

use crate::cli::GlobalArgs;
use crate::client;

/// The network name inside its project, as `docker network ls` shows it.
pub const BRIDGE: &str = "bridge";

/// The networking project the default bridge belongs to. Named after the
/// root, so that two roots on one host (tests, mostly) never share a bridge;
/// the leading `_` keeps it apart from every stack project name.
pub fn project(root: &Path) -> String {
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    format!("_ctr-{}", &hex::encode(digest)[..8])
}

pub fn manager(global: &GlobalArgs) -> anyhow::Result<NetworkManager> {
    let config = client::host_config(global)?;
    Ok(NetworkManager::new(
        &global.root,
        &global.run_dir,
        config.net,
    ))
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Connects a container to the default bridge, creating the bridge when it
/// does not exist (first use, or after a reboot took the link away).
pub async fn attach_bridge(
    manager: &NetworkManager,
    root: &Path,
    id: &str,
    name: &str,
    hostname: &str,
) -> anyhow::Result<Attachment> {
    let project = project(root);
    let request = AttachRequest {
        project: project.clone(),
        container_id: id.to_owned(),
        container_name: name.to_owned(),
        service: String::new(),
        hostname: Some(hostname.to_owned()),
        networks: vec![NetworkAttachment {
            network: BRIDGE.to_owned(),
            ..Default::default()
        }],
        ..Default::default()
    };
    // The common case (the bridge is up) costs no netlink or nft round trip
    // beyond the container's own veth.
    match manager.attach(&request).await {
        Ok(a) => return Ok(a),
        Err(NetError::UnknownNetwork { .. } | NetError::LinkNotFound(_)) => {}
        Err(e) => return Err(e).context("connecting to the default bridge"),
    }
    manager
        .ensure_network(&project, BRIDGE, &NetworkSpec::default())
        .await
        .context("creating the default bridge")?;
    manager
        .attach(&request)
        .await
        .context("connecting to the default bridge")
}

/// `--network none`: a namespace with only `lo`.
pub async fn attach_none(
    manager: &NetworkManager,
    root: &Path,
    id: &str,
) -> anyhow::Result<Attachment> {
    let request = AttachRequest {
        project: project(root),
        container_id: id.to_owned(),
        ..Default::default()
    };
    manager
        .attach(&request)
        .await
        .context("creating the network namespace")
}

pub async fn publish(
    manager: &NetworkManager,
    id: &str,
    mappings: &[PortMapping],
) -> anyhow::Result<Vec<PublishedPort>> {
    if mappings.is_empty() {
        return Ok(Vec::new());
    }
    manager
        .publish(id, mappings)
        .await
        .context("publishing ports")
}

/// Disconnects a container; nothing to do when it never was connected.
pub async fn detach(manager: &NetworkManager, id: &str) -> anyhow::Result<()> {
    match manager.detach(id).await {
        Ok(()) | Err(NetError::NotAttached(_)) => Ok(()),
        Err(e) => Err(e).context("disconnecting from the network"),
    }
}

/// Disconnects a removed container, when it still is connected, and drops
/// the addresses the network state kept for its return.
pub async fn forget(manager: &NetworkManager, id: &str) -> anyhow::Result<()> {
    manager
        .forget(id)
        .await
        .context("removing the container from the network state")
}

/// Removes the default bridge, its rules and DNS server once no container of
/// this root is on it or stopped with an address kept there: the network
/// goes with its last container instead of outliving the root.
pub async fn release_unused(manager: &NetworkManager, root: &Path) -> anyhow::Result<()> {
    manager
        .cleanup_project_if_unused(&project(root))
        .await
        .map(drop)
        .context("removing the unused default bridge")
}

/// The container's `/etc/resolv.conf` on the default bridge: the host's,
/// without loopback resolvers (unreachable from the container's namespace),
/// Docker's public fallback when none is left.
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                let Some(addr) = words.next().and_then(|a| a.parse::<IpAddr>().ok()) else {
                    continue;
                };
                if addr.is_loopback() {
                    continue;
                }
                servers += 1;
                out.push_str(line.trim());
                out.push('\n');
            }
            Some("search" | "options" | "domain") => {
                out.push_str(line.trim());
                out.push('\n');
            }
            _ => {}
        }
    }
    if servers == 0 {
        out.insert_str(0, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// The container's address on the default bridge, from the network state.
pub fn address(global: &GlobalArgs, id: &str) -> Option<std::net::Ipv4Addr> {
    let manager = manager(global).ok()?;
    let leases = runtime()
        .ok()?
        .block_on(manager.leases(&project(&global.root)));
    leases
        .ok()?
        .into_iter()
        .find(|(owner, _, _)| owner == id)
        .map(|(_, _, address)| address)
}

/// The published ports of a container, from the network state.
pub fn published(global: &GlobalArgs, id: &str) -> Vec<PublishedPort> {
    let Ok(manager) = manager(global) else {
        return Vec::new();
    };
    let Ok(rt) = runtime() else {
        return Vec::new();
    };
    rt.block_on(manager.published(id)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_loopback_resolvers() {
        let host = "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch example.org\noptions edns0\n";
        assert_eq!(
            resolv_conf(host),
            "nameserver 192.0.2.1\nsearch example.org\noptions edns0\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.1\n"),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }

    #[test]
    fn project_names_differ_per_root() {
        let a = project(Path::new("/nonexistent/a"));
        assert_ne!(a, project(Path::new("/nonexistent/b")));
        assert!(a.starts_with("_ctr-") && a.len() == 13);
    }
}
