//! Block I/O: the weight, per-device weights and throttles (v1 `blkio.*`,
//! v2 `io.weight` and `io.max`).
//!
//! The throttles and every v1 file go through cgroups-rs. The v2 weight is
//! written here: cgroups-rs puts it into `io.bfq.weight`, a file that exists
//! only where the BFQ scheduler is loaded and that takes the v1 range
//! unconverted, so on any other host the weight would fail or land nowhere
//! (`cgroups_rs_writes_the_v2_weight_to_bfq` below). Here it goes to
//! `io.weight`, converted to 1..10000 as runc and crun do.

use std::path::Path;

use cgroups_rs::fs::blkio::BlkIoController;
use oci_spec::runtime::LinuxBlockIo;

use super::{at, dev_number, failed};
use crate::cgroups::{CgroupError, write_file};
use crate::plan::blkio_weight_to_io;

/// Whether the spec sets anything the io (blkio) controller carries.
pub(crate) fn wanted(b: &LinuxBlockIo) -> bool {
    let some = |l: &Option<Vec<_>>| l.as_ref().is_some_and(|l: &Vec<_>| !l.is_empty());
    b.weight().is_some()
        || b.leaf_weight().is_some()
        || b.weight_device().as_ref().is_some_and(|l| !l.is_empty())
        || some(b.throttle_read_bps_device())
        || some(b.throttle_write_bps_device())
        || some(b.throttle_read_iops_device())
        || some(b.throttle_write_iops_device())
}

pub(crate) fn apply(dir: &Path, v2: bool, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let (point, root) = at(dir);
    let ctl = BlkIoController::new(point, root, v2);
    let e = || failed("io", dir);
    if v2 {
        if let Some(w) = b.weight() {
            let v = blkio_weight_to_io(u64::from(w));
            write_file(&dir.join("io.weight"), &format!("default {v}"))?;
        }
        for wd in b.weight_device().iter().flatten() {
            if let Some(w) = wd.weight() {
                let (major, minor) = dev_number(wd.major(), wd.minor())?;
                let v = blkio_weight_to_io(u64::from(w));
                write_file(&dir.join("io.weight"), &format!("{major}:{minor} {v}"))?;
            }
        }
        if b.leaf_weight().is_some() {
            tracing::warn!(cgroup = %dir.display(), "blkio leaf weight: cgroup v2 has no such file; not applied");
        }
    } else {
        if let Some(w) = b.weight() {
            ctl.set_weight(u64::from(w)).map_err(e())?;
        }
        if let Some(w) = b.leaf_weight() {
            ctl.set_leaf_weight(u64::from(w)).map_err(e())?;
        }
        for wd in b.weight_device().iter().flatten() {
            let (major, minor) = dev_number(wd.major(), wd.minor())?;
            if let Some(w) = wd.weight() {
                ctl.set_weight_for_device(major, minor, u64::from(w))
                    .map_err(e())?;
            }
            if let Some(w) = wd.leaf_weight() {
                ctl.set_leaf_weight_for_device(major, minor, u64::from(w))
                    .map_err(e())?;
            }
        }
    }
    type Setter = fn(&BlkIoController, u64, u64, u64) -> cgroups_rs::fs::error::Result<()>;
    let throttles: [(_, Setter); 4] = [
        (
            b.throttle_read_bps_device(),
            BlkIoController::throttle_read_bps_for_device,
        ),
        (
            b.throttle_write_bps_device(),
            BlkIoController::throttle_write_bps_for_device,
        ),
        (
            b.throttle_read_iops_device(),
            BlkIoController::throttle_read_iops_for_device,
        ),
        (
            b.throttle_write_iops_device(),
            BlkIoController::throttle_write_iops_for_device,
        ),
    ];
    for (list, set) in throttles {
        for t in list.iter().flatten() {
            let (major, minor) = dev_number(t.major(), t.minor())?;
            set(&ctl, major, minor, t.rate()).map_err(e())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controllers::testing::{cgroup_dir, read, resources};

    fn block_io(v: serde_json::Value) -> LinuxBlockIo {
        resources(serde_json::json!({ "blockIO": v }))
            .block_io()
            .clone()
            .unwrap()
    }

    /// Each list has one device: a temporary file keeps the last write,
    /// where the kernel's file keeps one line per device.
    #[test]
    fn v1_weights_and_throttles() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(t.path(), "blkio/stack/c", &[]);
        let b = block_io(serde_json::json!({
            "weight": 500, "leafWeight": 300,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 200, "leafWeight": 100}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 50}],
        }));
        apply(&d, false, &b).unwrap();
        assert_eq!(read(&d, "blkio.weight"), "500");
        assert_eq!(read(&d, "blkio.leaf_weight"), "300");
        assert_eq!(read(&d, "blkio.weight_device"), "8:0 200");
        assert_eq!(read(&d, "blkio.leaf_weight_device"), "8:0 100");
        assert_eq!(read(&d, "blkio.throttle.read_bps_device"), "8:0 1048576");
        assert_eq!(read(&d, "blkio.throttle.write_bps_device"), "8:0 2097152");
        assert_eq!(read(&d, "blkio.throttle.read_iops_device"), "8:16 100");
        assert_eq!(read(&d, "blkio.throttle.write_iops_device"), "8:16 50");
    }

    #[test]
    fn v2_io_weight_and_io_max() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(
            t.path(),
            "stack/c",
            &[("io.weight", "default 100"), ("io.max", "")],
        );
        apply(&d, true, &block_io(serde_json::json!({"weight": 500}))).unwrap();
        // runc's conversion: 1 + (500 - 10) * 9999 / 990.
        assert_eq!(read(&d, "io.weight"), "default 4950");
        apply(
            &d,
            true,
            &block_io(
                serde_json::json!({"weightDevice": [{"major": 8, "minor": 0, "weight": 10}]}),
            ),
        )
        .unwrap();
        assert_eq!(read(&d, "io.weight"), "8:0 1");
        for (key, file_key) in [
            ("throttleReadBpsDevice", "rbps"),
            ("throttleWriteBpsDevice", "wbps"),
            ("throttleReadIOPSDevice", "riops"),
            ("throttleWriteIOPSDevice", "wiops"),
        ] {
            let b =
                block_io(serde_json::json!({ key: [{"major": 253, "minor": 1, "rate": 4096}] }));
            apply(&d, true, &b).unwrap();
            assert_eq!(read(&d, "io.max"), format!("253:1 {file_key}=4096"));
        }
        assert!(!d.join("io.bfq.weight").exists());
    }

    #[test]
    fn a_negative_device_number_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(t.path(), "stack/c", &[("io.max", "")]);
        let b = block_io(
            serde_json::json!({"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1}]}),
        );
        assert!(matches!(apply(&d, true, &b), Err(CgroupError::DeviceRule(s)) if s == "-1:0"));
        assert_eq!(read(&d, "io.max"), "");
    }

    /// Why the v2 weight is not left to cgroups-rs.
    #[test]
    fn cgroups_rs_writes_the_v2_weight_to_bfq() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(t.path(), "stack/c", &[("io.weight", "default 100")]);
        BlkIoController::new(d.clone(), d.clone(), true)
            .set_weight(500)
            .unwrap();
        assert_eq!(read(&d, "io.weight"), "default 100", "io.weight untouched");
        assert_eq!(read(&d, "io.bfq.weight"), "500", "BFQ's file, v1 range");
    }
}
