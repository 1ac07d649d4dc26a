//! Errors of the networking layer.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::ipam::Subnet;

/// Everything that can go wrong while managing networks.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("state file {path}: {source}")]
    StateIo { path: PathBuf, source: io::Error },
    /// Saving the state failed; the error names the operation and path.
    #[error("network state: {0}")]
    StateWrite(stack_fs::Error),
    #[error("state file {path} is corrupt: {source}")]
    StateCorrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("netlink {op} failed: {source}")]
    Netlink {
        op: String,
        source: rtnetlink::Error,
    },
    #[error("netlink socket: {0}")]
    NetlinkSocket(io::Error),
    #[error("interface {0} not found")]
    LinkNotFound(String),
    #[error("network namespace {path}: {op}: {source}")]
    Netns {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error("network {project}/{name} does not exist")]
    UnknownNetwork { project: String, name: String },
    #[error("external network {0} does not exist")]
    UnknownExternalNetwork(String),
    #[error("container {0} is not attached")]
    NotAttached(String),
    #[error("network {0} exists with a different configuration; remove it first")]
    NetworkChanged(String),
    #[error("network {0} still has containers attached")]
    NetworkInUse(String),
    #[error("container {0} has no network that can publish ports")]
    NothingToPublish(String),
    #[error("container {0} is already attached")]
    AlreadyAttached(String),
    #[error(
        "no free subnet in the pool (all /{prefix} of {pool} overlap host routes or other networks)"
    )]
    SubnetPoolExhausted { pool: String, prefix: u8 },
    #[error("subnet {subnet} overlaps {other}")]
    SubnetOverlap { subnet: Subnet, other: String },
    #[error("invalid subnet {0:?}")]
    InvalidSubnet(String),
    #[error("gateway {gateway} is not inside subnet {subnet}")]
    GatewayOutsideSubnet { gateway: Ipv4Addr, subnet: Subnet },
    #[error("no free address left in {0}")]
    AddressPoolExhausted(Subnet),
    #[error("address {address} is not usable in {subnet}")]
    AddressOutsideSubnet { address: Ipv4Addr, subnet: Subnet },
    #[error("address {address} is already in use on {network}")]
    AddressInUse { address: Ipv4Addr, network: String },
    #[error("too many interfaces for project {0}")]
    NamesExhausted(String),
    #[error("nft {action}: {detail}")]
    Nft {
        action: &'static str,
        detail: String,
    },
    #[error("running nft: {0}")]
    NftSpawn(io::Error),
    #[error("invalid port mapping {0:?}: {1}")]
    InvalidPort(String, &'static str),
    #[error("host port {host_ip}:{port}/{protocol} is not available: {source}")]
    PortUnavailable {
        host_ip: Ipv4Addr,
        port: u16,
        protocol: &'static str,
        source: io::Error,
    },
    #[error("dns listener on {addr}: {source}")]
    DnsBind {
        addr: std::net::SocketAddr,
        source: io::Error,
    },
    #[error("sysctl {path}: {source}")]
    Sysctl { path: String, source: io::Error },
    #[error("{what}: {source}")]
    Thread {
        what: &'static str,
        source: io::Error,
    },
}

pub type Result<T, E = NetError> = std::result::Result<T, E>;
