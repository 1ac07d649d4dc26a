//! The systemd cgroup driver. On a host where systemd is pid 1 it owns the
//! cgroup tree: a cgroup made behind its back is not a unit, so `systemctl`
//! does not show it and systemd may rewrite its parents' controllers. There
//! each container gets a transient scope made through systemd's D-Bus API
//! (`StartTransientUnit` with `Delegate=yes` and the init's pid, as runc,
//! crun and podman do), its limits set as unit properties (so that
//! `systemctl daemon-reload` re-applies them rather than resetting them) and
//! also written into the delegated cgroup (for what has no property:
//! hugetlb, `unified` keys, device rules). A process the OOM killer picks
//! is the container's to handle, so the scope asks systemd to carry on
//! (`OOMPolicy=continue`) where systemd has that setting for scopes.
//! Stopping the unit removes the cgroup. Elsewhere, and when `STACK_CGROUP_MANAGER=cgroupfs`, the runtime
//! makes the cgroup directories itself.

use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use zbus::zvariant::Value;

use super::{CgroupError, Version};
use crate::plan::{blkio_weight_to_io, shares_to_weight};

/// The variable choosing the driver: `systemd` or `cgroupfs`.
pub const ENV: &str = "STACK_CGROUP_MANAGER";

/// The slice containers' scopes go in when the spec names none.
pub const DEFAULT_SLICE: &str = "system.slice";

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const BUS_SOCKET: &str = "/run/dbus/system_bus_socket";

/// Who makes the containers' cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// The runtime, as directories under `/sys/fs/cgroup`.
    Cgroupfs,
    /// systemd, as a transient scope per container.
    Systemd,
}

/// The driver for a host: `value` is [`ENV`]'s, `systemd_up` whether
/// systemd runs as pid 1 with its bus reachable, `nested` whether the
/// runtime runs inside a subtree delegated to it. Unset: systemd where it
/// runs on a cgroup v2 host, cgroupfs otherwise (a v1 host's containers keep
/// the directories the v1 code makes) and in a delegated subtree (that
/// subtree is where the containers belong, and systemd does not manage what
/// is below a delegated unit).
pub fn choose(
    value: Option<&str>,
    version: Version,
    nested: bool,
    systemd_up: impl Fn() -> bool,
) -> Result<Driver, CgroupError> {
    let bad = |why: &str| CgroupError::Driver(format!("{ENV}={}: {why}", value.unwrap_or("")));
    match value {
        Some("cgroupfs") => Ok(Driver::Cgroupfs),
        Some("systemd") if version == Version::V1 => Err(bad(
            "the systemd driver needs a cgroup v2 host; this one is v1",
        )),
        Some("systemd") if !systemd_up() => Err(bad(&format!(
            "systemd is not pid 1 or its bus ({BUS_SOCKET}) is not reachable"
        ))),
        Some("systemd") => Ok(Driver::Systemd),
        Some(_) => Err(bad("expected systemd or cgroupfs")),
        None if version == Version::V2 && !nested && systemd_up() => Ok(Driver::Systemd),
        None => Ok(Driver::Cgroupfs),
    }
}

/// Whether systemd runs as the init system (`sd_booted()`'s test) and its
/// bus answers connections.
pub fn systemd_up() -> bool {
    Path::new("/run/systemd/system").is_dir()
        && std::os::unix::net::UnixStream::connect(BUS_SOCKET).is_ok()
}

/// A container's scope: its unit name and its cgroup path.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scope {
    pub unit: String,
    pub slice: String,
    /// Relative to the v2 mount, starting with `/`.
    pub path: String,
    /// The slice is the container's own (`stack.slice/stack-<id>.slice`):
    /// systemd removes a scope's cgroup as soon as its last process exits,
    /// the slice's stays until the container is deleted, and its
    /// `memory.events` (hierarchical) still tells whether the OOM killer
    /// killed the container's processes.
    #[serde(default)]
    pub own_slice: bool,
}

/// `-` in a unit name's part, as systemd escapes it (a dash in a slice's
/// name is a level of the tree).
fn escape_dashes(s: &str) -> String {
    s.replace('-', "\\x2d")
}

