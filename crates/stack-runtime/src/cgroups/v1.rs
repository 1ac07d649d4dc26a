//! cgroup v1: one directory per hierarchy, controller files written in the order
//! the kernel needs (cpuset inherited before tasks join, memsw after the limit).

use std::fs;
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, LinuxResources};

use super::{Cgroup, CgroupError, Stats, keyed, read_file, write_file};

fn mkdir(dir: &Path) -> Result<(), CgroupError> {
    // A parent pruned by a container being deleted at the same moment makes
    // one attempt fail with ENOENT; the next one makes it again.
    let mut attempt = 0;
    loop {
        match fs::create_dir_all(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 5 => attempt += 1,
            result => {
                return result.map_err(|source| CgroupError::Io {
                    op: "mkdir",
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
}

fn need(
    cg: &Cgroup,
    controller: &'static str,
    what: &'static str,
) -> Result<std::path::PathBuf, CgroupError> {
    cg.dir(controller)
        .ok_or(CgroupError::MissingController { controller, what })
}

/// A new cpuset cgroup starts with empty cpus/mems; copy them down from the
/// nearest ancestor that has them, level by level.
fn init_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    if !parent.join("cpuset.cpus").exists() {
        return Ok(());
    }
    // Both files: a sibling container may be initialising the parent at
    // this moment and have written cpus but not yet mems, and a task cannot
    // join a cpuset whose mems are empty (ENOSPC).
    let empty = |f: &str| read_file(&parent.join(f)).map(|v| v.trim().is_empty());
    if empty("cpuset.cpus")? || empty("cpuset.mems")? {
        init_cpuset(parent)?;
    }
    mkdir(dir)?;
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = read_file(&dir.join(f))?;
        if cur.trim().is_empty() {
            let p = read_file(&parent.join(f))?;
            write_file(&dir.join(f), p.trim())?;
        }
    }
    Ok(())
}

pub(super) fn create(
    cg: &Cgroup,
    res: Option<&LinuxResources>,
    devices: &[LinuxDevice],
) -> Result<(), CgroupError> {
    for d in cg.dirs() {
        mkdir(&d)?;
    }
    if let Some(d) = cg.dir("cpuset") {
        init_cpuset(&d)?;
    }
    if let Some(d) = cg.dir("devices") {
        apply_devices(&d, res, devices)?;
    }
    let Some(res) = res else { return Ok(()) };

    if let Some(m) = res.memory() {
        let d = need(cg, "memory", "memory limits")?;
        if let Some(s) = m.swappiness() {
            write_file(&d.join("memory.swappiness"), &s.to_string())?;
        }
        if let Some(l) = m.limit() {
            let memsw = d.join("memory.memsw.limit_in_bytes");
            // The limit must stay <= memsw; raising memsw first avoids EINVAL.
            if write_file(&d.join("memory.limit_in_bytes"), &l.to_string()).is_err() {
                if let Some(s) = m.swap() {
                    write_file(&memsw, &s.to_string())?;
                }
                write_file(&d.join("memory.limit_in_bytes"), &l.to_string())?;
            }
            if let Some(s) = m.swap()
                && memsw.exists()
            {
                write_file(&memsw, &s.to_string())?;
            }
        }
        if let Some(r) = m.reservation() {
            write_file(&d.join("memory.soft_limit_in_bytes"), &r.to_string())?;
        }
        if m.disable_oom_killer() == Some(true) {
            write_file(&d.join("memory.oom_control"), "1")?;
        }
        if let Some(k) = m.kernel()
            && d.join("memory.kmem.limit_in_bytes").exists()
        {
            write_file(&d.join("memory.kmem.limit_in_bytes"), &k.to_string())?;
        }
        if let Some(k) = m.kernel_tcp()
            && d.join("memory.kmem.tcp.limit_in_bytes").exists()
        {
            write_file(&d.join("memory.kmem.tcp.limit_in_bytes"), &k.to_string())?;
        }
    }

    if let Some(c) = res.cpu() {
        if c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.realtime_runtime().is_some()
        {
            let d = need(cg, "cpu", "cpu limits")?;
            if let Some(s) = c.shares() {
                write_file(&d.join("cpu.shares"), &s.to_string())?;
            }
            if let Some(p) = c.period() {
                write_file(&d.join("cpu.cfs_period_us"), &p.to_string())?;
            }
            if let Some(q) = c.quota() {
                write_file(&d.join("cpu.cfs_quota_us"), &q.to_string())?;
            }
            if let Some(p) = c.realtime_period() {
                write_file(&d.join("cpu.rt_period_us"), &p.to_string())?;
            }
            if let Some(r) = c.realtime_runtime() {
                write_file(&d.join("cpu.rt_runtime_us"), &r.to_string())?;
            }
        }
        if c.cpus().is_some() || c.mems().is_some() {
            let d = need(cg, "cpuset", "cpuset")?;
            if let Some(s) = c.cpus() {
                write_file(&d.join("cpuset.cpus"), s)?;
            }
            if let Some(s) = c.mems() {
                write_file(&d.join("cpuset.mems"), s)?;
            }
        }
    }

    if let Some(p) = res.pids() {
        let d = need(cg, "pids", "pids limit")?;
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        write_file(&d.join("pids.max"), &v)?;
    }

    if let Some(b) = res.block_io() {
        let d = need(cg, "blkio", "block I/O limits")?;
        if let Some(w) = b.weight() {
            write_file(&d.join("blkio.weight"), &w.to_string())?;
        }
        if let Some(w) = b.leaf_weight() {
            write_file(&d.join("blkio.leaf_weight"), &w.to_string())?;
        }
        for wd in b.weight_device().iter().flatten() {
            if let Some(w) = wd.weight() {
                write_file(
                    &d.join("blkio.weight_device"),
                    &format!("{}:{} {w}", wd.major(), wd.minor()),
                )?;
            }
            if let Some(w) = wd.leaf_weight() {
                write_file(
                    &d.join("blkio.leaf_weight_device"),
                    &format!("{}:{} {w}", wd.major(), wd.minor()),
                )?;
            }
        }
        let throttles = [
            (
                "blkio.throttle.read_bps_device",
                b.throttle_read_bps_device(),
            ),
            (
                "blkio.throttle.write_bps_device",
                b.throttle_write_bps_device(),
            ),
            (
                "blkio.throttle.read_iops_device",
                b.throttle_read_iops_device(),
            ),
            (
                "blkio.throttle.write_iops_device",
                b.throttle_write_iops_device(),
            ),
        ];
        for (file, list) in throttles {
            for t in list.iter().flatten() {
                write_file(
                    &d.join(file),
                    &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                )?;
            }
        }
    }

    for h in res.hugepage_limits().iter().flatten() {
        let d = need(cg, "hugetlb", "hugepage limits")?;
        let f = d.join(format!("hugetlb.{}.limit_in_bytes", h.page_size()));
        if !f.exists() {
            return Err(CgroupError::HugepageSize(h.page_size().clone()));
        }
        write_file(&f, &h.limit().to_string())?;
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
    let d = need(cg, "freezer", "pause")?;
    let want = if frozen { "FROZEN" } else { "THAWED" };
    for _ in 0..1000 {
        write_file(&d.join("freezer.state"), want)?;
        if read_file(&d.join("freezer.state"))?.trim() == want {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Err(CgroupError::FreezeTimeout { path: d })
}

pub(super) fn is_frozen(cg: &Cgroup) -> bool {
    cg.dir("freezer")
        .and_then(|d| fs::read_to_string(d.join("freezer.state")).ok())
        .is_some_and(|s| s.trim() == "FROZEN")
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

    #[test]
    fn default_device_rules_deny_first() {
        let r = device_rules(None, &[]);
        assert_eq!(r[0], (false, "a *:* rwm".to_string()));
        assert!(r.contains(&(true, "c 1:3 rwm".to_string())));
    }
}
