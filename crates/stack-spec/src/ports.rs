//! Short-syntax port strings (`"127.0.0.1:8000-8010:80-90/udp"`) expanded to
//! Compose's long form, one entry per container port.

use std::net::IpAddr;

use crate::model::{PortMode, PortProtocol, ServicePort};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("no port specified in {0:?}")]
    Empty(String),
    #[error(
        "invalid container port {port:?} in {spec:?}: expected a number 1-65535 or a range like 80-90"
    )]
    ContainerPort { spec: String, port: String },
    #[error(
        "invalid host port {port:?} in {spec:?}: expected a number 0-65535 or a range like 8000-8010"
    )]
    HostPort { spec: String, port: String },
    #[error("invalid protocol {proto:?} in {spec:?}: expected tcp, udp or sctp")]
    Protocol { spec: String, proto: String },
    #[error("invalid ip address {ip:?} in {spec:?}")]
    HostIp { spec: String, ip: String },
    #[error(
        "invalid ip address {ip:?} in {spec:?}: too many colons; write an IPv6 address in brackets, as in \"[{ip}]:{ports}\""
    )]
    UnbracketedIpv6 {
        spec: String,
        ip: String,
        ports: String,
    },
    #[error("port ranges in {0:?} differ in length")]
    RangeMismatch(String),
}

pub fn parse_protocol(p: &str) -> Option<PortProtocol> {
    match p.to_ascii_lowercase().as_str() {
        "tcp" => Some(PortProtocol::Tcp),
        "udp" => Some(PortProtocol::Udp),
        "sctp" => Some(PortProtocol::Sctp),
        _ => None,
    }
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().ok()?;
    let b: u16 = b.parse().ok()?;
    (a <= b).then_some((a, b))
}

/// Expand one short-syntax port string.
pub fn parse_port_spec(spec: &str) -> Result<Vec<ServicePort>, PortError> {
    if spec.is_empty() {
        return Err(PortError::Empty(spec.into()));
    }
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => {
            let proto = parse_protocol(p).ok_or_else(|| PortError::Protocol {
                spec: spec.into(),
                proto: p.into(),
            })?;
            (r, proto)
        }
        None => (spec, PortProtocol::Tcp),
    };
    // host_ip:published:target, with the IP possibly in brackets (IPv6).
    let (ip, remainder) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r.split_once(']').ok_or_else(|| PortError::HostIp {
            spec: spec.into(),
            ip: rest.into(),
        })?;
        let after = after.strip_prefix(':').ok_or_else(|| PortError::HostIp {
            spec: spec.into(),
            ip: ip.into(),
        })?;
        (Some(ip.to_string()), after.to_string())
    } else {
        // As go-connections' `splitParts`: the last two fields are the ports,
        // everything before them the IP; an empty IP (`:8080:80`, what
        // `${PORT-:8080:80}` gives) means none. An IPv6 address must be in
        // brackets: the version Compose pins (v0.4.0) splits the IP as a
        // host, so `::1:6000:6000` is refused ("too many colons").
        let parts: Vec<&str> = rest.split(':').collect();
        let n = parts.len();
        if n <= 2 {
            (None, rest.to_string())
        } else {
            let ip = parts[..n - 2].join(":");
            if ip.contains(':') {
                return Err(PortError::UnbracketedIpv6 {
                    spec: spec.into(),
                    ip,
                    ports: format!("{}:{}", parts[n - 2], parts[n - 1]),
                });
            }
            let remainder = format!("{}:{}", parts[n - 2], parts[n - 1]);
            ((!ip.is_empty()).then_some(ip), remainder)
        }
    };
    if let Some(ip) = &ip
        && ip.parse::<IpAddr>().is_err()
    {
        return Err(PortError::HostIp {
            spec: spec.into(),
            ip: ip.clone(),
        });
    }
    let (published, target) = match remainder.rsplit_once(':') {
        Some((p, t)) => (p.to_string(), t.to_string()),
        None => (String::new(), remainder.clone()),
    };
    let (t0, t1) = parse_range(&target)
        .filter(|(a, _)| *a > 0)
        .ok_or_else(|| PortError::ContainerPort {
            spec: spec.into(),
            port: target.clone(),
        })?;
    let published_range = if published.is_empty() {
        None
    } else {
        Some(parse_range(&published).ok_or_else(|| PortError::HostPort {
            spec: spec.into(),
            port: published.clone(),
        })?)
    };
    let tlen = t1 - t0;
    let mut out = Vec::new();
    for (i, target) in (t0..=t1).enumerate() {
        let published = match published_range {
            None => None,
            Some((p0, p1)) if tlen == 0 => Some(if p0 == p1 {
                p0.to_string()
            } else {
                format!("{p0}-{p1}")
            }),
            Some((p0, p1)) => {
                if p1 - p0 != tlen {
                    return Err(PortError::RangeMismatch(spec.into()));
                }
                Some((p0 + i as u16).to_string())
            }
        };
        out.push(ServicePort {
            name: None,
            mode: PortMode::Ingress,
            host_ip: ip.clone(),
            target,
            published,
            protocol: proto,
            app_protocol: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> (Option<String>, Option<String>, u16) {
        let p = parse_port_spec(spec).unwrap();
        assert_eq!(p.len(), 1, "{spec}");
        (p[0].host_ip.clone(), p[0].published.clone(), p[0].target)
    }

    /// The forms go-connections' `ParsePortSpec` (v0.4.0, as Compose pins
    /// it) takes: an empty host IP (what `${PORT-:8080:80}` gives) is none;
    /// an IPv6 address needs brackets.
    #[test]
    fn host_ip_forms_as_go_connections() {
        assert_eq!(one(":8080:80"), (None, Some("8080".into()), 80));
        assert!(matches!(
            parse_port_spec("::1:6000:6000"),
            Err(PortError::UnbracketedIpv6 { .. })
        ));
        assert_eq!(
            one("[::1]:6001:6001"),
            (Some("::1".into()), Some("6001".into()), 6001)
        );
        assert_eq!(
            one("[fe80::1]:2:80/udp"),
            (Some("fe80::1".into()), Some("2".into()), 80)
        );
        assert_eq!(
            one("127.0.0.1:8000:80"),
            (Some("127.0.0.1".into()), Some("8000".into()), 80)
        );
        assert_eq!(one("127.0.0.1::80"), (Some("127.0.0.1".into()), None, 80));
        assert_eq!(one("8000:80"), (None, Some("8000".into()), 80));
        assert_eq!(one("80"), (None, None, 80));
        assert!(matches!(
            parse_port_spec("1.2.3:80:80"),
            Err(PortError::HostIp { .. })
        ));
        assert!(matches!(
            parse_port_spec("a:b:c:80:80"),
            Err(PortError::UnbracketedIpv6 { .. })
        ));
    }
}
