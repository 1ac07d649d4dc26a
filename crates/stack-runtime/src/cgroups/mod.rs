//! Cgroups, v1 and v2, detected at run time, behind one boundary: the
//! runtime touches a container's cgroup only through [`Cgroup`] (create,
//! enter, pids, kill, freeze, stats, OOM count, remove), whichever version
//! and driver is underneath.
//!
//! The limits are written through cgroups-rs's controller types, one module
//! per controller (`controllers/`), each unit-tested for v1 and v2 against a
//! temporary tree laid out like `/sys/fs/cgroup`. cgroups-rs's managers
//! (`FsManager`, `SystemdManager`, behind its `oci` feature) are not used:
//! they find the cgroup from `/proc/self/cgroup` and the fixed
//! `/sys/fs/cgroup` and cannot be pointed at another root, so neither the
//! hybrid host's `/sys/fs/cgroup/unified` nor a test tree would do. What
//! the runtime needs and cgroups-rs cannot do is its own code, each piece
//! with the test that shows the need:
//!
//! - hybrid hosts: the version is whatever `/sys/fs/cgroup` itself is, and
//!   the v2 code runs on a cgroup2 mount anywhere ([`Cgroup::v2_at`]);
//!   cgroups-rs's v2 root is the constant `/sys/fs/cgroup`
//!   (`tests::cgroups_rs_v2_root_is_fixed`; the v2 path on this kind of
//!   host: `tests/cgroup_v2.rs`);
//! - v2 delegation: controllers enabled down the tree in
//!   `cgroup.subtree_control`, the runtime's own processes moved to a leaf
//!   first ("no internal processes", `v2.rs`); cgroups-rs enables every
//!   controller `/sys/fs/cgroup` has and ignores a refusal, where the
//!   runtime enables only what a container uses
//!   (`v2::tests::controllers_are_enabled_only_as_needed`; the nested check
//!   of `scripts/vm-e2e`);
//! - v1 cpuset inheritance, an error when it fails
//!   (`controllers::cpuset::tests::cgroups_rs_swallows_a_failed_cpuset_copy`);
//! - the v2 freeze state from `cgroup.events`
//!   (`controllers::freezer::tests::cgroups_rs_reports_a_v2_freeze_as_done_when_asked`);
//! - the v2 `io.weight`
//!   (`controllers::io::tests::cgroups_rs_writes_the_v2_weight_to_bfq`);
//! - v2's missing swappiness, a warning rather than a swap limit
//!   (`controllers::memory::tests::cgroups_rs_v2_swappiness_limits_swap`);
//! - v2 device rules: v2 has no devices files, and cgroups-rs has no
//!   device program; an eBPF program ([`devices_bpf`], `tests/devices.rs`);
//! - the systemd driver: a transient scope per container in its own slice,
//!   its limits as unit properties ([`systemd`]; shown in the systemd
//!   guest, `scripts/vm-e2e`), where cgroups-rs's `SystemdManager` rests on
//!   `FsManager` and its fixed root.
//!
//! Reading (`stats`, the OOM count, `cgroup.procs`) is the few files the
//! runtime reports, read here: cgroups-rs's readers turn a failed read into
//! an empty list or zero.

