//! Content of the container's `/etc/resolv.conf`, `/etc/hosts` and
//! `/etc/hostname` (pure).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

/// `resolv.conf`: the explicit `dns` servers when given, otherwise the
/// network's embedded server on its gateway.
pub fn resolv_conf(dns: &[IpAddr], embedded: Option<Ipv4Addr>, search: &[String]) -> String {
    let mut s = String::new();
    let servers: Vec<IpAddr> = if dns.is_empty() {
        embedded.into_iter().map(IpAddr::V4).collect()
    } else {
        dns.to_vec()
    };
    for ip in servers {
        let _ = writeln!(s, "nameserver {ip}");
    }
    if !search.is_empty() {
        let _ = writeln!(s, "search {}", search.join(" "));
    }
    s.push_str("options ndots:0\n");
    s
}

/// `/etc/hosts`: localhost, the container's own names on its first address,
/// then `extra_hosts`.
pub fn hosts(own: Option<Ipv4Addr>, names: &[&str], extra: &[(String, IpAddr)]) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(ip) = own {
        let mut uniq: Vec<&str> = Vec::new();
        for n in names {
            if !n.is_empty() && !uniq.contains(n) {
                uniq.push(n);
            }
        }
        let _ = writeln!(s, "{ip}\t{}", uniq.join(" "));
    }
    for (name, ip) in extra {
        let _ = writeln!(s, "{ip}\t{name}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_prefers_explicit_dns() {
        let gw = Some("10.1.0.1".parse().unwrap());
        assert_eq!(
            resolv_conf(&[], gw, &[]),
            "nameserver 10.1.0.1\noptions ndots:0\n"
        );
        let dns = ["9.9.9.9".parse().unwrap()];
        let s = resolv_conf(&dns, gw, &["example.org".into(), "corp".into()]);
        assert_eq!(
            s,
            "nameserver 9.9.9.9\nsearch example.org corp\noptions ndots:0\n"
        );
    }

    #[test]
    fn hosts_lists_own_names_once_and_extra_hosts() {
        let s = hosts(
            Some("10.1.0.2".parse().unwrap()),
            &["web-1", "web-1", "web"],
            &[("db.local".into(), "10.9.9.9".parse().unwrap())],
        );
        assert!(s.contains("10.1.0.2\tweb-1 web\n"), "{s}");
        assert!(s.ends_with("10.9.9.9\tdb.local\n"), "{s}");
        assert!(s.starts_with("127.0.0.1\tlocalhost\n"));
    }
}
