//! The embedded DNS server of a network, listening on its gateway address.
//!
//! It answers A queries for the names registered on that network (service,
//! container name, hostname, aliases; a scaled service maps to every replica)
//! from an in-memory zone that the manager updates as containers come and go,
//! so a peer sees a recreated container's new address on its next query
//! (answers carry TTL 0). Other names are forwarded to the host's resolvers.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use crate::error::{NetError, Result};
use crate::ipam::Subnet;

const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

/// Names of one network: lowercased name → (container id, address) pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Zone {
    names: BTreeMap<String, Vec<(String, Ipv4Addr)>>,
}

impl Zone {
    /// Registers `names` of `container` at `address`. Each name's
    /// containers stay in the order of their ids, whatever order they came
    /// in, so a zone changed record by record answers as one built whole.
    pub fn add(&mut self, container: &str, address: Ipv4Addr, names: &[String]) {
        for name in names {
            let entry = self.names.entry(normalise(name)).or_default();
            if let Err(at) = entry.binary_search_by(|(c, _)| c.as_str().cmp(container)) {
                entry.insert(at, (container.to_string(), address));
            }
        }
    }

    /// Forgets every name of `container`.
    pub fn remove(&mut self, container: &str) {
        self.names.retain(|_, entry| {
            entry.retain(|(c, _)| c != container);
            !entry.is_empty()
        });
    }

    pub fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        self.names
            .get(&normalise(name))
            .map(|v| v.iter().map(|(_, a)| *a).collect())
    }
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

pub type SharedZone = Arc<RwLock<Zone>>;

/// Brings a zone up to date before a lookup (changes made by another process
/// that shares the state); cheap when nothing changed.
pub type Refresh = Arc<dyn Fn(&SharedZone) + Send + Sync>;

/// What to do with one query.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Reply(Vec<u8>),
    Forward,
    Drop,
}

/// Decides the answer to one DNS message from the zone alone.
/// `udp` limits the answer to what the client can receive in one datagram
/// (512 bytes, or its EDNS size); a longer answer keeps the records that fit
/// and sets TC so the client can retry over TCP.
pub fn decide(zone: &Zone, request: &[u8], can_forward: bool, udp: bool) -> Decision {
    let Ok(req) = Message::from_vec(request) else {
        return Decision::Drop;
    };
    if req.metadata.message_type != MessageType::Query {
        return Decision::Drop;
    }
    let mut meta = Metadata::response_from_request(&req.metadata);
    meta.recursion_available = true;
    let mut resp = Message::new(meta.id, MessageType::Response, meta.op_code);
    resp.metadata = meta;
    resp.add_queries(req.queries.clone());
    let [query] = req.queries.as_slice() else {
        resp.metadata.response_code = ResponseCode::FormErr;
        return encode(&resp);
    };
    if req.metadata.op_code != OpCode::Query {
        resp.metadata.response_code = ResponseCode::NotImp;
        return encode(&resp);
    }
    let name = query.name().to_ascii();
    match zone.lookup(&name) {
        Some(addrs) => {
            resp.metadata.authoritative = true;
            if query.query_type() == RecordType::A {
                for a in addrs {
                    resp.add_answer(Record::from_rdata(query.name().clone(), 0, RData::A(A(a))));
                }
            }
            let limit = if udp {
                usize::from(req.max_payload().max(512))
            } else {
                usize::from(u16::MAX)
            };
            loop {
                match resp.to_vec() {
                    Ok(bytes) if bytes.len() > limit && !resp.answers.is_empty() => {
                        resp.answers.pop();
                        resp.metadata.truncation = true;
                    }
                    Ok(bytes) => return Decision::Reply(bytes),
                    Err(_) => return Decision::Drop,
                }
            }
        }
        // A bare name that is not ours cannot mean anything to the internet.
        None if !normalise(&name).contains('.') => {
            resp.metadata.response_code = ResponseCode::NXDomain;
            encode(&resp)
        }
        None if can_forward => Decision::Forward,
        None => {
            resp.metadata.response_code = ResponseCode::ServFail;
            encode(&resp)
        }
    }
}

