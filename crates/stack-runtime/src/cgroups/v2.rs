//! cgroup v2: one directory; the controllers a container needs enabled
//! down the tree via `cgroup.subtree_control`, limits in the unified file
//! names (written by the controllers' modules), device rules as an eBPF
//! program.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxResources};

use super::{
    Cgroup, CgroupError, Stats, controllers, devices_bpf, keyed, read_file, v1, write_file,
};

fn dir(cg: &Cgroup) -> PathBuf {
    cg.v2_root.join(cg.path.trim_start_matches('/'))
}

/// The controllers the cgroup at `d` has (its `cgroup.controllers`).
struct Controllers(Vec<String>);

impl Controllers {
    fn of(d: &Path) -> Result<Self, CgroupError> {
        let body = read_file(&d.join("cgroup.controllers"))?;
        Ok(Controllers(
            body.split_whitespace().map(str::to_string).collect(),
        ))
    }

    /// A limit the spec asks for needs its controller: without it the file is
    /// missing and the limit would silently not apply, so that is an error.
    fn need(&self, controller: &'static str, what: &'static str) -> Result<(), CgroupError> {
        if self.0.iter().any(|c| c == controller) {
            Ok(())
        } else {
            Err(CgroupError::MissingController { controller, what })
        }
    }
}

/// The controllers a container's cgroup gets delegated: memory, pids and io
/// always (`stack stats` and OOM reporting read their files); cpu, cpuset,
/// hugetlb, rdma and misc only when a limit or a `unified` key uses them. An
/// enabled controller is not free: `cpu` makes the scheduler weigh and
/// throttle every task below it as a group of its own.
///
/// Enabling one later, for a sibling that needs it, moves the tasks of
/// every container below that parent to the controller's new state; the
/// kernel wakes a frozen task to do so and it freezes again at once, so a
/// paused container's CPU time may grow by that much, its programs making
/// no progress (`tests/cgroup_v2.rs`, the pause test).
fn wanted_controllers(res: Option<&LinuxResources>) -> Vec<&'static str> {
    let mut want = vec!["memory", "pids", "io"];
    let mut add = |c: &'static str| {
        if !want.contains(&c) {
            want.push(c)
        }
    };
    let Some(res) = res else { return want };
    if let Some(c) = res.cpu() {
        if controllers::cpu::wanted(c) {
            add("cpu");
        }
        if controllers::cpuset::wanted(c) {
            add("cpuset");
        }
    }
    if res
        .hugepage_limits()
        .as_ref()
        .is_some_and(|h| !h.is_empty())
    {
        add("hugetlb");
    }
    if res.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        add("rdma");
    }
    for key in res.unified().iter().flat_map(|u| u.keys()) {
        match key.split('.').next() {
            Some("cpu") => add("cpu"),
            Some("cpuset") => add("cpuset"),
            Some("hugetlb") => add("hugetlb"),
            Some("rdma") => add("rdma"),
            Some("misc") => add("misc"),
            _ => {}
        }
    }
    want
}