mod controllers;
pub mod devices_bpf;
pub mod systemd;
mod v1;
mod v2;

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxResources};
use serde::{Deserialize, Serialize};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{controller} controller, in {path}: {source}")]
    Controller {
        controller: &'static str,
        path: PathBuf,
        // Boxed: its kind carries two strings, and every error of the
        // runtime would grow by it.
        source: Box<cgroups_rs::fs::error::Error>,
    },
    #[error("no cgroup hierarchy found under {CGROUP_ROOT}")]
    NoHierarchy,
    #[error("controller {controller} needed for {what} is not available")]
    MissingController {
        controller: &'static str,
        what: &'static str,
    },
    #[error("invalid hugepage size {0:?}")]
    HugepageSize(String),
    #[error("freezing {path} did not complete")]
    FreezeTimeout { path: PathBuf },
    #[error("unified key {key:?}: no such file in {dir} (controller not available?)")]
    UnknownFile { key: String, dir: PathBuf },
    #[error("device rules: {op} of the cgroup device program for {path}: {source}{}", if detail.is_empty() { String::new() } else { format!(" (verifier: {detail})") })]
    DeviceProgram {
        op: &'static str,
        path: PathBuf,
        detail: String,
        source: std::io::Error,
    },
    #[error("device rule {0:?} cannot be expressed")]
    DeviceRule(String),
    #[error("{0} is not a cgroup2 mount")]
    NotCgroup2(PathBuf),
    #[error("cgroup driver: {0}")]
    Driver(String),
    #[error("systemd: {op} {unit}: {message}")]
    Systemd {
        op: &'static str,
        unit: String,
        message: String,
    },
}

pub(crate) fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError::Io {
        op: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// Makes a cgroup directory and its missing parents. A parent pruned by a
/// container being deleted at the same moment makes one attempt fail with
/// ENOENT; the next one makes it again.
pub(crate) fn make_dir(dir: &Path) -> Result<(), CgroupError> {
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

pub(crate) fn read_file(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// Which cgroup version the host runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    V1,
    V2,
}

/// One mounted v1 hierarchy: its mount point and the controllers it carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct V1Mount {
    pub mount_point: PathBuf,
    pub controllers: Vec<String>,
}

/// Resource usage read from the cgroup files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu_usage_ns: u64,
    pub memory_usage: u64,
    pub memory_limit: Option<u64>,
    pub memory_peak: Option<u64>,
    pub pids_current: u64,
    pub pids_limit: Option<u64>,
    pub io_read_bytes: u64,
    pub io_write_bytes: u64,
    pub oom_kills: u64,
}

/// A container's cgroup in whichever hierarchy the host has.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cgroup {
    pub version: Version,
    /// Path relative to each hierarchy root, starting with `/`.
    pub path: String,
    pub v1_mounts: Vec<V1Mount>,
    /// Where the v2 hierarchy is mounted: `/sys/fs/cgroup`, or e.g. the
    /// hybrid layout's `/sys/fs/cgroup/unified` (see [`Cgroup::v2_at`]).
    #[serde(default = "default_v2_root")]
    pub v2_root: PathBuf,
    /// The transient scope systemd holds this cgroup as (systemd driver).
    #[serde(default)]
    pub systemd_scope: Option<systemd::Scope>,
    /// The subtree delegated to the runtime when it runs inside one (e.g.
    /// `/system.slice/x.scope`), empty for the whole hierarchy: the
    /// default parent is made under it, controllers enabled from it down.
    #[serde(default)]
    pub base: String,
}

fn default_v2_root() -> PathBuf {
    PathBuf::from(CGROUP_ROOT)
}

fn is_cgroup2(path: &Path) -> Result<bool, CgroupError> {
    let st = nix::sys::statfs::statfs(path).map_err(|e| CgroupError::Io {
        op: "statfs",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    Ok(st.filesystem_type().0 as i64 == CGROUP2_SUPER_MAGIC)
}

/// Parses `/proc/self/mountinfo` for v1 hierarchies (fstype `cgroup`).
pub fn parse_v1_mounts(mountinfo: &str) -> Vec<V1Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let mut post = post.split_whitespace();
            if post.next()? != "cgroup" {
                return None;
            }
            let superopts = post.nth(1)?;
            let mount_point = PathBuf::from(pre.split_whitespace().nth(4)?);
            let controllers: Vec<String> = superopts
                .split(',')
                .filter(|o| {
                    !matches!(*o, "rw" | "ro")
                        && !o.starts_with("release_agent")
                        && *o != "clone_children"
                })
                .map(str::to_string)
                .collect();
            (!controllers.is_empty()).then_some(V1Mount {
                mount_point,
                controllers,
            })
        })
        .collect()
}

