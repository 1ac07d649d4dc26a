//! Freezing (`pause`): `freezer.state` on v1, `cgroup.freeze` on v2 (the
//! cgroup core's, no controller needed), written through cgroups-rs.
//!
//! Whether the cgroup *is* frozen is read here: on v2 cgroups-rs reads it
//! from `cgroup.freeze`, which says what was asked, not what the kernel has
//! done; the tasks are frozen once `cgroup.events` says `frozen 1`
//! (`cgroups_rs_reports_a_v2_freeze_as_done_when_asked` below). A pause that
//! returned before that could let a task run on.

use std::fs;
use std::path::Path;
use std::time::Duration;

use cgroups_rs::FreezerState;
use cgroups_rs::fs::freezer::FreezerController;

use super::{at, failed};
use crate::cgroups::{CgroupError, keyed};

/// Freezes or thaws the cgroup `dir` and waits until the kernel has done it.
pub(crate) fn set(dir: &Path, v2: bool, frozen: bool) -> Result<(), CgroupError> {
    let (point, root) = at(dir);
    let ctl = FreezerController::new(point, root, v2);
    let write = || match frozen {
        true => ctl.freeze(),
        false => ctl.thaw(),
    };
    write().map_err(failed("freezer", dir))?;
    for _ in 0..1000 {
        if is_frozen(dir, v2) == frozen {
            return Ok(());
        }
        // v1 may stay FREEZING when a task raced the first write: writing
        // FROZEN again retries the tasks not yet frozen.
        if !v2 {
            write().map_err(failed("freezer", dir))?;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(CgroupError::FreezeTimeout {
        path: dir.to_path_buf(),
    })
}

/// Whether every task of the cgroup `dir` is frozen.
pub(crate) fn is_frozen(dir: &Path, v2: bool) -> bool {
    if v2 {
        fs::read_to_string(dir.join("cgroup.events"))
            .ok()
            .and_then(|b| keyed(&b, "frozen"))
            == Some(1)
    } else {
        let (point, root) = at(dir);
        matches!(
            FreezerController::new(point, root, false).state(),
            Ok(FreezerState::Frozen)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controllers::testing::{cgroup_dir, read};

    #[test]
    fn v1_state_file() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(t.path(), "freezer/stack/c", &[("freezer.state", "THAWED")]);
        assert!(!is_frozen(&d, false));
        set(&d, false, true).unwrap();
        assert_eq!(read(&d, "freezer.state"), "FROZEN");
        assert!(is_frozen(&d, false));
        set(&d, false, false).unwrap();
        assert_eq!(read(&d, "freezer.state"), "THAWED");
    }

    #[test]
    fn v2_asks_through_cgroup_freeze_and_waits_for_cgroup_events() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(
            t.path(),
            "stack/c",
            &[
                ("cgroup.freeze", "0"),
                ("cgroup.events", "populated 1\nfrozen 0\n"),
            ],
        );
        // The kernel never reports it frozen here: the wait gives up.
        assert!(matches!(
            set(&d, true, true),
            Err(CgroupError::FreezeTimeout { .. })
        ));
        assert_eq!(read(&d, "cgroup.freeze"), "1");
        std::fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        set(&d, true, true).unwrap();
        assert!(is_frozen(&d, true));
    }

    /// Why the v2 state is not read through cgroups-rs.
    #[test]
    fn cgroups_rs_reports_a_v2_freeze_as_done_when_asked() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(
            t.path(),
            "stack/c",
            &[
                ("cgroup.freeze", "1"),
                ("cgroup.events", "populated 1\nfrozen 0\n"),
            ],
        );
        let ctl = FreezerController::new(d.clone(), d.clone(), true);
        assert!(matches!(ctl.state(), Ok(FreezerState::Frozen)));
        assert!(!is_frozen(&d, true));
    }
}