/// The scope of container `id`: runc's `slice:prefix:name` form of
/// `cgroupsPath`, or `stack-<id>.scope` in the container's own slice
/// `stack-<id>.slice` (under `stack.slice`). `None` for a `cgroupsPath`
/// given as a path: that container's cgroup is the path asked for, made by
/// the runtime.
pub fn scope_for(cgroups_path: Option<&str>, id: &str) -> Result<Option<Scope>, CgroupError> {
    let own_slice = format!("stack-{}.slice", escape_dashes(id));
    let (slice, prefix, name) = match cgroups_path.filter(|p| !p.is_empty()) {
        None => (own_slice.as_str(), "stack", id),
        Some(p) if p.starts_with('/') || !p.contains(':') => return Ok(None),
        Some(p) => match p.split(':').collect::<Vec<_>>()[..] {
            [slice, prefix, name] => (
                if slice.is_empty() {
                    DEFAULT_SLICE
                } else {
                    slice
                },
                prefix,
                name,
            ),
            _ => {
                return Err(CgroupError::Driver(format!(
                    "cgroupsPath {p:?}: expected slice:prefix:name"
                )));
            }
        },
    };
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    if !unit_name_ok(&unit) || !slice.ends_with(".slice") || !unit_name_ok(slice) {
        return Err(CgroupError::Driver(format!(
            "{unit:?} in {slice:?} is not a valid systemd unit name"
        )));
    }
    Ok(Some(Scope {
        path: format!("{}/{unit}", slice_path(slice)),
        unit,
        own_slice: slice == own_slice,
        slice: slice.to_string(),
    }))
}

/// systemd's unit name characters, as `unit_name_is_valid` checks them.
fn unit_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

/// Where systemd puts a slice: `a-b.slice` is `/a.slice/a-b.slice`, each
/// dash a level; `-.slice` is the root.
fn slice_path(slice: &str) -> String {
    let stem = slice.trim_end_matches(".slice");
    if stem == "-" || stem.is_empty() {
        return String::new();
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push_str(&format!("/{prefix}.slice"));
    }
    path
}

/// A cpuset list (`0-2,4`) as the bitmask systemd's `AllowedCPUs` takes:
/// byte `i` holds CPUs `8i..8i+7`, lowest bit first.
fn cpu_mask(list: &str) -> Result<Vec<u8>, CgroupError> {
    let bad = || CgroupError::Driver(format!("cpuset {list:?}: expected e.g. 0-2,4"));
    let mut mask = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            None => {
                let n: usize = part.parse().map_err(|_| bad())?;
                (n, n)
            }
        };
        if lo > hi || hi >= 8192 {
            return Err(bad());
        }
        for cpu in lo..=hi {
            if mask.len() <= cpu / 8 {
                mask.resize(cpu / 8 + 1, 0);
            }
            mask[cpu / 8] |= 1 << (cpu % 8);
        }
    }
    Ok(mask)
}

/// A unit property's value, owned so the list outlives the resources.
#[derive(Clone, Debug, PartialEq)]
pub enum Prop {
    U64(u64),
    Bytes(Vec<u8>),
    /// `a(st)`: device path and value, e.g. `IOReadBandwidthMax`.
    Devices(Vec<(String, u64)>),
}

impl Prop {
    fn value(&self) -> Value<'_> {
        match self {
            Prop::U64(v) => Value::from(*v),
            Prop::Bytes(b) => Value::from(b.clone()),
            Prop::Devices(d) => Value::from(d.clone()),
        }
    }
}