/// The runtime's own v2 cgroup, from `/proc/self/cgroup` (`0::/path`;
/// `/` in a cgroup namespace's root).
fn own_v2_path() -> Result<String, CgroupError> {
    let body = read_file(Path::new("/proc/self/cgroup"))?;
    Ok(body
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .trim_end_matches(" (deleted)")
        .to_string())
}

/// The nearest cgroup at or above `own` that was delegated (systemd marks
/// a unit's cgroup with `Delegate=yes` by the `trusted.delegate` xattr):
/// the subtree the runtime was handed, so its containers go there rather
/// than beside the unit.
fn delegated_base(root: &Path, own: &str) -> Option<String> {
    let own = Path::new(own.trim_start_matches('/'));
    own.ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .find(|p| {
            let mut buf = [0u8; 8];
            rustix::fs::getxattr(root.join(p), "trusted.delegate", &mut buf)
                .is_ok_and(|n| &buf[..n] == b"1")
        })
        .map(|p| format!("/{}", p.display()))
}

/// The runtime's own parent cgroup. It and everything under it are made on
/// demand by whichever container needs them first, and pruned by the last
/// one out (see [`Cgroup::remove`]).
pub const DEFAULT_PARENT: &str = "/stack";

/// The cgroup path for a container: `linux.cgroupsPath` or `/stack/<id>`.
pub fn container_path(spec_path: Option<&Path>, id: &str) -> String {
    match spec_path.and_then(|p| p.to_str()).filter(|p| !p.is_empty()) {
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) => format!("/{p}"),
        None => format!("{DEFAULT_PARENT}/{id}"),
    }
}

pub fn detect_version() -> Result<Version, CgroupError> {
    Ok(if is_cgroup2(Path::new(CGROUP_ROOT))? {
        Version::V2
    } else {
        Version::V1
    })
}

impl Cgroup {
    pub fn new(path: String) -> Result<Self, CgroupError> {
        let version = detect_version()?;
        let v1_mounts = if version == Version::V1 {
            let info = read_file(Path::new("/proc/self/mountinfo"))?;
            let m = parse_v1_mounts(&info);
            if m.is_empty() {
                return Err(CgroupError::NoHierarchy);
            }
            m
        } else {
            Vec::new()
        };
        Ok(Cgroup {
            version,
            path,
            v1_mounts,
            v2_root: default_v2_root(),
            systemd_scope: None,
            base: String::new(),
        })
    }

    /// The cgroup of container `id` with the driver [`systemd::ENV`] names
    /// or the host calls for: a scope of systemd's, or `cgroups_path` (or
    /// `/stack/<id>`) made by the runtime. A `cgroups_path` outside
    /// `/stack` that is not in systemd's `slice:prefix:name` form is made
    /// where it says, as a directory, with either driver.
    pub fn for_container(cgroups_path: Option<&Path>, id: &str) -> Result<Self, CgroupError> {
        let version = detect_version()?;
        let base = match version {
            Version::V2 => delegated_base(Path::new(CGROUP_ROOT), &own_v2_path()?),
            Version::V1 => None,
        };
        let var = std::env::var(systemd::ENV).ok();
        let driver = systemd::choose(var.as_deref(), version, base.is_some(), systemd::systemd_up)?;
        let path = container_path(cgroups_path, id);
        // `/stack/...` is the runtime's own naming (the engine's
        // `/stack/<project>/<service>`): a scope by the container's id with
        // the systemd driver, below the delegated subtree when nested.
        let runtime_named = path.starts_with(&format!("{DEFAULT_PARENT}/"));
        let spec_path = cgroups_path
            .and_then(|p| p.to_str())
            .filter(|_| !runtime_named);
        if driver == systemd::Driver::Systemd {
            if let Some(scope) = systemd::scope_for(spec_path, id)? {
                return Ok(Cgroup {
                    version,
                    path: scope.path.clone(),
                    v1_mounts: Vec::new(),
                    v2_root: default_v2_root(),
                    systemd_scope: Some(scope),
                    base: String::new(),
                });
            }
            tracing::info!(
                "cgroupsPath {spec_path:?} is a path, not slice:prefix:name: made as a directory, not a systemd scope"
            );
        }
        let mut cg = Self::new(path)?;
        if let Some(base) = base.filter(|_| runtime_named) {
            cg.path = format!("{base}{}", cg.path);
            cg.base = base;
        }
        Ok(cg)
    }

