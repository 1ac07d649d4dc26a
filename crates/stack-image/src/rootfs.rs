//! Copy-on-write root filesystems: the image's layers as overlayfs lowerdirs and
//! a per-container upper/work directory, mounted at `rootfs/<id>/merged`.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::store::{ImageId, Result, RootfsMount, Store, StoreError, atomic_write, io_at};

/// The kernel copies mount data into one page.
const MAX_MOUNT_DATA: usize = 4095;

/// Builds overlay mount options; lowerdir lists the topmost layer first.
pub fn overlay_options(layers_lowest_first: &[PathBuf], upper: &Path, work: &Path) -> String {
    let lower: Vec<String> = layers_lowest_first
        .iter()
        .rev()
        .map(|p| escape(p))
        .collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        escape(upper),
        escape(work)
    )
}

/// overlayfs treats ',' and ':' as separators; '\' escapes them.
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Store {
    /// Mounts a fresh copy-on-write root for `container_id` from `image` and
    /// returns where it is. Calling it again for a mounted container returns the
    /// existing mount.
    pub fn prepare_rootfs(&self, image: &ImageId, container_id: &str) -> Result<RootfsMount> {
        let base = self.rootfs_base(container_id)?;
        let mut layers = self.layer_dirs(image)?;
        if layers.is_empty() {
            // overlayfs needs a lowerdir even for an image without layers.
            let empty = self.dir().join("layers/empty");
            fs::create_dir_all(&empty).map_err(io_at(&empty))?;
            layers.push(empty);
        }
        let m = RootfsMount {
            container_id: container_id.to_owned(),
            image: image.clone(),
            path: base.join("merged"),
            upper: base.join("upper"),
            work: base.join("work"),
        };
        // Under the store lock so that prune sees the marker before it judges the image unused.
        let _lock = self.lock()?;
        if is_mountpoint(&m.path) {
            return Ok(m);
        }
        for d in [&m.path, &m.upper, &m.work] {
            fs::create_dir_all(d).map_err(io_at(d))?;
            // The upper dir's root is the container's `/`: independent of our umask.
            fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(io_at(d))?;
        }
        atomic_write(&base.join("image"), image.as_str().as_bytes())?;
        let data = overlay_options(&layers, &m.upper, &m.work);
        if data.len() > MAX_MOUNT_DATA {
            return Err(StoreError::MountOptionsTooLong(container_id.to_owned()));
        }
        mount(
            Some("overlay"),
            &m.path,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|source| StoreError::Mount {
            path: m.path.clone(),
            source,
        })?;
        Ok(m)
    }

    /// Unmounts and deletes a container's root filesystem, including its writes.
    /// Succeeds when there is nothing to release.
    pub fn release_rootfs(&self, container_id: &str) -> Result<()> {
        let base = self.rootfs_base(container_id)?;
        let merged = base.join("merged");
        if is_mountpoint(&merged) {
            umount2(&merged, MntFlags::MNT_DETACH).map_err(|source| StoreError::Mount {
                path: merged.clone(),
                source,
            })?;
        }
        match fs::remove_dir_all(&base) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_at(&base)(e)),
        }
    }

    /// Where a container's root would be mounted.
    pub fn rootfs_path(&self, container_id: &str) -> Result<PathBuf> {
        Ok(self.rootfs_base(container_id)?.join("merged"))
    }
}

/// True when `path` is a mount point (its device differs from its parent's, or
/// /proc/self/mountinfo lists it).
fn is_mountpoint(path: &Path) -> bool {
    let Ok(canon) = path.canonicalize() else {
        return false;
    };
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = canon.to_string_lossy();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|mp| unescape_mountinfo(mp) == want)
    })
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_top_layer_first_and_escape() {
        let layers = vec![PathBuf::from("/s/l/a"), PathBuf::from("/s/l/b,c")];
        assert_eq!(
            overlay_options(&layers, Path::new("/r/u"), Path::new("/r/w")),
            "lowerdir=/s/l/b\\,c:/s/l/a,upperdir=/r/u,workdir=/r/w"
        );
    }
}