/// The unit properties for the limits systemd knows: the same values the
/// cgroupfs driver writes (see `v2::write_limits`), so that systemd
/// re-applying its properties leaves them as they are. `u64::MAX` is
/// systemd's "infinity".
pub fn properties(res: &LinuxResources) -> Result<Vec<(&'static str, Prop)>, CgroupError> {
    let max = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    let mut p = Vec::new();
    if let Some(m) = res.memory() {
        if let Some(l) = m.limit() {
            p.push(("MemoryMax", Prop::U64(max(l))));
            if let Some(s) = m.swap() {
                let v = if s < 0 {
                    u64::MAX
                } else {
                    (s - l).max(0) as u64
                };
                p.push(("MemorySwapMax", Prop::U64(v)));
            }
        }
        if let Some(r) = m.reservation() {
            p.push(("MemoryLow", Prop::U64(max(r))));
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(s) = c.shares() {
            p.push(("CPUWeight", Prop::U64(shares_to_weight(s))));
        }
        if c.quota().is_some() || c.period().is_some() {
            let period = c.period().unwrap_or(100_000);
            p.push(("CPUQuotaPeriodUSec", Prop::U64(period)));
            let per_sec = match c.quota().filter(|q| *q > 0) {
                Some(q) => (q as u64).saturating_mul(1_000_000) / period.max(1),
                None => u64::MAX,
            };
            p.push(("CPUQuotaPerSecUSec", Prop::U64(per_sec)));
        }
        if let Some(s) = c.cpus() {
            p.push(("AllowedCPUs", Prop::Bytes(cpu_mask(s)?)));
        }
        if let Some(s) = c.mems() {
            p.push(("AllowedMemoryNodes", Prop::Bytes(cpu_mask(s)?)));
        }
    }
    if let Some(pids) = res.pids() {
        let v = if pids.limit() > 0 {
            pids.limit() as u64
        } else {
            u64::MAX
        };
        p.push(("TasksMax", Prop::U64(v)));
    }
    if let Some(b) = res.block_io() {
        let dev = |major: i64, minor: i64| format!("/dev/block/{major}:{minor}");
        if let Some(w) = b.weight() {
            p.push(("IOWeight", Prop::U64(blkio_weight_to_io(u64::from(w)))));
        }
        let weights: Vec<_> = b
            .weight_device()
            .iter()
            .flatten()
            .filter_map(|d| {
                let w = d.weight()?;
                Some((dev(d.major(), d.minor()), blkio_weight_to_io(u64::from(w))))
            })
            .collect();
        if !weights.is_empty() {
            p.push(("IODeviceWeight", Prop::Devices(weights)));
        }
        for (name, list) in [
            ("IOReadBandwidthMax", b.throttle_read_bps_device()),
            ("IOWriteBandwidthMax", b.throttle_write_bps_device()),
            ("IOReadIOPSMax", b.throttle_read_iops_device()),
            ("IOWriteIOPSMax", b.throttle_write_iops_device()),
        ] {
            let l: Vec<_> = list
                .iter()
                .flatten()
                .map(|t| (dev(t.major(), t.minor()), t.rate()))
                .collect();
            if !l.is_empty() {
                p.push((name, Prop::Devices(l)));
            }
        }
    }
    Ok(p)
}

fn bus_err<'a>(op: &'static str, unit: &'a str) -> impl FnOnce(zbus::Error) -> CgroupError + 'a {
    move |e| CgroupError::Systemd {
        op,
        unit: unit.to_string(),
        message: e.to_string(),
    }
}

fn connect(unit: &str) -> Result<zbus::blocking::Connection, CgroupError> {
    zbus::blocking::Connection::system().map_err(bus_err("connect to the system bus for", unit))
}

/// Whether systemd `version` (its `Version` property, e.g. `252.39-1~deb12u1`
/// or `255`) takes `OOMPolicy=` for a scope: from 253 on, where a scope's
/// default is to stop the whole unit when the kernel OOM-kills one of its
/// processes. Before 253 a scope has no such policy (it runs on, as
/// `continue` says) and the property is refused.
pub fn scope_takes_oom_policy(version: &str) -> bool {
    let major: String = version.chars().take_while(char::is_ascii_digit).collect();
    major.parse::<u32>().is_ok_and(|v| v >= 253)
}

/// The running systemd's version, asked once per process.
fn version(conn: &zbus::blocking::Connection) -> Option<&'static str> {
    static VERSION: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    VERSION
        .get_or_init(|| {
            let proxy = zbus::blocking::fdo::PropertiesProxy::builder(conn)
                .destination(DEST)
                .ok()?
                .path(PATH)
                .ok()?
                .build()
                .ok()?;
            let name = zbus::names::InterfaceName::try_from(MANAGER).ok()?;
            let v = proxy.get(name, "Version").ok()?;
            String::try_from(v).ok()
        })
        .as_deref()
}

