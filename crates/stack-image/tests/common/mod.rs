//! Shared test helpers: fixture images, temporary store roots that clean up
//! their mounts even when a test panics.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Builds (once per cache dir) the fixture images with tests/fixtures/images/build.py.
/// Needs: python3, busybox-static, zstd.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        assert!(
            stack_testing::is_root(),
            "stack-image integration tests must run as root"
        );
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images/build.py");
        // Keyed by the builder's content, so a changed builder rebuilds.
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&std::fs::read(&script).expect("fixture builder"), &mut h);
        let key = std::hash::Hasher::finish(&h);
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("image-fixtures-{key:016x}"));
        let stamp = out.join(".complete");
        if !stamp.exists() {
            let tmp = out.with_extension(format!("tmp{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            let status = Command::new("python3")
                .arg(&script)
                .arg(&tmp)
                .status()
                .unwrap_or_else(|e| {
                    panic!(
                        "running {}: {e} (needs Debian packages python3, busybox-static, zstd)",
                        script.display()
                    )
                });
            assert!(
                status.success(),
                "fixture builder failed (needs python3, busybox-static, zstd)"
            );
            std::fs::write(tmp.join(".complete"), b"").unwrap();
            // Another test binary may have finished first; either copy is identical.
            if std::fs::rename(&tmp, &out).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        out
    })
}

/// A fresh `--root`; unmounts everything below it and deletes it on drop.
pub struct TempRoot {
    pub dir: tempfile::TempDir,
}

impl TempRoot {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stack-image-test-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let prefix = self.dir.path().to_string_lossy().into_owned();
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut points: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|mp| mp.starts_with(&prefix))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for mp in points {
                let _ = nix::mount::umount2(mp, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// Everything below `dir`, as relative paths, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(base, &p, out);
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

pub mod registry;
