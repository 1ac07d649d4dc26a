//! Huge pages per page size: `hugetlb.<size>.limit_in_bytes` on v1,
//! `hugetlb.<size>.max` on v2. A size the kernel has no file for is an
//! error naming it. A negative limit is no limit, which cgroups-rs's
//! unsigned setter cannot say: written here as each version spells it.

use std::path::Path;

use cgroups_rs::fs::hugetlb::HugeTlbController;
use oci_spec::runtime::LinuxHugepageLimit;

use super::{at, failed};
use crate::cgroups::{CgroupError, write_file};

pub(crate) fn apply(dir: &Path, v2: bool, h: &LinuxHugepageLimit) -> Result<(), CgroupError> {
    let size = h.page_size();
    let file = if v2 {
        format!("hugetlb.{size}.max")
    } else {
        format!("hugetlb.{size}.limit_in_bytes")
    };
    if !dir.join(&file).exists() {
        return Err(CgroupError::HugepageSize(size.clone()));
    }
    match u64::try_from(h.limit()) {
        Ok(limit) => {
            let (point, root) = at(dir);
            HugeTlbController::new(point, root, v2)
                .set_limit_in_bytes(size, limit)
                .map_err(failed("hugetlb", dir))
        }
        Err(_) => write_file(&dir.join(file), if v2 { "max" } else { "-1" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controllers::testing::{cgroup_dir, read};

    fn limit(size: &str, limit: i64) -> LinuxHugepageLimit {
        serde_json::from_value(serde_json::json!({"pageSize": size, "limit": limit})).unwrap()
    }

    #[test]
    fn v1_and_v2_files_per_page_size() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(
            t.path(),
            "hugetlb/stack/c",
            &[("hugetlb.2MB.limit_in_bytes", "")],
        );
        apply(&d, false, &limit("2MB", 4 << 20)).unwrap();
        assert_eq!(
            read(&d, "hugetlb.2MB.limit_in_bytes"),
            (4u64 << 20).to_string()
        );
        apply(&d, false, &limit("2MB", -1)).unwrap();
        assert_eq!(read(&d, "hugetlb.2MB.limit_in_bytes"), "-1");
        let d = cgroup_dir(t.path(), "stack/c", &[("hugetlb.2MB.max", "max")]);
        apply(&d, true, &limit("2MB", 4 << 20)).unwrap();
        assert_eq!(read(&d, "hugetlb.2MB.max"), (4u64 << 20).to_string());
        apply(&d, true, &limit("2MB", -1)).unwrap();
        assert_eq!(read(&d, "hugetlb.2MB.max"), "max");
    }

    #[test]
    fn a_page_size_the_kernel_lacks_is_named() {
        let t = tempfile::tempdir().unwrap();
        let d = cgroup_dir(t.path(), "stack/c", &[("hugetlb.2MB.max", "max")]);
        assert!(matches!(
            apply(&d, true, &limit("1GB", 1 << 30)),
            Err(CgroupError::HugepageSize(s)) if s == "1GB"
        ));
        assert!(!d.join("hugetlb.1GB.max").exists());
    }
}
