//! Outbound traffic is masqueraded to the host's address; internal networks
//! get none.

mod common;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;

use common::*;
use stack_net::NetworkSpec;

/// A namespace standing in for the internet: `eth0` with `.2` behind a host
/// veth with `.1`, both in a test-only /24. Removed on drop.
struct Internet {
    name: String,
    host_if: String,
}

impl Internet {
    fn new(index: u8) -> Self {
        let subnet = test_subnet(index);
        let name = format!("tinet{}", std::process::id());
        let host_if = format!("tih{}", std::process::id());
        let base = subnet.network().octets();
        let (host_ip, peer_ip) = (
            Ipv4Addr::new(base[0], base[1], base[2], 1),
            Ipv4Addr::new(base[0], base[1], base[2], 2),
        );
        let me = Self {
            name: name.clone(),
            host_if: host_if.clone(),
        };
        let run = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&["netns", "add", &name]);
        run(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns", &name,
        ]);
        run(&["addr", "add", &format!("{host_ip}/24"), "dev", &host_if]);
        run(&["link", "set", &host_if, "up"]);
        run(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{peer_ip}/24"),
            "dev",
            "eth0",
        ]);
        run(&["-n", &name, "link", "set", "eth0", "up"]);
        run(&["-n", &name, "link", "set", "lo", "up"]);
        me
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Answers each connection with the address it came from.
fn peer_reporting_server(netns: &std::path::Path, port: u16) {
    let (tx, rx) = std::sync::mpsc::channel();
    in_netns(netns, move || {
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        tx.send(()).unwrap();
        for s in l.incoming().flatten() {
            let mut s: TcpStream = s;
            let peer = s.peer_addr().unwrap().ip().to_string();
            let _ = s.write_all(peer.as_bytes());
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
}

fn read_from(addr: SocketAddr) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_is_masqueraded_and_internal_networks_stay_inside() {
    stack_testing::require_root!();
    let env = Env::new("out");
    let inet = Internet::new(31);
    peer_reporting_server(&inet.path(), 9000);
    let target = SocketAddr::from((Ipv4Addr::new(10, 201, 31, 2), 9000));

    env.mgr
        .ensure_network(&env.project, "default", &spec(test_subnet(32)))
        .await
        .unwrap();
    let internal = NetworkSpec {
        internal: true,
        ..spec(test_subnet(33))
    };
    env.mgr
        .ensure_network(&env.project, "private", &internal)
        .await
        .unwrap();
    let app = env
        .mgr
        .attach(&env.request("app-1", "app", &[("default", &[])]))
        .await
        .unwrap();
    let locked = env
        .mgr
        .attach(&env.request("locked-1", "locked", &[("private", &[])]))
        .await
        .unwrap();

    let seen = in_netns(&app.netns, move || read_from(target))
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(
        seen, "10.201.31.1",
        "the peer must see the host's address, not {}",
        app.interfaces[0].address
    );

    let r = in_netns(&locked.netns, move || read_from(target))
        .join()
        .unwrap();
    assert!(r.is_err(), "internal network reached the outside: {r:?}");
}
