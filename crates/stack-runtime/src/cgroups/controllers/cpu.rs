//! CPU time: shares (v2: `cpu.weight`, converted as runc and crun do),
//! the CFS quota and period (v2: the two numbers of `cpu.max`) and, on v1,
//! the realtime budget. v2 has no realtime files: asked for there, a
//! warning names the cgroup.

use std::path::Path;

use cgroups_rs::fs::cpu::CpuController;
use oci_spec::runtime::LinuxCpu;

use super::{at, failed};
use crate::cgroups::CgroupError;
use crate::plan::shares_to_weight;

/// Whether the spec sets anything the cpu controller carries.
pub(crate) fn wanted(c: &LinuxCpu) -> bool {
    c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.realtime_runtime().is_some()
        || c.realtime_period().is_some()
}

pub(crate) fn apply(dir: &Path, v2: bool, c: &LinuxCpu) -> Result<(), CgroupError> {
    let (point, root) = at(dir);
    let ctl = CpuController::new(point, root, v2);
    let e = || failed("cpu", dir);
    if let Some(s) = c.shares() {
        let value = if v2 { shares_to_weight(s) } else { s };
        ctl.set_shares(value).map_err(e())?;
    }
    if v2 {
        if c.quota().is_some() || c.period().is_some() {
            // One write of both: the quota alone would keep whatever period
            // the file has, and a quota of 0 or less is no limit ("max").
            ctl.set_cfs_quota_and_period(c.quota(), c.period())
                .map_err(e())?;
        }
        if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
            tracing::warn!(cgroup = %dir.display(), "cpu realtime runtime/period: cgroup v2 has no such files; not applied");
        }
        return Ok(());
    }
    // The period first: a quota is checked against the period in place.
    if let Some(p) = c.period() {
        ctl.set_cfs_period(p).map_err(e())?;
    }
    if let Some(q) = c.quota() {
        ctl.set_cfs_quota(q).map_err(e())?;
    }
    if let Some(p) = c.realtime_period() {
        ctl.set_rt_period_us(p).map_err(e())?;
    }
    if let Some(r) = c.realtime_runtime() {
        ctl.set_rt_runtime(r).map_err(e())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controllers::testing::{cgroup_dir, read, resources};

    fn cpu(v: serde_json::Value) -> LinuxCpu {
        resources(serde_json::json!({ "cpu": v }))
            .cpu()
            .clone()
            .unwrap()
    }

    #[test]
    fn v1_shares_quota_period_and_realtime() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(
            t.path(),
            "cpu/stack/c",
            &[
                ("cpu.shares", "1024"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "-1"),
                ("cpu.rt_period_us", "1000000"),
                ("cpu.rt_runtime_us", "0"),
            ],
        );
        let c = cpu(serde_json::json!({
            "shares": 512, "quota": 25000, "period": 50000,
            "realtimePeriod": 500000, "realtimeRuntime": 1000,
        }));
        apply(&d, false, &c).unwrap();
        assert_eq!(read(&d, "cpu.shares"), "512");
        assert_eq!(read(&d, "cpu.cfs_period_us"), "50000");
        assert_eq!(read(&d, "cpu.cfs_quota_us"), "25000");
        assert_eq!(read(&d, "cpu.rt_period_us"), "500000");
        assert_eq!(read(&d, "cpu.rt_runtime_us"), "1000");
    }

    #[test]
    fn v2_weight_and_cpu_max() {
        let t = tempfile::tempdir().unwrap();
        let files = [("cpu.weight", "100"), ("cpu.max", "max 100000")];
        let d = cgroup_dir(t.path(), "stack/c", &files);
        apply(
            &d,
            true,
            &cpu(serde_json::json!({"shares": 1024, "quota": 50000, "period": 100000})),
        )
        .unwrap();
        assert_eq!(read(&d, "cpu.weight"), "39");
        assert_eq!(read(&d, "cpu.max"), "50000 100000");
        // A quota alone keeps the period; no quota is "max".
        let d = cgroup_dir(t.path(), "stack/q", &files);
        apply(&d, true, &cpu(serde_json::json!({"quota": 150000}))).unwrap();
        assert_eq!(read(&d, "cpu.max"), "150000 100000");
        apply(
            &d,
            true,
            &cpu(serde_json::json!({"quota": -1, "period": 20000})),
        )
        .unwrap();
        assert_eq!(read(&d, "cpu.max"), "max 20000");
    }

    #[test]
    fn v2_realtime_is_not_written() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(t.path(), "stack/c", &[("cpu.max", "max 100000")]);
        apply(&d, true, &cpu(serde_json::json!({"realtimeRuntime": 1000}))).unwrap();
        assert!(!d.join("cpu.rt_runtime_us").exists());
    }
}
