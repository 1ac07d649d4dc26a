//! The service and network settings the engine hands to the kernel
//! (`stop_signal`, namespace modes, `dns`, ipam pools, `host_ip`, `sysctls`,
//! `ulimits`, `devices`), parsed here once, at load, so that a misspelt
//! value is an error naming its file, line and column rather than a default
//! chosen silently when a container starts. The engine parses with the same
//! functions and treats a failure as an error, never as a fallback.

use std::net::IpAddr;

use crate::error::{Diagnostics, ErrorKind};
use crate::model::{NetworkMode, Project, Service, Ulimit};
use crate::node::SpanTable;
use crate::validate::span;

/// How a container gets one of its namespaces (`ipc:`, `pid:`, `uts:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceMode {
    /// Its own (the default; `ipc: private` or `shareable`).
    Private,
    /// The host's.
    Host,
    /// `ipc: none`: its own, without a `/dev/shm`.
    NoShm,
    /// Another service's container's (`service:NAME`).
    Service(String),
    /// A named container's (`container:NAME`).
    Container(String),
}

impl NamespaceMode {
    /// The mode `value` names for the namespace `key` (`ipc`, `pid`,
    /// `uts`); `None` (absent) is private.
    pub fn parse(key: &str, value: Option<&str>) -> Result<Self, String> {
        let Some(value) = value else {
            return Ok(Self::Private);
        };
        let joined = |prefix: &str| {
            value
                .strip_prefix(prefix)
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
        };
        let mode = match (key, value) {
            (_, "host") => Self::Host,
            ("ipc", "" | "private" | "shareable") => Self::Private,
            ("ipc", "none") => Self::NoShm,
            ("ipc" | "pid", _) if joined("service:").is_some() => {
                Self::Service(joined("service:").unwrap_or_default())
            }
            ("ipc" | "pid", _) if joined("container:").is_some() => {
                Self::Container(joined("container:").unwrap_or_default())
            }
            ("ipc", _) => {
                return Err(format!(
                    "invalid ipc mode {value:?} (expected private, shareable, host, none, service:NAME or container:NAME)"
                ));
            }
            ("pid", _) => {
                return Err(format!(
                    "invalid pid mode {value:?} (expected host, service:NAME or container:NAME)"
                ));
            }
            _ => return Err(format!("invalid {key} mode {value:?} (expected host)")),
        };
        Ok(mode)
    }
}

/// An address, with what was wrong with it.
pub fn parse_ip(value: &str) -> Result<IpAddr, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?} is not an IP address"))
}

/// An `extra_hosts` entry as normalised (`host=ip`, `host=[ip6]`);
/// `None` for `host-gateway`, which this engine does not provide (warned
/// about at load).
pub fn extra_host(entry: &str) -> Result<Option<(String, IpAddr)>, String> {
    let (host, address) = entry
        .split_once('=')
        .filter(|(host, _)| !host.is_empty())
        .ok_or_else(|| format!("{entry:?} is not HOST:IP"))?;
    if address == "host-gateway" {
        return Ok(None);
    }
    let address = address.trim_start_matches('[').trim_end_matches(']');
    Ok(Some((host.to_owned(), parse_ip(address)?)))
}

/// An address block such as `172.28.0.0/16` or `fd00::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(value: &str) -> Result<Self, String> {
        let bad = || format!("{value:?} is not a subnet in CIDR form (such as 172.28.0.0/16)");
        let (address, prefix) = value.split_once('/').ok_or_else(bad)?;
        let address: IpAddr = address.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        if prefix > bits {
            return Err(bad());
        }
        Ok(Self { address, prefix })
    }

    /// Whether `ip` is inside this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn bits(ip: IpAddr) -> (u128, u32) {
            match ip {
                IpAddr::V4(v4) => (u32::from(v4).into(), 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        }
        let ((mine, width), (theirs, their_width)) = (bits(self.address), bits(ip));
        if width != their_width {
            return false;
        }
        let host_bits = width - u32::from(self.prefix);
        mine.checked_shr(host_bits) == theirs.checked_shr(host_bits)
    }
}

