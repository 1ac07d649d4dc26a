//! Published ports: expansion of `ports:` entries (pure) and host port
//! reservation. A reserved port is held by a bound, non-listening socket for
//! as long as it is published, so no other program can take it and a random
//! port is the kernel's choice of a free one.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket};

use crate::error::{NetError, Result};
use crate::types::{PortMapping, Protocol};

/// One port to publish, host port still optional (random).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: Protocol,
}

/// Expands ranges into single ports and validates them.
pub fn expand(mappings: &[PortMapping]) -> Result<Vec<Wanted>> {
    let mut out = Vec::new();
    for m in mappings {
        let bad = |why| NetError::InvalidPort(format!("{m:?}"), why);
        let (first, last) = m.container_ports;
        if first == 0 || first > last {
            return Err(bad("container port range is empty or starts at 0"));
        }
        let len = last - first;
        if let Some(h) = m.host_port
            && (h == 0 || h.checked_add(len).is_none())
        {
            return Err(bad("host port range does not fit"));
        }
        for i in 0..=len {
            out.push(Wanted {
                host_ip: m.host_ip,
                host_port: m.host_port.map(|h| h + i),
                container_port: first + i,
                protocol: m.protocol,
            });
        }
    }
    Ok(out)
}

/// Binds (without listening) the wanted host port, or a kernel-chosen one;
/// returns the socket that holds it and the port.
pub fn reserve(w: &Wanted) -> Result<(OwnedFd, u16)> {
    let ip = w.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let port = w.host_port.unwrap_or(0);
    let err = |source: nix::Error| NetError::PortUnavailable {
        host_ip: ip,
        port,
        protocol: w.protocol.as_str(),
        source: source.into(),
    };
    let ty = match w.protocol {
        Protocol::Tcp => SockType::Stream,
        Protocol::Udp => SockType::Datagram,
    };
    let fd = socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None).map_err(err)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(ip, port)),
    )
    .map_err(err)?;
    let bound: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).map_err(err)?;
    Ok((fd, bound.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(host: Option<u16>, c: (u16, u16)) -> PortMapping {
        PortMapping {
            host_ip: None,
            host_port: host,
            container_ports: c,
            protocol: Protocol::Tcp,
        }
    }

    #[test]
    fn ranges_expand_pairwise() {
        let w = expand(&[m(Some(8000), (80, 82))]).unwrap();
        let pairs: Vec<_> = w.iter().map(|w| (w.host_port, w.container_port)).collect();
        assert_eq!(
            pairs,
            [(Some(8000), 80), (Some(8001), 81), (Some(8002), 82)]
        );
        let w = expand(&[m(None, (53, 53))]).unwrap();
        assert_eq!(w[0].host_port, None);
    }

    #[test]
    fn bad_ranges_are_rejected() {
        assert!(expand(&[m(None, (0, 1))]).is_err());
        assert!(expand(&[m(None, (90, 80))]).is_err());
        assert!(expand(&[m(Some(65535), (80, 81))]).is_err());
    }

    #[test]
    fn random_port_is_reserved_and_conflicts_are_reported() {
        let w = Wanted {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: None,
            container_port: 1,
            protocol: Protocol::Udp,
        };
        let (_fd, port) = reserve(&w).unwrap();
        assert_ne!(port, 0);
        let again = Wanted {
            host_port: Some(port),
            ..w
        };
        assert!(matches!(
            reserve(&again),
            Err(NetError::PortUnavailable { .. })
        ));
    }
}