    /// The cgroup `path` in the v2 hierarchy mounted at `mount`, whatever
    /// `/sys/fs/cgroup` is: on a hybrid host, the cgroup2 mount beside the v1
    /// controllers (no controllers of its own, but processes, freezing,
    /// `cgroup.kill` and CPU usage work there).
    pub fn v2_at(mount: impl Into<PathBuf>, path: String) -> Result<Self, CgroupError> {
        let mount = mount.into();
        if !is_cgroup2(&mount)? {
            return Err(CgroupError::NotCgroup2(mount));
        }
        Ok(Cgroup {
            version: Version::V2,
            path,
            v1_mounts: Vec::new(),
            v2_root: mount,
            systemd_scope: None,
            base: String::new(),
        })
    }

    /// The directory of this cgroup in the hierarchy carrying `controller` (v1),
    /// or the single v2 directory.
    pub fn dir(&self, controller: &str) -> Option<PathBuf> {
        let rel = self.path.trim_start_matches('/');
        match self.version {
            Version::V2 => Some(self.v2_root.join(rel)),
            Version::V1 => self
                .v1_mounts
                .iter()
                .find(|m| m.controllers.iter().any(|c| c == controller))
                .map(|m| m.mount_point.join(rel)),
        }
    }

    /// Every directory of this cgroup (one per v1 hierarchy, or one for v2).
    pub fn dirs(&self) -> Vec<PathBuf> {
        let rel = self.path.trim_start_matches('/');
        match self.version {
            Version::V2 => vec![self.v2_root.join(rel)],
            Version::V1 => self
                .v1_mounts
                .iter()
                .map(|m| m.mount_point.join(rel))
                .collect(),
        }
    }

    /// Whether the cgroup already exists (then the runtime joins but does not own it).
    pub fn exists(&self) -> bool {
        self.dirs().first().is_some_and(|d| d.exists())
    }

    /// Creates the cgroup and applies the resources. A systemd scope cannot
    /// exist without a process: it is made by [`Cgroup::enter`].
    pub fn create(
        &self,
        resources: Option<&LinuxResources>,
        devices: &[LinuxDevice],
    ) -> Result<(), CgroupError> {
        if self.systemd_scope.is_some() {
            return Ok(());
        }
        match self.version {
            Version::V1 => v1::create(self, resources, devices),
            Version::V2 => v2::create(self, resources, devices),
        }
    }