/// Makes the leaf and its ancestors with the `wanted` controllers (those the
/// hierarchy has) delegated down to it; never disables one, as other
/// containers under the same parent may use it. A parent pruned by a
/// container being deleted at the same moment makes one walk fail with
/// ENOENT; the next walk makes it again.
fn enable_controllers(root: &Path, leaf: &Path, wanted: &[&str]) -> Result<(), CgroupError> {
    let mut attempt = 0;
    loop {
        match enable_controllers_once(root, leaf, wanted) {
            Err(CgroupError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && attempt < 5 =>
            {
                attempt += 1
            }
            result => return result,
        }
    }
}

fn enable_controllers_once(root: &Path, leaf: &Path, wanted: &[&str]) -> Result<(), CgroupError> {
    let available = read_file(&root.join("cgroup.controllers"))?;
    let enable: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| available.split_whitespace().any(|a| a == *w))
        .collect();
    let line = enable
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    let rel = leaf.strip_prefix(root).unwrap_or(leaf);
    let mut cur = root.to_path_buf();
    for comp in rel.components() {
        // Best effort per controller: some (e.g. cpuset in a threaded tree) may
        // refuse. A hierarchy without controllers (hybrid host) has none to enable.
        // Already delegated (every container after the first): a read
        // instead of a write that takes the cgroup lock.
        let control = cur.join("cgroup.subtree_control");
        let delegated = fs::read_to_string(&control)
            .is_ok_and(|d| enable.iter().all(|e| d.split_whitespace().any(|c| c == *e)));
        if !enable.is_empty() && !delegated {
            let mut wrote = write_file(&control, &line);
            if cur == root && is_busy(&wrote) {
                // The subtree the runtime was given holds processes (the
                // runtime itself): a cgroup that delegates controllers may
                // not, so they move to a leaf first.
                to_leaf(root)?;
                wrote = write_file(&control, &line);
            }
            if wrote.is_err() {
                for c in &enable {
                    let _ = write_file(&control, &format!("+{c}"));
                }
            }
        }
        cur = cur.join(comp);
        match fs::create_dir(&cur) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(CgroupError::Io {
                    op: "mkdir",
                    path: cur.clone(),
                    source: e,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Where the processes of the runtime's own subtree go (see [`to_leaf`]).
pub(super) const LEAF: &str = "stack-self";

fn is_busy(r: &Result<(), CgroupError>) -> bool {
    matches!(r, Err(CgroupError::Io { source, .. }) if source.raw_os_error() == Some(libc::EBUSY))
}

/// Moves every process of `d` into its child [`LEAF`], so that `d` may
/// enable controllers for its children ("no internal processes").
fn to_leaf(d: &Path) -> Result<(), CgroupError> {
    let leaf = d.join(LEAF);
    if let Err(e) = fs::create_dir(&leaf)
        && e.kind() != std::io::ErrorKind::AlreadyExists
    {
        return Err(CgroupError::Io {
            op: "mkdir",
            path: leaf,
            source: e,
        });
    }
    for pid in read_file(&d.join("cgroup.procs"))?.lines() {
        match write_file(&leaf.join("cgroup.procs"), pid) {
            // Exited meanwhile.
            Err(CgroupError::Io { source, .. }) if source.raw_os_error() == Some(libc::ESRCH) => {}
            r => r?,
        }
    }
    Ok(())
}

pub(super) fn create(
    cg: &Cgroup,
    res: Option<&LinuxResources>,
    devices: &[LinuxDevice],
) -> Result<(), CgroupError> {
    let d = dir(cg);
    enable_controllers(
        &cg.v2_root.join(cg.base.trim_start_matches('/')),
        &d,
        &wanted_controllers(res),
    )?;
    configure(&d, res, devices)
}

/// Applies device rules and limits to the existing cgroup `d`.
pub(super) fn configure(
    d: &Path,
    res: Option<&LinuxResources>,
    devices: &[LinuxDevice],
) -> Result<(), CgroupError> {
    apply_devices(d, res, devices)?;
    match res {
        Some(res) => write_limits(d, res),
        None => Ok(()),
    }
}

/// Writes the limits into the cgroup directory `d`: plain files, so the unit
/// tests check them against a directory laid out like `/sys/fs/cgroup`.
fn write_limits(d: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
    let d = d.to_path_buf();
    let have = Controllers::of(&d)?;
    if let Some(m) = res.memory() {
        if m.limit().is_some() || m.reservation().is_some() {
            have.need("memory", "memory limit")?;
        }
        controllers::memory::apply(&d, true, m)?;
    }
    if let Some(c) = res.cpu() {
        if controllers::cpu::wanted(c) {
            have.need("cpu", "cpu shares/quota")?;
            controllers::cpu::apply(&d, true, c)?;
        }
        if controllers::cpuset::wanted(c) {
            have.need("cpuset", "cpuset cpus/mems")?;
            controllers::cpuset::apply(&d, true, c)?;
        }
    }
    if let Some(p) = res.pids() {
        have.need("pids", "pids limit")?;
        controllers::pids::apply(&d, true, p)?;
    }
    if let Some(b) = res.block_io()
        && controllers::io::wanted(b)
    {
        have.need("io", "blkio weight/throttle")?;
        controllers::io::apply(&d, true, b)?;
    }
    for h in res.hugepage_limits().iter().flatten() {
        have.need("hugetlb", "hugepage limit")?;
        controllers::hugetlb::apply(&d, true, h)?;
    }
    for (k, v) in res.unified().iter().flatten() {
        // The file must exist: writing would otherwise try to create it.
        if !d.join(k).exists() {
            return Err(CgroupError::UnknownFile {
                key: k.clone(),
                dir: d.clone(),
            });
        }
        write_file(&d.join(k), v)?;
    }
    Ok(())
}

/// The same rules v1 writes to `devices.allow`/`devices.deny`, enforced by
/// an eBPF program (v2 has no devices files).
fn apply_devices(
    d: &Path,
    res: Option<&LinuxResources>,
    devices: &[LinuxDevice],
) -> Result<(), CgroupError> {
    let rules = v1::device_rules(res, devices)
        .into_iter()
        .map(|(allow, line)| {
            devices_bpf::parse_rule(allow, &line).ok_or(CgroupError::DeviceRule(line))
        })
        .collect::<Result<Vec<_>, _>>()?;
    devices_bpf::attach(d, &rules)
}

pub(super) fn freeze(cg: &Cgroup, frozen: bool) -> Result<(), CgroupError> {
    controllers::freezer::set(&dir(cg), true, frozen)
}

pub(super) fn is_frozen(cg: &Cgroup) -> bool {
    controllers::freezer::is_frozen(&dir(cg), true)
}

pub(super) fn oom_kills(cg: &Cgroup) -> u64 {
    fs::read_to_string(dir(cg).join("memory.events"))
        .ok()
        .and_then(|b| keyed(&b, "oom_kill"))
        .unwrap_or(0)
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub(super) fn stats(cg: &Cgroup) -> Result<Stats, CgroupError> {
    let d = dir(cg);
    let cpu = fs::read_to_string(d.join("cpu.stat")).unwrap_or_default();
    let mut s = Stats {
        cpu_usage_ns: keyed(&cpu, "usage_usec").unwrap_or(0) * 1000,
        memory_usage: read_u64(&d.join("memory.current")).unwrap_or(0),
        memory_limit: read_u64(&d.join("memory.max")),
        memory_peak: read_u64(&d.join("memory.peak")),
        // Without the pids controller, count the tasks themselves.
        pids_current: read_u64(&d.join("pids.current")).unwrap_or_else(|| {
            fs::read_to_string(d.join("cgroup.threads")).map_or(0, |b| b.lines().count() as u64)
        }),
        pids_limit: read_u64(&d.join("pids.max")),
        oom_kills: oom_kills(cg),
        ..Stats::default()
    };
    for l in fs::read_to_string(d.join("io.stat"))
        .unwrap_or_default()
        .lines()
    {
        for kv in l.split_whitespace().skip(1) {
            match kv.split_once('=') {
                Some(("rbytes", v)) => s.io_read_bytes += v.parse::<u64>().unwrap_or(0),
                Some(("wbytes", v)) => s.io_write_bytes += v.parse::<u64>().unwrap_or(0),
                _ => {}
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup directory as the kernel lays it out: the controllers and
    /// every interface file the limits write, empty.
    fn fake_cgroup(controllers: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("cgroup.controllers"), controllers).unwrap();
        for f in [
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "cpu.weight",
            "cpuset.cpus",
            "cpuset.mems",
            "pids.max",
            "io.weight",
            "io.max",
            "hugetlb.2MB.max",
            "memory.high",
        ] {
            fs::write(t.path().join(f), "").unwrap();
        }
        fs::write(t.path().join("cpu.max"), "max 100000").unwrap();
        t
    }

    fn resources(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn read(d: &Path, f: &str) -> String {
        fs::read_to_string(d.join(f)).unwrap()
    }

    #[test]
    fn every_limit_lands_in_its_v2_file() {
        let t = fake_cgroup("cpuset cpu io memory hugetlb pids");
        let d = t.path();
        let res = resources(serde_json::json!({
            "memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
            "pids": {"limit": 16},
            "blockIO": {
                "weight": 500,
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}],
            "unified": {"memory.high": "50000000"},
        }));
        write_limits(d, &res).unwrap();
        assert_eq!(read(d, "memory.max"), (64u64 << 20).to_string());
        // v1's swap is memory+swap, v2's swap alone.
        assert_eq!(read(d, "memory.swap.max"), (32u64 << 20).to_string());
        assert_eq!(read(d, "memory.low"), (32u64 << 20).to_string());
        assert_eq!(read(d, "cpu.weight"), "39");
        assert_eq!(read(d, "cpu.max"), "50000 100000");
        assert_eq!(read(d, "cpuset.cpus"), "0-1");
        assert_eq!(read(d, "cpuset.mems"), "0");
        assert_eq!(read(d, "pids.max"), "16");
        // runc's conversion: 1 + (500 - 10) * 9999 / 990.
        assert_eq!(read(d, "io.weight"), "default 4950");
        assert_eq!(read(d, "io.max"), "8:0 rbps=1048576");
        assert_eq!(read(d, "hugetlb.2MB.max"), (4u64 << 20).to_string());
        assert_eq!(read(d, "memory.high"), "50000000");
    }

    #[test]
    fn unlimited_values_are_written_as_max() {
        let t = fake_cgroup("cpu memory pids");
        let d = t.path();
        let res = resources(serde_json::json!({
            "memory": {"limit": -1, "swap": -1},
            "cpu": {"quota": -1, "period": 100000},
            "pids": {"limit": 0},
        }));
        write_limits(d, &res).unwrap();
        assert_eq!(read(d, "memory.max"), "max");
        assert_eq!(read(d, "memory.swap.max"), "max");
        assert_eq!(read(d, "cpu.max"), "max 100000");
        assert_eq!(read(d, "pids.max"), "max");
    }

    #[test]
    fn controllers_are_enabled_only_as_needed() {
        assert_eq!(wanted_controllers(None), ["memory", "pids", "io"]);
        let res = resources(serde_json::json!({"memory": {"limit": 1 << 20}}));
        assert_eq!(wanted_controllers(Some(&res)), ["memory", "pids", "io"]);
        let res = resources(serde_json::json!({
            "cpu": {"quota": 50000, "period": 100000, "cpus": "0"},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 1}],
            "unified": {"misc.max": "x 1", "cgroup.max.depth": "2"},
        }));
        assert_eq!(
            wanted_controllers(Some(&res)),
            ["memory", "pids", "io", "cpu", "cpuset", "hugetlb", "misc"]
        );

        // On a tree laid out like /sys/fs/cgroup: each ancestor delegates
        // what is wanted and the hierarchy has (no hugetlb here), and a
        // second container adds to what the first enabled.
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let leaf = root.join("stack/p/a");
        enable_controllers(root, &leaf, &wanted_controllers(None)).unwrap();
        assert!(leaf.is_dir());
        for d in [root.to_path_buf(), root.join("stack"), root.join("stack/p")] {
            assert_eq!(read(&d, "cgroup.subtree_control"), "+memory +pids +io");
        }
        assert!(!leaf.join("cgroup.subtree_control").exists());
        let res = resources(serde_json::json!({"cpu": {"shares": 512},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}));
        enable_controllers(
            root,
            &root.join("stack/p/b"),
            &wanted_controllers(Some(&res)),
        )
        .unwrap();
        assert_eq!(
            read(&root.join("stack/p"), "cgroup.subtree_control"),
            "+memory +pids +io +cpu"
        );
    }

    #[test]
    fn a_limit_without_its_controller_or_file_is_an_error() {
        let t = fake_cgroup("cpu");
        let res = resources(serde_json::json!({"pids": {"limit": 5}}));
        assert!(matches!(
            write_limits(t.path(), &res),
            Err(CgroupError::MissingController {
                controller: "pids",
                ..
            })
        ));
        let t = fake_cgroup("hugetlb");
        let res =
            resources(serde_json::json!({"hugepageLimits": [{"pageSize": "1GB", "limit": 1}]}));
        assert!(matches!(
            write_limits(t.path(), &res),
            Err(CgroupError::HugepageSize(s)) if s == "1GB"
        ));
        let res = resources(serde_json::json!({"unified": {"nothing.here": "1"}}));
        assert!(matches!(
            write_limits(t.path(), &res),
            Err(CgroupError::UnknownFile { key, .. }) if key == "nothing.here"
        ));
    }
}
