//! Per-stack bridges, veth pairs, IPAM, service-name DNS and published ports over netlink.
//!
//! [`NetworkManager`] is the entry point: it creates a bridge per network,
//! connects containers through veth pairs into pinned network namespaces,
//! leases addresses (persisted, locked), serves each network's names from an
//! embedded DNS server, publishes ports with nftables DNAT and removes every
//! kernel object of a project on `cleanup_project`, also after a crash.

mod batch;
mod dns;
mod error;
mod files;
mod ipam;
mod link;
mod manager;
mod naming;
mod netns;
mod nft;
mod ports;
mod reaper;
mod state;
mod types;

pub use error::{NetError, Result};
pub use ipam::Subnet;
pub use manager::NetworkManager;
pub use naming::PREFIX as NAME_PREFIX;
pub use types::{
    AttachRequest, Attachment, ExternalRef, Interface, NetOptions, Network, NetworkAttachment,
    NetworkSpec, PortMapping, Protocol, PublishedPort,
};

/// Prefix of every kernel object (links, netns files, nft table) of `project`
/// as recorded in the state under `state_dir`, for leak checks; `None` when the
/// project has no state.
pub fn project_object_prefix(state_dir: &std::path::Path, project: &str) -> Result<Option<String>> {
    let store = state::Store::new(stack_fs::Layout::of_root(state_dir).net());
    let lock = store.lock()?;
    let st = store.load(&lock)?;
    Ok(st
        .projects
        .get(project)
        .map(|p| naming::link_prefix(&p.tag)))
}