/// Starts the scope with `pid` in it and waits until systemd has moved the
/// process there (the job runs after the call returns).
pub fn start(scope: &Scope, pid: i32, res: Option<&LinuxResources>) -> Result<(), CgroupError> {
    let limits = match res {
        Some(r) => properties(r)?,
        None => Vec::new(),
    };
    let description = format!("stack container {}", scope.unit);
    let mut props: Vec<(&str, Value<'_>)> = vec![
        ("Description", Value::from(description.as_str())),
        ("Slice", Value::from(scope.slice.as_str())),
        ("Delegate", Value::from(true)),
        ("PIDs", Value::from(vec![pid as u32])),
        // Not ordered against shutdown targets: the runtime stops it.
        ("DefaultDependencies", Value::from(false)),
        // A scope that failed (an OOM kill) is unloaded too when it stops.
        ("CollectMode", Value::from("inactive-or-failed")),
    ];
    props.extend(limits.iter().map(|(k, v)| (*k, v.value())));
    let aux: Vec<(&str, Vec<(&str, Value<'_>)>)> = Vec::new();
    let conn = connect(&scope.unit)?;
    // A process the OOM killer picks is the container's business (its
    // init sees the exit), not a reason for systemd to stop the rest.
    match version(&conn) {
        Some(v) if scope_takes_oom_policy(v) => props.push(("OOMPolicy", Value::from("continue"))),
        Some(_) => {}
        None => tracing::warn!(
            unit = %scope.unit,
            "systemd's version is unknown: OOMPolicy=continue not set, an OOM kill may stop the whole scope"
        ),
    }
    conn.call_method(
        Some(DEST),
        PATH,
        Some(MANAGER),
        "StartTransientUnit",
        &(scope.unit.as_str(), "fail", props, aux),
    )
    .map_err(bus_err("StartTransientUnit", &scope.unit))?;
    let want = format!("0::{}", scope.path);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if now.lines().any(|l| l == want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(CgroupError::Systemd {
                op: "wait for the process in",
                unit: scope.unit.clone(),
                message: format!("pid {pid} is still in {}", now.trim()),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Stops the scope (its processes must be gone); a unit systemd already
/// unloaded is not an error.
pub fn stop(unit: &str) -> Result<(), CgroupError> {
    let conn = connect(unit)?;
    match conn.call_method(
        Some(DEST),
        PATH,
        Some(MANAGER),
        "StopUnit",
        &(unit, "replace"),
    ) {
        Ok(_) => Ok(()),
        Err(zbus::Error::MethodError(name, _, _))
            if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
        {
            Ok(())
        }
        Err(e) => Err(bus_err("StopUnit", unit)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_from_the_variable_and_the_host() {
        let up = || true;
        let down = || false;
        let v2 = Version::V2;
        assert_eq!(choose(None, v2, false, up).unwrap(), Driver::Systemd);
        assert_eq!(choose(None, v2, false, down).unwrap(), Driver::Cgroupfs);
        assert_eq!(choose(None, v2, true, up).unwrap(), Driver::Cgroupfs);
        assert_eq!(
            choose(None, Version::V1, false, up).unwrap(),
            Driver::Cgroupfs
        );
        assert_eq!(
            choose(Some("cgroupfs"), v2, false, up).unwrap(),
            Driver::Cgroupfs
        );
        assert_eq!(
            choose(Some("systemd"), v2, false, up).unwrap(),
            Driver::Systemd
        );
        assert_eq!(
            choose(Some("systemd"), v2, true, up).unwrap(),
            Driver::Systemd
        );
        // Asked for and not possible: an error, not the other driver.
        for (v, ver, f) in [
            ("systemd", Version::V2, down as fn() -> bool),
            ("systemd", Version::V1, up),
            ("System", Version::V2, up),
            ("", Version::V2, up),
        ] {
            let e = choose(Some(v), ver, false, f).unwrap_err().to_string();
            assert!(e.contains(&format!("{ENV}={v}")), "{e}");
        }
    }

    #[test]
    fn scopes_and_slices() {
        let s = scope_for(None, "web-1").unwrap().unwrap();
        assert_eq!(s.unit, "stack-web-1.scope");
        assert_eq!(
            s.path,
            "/stack.slice/stack-web\\x2d1.slice/stack-web-1.scope"
        );
        assert!(s.own_slice);
        let s = scope_for(Some("machine-x.slice:crun:c1"), "c1")
            .unwrap()
            .unwrap();
        assert_eq!(s.unit, "crun-c1.scope");
        assert!(!s.own_slice);
        assert_eq!(s.path, "/machine.slice/machine-x.slice/crun-c1.scope");
        let s = scope_for(Some(":p:n"), "n").unwrap().unwrap();
        assert_eq!(s.path, "/system.slice/p-n.scope");
        assert_eq!(scope_for(Some("/my/path"), "c").unwrap(), None);
        assert_eq!(scope_for(Some("my/path"), "c").unwrap(), None);
        assert!(scope_for(Some("a:b"), "c").is_err());
        assert!(scope_for(Some("notaslice:p:n"), "c").is_err());
        assert!(scope_for(None, "bad id").is_err());
        assert_eq!(slice_path("-.slice"), "");
    }

    #[test]
    fn oom_policy_only_where_scopes_take_it() {
        assert!(!scope_takes_oom_policy("252.39-1~deb12u1"));
        assert!(!scope_takes_oom_policy("249"));
        assert!(scope_takes_oom_policy("253"));
        assert!(scope_takes_oom_policy("255.4-1ubuntu8"));
        assert!(!scope_takes_oom_policy(""));
        assert!(!scope_takes_oom_policy("v255"));
    }

    #[test]
    fn cpusets_as_bitmasks() {
        assert_eq!(cpu_mask("0").unwrap(), vec![1]);
        assert_eq!(cpu_mask("0-2,4").unwrap(), vec![0b10111]);
        assert_eq!(cpu_mask("9").unwrap(), vec![0, 2]);
        assert!(cpu_mask("2-1").is_err());
        assert!(cpu_mask("x").is_err());
    }

    #[test]
    fn properties_carry_the_values_the_files_get() {
        let res: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"},
            "pids": {"limit": 16},
            "blockIO": {
                "weight": 500,
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            },
        }))
        .unwrap();
        let p = properties(&res).unwrap();
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Prop::U64(64 << 20)));
        assert_eq!(get("MemorySwapMax"), Some(Prop::U64(32 << 20)));
        assert_eq!(get("MemoryLow"), Some(Prop::U64(32 << 20)));
        assert_eq!(get("CPUWeight"), Some(Prop::U64(39)));
        // 50 ms per 100 ms: cpu.max "50000 100000".
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Prop::U64(500_000)));
        assert_eq!(get("CPUQuotaPeriodUSec"), Some(Prop::U64(100_000)));
        assert_eq!(get("AllowedCPUs"), Some(Prop::Bytes(vec![0b11])));
        assert_eq!(get("TasksMax"), Some(Prop::U64(16)));
        assert_eq!(get("IOWeight"), Some(Prop::U64(4950)));
        assert_eq!(
            get("IOReadBandwidthMax"),
            Some(Prop::Devices(vec![("/dev/block/8:0".into(), 1048576)]))
        );
        let unlimited: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": -1}, "cpu": {"quota": -1}, "pids": {"limit": 0},
        }))
        .unwrap();
        let p = properties(&unlimited).unwrap();
        assert!(
            p.iter()
                .filter(|(k, _)| *k != "CPUQuotaPeriodUSec")
                .all(|(_, v)| *v == Prop::U64(u64::MAX)),
            "{p:?}"
        );
    }
}