/// The OCI name of a `ulimits:` key (`nofile` → `RLIMIT_NOFILE`).
pub fn rlimit(name: &str) -> Result<String, String> {
    const KNOWN: [&str; 16] = [
        "AS",
        "CORE",
        "CPU",
        "DATA",
        "FSIZE",
        "LOCKS",
        "MEMLOCK",
        "MSGQUEUE",
        "NICE",
        "NOFILE",
        "NPROC",
        "RSS",
        "RTPRIO",
        "RTTIME",
        "SIGPENDING",
        "STACK",
    ];
    let upper = name.to_ascii_uppercase();
    if KNOWN.contains(&upper.as_str()) {
        Ok(format!("RLIMIT_{upper}"))
    } else {
        Err(format!("unknown ulimit {name:?}"))
    }
}

/// A `ulimits:` value as the kernel takes it: `-1` is unlimited.
pub fn rlimit_value(value: i64) -> Result<u64, String> {
    match value {
        -1 => Ok(u64::MAX),
        v => u64::try_from(v).map_err(|_| format!("{v} is not a limit (use -1 for unlimited)")),
    }
}

fn check_ulimit(name: &str, limit: &Ulimit) -> Result<(), String> {
    rlimit(name)?;
    let (soft, hard) = (rlimit_value(limit.soft)?, rlimit_value(limit.hard)?);
    if soft > hard {
        return Err(format!(
            "soft limit {} is above hard limit {}",
            limit.soft, limit.hard
        ));
    }
    Ok(())
}

/// The namespace a sysctl belongs to, as runc allows them in a container;
/// others are the host's and cannot be set from one.
pub fn check_sysctl(key: &str, service: &Service) -> Result<(), String> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let host = |mode: Option<&str>| mode == Some("host");
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        if host(service.ipc.as_deref()) {
            return Err(format!("sysctl {key} cannot be set with ipc: host"));
        }
        return Ok(());
    }
    if key.starts_with("net.") {
        if service.network_mode == Some(NetworkMode::Host) {
            return Err(format!(
                "sysctl {key} cannot be set with network_mode: host"
            ));
        }
        return Ok(());
    }
    if key == "kernel.domainname" || key == "kernel.hostname" {
        return Err(format!(
            "sysctl {key} cannot be set; use `domainname:` or `hostname:`"
        ));
    }
    Err(format!(
        "sysctl {key} is not namespaced: a container cannot set it"
    ))
}

pub fn check_device_permissions(permissions: &str) -> Result<(), String> {
    if permissions.is_empty() || !permissions.chars().all(|c| "rwm".contains(c)) {
        return Err(format!(
            "invalid device permissions {permissions:?} (expected letters of rwm)"
        ));
    }
    Ok(())
}

/// A log rotation option (`logging.options.max-size`, `max-file`).
pub fn log_option(key: &str, value: &str) -> Result<(), String> {
    match key {
        "max-size" => match crate::units::parse_bytes(value) {
            Ok(n) if n > 0 => Ok(()),
            _ => Err(format!("invalid size {value:?} (such as 10m)")),
        },
        "max-file" => match value.parse::<u32>() {
            Ok(n) if n > 0 => Ok(()),
            _ => Err(format!("invalid file count {value:?} (1 or more)")),
        },
        _ => Ok(()),
    }
}