    /// Puts a container's first process, `pid`, into the cgroup
    /// [`Cgroup::create`] made; with the systemd driver, makes the scope with
    /// `pid` in it and applies the resources to it.
    pub fn enter(
        &self,
        pid: i32,
        resources: Option<&LinuxResources>,
        devices: &[LinuxDevice],
    ) -> Result<(), CgroupError> {
        match &self.systemd_scope {
            Some(scope) => {
                systemd::start(scope, pid, resources)?;
                v2::configure(
                    &self.v2_root.join(scope.path.trim_start_matches('/')),
                    resources,
                    devices,
                )
            }
            None => self.add_pid(pid),
        }
    }

    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        for d in self.dirs() {
            write_file(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let d = self
            .dirs()
            .into_iter()
            .next()
            .ok_or(CgroupError::NoHierarchy)?;
        let body = read_file(&d.join("cgroup.procs"))?;
        Ok(body.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// SIGKILLs every process in the cgroup: in one step through `cgroup.kill`
    /// on v2 (no pid can be reused or forked past it), pid by pid on v1.
    pub fn kill_all(&self) {
        if self.version == Version::V2
            && let Some(d) = self.dirs().first()
            && write_file(&d.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for p in self.pids().unwrap_or_default() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    pub fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        match self.version {
            Version::V1 => v1::freeze(self, frozen),
            Version::V2 => v2::freeze(self, frozen),
        }
    }

    pub fn is_frozen(&self) -> bool {
        match self.version {
            Version::V1 => v1::is_frozen(self),
            Version::V2 => v2::is_frozen(self),
        }
    }

    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match self.version {
            Version::V1 => v1::stats(self),
            Version::V2 => v2::stats(self),
        }
    }

    /// The directory of a systemd scope's slice.
    fn slice_dir(&self) -> PathBuf {
        let d = self.v2_root.join(self.path.trim_start_matches('/'));
        d.parent().map(Path::to_path_buf).unwrap_or(d)
    }

    /// How many times the kernel OOM-killed a process in this cgroup; with
    /// a container's own systemd slice, read there (the scope's cgroup is
    /// gone once its processes are).
    pub fn oom_kills(&self) -> u64 {
        if self.systemd_scope.as_ref().is_some_and(|s| s.own_slice) {
            return fs::read_to_string(self.slice_dir().join("memory.events"))
                .ok()
                .and_then(|b| keyed(&b, "oom_kill"))
                .unwrap_or(0);
        }
        match self.version {
            Version::V1 => v1::oom_kills(self),
            Version::V2 => v2::oom_kills(self),
        }
    }

    /// Removes the cgroup directories; processes must be gone. Retries briefly,
    /// as the kernel frees a cgroup shortly after its last task exits. Under
    /// [`DEFAULT_PARENT`], the ancestors left empty go too, up to and
    /// including it; one that still has children or tasks refuses `rmdir`,
    /// so a parent in use is never removed.
    pub fn remove(&self) -> Result<(), CgroupError> {
        if let Some(scope) = &self.systemd_scope {
            // systemd removes the cgroup (and any the container made in it)
            // once the stop job ran; what it left, if it was not asked, the
            // directories below go as the runtime's own. Stopping the
            // container's own slice stops the scope in it too.
            let (unit, dir) = match scope.own_slice {
                true => (&scope.slice, self.slice_dir()),
                false => (
                    &scope.unit,
                    self.v2_root.join(self.path.trim_start_matches('/')),
                ),
            };
            let stopped = systemd::stop(unit);
            for _ in 0..500 {
                if !dir.exists() {
                    return Ok(());
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            stopped?;
        }
        let mut dirs = self.dirs();
        // Children of a v2 cgroup (e.g. made by the container) go first.
        dirs.sort();
        for d in dirs.iter().rev() {
            if !d.exists() {
                continue;
            }
            remove_tree(d)?;
        }
        let depth = self.prunable_ancestors();
        for d in &dirs {
            for ancestor in d.ancestors().skip(1).take(depth) {
                match fs::remove_dir(ancestor) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    // Still used by another container: it prunes later.
                    Err(_) => break,
                }
            }
        }
        Ok(())
    }

    /// How many ancestors of this cgroup belong to the runtime's own parent:
    /// 2 for `/stack/p/c` (`/stack/p` and `/stack`), 0 outside it.
    fn prunable_ancestors(&self) -> usize {
        let under_base = self.path.strip_prefix(self.base.as_str()).unwrap_or("");
        match under_base.strip_prefix(DEFAULT_PARENT) {
            Some(rest) if rest.starts_with('/') => rest.trim_matches('/').split('/').count(),
            _ => 0,
        }
    }
}

fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    let mut last = None;
    for _ in 0..200 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                last = Some(e);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
    Err(CgroupError::Io {
        op: "rmdir",
        path: dir.to_path_buf(),
        source: last.unwrap_or_else(|| std::io::Error::other("busy")),
    })
}

/// Reads `key value` lines (memory.stat, memory.events, cpu.stat) for one key.
pub(crate) fn keyed(body: &str, key: &str) -> Option<u64> {
    body.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
25 30 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup ro,nosuid shared:8 - tmpfs tmpfs ro,mode=755
27 26 0:25 / /sys/fs/cgroup/unified rw shared:9 - cgroup2 cgroup2 rw,nsdelegate
28 26 0:26 / /sys/fs/cgroup/systemd rw shared:10 - cgroup cgroup rw,xattr,name=systemd
31 26 0:29 / /sys/fs/cgroup/cpu rw shared:13 - cgroup cgroup rw,cpu
32 26 0:30 / /sys/fs/cgroup/memory rw shared:14 - cgroup cgroup rw,memory
";

    #[test]
    fn only_parents_under_the_runtime_parent_are_pruned() {
        let cg = |path: &str| Cgroup {
            version: Version::V2,
            path: path.into(),
            v1_mounts: Vec::new(),
            v2_root: default_v2_root(),
            systemd_scope: None,
            base: String::new(),
        };
        assert_eq!(cg("/stack/p/c").prunable_ancestors(), 2);
        assert_eq!(cg("/stack/c").prunable_ancestors(), 1);
        assert_eq!(cg("/stacked/c").prunable_ancestors(), 0);
        assert_eq!(cg("/user/slice/c").prunable_ancestors(), 0);
        let nested = Cgroup {
            base: "/system.slice/x.scope".into(),
            ..cg("/system.slice/x.scope/stack/c")
        };
        assert_eq!(nested.prunable_ancestors(), 1);
    }

    #[test]
    fn the_nearest_delegated_ancestor_is_the_base() {
        // A tree laid out like /sys/fs/cgroup, systemd's mark on one unit.
        let t = tempfile::tempdir().unwrap();
        let scope = t.path().join("system.slice/x.scope");
        fs::create_dir_all(scope.join("stack-self")).unwrap();
        let own = "/system.slice/x.scope/stack-self";
        assert_eq!(delegated_base(t.path(), own), None);
        rustix::fs::setxattr(
            &scope,
            "trusted.delegate",
            b"1",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        assert_eq!(
            delegated_base(t.path(), own).as_deref(),
            Some("/system.slice/x.scope")
        );
        assert_eq!(delegated_base(t.path(), "/"), None);
    }

    /// Why the v2 code takes its mount point rather than cgroups-rs's
    /// hierarchy: there is no other root to give it.
    #[test]
    fn cgroups_rs_v2_root_is_fixed() {
        use cgroups_rs::fs::Hierarchy;
        assert_eq!(
            cgroups_rs::fs::hierarchies::V2::new().root(),
            Path::new("/sys/fs/cgroup")
        );
    }

    #[test]
    fn v1_mounts_from_mountinfo() {
        let m = parse_v1_mounts(MOUNTINFO);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].controllers, vec!["xattr", "name=systemd"]);
        assert_eq!(
            m[1],
            V1Mount {
                mount_point: "/sys/fs/cgroup/cpu".into(),
                controllers: vec!["cpu".into()]
            }
        );
    }

    #[test]
    fn paths() {
        assert_eq!(container_path(None, "x"), "/stack/x");
        assert_eq!(container_path(Some(Path::new("/a/b")), "x"), "/a/b");
        assert_eq!(container_path(Some(Path::new("a/b")), "x"), "/a/b");
        let cg = Cgroup {
            version: Version::V1,
            path: "/stack/x".into(),
            v1_mounts: parse_v1_mounts(MOUNTINFO),
            v2_root: default_v2_root(),
            systemd_scope: None,
            base: String::new(),
        };
        assert_eq!(
            cg.dir("memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/stack/x"))
        );
        assert_eq!(cg.dir("pids"), None);
    }

    #[test]
    fn keyed_lines() {
        assert_eq!(keyed("low 0\noom 2\noom_kill 1\n", "oom_kill"), Some(1));
        assert_eq!(keyed("usage_usec 5\n", "nothing"), None);
    }
}
