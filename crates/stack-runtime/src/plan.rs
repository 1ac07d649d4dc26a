//! Pure decisions derived from an OCI spec: no side effects, unit-tested without root.

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, PosixRlimitType};
use std::path::PathBuf;

/// Docker's default capability set (14), used when the stack says nothing.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// `runc spec`'s masked paths.
pub const DEFAULT_MASKED_PATHS: [&str; 9] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
];

/// `runc spec`'s read-only paths (plus /proc/scsi, as runc 1.1 lists in masked).
pub const DEFAULT_READONLY_PATHS: [&str; 6] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/scsi",
];

pub fn ns_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(0x80),
    }
}

/// The `/proc/<pid>/ns/<name>` file of a namespace type.
pub fn ns_proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// What to do with namespaces: join these paths (user first), then unshare these.
#[derive(Debug, PartialEq)]
pub struct NamespacePlan {
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
    pub new_user: bool,
    /// New namespaces other than user.
    pub unshare: CloneFlags,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("namespace {0} listed twice")]
    DuplicateNamespace(String),
    #[error("unknown mount propagation {0:?}")]
    Propagation(String),
    #[error("container id {0:?} must be non-empty and use only [A-Za-z0-9_.-]")]
    Id(String),
}

pub fn namespace_plan(list: &[LinuxNamespace]) -> Result<NamespacePlan, PlanError> {
    let mut plan = NamespacePlan {
        join: Vec::new(),
        new_user: false,
        unshare: CloneFlags::empty(),
    };
    let mut seen = Vec::new();
    for ns in list {
        let t = ns.typ();
        if seen.contains(&t) {
            return Err(PlanError::DuplicateNamespace(ns_proc_name(t).to_string()));
        }
        seen.push(t);
        match ns.path() {
            Some(p) if !p.as_os_str().is_empty() => plan.join.push((t, p.clone())),
            _ if t == LinuxNamespaceType::User => plan.new_user = true,
            _ => plan.unshare |= ns_flag(t),
        }
    }
    // Joining the user namespace first grants the rights to join the others.
    plan.join
        .sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
    Ok(plan)
}

pub fn validate_id(id: &str) -> Result<(), PlanError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(PlanError::Id(id.to_string()))
    }
}

/// A spec mount's options split into what mount(2) takes.
#[derive(Debug, PartialEq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Propagation changes, applied after the mount itself.
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub bind: bool,
}

pub fn parse_mount_options(opts: &[String]) -> MountOptions {
    let mut m = MountOptions {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: Vec::new(),
        bind: false,
    };
    for o in opts {
        let (set, clear) = match o.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => {
                m.bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                m.bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            p @ ("private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
            | "unbindable" | "runbindable") => {
                if let Ok(f) = propagation_flags(p) {
                    m.propagation.push(f);
                }
                continue;
            }
            other => {
                m.data.push(other.to_string());
                continue;
            }
        };
        m.flags |= set;
        m.flags &= !clear;
    }
    m
}

pub fn propagation_flags(p: &str) -> Result<MsFlags, PlanError> {
    Ok(match p {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        other => return Err(PlanError::Propagation(other.to_string())),
    })
}

pub fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Clamps a requested (soft, hard) limit to the hard limit we may not raise.
/// Returns the limits to set and whether they were clamped.
pub fn clamp_rlimit(soft: u64, hard: u64, current_hard: u64) -> (u64, u64, bool) {
    if hard <= current_hard {
        (soft, hard, false)
    } else {
        (soft.min(current_hard), current_hard, true)
    }
}

/// Docker's `--cpus` as CFS quota for a period (default 100 ms).
pub fn cpus_to_quota(cpus: f64, period_us: u64) -> i64 {
    (cpus * period_us as f64).round() as i64
}

/// cgroup v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000), as runc converts.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// blkio weight (10..1000) to io.weight (1..10000), as crun converts.
pub fn blkio_weight_to_io(weight: u64) -> u64 {
    1 + (weight.clamp(10, 1000) - 10) * 9999 / 990
}

/// Looks `prog` up the way execvp does, with `PATH` from the container env.
/// Returns candidate paths inside the container, in order.
pub fn exec_candidates(prog: &str, env: &[String]) -> Vec<String> {
    if prog.contains('/') {
        return vec![prog.to_string()];
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{}/{prog}", d.trim_end_matches('/')))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceBuilder;

    fn ns(t: LinuxNamespaceType, p: Option<&str>) -> LinuxNamespace {
        let b = LinuxNamespaceBuilder::default().typ(t);
        match p {
            Some(p) => b.path(p).build().unwrap(),
            None => b.build().unwrap(),
        }
    }

    #[test]
    fn namespaces_split_into_join_and_new() {
        let plan = namespace_plan(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Network, Some("/run/netns/x")),
            ns(LinuxNamespaceType::User, Some("/proc/1/ns/user")),
            ns(LinuxNamespaceType::Mount, None),
        ])
        .unwrap();
        assert_eq!(
            plan.unshare,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS
        );
        assert_eq!(plan.join[0].0, LinuxNamespaceType::User);
        assert_eq!(plan.join[1].1, PathBuf::from("/run/netns/x"));
        assert!(!plan.new_user);
    }

    #[test]
    fn duplicate_namespace_rejected() {
        let e = namespace_plan(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Pid, None),
        ]);
        assert!(e.is_err());
    }

    #[test]
    fn mount_options() {
        let o: Vec<String> = [
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "ro",
            "rw",
            "rbind",
            "rslave",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let m = parse_mount_options(&o);
        assert!(m.flags.contains(
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME | MsFlags::MS_BIND | MsFlags::MS_REC
        ));
        assert!(!m.flags.contains(MsFlags::MS_RDONLY));
        assert_eq!(m.data, vec!["mode=755", "size=65536k"]);
        assert_eq!(m.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert!(m.bind);
    }

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x").is_ok());
        assert!(validate_id("").is_err());
        assert!(validate_id("a/b").is_err());
        assert!(validate_id("..").is_err());
    }

    #[test]
    fn rlimit_clamp() {
        assert_eq!(clamp_rlimit(1024, 4096, 20000), (1024, 4096, false));
        assert_eq!(
            clamp_rlimit(1_048_576, 1_048_576, 20000),
            (20000, 20000, true)
        );
        assert_eq!(clamp_rlimit(100, 1_048_576, 20000), (100, 20000, true));
    }

    #[test]
    fn cpu_conversions() {
        assert_eq!(cpus_to_quota(0.5, 100_000), 50_000);
        assert_eq!(cpus_to_quota(1.5, 100_000), 150_000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(1000), 10_000);
    }

    #[test]
    fn exec_lookup() {
        let env = vec!["PATH=/usr/bin:/bin".to_string()];
        assert_eq!(exec_candidates("sh", &env), vec!["/usr/bin/sh", "/bin/sh"]);
        assert_eq!(exec_candidates("/x/y", &env), vec!["/x/y"]);
    }
}
