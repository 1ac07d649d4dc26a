//! cgroup v1: one directory per hierarchy, each limit written by its
//! controller's module into that controller's hierarchy, in the order the
//! kernel needs (cpuset inherited before tasks join); the device rules as
//! `devices.allow`/`devices.deny` lines.

use std::fs;
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, LinuxResources};

use super::{Cgroup, CgroupError, Stats, controllers, keyed, make_dir, write_file};

fn need(
    cg: &Cgroup,
    controller: &'static str,
    what: &'static str,
) -> Result<std::path::PathBuf, CgroupError> {
    cg.dir(controller)
        .ok_or(CgroupError::MissingController { controller, what })
}

pub(super) fn create(
    cg: &Cgroup,
    res: Option<&LinuxResources>,
    devices: &[LinuxDevice],
) -> Result<(), CgroupError> {
    for d in cg.dirs() {
        make_dir(&d)?;
    }
    if let Some(d) = cg.dir("cpuset") {
        controllers::cpuset::inherit_v1(&d)?;
    }
    if let Some(d) = cg.dir("devices") {
        apply_devices(&d, res, devices)?;
    }
    let Some(res) = res else { return Ok(()) };

    if let Some(m) = res.memory() {
        controllers::memory::apply(&need(cg, "memory", "memory limits")?, false, m)?;
    }
    if let Some(c) = res.cpu() {
        if controllers::cpu::wanted(c) {
            controllers::cpu::apply(&need(cg, "cpu", "cpu limits")?, false, c)?;
        }
        if controllers::cpuset::wanted(c) {
            controllers::cpuset::apply(&need(cg, "cpuset", "cpuset")?, false, c)?;
        }
    }
    if let Some(p) = res.pids() {
        controllers::pids::apply(&need(cg, "pids", "pids limit")?, false, p)?;
    }
    if let Some(b) = res.block_io()
        && controllers::io::wanted(b)
    {
        controllers::io::apply(&need(cg, "blkio", "block I/O limits")?, false, b)?;
    }
    for h in res.hugepage_limits().iter().flatten() {
        controllers::hugetlb::apply(&need(cg, "hugetlb", "hugepage limits")?, false, h)?;
    }
    if let Some(n) = res.network() {
        if let Some(c) = n.class_id() {
            write_file(
                &need(cg, "net_cls", "net_cls classid")?.join("net_cls.classid"),
                &c.to_string(),
            )?;
        }
        for p in n.priorities().iter().flatten() {
            let d = need(cg, "net_prio", "net_prio ifpriomap")?;
            write_file(
                &d.join("net_prio.ifpriomap"),
                &format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    Ok(())
}

fn dev_type(t: Option<LinuxDeviceType>) -> char {
    match t {
        Some(LinuxDeviceType::B) => 'b',
        Some(LinuxDeviceType::C | LinuxDeviceType::U) => 'c',
        Some(LinuxDeviceType::P) => 'p',
        _ => 'a',
    }
}

fn num(n: Option<i64>) -> String {
    n.filter(|n| *n >= 0)
        .map(|n| n.to_string())
        .unwrap_or_else(|| "*".into())
}

/// Device rules as lines for devices.allow / devices.deny, in order: the spec's
/// rules, then the devices the container gets by default (runc's list), then
/// the spec's `linux.devices`.
pub(crate) fn device_rules(
    res: Option<&LinuxResources>,
    devices: &[LinuxDevice],
) -> Vec<(bool, String)> {
    let mut rules = Vec::new();
    let spec_rules = res.and_then(|r| r.devices().clone()).unwrap_or_default();
    if spec_rules.is_empty() {
        rules.push((false, "a *:* rwm".to_string()));
    }
    for r in &spec_rules {
        let access = r.access().clone().unwrap_or_else(|| "rwm".into());
        rules.push((
            r.allow(),
            format!(
                "{} {}:{} {access}",
                dev_type(r.typ()),
                num(r.major()),
                num(r.minor())
            ),
        ));
    }
    for d in [
        "c *:* m",
        "b *:* m",
        "c 1:3 rwm",
        "c 1:5 rwm",
        "c 1:7 rwm",
        "c 1:8 rwm",
        "c 1:9 rwm",
        "c 5:0 rwm",
        "c 5:1 rwm",
        "c 5:2 rwm",
        "c 136:* rwm",
        "c 10:200 rwm",
    ] {
        rules.push((true, d.to_string()));
    }
    // A fifo is no device: the devices controller has no rule for it.
    for d in devices.iter().filter(|d| d.typ() != LinuxDeviceType::P) {
        rules.push((
            true,
            format!(
                "{} {}:{} rwm",
                dev_type(Some(d.typ())),
                d.major(),
                d.minor()
            ),
        ));
    }
    rules
}

fn apply_devices(
    dir: &Path,
    res: Option<&LinuxResources>,
    devices: &[LinuxDevice],
) -> Result<(), CgroupError> {
    for (allow, rule) in device_rules(res, devices) {
        let f = if allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write_file(&dir.join(f), &rule)?;
    }
    Ok(())
}

pub(super) fn freeze(cg: &Cgroup, frozen: bool) -> Result<(), CgroupError> {
    controllers::freezer::set(&need(cg, "freezer", "pause")?, false, frozen)
}

pub(super) fn is_frozen(cg: &Cgroup) -> bool {
    cg.dir("freezer")
        .is_some_and(|d| controllers::freezer::is_frozen(&d, false))
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub(super) fn oom_kills(cg: &Cgroup) -> u64 {
    cg.dir("memory")
        .and_then(|d| fs::read_to_string(d.join("memory.oom_control")).ok())
        .and_then(|b| keyed(&b, "oom_kill"))
        .unwrap_or(0)
}

pub(super) fn stats(cg: &Cgroup) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    if let Some(d) = cg.dir("cpuacct") {
        s.cpu_usage_ns = read_u64(&d.join("cpuacct.usage")).unwrap_or(0);
    }
    if let Some(d) = cg.dir("memory") {
        s.memory_usage = read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0);
        // "No limit" reads as a huge page-aligned number.
        s.memory_limit = read_u64(&d.join("memory.limit_in_bytes")).filter(|l| *l < (1 << 62));
        s.memory_peak = read_u64(&d.join("memory.max_usage_in_bytes"));
    }
    if let Some(d) = cg.dir("pids") {
        s.pids_current = read_u64(&d.join("pids.current")).unwrap_or(0);
        s.pids_limit = read_u64(&d.join("pids.max"));
    }
    if let Some(d) = cg.dir("blkio") {
        let body =
            fs::read_to_string(d.join("blkio.throttle.io_service_bytes")).unwrap_or_default();
        for l in body.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() == 3 {
                let v: u64 = f[2].parse().unwrap_or(0);
                match f[1] {
                    "Read" => s.io_read_bytes += v,
                    "Write" => s.io_write_bytes += v,
                    _ => {}
                }
            }
        }
    }
    s.oom_kills = oom_kills(cg);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controllers::testing::{cgroup_dir, read, resources};
    use crate::cgroups::{V1Mount, Version};

    /// A v1 layout in `root`: one hierarchy per entry, as mountinfo lists them.
    fn layout(root: &Path, hierarchies: &[&str]) -> Cgroup {
        let v1_mounts = hierarchies
            .iter()
            .map(|h| {
                let mount_point = root.join(h);
                fs::create_dir_all(&mount_point).unwrap();
                V1Mount {
                    mount_point,
                    controllers: h.split(',').map(str::to_string).collect(),
                }
            })
            .collect();
        Cgroup {
            version: Version::V1,
            path: "/stack/c".into(),
            v1_mounts,
            v2_root: root.join("unified"),
            systemd_scope: None,
            base: String::new(),
        }
    }

    #[test]
    fn create_writes_every_limit_into_its_hierarchy() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let cg = layout(
            root,
            &[
                "memory",
                "cpu,cpuacct",
                "cpuset",
                "pids",
                "blkio",
                "hugetlb",
                "freezer",
                "devices",
            ],
        );
        // What the kernel shows in the root and in each new directory.
        cgroup_dir(
            root,
            "cpuset",
            &[("cpuset.cpus", "0-1\n"), ("cpuset.mems", "0\n")],
        );
        for d in ["cpuset/stack", "cpuset/stack/c"] {
            cgroup_dir(root, d, &[("cpuset.cpus", ""), ("cpuset.mems", "")]);
        }
        cgroup_dir(
            root,
            "memory/stack/c",
            &[("memory.memsw.limit_in_bytes", "")],
        );
        cgroup_dir(
            root,
            "cpu,cpuacct/stack/c",
            &[("cpu.cfs_period_us", "100000")],
        );
        cgroup_dir(
            root,
            "hugetlb/stack/c",
            &[("hugetlb.2MB.limit_in_bytes", "")],
        );
        let res = resources(serde_json::json!({
            "memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "1", "mems": "0"},
            "pids": {"limit": 16},
            "blockIO": {"weight": 500, "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 4096}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}],
        }));
        cg.create(Some(&res), &[]).unwrap();
        let dir = |c: &str| cg.dir(c).unwrap();
        assert_eq!(
            read(&dir("memory"), "memory.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
        assert_eq!(
            read(&dir("memory"), "memory.memsw.limit_in_bytes"),
            (96u64 << 20).to_string()
        );
        assert_eq!(
            read(&dir("memory"), "memory.soft_limit_in_bytes"),
            (32u64 << 20).to_string()
        );
        assert_eq!(read(&dir("cpu"), "cpu.shares"), "512");
        assert_eq!(read(&dir("cpu"), "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(&dir("cpuset"), "cpuset.cpus"), "1");
        // Inherited down both levels before the spec's value was written.
        assert_eq!(read(&root.join("cpuset/stack"), "cpuset.cpus"), "0-1");
        assert_eq!(read(&dir("cpuset"), "cpuset.mems"), "0");
        assert_eq!(read(&dir("pids"), "pids.max"), "16");
        assert_eq!(read(&dir("blkio"), "blkio.weight"), "500");
        assert_eq!(
            read(&dir("blkio"), "blkio.throttle.write_bps_device"),
            "8:0 4096"
        );
        assert_eq!(
            read(&dir("hugetlb"), "hugetlb.2MB.limit_in_bytes"),
            (4u64 << 20).to_string()
        );
        // The device rules' last line: the runtime's default list ends the
        // spec's (none here: deny all first).
        assert_eq!(read(&dir("devices"), "devices.allow"), "c 10:200 rwm");
        assert_eq!(read(&dir("devices"), "devices.deny"), "a *:* rwm");
        assert!(dir("freezer").is_dir());
    }

    #[test]
    fn a_limit_whose_hierarchy_is_not_mounted_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let cg = layout(t.path(), &["memory"]);
        let res = resources(serde_json::json!({"pids": {"limit": 5}}));
        assert!(matches!(
            cg.create(Some(&res), &[]),
            Err(CgroupError::MissingController {
                controller: "pids",
                ..
            })
        ));
    }

    #[test]
    fn default_device_rules_deny_first() {
        let r = device_rules(None, &[]);
        assert_eq!(r[0], (false, "a *:* rwm".to_string()));
        assert!(r.contains(&(true, "c 1:3 rwm".to_string())));
    }
}