/// REFUSED for a client outside the network: its names are not for others,
/// and a prompt answer spares the client a timeout.
pub fn refuse(request: &[u8]) -> Decision {
    let Ok(req) = Message::from_vec(request) else {
        return Decision::Drop;
    };
    if req.metadata.message_type != MessageType::Query {
        return Decision::Drop;
    }
    let mut resp = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
    resp.add_queries(req.queries);
    resp.metadata.response_code = ResponseCode::Refused;
    encode(&resp)
}

fn encode(msg: &Message) -> Decision {
    msg.to_vec().map(Decision::Reply).unwrap_or(Decision::Drop)
}

/// Sends the raw query to each upstream in turn; the first answer wins.
async fn forward(request: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    for up in upstream {
        let bind: SocketAddr = if up.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .ok()?;
        let Ok(sock) = UdpSocket::bind(bind).await else {
            continue;
        };
        if sock.send_to(request, up).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(FORWARD_TIMEOUT, sock.recv_from(&mut buf)).await
        {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

async fn answer(
    refresh: &Refresh,
    zone: &SharedZone,
    request: &[u8],
    upstream: &[SocketAddr],
    udp: bool,
) -> Option<Vec<u8>> {
    refresh(zone);
    let decision = {
        let z = zone.read().unwrap_or_else(|e| e.into_inner());
        decide(&z, request, !upstream.is_empty(), udp)
    };
    match decision {
        Decision::Reply(r) => Some(r),
        Decision::Drop => None,
        Decision::Forward => forward(request, upstream).await,
    }
}

/// A running server; stops when dropped.
pub struct DnsServer {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl DnsServer {
    /// Listens on UDP and TCP `addr`, answering only clients inside `subnet`
    /// so that a container cannot query another network's names.
    pub async fn start(
        addr: SocketAddr,
        subnet: Subnet,
        zone: SharedZone,
        refresh: Refresh,
        upstream: Vec<SocketAddr>,
    ) -> Result<Self> {
        let bind_err = |source| NetError::DnsBind { addr, source };
        let udp = Arc::new(UdpSocket::bind(addr).await.map_err(bind_err)?);
        let tcp = TcpListener::bind(addr).await.map_err(bind_err)?;
        let upstream = Arc::new(upstream);
        let allowed =
            move |peer: SocketAddr| matches!(peer.ip(), IpAddr::V4(ip) if subnet.contains(ip));

        let (z, up, rf) = (zone.clone(), upstream.clone(), refresh.clone());
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                if !allowed(peer) {
                    if let Decision::Reply(r) = refuse(&buf[..n]) {
                        let _ = udp.send_to(&r, peer).await;
                    }
                    continue;
                }
                let (req, sock) = (buf[..n].to_vec(), udp.clone());
                let (z, up, rf) = (z.clone(), up.clone(), rf.clone());
                tokio::spawn(async move {
                    if let Some(resp) = answer(&rf, &z, &req, &up, true).await {
                        let _ = sock.send_to(&resp, peer).await;
                    }
                });
            }
        });
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = tcp.accept().await else {
                    continue;
                };
                if !allowed(peer) {
                    continue;
                }
                let (z, up, rf) = (zone.clone(), upstream.clone(), refresh.clone());
                tokio::spawn(async move {
                    let _ = serve_tcp(stream, &rf, &z, &up).await;
                });
            }
        });
        Ok(Self {
            tasks: vec![udp_task, tcp_task],
        })
    }
}

async fn serve_tcp(
    mut stream: TcpStream,
    refresh: &Refresh,
    zone: &SharedZone,
    upstream: &[SocketAddr],
) -> std::io::Result<()> {
    loop {
        let len = match tokio::time::timeout(Duration::from_secs(10), stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            _ => return Ok(()),
        };
        let mut req = vec![0u8; len];
        stream.read_exact(&mut req).await?;
        let Some(resp) = answer(refresh, zone, &req, upstream, false).await else {
            return Ok(());
        };
        let len = u16::try_from(resp.len()).map_err(std::io::Error::other)?;
        stream.write_u16(len).await?;
        stream.write_all(&resp).await?;
    }
}

