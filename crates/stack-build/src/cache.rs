//! The step cache: a step's key is a digest of its parent's key, the
//! instruction with its variables expanded, the build args in scope and, for
//! `COPY`/`ADD`, the content of what is copied. An entry names the layer the
//! step made, shared by every build under one root.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use stack_image::{Digest, Store};

/// A chained step key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// The key of a stage's base: the image it starts from.
    pub fn base(image: &str) -> Self {
        Self(
            Sha256::new()
                .chain_update(b"base\0")
                .chain_update(image)
                .finalize()
                .into(),
        )
    }

    /// The key of the step after `self` made of `parts`.
    pub fn next(&self, parts: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        h.update(self.0);
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        Self(h.finalize().into())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// What a cached step made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    /// When the step ran (RFC 3339), kept so a cached rebuild has the same config.
    pub created: String,
}

/// What [`prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Step entries.
    pub entries: usize,
    /// `RUN --mount=type=cache` directories.
    pub mounts: usize,
    /// Bytes of the cache mounts' files.
    pub bytes: u64,
}

/// Empties the build cache under `root`: every step entry, every cache
/// mount and the record of what each service image was built from (the
/// next `up --build` builds them again). The layers the entries named stay
/// in the image store until nothing there references them.
pub fn prune(root: &Path) -> io::Result<Pruned> {
    let dir = root.join("build-cache");
    let mut pruned = Pruned::default();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(pruned),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        let path = e.path();
        match e.file_name().to_str() {
            Some("mounts") => {
                for m in fs::read_dir(&path)? {
                    let m = m?.path();
                    pruned.bytes += du(&m);
                    fs::remove_dir_all(&m)?;
                    pruned.mounts += 1;
                }
            }
            Some("built") => fs::remove_dir_all(&path)?,
            _ if e.file_type()?.is_file() => {
                fs::remove_file(&path)?;
                pruned.entries += 1;
            }
            _ => {}
        }
    }
    Ok(pruned)
}

/// Bytes of the files under `path` (links not followed).
fn du(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| du(&e.path()))
        .sum()
}

/// The cache directory `<root>/build-cache`.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn open(root: &Path) -> io::Result<Self> {
        let dir = root.join("build-cache");
        fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The entry for `key` whose layer is still in `store`.
    pub fn get(&self, key: &Key, store: &Store) -> Option<Entry> {
        let bytes = fs::read(self.dir.join(key.hex())).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        (store.has_blob(&entry.digest) && store.layer_path(&entry.digest).is_dir()).then_some(entry)
    }

    /// Records an entry (temp file and rename: a reader sees all or nothing).
    pub fn put(&self, key: &Key, entry: &Entry) -> io::Result<()> {
        let path = self.dir.join(key.hex());
        let tmp = self
            .dir
            .join(format!(".{}.{}", key.hex(), std::process::id()));
        fs::write(&tmp, serde_json::to_vec(entry).map_err(io::Error::other)?)?;
        fs::rename(&tmp, &path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_removes_entries_mounts_and_build_records() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("build-cache");
        fs::create_dir_all(dir.join("mounts/abc/sub")).unwrap();
        fs::write(dir.join("mounts/abc/sub/f"), "12345").unwrap();
        fs::create_dir_all(dir.join("built")).unwrap();
        fs::write(dir.join("built/x"), "fp").unwrap();
        fs::write(dir.join("0123"), "{}").unwrap();
        let pruned = prune(root.path()).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                entries: 1,
                mounts: 1,
                bytes: 5
            }
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "only mounts/ stays");
        assert_eq!(prune(&root.path().join("none")).unwrap(), Pruned::default());
    }
}
