//! Interfaces, addresses and routes over rtnetlink.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{NetError, Result};
use crate::ipam::Subnet;

fn nl(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetError {
    let op = op.into();
    move |source| NetError::Netlink { op, source }
}

pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// A netlink connection driven by a task of the current runtime. Each
/// operation opens its own, which keeps the manager free of runtime-bound
/// state (cleanup may run from a different runtime than setup).
pub fn connect() -> Result<Handle> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(NetError::NetlinkSocket)?;
    tokio::spawn(conn);
    Ok(handle)
}

fn name_of(msg: &LinkMessage) -> Option<&str> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

fn mtu_of(msg: &LinkMessage) -> Option<u32> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    })
}

/// Index and MTU of the interface `name`, if it exists.
pub async fn get(h: &Handle, name: &str) -> Result<Option<(u32, u32)>> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some((msg.header.index, mtu_of(&msg).unwrap_or(1500)))),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("get link {name}"))(e)),
    }
}

/// Interfaces whose name starts with `prefix`.
pub async fn list(h: &Handle, prefix: &str) -> Result<Vec<(u32, String)>> {
    let links: Vec<LinkMessage> = h
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(nl("list links"))?;
    Ok(links
        .iter()
        .filter_map(|m| {
            name_of(m)
                .filter(|n| n.starts_with(prefix))
                .map(|n| (m.header.index, n.to_string()))
        })
        .collect())
}

/// Deletes the interface `name`; an absent one is fine (deleting one end of a
/// veth pair removes the other).
pub async fn delete(h: &Handle, name: &str) -> Result<()> {
    let Some((index, _)) = get(h, name).await? else {
        return Ok(());
    };
    match h.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(()),
        Err(e) => Err(nl(format!("delete link {name}"))(e)),
    }
}

/// A locally administered unicast MAC derived from the bridge name.
fn bridge_mac(name: &str) -> [u8; 6] {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(name.as_bytes());
    [0x02, h[0], h[1], h[2], h[3], h[4]]
}

/// Creates (or adopts) the bridge with `gateway/prefix` on it, up; returns
/// its MTU.
pub async fn ensure_bridge(h: &Handle, name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<u32> {
    if get(h, name).await?.is_none() {
        // A fixed address: otherwise the bridge takes the lowest MAC of its
        // ports and changes it when containers come and go, leaving stale
        // gateway entries in the containers' ARP caches.
        let msg = LinkBridge::new(name)
            .address(bridge_mac(name).to_vec())
            .build();
        match h.link().add(msg).execute().await {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc::EEXIST) => {}
            Err(e) => return Err(nl(format!("add bridge {name}"))(e)),
        }
    }
    let (index, mtu) = get(h, name)
        .await?
        .ok_or_else(|| NetError::LinkNotFound(name.to_string()))?;
    h.address()
        .add(index, IpAddr::V4(gateway), prefix)
        .replace()
        .execute()
        .await
        .map_err(nl(format!("add {gateway}/{prefix} to {name}")))?;
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl(format!("set {name} up")))?;
    Ok(mtu)
}

/// Creates a veth pair whose host end `host` is enslaved to `bridge_index` and
/// up, and whose other end is created directly inside `netns` as `inside`.
pub async fn add_veth(
    h: &Handle,
    host: &str,
    inside: &str,
    netns: &Path,
    bridge_index: u32,
    mtu: u32,
) -> Result<()> {
    let ns = std::fs::File::open(netns).map_err(|source| NetError::Netns {
        path: netns.to_path_buf(),
        op: "open",
        source,
    })?;
    let mut peer = LinkUnspec::new_with_name(inside).mtu(mtu).build();
    peer.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
    let msg = LinkVeth::new(host, inside)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .mtu(mtu)
        .controller(bridge_index)
        .up()
        .build();
    h.link()
        .add(msg)
        .execute()
        .await
        .map_err(nl(format!("add veth {host}")))?;
    drop(ns);
    // With br_netfilter, a container reaching its own published port through
    // a host address is DNATed back out of the port it came in on.
    let (index, _) = get(h, host)
        .await?
        .ok_or_else(|| NetError::LinkNotFound(host.to_string()))?;
    h.link()
        .set_port(LinkBridgePort::new(index).hairpin(true).build())
        .execute()
        .await
        .map_err(nl(format!("set hairpin on {host}")))
}

/// One address to configure inside a container.
#[derive(Clone, Debug)]
pub struct InsideAddress {
    pub ifname: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
}

/// Inside the namespace: `lo` up, each interface up with its address, and the
/// default route via `gateway` when there is one.
pub fn configure_inside(
    netns: &Path,
    addrs: Vec<InsideAddress>,
    gateway: Option<Ipv4Addr>,
) -> Result<()> {
    crate::netns::run_in(netns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| NetError::Thread {
                what: "namespace runtime",
                source,
            })?;
        rt.block_on(async move {
            let h = connect()?;
            let (lo, _) = get(&h, "lo")
                .await?
                .ok_or_else(|| NetError::LinkNotFound("lo".into()))?;
            h.link()
                .set(LinkUnspec::new_with_index(lo).up().build())
                .execute()
                .await
                .map_err(nl("set lo up"))?;
            for a in &addrs {
                let (index, _) = get(&h, &a.ifname)
                    .await?
                    .ok_or_else(|| NetError::LinkNotFound(a.ifname.clone()))?;
                h.address()
                    .add(index, IpAddr::V4(a.address), a.prefix)
                    .replace()
                    .execute()
                    .await
                    .map_err(nl(format!(
                        "add {}/{} to {}",
                        a.address, a.prefix, a.ifname
                    )))?;
                h.link()
                    .set(LinkUnspec::new_with_index(index).up().build())
                    .execute()
                    .await
                    .map_err(nl(format!("set {} up", a.ifname)))?;
            }
            if let Some(gw) = gateway {
                let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).build();
                h.route()
                    .add(route)
                    .replace()
                    .execute()
                    .await
                    .map_err(nl(format!("default route via {gw}")))?;
            }
            Ok(())
        })
    })?
}

/// IPv4 routes of the main table (default routes excluded), described for
/// error messages.
pub async fn host_routes(h: &Handle) -> Result<Vec<(Subnet, String)>> {
    let req = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let routes: Vec<_> = h
        .route()
        .get(req)
        .execute()
        .try_collect()
        .await
        .map_err(nl("list routes"))?;
    let mut out = Vec::new();
    for r in routes {
        if r.header.table != RouteHeader::RT_TABLE_MAIN || r.header.destination_prefix_length == 0 {
            continue;
        }
        let dst = r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
            _ => None,
        });
        if let Some(dst) = dst
            && let Ok(subnet) = Subnet::new(dst, r.header.destination_prefix_length)
        {
            out.push((subnet, format!("host route {subnet}")));
        }
    }
    Ok(out)
}
