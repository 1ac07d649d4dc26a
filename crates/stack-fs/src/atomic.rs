//! Atomic file replacement: a crash leaves either the old file or the new
//! one, never a torn one. The rename is the commit point; with
//! [`Durability::Synced`] the data is on disk before it and the directory
//! entry after it, so a power loss cannot undo a committed write either.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Error;

/// Whether a write must survive a power loss, or only a crash of the writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file before the rename and the directory after it.
    Synced,
    /// Rename only: readers and a crashed writer never see a torn file, but
    /// a power loss may lose the write. For files on the path to a
    /// container's first output, where each fsync costs milliseconds and the
    /// container they describe does not survive a power loss anyway.
    Unsynced,
}

/// Replaces `path` with `bytes`, durably (see [`Durability::Synced`]).
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_with(path, bytes, Durability::Synced)
}

/// Replaces `path` with `bytes` through a temporary file in the same
/// directory. The temporary name is unique per process and call, so
/// threads replacing the same file never write into each other's temporary.
pub fn write_with(path: &Path, bytes: &[u8], durability: Durability) -> Result<(), Error> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| Error {
        op: "write",
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        name.to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    // Errors name the file being replaced, not the temporary (a name the
    // user never chose and that is gone once the error is reported).
    let result = (|| {
        let mut file = File::create(&tmp).map_err(Error::at("write", path))?;
        file.write_all(bytes).map_err(Error::at("write", path))?;
        if durability == Durability::Synced {
            file.sync_all().map_err(Error::at("fsync", path))?;
        }
        drop(file);
        fs::rename(&tmp, path).map_err(Error::at("rename into place", path))?;
        if durability == Durability::Synced {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(Error::at("fsync directory", dir))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_content_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"one").unwrap();
        write_with(&path, b"two", Durability::Unsynced).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(names(dir.path()), ["state.json"]);
    }

    #[test]
    fn a_failed_write_names_the_operation_and_path_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"old").unwrap();
        // A directory in the way makes the rename fail after the data is written.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("x"), b"").unwrap();
        let err = write(&blocked, b"new").unwrap_err();
        assert_eq!(err.op, "rename into place");
        assert_eq!(err.path, blocked);
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("rename into place {}: ", blocked.display())),
            "{text}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["blocked", "state.json"]);
    }

    #[test]
    fn concurrent_writers_of_one_file_never_tear_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::thread::scope(|s| {
            for i in 0..8u8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..50 {
                        write_with(path, &[i; 4096], Durability::Unsynced).unwrap();
                    }
                });
            }
        });
        let body = fs::read(&path).unwrap();
        assert_eq!(body.len(), 4096);
        assert!(body.iter().all(|b| *b == body[0]));
        assert_eq!(names(dir.path()), ["f"]);
    }
}
