//! The project's nftables table: rendered as a whole from plain data (pure,
//! unit-tested) and replaced atomically with one `nft -f` transaction.
//! Only our own table (`table ip stk-TAG`) is ever created or deleted.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::error::{NetError, Result};
use crate::naming;
use crate::types::{Network, PublishedPort};

/// The full `nft -f` script that makes the project's table exactly match
/// `networks` and `ports`; with no networks left it only deletes the table.
pub fn render(tag: &str, networks: &[&Network], ports: &[PublishedPort]) -> String {
    let table = naming::nft_table(tag);
    // Declaring first makes the delete valid whether or not the table exists.
    let mut s = format!("table ip {table}\ndelete table ip {table}\n");
    if networks.is_empty() {
        return s;
    }
    let w = &mut s;
    let _ = writeln!(w, "table ip {table} {{");
    let _ = writeln!(
        w,
        "  chain forward {{\n    type filter hook forward priority 0; policy accept;"
    );
    for n in networks.iter().filter(|n| n.internal) {
        let _ = writeln!(
            w,
            "    iifname \"{b}\" oifname != \"{b}\" drop",
            b = n.bridge
        );
        let _ = writeln!(
            w,
            "    oifname \"{b}\" iifname != \"{b}\" drop",
            b = n.bridge
        );
    }
    // Published ports stay reachable across networks, replies included.
    let _ = writeln!(w, "    ct status dnat accept");
    for n in networks {
        let _ = writeln!(
            w,
            "    iifname \"{b}\" oifname \"{p}*\" oifname != \"{b}\" drop",
            b = n.bridge,
            p = naming::PREFIX
        );
    }
    let _ = writeln!(w, "  }}");
    let _ = writeln!(
        w,
        "  chain postrouting {{\n    type nat hook postrouting priority 100; policy accept;"
    );
    for n in networks {
        if !n.internal {
            let _ = writeln!(
                w,
                "    ip saddr {} oifname != \"{}\" masquerade",
                n.subnet, n.bridge
            );
        }
        // 127.0.0.1:port DNATed to a container needs a routable source.
        let _ = writeln!(
            w,
            "    oifname \"{}\" ip saddr 127.0.0.0/8 masquerade",
            n.bridge
        );
        // Hairpin: a container reaching a peer through a host address must
        // see the reply come back from that address.
        let _ = writeln!(
            w,
            "    oifname \"{}\" ip saddr {} ct status dnat masquerade",
            n.bridge, n.subnet
        );
    }
    let _ = writeln!(w, "  }}");
    for (chain, hook) in [("prerouting", "prerouting"), ("output", "output")] {
        let _ = writeln!(
            w,
            "  chain {chain} {{\n    type nat hook {hook} priority -100; policy accept;\n    fib daddr type local jump published\n  }}"
        );
    }
    let _ = writeln!(w, "  chain published {{");
    for p in ports {
        let daddr = p
            .host_ip
            .map(|ip| format!("ip daddr {ip} "))
            .unwrap_or_default();
        let _ = writeln!(
            w,
            "    {daddr}{proto} dport {hp} dnat to {cip}:{cp}",
            proto = p.protocol.as_str(),
            hp = p.host_port,
            cip = p.container_ip,
            cp = p.container_port
        );
    }
    let _ = writeln!(w, "  }}\n}}");
    s
}

/// Runs `nft -f -` with `script` as one transaction.
pub fn apply(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NetError::NftSpawn)?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(script.as_bytes())
        .map_err(NetError::NftSpawn)?;
    let out = child.wait_with_output().map_err(NetError::NftSpawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetError::Nft {
            action: "apply ruleset",
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Deletes the project's table if it exists.
pub fn delete(tag: &str) -> Result<()> {
    apply(&render(tag, &[], &[]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Protocol;

    fn net(bridge: &str, subnet: &str, internal: bool) -> Network {
        let subnet: crate::ipam::Subnet = subnet.parse().unwrap();
        Network {
            project: "p".into(),
            name: bridge.into(),
            bridge: bridge.into(),
            subnet,
            gateway: subnet.default_gateway(),
            internal,
            mtu: 1500,
        }
    }

    #[test]
    fn empty_project_only_deletes_its_table() {
        assert_eq!(
            render("abc123", &[], &[]),
            "table ip stk-abc123\ndelete table ip stk-abc123\n"
        );
    }

    #[test]
    fn renders_masquerade_isolation_and_ports() {
        let a = net("stk-abc123b0000", "10.1.0.0/24", false);
        let b = net("stk-abc123b0001", "10.2.0.0/24", true);
        let ports = [
            PublishedPort {
                host_ip: None,
                host_port: 8080,
                container_ip: "10.1.0.2".parse().unwrap(),
                container_port: 80,
                protocol: Protocol::Tcp,
            },
            PublishedPort {
                host_ip: Some("127.0.0.1".parse().unwrap()),
                host_port: 5353,
                container_ip: "10.1.0.2".parse().unwrap(),
                container_port: 53,
                protocol: Protocol::Udp,
            },
        ];
        let s = render("abc123", &[&a, &b], &ports);
        assert!(
            s.contains("ip saddr 10.1.0.0/24 oifname != \"stk-abc123b0000\" masquerade"),
            "{s}"
        );
        assert!(
            !s.contains("ip saddr 10.2.0.0/24 oifname != \"stk-abc123b0001\" masquerade"),
            "{s}"
        );
        assert!(
            s.contains("iifname \"stk-abc123b0001\" oifname != \"stk-abc123b0001\" drop"),
            "{s}"
        );
        assert!(s.contains(
            "iifname \"stk-abc123b0000\" oifname \"stk-*\" oifname != \"stk-abc123b0000\" drop"
        ));
        assert!(
            s.contains("    tcp dport 8080 dnat to 10.1.0.2:80\n"),
            "{s}"
        );
        assert!(
            s.contains("ip daddr 127.0.0.1 udp dport 5353 dnat to 10.1.0.2:53"),
            "{s}"
        );
        assert!(
            s.starts_with("table ip stk-abc123\ndelete table ip stk-abc123\ntable ip stk-abc123 {")
        );
    }
}
