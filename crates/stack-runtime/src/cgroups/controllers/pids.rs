//! The number of tasks: `pids.max`, the same file on v1 and v2; a limit of
//! 0 or less is none ("max").

use std::path::Path;

use cgroups_rs::fs::MaxValue;
use cgroups_rs::fs::pid::PidController;
use oci_spec::runtime::LinuxPids;

use super::{at, failed};
use crate::cgroups::CgroupError;

pub(crate) fn apply(dir: &Path, v2: bool, p: &LinuxPids) -> Result<(), CgroupError> {
    let (point, root) = at(dir);
    let max = match p.limit() {
        n if n > 0 => MaxValue::Value(n),
        _ => MaxValue::Max,
    };
    PidController::new(point, root, v2)
        .set_pid_max(max)
        .map_err(failed("pids", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controllers::testing::{cgroup_dir, read, resources};

    #[test]
    fn pids_max_on_v1_and_v2() {
        let t = tempfile::tempdir().unwrap();
        for (rel, v2) in [("pids/stack/c", false), ("stack/c", true)] {
            let d = cgroup_dir(t.path(), rel, &[("pids.max", "max")]);
            for (limit, want) in [(16, "16"), (0, "max"), (-1, "max")] {
                let res = resources(serde_json::json!({"pids": {"limit": limit}}));
                apply(&d, v2, res.pids().as_ref().unwrap()).unwrap();
                assert_eq!(read(&d, "pids.max"), want, "{rel} {limit}");
            }
        }
    }
}
