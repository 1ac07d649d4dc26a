//! The public data types of the networking API.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ipam::Subnet;

/// Settings of a [`crate::NetworkManager`].
#[derive(Clone, Debug)]
pub struct NetOptions {
    /// Ranges subnets are taken from when a network names none.
    pub subnet_pool: Vec<Subnet>,
    /// Size of each network taken from the pool.
    pub subnet_prefix: u8,
    /// Resolvers the embedded DNS forwards unknown names to; `None` reads the
    /// host's `/etc/resolv.conf`.
    pub upstream_dns: Option<Vec<SocketAddr>>,
    /// Port the embedded DNS listens on at each gateway (53 in production).
    pub dns_port: u16,
}

impl Default for NetOptions {
    fn default() -> Self {
        Self {
            subnet_pool: vec!["10.210.0.0/16".parse().expect("valid literal")],
            subnet_prefix: 24,
            upstream_dns: None,
            dns_port: 53,
        }
    }
}

/// A network as declared in the stack file (`networks.<name>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// `ipam.config[0].subnet`; taken from the pool when absent.
    pub subnet: Option<Subnet>,
    /// `ipam.config[0].gateway`; the first host address when absent.
    pub gateway: Option<Ipv4Addr>,
    /// `internal: true`: no outbound traffic, no published ports from outside.
    pub internal: bool,
    /// `external: true`: join the network of another project, named
    /// `external_project/name`; it must exist.
    pub external: Option<ExternalRef>,
}

/// The network an `external: true` entry refers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalRef {
    pub project: String,
    pub name: String,
}

/// A network that exists on the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub project: String,
    pub name: String,
    /// Linux bridge interface (`stk-…`).
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    pub internal: bool,
    /// MTU of the bridge; container interfaces use the same.
    pub mtu: u32,
}

/// One network a container joins (`services.<s>.networks.<n>`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkAttachment {
    /// Network name within the project (as given to `ensure_network`).
    pub network: String,
    pub aliases: Vec<String>,
    pub ipv4_address: Option<Ipv4Addr>,
}

/// Everything needed to connect one container.
#[derive(Clone, Debug, Default)]
pub struct AttachRequest {
    pub project: String,
    /// Stable id of the container (its state key).
    pub container_id: String,
    /// Container name (`project-service-1`), resolvable by peers.
    pub container_name: String,
    /// Service name, shared by all replicas.
    pub service: String,
    /// `hostname`; defaults to the container name.
    pub hostname: Option<String>,
    /// Networks in order: the first becomes `eth0`.
    pub networks: Vec<NetworkAttachment>,
    /// `dns`: resolvers written to resolv.conf instead of the embedded one.
    pub dns: Vec<IpAddr>,
    /// `dns_search`.
    pub dns_search: Vec<String>,
    /// `extra_hosts`: (name, address) lines appended to /etc/hosts.
    pub extra_hosts: Vec<(String, IpAddr)>,
}

/// One interface of an attached container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub network: String,
    /// Name inside the container (`eth0`, `eth1`, …).
    pub ifname: String,
    /// Host end of the veth pair (`stk-…`).
    pub host_veth: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

/// Result of [`crate::NetworkManager::attach`]: what the runtime needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Bind-mounted network namespace; the runtime joins it with `setns`.
    pub netns: PathBuf,
    pub interfaces: Vec<Interface>,
    /// Content for the container's `/etc/resolv.conf`.
    pub resolv_conf: String,
    /// Content for the container's `/etc/hosts`.
    pub hosts: String,
    /// Content for the container's `/etc/hostname`.
    pub hostname: String,
}

/// Transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One `ports:` entry. A range publishes `container_ports.0..=container_ports.1`
/// on a host range of the same length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMapping {
    /// `host_ip`; all host addresses when absent.
    pub host_ip: Option<Ipv4Addr>,
    /// First host port, or `None` for random ports.
    pub host_port: Option<u16>,
    /// Inclusive container port range (`(80, 80)` for a single port).
    pub container_ports: (u16, u16),
    pub protocol: Protocol,
}

/// A port that is published, with the host port resolved.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedPort {
    /// `None`: every host address.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
    pub protocol: Protocol,
}
