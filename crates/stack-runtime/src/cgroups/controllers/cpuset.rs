//! CPU and memory-node sets, and, on v1, their inheritance.
//!
//! A new v1 cpuset cgroup starts with empty `cpuset.cpus` and `cpuset.mems`,
//! and a task cannot join it (ENOSPC) until both are filled from the
//! nearest ancestor that has them. cgroups-rs does that copy when it makes
//! the directory, but a failed copy there is only logged and creation
//! succeeds, leaving the join to fail later with nothing pointing at the
//! cause (`cgroups_rs_swallows_a_failed_cpuset_copy` below); here the copy
//! is the runtime's own and its failure is the error. It also checks both
//! files of the parent: a sibling container may be initialising it at the
//! same moment and have written cpus but not yet mems.

use std::path::Path;

use cgroups_rs::fs::cpuset::CpuSetController;
use oci_spec::runtime::LinuxCpu;

use super::{at, failed};
use crate::cgroups::{CgroupError, make_dir, read_file, write_file};

/// Whether the spec sets anything the cpuset controller carries.
pub(crate) fn wanted(c: &LinuxCpu) -> bool {
    c.cpus().is_some() || c.mems().is_some()
}

pub(crate) fn apply(dir: &Path, v2: bool, c: &LinuxCpu) -> Result<(), CgroupError> {
    let (point, root) = at(dir);
    let ctl = CpuSetController::new(point, root, v2);
    if let Some(s) = c.cpus() {
        ctl.set_cpus(s).map_err(failed("cpuset", dir))?;
    }
    if let Some(s) = c.mems() {
        ctl.set_mems(s).map_err(failed("cpuset", dir))?;
    }
    Ok(())
}

/// Makes the v1 cpuset cgroup `dir` with cpus and mems copied down from the
/// nearest ancestor that has them, level by level.
pub(crate) fn inherit_v1(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    if !parent.join("cpuset.cpus").exists() {
        return Ok(());
    }
    let empty = |f: &str| read_file(&parent.join(f)).map(|v| v.trim().is_empty());
    if empty("cpuset.cpus")? || empty("cpuset.mems")? {
        inherit_v1(parent)?;
    }
    make_dir(dir)?;
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = read_file(&dir.join(f))?;
        if cur.trim().is_empty() {
            let p = read_file(&parent.join(f))?;
            write_file(&dir.join(f), p.trim())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controllers::testing::{cgroup_dir, read, resources};
    use cgroups_rs::fs::Controller;

    fn cpu(v: serde_json::Value) -> LinuxCpu {
        resources(serde_json::json!({ "cpu": v }))
            .cpu()
            .clone()
            .unwrap()
    }

    const EMPTY: &[(&str, &str)] = &[("cpuset.cpus", ""), ("cpuset.mems", "")];

    #[test]
    fn cpus_and_mems_on_v1_and_v2() {
        let t = tempfile::tempdir().unwrap();
        for (rel, v2) in [("cpuset/stack/c", false), ("stack/c", true)] {
            let d = cgroup_dir(t.path(), rel, EMPTY);
            apply(
                &d,
                v2,
                &cpu(serde_json::json!({"cpus": "0-1", "mems": "0"})),
            )
            .unwrap();
            assert_eq!(read(&d, "cpuset.cpus"), "0-1");
            assert_eq!(read(&d, "cpuset.mems"), "0");
        }
    }

    #[test]
    fn v1_cpus_and_mems_come_down_from_the_nearest_ancestor_that_has_them() {
        let t = tempfile::tempdir().unwrap();
        cgroup_dir(
            t.path(),
            "cpuset",
            &[("cpuset.cpus", "0-3\n"), ("cpuset.mems", "0\n")],
        );
        // The parent half-initialised by a sibling: cpus, not yet mems.
        cgroup_dir(
            t.path(),
            "cpuset/stack",
            &[("cpuset.cpus", "0-3"), ("cpuset.mems", "")],
        );
        let leaf = cgroup_dir(t.path(), "cpuset/stack/p/c", EMPTY);
        cgroup_dir(t.path(), "cpuset/stack/p", EMPTY);
        inherit_v1(&leaf).unwrap();
        for d in ["cpuset/stack", "cpuset/stack/p", "cpuset/stack/p/c"] {
            let d = t.path().join(d);
            assert_eq!(read(&d, "cpuset.cpus"), "0-3", "{}", d.display());
            assert_eq!(read(&d, "cpuset.mems"), "0", "{}", d.display());
        }
    }

    #[test]
    fn a_failed_v1_inheritance_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        // The parent has cpus but its mems cannot be read.
        cgroup_dir(t.path(), "cpuset/stack", &[("cpuset.cpus", "0")]);
        let leaf = cgroup_dir(t.path(), "cpuset/stack/c", EMPTY);
        assert!(matches!(
            inherit_v1(&leaf),
            Err(CgroupError::Io { op: "read", .. })
        ));
    }

    /// Why the inheritance is not left to cgroups-rs.
    #[test]
    fn cgroups_rs_swallows_a_failed_cpuset_copy() {
        let t = tempfile::tempdir().unwrap();
        let root = cgroup_dir(t.path(), "cpuset", &[("cpuset.cpus", "0")]);
        let leaf = cgroup_dir(t.path(), "cpuset/c", EMPTY);
        let c = CpuSetController::new(leaf.clone(), root, false);
        c.create().unwrap();
        // Created "successfully" with no memory nodes: no task can join it.
        assert_eq!(read(&leaf, "cpuset.mems"), "");
    }
}