/// The host's resolvers from `resolv.conf` content. Loopback resolvers are
/// kept: the forwarder runs in the host's namespace, where they answer.
pub fn parse_resolv_conf(content: &str) -> Vec<SocketAddr> {
    content
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    fn reply(d: Decision) -> Message {
        match d {
            Decision::Reply(r) => Message::from_vec(&r).unwrap(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn a_records(m: &Message) -> Vec<Ipv4Addr> {
        m.answers
            .iter()
            .filter_map(|r| match r.data {
                RData::A(A(ip)) => Some(ip),
                _ => None,
            })
            .collect()
    }

    fn zone() -> Zone {
        let mut z = Zone::default();
        z.add(
            "c1",
            "10.0.0.2".parse().unwrap(),
            &["web".into(), "p-web-1".into(), "Alias".into()],
        );
        z.add(
            "c2",
            "10.0.0.3".parse().unwrap(),
            &["web".into(), "p-web-2".into()],
        );
        z
    }

    #[test]
    fn scaled_service_resolves_to_all_replicas() {
        let m = reply(decide(&zone(), &query("web.", RecordType::A), true, true));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            a_records(&m),
            [
                "10.0.0.2".parse::<Ipv4Addr>().unwrap(),
                "10.0.0.3".parse().unwrap()
            ]
        );
        assert!(m.answers.iter().all(|r| r.ttl == 0));
    }

    #[test]
    fn names_are_case_insensitive() {
        let m = reply(decide(&zone(), &query("ALIAS.", RecordType::A), true, true));
        assert_eq!(a_records(&m), ["10.0.0.2".parse::<Ipv4Addr>().unwrap()]);
    }

    #[test]
    fn known_name_other_type_is_empty_success() {
        let m = reply(decide(
            &zone(),
            &query("web.", RecordType::AAAA),
            true,
            true,
        ));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
    }

    #[test]
    fn unknown_bare_name_is_nxdomain_and_dotted_name_is_forwarded() {
        let m = reply(decide(&zone(), &query("db.", RecordType::A), true, true));
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(
            decide(&zone(), &query("example.org.", RecordType::A), true, true),
            Decision::Forward
        );
        let m = reply(decide(
            &zone(),
            &query("example.org.", RecordType::A),
            false,
            true,
        ));
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    }

    #[test]
    fn long_udp_answers_are_truncated_with_tc_but_not_over_tcp() {
        let mut z = Zone::default();
        for i in 0..60u8 {
            z.add(
                &format!("c{i}"),
                Ipv4Addr::new(10, 0, 0, i),
                &["svc".into()],
            );
        }
        let m = reply(decide(&z, &query("svc.", RecordType::A), true, true));
        assert!(m.metadata.truncation);
        assert!(!m.answers.is_empty() && m.answers.len() < 60);
        let m = reply(decide(&z, &query("svc.", RecordType::A), true, false));
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 60);
    }

    #[test]
    fn outsiders_are_refused() {
        let m = reply(refuse(&query("web.", RecordType::A)));
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        assert!(m.answers.is_empty());
    }

    #[test]
    fn garbage_is_dropped() {
        assert_eq!(decide(&zone(), b"\x01\x02", true, true), Decision::Drop);
    }

    #[test]
    fn resolv_conf_nameservers() {
        let got = parse_resolv_conf(
            "# c\nsearch x\nnameserver 10.255.255.53\nnameserver 127.0.0.53\nnameserver bad\n",
        );
        assert_eq!(
            got,
            [
                "10.255.255.53:53".parse::<SocketAddr>().unwrap(),
                "127.0.0.53:53".parse().unwrap()
            ]
        );
    }
}
