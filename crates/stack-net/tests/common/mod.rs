//! Shared fixtures of the root integration tests: a manager over a temporary
//! state/run dir, a unique project, a drop guard that cleans the project up
//! even when the test panics, and helpers that run traffic inside the
//! namespaces the tests create.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use stack_net::{
    AttachRequest, Attachment, NetOptions, NetworkAttachment, NetworkManager, NetworkSpec, Subnet,
};

pub fn require_root() {
    assert!(
        stack_testing::is_root(),
        "stack-net integration tests need root (real bridges and namespaces)"
    );
    for tool in ["nft", "busybox", "nsenter", "ip"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "tests need `{tool}` (Debian packages: nftables busybox-static util-linux iproute2)"
        );
    }
}

/// A test-only /24 in 10.201.0.0/16, one per test (`index` unique per test),
/// checked against the host's routes.
pub fn test_subnet(index: u8) -> Subnet {
    let subnet: Subnet = format!("10.201.{index}.0/24").parse().unwrap();
    let routes = String::from_utf8(
        Command::new("ip")
            .args(["-4", "route", "show", "table", "all"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for line in routes.lines() {
        let dst = line.split_whitespace().next().unwrap_or("");
        if let Some(other) = dst.parse::<Subnet>().ok().or_else(|| {
            dst.parse::<Ipv4Addr>()
                .ok()
                .map(|a| Subnet::new(a, 32).unwrap())
        }) && other.prefix() > 0
            && !line.contains("stk-")
        {
            assert!(
                !other.overlaps(&subnet),
                "test subnet {subnet} overlaps host route {line}"
            );
        }
    }
    subnet
}

pub fn spec(subnet: Subnet) -> NetworkSpec {
    NetworkSpec {
        subnet: Some(subnet),
        ..NetworkSpec::default()
    }
}

/// A manager plus a unique project; cleans the project up on drop.
pub struct Env {
    pub mgr: Arc<NetworkManager>,
    pub project: String,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new(test: &str) -> Self {
        Self::with_options(
            test,
            NetOptions {
                upstream_dns: Some(Vec::new()),
                ..NetOptions::default()
            },
        )
    }

    pub fn with_options(test: &str, options: NetOptions) -> Self {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        let mgr = NetworkManager::new(&dir.path().join("state"), &dir.path().join("run"), options);
        let project = format!("t{}-{test}", std::process::id());
        Self {
            mgr: Arc::new(mgr),
            project,
            dir,
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn request(&self, id: &str, service: &str, networks: &[(&str, &[&str])]) -> AttachRequest {
        AttachRequest {
            project: self.project.clone(),
            container_id: format!("{}-{id}", self.project),
            container_name: format!("{}-{id}", self.project),
            service: service.to_string(),
            hostname: Some(format!("host-{id}")),
            networks: networks
                .iter()
                .map(|(n, aliases)| NetworkAttachment {
                    network: n.to_string(),
                    aliases: aliases.iter().map(|a| a.to_string()).collect(),
                    ipv4_address: None,
                })
                .collect(),
            ..AttachRequest::default()
        }
    }

    /// `stk-TAG` prefix of this project's kernel objects.
    pub fn prefix(&self) -> String {
        stack_net::project_object_prefix(&self.state_dir(), &self.project)
            .unwrap()
            .expect("project has state")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let (mgr, project) = (self.mgr.clone(), self.project.clone());
        // Its own runtime: the test's runtime may be unwinding.
        let res = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(mgr.cleanup_project(&project))
        })
        .join();
        if !std::thread::panicking() {
            res.unwrap().unwrap();
        }
    }
}

/// Counts of a prefix's kernel objects: links, netns files, nft tables.
pub fn leaks(prefix: &str, run_dir: &Path) -> (usize, usize, usize) {
    let links = String::from_utf8(
        Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let links = links.lines().filter(|l| l.contains(prefix)).count();
    let netns = std::fs::read_dir(run_dir.join("netns"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .count()
        })
        .unwrap_or(0);
    let tables = String::from_utf8(
        Command::new("nft")
            .args(["list", "tables"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let tables = tables.lines().filter(|l| l.contains(prefix)).count();
    (links, netns, tables)
}

/// Runs a command inside the namespace.
pub fn ns_cmd(netns: &Path, args: &[&str]) -> Output {
    Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .arg("--")
        .args(args)
        .output()
        .unwrap()
}

/// Runs a shell snippet inside the namespace with the attachment's
/// resolv.conf bound over /etc/resolv.conf (private mount namespace).
pub fn ns_sh_with_resolv(att: &Attachment, dir: &Path, script: &str) -> Output {
    let resolv = dir.join(format!(
        "resolv-{}",
        att.netns.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&resolv, &att.resolv_conf).unwrap();
    let script = format!(
        "mount --bind {} /etc/resolv.conf && {script}",
        resolv.display()
    );
    Command::new("nsenter")
        .arg(format!("--net={}", att.netns.display()))
        .args(["--", "unshare", "-m", "sh", "-c", &script])
        .output()
        .unwrap()
}

/// Addresses `busybox nslookup NAME SERVER` reports inside the namespace.
pub fn nslookup(netns: &Path, name: &str, server: Ipv4Addr) -> Vec<Ipv4Addr> {
    let out = ns_cmd(
        netns,
        &[
            "timeout",
            "5",
            "busybox",
            "nslookup",
            "-type=a",
            name,
            &server.to_string(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut after_name = false;
    let mut addrs = Vec::new();
    for line in text.lines() {
        if line.starts_with("Name:") {
            after_name = true;
        } else if after_name
            && let Some(a) = line.strip_prefix("Address:")
            && let Ok(ip) = a.trim().parse()
        {
            addrs.push(ip);
        }
    }
    addrs.sort();
    addrs
}

/// Runs `f` on a thread inside the namespace.
pub fn in_netns<R: Send + 'static>(
    netns: &Path,
    f: impl FnOnce() -> R + Send + 'static,
) -> std::thread::JoinHandle<R> {
    let file = std::fs::File::open(netns).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
}

/// A TCP echo server (one line per connection) inside the namespace.
pub fn tcp_echo_server(netns: &Path, port: u16) {
    let (tx, rx) = std::sync::mpsc::channel();
    in_netns(netns, move || {
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        tx.send(()).unwrap();
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                if let Ok(n) = s.read(&mut buf) {
                    let _ = s.write_all(&buf[..n]);
                }
            });
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
}

/// A UDP echo server inside the namespace.
pub fn udp_echo_server(netns: &Path, port: u16) {
    let (tx, rx) = std::sync::mpsc::channel();
    in_netns(netns, move || {
        let s = UdpSocket::bind(("0.0.0.0", port)).unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], peer);
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
}

/// Sends `msg` over TCP from the current namespace and returns the echo.
pub fn tcp_roundtrip(addr: SocketAddr, msg: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(msg.as_bytes())?;
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

pub fn udp_roundtrip(addr: SocketAddr, msg: &str) -> std::io::Result<String> {
    let s = UdpSocket::bind("0.0.0.0:0")?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.send_to(msg.as_bytes(), addr)?;
    let mut buf = [0u8; 512];
    let (n, _) = s.recv_from(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// TCP round trip from inside a namespace, the peer named by `host` resolved
/// through the attachment's resolv.conf (busybox nc, glibc resolver).
pub fn nc_by_name(att: &Attachment, dir: &Path, host: &str, port: u16, msg: &str) -> String {
    let out = ns_sh_with_resolv(
        att,
        dir,
        &format!("echo {msg} | timeout 5 busybox nc -w 2 {host} {port}"),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A-record lookup over DNS-over-TCP from inside the namespace (no size limit).
pub fn dns_tcp_lookup(netns: &Path, name: &str, server: Ipv4Addr) -> Vec<Ipv4Addr> {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    let mut q = Message::query();
    q.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let bytes = q.to_vec().unwrap();
    in_netns(netns, move || {
        let mut s =
            TcpStream::connect_timeout(&SocketAddr::from((server, 53)), Duration::from_secs(2))
                .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(&(bytes.len() as u16).to_be_bytes()).unwrap();
        s.write_all(&bytes).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).unwrap();
        let m = Message::from_vec(&buf).unwrap();
        let mut out: Vec<Ipv4Addr> = m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect();
        out.sort();
        out
    })
    .join()
    .unwrap()
}
