//! Free space where `stack` is about to write, so that a command can refuse
//! up front (naming what it needs) instead of failing half-way with a bare
//! `ENOSPC`.

use std::path::Path;

/// Bytes available to an unprivileged writer on the file system holding
/// `path`, or its nearest existing ancestor when `path` is not made yet.
pub fn available(path: &Path) -> Result<u64, crate::Error> {
    let mut at = path;
    while !at.exists() {
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    let stat = nix::sys::statvfs::statvfs(at).map_err(|e| crate::Error {
        op: "statvfs",
        path: at.to_path_buf(),
        source: e.into(),
    })?;
    Ok(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_path_not_made_yet_is_measured_where_it_would_be() {
        let dir = tempfile::tempdir().unwrap();
        let here = super::available(dir.path()).unwrap();
        let below = super::available(&dir.path().join("a/b/c")).unwrap();
        assert!(here > 0);
        // Same file system; other writers may change it a little meanwhile.
        assert!(here.abs_diff(below) < 64 << 20);
    }
}
