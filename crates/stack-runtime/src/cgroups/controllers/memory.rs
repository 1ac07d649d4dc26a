//! Memory: the hard limit, swap, the reservation and the OOM switch.
//!
//! v1 counts swap as memory+swap (`memory.memsw.limit_in_bytes`), v2 as swap
//! alone (`memory.swap.max`), so the spec's value is converted for v2.
//! Swappiness is not left to cgroups-rs on v2: its `set_swappiness` writes
//! the value into `memory.swap.max` there (v2 has no swappiness at all, and a
//! swap limit of 60 bytes is not what was asked;
//! `cgroups_rs_v2_swappiness_limits_swap` below), so it is a warning.

use std::path::Path;

use cgroups_rs::fs::MaxValue;
use cgroups_rs::fs::memory::{MemController, SetMemory};
use oci_spec::runtime::LinuxMemory;

use super::{at, failed};
use crate::cgroups::CgroupError;

pub(crate) fn apply(dir: &Path, v2: bool, m: &LinuxMemory) -> Result<(), CgroupError> {
    let (point, root) = at(dir);
    let c = MemController::new(point, root, v2);
    if v2 {
        apply_v2(&c, dir, m)
    } else {
        apply_v1(&c, dir, m)
    }
}

fn apply_v1(c: &MemController, dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    let e = || failed("memory", dir);
    if let Some(s) = m.swappiness() {
        c.set_swappiness(s).map_err(e())?;
    }
    if let Some(l) = m.limit() {
        // The limit must stay <= memsw: when lowering memsw below the old
        // limit fails, raising memsw first and the limit second does not.
        if c.set_limit(l).is_err() {
            if let Some(s) = m.swap() {
                c.set_memswap_limit(s).map_err(e())?;
            }
            c.set_limit(l).map_err(e())?;
        }
        if let Some(s) = m.swap()
            && dir.join("memory.memsw.limit_in_bytes").exists()
        {
            c.set_memswap_limit(s).map_err(e())?;
        }
    }
    if let Some(r) = m.reservation() {
        c.set_soft_limit(r).map_err(e())?;
    }
    if m.disable_oom_killer() == Some(true) {
        c.disable_oom_killer().map_err(e())?;
    }
    // Kernel memory limits are gone from newer kernels: written only where
    // the file still is.
    if let Some(k) = m.kernel()
        && dir.join("memory.kmem.limit_in_bytes").exists()
    {
        c.set_kmem_limit(k).map_err(e())?;
    }
    if let Some(k) = m.kernel_tcp()
        && dir.join("memory.kmem.tcp.limit_in_bytes").exists()
    {
        c.set_tcp_limit(k).map_err(e())?;
    }
    Ok(())
}

fn max_or(v: i64) -> MaxValue {
    if v < 0 {
        MaxValue::Max
    } else {
        MaxValue::Value(v)
    }
}

fn apply_v2(c: &MemController, dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    let e = || failed("memory", dir);
    if m.disable_oom_killer() == Some(true) {
        tracing::warn!(cgroup = %dir.display(), "disableOOMKiller: cgroup v2 has no such switch; not applied");
    }
    if m.swappiness().is_some() {
        tracing::warn!(cgroup = %dir.display(), "memory swappiness: cgroup v2 has no such file; not applied");
    }
    if let Some(l) = m.limit() {
        c.set_mem(SetMemory {
            max: Some(max_or(l)),
            ..SetMemory::default()
        })
        .map_err(e())?;
        if let Some(s) = m.swap() {
            let swap = if s < 0 { -1 } else { (s - l).max(0) };
            c.set_memswap_limit(swap).map_err(e())?;
        }
    }
    if let Some(r) = m.reservation() {
        c.set_mem(SetMemory {
            low: Some(max_or(r)),
            ..SetMemory::default()
        })
        .map_err(e())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controllers::testing::{cgroup_dir, read, resources};

    fn memory(v: serde_json::Value) -> LinuxMemory {
        resources(serde_json::json!({ "memory": v }))
            .memory()
            .unwrap()
    }

    const V1_FILES: &[(&str, &str)] = &[
        ("memory.limit_in_bytes", "9223372036854771712"),
        ("memory.memsw.limit_in_bytes", "9223372036854771712"),
        ("memory.soft_limit_in_bytes", "9223372036854771712"),
        ("memory.swappiness", "60"),
        (
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        ),
    ];
    const V2_FILES: &[(&str, &str)] = &[
        ("memory.max", "max"),
        ("memory.swap.max", "max"),
        ("memory.low", "0"),
    ];

    #[test]
    fn v1_limit_memsw_reservation_swappiness_and_the_oom_switch() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(t.path(), "memory/stack/c", V1_FILES);
        let m = memory(serde_json::json!({
            "limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20,
            "swappiness": 10, "disableOOMKiller": true,
        }));
        apply(&d, false, &m).unwrap();
        assert_eq!(read(&d, "memory.limit_in_bytes"), (64u64 << 20).to_string());
        // v1's swap value is memory+swap, written as given.
        assert_eq!(
            read(&d, "memory.memsw.limit_in_bytes"),
            (96u64 << 20).to_string()
        );
        assert_eq!(
            read(&d, "memory.soft_limit_in_bytes"),
            (32u64 << 20).to_string()
        );
        assert_eq!(read(&d, "memory.swappiness"), "10");
        assert_eq!(read(&d, "memory.oom_control"), "1");
    }

    #[test]
    fn v1_without_swap_accounting_leaves_memsw_alone() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(t.path(), "memory/stack/c", &V1_FILES[..1]);
        apply(
            &d,
            false,
            &memory(serde_json::json!({"limit": 1 << 20, "swap": 2 << 20})),
        )
        .unwrap();
        assert!(!d.join("memory.memsw.limit_in_bytes").exists());
    }

    #[test]
    fn v2_limit_swap_alone_and_reservation() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(t.path(), "stack/c", V2_FILES);
        let m = memory(serde_json::json!({
            "limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20,
        }));
        apply(&d, true, &m).unwrap();
        assert_eq!(read(&d, "memory.max"), (64u64 << 20).to_string());
        assert_eq!(read(&d, "memory.swap.max"), (32u64 << 20).to_string());
        assert_eq!(read(&d, "memory.low"), (32u64 << 20).to_string());
    }

    #[test]
    fn v2_unlimited_is_max() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(t.path(), "stack/c", V2_FILES);
        let m = memory(serde_json::json!({"limit": -1, "swap": -1, "reservation": -1}));
        apply(&d, true, &m).unwrap();
        for f in ["memory.max", "memory.swap.max", "memory.low"] {
            assert_eq!(read(&d, f), "max", "{f}");
        }
    }

    #[test]
    fn v2_swappiness_and_the_oom_switch_are_not_written() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(t.path(), "stack/c", V2_FILES);
        let m = memory(serde_json::json!({"swappiness": 60, "disableOOMKiller": true}));
        apply(&d, true, &m).unwrap();
        assert_eq!(read(&d, "memory.swap.max"), "max");
        assert!(!d.join("memory.oom_control").exists());
    }

    /// Why v2 swappiness is not left to cgroups-rs.
    #[test]
    fn cgroups_rs_v2_swappiness_limits_swap() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(t.path(), "stack/c", V2_FILES);
        let c = MemController::new(d.clone(), d.clone(), true);
        c.set_swappiness(60).unwrap();
        assert_eq!(
            read(&d, "memory.swap.max"),
            "60",
            "swap limited to 60 bytes"
        );
    }
}
