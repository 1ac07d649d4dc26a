//! One file per controller: what each limit of the OCI spec becomes in that
//! controller's files, on v1 and on v2. The writing goes through cgroups-rs's
//! controller types (`cgroups_rs::fs::*Controller`), which take the cgroup's
//! directory as given, so the unit tests point them at a temporary tree laid
//! out like `/sys/fs/cgroup`. Where cgroups-rs writes the wrong thing, the
//! file says so, writes it itself, and has the test showing the difference.

pub(super) mod cpu;
pub(super) mod cpuset;
pub(super) mod freezer;
pub(super) mod hugetlb;
pub(super) mod io;
pub(super) mod memory;
pub(super) mod pids;

use std::path::{Path, PathBuf};

use super::CgroupError;

/// Turns an error of cgroups-rs into the runtime's, with the directory it
/// was writing in (cgroups-rs names only the file).
fn failed(
    controller: &'static str,
    dir: &Path,
) -> impl FnOnce(cgroups_rs::fs::error::Error) -> CgroupError {
    let path = dir.to_path_buf();
    move |source| CgroupError::Controller {
        controller,
        path,
        source: Box::new(source),
    }
}

/// A device number from the spec (signed there) as the kernel's.
fn dev_number(major: i64, minor: i64) -> Result<(u64, u64), CgroupError> {
    match (u64::try_from(major), u64::try_from(minor)) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        _ => Err(CgroupError::DeviceRule(format!("{major}:{minor}"))),
    }
}

/// The point and root cgroups-rs's controllers take: the cgroup's own
/// directory for both, as nothing here walks up from it.
fn at(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.to_path_buf(), dir.to_path_buf())
}

#[cfg(test)]
pub(crate) mod testing {
    //! A cgroup directory as the kernel lays it out, in a temporary tree.

    use std::fs;
    use std::path::{Path, PathBuf};

    /// Makes `root/rel` with each `(file, content)` in it, as the kernel
    /// shows a new cgroup: every interface file exists, with its default.
    pub fn cgroup_dir(root: &Path, rel: &str, files: &[(&str, &str)]) -> PathBuf {
        let d = root.join(rel);
        fs::create_dir_all(&d).unwrap();
        for (f, v) in files {
            fs::write(d.join(f), v).unwrap();
        }
        d
    }

    pub fn read(d: &Path, f: &str) -> String {
        fs::read_to_string(d.join(f)).unwrap_or_else(|e| panic!("{}: {e}", d.join(f).display()))
    }

    pub fn resources(v: serde_json::Value) -> oci_spec::runtime::LinuxResources {
        serde_json::from_value(v).unwrap()
    }
}