/// Reports every setting of `project` that the engine could not honour.
pub(crate) fn check(project: &Project, spans: &SpanTable, diags: &mut Diagnostics) {
    for (name, svc) in &project.services {
        let bad = |diags: &mut Diagnostics, rest: &[&str], path: String, message: String| {
            let mut at = vec!["services", name.as_str()];
            at.extend_from_slice(rest);
            diags.error(
                ErrorKind::Value,
                &span(spans, &at),
                &format!("services.{name}.{path}"),
                message,
            );
        };
        if let Some(signal) = &svc.stop_signal
            && let Err(e) = crate::signal::parse(signal)
        {
            bad(diags, &["stop_signal"], "stop_signal".into(), e.to_string());
        }
        for (key, value) in [("ipc", &svc.ipc), ("pid", &svc.pid), ("uts", &svc.uts)] {
            if let Err(e) = NamespaceMode::parse(key, value.as_deref()) {
                bad(diags, &[key], key.into(), e);
            }
        }
        for (i, dns) in svc.dns.iter().enumerate() {
            if let Err(e) = parse_ip(dns) {
                bad(diags, &["dns", &i.to_string()], format!("dns[{i}]"), e);
            }
        }
        for (i, port) in svc.ports.iter().enumerate() {
            if let Some(ip) = port.host_ip.as_deref().filter(|ip| !ip.is_empty())
                && let Err(e) = parse_ip(ip)
            {
                bad(
                    diags,
                    &["ports", &i.to_string()],
                    format!("ports[{i}].host_ip"),
                    e,
                );
            }
        }
        // Values the stack file may hold but a container cannot take are
        // warned about here (compose's loader accepts them; the runtime
        // would refuse them), and refused by the engine before it acts.
        for key in svc.sysctls.keys() {
            if let Err(e) = check_sysctl(key, svc) {
                let at = span(spans, &["services", name, "sysctls", key]);
                diags.warn(&at, &format!("services.{name}.sysctls.{key}"), e);
            }
        }
        for (i, entry) in svc.extra_hosts.iter().enumerate() {
            let at = ["extra_hosts", &i.to_string()];
            match extra_host(entry) {
                Ok(Some(_)) => {}
                Ok(None) => diags.warn(
                    &span(spans, &["services", name, "extra_hosts", &i.to_string()]),
                    &format!("services.{name}.extra_hosts[{i}]"),
                    "host-gateway is not supported; the entry is left out",
                ),
                Err(e) => bad(diags, &at, format!("extra_hosts[{i}]"), e),
            }
        }
        if let Some(logging) = &svc.logging {
            for (key, value) in &logging.options {
                if let Some(Err(e)) = value.as_deref().map(|v| log_option(key, v)) {
                    bad(
                        diags,
                        &["logging", "options", key],
                        format!("logging.options.{key}"),
                        e,
                    );
                }
            }
        }
        for (key, limit) in &svc.ulimits {
            if let Err(e) = check_ulimit(key, limit) {
                bad(diags, &["ulimits", key], format!("ulimits.{key}"), e);
            }
        }
        for (i, device) in svc.devices.iter().enumerate() {
            let path = format!("devices[{i}]");
            let at = ["devices", &i.to_string()];
            for (what, p) in [("source", &device.source), ("target", &device.target)] {
                if !p.starts_with('/') {
                    bad(
                        diags,
                        &at,
                        path.clone(),
                        format!("device {what} {p:?} is not an absolute path"),
                    );
                }
            }
            if let Some(Err(e)) = device.permissions.as_deref().map(check_device_permissions) {
                diags.warn(
                    &span(spans, &["services", name, "devices", &i.to_string()]),
                    &format!("services.{name}.{path}"),
                    e,
                );
            }
        }
    }
    for (name, network) in &project.networks {
        let Some(ipam) = &network.ipam else { continue };
        for (i, pool) in ipam.config.iter().enumerate() {
            let at = |key: &str| {
                span(
                    spans,
                    &["networks", name, "ipam", "config", &i.to_string(), key],
                )
            };
            let path = |key: &str| format!("networks.{name}.ipam.config[{i}].{key}");
            let mut bad = |key: &str, message: String| {
                diags.error(ErrorKind::Value, &at(key), &path(key), message)
            };
            let subnet = match pool.subnet.as_deref().map(Cidr::parse) {
                Some(Ok(subnet)) => Some(subnet),
                Some(Err(e)) => {
                    bad("subnet", e);
                    None
                }
                None => None,
            };
            let outside = |ip: IpAddr| subnet.is_some_and(|s| !s.contains(ip));
            if let Some(range) = &pool.ip_range {
                match Cidr::parse(range) {
                    Ok(r) if outside(r.address) => bad(
                        "ip_range",
                        format!("ip_range {range} is not inside the subnet"),
                    ),
                    Ok(_) => {}
                    Err(e) => bad("ip_range", e),
                }
            }
            if let Some(gateway) = &pool.gateway {
                match parse_ip(gateway) {
                    Ok(ip) if outside(ip) => bad(
                        "gateway",
                        format!("gateway {gateway} is not inside the subnet"),
                    ),
                    Ok(_) => {}
                    Err(e) => bad("gateway", e),
                }
            }
            for (host, address) in &pool.aux_addresses {
                match parse_ip(address) {
                    Ok(ip) if outside(ip) => bad(
                        "aux_addresses",
                        format!("aux address {host}={address} is not inside the subnet"),
                    ),
                    Ok(_) => {}
                    Err(e) => bad("aux_addresses", e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_modes() {
        assert_eq!(
            NamespaceMode::parse("ipc", None),
            Ok(NamespaceMode::Private)
        );
        assert_eq!(
            NamespaceMode::parse("pid", Some("host")),
            Ok(NamespaceMode::Host)
        );
        assert_eq!(
            NamespaceMode::parse("ipc", Some("service:db")),
            Ok(NamespaceMode::Service("db".into()))
        );
        assert_eq!(
            NamespaceMode::parse("pid", Some("container:x")),
            Ok(NamespaceMode::Container("x".into()))
        );
        assert!(NamespaceMode::parse("uts", Some("private")).is_err());
        assert!(NamespaceMode::parse("pid", Some("service:")).is_err());
        assert!(NamespaceMode::parse("ipc", Some("hots")).is_err());
    }

    #[test]
    fn subnets_and_membership() {
        let s = Cidr::parse("172.28.0.0/16").unwrap();
        assert!(s.contains("172.28.5.1".parse().unwrap()));
        assert!(!s.contains("172.29.0.1".parse().unwrap()));
        assert!(!s.contains("fd00::1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            Cidr::parse("fd00::/64")
                .unwrap()
                .contains("fd00::9".parse().unwrap())
        );
        for bad in [
            "172.28.0.0",
            "172.28.0.0/33",
            "300.1.1.1/8",
            "x/8",
            "fd00::/129",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn extra_hosts() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            extra_host("db=10.0.0.2"),
            Ok(Some(("db".into(), ip("10.0.0.2"))))
        );
        assert_eq!(
            extra_host("v6=[fd00::1]"),
            Ok(Some(("v6".into(), ip("fd00::1"))))
        );
        assert_eq!(extra_host("gw=host-gateway"), Ok(None));
        assert!(extra_host("db=nowhere").is_err());
        assert!(extra_host("=10.0.0.1").is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(rlimit("nofile").unwrap(), "RLIMIT_NOFILE");
        assert!(rlimit("nofiles").is_err());
        assert_eq!(rlimit_value(-1), Ok(u64::MAX));
        assert!(rlimit_value(-2).is_err());
        let l = |soft, hard| Ulimit { soft, hard };
        assert!(check_ulimit("nproc", &l(10, 20)).is_ok());
        assert!(check_ulimit("nproc", &l(10, -1)).is_ok());
        assert!(check_ulimit("nproc", &l(30, 20)).is_err());
        assert!(check_ulimit("nproc", &l(-1, 20)).is_err());
    }

    #[test]
    fn sysctls_only_of_the_containers_namespaces() {
        let mut s = Service::default();
        assert!(check_sysctl("net.core.somaxconn", &s).is_ok());
        assert!(check_sysctl("kernel.shmmax", &s).is_ok());
        assert!(check_sysctl("fs.mqueue.msg_max", &s).is_ok());
        assert!(check_sysctl("vm.swappiness", &s).is_err());
        s.network_mode = Some(NetworkMode::Host);
        assert!(check_sysctl("net.core.somaxconn", &s).is_err());
    }
}
